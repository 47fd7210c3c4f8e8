#!/usr/bin/env python3
"""Python's imaplib using UNAUTHENTICATE (RFC 8437) against Mailroom: log in, select, return
to the not authenticated state on the same connection, log in again.

imaplib has no method for the command: it is registered in imaplib.Commands with the states
it is valid in, as a client library extension would do, and the client's state is set back to
NONAUTH after the OK.

Environment: IMAP_HOST, IMAP_PORT, IMAP_USER, IMAP_PASSWORD. Exits non-zero with a message on
the first surprise.
"""

import imaplib

from imapcheck import HOST, PORT, USER, PASSWORD, check, ok


imaplib.Commands["UNAUTHENTICATE"] = ("AUTH", "SELECTED")

M = imaplib.IMAP4(HOST, PORT)
check("UNAUTHENTICATE" not in M.capabilities, f"not before login: {M.capabilities}")
ok(M.login(USER, PASSWORD), "LOGIN")
caps = ok(M.capability(), "CAPABILITY")[-1].split()
check(b"UNAUTHENTICATE" in caps, f"advertised after login: {caps!r}")
ok(M.select("INBOX"), "SELECT INBOX")
ok(M._simple_command("UNAUTHENTICATE"), "UNAUTHENTICATE")
# imaplib still believes it is logged in: the server is what refuses.
try:
    M._simple_command("NAMESPACE")
    check(False, "NAMESPACE refused before a new login")
except imaplib.IMAP4.error as e:
    check("only valid after login" in str(e), f"NAMESPACE refused: {e}")
M.state = "NONAUTH"
ok(M.login(USER, PASSWORD), "LOGIN again on the same connection")
ok(M.select("INBOX"), "SELECT INBOX again")
typ, data = M.logout()
check(typ == "BYE", f"LOGOUT -> {typ} {data!r}")
print("all UNAUTHENTICATE checks passed")
