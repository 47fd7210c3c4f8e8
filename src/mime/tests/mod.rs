use super::*;

mod corpus;

fn body<'a>(raw: &'a [u8], p: &BodyPart) -> &'a [u8] {
    raw.get(p.body_start as usize..p.body_end as usize)
        .expect("body range")
}

fn mime_header<'a>(raw: &'a [u8], p: &BodyPart) -> &'a [u8] {
    raw.get(p.header_start as usize..p.body_start as usize)
        .expect("header range")
}

fn addr(name: Option<&str>, mailbox: &str, host: &str) -> Address {
    Address {
        name: name.map(str::to_string),
        adl: None,
        mailbox: Some(mailbox.to_string()),
        host: Some(host.to_string()),
    }
}

fn crlf(s: &str) -> Vec<u8> {
    s.replace('\n', "\r\n").into_bytes()
}

/// Structural invariants every analysis must keep.
fn check_part(raw: &[u8], p: &BodyPart, lo: u64, hi: u64, depth: usize) {
    assert!(depth < 2 * MAX_DEPTH + 4, "too deep");
    assert!(
        lo <= p.header_start
            && p.header_start <= p.body_start
            && p.body_start <= p.body_end
            && p.body_end <= hi,
        "offsets {}..{}..{} outside {lo}..{hi}",
        p.header_start,
        p.body_start,
        p.body_end
    );
    assert!(p.body_end as usize <= raw.len());
    assert_eq!(p.size, p.body_end - p.body_start);
    assert!(!p.media_type.is_empty() && !p.media_subtype.is_empty());
    assert_eq!(p.media_type, p.media_type.to_ascii_lowercase());
    assert_eq!(p.encoding, p.encoding.to_ascii_uppercase());
    if let Some(lines) = p.lines {
        assert_eq!(
            lines,
            body(raw, p).iter().filter(|&&b| b == b'\n').count() as u64
        );
    }
    if p.is_multipart() {
        assert!(!p.parts.is_empty(), "multipart without children");
        let mut prev_end = p.body_start;
        for c in &p.parts {
            assert!(
                c.header_start >= prev_end,
                "children overlap or out of order"
            );
            check_part(raw, c, p.body_start, p.body_end, depth + 1);
            prev_end = c.body_end;
        }
    } else {
        assert!(p.parts.is_empty());
    }
    if let Some(m) = &p.message {
        assert_eq!(p.media_type, "message");
        assert_eq!(m.1.header_start, p.body_start);
        assert_eq!(m.1.body_end, p.body_end);
        check_part(raw, &m.1, p.body_start, p.body_end, depth + 1);
    }
}

fn check(raw: &[u8]) -> Analysis {
    let a = analyze(raw);
    assert_eq!(a.body.header_start, 0);
    assert_eq!(a.body.body_end, raw.len() as u64);
    check_part(raw, &a.body, 0, raw.len() as u64, 0);
    assert!(a.search.body.len() <= text::SEARCH_BODY_MAX);
    assert!(a.snippet.chars().count() <= text::SNIPPET_CHARS);
    let env = serde_json::to_string(&a.envelope).expect("envelope json");
    let structure = serde_json::to_string(&a.body).expect("body json");
    let env_back: Envelope = serde_json::from_str(&env).expect("envelope back");
    let body_back: BodyPart = serde_json::from_str(&structure).expect("body back");
    assert_eq!(env_back, a.envelope);
    assert_eq!(body_back, a.body);
    a
}

#[test]
fn simple_text_crlf() {
    let raw = crlf(
        "From: Alice Example <alice@example.org>\n\
         To: bob@example.net, \"Carol, C.\" <carol@example.com>\n\
         Cc: Dave <dave@example.com>\n\
         Subject: Hello\n  there\n\
         Date: Fri, 4 May 2001 14:05:44 -0400\n\
         Message-ID: <abc.123@example.org>\n\
         In-Reply-To: <prev@example.org>\n\
         \n\
         Hi Bob,\n\nsee you.\n",
    );
    let a = check(&raw);
    let e = &a.envelope;
    assert_eq!(e.date.as_deref(), Some("Fri, 4 May 2001 14:05:44 -0400"));
    assert_eq!(e.subject.as_deref(), Some("Hello  there"));
    assert_eq!(
        e.from,
        vec![addr(Some("Alice Example"), "alice", "example.org")]
    );
    assert_eq!(e.sender, e.from);
    assert_eq!(e.reply_to, e.from);
    assert_eq!(
        e.to,
        vec![
            addr(None, "bob", "example.net"),
            addr(Some("Carol, C."), "carol", "example.com")
        ]
    );
    assert_eq!(e.cc, vec![addr(Some("Dave"), "dave", "example.com")]);
    assert!(e.bcc.is_empty());
    assert_eq!(e.message_id.as_deref(), Some("<abc.123@example.org>"));
    assert_eq!(e.in_reply_to.as_deref(), Some("<prev@example.org>"));

    assert_eq!(a.subject, "Hello there");
    assert_eq!(a.from, "Alice Example <alice@example.org>");
    assert_eq!(a.to, "bob@example.net, Carol, C. <carol@example.com>");
    assert_eq!(a.cc, "Dave <dave@example.com>");
    assert_eq!(a.date, Some(988999544));
    assert_eq!(a.message_id.as_deref(), Some("abc.123@example.org"));
    assert!(!a.has_attachment);
    assert_eq!(a.snippet, "Hi Bob, see you.");
    assert_eq!(a.search.subject, "Hello there");
    assert_eq!(
        a.search.addresses,
        "Alice Example alice@example.org bob@example.net Carol, C. carol@example.com \
         Dave dave@example.com"
    );
    assert_eq!(a.search.body, "Hi Bob,\r\n\r\nsee you.\r\n");

    let b = &a.body;
    assert_eq!(
        (b.media_type.as_str(), b.media_subtype.as_str()),
        ("text", "plain")
    );
    assert_eq!(
        b.params,
        vec![("charset".to_string(), "us-ascii".to_string())]
    );
    assert_eq!(b.encoding, "7BIT");
    assert_eq!(body(&raw, b), b"Hi Bob,\r\n\r\nsee you.\r\n");
    assert!(mime_header(&raw, b).ends_with(b"<prev@example.org>\r\n\r\n"));
    assert_eq!(b.size, 21);
    assert_eq!(b.lines, Some(3));
    assert_eq!(b.part(&[1]), Some(b));
    assert_eq!(b.part(&[2]), None);
    assert_eq!(b.part(&[]), None);
    assert_eq!(b.part(&[0]), None);
    assert_eq!(b.part(&[1, 1]), None);
}

#[test]
fn lf_only_line_endings() {
    let raw = b"Subject: lf\nFrom: a@b.c\n\nline one\nline two\n";
    let a = check(raw);
    assert_eq!(a.body.body_start, 25);
    assert_eq!(body(raw, &a.body), b"line one\nline two\n");
    assert_eq!(a.body.lines, Some(2));
    assert_eq!(a.subject, "lf");
}

const ALTERNATIVE: &str = "From: a@example.org\n\
To: b@example.org\n\
Subject: alt\n\
MIME-Version: 1.0\n\
Content-Type: multipart/alternative; boundary=\"=_alt (x)\"\n\
\n\
This is a preamble.\n\
--=_alt (x)\n\
Content-Type: text/plain; charset=utf-8\n\
Content-Transfer-Encoding: quoted-printable\n\
\n\
Caf=C3=A9 au lait, please. =\n\
Thanks\n\
--=_alt (x)\n\
Content-Type: text/html; charset=\"iso-8859-1\"\n\
\n\
<html><body><p>Caf\u{e9} <b>au lait</b></p></body></html>\n\
--=_alt (x)--\n\
epilogue\n";

#[test]
fn multipart_alternative() {
    // The HTML part is in Latin-1 on the wire.
    let utf8 = crlf(ALTERNATIVE);
    let mut raw = Vec::with_capacity(utf8.len());
    let mut i = 0;
    while i < utf8.len() {
        if utf8[i..].starts_with("\u{e9}".as_bytes()) {
            raw.push(0xE9);
            i += 2;
        } else {
            raw.push(utf8[i]);
            i += 1;
        }
    }
    let a = check(&raw);
    let b = &a.body;
    assert_eq!(b.media_type, "multipart");
    assert_eq!(b.media_subtype, "alternative");
    assert_eq!(b.params, vec![("boundary".into(), "=_alt (x)".into())]);
    assert_eq!(b.parts.len(), 2);
    assert!(body(&raw, b).starts_with(b"This is a preamble.\r\n--=_alt (x)\r\n"));
    assert!(body(&raw, b).ends_with(b"--=_alt (x)--\r\nepilogue\r\n"));

    let plain = b.part(&[1]).expect("part 1");
    assert_eq!(plain.media_subtype, "plain");
    assert_eq!(plain.encoding, "QUOTED-PRINTABLE");
    assert_eq!(plain.params, vec![("charset".into(), "utf-8".into())]);
    assert_eq!(body(&raw, plain), b"Caf=C3=A9 au lait, please. =\r\nThanks");
    assert_eq!(
        mime_header(&raw, plain),
        b"Content-Type: text/plain; charset=utf-8\r\n\
          Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    );
    assert_eq!(plain.lines, Some(1));

    let html = b.part(&[2]).expect("part 2");
    assert_eq!(html.media_subtype, "html");
    assert_eq!(
        body(&raw, html),
        b"<html><body><p>Caf\xe9 <b>au lait</b></p></body></html>"
    );
    assert_eq!(b.part(&[3]), None);

    assert_eq!(a.snippet, "Caf\u{e9} au lait, please. Thanks");
    assert!(a.search.body.contains("Caf\u{e9} au lait, please. Thanks"));
    assert!(a.search.body.contains("Caf\u{e9} au lait"));
    assert!(!a.search.body.contains("<b>"));
    assert!(!a.has_attachment);
}

#[test]
fn multipart_mixed_with_attachment() {
    let raw = crlf(
        "From: a@example.org\n\
         Subject: report\n\
         Content-Type: multipart/mixed; boundary=XYZ\n\
         \n\
         --XYZ\n\
         \n\
         See attached.\n\
         \n\
         --XYZ\n\
         Content-Type: application/pdf; name=\"r.pdf\"\n\
         Content-Transfer-Encoding: base64\n\
         Content-Disposition: attachment; filename=\"r.pdf\"; size=3\n\
         Content-ID: <pdf@x>\n\
         Content-Description: The report\n\
         Content-Language: en, de (German)\n\
         Content-Location: http://x/r.pdf\n\
         Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\n\
         \n\
         JVBE\n\
         --XYZ--\n",
    );
    let a = check(&raw);
    assert!(a.has_attachment);
    let b = &a.body;
    assert_eq!(b.parts.len(), 2);
    let text = &b.parts[0];
    assert_eq!(text.header_start, text.body_start - 2);
    assert_eq!(body(&raw, text), b"See attached.\r\n");
    let pdf = b.part(&[2]).expect("pdf");
    assert_eq!(pdf.media_type, "application");
    assert_eq!(pdf.media_subtype, "pdf");
    assert_eq!(pdf.params, vec![("name".into(), "r.pdf".into())]);
    assert_eq!(pdf.encoding, "BASE64");
    assert_eq!(pdf.lines, None);
    assert_eq!(
        pdf.disposition,
        Some((
            "attachment".into(),
            vec![
                ("filename".into(), "r.pdf".into()),
                ("size".into(), "3".into())
            ]
        ))
    );
    assert_eq!(pdf.id.as_deref(), Some("<pdf@x>"));
    assert_eq!(pdf.description.as_deref(), Some("The report"));
    assert_eq!(pdf.language, vec!["en".to_string(), "de".to_string()]);
    assert_eq!(pdf.location.as_deref(), Some("http://x/r.pdf"));
    assert_eq!(pdf.md5.as_deref(), Some("Q2hlY2sgSW50ZWdyaXR5IQ=="));
    assert_eq!(body(&raw, pdf), b"JVBE");
    assert_eq!(pdf.size, 4);
    assert_eq!(a.snippet, "See attached.");
    assert_eq!(a.search.body, "See attached.\r\n");
}

#[test]
fn attachment_detection() {
    let named_image = "Content-Type: multipart/mixed; boundary=b\n\n--b\n\
        Content-Type: image/png; name=x.png\n\nAAAA\n--b--\n";
    assert!(analyze(named_image.as_bytes()).has_attachment);
    let inline_image = "Content-Type: multipart/related; boundary=b\n\n--b\n\
        Content-Type: text/html\n\n<img src=cid:x>\n--b\n\
        Content-Type: image/png\nContent-ID: <x>\n\nAAAA\n--b--\n";
    assert!(!analyze(inline_image.as_bytes()).has_attachment);
    let rfc2231_name = "Content-Type: multipart/mixed; boundary=b\n\n--b\n\
        Content-Type: application/octet-stream\n\
        Content-Disposition: inline; filename*=utf-8''%C3%A9.bin\n\nAAAA\n--b--\n";
    assert!(analyze(rfc2231_name.as_bytes()).has_attachment);
    let text_attachment = "Content-Type: multipart/mixed; boundary=b\n\n--b\n\
        Content-Type: text/plain\nContent-Disposition: attachment\n\nnotes\n--b--\n";
    let a = analyze(text_attachment.as_bytes());
    assert!(a.has_attachment);
    assert_eq!(a.snippet, "", "attachments do not make the snippet");
    assert_eq!(a.search.body, "notes");
}

const NESTED: &str = "From: outer@example.org\n\
Subject: fwd\n\
Content-Type: multipart/mixed; boundary=\"outer\"\n\
\n\
--outer\n\
Content-Type: text/plain\n\
\n\
See below.\n\
--outer\n\
Content-Type: message/rfc822\n\
Content-Description: forwarded\n\
\n\
From: Inner Person <inner@example.net>\n\
To: someone@example.com\n\
Subject: =?utf-8?q?inn=C3=A9r?=\n\
Date: Sat, 1 Jan 2000 00:00:00 +0000\n\
Content-Type: multipart/alternative; boundary=inner\n\
\n\
--inner\n\
Content-Type: text/plain\n\
\n\
inner text\n\
--inner\n\
Content-Type: text/html\n\
\n\
<p>inner html</p>\n\
--inner--\n\
\n\
--outer--\n";

#[test]
fn nested_message_rfc822() {
    for raw in [NESTED.as_bytes().to_vec(), crlf(NESTED)] {
        let a = check(&raw);
        let nl = if raw.contains(&b'\r') { "\r\n" } else { "\n" };
        let top = &a.body;
        assert_eq!(top.parts.len(), 2);
        let msg = top.part(&[2]).expect("part 2");
        assert_eq!(
            (msg.media_type.as_str(), msg.media_subtype.as_str()),
            ("message", "rfc822")
        );
        assert_eq!(msg.description.as_deref(), Some("forwarded"));
        assert!(body(&raw, msg).starts_with(b"From: Inner Person"));
        assert!(body(&raw, msg).ends_with(format!("--inner--{nl}").as_bytes()));
        assert_eq!(
            msg.lines,
            Some(body(&raw, msg).iter().filter(|&&b| b == b'\n').count() as u64)
        );
        let (env, inner) = &**msg.message.as_ref().expect("embedded");
        assert_eq!(env.subject.as_deref(), Some("=?utf-8?q?inn=C3=A9r?="));
        assert_eq!(
            env.from,
            vec![addr(Some("Inner Person"), "inner", "example.net")]
        );
        assert_eq!(env.to, vec![addr(None, "someone", "example.com")]);
        assert_eq!(inner.header_start, msg.body_start);
        assert!(mime_header(&raw, inner).starts_with(b"From: Inner Person"));
        assert_eq!(inner.media_subtype, "alternative");

        // 2.1 and 2.2 are the embedded message's parts (RFC 3501 section 6.4.5).
        let p21 = top.part(&[2, 1]).expect("2.1");
        assert_eq!(body(&raw, p21), b"inner text");
        let p22 = top.part(&[2, 2]).expect("2.2");
        assert_eq!(body(&raw, p22), b"<p>inner html</p>");
        assert_eq!(top.part(&[2, 3]), None);
        assert_eq!(top.part(&[2, 1, 1]), None);
        assert_eq!(body(&raw, top.part(&[1]).expect("1")), b"See below.");

        assert_eq!(a.subject, "fwd");
        assert_eq!(a.snippet, "See below.");
        assert!(a.search.body.contains("inner text"));
        assert!(a.search.body.contains("inner html"));
        assert!(!a.has_attachment);
    }
}

#[test]
fn top_level_message_rfc822_numbering() {
    let raw = b"Content-Type: message/rfc822\n\nSubject: inside\n\nhello\n";
    let a = check(raw);
    let one = a.body.part(&[1]).expect("1");
    assert_eq!(one, &a.body);
    let inner = a.body.part(&[1, 1]).expect("1.1");
    assert_eq!(body(raw, inner), b"hello\n");
    assert_eq!(a.body.part(&[1, 2]), None);
}

#[test]
fn encoded_message_rfc822_is_not_parsed() {
    let raw = b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\
        Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n\
        U3ViamVjdDogeAoKeQo=\n--b--\n";
    let a = check(raw);
    let m = a.body.part(&[1]).expect("1");
    assert_eq!(m.media_subtype, "rfc822");
    assert!(m.message.is_none());
    assert_eq!(m.lines, None);
    assert_eq!(a.body.part(&[1, 1]), None);
}

#[test]
fn digest_defaults_to_message_rfc822() {
    let raw = b"Content-Type: multipart/digest; boundary=d\n\n--d\n\n\
        Subject: one\n\nfirst\n--d\nContent-Type: text/plain\n\nnot a message\n--d--\n";
    let a = check(raw);
    let first = &a.body.parts[0];
    assert_eq!(
        (first.media_type.as_str(), first.media_subtype.as_str()),
        ("message", "rfc822")
    );
    assert!(first.params.is_empty());
    let (env, _) = &**first.message.as_ref().expect("embedded");
    assert_eq!(env.subject.as_deref(), Some("one"));
    assert_eq!(a.body.parts[1].media_type, "text");
}

#[test]
fn groups_and_odd_addresses() {
    let raw = b"From: \"Joe Q. Public\" <john.q.public@example.com>\n\
        To: Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>\n\
        Cc: <boss@nil.test>, Giant; \"Big\" Box <sysservices@example.net>\n\
        Bcc: A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;, \
          undisclosed-recipients:;\n\
        Reply-To: Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>\n\
        Sender: <@route.one,@route.two:user@host.test>\n\
        \n";
    let a = check(raw);
    let e = &a.envelope;
    assert_eq!(
        e.from,
        vec![addr(Some("Joe Q. Public"), "john.q.public", "example.com")]
    );
    assert_eq!(
        e.to,
        vec![
            addr(Some("Mary Smith"), "mary", "x.test"),
            addr(None, "jdoe", "example.org"),
            addr(Some("Who?"), "one", "y.test"),
        ]
    );
    assert_eq!(
        e.cc,
        vec![
            addr(None, "boss", "nil.test"),
            addr(None, "Giant", address::MISSING_DOMAIN),
            addr(Some("Big Box"), "sysservices", "example.net"),
        ]
    );
    let group = |name: &str| Address {
        mailbox: Some(name.into()),
        ..Address::default()
    };
    assert_eq!(
        e.bcc,
        vec![
            group("A Group"),
            addr(Some("Ed Jones"), "c", "a.test"),
            addr(None, "joe", "where.test"),
            addr(Some("John"), "jdoe", "one.test"),
            Address::default(),
            group("undisclosed-recipients"),
            Address::default(),
        ]
    );
    assert_eq!(e.reply_to, vec![addr(Some("Pete"), "pete", "silly.test")]);
    assert_eq!(
        e.sender,
        vec![Address {
            name: None,
            adl: Some("@route.one,@route.two".into()),
            mailbox: Some("user".into()),
            host: Some("host.test".into()),
        }]
    );
    assert_eq!(
        address::display(&e.bcc),
        "A Group: Ed Jones <c@a.test>, joe@where.test, John <jdoe@one.test>;, \
         undisclosed-recipients:;"
    );
    assert!(a.search.addresses.contains("A Group"));
    assert!(a.search.addresses.contains("user@host.test"));
    assert!(a.search.addresses.contains("Pete pete@silly.test"));
}

#[test]
fn address_edge_cases() {
    let cases: &[(&str, Vec<Address>)] = &[
        ("", vec![]),
        (" , ,", vec![]),
        ("(just a comment)", vec![]),
        ("a@b.c (Alice)", vec![addr(Some("Alice"), "a", "b.c")]),
        (
            "\"quoted local\"@b.c",
            vec![addr(None, "quoted local", "b.c")],
        ),
        (
            "<>",
            vec![addr(
                None,
                address::MISSING_MAILBOX,
                address::MISSING_DOMAIN,
            )],
        ),
        ("x@[127.0.0.1]", vec![addr(None, "x", "[127.0.0.1]")]),
        (
            "=?utf-8?q?J=C3=BCrgen?= <j@x.de>",
            vec![addr(Some("=?utf-8?q?J=C3=BCrgen?="), "j", "x.de")],
        ),
        (
            "Unterminated <a@b.c",
            vec![addr(Some("Unterminated"), "a", "b.c")],
        ),
        ("\"unterminated quote <a@b.c>", vec![]),
        (
            "a@b.c;d@e.f",
            vec![addr(None, "a", "b.c"), addr(None, "d", "e.f")],
        ),
    ];
    for (input, want) in cases {
        let got = address::parse_list(input.as_bytes());
        if input.starts_with("\"unterminated") {
            // Everything is one quoted word: one mailbox without a domain.
            assert_eq!(got.len(), 1, "{input}");
            continue;
        }
        assert_eq!(&got, want, "{input}");
    }
    let list = address::parse_list(b"=?utf-8?q?J=C3=BCrgen?= <j@x.de>, <>");
    assert_eq!(address::display(&list), "J\u{fc}rgen <j@x.de>");
}

#[test]
fn encoded_words() {
    let raw = b"Subject: =?utf-8?B?w6l0w6kg?=\n =?ISO-8859-1?Q?=E0_Paris?= ok\n\
        From: =?iso-8859-1?q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>\n\n";
    let a = check(raw);
    assert_eq!(
        a.envelope.subject.as_deref(),
        Some("=?utf-8?B?w6l0w6kg?= =?ISO-8859-1?Q?=E0_Paris?= ok")
    );
    assert_eq!(a.subject, "\u{e9}t\u{e9} \u{e0} Paris ok");
    assert_eq!(a.from, "Andr\u{e9} Pirard <PIRARD@vm1.ulg.ac.be>");
    assert_eq!(
        a.envelope.from[0].name.as_deref(),
        Some("=?iso-8859-1?q?Andr=E9?= Pirard")
    );
    // Undeclared 8-bit: UTF-8 if valid, else Windows-1252.
    let a = analyze(b"Subject: caf\xc3\xa9\n\n");
    assert_eq!(a.subject, "caf\u{e9}");
    let a = analyze(b"Subject: caf\xe9\n\n");
    assert_eq!(a.subject, "caf\u{e9}");
    assert_eq!(a.envelope.subject.as_deref(), Some("caf\u{e9}"));
}

#[test]
fn missing_headers() {
    let raw = b"X-Nothing: here\n\nbody\n";
    let a = check(raw);
    assert_eq!(a.envelope, Envelope::default());
    assert_eq!(a.subject, "");
    assert_eq!(
        (a.from.as_str(), a.to.as_str(), a.cc.as_str()),
        ("", "", "")
    );
    assert_eq!(a.date, None);
    assert_eq!(a.message_id, None);
    assert_eq!(body(raw, &a.body), b"body\n");

    // Header only, no blank line, no body.
    let raw = b"Subject: only\r\nFrom: x@y.z\r\n";
    let a = check(raw);
    assert_eq!(a.subject, "only");
    assert_eq!(a.body.body_start, raw.len() as u64);
    assert_eq!(a.body.size, 0);

    // Empty input.
    let a = check(b"");
    assert_eq!(a.body.body_end, 0);
    assert_eq!(a.body.lines, Some(0));

    // Unparseable date, empty Sender: defaults to From.
    let a = check(b"Date: someday\nFrom: a@b.c\nSender:\n\n");
    assert_eq!(a.envelope.date.as_deref(), Some("someday"));
    assert_eq!(a.date, None);
    assert_eq!(a.envelope.sender, a.envelope.from);
}

#[test]
fn garbage_is_one_text_part() {
    let mut raw: Vec<u8> = (0u8..=255).collect();
    raw.extend_from_slice(b"\n\n\xff\xfe--x\n");
    let a = check(&raw);
    assert_eq!(a.body.header_start, 0);
    assert_eq!(a.body.body_start, 0);
    assert_eq!(a.body.body_end, raw.len() as u64);
    assert_eq!(a.body.media_type, "text");
    assert_eq!(a.envelope, Envelope::default());

    // A first line that is no header field: all of it is body.
    let raw = b"Hello there, no headers\nSubject: not a header\n\ntext\n";
    let a = check(raw);
    assert_eq!(a.body.body_start, 0);
    assert_eq!(a.subject, "");
    assert!(a.snippet.starts_with("Hello there"));
}

#[test]
fn header_without_blank_line_before_body() {
    let raw = b"Subject: x\nthis line is body\nmore\n";
    let a = check(raw);
    assert_eq!(body(raw, &a.body), b"this line is body\nmore\n");
    assert_eq!(mime_header(raw, &a.body), b"Subject: x\n");
}

#[test]
fn mbox_from_line_is_skipped() {
    let raw = b"From someone Fri Apr 06 16:46:09 2001\nSubject: s\n\nb\n";
    let a = check(raw);
    assert_eq!(a.subject, "s");
    assert_eq!(body(raw, &a.body), b"b\n");
}

#[test]
fn broken_multiparts() {
    // No boundary parameter: one synthetic text/plain child with the whole body.
    let raw = b"Content-Type: multipart/mixed\n\n--x\nhello\n--x--\n";
    let a = check(raw);
    assert_eq!(a.body.parts.len(), 1);
    let child = &a.body.parts[0];
    assert_eq!(child.media_type, "text");
    assert_eq!(child.header_start, a.body.body_start);
    assert_eq!(body(raw, child), body(raw, &a.body));
    assert!(a.snippet.contains("hello"));

    // No close delimiter: the last part runs to the end.
    let raw = b"Content-Type: multipart/mixed; boundary=x\n\n--x\n\none\n--x\n\ntwo\n";
    let a = check(raw);
    assert_eq!(a.body.parts.len(), 2);
    assert_eq!(body(raw, &a.body.parts[1]), b"two\n");

    // An inner multipart without its close delimiter ends at the outer delimiter.
    let raw = b"Content-Type: multipart/mixed; boundary=out\n\n--out\n\
        Content-Type: multipart/alternative; boundary=in\n\n--in\n\na\n\
        --out\n\nb\n--out--\n";
    let a = check(raw);
    assert_eq!(a.body.parts.len(), 2);
    assert_eq!(body(raw, a.body.part(&[1, 1]).expect("1.1")), b"a");
    assert_eq!(body(raw, a.body.part(&[2]).expect("2")), b"b");

    // A boundary that is a prefix of a line is no delimiter; padding after one is fine.
    let raw = b"Content-Type: multipart/mixed; boundary=b\n\n--b \t\n\n--bb\n--b--\n";
    let a = check(raw);
    assert_eq!(a.body.parts.len(), 1);
    assert_eq!(body(raw, &a.body.parts[0]), b"--bb");

    // A nested multipart reusing its parent's boundary takes the delimiters until closed.
    let raw = b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\
        Content-Type: multipart/alternative; boundary=b\n\n--b\n\none\n--b\n\ntwo\n--b--\n\
        --b\n\nthree\n--b--\n";
    let a = check(raw);
    assert_eq!(a.body.parts.len(), 2);
    assert_eq!(a.body.parts[0].parts.len(), 2);
    assert_eq!(body(raw, a.body.part(&[1, 2]).expect("1.2")), b"two");
    assert_eq!(body(raw, a.body.part(&[2]).expect("2")), b"three");

    // Empty parts between delimiters.
    let raw = b"Content-Type: multipart/mixed; boundary=b\n\n--b\n--b\n--b--\n";
    let a = check(raw);
    assert_eq!(a.body.parts.len(), 2);
    assert!(a.body.parts.iter().all(|p| p.size == 0));
}

#[test]
fn content_type_syntax() {
    let raw = b"Content-Type: Text/HTML (comment) ; Charset = \"UTF-8\" ;\n\
        \tformat=flowed; junk; name=\"a \\\"q\\\" b\"\n\n<p>x</p>\n";
    let a = check(raw);
    assert_eq!(a.body.media_type, "text");
    assert_eq!(a.body.media_subtype, "html");
    assert_eq!(
        a.body.params,
        vec![
            ("Charset".into(), "UTF-8".into()),
            ("format".into(), "flowed".into()),
            ("name".into(), "a \"q\" b".into()),
        ]
    );
    // No subtype: the default.
    let a = check(b"Content-Type: text\n\nx\n");
    assert_eq!(a.body.media_subtype, "plain");
    // RFC 2231 continuations are merged.
    let raw = b"Content-Type: application/x-stuff;\n title*0*=us-ascii'en'This%20is;\n \
        title*1=\" fun\"; url*0=\"http://a/\"; url*1=b\n\n";
    let a = check(raw);
    assert_eq!(
        a.body.params,
        vec![
            ("title*".into(), "us-ascii'en'This%20is%20fun".into()),
            ("url".into(), "http://a/b".into()),
        ]
    );
    assert_eq!(
        header::param(&a.body.params, "title").as_deref(),
        Some("This is fun")
    );
    assert_eq!(a.body.encoding, "7BIT");
    let a = check(b"Content-Transfer-Encoding: (c) Base64 \n\nAAAA\n");
    assert_eq!(a.body.encoding, "BASE64");
}

#[test]
fn lenient_transfer_decoding() {
    assert_eq!(
        text::qp_decode(b"a=3Db=\r\nc=\nd= \ne=zz=4"),
        b"a=bcde=zz=4"
    );
    assert_eq!(text::base64_decode(b"aGVs\r\nbG8=\n!"), b"hello");
    assert_eq!(text::base64_decode(b"aGVsbG8gd29ybGQ"), b"hello world");
}

#[test]
fn author_fields_are_read_strictly() {
    let m = |s: &str| mailboxes(s.as_bytes());
    let one = |name: Option<&str>, address: &str| Mailbox {
        name: name.map(str::to_string),
        address: address.to_string(),
    };
    assert_eq!(m(" a@x.org").unwrap(), vec![one(None, "a@x.org")]);
    assert_eq!(
        m("\"Smith, J.\" <j.s@x.org> (work),\r\n\t=?utf-8?q?Zo=C3=AB?= <z@y.org>,").unwrap(),
        vec![
            one(Some("Smith, J."), "j.s@x.org"),
            one(Some("Zoë"), "z@y.org")
        ]
    );
    assert_eq!(
        m("J. Smith <j@x.org>").unwrap()[0].name.as_deref(),
        Some("J. Smith")
    );
    assert_eq!(
        m("j@x.org <j@x.org>").unwrap(),
        vec![one(Some("j@x.org"), "j@x.org")]
    );
    assert_eq!(m("").unwrap(), vec![]);
    for bad in [
        "a@x.org b@y.org",
        "A <a@x.org> B <b@y.org>",
        "A <a@x.org> <b@y.org>",
        "<a@x.org",
        "a@x.org>",
        "<<a@x.org>>",
        "group: a@x.org;",
        "<@route.example:a@x.org>",
        "nobody",
        "a@",
        "@x.org",
        "a..b@x.org",
        "a@x..org",
        "a.@x.org",
        "Bob, Home <b@x.org>",
    ] {
        assert!(m(bad).is_err(), "{bad:?} read as {:?}", m(bad));
    }
}

#[test]
fn message_ids_are_checked() {
    for (good, bare) in [
        ("<a.b@c.example>", "a.b@c.example"),
        ("a$b#c@host", "a$b#c@host"),
        ("<x@[127.0.0.1]>", "x@[127.0.0.1]"),
        ("ü@ö.example", "ü@ö.example"),
    ] {
        assert_eq!(message_id(good), Some(bare), "{good:?}");
    }
    for bad in [
        "",
        "<>",
        "no-at-sign",
        "a@b>\r\nBcc: c@d",
        "a@b\nX: y",
        "a b@c",
        "<a@b> <c@d>",
        "a@b>",
        "<a@b",
        "a@@b",
        ".a@b",
        "a@b.",
        "a\"@b",
        "a@[b]c",
        "a\u{0}@b",
        "a@b\u{85}",
    ] {
        assert_eq!(message_id(bad), None, "{bad:?}");
    }
    assert_eq!(message_id(&format!("{}@b", "a".repeat(300))), None);
}

#[test]
fn fields_after_a_line_that_ends_the_header_are_noticed() {
    let stray = |s: &str| raw_header(s.as_bytes()).stray_field;
    assert!(stray("From: a@x\r\nnot a field\r\nFrom: b@y\r\n\r\nbody"));
    assert!(stray("\tcontinued\r\nFrom: b@y\r\n"));
    assert!(!stray("From: a@x\r\n\r\nTo: b@y\r\n"));
    assert!(!stray("From: a@x\n\nTo: b@y\n"));
    assert!(!stray("From: a@x\r\nhello there\r\n\r\nTo: b@y\r\n"));
    assert!(!stray("From: a@x\r\n"));
    assert!(!stray("\r\nTo: b@y\r\n"));
    let h = raw_header(b"From: a@x\r\nSubject: s\r\n\r\nb");
    assert_eq!(h.fields.len(), 2);
    assert_eq!(h.body_start, 25);
}
