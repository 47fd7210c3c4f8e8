#!/usr/bin/python3
"""DKIM interop with dkimpy (Debian's python3-dkim), driven by tests/it/dkim_interop.rs.

    dkim_dkimpy.py verify MESSAGE RECORDS_JSON
        Verifies every DKIM-Signature of MESSAGE, looking keys up in RECORDS_JSON
        ({"sel._domainkey.example.org.": "v=DKIM1; ..."}) instead of the DNS. Prints one line
        per signature: "<algorithm> <domain> pass|fail".
    dkim_dkimpy.py sign KEY_PEM DOMAIN SELECTOR MESSAGE OUT
        Signs MESSAGE (rsa-sha256, relaxed/relaxed) and writes the signed message to OUT.
"""
import json
import re
import sys

import dkim


def verify(message_path, records_path):
    message = open(message_path, "rb").read()
    records = json.load(open(records_path))

    def dnsfunc(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        if not name.endswith("."):
            name += "."
        value = records.get(name.lower())
        return value.encode() if value is not None else None

    checker = dkim.DKIM(message)
    headers = [v for (k, v) in checker.headers if k.lower() == b"dkim-signature"]
    if not headers:
        print("no signatures")
        return 1
    for index, value in enumerate(headers):
        tags = dict(
            (k.strip(), v.strip())
            for k, v in (t.split(b"=", 1) for t in re.sub(rb"\s", b"", value).split(b";") if b"=" in t)
        )
        try:
            ok = checker.verify(idx=index, dnsfunc=dnsfunc)
        except dkim.DKIMException as e:
            print("# %s" % e)
            ok = False
        print(
            "%s %s %s"
            % (tags.get(b"a", b"?").decode(), tags.get(b"d", b"?").decode(), "pass" if ok else "fail")
        )
    return 0


def sign(key_path, domain, selector, message_path, out_path):
    message = open(message_path, "rb").read()
    key = open(key_path, "rb").read()
    signature = dkim.sign(
        message,
        selector.encode(),
        domain.encode(),
        key,
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
    )
    open(out_path, "wb").write(signature + message)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "verify":
        sys.exit(verify(sys.argv[2], sys.argv[3]))
    if len(sys.argv) == 7 and sys.argv[1] == "sign":
        sys.exit(sign(*sys.argv[2:]))
    print(__doc__)
    sys.exit(2)
