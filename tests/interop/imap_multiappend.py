#!/usr/bin/env python3
"""Python's imaplib against Mailroom's MULTIAPPEND (RFC 3502).

imaplib's append() sends one message; a MULTIAPPEND goes through its generic command with
the messages as non-synchronizing literals (LITERAL+, advertised) in the arguments. Checks
the APPENDUID uid-set, the messages' flags and bodies, and that a failing MULTIAPPEND (a
mailbox that does not exist) stores nothing.

Environment: IMAP_HOST, IMAP_PORT, IMAP_USER, IMAP_PASSWORD. Exits non-zero on a surprise.
"""

import imaplib
import re

from imapcheck import HOST, PORT, USER, PASSWORD, check


def message(n):
    return (
        f"From: a@example.net\r\nSubject: multi {n}\r\n\r\nmessage number {n}\r\n"
    ).encode()


def literal_plus(data):
    return b"{%d+}\r\n" % len(data) + data


imap = imaplib.IMAP4(HOST, PORT)
imap.login(USER, PASSWORD)
typ, data = imap.capability()
check(b"MULTIAPPEND" in data[0].split(), f"MULTIAPPEND advertised: {data}")

args = b" ".join(
    [
        b"INBOX",
        b"(\\Seen)",
        literal_plus(message(1)),
        b'"26-Nov-2026 10:00:00 +0000"',
        literal_plus(message(2)),
        literal_plus(message(3)),
    ]
)
typ, data = imap._simple_command("APPEND", args.decode())
check(typ == "OK", f"MULTIAPPEND: {typ} {data}")
m = re.match(rb"\[APPENDUID (\d+) 1:3\]", data[0])
check(m is not None, f"APPENDUID with the uid-set 1:3: {data}")

typ, data = imap.select("INBOX")
check(data == [b"3"], f"three messages: {data}")
typ, data = imap.fetch("1:3", "(FLAGS BODY.PEEK[TEXT])")
texts = [part[1] for part in data if isinstance(part, tuple)]
check(
    texts == [b"message number %d\r\n" % n for n in (1, 2, 3)],
    f"the bodies in order: {texts}",
)
check(b"\\Seen" in data[0][0], f"the first is \\Seen: {data[0][0]}")

typ, data = imap._simple_command(
    "APPEND", (b"Nope " + literal_plus(message(4)) + b" " + literal_plus(message(5))).decode()
)
check(typ == "NO" and b"TRYCREATE" in data[0], f"no such mailbox: {typ} {data}")
typ, data = imap.status("INBOX", "(MESSAGES)")
check(b"MESSAGES 3" in data[0], f"still three: {data}")

imap.logout()
print("imap_multiappend: all checks passed")
