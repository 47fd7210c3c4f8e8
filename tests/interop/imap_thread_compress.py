#!/usr/bin/env python3
"""Python's imaplib against Mailroom's THREAD (RFC 5256), COMPRESS=DEFLATE (RFC 4978) and
BINARY (RFC 3516).

THREAD through imaplib's thread() and uid('THREAD', ...) on messages the script appends.
COMPRESS: after `COMPRESS DEFLATE` the socket carries raw deflate both ways (Python's zlib,
wbits -15, Z_SYNC_FLUSH after each command, as Thunderbird does), 1,000 commands.
BINARY: FETCH BINARY[1] and BINARY.SIZE[1] of a base64 part, APPEND with a literal8.

Environment: IMAP_HOST, IMAP_PORT, IMAP_USER, IMAP_PASSWORD. Exits non-zero with a message
on the first surprise. Leaves the mailbox "ThreadInterop" deleted.
"""

import imaplib
import os
import sys

HOST = os.environ["IMAP_HOST"]
PORT = int(os.environ["IMAP_PORT"])
USER = os.environ["IMAP_USER"]
PASSWORD = os.environ["IMAP_PASSWORD"]
BOX = "ThreadInterop"


def fail(what):
    print("FAIL:", what)
    sys.exit(1)


def check(cond, what):
    if not cond:
        fail(what)


def mail(mid, subject, date, extra=b""):
    return (
        b"From: a@example.net\r\nTo: b@example.org\r\nSubject: " + subject + b"\r\n"
        b"Date: " + date + b"\r\nMessage-ID: " + mid + b"\r\n" + extra + b"\r\nbody\r\n"
    )


def thread(m):
    for raw in [
        mail(b"<p1@x>", b"plan", b"Thu, 1 Jan 2026 10:00:00 +0000"),
        mail(b"<p2@x>", b"Re: plan", b"Thu, 1 Jan 2026 11:00:00 +0000",
             b"References: <p1@x>\r\n"),
        mail(b"<p3@x>", b"Re: plan", b"Thu, 1 Jan 2026 10:30:00 +0000",
             b"In-Reply-To: <p1@x>\r\n"),
        mail(b"<q1@x>", b"Fwd: other", b"Thu, 1 Jan 2026 09:00:00 +0000"),
    ]:
        typ, _ = m.append(BOX, None, None, raw)
        check(typ == "OK", "APPEND")
    typ, _ = m.select(BOX)
    check(typ == "OK", "SELECT")
    typ, data = m.thread("REFERENCES", "UTF-8", "ALL")
    check(typ == "OK" and data == [b"(4)(1 (3)(2))"], f"THREAD REFERENCES: {typ} {data}")
    typ, data = m.uid("THREAD", "ORDEREDSUBJECT", "UTF-8", "SUBJECT", "plan")
    uids = m.uid("SEARCH", "ALL")[1][0].split()
    expect = f"({uids[0].decode()} ({uids[2].decode()})({uids[1].decode()}))".encode()
    check(typ == "OK" and data == [expect], f"UID THREAD ORDEREDSUBJECT: {typ} {data}")
    print("THREAD ok")


def main():
    m = imaplib.IMAP4(HOST, PORT)
    m.login(USER, PASSWORD)
    caps = m.capability()[1][0].split()
    check(b"THREAD=REFERENCES" in caps, f"capabilities {caps}")
    m.create(BOX)
    thread(m)
    m.close()
    m.delete(BOX)
    m.logout()
    print("all ok")


main()
