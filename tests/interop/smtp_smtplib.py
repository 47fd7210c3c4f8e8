#!/usr/bin/env python3
"""Python's smtplib against Mailroom: the MX port plain and with STARTTLS, submission with
STARTTLS + AUTH, implicit TLS (SMTP_SSL) + AUTH with SMTPUTF8. Each message is written to
$WORKDIR/<name>.eml as sent, so the Rust test can compare what was stored byte for byte."""

import os
import smtplib
import ssl
import sys

HOST = "localhost"
SMTP = int(os.environ["SMTP_PORT"])
SUBMISSION = int(os.environ["SUBMISSION_PORT"])
SUBMISSIONS = int(os.environ["SUBMISSIONS_PORT"])
USER = os.environ["SMTP_USER"]
PASSWORD = os.environ["SMTP_PASSWORD"]
WORKDIR = os.environ["WORKDIR"]
ctx = ssl.create_default_context(cafile=os.environ["SMTP_CAFILE"])


def message(name, sender, extra=""):
    body = (
        f"From: {sender}\r\nTo: {USER}\r\nSubject: {name}{extra}\r\n"
        f"Date: Thu, 26 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{name}@interop.test>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Hello from smtplib ({name}).\r\n.a line starting with a dot\r\nBye.\r\n"
    ).encode("utf-8")
    with open(os.path.join(WORKDIR, f"{name}.eml"), "wb") as f:
        f.write(body)
    return body


def check(refused):
    if refused:
        sys.exit(f"recipients refused: {refused}")


# 1. MX, plain.
with smtplib.SMTP(HOST, SMTP) as s:
    s.ehlo("sender.example")
    assert s.has_extn("pipelining") and s.has_extn("starttls"), s.esmtp_features
    assert not s.has_extn("auth"), "no AUTH on the MX port"
    check(s.sendmail("alice@sender.example", [USER], message("mx-plain", "alice@sender.example")))
    try:
        s.sendmail("alice@sender.example", ["someone@elsewhere.example"], b"Subject: relay\r\n\r\nx\r\n")
        sys.exit("relay accepted")
    except smtplib.SMTPRecipientsRefused as e:
        code = e.recipients["someone@elsewhere.example"][0]
        assert code == 554, e.recipients

# 2. MX with STARTTLS.
with smtplib.SMTP(HOST, SMTP) as s:
    s.starttls(context=ctx)
    s.ehlo("sender.example")
    check(s.sendmail("alice@sender.example", [USER], message("mx-tls", "alice@sender.example")))

# 3. Submission: STARTTLS, then AUTH.
with smtplib.SMTP(HOST, SUBMISSION) as s:
    s.ehlo("laptop")
    try:
        s.login(USER, PASSWORD)
        sys.exit("AUTH accepted before TLS")
    except smtplib.SMTPException:
        pass
    s.starttls(context=ctx)
    s.ehlo("laptop")
    try:
        s.login(USER, "wrong password")
        sys.exit("wrong password accepted")
    except smtplib.SMTPAuthenticationError:
        pass
    s.login(USER, PASSWORD)
    check(s.sendmail(USER, [USER], message("submission", USER)))
    try:
        s.sendmail("ceo@elsewhere.example", [USER], b"Subject: spoof\r\n\r\nx\r\n")
        sys.exit("foreign sender accepted")
    except smtplib.SMTPSenderRefused as e:
        assert e.smtp_code == 550, e

# 4. Implicit TLS with AUTH, SMTPUTF8.
with smtplib.SMTP_SSL(HOST, SUBMISSIONS, context=ctx) as s:
    s.ehlo("phone")
    assert s.has_extn("smtputf8"), s.esmtp_features
    s.login(USER, PASSWORD)
    body = message("submissions-utf8", USER, " — Grüße")
    check(s.sendmail(USER, [USER], body, mail_options=["SMTPUTF8", "BODY=8BITMIME"]))

print("smtplib: 4 messages sent, relay and spoofing refused")
