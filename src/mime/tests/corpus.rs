//! The fixture corpus, limits, and random inputs.

use super::*;

#[test]
fn search_body_is_capped_on_a_char_boundary() {
    let mut raw = b"Content-Type: text/plain; charset=utf-8\n\n".to_vec();
    for _ in 0..(text::SEARCH_BODY_MAX / 3 + 10) {
        raw.extend_from_slice("\u{20ac}x".as_bytes());
    }
    let a = check(&raw);
    assert!(a.search.body.len() <= text::SEARCH_BODY_MAX);
    assert!(a.search.body.len() > text::SEARCH_BODY_MAX - 4);
    assert_eq!(a.snippet.chars().count(), text::SNIPPET_CHARS);
}

#[test]
fn deep_nesting_is_capped_and_json_readable() {
    let levels = 200;
    let mut raw = String::new();
    for i in 0..levels {
        raw.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=b{i}\n\n--b{i}\n"
        ));
    }
    raw.push_str("Content-Type: text/plain\n\ndeep\n");
    for i in (0..levels).rev() {
        raw.push_str(&format!("--b{i}--\n"));
    }
    let a = check(raw.as_bytes());
    let mut depth = 0;
    let mut p = &a.body;
    while let Some(c) = p.parts.first() {
        depth += 1;
        p = c;
    }
    assert!(depth <= MAX_DEPTH + 1, "depth {depth}");

    // Messages inside messages, each with an envelope.
    let mut raw = String::new();
    for _ in 0..200 {
        raw.push_str("From: a@b.c\nContent-Type: message/rfc822\n\n");
    }
    raw.push_str("Subject: deepest\n\nx\n");
    let a = check(raw.as_bytes());
    let json = serde_json::to_string(&a).expect("json");
    let back: Analysis = serde_json::from_str(&json).expect("read back");
    assert_eq!(back, a);
}

#[test]
fn part_count_is_capped() {
    let mut raw = String::from("Content-Type: multipart/mixed; boundary=b\n\n");
    for _ in 0..(MAX_PARTS + 500) {
        raw.push_str("--b\n\nx\n");
    }
    raw.push_str("--b--\n");
    let a = check(raw.as_bytes());
    assert!(a.body.parts.len() <= MAX_PARTS);
    assert!(a.body.parts.len() > MAX_PARTS - 10);
    // Nothing is lost: the rest is the multipart's epilogue.
    assert_eq!(a.body.body_end as usize, raw.len());
}

#[test]
fn fixtures() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mime-corpus");
    // In the repository (tests/mime-corpus/README.md says where it comes from): the test
    // always runs, it cannot pass by not finding its messages.
    let entries = std::fs::read_dir(&dir).expect("tests/mime-corpus is in the repository");
    let mut seen = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "txt") {
            continue;
        }
        let raw = std::fs::read(&path).expect("read fixture");
        check(&raw);
        // The same with CRLF line endings.
        let mut crlf_raw = Vec::with_capacity(raw.len() * 2);
        for &b in &raw {
            if b == b'\n' {
                crlf_raw.push(b'\r');
            }
            crlf_raw.push(b);
        }
        check(&crlf_raw);
        seen += 1;
    }
    assert!(
        seen >= 40,
        "only {seen} fixtures found in {}",
        dir.display()
    );

    // Spot checks on a few of the tricky ones.
    let read = |name: &str| std::fs::read(dir.join(name)).expect("fixture");
    let raw = read("msg_07.txt");
    let a = check(&raw);
    assert!(a.has_attachment);
    assert_eq!(a.body.part(&[2]).expect("gif").media_subtype, "gif");
    let raw = read("msg_15.txt"); // inner multipart reuses the outer boundary
    let a = check(&raw);
    assert!(a.has_attachment);
    assert_eq!(a.body.part(&[1, 2]).expect("1.2").media_subtype, "html");
    assert_eq!(a.body.part(&[2]).expect("2").media_subtype, "gif");
    let raw = read("msg_33.txt"); // RFC 2231 boundary*
    assert_eq!(check(&raw).body.parts.len(), 2);
    let raw = read("msg_35.txt"); // no blank line after the header
    assert!(check(&raw).snippet.starts_with("counter to RFC 2822"));
    let raw = read("msg_36.txt"); // To: IETF-Announce:;
    let a = check(&raw);
    assert_eq!(
        a.envelope.to,
        vec![
            Address {
                mailbox: Some("IETF-Announce".into()),
                ..Address::default()
            },
            Address::default()
        ]
    );
    let raw = read("msg_02.txt"); // digest inside mixed
    let a = check(&raw);
    let digest = a.body.part(&[3]).expect("digest");
    assert_eq!(digest.media_subtype, "digest");
    assert!(digest.parts.iter().all(|p| p.message.is_some()));
    assert_eq!(
        a.body.part(&[3, 1, 1]).map(|p| body(&raw, p)),
        Some(&b"\nhello\n\n"[..])
    );
}

/// A small deterministic generator (no proptest in the dependencies).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Lcg(0x5eed);
    for _ in 0..2000 {
        let len = rng.below(600);
        let raw: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        check(&raw);
    }
}

#[test]
fn random_mime_soup_never_panics() {
    const PIECES: &[&str] = &[
        "\n",
        "\r\n",
        "\r",
        " ",
        "\t",
        ":",
        "From: ",
        "To: a@b.c, ",
        "Cc: g: x@y.z, <@r,@s:q@w.e>;, ",
        "Subject: =?utf-8?q?x=C3?= =?bogus?b?####?=",
        "Date: Mon, 32 Foo 99999 99:99:99 +9999",
        "Content-Type: multipart/mixed; boundary=b",
        "Content-Type: multipart/digest; boundary=\"b\"",
        "Content-Type: message/rfc822",
        "Content-Type: text/html; charset=shift_jis",
        "Content-Type: text/plain; charset*=utf-8''%E2%82",
        "Content-Type: a/b; x*0*=''%; x*1=\"",
        "Content-Transfer-Encoding: base64",
        "Content-Transfer-Encoding: quoted-printable",
        "Content-Disposition: attachment; filename=",
        "--b",
        "--b--",
        "--",
        "=",
        "=3",
        "<p>",
        "<",
        ">",
        "\"",
        "(",
        ")",
        "\\",
        "@",
        ",",
        ";",
        "\u{e9}",
        "\u{ff}",
        "From x\n",
        "aGVsbG8=",
    ];
    let mut rng = Lcg(42);
    for _ in 0..3000 {
        let n = rng.below(60);
        let mut raw = Vec::new();
        for _ in 0..n {
            let piece = PIECES[rng.below(PIECES.len())];
            raw.extend_from_slice(piece.as_bytes());
            if rng.below(8) == 0 {
                raw.push(rng.next() as u8);
            }
        }
        check(&raw);
    }
}
