#!/usr/bin/env python3
"""Python's imaplib against Mailroom's search extensions, with raw commands as a client
library sends them: substring SEARCH (BODY/TEXT inside words, any header field), SEARCHRES
(SEARCH RETURN (SAVE), then $ in FETCH, UID STORE, SEARCH, UID COPY), ESORT (SORT RETURN)
and CONTEXT=SEARCH/SORT (PARTIAL, UPDATE, CANCELUPDATE).

The test (tests/it/imap/search.rs) delivers five messages first: "report N" from
sN@example.net, an `X-Ticket: QZ-N0N` header, a body "line asdfghjklN end" and N*100 bytes
of padding, so SIZE sorts them 1..5.

Environment: IMAP_HOST, IMAP_PORT, IMAP_USER, IMAP_PASSWORD. Exits non-zero with a message
on the first surprise.
"""

import imaplib

from imapcheck import HOST, PORT, USER, PASSWORD, check, ok


def untagged(imap, name):
    """The untagged responses `name` of the last command (imaplib keeps them by name)."""
    typ, data = imap.response(name)
    return [d.decode() if isinstance(d, bytes) else d for d in (data or []) if d is not None]


imap = imaplib.IMAP4(HOST, PORT)
ok(imap.login(USER, PASSWORD), "LOGIN")
caps = ok(imap.capability(), "CAPABILITY")[0].decode().split()
check("SEARCHRES" in caps and "ESORT" in caps and "ESEARCH" in caps, f"capabilities {caps}")
ok(imap.select("INBOX"), "SELECT")

# Substring search (RFC 3501 §6.4.4): inside a word, any case, every header field.
data = ok(imap.search(None, "BODY", "SDFGHJKL3"), "SEARCH BODY inside a word")
check(data == [b"3"], f"BODY SDFGHJKL3 -> {data}")
data = ok(imap.uid("SEARCH", "TEXT", "z-404"), "UID SEARCH TEXT in an X- header")
check(data == [b"4"], f"TEXT z-404 -> {data}")
data = ok(imap.search(None, "TEXT", "ender 2"), "SEARCH TEXT in From:")
check(data == [b"2"], f"TEXT 'ender 2' -> {data}")
data = ok(imap.search(None, "BODY", "ticket"), "SEARCH BODY not in the header")
check(data == [b""], f"BODY ticket -> {data}")

# SEARCHRES: save, then use $.
ok(imap._simple_command("SEARCH", "RETURN", "(SAVE)", "OR", "SUBJECT", '"report 2"',
                        "SUBJECT", '"report 4"'), "SEARCH RETURN (SAVE)")
check(untagged(imap, "ESEARCH") == [], "SAVE alone answers no ESEARCH")
data = ok(imap.fetch("$", "(UID)"), "FETCH $")
check(data == [b"2 (UID 2)", b"4 (UID 4)"], f"FETCH $ -> {data}")
ok(imap.uid("STORE", "$", "+FLAGS", "(\\Flagged)"), "UID STORE $")
data = ok(imap.search(None, "FLAGGED"), "SEARCH FLAGGED")
check(data == [b"2 4"], f"FLAGGED -> {data}")
data = ok(imap.search(None, "NOT", "$"), "SEARCH NOT $")
check(data == [b"1 3 5"], f"NOT $ -> {data}")
ok(imap.create("Saved"), "CREATE")
typ, data = imap.uid("COPY", "$", "Saved")
check(typ == "OK", f"UID COPY $ -> {typ} {data}")
ok(imap.select("Saved"), "SELECT Saved")
data = ok(imap.search(None, "$"), "SEARCH $ after SELECT")
check(data == [b""], f"$ is empty after SELECT -> {data}")
data = ok(imap.search(None, "ALL"), "SEARCH ALL in Saved")
check(data == [b"1 2"], f"Saved holds the copies -> {data}")
ok(imap.select("INBOX"), "SELECT INBOX")

# ESORT: SORT RETURN answered with ESEARCH.
ok(imap._simple_command("SORT", "RETURN", "(MIN MAX COUNT ALL)", "(REVERSE SIZE)", "UTF-8",
                        "ALL"), "SORT RETURN")
esearch = untagged(imap, "ESEARCH")
check(len(esearch) == 1 and esearch[0].endswith("MIN 5 MAX 1 COUNT 5 ALL 5,4,3,2,1"),
      f"ESORT -> {esearch}")
ok(imap._simple_command("UID", "SORT", "RETURN", "(ALL)", "(SIZE)", "UTF-8", "2:4"),
   "UID SORT RETURN")
esearch = untagged(imap, "ESEARCH")
check(len(esearch) == 1 and esearch[0].endswith("UID ALL 2:4"), f"UID ESORT -> {esearch}")

# CONTEXT=SEARCH/SORT (RFC 5267 §4): PARTIAL, then a result kept up to date until
# CANCELUPDATE.
check("CONTEXT=SEARCH" in caps and "CONTEXT=SORT" in caps, f"capabilities {caps}")
ok(imap._simple_command("SORT", "RETURN", "(PARTIAL 2:3)", "(REVERSE SIZE)", "UTF-8", "ALL"),
   "SORT RETURN (PARTIAL 2:3)")
esearch = untagged(imap, "ESEARCH")
check(len(esearch) == 1 and esearch[0].endswith("PARTIAL (2:3 4,3)"), f"PARTIAL -> {esearch}")
tag = imap._command("UID", "SEARCH", "RETURN", "(ALL UPDATE)", "FLAGGED")
ok(imap._command_complete("UID", tag), "UID SEARCH RETURN (ALL UPDATE)")
esearch = untagged(imap, "ESEARCH")
check(len(esearch) == 1 and esearch[0].endswith("UID ALL 2,4"), f"UPDATE answer -> {esearch}")
ok(imap.uid("STORE", "5", "+FLAGS", "(\\Flagged)"), "UID STORE 5 +FLAGS")
ok(imap.noop(), "NOOP")
esearch = untagged(imap, "ESEARCH")
check(any(e.endswith("UID ADDTO (0 5)") for e in esearch), f"ADDTO after a change -> {esearch}")
imaplib.Commands["CANCELUPDATE"] = ("SELECTED",)
ok(imap._simple_command("CANCELUPDATE", '"' + tag.decode() + '"'), "CANCELUPDATE")
ok(imap.uid("STORE", "5", "-FLAGS", "(\\Flagged)"), "UID STORE 5 -FLAGS")
ok(imap.noop(), "NOOP")
check(untagged(imap, "ESEARCH") == [], "no updates after CANCELUPDATE")

ok(imap.delete("Saved"), "DELETE Saved")
imap.logout()
print("all passed")
