#!/usr/bin/env python3
"""Python's imaplib signing in with an app password (issue 19) to an account with two-factor
sign-in on: the app password works as it was shown (with its dashes) and typed in capitals
without them; the account password is refused with AUTHENTICATIONFAILED and a hint to use an
app password.

Environment: IMAP_HOST, IMAP_PORT, IMAP_USER, IMAP_PASSWORD (the account password),
IMAP_APP_PASSWORD. Exits non-zero with a message on the first surprise.
"""

import os
import imaplib

from imapcheck import HOST, PORT, USER, PASSWORD, check, ok

APP_PASSWORD = os.environ["IMAP_APP_PASSWORD"]

M = imaplib.IMAP4(HOST, PORT)
ok(M.login(USER, APP_PASSWORD), "LOGIN with the app password as shown")
data = ok(M.select("INBOX"), "SELECT INBOX")
check(data == [b"1"], f"one message in INBOX: {data!r}")
typ, data = M.logout()
check(typ == "BYE", f"LOGOUT -> {typ} {data!r}")

M = imaplib.IMAP4(HOST, PORT)
ok(M.login(USER, APP_PASSWORD.replace("-", "").upper()), "LOGIN with it typed in capitals")
M.logout()

M = imaplib.IMAP4(HOST, PORT)
try:
    M.login(USER, PASSWORD)
    check(False, "the account password is refused")
except imaplib.IMAP4.error as e:
    text = str(e)
    check("AUTHENTICATIONFAILED" in text and "app password" in text, f"refused with a hint: {text}")
M.logout()
print("all app password checks passed")
