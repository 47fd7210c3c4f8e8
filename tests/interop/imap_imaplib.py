#!/usr/bin/env python3
"""Python's imaplib against Mailroom's IMAP server.

Covers login (STARTTLS on the plain port, and IMAP4_SSL), LIST, CREATE, SELECT, APPEND,
FETCH of every data item, SEARCH, STORE, COPY, MOVE, EXPUNGE, and IDLE (imaplib of Python
3.11 has no idle(): the command is sent by hand and a second connection APPENDs meanwhile).

Environment: IMAP_HOST, IMAP_PORT, IMAPS_PORT, IMAP_USER, IMAP_PASSWORD, IMAP_CAFILE.
Exits non-zero with a message on the first surprise.
"""

import imaplib
import os
import re
import socket
import ssl
import sys
import time

HOST = os.environ["IMAP_HOST"]
PORT = int(os.environ["IMAP_PORT"])
SSL_PORT = int(os.environ["IMAPS_PORT"])
USER = os.environ["IMAP_USER"]
PASSWORD = os.environ["IMAP_PASSWORD"]
CONTEXT = ssl.create_default_context(cafile=os.environ["IMAP_CAFILE"])

MESSAGE = (
    b"From: Alice <alice@example.net>\r\n"
    b"To: Bob <bob@example.org>\r\n"
    b"Subject: interop test\r\n"
    b"Date: Thu, 26 Nov 2026 10:00:00 +0000\r\n"
    b"Message-ID: <interop@example.net>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: multipart/alternative; boundary=zz\r\n"
    b"\r\n"
    b"--zz\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Plain words about pelicans.\r\n"
    b"--zz\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"\r\n"
    b"<p>HTML words about pelicans.</p>\r\n"
    b"--zz--\r\n"
)


def check(cond, what):
    if not cond:
        print("FAILED:", what)
        sys.exit(1)
    print("ok:", what)


def ok(result, what):
    typ, data = result
    check(typ == "OK", f"{what} -> {typ} {data!r}")
    return data


def login_starttls():
    m = imaplib.IMAP4(HOST, PORT)
    check("LOGINDISABLED" in m.capabilities, "LOGINDISABLED before STARTTLS")
    ok(m.starttls(ssl_context=CONTEXT), "STARTTLS")
    check("AUTH=PLAIN" in m.capabilities, "AUTH=PLAIN after STARTTLS")
    ok(m.login(USER, PASSWORD), "LOGIN after STARTTLS")
    return m


def main():
    m = login_starttls()
    caps = ok(m.capability(), "CAPABILITY")[0].decode()
    for cap in ["IDLE", "UIDPLUS", "MOVE", "CONDSTORE", "SPECIAL-USE", "NAMESPACE"]:
        check(cap in caps.split(), f"advertises {cap}")

    names = ok(m.list(), "LIST")
    check(any(b'"INBOX"' in n for n in names), "LIST shows INBOX")
    check(any(b"\\Sent" in n for n in names), "LIST shows special use")
    ok(m.create("Interop/Sub"), "CREATE Interop/Sub")
    names = ok(m.list('""', "Interop*"), "LIST Interop*")
    check(len(names) == 2 and b"\\HasChildren" in names[0], f"hierarchy {names!r}")

    ok(m.append("INBOX", "(\\Flagged)", imaplib.Time2Internaldate(time.time()), MESSAGE),
       "APPEND with flags and date")
    typ, data = m.select("INBOX")
    check(typ == "OK" and data[0] == b"1", f"SELECT INBOX: {data!r}")

    data = ok(m.fetch("1", "(FLAGS INTERNALDATE RFC822.SIZE UID)"), "FETCH FLAGS etc")
    line = data[0].decode()
    check("\\Flagged" in line and f"RFC822.SIZE {len(MESSAGE)}" in line and "UID 1" in line, line)
    data = ok(m.fetch("1", "(ENVELOPE)"), "FETCH ENVELOPE")
    check(b'"interop test"' in data[0] and b'"<interop@example.net>"' in data[0], repr(data))
    data = ok(m.fetch("1", "(BODYSTRUCTURE)"), "FETCH BODYSTRUCTURE")
    check(b'"alternative"' in data[0] and b'"html"' in data[0], repr(data))
    data = ok(m.fetch("1", "(BODY)"), "FETCH BODY")
    check(b"BODY ((" in data[0], repr(data))
    data = ok(m.fetch("1", "(BODY.PEEK[])"), "FETCH BODY.PEEK[]")
    check(data[0][1] == MESSAGE, "BODY[] is the message byte for byte")
    data = ok(m.fetch("1", "(BODY.PEEK[HEADER])"), "FETCH BODY.PEEK[HEADER]")
    check(data[0][1].startswith(b"From: Alice") and data[0][1].endswith(b"\r\n\r\n"), "HEADER")
    data = ok(m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])"), "HEADER.FIELDS")
    check(data[0][1] == b"Subject: interop test\r\n\r\n", repr(data))
    data = ok(m.fetch("1", "(BODY.PEEK[HEADER.FIELDS.NOT (SUBJECT)])"), "HEADER.FIELDS.NOT")
    check(b"Subject" not in data[0][1] and b"From:" in data[0][1], repr(data))
    data = ok(m.fetch("1", "(BODY.PEEK[1])"), "FETCH BODY.PEEK[1]")
    check(data[0][1] == b"Plain words about pelicans.", repr(data))
    data = ok(m.fetch("1", "(BODY.PEEK[2.MIME])"), "FETCH BODY.PEEK[2.MIME]")
    check(data[0][1] == b"Content-Type: text/html; charset=utf-8\r\n\r\n", repr(data))
    data = ok(m.fetch("1", "(BODY.PEEK[TEXT]<0.4>)"), "FETCH partial TEXT")
    check(data[0][1] == b"--zz", repr(data))
    data = ok(m.fetch("1", "(RFC822.HEADER)"), "FETCH RFC822.HEADER")
    check(data[0][1].endswith(b"\r\n\r\n"), repr(data))
    data = ok(m.fetch("1", "(RFC822.TEXT)"), "FETCH RFC822.TEXT")
    check(data[0][1].startswith(b"--zz"), repr(data))
    data = ok(m.fetch("1", "(RFC822)"), "FETCH RFC822 (sets \\Seen)")
    check(data[0][1] == MESSAGE, "RFC822 is the message")
    data = ok(m.fetch("1", "(FLAGS)"), "FETCH FLAGS")
    check(b"\\Seen" in data[0], repr(data))
    data = ok(m.uid("FETCH", "1:*", "(FLAGS)"), "UID FETCH")
    check(b"UID 1" in data[0], repr(data))

    for query, expect in [
        ("ALL", b"1"),
        ("SUBJECT interop", b"1"),
        ("BODY pelicans", b"1"),
        ("TEXT alice", b"1"),
        ("FROM alice", b"1"),
        ("FLAGGED SEEN", b"1"),
        ("UNSEEN", b""),
        ("BODY penguins", b""),
    ]:
        data = ok(m.search(None, query), f"SEARCH {query}")
        check(data[0] == expect, f"SEARCH {query} -> {data!r}")
    data = ok(m.uid("SEARCH", None, "ALL"), "UID SEARCH")
    check(data[0] == b"1", repr(data))

    ok(m.store("1", "-FLAGS", "(\\Flagged)"), "STORE -FLAGS")
    data = ok(m.store("1", "+FLAGS", "($Interop)"), "STORE +FLAGS keyword")
    check(b"$Interop" in data[0] and b"\\Flagged" not in data[0], repr(data))

    typ, data = m.copy("1", "Interop/Sub")
    check(typ == "OK" and re.match(rb"\[COPYUID \d+ 1 1\]", data[0]) is not None,
          f"COPY with COPYUID: {data!r}")
    typ, data = m._simple_command("MOVE", "1", "Interop")
    check(typ == "OK", f"MOVE {data!r}")
    typ, data = m.select("Interop")
    check(data[0] == b"1", f"the moved message is in Interop: {data!r}")
    ok(m.store("1", "+FLAGS", "(\\Deleted)"), "STORE \\Deleted")
    data = ok(m.expunge(), "EXPUNGE")
    check(data[0] == b"1", f"EXPUNGE reports message 1: {data!r}")
    typ, data = m.select("Interop/Sub")
    check(data[0] == b"1", f"the copy stays in Interop/Sub: {data!r}")
    ok(m.status("INBOX", "(MESSAGES UIDNEXT UNSEEN)"), "STATUS")

    # IDLE: this connection waits; a second one (IMAP4_SSL) appends to INBOX.
    m.select("INBOX")
    tag = m._new_tag().decode()
    m.send(f"{tag} IDLE\r\n".encode())
    check(m.readline().startswith(b"+"), "IDLE continuation")
    other = imaplib.IMAP4_SSL(HOST, SSL_PORT, ssl_context=CONTEXT)
    ok(other.login(USER, PASSWORD), "LOGIN over IMAP4_SSL")
    started = time.time()
    ok(other.append("INBOX", None, None, b"Subject: during idle\r\n\r\nhi\r\n"), "APPEND during IDLE")
    m.sock.settimeout(5)
    line = m.readline()
    check(re.match(rb"\* 1 EXISTS", line) is not None, f"IDLE sees EXISTS: {line!r}")
    check(time.time() - started < 2, "within a second or so")
    m.send(b"DONE\r\n")
    while True:
        line = m.readline()
        if line.startswith(tag.encode()):
            break
    check(b"OK" in line, f"IDLE terminated: {line!r}")
    other.logout()

    ok(m.delete("Interop/Sub"), "DELETE Interop/Sub")
    ok(m.delete("Interop"), "DELETE Interop")
    m.close()
    m.logout()
    print("imaplib interop: all good")


if __name__ == "__main__":
    try:
        main()
    except (imaplib.IMAP4.error, OSError, socket.timeout) as e:
        print("FAILED with exception:", repr(e))
        sys.exit(1)
