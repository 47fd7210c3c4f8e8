"""What the IMAP interop scripts share: the server and account they are given, and the two
checks that stop a script with a message on the first surprise.

Environment: IMAP_HOST, IMAP_PORT, IMAP_USER, IMAP_PASSWORD.
"""

import os
import sys

HOST = os.environ["IMAP_HOST"]
PORT = int(os.environ["IMAP_PORT"])
USER = os.environ["IMAP_USER"]
PASSWORD = os.environ["IMAP_PASSWORD"]


def check(cond, what):
    """Prints `ok: what`, or `FAILED: what` and exits 1."""
    if not cond:
        print("FAILED:", what)
        sys.exit(1)
    print("ok:", what)


def ok(result, what):
    """An imaplib result that must be OK: its data."""
    typ, data = result
    check(typ == "OK", f"{what} -> {typ} {data!r}")
    return data
