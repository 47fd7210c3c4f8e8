//! POP3 input, pure: the line limits for the shared framer ([`crate::wire::line`]) and
//! command parsing ([`parse`]).
//!
//! A POP3 session reads two kinds of line: commands (RFC 2449 caps them at 255 octets; we
//! allow [`MAX_COMMAND`] to be lenient with clients that send long user names) and the base64
//! continuation lines of an AUTH exchange, which may be longer. The session says which limit
//! each time it asks the framer for a line; a bare LF ends a line as well as CRLF.
//!
//! Nothing here panics on peer input: no unwrap, no unchecked indexing.

use crate::wire::line::Limit;

/// The longest command line accepted, without its CRLF.
pub const MAX_COMMAND: usize = 512;
/// The longest AUTH continuation line accepted, without its CRLF.
pub const MAX_AUTH_LINE: usize = 8192;
/// [`MAX_COMMAND`] for the framer: POP3 limits count the line without its ending.
pub const COMMAND_LIMIT: Limit = Limit::Content(MAX_COMMAND);
/// [`MAX_AUTH_LINE`] for the framer.
pub const AUTH_LINE_LIMIT: Limit = Limit::Content(MAX_AUTH_LINE);

/// A POP3 command (RFC 1939, 2449, 2595, 5034).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    User(String),
    /// The whole rest of the line: a password may contain spaces (RFC 1939 §7).
    Pass(String),
    /// Recognised so it gets a clear refusal: APOP needs the clear-text password on the server.
    Apop,
    Stat,
    List(Option<u32>),
    Retr(u32),
    Dele(u32),
    Noop,
    Rset,
    Quit,
    Top {
        msg: u32,
        lines: u32,
    },
    Uidl(Option<u32>),
    Capa,
    Stls,
    /// `AUTH` alone lists the mechanisms (the RFC 1734 behaviour old clients rely on).
    Auth {
        mechanism: Option<String>,
        initial: Option<String>,
    },
}

impl Command {
    /// The keyword, for logs (never the arguments: they may be a password).
    pub fn name(&self) -> &'static str {
        match self {
            Command::User(_) => "USER",
            Command::Pass(_) => "PASS",
            Command::Apop => "APOP",
            Command::Stat => "STAT",
            Command::List(_) => "LIST",
            Command::Retr(_) => "RETR",
            Command::Dele(_) => "DELE",
            Command::Noop => "NOOP",
            Command::Rset => "RSET",
            Command::Quit => "QUIT",
            Command::Top { .. } => "TOP",
            Command::Uidl(_) => "UIDL",
            Command::Capa => "CAPA",
            Command::Stls => "STLS",
            Command::Auth { .. } => "AUTH",
        }
    }
}

/// Why a line is not a command; the text goes to the client after `-ERR `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty command")]
    Empty,
    /// The keyword is echoed only when it looks like one (1 to 4 letters, as every POP3
    /// keyword is), so a password typed as a command never reaches a reply or a log line.
    #[error("unknown command{}", .0.as_deref().map(|k| format!(" {k}")).unwrap_or_default())]
    Unknown(Option<String>),
    /// The command is known but its arguments are wrong; the text is its usage.
    #[error("syntax: {0}")]
    Syntax(&'static str),
}

/// Parses one command line (without its line ending).
pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    let line = trim(line);
    if line.is_empty() {
        return Err(ParseError::Empty);
    }
    let (keyword, rest) = match line.iter().position(|b| *b == b' ') {
        Some(sp) => (
            line.get(..sp).unwrap_or_default(),
            line.get(sp + 1..).unwrap_or_default(),
        ),
        None => (line, &[][..]),
    };
    let keyword = keyword.to_ascii_uppercase();
    let args: Vec<&[u8]> = rest
        .split(|b| *b == b' ' || *b == b'\t')
        .filter(|a| !a.is_empty())
        .collect();
    let usage = |u: &'static str| ParseError::Syntax(u);
    match keyword.as_slice() {
        b"USER" => match args.as_slice() {
            [name] => Ok(Command::User(text(name).ok_or(usage("USER name"))?)),
            _ => Err(usage("USER name")),
        },
        b"PASS" => {
            // Only the separator space is removed: the password is the rest, spaces included.
            let pass = text(rest).ok_or(usage("PASS password"))?;
            if pass.is_empty() {
                return Err(usage("PASS password"));
            }
            Ok(Command::Pass(pass))
        }
        b"APOP" => Ok(Command::Apop),
        b"STAT" => none(&args, Command::Stat, "STAT"),
        b"NOOP" => none(&args, Command::Noop, "NOOP"),
        b"RSET" => none(&args, Command::Rset, "RSET"),
        b"QUIT" => none(&args, Command::Quit, "QUIT"),
        b"CAPA" => none(&args, Command::Capa, "CAPA"),
        b"STLS" => none(&args, Command::Stls, "STLS"),
        b"LIST" => optional_msg(&args, "LIST [msg]").map(Command::List),
        b"UIDL" => optional_msg(&args, "UIDL [msg]").map(Command::Uidl),
        b"RETR" => match args.as_slice() {
            [n] => Ok(Command::Retr(msg_number(n).ok_or(usage("RETR msg"))?)),
            _ => Err(usage("RETR msg")),
        },
        b"DELE" => match args.as_slice() {
            [n] => Ok(Command::Dele(msg_number(n).ok_or(usage("DELE msg"))?)),
            _ => Err(usage("DELE msg")),
        },
        b"TOP" => match args.as_slice() {
            [n, lines] => Ok(Command::Top {
                msg: msg_number(n).ok_or(usage("TOP msg lines"))?,
                lines: line_count(lines).ok_or(usage("TOP msg lines"))?,
            }),
            _ => Err(usage("TOP msg lines")),
        },
        b"AUTH" => match args.as_slice() {
            [] => Ok(Command::Auth {
                mechanism: None,
                initial: None,
            }),
            [mech] => Ok(Command::Auth {
                mechanism: Some(text(mech).ok_or(usage("AUTH mechanism [initial-response]"))?),
                initial: None,
            }),
            [mech, initial] => Ok(Command::Auth {
                mechanism: Some(text(mech).ok_or(usage("AUTH mechanism [initial-response]"))?),
                initial: Some(text(initial).ok_or(usage("AUTH mechanism [initial-response]"))?),
            }),
            _ => Err(usage("AUTH mechanism [initial-response]")),
        },
        _ => Err(ParseError::Unknown(echoable(&keyword))),
    }
}

fn none(args: &[&[u8]], command: Command, usage: &'static str) -> Result<Command, ParseError> {
    if args.is_empty() {
        Ok(command)
    } else {
        Err(ParseError::Syntax(usage))
    }
}

fn optional_msg(args: &[&[u8]], usage: &'static str) -> Result<Option<u32>, ParseError> {
    match args {
        [] => Ok(None),
        [n] => msg_number(n).map(Some).ok_or(ParseError::Syntax(usage)),
        _ => Err(ParseError::Syntax(usage)),
    }
}

/// A message number: decimal digits only, at least 1, at most 10 digits that fit a u32.
fn msg_number(arg: &[u8]) -> Option<u32> {
    digits(arg).filter(|n| *n >= 1)
}

/// TOP's line count: 0 is allowed (headers only), and a count past u32 means "all of them".
fn line_count(arg: &[u8]) -> Option<u32> {
    if arg.is_empty() || !arg.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits(arg).unwrap_or(u32::MAX))
}

fn digits(arg: &[u8]) -> Option<u32> {
    if arg.is_empty() || arg.len() > 10 || !arg.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(arg).ok()?.parse().ok()
}

fn text(arg: &[u8]) -> Option<String> {
    String::from_utf8(arg.to_vec()).ok()
}

fn trim(line: &[u8]) -> &[u8] {
    let start = line
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(line.len());
    let end = line
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    line.get(start..end).unwrap_or_default()
}

/// An unknown keyword as it may be echoed: only when it is 1 to 4 ASCII letters.
fn echoable(keyword: &[u8]) -> Option<String> {
    (keyword.len() <= 4 && keyword.iter().all(u8::is_ascii_alphabetic))
        .then(|| String::from_utf8_lossy(keyword).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::line::{Frame, LineBuffer};

    fn auth(mech: Option<&str>, initial: Option<&str>) -> Command {
        Command::Auth {
            mechanism: mech.map(str::to_string),
            initial: initial.map(str::to_string),
        }
    }

    #[test]
    fn commands() {
        let ok: &[(&str, Command)] = &[
            (
                "USER alice@example.org",
                Command::User("alice@example.org".into()),
            ),
            ("user  bob ", Command::User("bob".into())),
            ("PASS secret", Command::Pass("secret".into())),
            ("PASS  two words ", Command::Pass(" two words".into())),
            ("APOP mrose c4c9334bac560ecc979e58001b3e22fb", Command::Apop),
            ("STAT", Command::Stat),
            ("stat", Command::Stat),
            ("LIST", Command::List(None)),
            ("LIST 2", Command::List(Some(2))),
            ("UIDL", Command::Uidl(None)),
            ("UIDL 4294967295", Command::Uidl(Some(u32::MAX))),
            ("RETR 1", Command::Retr(1)),
            ("DELE 10", Command::Dele(10)),
            ("NOOP", Command::Noop),
            ("RSET", Command::Rset),
            ("QUIT", Command::Quit),
            ("TOP 1 0", Command::Top { msg: 1, lines: 0 }),
            ("TOP 3 10", Command::Top { msg: 3, lines: 10 }),
            (
                "TOP 3 99999999999999",
                Command::Top {
                    msg: 3,
                    lines: u32::MAX,
                },
            ),
            ("CAPA", Command::Capa),
            ("STLS", Command::Stls),
            ("AUTH", auth(None, None)),
            ("AUTH PLAIN", auth(Some("PLAIN"), None)),
            (
                "AUTH PLAIN AGFsaWNlAHNlY3JldA==",
                auth(Some("PLAIN"), Some("AGFsaWNlAHNlY3JldA==")),
            ),
            ("AUTH PLAIN =", auth(Some("PLAIN"), Some("="))),
        ];
        for (line, want) in ok {
            assert_eq!(parse(line.as_bytes()).as_ref(), Ok(want), "{line:?}");
        }
        let bad: &[(&[u8], ParseError)] = &[
            (b"", ParseError::Empty),
            (b"   ", ParseError::Empty),
            (b"HELO x", ParseError::Unknown(Some("HELO".into()))),
            (b"\x01\xff", ParseError::Unknown(None)),
            (b"hunter2", ParseError::Unknown(None)),
            (b"AGFsaWNlAHNlY3JldA==", ParseError::Unknown(None)),
            (b"USER", ParseError::Syntax("USER name")),
            (b"USER a b", ParseError::Syntax("USER name")),
            (b"USER \xff", ParseError::Syntax("USER name")),
            (b"PASS", ParseError::Syntax("PASS password")),
            (b"PASS \xff\xfe", ParseError::Syntax("PASS password")),
            (b"STAT 1", ParseError::Syntax("STAT")),
            (b"LIST 0", ParseError::Syntax("LIST [msg]")),
            (b"LIST -1", ParseError::Syntax("LIST [msg]")),
            (b"LIST 1 2", ParseError::Syntax("LIST [msg]")),
            (b"LIST 4294967296", ParseError::Syntax("LIST [msg]")),
            (b"LIST +1", ParseError::Syntax("LIST [msg]")),
            (b"RETR", ParseError::Syntax("RETR msg")),
            (b"RETR x", ParseError::Syntax("RETR msg")),
            (b"DELE 1 2", ParseError::Syntax("DELE msg")),
            (b"TOP 1", ParseError::Syntax("TOP msg lines")),
            (b"TOP 0 1", ParseError::Syntax("TOP msg lines")),
            (b"TOP 1 -1", ParseError::Syntax("TOP msg lines")),
            (b"QUIT now", ParseError::Syntax("QUIT")),
            (
                b"AUTH a b c",
                ParseError::Syntax("AUTH mechanism [initial-response]"),
            ),
        ];
        for (line, want) in bad {
            assert_eq!(parse(line).as_ref(), Err(want), "{line:?}");
        }
    }

    #[test]
    fn commands_never_echo_arguments() {
        assert_eq!(Command::Pass("hunter2".into()).name(), "PASS");
        let err = parse(b"FOO secret").unwrap_err().to_string();
        assert_eq!(err, "unknown command FOO");
        let err = parse(b"s3cret").unwrap_err().to_string();
        assert_eq!(err, "unknown command");
    }

    /// Frames `input` fed in chunks of `chunk` bytes, parsing each line.
    fn frame_all(
        input: &[u8],
        chunk: usize,
        limit: Limit,
    ) -> Vec<Result<Result<Command, ParseError>, &'static str>> {
        let mut buf = LineBuffer::new();
        let mut out = Vec::new();
        for piece in input.chunks(chunk) {
            buf.extend(piece);
            loop {
                match buf.next_line(limit) {
                    Frame::Line(l) => out.push(Ok(parse(&l))),
                    Frame::TooLong => out.push(Err("too long")),
                    Frame::Incomplete => break,
                }
            }
            // Bounded: never more than the limit plus the chunk just read.
            assert!(
                buf.pending().len() <= MAX_COMMAND + 1 + chunk,
                "buffer grew to {}",
                buf.pending().len()
            );
        }
        out
    }

    #[test]
    fn framing_in_chunks_gives_the_same_commands() {
        let mut input = b"USER alice\r\nPASS s3cr3t pass\r\nSTAT\nLIST 1\r\n".to_vec();
        input.extend_from_slice(b"TOP 1 5\r\n");
        input.extend(std::iter::repeat_n(b'X', 2000));
        input.extend_from_slice(b"\r\nRETR 2\r\n\r\nQUIT\r\nNOOP");
        let want = frame_all(&input, input.len(), COMMAND_LIMIT);
        assert_eq!(
            want,
            vec![
                Ok(Ok(Command::User("alice".into()))),
                Ok(Ok(Command::Pass("s3cr3t pass".into()))),
                Ok(Ok(Command::Stat)),
                Ok(Ok(Command::List(Some(1)))),
                Ok(Ok(Command::Top { msg: 1, lines: 5 })),
                Err("too long"),
                Ok(Ok(Command::Retr(2))),
                Ok(Err(ParseError::Empty)),
                Ok(Ok(Command::Quit)),
            ]
        );
        for chunk in [1, 2, 3, 7, 64, 511, 513] {
            assert_eq!(
                frame_all(&input, chunk, COMMAND_LIMIT),
                want,
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn line_limit_is_exact() {
        let mut buf = LineBuffer::new();
        let mut line = b"NOOP".to_vec();
        line.resize(MAX_COMMAND, b' ');
        buf.extend(&line);
        buf.extend(b"\r\n");
        assert_eq!(buf.next_line(COMMAND_LIMIT), Frame::Line(line.clone()));
        line.push(b' ');
        buf.extend(&line);
        buf.extend(b"\r\n");
        assert_eq!(buf.next_line(COMMAND_LIMIT), Frame::TooLong);
        assert_eq!(buf.next_line(COMMAND_LIMIT), Frame::Incomplete);
        assert!(buf.is_empty());
        // A longer limit for AUTH continuation lines.
        buf.extend(&line);
        buf.extend(b"\n");
        assert_eq!(buf.next_line(AUTH_LINE_LIMIT), Frame::Line(line));
    }

    #[test]
    fn clear_forgets_pipelined_input() {
        let mut buf = LineBuffer::new();
        buf.extend(b"STLS\r\nUSER mallory\r\n");
        assert_eq!(buf.next_line(COMMAND_LIMIT), Frame::Line(b"STLS".to_vec()));
        buf.clear();
        assert_eq!(buf.next_line(COMMAND_LIMIT), Frame::Incomplete);
        // Clearing also ends a discard in progress.
        buf.extend(&[b'x'; 600]);
        assert_eq!(buf.next_line(COMMAND_LIMIT), Frame::Incomplete);
        buf.clear();
        buf.extend(b"NOOP\r\n");
        assert_eq!(buf.next_line(COMMAND_LIMIT), Frame::Line(b"NOOP".to_vec()));
    }
}
