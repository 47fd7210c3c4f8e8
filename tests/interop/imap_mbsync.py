#!/usr/bin/env python3
"""mbsync (Debian's isync) against Mailroom's IMAP server: a two-way sync of every mailbox.

The account arrives filled (the Rust test delivers 500 messages to INBOX and a few to
"Lists"). The script:
1. pulls everything into a local Maildir over IMAPS, and checks both sides are equal;
2. changes both sides: on the server (imaplib over STARTTLS) it expunges some messages, marks
   others \\Deleted without expunging, sets and clears flags (and the keyword $Forwarded,
   which mbsync maps to the Maildir flag P), appends new ones (one large) and
   moves some to another mailbox; in the Maildir it deletes files, marks files trashed (T),
   changes flags by renaming, adds new messages (one large) and two nested folders;
3. syncs again (Sync All, Expunge Both, this time over STARTTLS) and compares both sides with
   what the changes must have produced: which messages (by Message-ID) are in which mailbox,
   with exactly which flags, and the large messages byte for byte (line endings aside);
4. syncs a third time and checks nothing moved (the second sync left a consistent state).

Environment: IMAP_HOST, IMAP_PORT, IMAPS_PORT, IMAP_USER, IMAP_PASSWORD, IMAP_CAFILE,
MBSYNC_DIR (an empty directory for the Maildir, the config and mbsync's state).
Exits non-zero with a message on the first surprise.
"""

import imaplib
import os
import re
import ssl
import subprocess
import sys
import time

HOST = os.environ["IMAP_HOST"]
PORT = int(os.environ["IMAP_PORT"])
SSL_PORT = int(os.environ["IMAPS_PORT"])
USER = os.environ["IMAP_USER"]
PASSWORD = os.environ["IMAP_PASSWORD"]
CAFILE = os.environ["IMAP_CAFILE"]
DIR = os.environ["MBSYNC_DIR"]
MAIL = os.path.join(DIR, "mail")
CONTEXT = ssl.create_default_context(cafile=CAFILE)

# IMAP flags and their Maildir letters (the letters sort in this order too). mbsync 1.4 maps
# the keyword $Forwarded to P ("passed").
FLAG_LETTERS = {
    "\\Draft": "D",
    "\\Flagged": "F",
    "$Forwarded": "P",
    "\\Answered": "R",
    "\\Seen": "S",
    "\\Deleted": "T",
}
LETTER_FLAGS = {v: k for k, v in FLAG_LETTERS.items()}

CONFIG = """\
IMAPAccount mailroom
Host {host}
Port {port}
User {user}
Pass {password}
SSLType {ssltype}
CertificateFile {cafile}
SystemCertificates no
AuthMechs PLAIN
Timeout 60

IMAPStore remote
Account mailroom

MaildirStore local
Path {mail}/
Inbox {mail}/INBOX
SubFolders Verbatim

Channel everything
Far :remote:
Near :local:
Patterns *
Sync All
Create Both
Expunge Both
SyncState *
CopyArrivalDate yes
"""


def check(cond, what, quiet=False):
    if not cond:
        print("FAILED:", what)
        sys.exit(1)
    if not quiet:
        print("ok:", what)


def ok(result, what):
    typ, data = result
    shown = repr(data)
    check(typ == "OK", f"{what} -> {typ} {shown[:300]}{'...' if len(shown) > 300 else ''}")
    return data


def mbsync(ssltype, port, what):
    """Runs `mbsync -a`; fails the test with its output unless it exits 0."""
    config = os.path.join(DIR, "mbsyncrc")
    with open(config, "w") as f:
        f.write(CONFIG.format(host=HOST, port=port, user=USER, password=PASSWORD,
                              ssltype=ssltype, cafile=CAFILE, mail=MAIL))
    started = time.time()
    run = subprocess.run(["mbsync", "-c", config, "-a"], capture_output=True, text=True,
                         timeout=600, stdin=subprocess.DEVNULL)
    took = time.time() - started
    output = (run.stdout + run.stderr).strip()
    print(output)
    check(run.returncode == 0, f"mbsync {what} over {ssltype} ({took:.1f} s)")
    # mbsync reports problems it worked around (a server reply it did not like, a message it
    # could not propagate) as warnings and still exits 0.
    check("Warning" not in output and "Error" not in output, f"no warnings: {output!r}")


def message_id(raw):
    m = re.search(rb"^Message-ID:\s*(<[^>\r\n]*>)", raw, re.IGNORECASE | re.MULTILINE)
    return m.group(1).decode() if m else None


# --- The two sides, as {mailbox: {message-id: set of flags}} --------------------------------

def maildir_folders():
    """Local folder name -> path (INBOX, and every Maildir under MAIL)."""
    folders = {}
    for root, dirs, _ in os.walk(MAIL):
        if {"cur", "new", "tmp"} <= set(dirs):
            name = os.path.relpath(root, MAIL)
            folders[name] = root
    return folders


def maildir_files(path):
    """(subdir, file name, message-id, flags) of every message in a Maildir folder."""
    out = []
    for sub in ("new", "cur"):
        for name in sorted(os.listdir(os.path.join(path, sub))):
            with open(os.path.join(path, sub, name), "rb") as f:
                mid = message_id(f.read())
            info = name.split(":2,", 1)[1] if ":2," in name else ""
            flags = {LETTER_FLAGS[c] for c in info if c in LETTER_FLAGS}
            out.append((sub, name, mid, flags))
    return out


def local_state():
    state = {}
    for folder, path in maildir_folders().items():
        messages = {}
        for _, name, mid_, flags in maildir_files(path):
            check(mid_ is not None and mid_ not in messages,
                  f"local {folder}: one file per Message-ID ({name}: {mid_})", quiet=True)
            messages[mid_] = flags
        state[folder] = messages
    return state


def server_mailbox(m, name):
    """{message-id: flags}, {message-id: uid} of one server mailbox (read-only)."""
    typ, data = m.select(f'"{name}"', readonly=True)
    check(typ == "OK", f"EXAMINE {name}: {data!r}")
    flags, uids = {}, {}
    if int(data[0]) == 0:
        return flags, uids
    data = ok(m.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"),
              f"FETCH {name}")
    for item in data:
        if not isinstance(item, tuple):
            continue
        meta, header = item
        uid = int(re.search(rb"UID (\d+)", meta).group(1))
        fl = re.search(rb"FLAGS \(([^)]*)\)", meta).group(1).decode().split()
        mid_ = message_id(header)
        check(mid_ is not None and mid_ not in flags,
              f"server {name}: one message per Message-ID (UID {uid}: {mid_})", quiet=True)
        flags[mid_] = {f for f in fl if f in FLAG_LETTERS}
        uids[mid_] = uid
    return flags, uids


def server_state(m):
    state = {}
    for line in ok(m.list(), "LIST"):
        match = re.match(rb'\(([^)]*)\) "/" (.*)$', line)
        check(match is not None, f"LIST line {line!r}")
        name = match.group(2).decode().strip('"')
        state[name] = server_mailbox(m, name)[0]
    return state


def compare(expected, what):
    server = imaplib.IMAP4_SSL(HOST, SSL_PORT, ssl_context=CONTEXT)
    ok(server.login(USER, PASSWORD), "LOGIN for the comparison")
    remote = server_state(server)
    server.logout()
    local = local_state()
    check(sorted(remote) == sorted(local),
          f"{what}: the same mailboxes on both sides ({sorted(remote)} / {sorted(local)})")
    for name in sorted(expected):
        exp, rem, loc = expected[name], remote.get(name, {}), local.get(name, {})
        for side, got in (("server", rem), ("Maildir", loc)):
            missing = sorted(set(exp) - set(got))
            extra = sorted(set(got) - set(exp))
            wrong = sorted(k for k in exp if k in got and got[k] != exp[k])
            check(not missing and not extra and not wrong,
                  f"{what}: {side} {name} has the expected {len(exp)} messages and flags "
                  f"(missing {missing[:5]}, extra {extra[:5]}, "
                  f"wrong flags {[(k, got[k], exp[k]) for k in wrong[:5]]})")
    check(sorted(expected) == sorted(remote), f"{what}: no unexpected mailbox")


# --- Changes --------------------------------------------------------------------------------

def mid(n):
    return f"<m{n:03}@mbsync.test>"


def new_message(tag, subject, eol="\r\n", body_lines=1):
    """A message; Maildir files use the local line ending (LF), IMAP CRLF."""
    lines = [f"From: Carol <carol@example.net>", "To: alice@localhost", f"Subject: {subject}",
             "Date: Fri, 27 Nov 2026 09:00:00 +0000", f"Message-ID: <{tag}@mbsync.test>", "",
             f"{subject}, written for the sync test."]
    lines += [f"line {i:07} of a long body, long enough to need many reads" for i in range(body_lines)]
    return (eol.join(lines) + eol).encode()


def change_server(expected):
    """Changes on the server, mirrored into `expected`."""
    m = imaplib.IMAP4(HOST, PORT)
    ok(m.starttls(ssl_context=CONTEXT), "STARTTLS")
    ok(m.login(USER, PASSWORD), "LOGIN")
    _, uids = server_mailbox(m, "INBOX")
    ok(m.select("INBOX"), "SELECT INBOX")
    inbox = expected["INBOX"]

    def uid_set(numbers):
        return ",".join(str(uids[mid(n)]) for n in numbers)

    # Expunged on the server: gone on both sides after the sync.
    gone = range(1, 11)
    ok(m.uid("STORE", uid_set(gone), "+FLAGS.SILENT", "(\\Deleted)"), "STORE \\Deleted 1-10")
    ok(m.expunge(), "EXPUNGE 1-10")
    # Marked \Deleted only: mbsync marks the local copies trashed, and Expunge Both removes
    # them from both sides.
    trashed = range(11, 16)
    ok(m.uid("STORE", uid_set(trashed), "+FLAGS.SILENT", "(\\Deleted)"), "STORE \\Deleted 11-15")
    for n in list(gone) + list(trashed):
        inbox.pop(mid(n))
    flagged = range(40, 60)
    ok(m.uid("STORE", uid_set(flagged), "+FLAGS.SILENT", "(\\Flagged)"), "STORE \\Flagged")
    for n in flagged:
        inbox[mid(n)].add("\\Flagged")
    unseen = [n for n in range(100, 150) if "\\Seen" in inbox[mid(n)]]
    check(len(unseen) > 5, "some of 100-149 were delivered \\Seen")
    ok(m.uid("STORE", uid_set(unseen), "-FLAGS.SILENT", "(\\Seen)"), "STORE -\\Seen")
    for n in unseen:
        inbox[mid(n)].discard("\\Seen")
    answered = range(150, 160)
    ok(m.uid("STORE", uid_set(answered), "FLAGS.SILENT", "(\\Answered \\Seen)"),
       "STORE FLAGS (replace)")
    for n in answered:
        inbox[mid(n)] = {"\\Answered", "\\Seen"}
    forwarded = range(160, 166)
    ok(m.uid("STORE", uid_set(forwarded), "+FLAGS.SILENT", "($Forwarded)"), "STORE $Forwarded")
    for n in forwarded:
        inbox[mid(n)].add("$Forwarded")
    for i, flags in enumerate(["", "(\\Seen)", "(\\Flagged \\Draft)"], 1):
        tag = f"server-new-{i}"
        # The last one is large (about 1.5 MB): mbsync fetches it in one literal.
        raw = new_message(tag, f"Server news {i}", body_lines=25000 if i == 3 else 1)
        ok(m.append("INBOX", flags or None, None, raw), f"APPEND {tag} ({len(raw)} bytes)")
        inbox[f"<{tag}@mbsync.test>"] = set(flags.strip("()").split())
    # Moved to another mailbox on the server: mbsync sees one vanish and one appear.
    moved = range(300, 305)
    typ, data = m.uid("MOVE", uid_set(moved), "Lists")
    check(typ == "OK", f"UID MOVE to Lists: {data!r}")
    for n in moved:
        expected["Lists"][mid(n)] = inbox.pop(mid(n))
    m.logout()


def rename_flags(path, sub, name, flags):
    """Gives a Maildir file new flags the way a mail reader does: by renaming it into cur."""
    base = name.split(":2,", 1)[0]
    letters = "".join(sorted(FLAG_LETTERS[f] for f in flags))
    os.rename(os.path.join(path, sub, name), os.path.join(path, "cur", f"{base}:2,{letters}"))


def change_local(expected):
    """Changes in the Maildir, mirrored into `expected`."""
    path = maildir_folders()["INBOX"]
    inbox = expected["INBOX"]
    files = {mid_: (sub, name, flags) for sub, name, mid_, flags in maildir_files(path)}
    for n in range(200, 210):
        sub, name, _ = files[mid(n)]
        os.unlink(os.path.join(path, sub, name))
        inbox.pop(mid(n))
    for n in range(210, 215):
        sub, name, flags = files[mid(n)]
        rename_flags(path, sub, name, flags | {"\\Deleted"})
        inbox.pop(mid(n))
    for n in range(220, 260):
        sub, name, flags = files[mid(n)]
        rename_flags(path, sub, name, flags | {"\\Seen"})
        inbox[mid(n)] = flags | {"\\Seen"}
    for n in range(260, 270):
        sub, name, flags = files[mid(n)]
        rename_flags(path, sub, name, {"\\Flagged"})
        inbox[mid(n)] = {"\\Flagged"}
    for n in range(170, 176):
        sub, name, flags = files[mid(n)]
        rename_flags(path, sub, name, flags | {"$Forwarded"})
        inbox[mid(n)] = flags | {"$Forwarded"}
    # New mail written by a local program: one unread in new/, one read and replied in cur/,
    # one large (about 2 MB: mbsync uploads it as one APPEND literal).
    stamp = int(time.time())
    for i, (sub, info, flags, size) in enumerate(
            [("new", "", set(), 1), ("cur", ":2,RS", {"\\Answered", "\\Seen"}, 1),
             ("new", "", set(), 35000)], 1):
        tag = f"local-new-{i}"
        with open(os.path.join(path, sub, f"{stamp}.M{i}P{os.getpid()}.test{info}"), "wb") as f:
            f.write(new_message(tag, f"Local news {i}", eol="\n", body_lines=size))
        inbox[f"<{tag}@mbsync.test>"] = flags
    # New local folders, one inside the other: mbsync creates them on the server (Create
    # Both) and uploads their mail.
    for name, flags in (("Projects", {"\\Flagged", "\\Seen"}), ("Projects/2026", set())):
        folder = os.path.join(MAIL, name)
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(folder, sub))
        tag = "local-" + name.replace("/", "-").lower()
        info = "".join(sorted(FLAG_LETTERS[f] for f in flags))
        with open(os.path.join(folder, "cur", f"{stamp}.M9P{os.getpid()}.test:2,{info}"),
                  "wb") as f:
            f.write(new_message(tag, f"Plans for {name}", eol="\n"))
        expected[name] = {f"<{tag}@mbsync.test>": flags}


def normalized(raw):
    """A message with LF line endings and without the X-TUID field mbsync adds to the copies
    it writes (its marker for finding a message again after an interrupted sync)."""
    text = raw.replace(b"\r\n", b"\n")
    return re.sub(rb"^X-TUID: [^\n]*\n", b"", text, count=1, flags=re.MULTILINE)


def compare_bodies(ids):
    """The Maildir copy and the server copy of each message are the same text."""
    path = maildir_folders()["INBOX"]
    local = {}
    for sub, name, mid_, _ in maildir_files(path):
        if mid_ in ids:
            with open(os.path.join(path, sub, name), "rb") as f:
                local[mid_] = f.read()
    server = imaplib.IMAP4_SSL(HOST, SSL_PORT, ssl_context=CONTEXT)
    ok(server.login(USER, PASSWORD), "LOGIN for the bodies")
    ok(server.select("INBOX", readonly=True), "EXAMINE INBOX")
    for id_ in ids:
        uids = ok(server.uid("SEARCH", None, "HEADER", "Message-ID", id_), f"SEARCH {id_}")
        check(len(uids[0].split()) == 1, f"one message {id_} on the server")
        data = ok(server.uid("FETCH", uids[0].decode(), "(BODY.PEEK[])"), f"FETCH {id_}")
        remote = data[0][1]
        check(b"\r\n" in remote and b"\n" not in remote.replace(b"\r\n", b""),
              f"{id_} has CRLF line endings on the server")
        check(id_ in local and normalized(remote) == normalized(local[id_]),
              f"{id_}: the same {len(remote)} bytes on both sides")
    server.logout()


def snapshot():
    """What a no-op sync must leave alone: local file names and server UIDs with flags."""
    local = {f: sorted(n for _, n, _, _ in maildir_files(p)) for f, p in maildir_folders().items()}
    server = imaplib.IMAP4_SSL(HOST, SSL_PORT, ssl_context=CONTEXT)
    ok(server.login(USER, PASSWORD), "LOGIN for the snapshot")
    remote = {}
    for name in sorted(local):
        flags, uids = server_mailbox(server, name)
        remote[name] = sorted((uids[k], sorted(v)) for k, v in flags.items())
    server.logout()
    return local, remote


def main():
    # mbsync creates folders under the Maildir root, not the root itself.
    os.makedirs(MAIL, exist_ok=True)
    server = imaplib.IMAP4_SSL(HOST, SSL_PORT, ssl_context=CONTEXT)
    ok(server.login(USER, PASSWORD), "LOGIN")
    expected = server_state(server)
    server.logout()
    check(len(expected["INBOX"]) == 500, "INBOX starts with 500 messages")

    mbsync("IMAPS", SSL_PORT, "first sync, pulling everything")
    compare(expected, "after the first sync")

    change_server(expected)
    change_local(expected)
    mbsync("STARTTLS", PORT, "second sync, both sides changed")
    compare(expected, "after the second sync")

    compare_bodies(["<server-new-3@mbsync.test>", "<local-new-3@mbsync.test>"])

    before = snapshot()
    mbsync("IMAPS", SSL_PORT, "third sync, nothing to do")
    check(snapshot() == before, "the third sync changed nothing")
    compare(expected, "after the third sync")
    print("mbsync interop: all good")


if __name__ == "__main__":
    try:
        main()
    except (imaplib.IMAP4.error, OSError, subprocess.TimeoutExpired) as e:
        print("FAILED with exception:", repr(e))
        sys.exit(1)
