use super::*;

const LIMIT: u64 = 100;

/// Every frame of `input`, fed whole and then one octet at a time: both must agree.
fn frames(input: &[u8], limit: u64) -> Vec<Frame> {
    let collect = |chunk: usize| {
        let mut f = Framer::new();
        let mut out = Vec::new();
        for part in input.chunks(chunk) {
            f.extend(part);
            loop {
                match f.next(limit) {
                    Frame::Incomplete => break,
                    // The session ends there.
                    frame @ Frame::Fatal(_) => {
                        out.push(frame);
                        return out;
                    }
                    frame => out.push(frame),
                }
            }
        }
        out
    };
    let whole = collect(input.len().max(1));
    for chunk in [1, 2, 3, 7] {
        assert_eq!(collect(chunk), whole, "chunks of {chunk}");
    }
    whole
}

fn atom(s: &str) -> Token {
    Token::Atom(s.into())
}
fn string(s: &str) -> Token {
    Token::Str(s.as_bytes().to_vec())
}

#[test]
fn atoms_quoted_strings_and_both_literal_forms() {
    let input = b"Capability\r\nPUTSCRIPT \"a \\\"b\\\" \\\\c\" {5+}\r\nkeep;\r\n\
                  CHECKSCRIPT {7}\r\nstop;\r\n\r\nnoop\n";
    assert_eq!(
        frames(input, LIMIT),
        [
            Frame::Line(vec![atom("Capability")]),
            Frame::Line(vec![
                atom("PUTSCRIPT"),
                string("a \"b\" \\c"),
                string("keep;")
            ]),
            Frame::Line(vec![atom("CHECKSCRIPT"), string("stop;\r\n")]),
            Frame::Line(vec![atom("noop")]),
        ]
    );
}

#[test]
fn a_literal_may_be_followed_by_more_arguments() {
    assert_eq!(
        frames(b"RENAMESCRIPT {3+}\r\nold {3+}\r\nnew\r\n", LIMIT),
        [Frame::Line(vec![
            atom("RENAMESCRIPT"),
            string("old"),
            string("new")
        ])]
    );
}

#[test]
fn a_literal_over_the_limit_is_refused_skipped_and_the_session_goes_on() {
    let mut input = b"PUTSCRIPT \"big\" {150+}\r\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', 150));
    input.extend(b"\r\nNOOP\r\n");
    assert_eq!(
        frames(&input, LIMIT),
        [
            Frame::LiteralTooLarge {
                name: Some("PUTSCRIPT".into()),
                size: 150
            },
            Frame::Line(vec![atom("NOOP")]),
        ]
    );
    // Even when its octets hold line ends and literal headers.
    let mut input = b"CHECKSCRIPT {120}\r\n".to_vec();
    input.extend(b"NOOP\r\n{5+}\r\n".repeat(10));
    input.extend(b"\r\nLOGOUT\r\n");
    assert_eq!(
        frames(&input, LIMIT),
        [
            Frame::LiteralTooLarge {
                name: Some("CHECKSCRIPT".into()),
                size: 120
            },
            Frame::Line(vec![atom("LOGOUT")]),
        ]
    );
}

#[test]
fn a_literal_too_large_to_skip_is_fatal() {
    let input = format!("PUTSCRIPT \"x\" {{{}+}}\r\n", MAX_SKIP + 1);
    assert!(matches!(
        frames(input.as_bytes(), LIMIT)[..],
        [Frame::Fatal(_)]
    ));
    assert!(matches!(
        frames(b"PUTSCRIPT \"x\" {99999999999+}\r\n", LIMIT)[..],
        [Frame::Bad(_), ..]
    ));
}

#[test]
fn bad_lines_are_dropped_whole_including_their_literals() {
    let frames = frames(
        b"PUTSCRIPT \"a\rb\" {4+}\r\nNOOP\r\nLOGOUT\r\nGETSCRIPT \"x\" junk \"y\" z\r\nNOOP\r\n",
        LIMIT,
    );
    assert!(
        matches!(&frames[0], Frame::Bad(why) if why.contains("quoted")),
        "{frames:?}"
    );
    // The dropped line ended with a literal header: its 4 octets ("NOOP") went with it.
    assert_eq!(frames[1], Frame::Line(vec![atom("LOGOUT")]));
    assert!(matches!(&frames[2], Frame::Bad(why) if why.contains("too many")));
    assert_eq!(frames[3], Frame::Line(vec![atom("NOOP")]));
    assert_eq!(frames.len(), 4);
    for bad in [
        &b"NOOP \"x\\y\"\r\n"[..],
        b"NOOP a(b\r\n",
        b"NOOP {3+} x\r\n",
        b"NOOP\rx\r\n",
    ] {
        let f = self::frames(bad, LIMIT);
        assert!(matches!(f[..], [Frame::Bad(_)]), "{bad:?}: {f:?}");
    }
}

#[test]
fn long_lines_and_quoted_strings_are_bounded() {
    let mut long = b"NOOP ".to_vec();
    long.extend(std::iter::repeat_n(b'a', MAX_LINE + 10));
    long.extend(b"\r\nLOGOUT\r\n");
    assert_eq!(
        frames(&long, LIMIT),
        [Frame::TooLong, Frame::Line(vec![atom("LOGOUT")])]
    );
    let quoted = format!("NOOP \"{}\"\r\n", "q".repeat(MAX_QUOTED + 1));
    assert!(matches!(
        frames(quoted.as_bytes(), LIMIT)[..],
        [Frame::Bad(_)]
    ));
    let quoted = format!("NOOP \"{}\"\r\n", "q".repeat(MAX_QUOTED));
    assert!(matches!(
        frames(quoted.as_bytes(), LIMIT)[..],
        [Frame::Line(_)]
    ));
    // A line growing without end is cut while it grows, not when it ends.
    let mut f = Framer::new();
    f.extend(&vec![b'x'; MAX_LINE + 1]);
    assert_eq!(f.next(LIMIT), Frame::TooLong);
    f.extend(&vec![b'x'; 100_000]);
    assert_eq!(f.next(LIMIT), Frame::Incomplete);
    assert!(f.buf.len() <= 24, "nothing of a dropped line is kept");
}

fn parse(line: &[u8]) -> Result<Command, String> {
    let mut f = Framer::new();
    f.extend(line);
    match f.next(LIMIT) {
        Frame::Line(tokens) => Command::parse(tokens),
        other => panic!("{other:?}"),
    }
}

#[test]
fn commands_and_their_arguments() {
    assert_eq!(
        parse(b"authenticate \"PLAIN\" \"AGEAYg==\"\r\n"),
        Ok(Command::Authenticate {
            mechanism: "PLAIN".into(),
            initial: Some("AGEAYg==".into())
        })
    );
    assert_eq!(
        parse(b"AUTHENTICATE LOGIN\r\n"),
        Ok(Command::Authenticate {
            mechanism: "LOGIN".into(),
            initial: None
        })
    );
    assert_eq!(
        parse(b"HAVESPACE \"s\" 1234\r\n"),
        Ok(Command::HaveSpace {
            name: "s".into(),
            size: 1234
        })
    );
    assert_eq!(
        parse(b"NOOP \"STARTTLS-SYNC-42\"\r\n"),
        Ok(Command::Noop {
            tag: Some(b"STARTTLS-SYNC-42".to_vec())
        })
    );
    assert_eq!(
        parse(b"SETACTIVE \"\"\r\n"),
        Ok(Command::SetActive {
            name: String::new()
        })
    );
    assert_eq!(parse(b"unauthenticate\r\n"), Ok(Command::Unauthenticate));
    for (line, why) in [
        (&b"HAVESPACE \"s\" many\r\n"[..], "invalid size"),
        (b"GETSCRIPT name\r\n", "expected a string"),
        (b"GETSCRIPT\r\n", "wrong arguments for GETSCRIPT"),
        (b"LOGOUT now\r\n", "wrong arguments"),
        (b"FROB\r\n", "unknown command FROB"),
        (b"\"GETSCRIPT\"\r\n", "starts with its name"),
        (b"GETSCRIPT \"\xff\"\r\n", "not UTF-8"),
    ] {
        let e = parse(line).expect_err("refused");
        assert!(e.contains(why), "{line:?}: {e}");
    }
}

#[test]
fn strings_are_written_quoted_or_as_literals() {
    let written = |s: &[u8]| {
        let mut out = Vec::new();
        write_string(&mut out, s);
        String::from_utf8(out).unwrap()
    };
    assert_eq!(written(b"plain"), "\"plain\"");
    assert_eq!(written(b"a \"b\" \\"), "\"a \\\"b\\\" \\\\\"");
    assert_eq!(written(b"line 1\r\nline 2"), "{14}\r\nline 1\r\nline 2");
    let long = vec![b'a'; MAX_QUOTED + 1];
    assert!(written(&long).starts_with("{1025}\r\n"));
    // What is written reads back the same.
    for s in [&b"a \"b\" \\"[..], b"x\r\ny"] {
        let mut line = b"NOOP ".to_vec();
        write_string(&mut line, s);
        line.extend(b"\r\n");
        let mut f = Framer::new();
        f.extend(&line);
        assert_eq!(
            f.next(2000),
            Frame::Line(vec![atom("NOOP"), Token::Str(s.to_vec())])
        );
    }
}
