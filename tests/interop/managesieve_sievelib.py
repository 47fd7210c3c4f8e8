#!/usr/bin/env python3
"""Debian's python3-sievelib (the `sievelib` of PyPI) against Mailroom's ManageSieve.

Run by tests/it/managesieve_interop.rs with Debian's /usr/bin/python3, which starts the server
with the account and checks the store afterwards. Environment:
  SIEVE_HOST, SIEVE_PORT       where to connect (plain, then STARTTLS)
  SIEVE_USER, SIEVE_PASSWORD   the account
At the end the account holds the script "kept" (active) and nothing else.
"""

import os
import sys

from sievelib.managesieve import Client

HOST = os.environ["SIEVE_HOST"]
PORT = int(os.environ["SIEVE_PORT"])
USER = os.environ["SIEVE_USER"]
PASSWORD = os.environ["SIEVE_PASSWORD"]

GOOD = 'require ["fileinto"];\r\nif header :contains "subject" "school" {\r\n  fileinto "School";\r\n}\r\n'
BROKEN = 'require ["fileinto"];\r\nif header :contains "subject" {\r\n  fileinto "School";\r\n}\r\n'


def check(cond, what):
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


c = Client(HOST, PORT)
check(c.connect(USER, PASSWORD, starttls=True, authmech="PLAIN"), "connect, STARTTLS, PLAIN")
check(c.get_implementation() == "Mailroom", "IMPLEMENTATION")
check("fileinto" in c.get_sieve_capabilities(), "SIEVE lists fileinto")

check(c.havespace("school", len(GOOD)), "HAVESPACE")
check(c.putscript("school", GOOD), "PUTSCRIPT")
check(c.putscript("other", "keep;\r\n"), "PUTSCRIPT other")
active, others = c.listscripts()
check(active is None and sorted(others) == ["other", "school"], f"LISTSCRIPTS {active} {others}")
check(c.setactive("school"), "SETACTIVE")
active, others = c.listscripts()
check(active == "school" and others == ["other"], f"LISTSCRIPTS after SETACTIVE {active} {others}")
got = c.getscript("school")
# sievelib joins the lines with LF and drops the last line end.
check(got == GOOD.replace("\r\n", "\n").rstrip("\n"), f"GETSCRIPT {got!r}")

check(not c.checkscript(BROKEN), "CHECKSCRIPT refuses the broken script")
err = c.errmsg.decode() if isinstance(c.errmsg, bytes) else str(c.errmsg)
print(f"CHECKSCRIPT error: {err}")
check("line 2" in err, f"the error names the line: {err}")
check(not c.putscript("broken", BROKEN), "PUTSCRIPT refuses the broken script")
check(c.checkscript(GOOD), "CHECKSCRIPT accepts the good script")

check(not c.deletescript("school"), "DELETESCRIPT refuses the active script")
check(c.renamescript("school", "kept"), "RENAMESCRIPT")
check(c.deletescript("other"), "DELETESCRIPT")
check(not c.getscript("other"), "GETSCRIPT of a deleted script")
active, others = c.listscripts()
check(active == "kept" and others == [], f"LISTSCRIPTS at the end {active} {others}")
c.logout()
print("sievelib: OK")
