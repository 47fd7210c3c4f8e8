#!/usr/bin/env python3
"""Python's imaplib against Mailroom's THREAD (RFC 5256), COMPRESS=DEFLATE (RFC 4978) and
BINARY (RFC 3516).

THREAD through imaplib's thread() and uid('THREAD', ...) on messages the script appends.
COMPRESS: after `COMPRESS DEFLATE` the socket carries raw deflate both ways (Python's zlib,
wbits -15, Z_SYNC_FLUSH after each command, as Thunderbird does), 1,000 commands.
BINARY: FETCH BINARY[1] and BINARY.SIZE[1] of a base64 part, APPEND with a literal8.

Environment: IMAP_HOST, IMAP_PORT, IMAP_USER, IMAP_PASSWORD. Exits non-zero with a message
on the first surprise. Leaves the mailbox "ThreadInterop" deleted.
"""

import imaplib
import os
import sys
import zlib

HOST = os.environ["IMAP_HOST"]
PORT = int(os.environ["IMAP_PORT"])
USER = os.environ["IMAP_USER"]
PASSWORD = os.environ["IMAP_PASSWORD"]
BOX = "ThreadInterop"


def fail(what):
    print("FAIL:", what)
    sys.exit(1)


def check(cond, what):
    if not cond:
        fail(what)


def mail(mid, subject, date, extra=b""):
    return (
        b"From: a@example.net\r\nTo: b@example.org\r\nSubject: " + subject + b"\r\n"
        b"Date: " + date + b"\r\nMessage-ID: " + mid + b"\r\n" + extra + b"\r\nbody\r\n"
    )


def thread(m):
    for raw in [
        mail(b"<p1@x>", b"plan", b"Thu, 1 Jan 2026 10:00:00 +0000"),
        mail(b"<p2@x>", b"Re: plan", b"Thu, 1 Jan 2026 11:00:00 +0000",
             b"References: <p1@x>\r\n"),
        mail(b"<p3@x>", b"Re: plan", b"Thu, 1 Jan 2026 10:30:00 +0000",
             b"In-Reply-To: <p1@x>\r\n"),
        mail(b"<q1@x>", b"Fwd: other", b"Thu, 1 Jan 2026 09:00:00 +0000"),
    ]:
        typ, _ = m.append(BOX, None, None, raw)
        check(typ == "OK", "APPEND")
    typ, _ = m.select(BOX)
    check(typ == "OK", "SELECT")
    typ, data = m.thread("REFERENCES", "UTF-8", "ALL")
    check(typ == "OK" and data == [b"(4)(1 (3)(2))"], f"THREAD REFERENCES: {typ} {data}")
    typ, data = m.uid("THREAD", "ORDEREDSUBJECT", "UTF-8", "SUBJECT", "plan")
    uids = m.uid("SEARCH", "ALL")[1][0].split()
    expect = f"({uids[0].decode()} ({uids[2].decode()})({uids[1].decode()}))".encode()
    check(typ == "OK" and data == [expect], f"UID THREAD ORDEREDSUBJECT: {typ} {data}")
    print("THREAD ok")


imaplib.Commands.setdefault("COMPRESS", ("AUTH", "SELECTED"))


class Deflate(imaplib.IMAP4):
    """imaplib with COMPRESS=DEFLATE: raw deflate (wbits -15) both ways once turned on, a
    Z_SYNC_FLUSH after every command as Thunderbird does."""

    compressing = False

    def compress(self):
        typ, data = self._simple_command("COMPRESS", "DEFLATE")
        check(typ == "OK", f"COMPRESS: {typ} {data}")
        self.z_out = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.z_in = zlib.decompressobj(-15)
        self.zbuf = b""
        self.compressing = True

    def send(self, data):
        if self.compressing:
            data = self.z_out.compress(data) + self.z_out.flush(zlib.Z_SYNC_FLUSH)
        self.sock.sendall(data)

    def _fill(self):
        raw = self.sock.recv(65536)
        if not raw:
            raise self.abort("connection closed")
        self.zbuf += self.z_in.decompress(raw)

    def read(self, size):
        if not self.compressing:
            return super().read(size)
        while len(self.zbuf) < size:
            self._fill()
        out, self.zbuf = self.zbuf[:size], self.zbuf[size:]
        return out

    def readline(self):
        if not self.compressing:
            return super().readline()
        while b"\n" not in self.zbuf:
            self._fill()
        i = self.zbuf.index(b"\n") + 1
        out, self.zbuf = self.zbuf[:i], self.zbuf[i:]
        return out


def compress():
    m = Deflate(HOST, PORT)
    m.login(USER, PASSWORD)
    m.compress()
    typ, data = m._simple_command("COMPRESS", "DEFLATE")
    check(typ == "NO" and b"[COMPRESSIONACTIVE]" in data[0], f"second COMPRESS: {typ} {data}")
    body = b"Line of a compressed message.\r\n" * 2000
    typ, _ = m.append(BOX, None, None, b"Subject: z\r\nMessage-ID: <z@x>\r\n\r\n" + body)
    check(typ == "OK", "APPEND over COMPRESS")
    for i in range(1000):
        k = i % 4
        if k == 0:
            typ, data = m.noop()
        elif k == 1:
            typ, data = m.select(BOX)
            check(data == [b"7"], f"SELECT {data}")
        elif k == 2:
            typ, data = m.search(None, "SUBJECT", "z")
            check(data == [b"7"], f"SEARCH {data}")
        else:
            typ, data = m.fetch("7", "(BODY.PEEK[TEXT])")
            check(data[0][1] == body, "FETCH over COMPRESS")
        check(typ == "OK", f"command {i}: {typ} {data}")
    m.logout()
    print("COMPRESS ok: 1000 commands")


def binary(m):
    part = b"\x00\x01binary\xff"
    import base64
    raw = (
        b"Subject: binary\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(part).replace(b"\n", b"\r\n")
        + b"--q--\r\n"
    )
    typ, data = m.append(BOX, None, None, raw)
    check(typ == "OK", f"APPEND {data}")
    m.select(BOX)
    n = m.search(None, "SUBJECT", "binary")[1][0].decode()
    typ, data = m.fetch(n, "(BINARY.PEEK[1] BINARY.SIZE[1])")
    check(typ == "OK" and data[0][1] == part, f"FETCH BINARY {data}")
    check(data[1] == b" BINARY.SIZE[1] 9)", f"BINARY.SIZE {data}")
    # APPEND with a literal8 (imaplib only sends {n}: by hand).
    nul = b"Subject: nul\r\n\r\nzero\x00byte\r\n"
    m.send(b"L1 APPEND " + BOX.encode() + b" ~{%d}\r\n" % len(nul))
    line = m.readline()
    check(line.startswith(b"+"), f"literal8 continuation {line}")
    m.send(nul + b"\r\n")
    line = m.readline()
    while line.startswith(b"* "):
        line = m.readline()
    check(line.startswith(b"L1 OK [APPENDUID"), f"APPEND literal8 {line}")
    n = m.search(None, "SUBJECT", "nul")[1][0].decode()
    typ, data = m.fetch(n, "(BINARY.PEEK[])")
    check(typ == "OK" and data[0][1] == nul, f"FETCH BINARY[] {data}")
    print("BINARY ok")


def main():
    m = imaplib.IMAP4(HOST, PORT)
    m.login(USER, PASSWORD)
    caps = m.capability()[1][0].split()
    check(b"THREAD=REFERENCES" in caps, f"capabilities {caps}")
    m.create(BOX)
    thread(m)
    binary(m)
    compress()
    m.close()
    m.delete(BOX)
    m.logout()
    print("all ok")


main()
