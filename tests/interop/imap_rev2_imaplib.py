#!/usr/bin/env python3
"""Python's imaplib speaking IMAP4rev2 (RFC 9051) to Mailroom after ENABLE IMAP4rev2.

imaplib sends the commands and collects the untagged responses by name, so this checks the
rev2 forms as a client library sees them: the capability, ENABLED, SELECT without RECENT and
with the mailbox's LIST line, FETCH FLAGS without \\Recent, SEARCH answered with ESEARCH,
UTF-8 mailbox names in CREATE/LIST/STATUS/APPEND/SELECT, and the removed RECENT refused;
and LITERAL- advertised before login, LITERAL+ after.

Environment: IMAP_HOST, IMAP_PORT, IMAP_USER, IMAP_PASSWORD (the INBOX holds one message).
Exits non-zero with a message on the first surprise.
"""

import imaplib

from imapcheck import HOST, PORT, USER, PASSWORD, check, ok


M = imaplib.IMAP4(HOST, PORT)
# LITERAL- before login (RFC 7888; RFC 9051 makes it part of rev2), LITERAL+ after.
check("LITERAL-" in M.capabilities and "LITERAL+" not in M.capabilities,
      f"LITERAL- before login: {M.capabilities}")
ok(M.login(USER, PASSWORD), "LOGIN")
caps = ok(M.capability(), "CAPABILITY after login")[0].decode().upper().split()
check("LITERAL+" in caps and "LITERAL-" not in caps, f"LITERAL+ after login: {caps}")
check("IMAP4REV2" in M.capabilities, f"IMAP4rev2 advertised: {M.capabilities}")
data = ok(M._simple_command("ENABLE", "IMAP4rev2"), "ENABLE IMAP4rev2")
typ, enabled = M._untagged_response("OK", data, "ENABLED")
check(enabled == [b"IMAP4rev2"], f"ENABLED IMAP4rev2: {enabled!r}")

data = ok(M.select("INBOX"), "SELECT INBOX")
check(data == [b"1"], f"EXISTS 1: {data!r}")
check("RECENT" not in M.untagged_responses, f"no RECENT: {M.untagged_responses!r}")
listed = M.untagged_responses.pop("LIST", [])
check(listed == [b'(\\HasNoChildren) "/" "INBOX"'], f"SELECT's LIST line: {listed!r}")
M.untagged_responses.clear()

data = ok(M.fetch("1", "(FLAGS)"), "FETCH FLAGS")
check(data == [b"1 (FLAGS ())"], f"no \\Recent: {data!r}")

# SEARCH: the answer is an ESEARCH response, not SEARCH.
typ, data = M._simple_command("SEARCH", "ALL")
check(typ == "OK", f"SEARCH ALL -> {typ}")
esearch = M.untagged_responses.pop("ESEARCH", [])
check(
    len(esearch) == 1 and esearch[0].endswith(b") ALL 1"),
    f"ESEARCH ... ALL 1: {esearch!r}",
)
check("SEARCH" not in M.untagged_responses, "no SEARCH response")
typ, data = M._simple_command("UID", "SEARCH", "SUBJECT", "nothing-like-this")
check(typ == "OK", f"UID SEARCH -> {typ}")
esearch = M.untagged_responses.pop("ESEARCH", [])
check(
    len(esearch) == 1 and esearch[0].endswith(b") UID"),
    f"empty UID ESEARCH: {esearch!r}",
)

# RECENT is not IMAP4rev2.
try:
    M.status("INBOX", "(RECENT)")
    check(False, "STATUS RECENT refused")
except imaplib.IMAP4.error as e:
    check("not part of IMAP4rev2" in str(e), f"STATUS RECENT refused: {e}")

# UTF-8 mailbox names, sent as they are: imaplib sends UTF-8 once UTF8=ACCEPT is enabled,
# and IMAP4rev2 names are UTF-8 the same way.
M._encoding = "utf-8"
name = "Entwürfe €"
quoted = f'"{name}"'
ok(M.create(quoted), "CREATE a UTF-8 name")
typ, data = M.list('""', '"Entw*"')
check(typ == "OK" and data[0][1] == name.encode(), f"LIST shows it in UTF-8: {data!r}")
message = b"Subject: utf-8 folder\r\n\r\nhello\r\n"
ok(M.append(quoted, None, None, message), "APPEND there")
typ, data = M.status(quoted, "(MESSAGES)")
check(typ == "OK" and data[-1].endswith(b"(MESSAGES 1)"), f"STATUS MESSAGES 1: {data!r}")
data = ok(M.select(quoted), "SELECT it")
check(data == [b"1"], f"EXISTS 1: {data!r}")
ok(M.close(), "CLOSE")
ok(M.delete(quoted), "DELETE it")
typ, data = M.logout()
check(typ == "BYE", f"LOGOUT -> {typ} {data!r}")
print("all rev2 checks passed")
