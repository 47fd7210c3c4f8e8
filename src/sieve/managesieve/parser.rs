//! ManageSieve's command grammar (RFC 5804 §4), pure and bounded: a [`Framer`] cuts the bytes a
//! client sends into lines of tokens (atoms, quoted strings, literals), and [`Command::parse`]
//! reads a line's tokens as a command.
//!
//! A command is a line, except that a literal (`{n+}` CRLF and n octets; RFC 5804 has clients
//! send only the non-synchronizing form, and `{n}` is taken the same way since the protocol
//! has no continuation for a client to wait for) carries the line on after its octets. Every
//! part is bounded: the octets outside literals ([`MAX_LINE`]), quoted strings
//! ([`MAX_QUOTED`], RFC 5804 §4), the tokens of a command ([`MAX_TOKENS`]) and each literal
//! (the caller's limit, decided from the `{n+}` before any octet of it is kept). A literal
//! over the limit is skipped as it arrives, up to [`MAX_SKIP`] octets, so a client that sent a
//! script too large gets `NO (QUOTA/MAXSIZE)` and can go on; past that the connection ends.

/// Octets of one command outside its literals.
pub const MAX_LINE: usize = 8 * 1024;
/// Octets inside one quoted string (RFC 5804 §4 `quoted`).
pub const MAX_QUOTED: usize = 1024;
/// Tokens of one command, its name included: no command takes more than two arguments.
pub const MAX_TOKENS: usize = 4;
/// The largest literal skipped after refusing it; a larger one closes the connection.
pub const MAX_SKIP: u64 = 16 << 20;

/// One token of a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// A command name, a number, an unquoted mechanism name.
    Atom(String),
    /// A quoted string (unescaped) or a literal's octets.
    Str(Vec<u8>),
}

/// What the framer found in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A whole command line.
    Line(Vec<Token>),
    /// More input is needed.
    Incomplete,
    /// The line is not well formed; the rest of it is being dropped.
    Bad(String),
    /// The line is longer than [`MAX_LINE`]; the rest of it is being dropped.
    TooLong,
    /// A literal of `size` octets, over the caller's limit, is being skipped with the rest of
    /// its command; `name` is the command's first token when it was an atom.
    LiteralTooLarge { name: Option<String>, size: u64 },
    /// Nothing sensible can follow (a literal too large even to skip): close the connection.
    Fatal(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading commands.
    Normal,
    /// Dropping the rest of a refused command, up to the end of its line.
    Dropping,
    /// Skipping the octets of a refused literal, then dropping the rest of its command.
    Skipping(u64),
}

/// Cuts client input into command lines.
#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    state: State,
}

impl Default for Framer {
    fn default() -> Self {
        Framer::new()
    }
}

/// How parsing the buffered input from its start ended.
enum Scan {
    Line(Vec<Token>, usize),
    Incomplete,
    Bad(String, usize),
    TooLong,
    LiteralTooLarge(Option<String>, u64, usize),
    Fatal(String),
}

impl Framer {
    pub fn new() -> Framer {
        Framer {
            buf: Vec::new(),
            state: State::Normal,
        }
    }

    pub fn extend(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Drops everything buffered (STARTTLS: nothing sent in clear is read after it).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.state = State::Normal;
    }

    /// True when input is buffered beyond the commands returned so far.
    pub fn has_input(&self) -> bool {
        !self.buf.is_empty()
    }

    /// The next frame; literals may hold up to `max_literal` octets.
    pub fn next(&mut self, max_literal: u64) -> Frame {
        loop {
            match self.state {
                State::Skipping(left) => {
                    let n = usize::try_from(left)
                        .unwrap_or(usize::MAX)
                        .min(self.buf.len());
                    self.buf.drain(..n);
                    let left = left - n as u64;
                    if left > 0 {
                        self.state = State::Skipping(left);
                        return Frame::Incomplete;
                    }
                    self.state = State::Dropping;
                }
                State::Dropping => {
                    let Some(end) = self.buf.iter().position(|&b| b == b'\n') else {
                        // Nothing of the dropped line is kept, but a literal header at its
                        // end must be seen whole: keep a short tail.
                        let keep = self.buf.len().min(24);
                        self.buf.drain(..self.buf.len() - keep);
                        return Frame::Incomplete;
                    };
                    let literal = self
                        .buf
                        .get(..end)
                        .and_then(|line| literal_header(strip_cr(line)));
                    self.buf.drain(..=end);
                    self.state = match literal {
                        Some((size, _)) if size > MAX_SKIP => {
                            return Frame::Fatal(format!(
                                "a literal of {size} octets in a refused command"
                            ));
                        }
                        Some((size, _)) => State::Skipping(size),
                        None => State::Normal,
                    };
                }
                State::Normal => {
                    return match self.scan(max_literal) {
                        Scan::Line(tokens, used) => {
                            self.buf.drain(..used);
                            if tokens.is_empty() {
                                // An empty line: nothing was asked.
                                continue;
                            }
                            Frame::Line(tokens)
                        }
                        Scan::Incomplete => Frame::Incomplete,
                        Scan::Bad(why, used) => {
                            self.buf.drain(..used);
                            self.state = State::Dropping;
                            Frame::Bad(why)
                        }
                        Scan::TooLong => {
                            self.state = State::Dropping;
                            Frame::TooLong
                        }
                        Scan::LiteralTooLarge(name, size, used) => {
                            self.buf.drain(..used);
                            self.state = State::Skipping(size);
                            Frame::LiteralTooLarge { name, size }
                        }
                        Scan::Fatal(why) => Frame::Fatal(why),
                    };
                }
            }
        }
    }

    /// Parses one command from the start of the buffer.
    fn scan(&self, max_literal: u64) -> Scan {
        let buf = &self.buf;
        let mut tokens = Vec::new();
        let mut pos = 0;
        // Octets outside literals so far.
        let mut text = 0;
        loop {
            if text > MAX_LINE {
                return Scan::TooLong;
            }
            let Some(&b) = buf.get(pos) else {
                return if text + (buf.len() - pos) > MAX_LINE {
                    Scan::TooLong
                } else {
                    Scan::Incomplete
                };
            };
            match b {
                b' ' => {
                    pos += 1;
                    text += 1;
                }
                b'\n' => return Scan::Line(tokens, pos + 1),
                b'\r' => match buf.get(pos + 1) {
                    Some(b'\n') => return Scan::Line(tokens, pos + 2),
                    Some(_) => return Scan::Bad("CR without LF".into(), pos),
                    None => return Scan::Incomplete,
                },
                _ if tokens.len() >= MAX_TOKENS => {
                    return Scan::Bad("too many arguments".into(), pos);
                }
                b'"' => match quoted(buf.get(pos..).unwrap_or_default()) {
                    Quoted::Done(s, len) => {
                        tokens.push(Token::Str(s));
                        pos += len;
                        text += len;
                    }
                    Quoted::Incomplete if text + (buf.len() - pos) > MAX_LINE => {
                        return Scan::TooLong;
                    }
                    Quoted::Incomplete => return Scan::Incomplete,
                    Quoted::Bad(why) => return Scan::Bad(why.into(), pos),
                },
                b'{' => {
                    let rest = buf.get(pos..).unwrap_or_default();
                    let Some(close) = rest.iter().take(16).position(|&c| c == b'}') else {
                        return if rest.len() < 16 {
                            Scan::Incomplete
                        } else {
                            Scan::Bad("malformed literal".into(), pos)
                        };
                    };
                    let Some((size, _)) = rest.get(..=close).and_then(literal_header) else {
                        return Scan::Bad("malformed literal".into(), pos);
                    };
                    let after = pos + close + 1;
                    let start = match (buf.get(after), buf.get(after + 1)) {
                        (Some(b'\n'), _) => after + 1,
                        (Some(b'\r'), Some(b'\n')) => after + 2,
                        (None, _) | (Some(b'\r'), None) => return Scan::Incomplete,
                        _ => return Scan::Bad("a literal's size must end the line".into(), pos),
                    };
                    if size > max_literal {
                        if size > MAX_SKIP {
                            return Scan::Fatal(format!("literal of {size} octets"));
                        }
                        let name = match tokens.first() {
                            Some(Token::Atom(a)) => Some(a.clone()),
                            _ => None,
                        };
                        return Scan::LiteralTooLarge(name, size, start);
                    }
                    text += start - pos;
                    // Within max_literal, which a caller keeps far below usize::MAX.
                    let len = usize::try_from(size).unwrap_or(usize::MAX);
                    let Some(octets) = buf.get(start..start.saturating_add(len)) else {
                        return Scan::Incomplete;
                    };
                    tokens.push(Token::Str(octets.to_vec()));
                    pos = start + len;
                }
                _ => {
                    let rest = buf.get(pos..).unwrap_or_default();
                    let len = rest
                        .iter()
                        .position(|&c| matches!(c, b' ' | b'\r' | b'\n'))
                        .unwrap_or(rest.len());
                    if pos + len == buf.len() {
                        return if text + len > MAX_LINE {
                            Scan::TooLong
                        } else {
                            Scan::Incomplete
                        };
                    }
                    let atom = rest.get(..len).unwrap_or_default();
                    if !atom.iter().all(|&c| is_atom_char(c)) {
                        return Scan::Bad("invalid character".into(), pos);
                    }
                    tokens.push(Token::Atom(String::from_utf8_lossy(atom).into_owned()));
                    pos += len;
                    text += len;
                }
            }
        }
    }
}

/// RFC 5804 `ATOM-CHAR`: a printable ASCII character other than the atom specials.
fn is_atom_char(c: u8) -> bool {
    c.is_ascii_graphic() && !b"(){%*\"\\]".contains(&c)
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// `{n+}` or `{n}` at the end of `line`: the size and whether it had the `+`.
fn literal_header(line: &[u8]) -> Option<(u64, bool)> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&c| c == b'{')?;
    let inner = inner.get(open + 1..)?;
    let (digits, plus) = match inner.strip_suffix(b"+") {
        Some(d) => (d, true),
        None => (inner, false),
    };
    // RFC 5804 `number`: a 32-bit unsigned number.
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let size: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    (size <= u64::from(u32::MAX)).then_some((size, plus))
}

enum Quoted {
    /// The unescaped octets and the length taken, quotes included.
    Done(Vec<u8>, usize),
    Incomplete,
    Bad(&'static str),
}

/// A quoted string at the start of `input` (which starts with `"`).
fn quoted(input: &[u8]) -> Quoted {
    let mut out = Vec::new();
    let mut i = 1;
    loop {
        match input.get(i) {
            None => return Quoted::Incomplete,
            Some(b'"') => return Quoted::Done(out, i + 1),
            Some(b'\\') => match input.get(i + 1) {
                Some(&c @ (b'"' | b'\\')) => {
                    out.push(c);
                    i += 2;
                }
                Some(_) => return Quoted::Bad("only \\\" and \\\\ may be escaped"),
                None => return Quoted::Incomplete,
            },
            Some(b'\r' | b'\n' | 0) => return Quoted::Bad("a quoted string ends on its line"),
            Some(&c) => {
                out.push(c);
                i += 1;
            }
        }
        if out.len() > MAX_QUOTED {
            return Quoted::Bad("quoted string too long (use a literal)");
        }
    }
}

/// A command with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Authenticate {
        mechanism: String,
        initial: Option<String>,
    },
    StartTls,
    Logout,
    Capability,
    HaveSpace {
        name: String,
        size: u64,
    },
    PutScript {
        name: String,
        script: Vec<u8>,
    },
    ListScripts,
    SetActive {
        name: String,
    },
    GetScript {
        name: String,
    },
    DeleteScript {
        name: String,
    },
    RenameScript {
        old: String,
        new: String,
    },
    CheckScript {
        script: Vec<u8>,
    },
    Noop {
        tag: Option<Vec<u8>>,
    },
    Unauthenticate,
}

impl Command {
    /// Reads a command from a line's tokens; the error is the client's, said in a `NO`.
    pub fn parse(tokens: Vec<Token>) -> Result<Command, String> {
        let mut tokens = tokens.into_iter();
        let Some(Token::Atom(name)) = tokens.next() else {
            return Err("a command starts with its name".into());
        };
        let args: Vec<Token> = tokens.collect();
        let name = name.to_ascii_uppercase();
        let command = match (name.as_str(), args.as_slice()) {
            ("AUTHENTICATE", [mechanism]) => Command::Authenticate {
                mechanism: text(mechanism)?,
                initial: None,
            },
            ("AUTHENTICATE", [mechanism, initial]) => Command::Authenticate {
                mechanism: text(mechanism)?,
                initial: Some(string(initial)?),
            },
            ("STARTTLS", []) => Command::StartTls,
            ("LOGOUT", []) => Command::Logout,
            ("CAPABILITY", []) => Command::Capability,
            ("HAVESPACE", [name, Token::Atom(size)]) => Command::HaveSpace {
                name: string(name)?,
                size: size.parse().map_err(|_| format!("invalid size {size:?}"))?,
            },
            ("PUTSCRIPT", [name, Token::Str(script)]) => Command::PutScript {
                name: string(name)?,
                script: script.clone(),
            },
            ("LISTSCRIPTS", []) => Command::ListScripts,
            ("SETACTIVE", [name]) => Command::SetActive {
                name: string(name)?,
            },
            ("GETSCRIPT", [name]) => Command::GetScript {
                name: string(name)?,
            },
            ("DELETESCRIPT", [name]) => Command::DeleteScript {
                name: string(name)?,
            },
            ("RENAMESCRIPT", [old, new]) => Command::RenameScript {
                old: string(old)?,
                new: string(new)?,
            },
            ("CHECKSCRIPT", [Token::Str(script)]) => Command::CheckScript {
                script: script.clone(),
            },
            ("NOOP", []) => Command::Noop { tag: None },
            ("NOOP", [Token::Str(tag)]) => Command::Noop {
                tag: Some(tag.clone()),
            },
            ("UNAUTHENTICATE", []) => Command::Unauthenticate,
            (
                "AUTHENTICATE" | "STARTTLS" | "LOGOUT" | "CAPABILITY" | "HAVESPACE" | "PUTSCRIPT"
                | "LISTSCRIPTS" | "SETACTIVE" | "GETSCRIPT" | "DELETESCRIPT" | "RENAMESCRIPT"
                | "CHECKSCRIPT" | "NOOP" | "UNAUTHENTICATE",
                _,
            ) => return Err(format!("wrong arguments for {name}")),
            _ => return Err(format!("unknown command {name}")),
        };
        Ok(command)
    }

    /// The command's name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Authenticate { .. } => "AUTHENTICATE",
            Command::StartTls => "STARTTLS",
            Command::Logout => "LOGOUT",
            Command::Capability => "CAPABILITY",
            Command::HaveSpace { .. } => "HAVESPACE",
            Command::PutScript { .. } => "PUTSCRIPT",
            Command::ListScripts => "LISTSCRIPTS",
            Command::SetActive { .. } => "SETACTIVE",
            Command::GetScript { .. } => "GETSCRIPT",
            Command::DeleteScript { .. } => "DELETESCRIPT",
            Command::RenameScript { .. } => "RENAMESCRIPT",
            Command::CheckScript { .. } => "CHECKSCRIPT",
            Command::Noop { .. } => "NOOP",
            Command::Unauthenticate => "UNAUTHENTICATE",
        }
    }
}

/// A string argument as UTF-8 (script names, SASL data).
fn string(token: &Token) -> Result<String, String> {
    match token {
        Token::Str(octets) => {
            String::from_utf8(octets.clone()).map_err(|_| "a string is not UTF-8".to_string())
        }
        Token::Atom(a) => Err(format!("expected a string, not {a}")),
    }
}

/// An argument that may be an atom or a string (a SASL mechanism name).
fn text(token: &Token) -> Result<String, String> {
    match token {
        Token::Atom(a) => Ok(a.clone()),
        Token::Str(_) => string(token),
    }
}

/// Writes `s` as a ManageSieve string: quoted when it can be, else a literal (`{n}`, the
/// server-to-client form).
pub fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    let quotable = s.len() <= MAX_QUOTED && !s.iter().any(|&c| matches!(c, b'\r' | b'\n' | 0));
    if quotable {
        out.push(b'"');
        for &c in s {
            if c == b'"' || c == b'\\' {
                out.push(b'\\');
            }
            out.push(c);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
        out.extend_from_slice(s);
    }
}

#[cfg(test)]
mod tests;
