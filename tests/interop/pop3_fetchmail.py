#!/usr/bin/env python3
"""Debian's fetchmail against Mailroom's POP3, downloading a whole maildrop into a local mbox.

Run by tests/it/pop3/interop.rs, which starts the server and delivers POP3_COUNT messages, each
with a header `X-Interop-Seq: <n>`. Two phases, each run twice to prove nothing is fetched
twice:
  1. `keep` over the pop3 port with STLS (certificate checked): all messages land in the mbox
     and stay on the server; the second run fetches nothing (UIDL bookkeeping).
  2. `no keep` over the pop3s port (implicit TLS), with a fresh id file: all messages land in a
     second mbox and are deleted; the second run finds an empty maildrop.
Environment: POP3_HOST, POP3_PORT, POP3S_PORT, POP3_USER, POP3_PASSWORD, POP3_CAFILE,
POP3_COUNT, and WORKDIR (a scratch directory for rc files, id files and mboxes).
"""

import getpass
import os
import poplib
import re
import shutil
import ssl
import subprocess
import sys

HOST = os.environ["POP3_HOST"]
PORT = int(os.environ["POP3_PORT"])
SPORT = int(os.environ["POP3S_PORT"])
USER = os.environ["POP3_USER"]
PASSWORD = os.environ["POP3_PASSWORD"]
CAFILE = os.environ["POP3_CAFILE"]
COUNT = int(os.environ["POP3_COUNT"])
WORK = os.environ["WORKDIR"]


def check(cond, what):
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


def fetchmail(name, port, implicit_tls, keep):
    """Runs fetchmail once; returns its exit status (0: mail fetched, 1: no mail)."""
    home = os.path.join(WORK, name)
    os.makedirs(home, exist_ok=True)
    mbox = os.path.join(home, "mbox")
    rc = os.path.join(home, "fetchmailrc")
    tls = "ssl" if implicit_tls else "sslproto tls1.2+"
    with open(rc, "w") as f:
        f.write(
            f'poll 127.0.0.1 service {port} protocol pop3 uidl auth password timeout 60\n'
            f'  user "{USER}" there with password "{PASSWORD}" is "{getpass.getuser()}" here\n'
            f'  {tls} sslcertck sslcertfile "{CAFILE}" sslcommonname localhost\n'
            f'  {"keep" if keep else "no keep"}\n'
            f'  mda "cat >> {mbox}"\n'
        )
    os.chmod(rc, 0o600)
    env = dict(os.environ, FETCHMAILHOME=home, HOME=home)
    run = subprocess.run(
        ["fetchmail", "--nosyslog", "-v", "-f", rc, "--idfile", os.path.join(home, "ids")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if run.returncode not in (0, 1):
        print(run.stdout, run.stderr, sep="\n", file=sys.stderr)
        check(False, f"fetchmail {name} exited {run.returncode}")
    # No need to check that TLS was used: the server refuses passwords in clear.
    return run.returncode, mbox


def sequence_numbers(mbox):
    if not os.path.exists(mbox):
        return []
    with open(mbox, "rb") as f:
        return [int(n) for n in re.findall(rb"^X-Interop-Seq: (\d+)\r?$", f.read(), re.M)]


def server_count():
    p = poplib.POP3_SSL(HOST, SPORT, context=ssl.create_default_context(cafile=CAFILE))
    p.user(USER)
    p.pass_(PASSWORD)
    n = p.stat()[0]
    p.quit()
    return n


def phase(name, port, implicit_tls, keep):
    status, mbox = fetchmail(name, port, implicit_tls, keep)
    check(status == 0, f"{name}: first run fetched mail")
    seqs = sequence_numbers(mbox)
    check(sorted(seqs) == list(range(COUNT)), f"{name}: each message once, got {len(seqs)}")
    with open(mbox, "rb") as f:
        data = f.read()
    # Byte-stuffing undone by the client: the line stored as ".leading dot" arrives intact.
    dots = len(re.findall(rb"^\.leading dot\r?$", data, re.M))
    check(dots == COUNT, f"{name}: dot lines intact ({dots})")
    check(server_count() == (COUNT if keep else 0), f"{name}: server keeps = {keep}")
    status, _ = fetchmail(name, port, implicit_tls, keep)
    check(status == 1, f"{name}: second run fetched nothing (exit {status})")
    check(sequence_numbers(mbox) == seqs, f"{name}: nothing fetched twice")
    print(f"{name}: {len(seqs)} messages fetched, none on the second run, server kept {keep}")


def main():
    check(shutil.which("fetchmail") is not None, "fetchmail is installed")
    phase("keep-stls", PORT, implicit_tls=False, keep=True)
    phase("nokeep-tls", SPORT, implicit_tls=True, keep=False)
    print("fetchmail: all checks passed")


if __name__ == "__main__":
    main()
