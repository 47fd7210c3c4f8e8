#!/usr/bin/env python3
"""Python's imaplib against Mailroom's CREATE-SPECIAL-USE (RFC 6154 §3).

imaplib's create() takes only a name, so the USE parameter goes through its generic command.
Checks the capability, that a mailbox created with USE (\\Junk) is listed with \\Junk, and
that a special use another mailbox has is refused with [USEATTR].

Environment: IMAP_HOST, IMAP_PORT, IMAP_USER, IMAP_PASSWORD. Exits non-zero on a surprise.
"""

import imaplib

from imapcheck import HOST, PORT, USER, PASSWORD, check


imap = imaplib.IMAP4(HOST, PORT)
imap.login(USER, PASSWORD)
typ, data = imap.capability()
check(b"CREATE-SPECIAL-USE" in data[0].split(), f"CREATE-SPECIAL-USE advertised: {data}")

typ, data = imap.delete("Junk")
check(typ == "OK", f"DELETE Junk: {typ} {data}")
typ, data = imap._simple_command("CREATE", "Spam", "(USE (\\Junk))")
check(typ == "OK", f"CREATE Spam (USE (\\Junk)): {typ} {data}")
typ, data = imap.list('""', "Spam")
check(data == [b'(\\HasNoChildren \\Junk) "/" "Spam"'], f"LIST shows \\Junk: {data}")

typ, data = imap._simple_command("CREATE", "Spam2", "(USE (\\Junk))")
check(typ == "NO" and data[0].startswith(b"[USEATTR]"), f"a second \\Junk: {typ} {data}")
typ, data = imap.list('""', "Spam2")
check(data == [None], f"Spam2 not created: {data}")

imap.logout()
print("imap_special_use: all checks passed")
