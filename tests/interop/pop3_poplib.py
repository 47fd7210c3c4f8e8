#!/usr/bin/env python3
"""Python's poplib against Mailroom's POP3: plain + STLS on the pop3 port, POP3_SSL on pop3s.

Run by tests/it/pop3/interop.rs, which starts the server, delivers the messages and checks the
store afterwards. Environment:
  POP3_HOST, POP3_PORT, POP3S_PORT   where to connect (the certificate names POP3_HOST)
  POP3_USER, POP3_PASSWORD           the account
  POP3_CAFILE                        the server's self-signed certificate
  POP3_COUNT                         how many messages the maildrop holds
The last message is the tricky one: stored with bare LFs and lines starting with dots.
At the end messages 1 and 2 are deleted with QUIT; the Rust test checks the store.
"""

import base64
import os
import poplib
import ssl
import sys

HOST = os.environ["POP3_HOST"]
PORT = int(os.environ["POP3_PORT"])
SPORT = int(os.environ["POP3S_PORT"])
USER = os.environ["POP3_USER"]
PASSWORD = os.environ["POP3_PASSWORD"]
COUNT = int(os.environ["POP3_COUNT"])
CTX = ssl.create_default_context(cafile=os.environ["POP3_CAFILE"])

TRICKY_LINES = [b"Subject: tricky", b"", b".starts with a dot", b"..two dots", b".", b"end"]


def check(cond, what):
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


def refused(call, code):
    try:
        call()
    except poplib.error_proto as e:
        return code.encode() in e.args[0]
    return False


def plain_then_stls():
    p = poplib.POP3(HOST, PORT, timeout=30)
    caps = p.capa()
    check("STLS" in caps, f"STLS advertised before TLS: {caps}")
    check("USER" not in caps and "SASL" not in caps, f"no USER/SASL before TLS: {caps}")
    check(refused(lambda: p.user(USER), "[AUTH]"), "USER refused with [AUTH] before TLS")
    p.stls(CTX)
    caps = p.capa()
    for cap in ["USER", "TOP", "UIDL", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE"]:
        check(cap in caps, f"{cap} in {caps}")
    check(caps.get("SASL", [])[:1] == ["PLAIN"], f"SASL PLAIN in {caps}")
    check(caps.get("EXPIRE") == ["NEVER"], f"EXPIRE NEVER in {caps}")
    check(refused(lambda: (p.user(USER), p.pass_("wrong")), "[AUTH]"), "bad password: [AUTH]")
    p.user(USER)
    p.pass_(PASSWORD)
    count, total = p.stat()
    check(count == COUNT, f"STAT count {count} == {COUNT}")
    _, listing, _ = p.list()
    sizes = {int(n): int(s) for n, s in (line.split() for line in listing)}
    check(sum(sizes.values()) == total, "LIST sizes add up to STAT")
    _, uidl, _ = p.uidl()
    for n in range(1, count + 1):
        _, lines, octets = p.retr(n)
        # poplib counts the un-stuffed lines with their CRLF: exactly the announced size.
        check(octets == sizes[n], f"RETR {n}: {octets} octets, LIST said {sizes[n]}")
    _, lines, _ = p.retr(count)
    check(lines == TRICKY_LINES, f"dots and bare LFs survive: {lines}")
    _, top, _ = p.top(count, 1)
    check(top == TRICKY_LINES[:3], f"TOP 1: {top}")
    p.dele(1)
    check(refused(lambda: p.retr(1), "-ERR"), "RETR of a deleted message fails")
    check(p.stat()[0] == count - 1, "STAT without the deleted message")
    p.rset()
    check(p.stat()[0] == count, "RSET undeletes")
    p.noop()
    p.quit()
    return uidl


def implicit_tls(first_uidl):
    p = poplib.POP3_SSL(HOST, SPORT, context=CTX, timeout=30)
    check("STLS" not in p.capa(), "no STLS on the TLS port")
    # AUTH PLAIN with an initial response (RFC 5034).
    token = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    resp = p._shortcmd(f"AUTH PLAIN {token}")
    check(resp.startswith(b"+OK"), f"AUTH PLAIN: {resp}")
    _, uidl, _ = p.uidl()
    check(uidl == first_uidl, "UIDL stable across sessions")
    # A second session on the same maildrop, over either port, is told it is in use.
    q = poplib.POP3_SSL(HOST, SPORT, context=CTX, timeout=30)
    q.user(USER)
    check(refused(lambda: q.pass_(PASSWORD), "[IN-USE]"), "second session gets [IN-USE]")
    q.quit()
    p.dele(1)
    p.dele(2)
    resp = p.quit()
    check(b"2 messages deleted" in resp, f"QUIT: {resp}")


def main():
    uidl = plain_then_stls()
    implicit_tls(uidl)
    print("poplib: all checks passed")


if __name__ == "__main__":
    main()
