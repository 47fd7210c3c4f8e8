#!/usr/bin/env python3
"""Python's imaplib against Mailroom's METADATA (RFC 5464), in the raw forms Delta Chat uses:
the capability, SETMETADATA of the server entry /private/devicetoken, GETMETADATA of it, a
mailbox comment set and removed, and the MAXSIZE response code. imaplib has getannotation()
and setannotation() (the older ANNOTATEMORE draft) but no METADATA commands, so they go
through its generic `_simple_command` after registering them, as a client library would.

Environment: IMAP_HOST, IMAP_PORT, IMAP_USER, IMAP_PASSWORD. Exits non-zero on a surprise.
"""

import imaplib

from imapcheck import HOST, PORT, USER, PASSWORD, check


imaplib.Commands["GETMETADATA"] = ("AUTH", "SELECTED")
imaplib.Commands["SETMETADATA"] = ("AUTH", "SELECTED")


def metadata(imap, *args):
    typ, data = imap._simple_command("GETMETADATA", *args)
    check(typ == "OK", f"GETMETADATA {args}: {typ} {data}")
    return imap._untagged_response(typ, data, "METADATA")


imap = imaplib.IMAP4(HOST, PORT)
imap.login(USER, PASSWORD)
typ, data = imap.capability()
caps = data[0].split()
check(b"METADATA" in caps, f"METADATA advertised after login: {caps}")
check(b"METADATA-SERVER" in caps, "METADATA-SERVER advertised")

typ, data = imap._simple_command(
    "SETMETADATA", '""', '(/private/devicetoken "openpgp-token:0123456789abcdef")'
)
check(typ == "OK", f"SETMETADATA devicetoken: {typ} {data}")
typ, data = metadata(imap, '""', "/private/devicetoken")
check(
    data == [b'"" (/private/devicetoken "openpgp-token:0123456789abcdef")'],
    f"the token back: {data}",
)

typ, data = imap._simple_command("SETMETADATA", "INBOX", '(/shared/comment "Inbox of tests")')
check(typ == "OK", f"SETMETADATA comment: {typ} {data}")
typ, data = metadata(imap, "INBOX", "/shared/comment")
check(data == [b'"INBOX" (/shared/comment "Inbox of tests")'], f"the comment back: {data}")
# MAXSIZE leaves the value out; the tagged OK says how large it was.
typ, data = imap._simple_command("GETMETADATA", "(MAXSIZE 5)", "INBOX", "/shared/comment")
check(typ == "OK", "GETMETADATA with MAXSIZE is OK")
check(
    data == [b"[METADATA LONGENTRIES 14] GETMETADATA completed"],
    f"LONGENTRIES 14: {data}",
)
# imaplib files the tagged response's code under its name too: only it, no METADATA data.
leftover = imap.untagged_responses.pop("METADATA", None)
check(leftover == [b"LONGENTRIES 14"], f"no value sent: {leftover}")

typ, data = imap._simple_command("SETMETADATA", "INBOX", "(/shared/comment NIL)")
check(typ == "OK", "SETMETADATA NIL removes")
typ, data = metadata(imap, "INBOX", "/shared/comment")
check(data == [b'"INBOX" (/shared/comment NIL)'], f"removed: {data}")

try:
    imap._simple_command("SETMETADATA", "INBOX", '(/private/bad* "x")')
    check(False, "a * in an entry name is refused")
except imaplib.IMAP4.error as e:
    check("BAD" in str(e) or "entry" in str(e), f"a * in an entry name is BAD: {e}")

imap.logout()
print("imap_metadata: all checks passed")
