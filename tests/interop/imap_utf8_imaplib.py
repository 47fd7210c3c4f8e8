#!/usr/bin/env python3
"""Python's imaplib with UTF8=ACCEPT (RFC 6855) against Mailroom.

imaplib.enable("UTF8=ACCEPT") switches imaplib to sending UTF-8; CREATE, LIST, STATUS and
SELECT of a UTF-8 mailbox name go through its ordinary methods. imaplib's append() wraps the
message in "UTF8 (...)" inside an ordinary literal once UTF-8 is enabled, which is not the
RFC 6855 form (the data item is UTF8 followed by a literal8 in parentheses), so the APPEND is
written by hand on imaplib's connection.

Environment: IMAP_HOST, IMAP_PORT, IMAP_USER, IMAP_PASSWORD. Exits non-zero with a message on
the first surprise.
"""

import imaplib

from imapcheck import HOST, PORT, USER, PASSWORD, check, ok


M = imaplib.IMAP4(HOST, PORT)
ok(M.login(USER, PASSWORD), "LOGIN")
caps = ok(M.capability(), "CAPABILITY")[-1].split()
check(b"UTF8=ACCEPT" in caps, f"UTF8=ACCEPT advertised: {caps!r}")
ok(M.enable("UTF8=ACCEPT"), "ENABLE UTF8=ACCEPT")
check(M.utf8_enabled, "imaplib sends UTF-8 now")

name = "Größe/日本語"
quoted = f'"{name}"'
ok(M.create(quoted), "CREATE a UTF-8 name")
typ, data = M.list('""', '"Gr*"')
names = [d[1] for d in data if isinstance(d, tuple)]
check(typ == "OK" and name.encode() in names, f"LIST shows it in UTF-8: {data!r}")

message = "Subject: Grüße aus Köln\r\nFrom: Jörg <jorg@example.de>\r\n\r\nHallo\r\n".encode()
tag = M._new_tag()
M.send(tag + b' APPEND ' + quoted.encode() + b' (\\Seen) UTF8 (~{%d+}\r\n' % len(message))
M.send(message + b")\r\n")
typ, data = M._command_complete("APPEND", tag)
check(typ == "OK" and b"APPENDUID" in data[0], f"APPEND UTF8 (literal8) -> {typ} {data!r}")

typ, data = M.status(quoted, "(MESSAGES)")
check(typ == "OK" and data[-1].endswith(b"(MESSAGES 1)"), f"STATUS MESSAGES 1: {data!r}")
data = ok(M.select(quoted), "SELECT it")
check(data == [b"1"], f"EXISTS 1: {data!r}")
typ, data = M.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
check(
    typ == "OK" and data[0][1] == "Subject: Grüße aus Köln\r\n\r\n".encode(),
    f"the header as stored: {data!r}",
)
typ, data = M.search(None, "SUBJECT", '"grüße"')
check(typ == "OK" and data == [b"1"], f"SEARCH SUBJECT in UTF-8: {data!r}")
ok(M.close(), "CLOSE")
ok(M.delete(quoted), "DELETE it")
typ, data = M.logout()
check(typ == "BYE", f"LOGOUT -> {typ} {data!r}")
print("all UTF8=ACCEPT checks passed")
