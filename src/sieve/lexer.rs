//! The Sieve lexer (RFC 5228 §8.1): identifiers, tags, numbers with K/M/G quantifiers,
//! quoted and multi-line strings, comments, and the punctuation of the grammar. Each token
//! carries the 1-based line and column where it starts, for error messages.

use super::CompileError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    Ident(String),
    /// `:name`, stored without the colon, lower case (tags are case-insensitive).
    Tag(String),
    Number(u64),
    Str(String),
    LBracket,
    RBracket,
    LParen,
    RParen,
    LBrace,
    RBrace,
    Comma,
    Semicolon,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    pub line: u32,
    pub column: u32,
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
    line: u32,
    column: u32,
}

/// Splits `source` into tokens, or says where the first lexical error is.
pub(crate) fn tokenize(source: &str) -> Result<Vec<Token>, CompileError> {
    let mut lx = Lexer {
        chars: source.chars().collect(),
        pos: 0,
        line: 1,
        column: 1,
    };
    let mut out = Vec::new();
    loop {
        lx.skip_space()?;
        let (line, column) = (lx.line, lx.column);
        let Some(c) = lx.peek() else { break };
        let tok = match c {
            '[' | ']' | '(' | ')' | '{' | '}' | ',' | ';' => {
                lx.bump();
                match c {
                    '[' => Tok::LBracket,
                    ']' => Tok::RBracket,
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    '{' => Tok::LBrace,
                    '}' => Tok::RBrace,
                    ',' => Tok::Comma,
                    _ => Tok::Semicolon,
                }
            }
            '"' => lx.quoted(line, column)?,
            ':' => {
                lx.bump();
                match lx.peek() {
                    Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                        Tok::Tag(lx.identifier().to_ascii_lowercase())
                    }
                    _ => return Err(err(line, column, "a tag needs a name after ':'")),
                }
            }
            c if c.is_ascii_digit() => lx.number(line, column)?,
            c if c.is_ascii_alphabetic() || c == '_' => {
                let ident = lx.identifier();
                if ident.eq_ignore_ascii_case("text") && lx.peek() == Some(':') {
                    lx.bump();
                    lx.multiline(line, column)?
                } else {
                    Tok::Ident(ident.to_ascii_lowercase())
                }
            }
            other => {
                return Err(err(
                    line,
                    column,
                    &format!("unexpected character {other:?}"),
                ));
            }
        };
        out.push(Token { tok, line, column });
    }
    Ok(out)
}

pub(crate) fn err(line: u32, column: u32, message: &str) -> CompileError {
    CompileError {
        line,
        column,
        message: message.to_string(),
    }
}

impl Lexer {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        if c == '\n' {
            self.line = self.line.saturating_add(1);
            self.column = 1;
        } else {
            self.column = self.column.saturating_add(1);
        }
        Some(c)
    }

    /// Whitespace, `#` comments to the end of the line and `/* */` comments.
    fn skip_space(&mut self) -> Result<(), CompileError> {
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\r' | '\n' => {
                    self.bump();
                }
                '#' => {
                    while let Some(c) = self.bump() {
                        if c == '\n' {
                            break;
                        }
                    }
                }
                '/' if self.peek_at(1) == Some('*') => {
                    let (line, column) = (self.line, self.column);
                    self.bump();
                    self.bump();
                    loop {
                        match self.bump() {
                            None => return Err(err(line, column, "unterminated comment")),
                            Some('*') if self.peek() == Some('/') => {
                                self.bump();
                                break;
                            }
                            Some(_) => {}
                        }
                    }
                }
                _ => break,
            }
        }
        Ok(())
    }

    fn identifier(&mut self) -> String {
        let mut s = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                s.push(c);
                self.bump();
            } else {
                break;
            }
        }
        s
    }

    fn number(&mut self, line: u32, column: u32) -> Result<Tok, CompileError> {
        let too_big = || err(line, column, "number too large");
        let mut n: u64 = 0;
        while let Some(d) = self.peek().and_then(|c| c.to_digit(10)) {
            self.bump();
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(d)))
                .ok_or_else(too_big)?;
        }
        let shift = match self.peek().map(|c| c.to_ascii_uppercase()) {
            Some('K') => 10,
            Some('M') => 20,
            Some('G') => 30,
            _ => 0,
        };
        if shift > 0 {
            self.bump();
            n = n.checked_mul(1 << shift).ok_or_else(too_big)?;
        }
        if self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(err(
                self.line,
                self.column,
                "unexpected character after number",
            ));
        }
        Ok(Tok::Number(n))
    }

    /// A quoted string: `\"` and `\\` are escapes; a backslash before anything else is
    /// dropped (RFC 5228 §2.4.2: "undefined escape sequences" are the character itself).
    fn quoted(&mut self, line: u32, column: u32) -> Result<Tok, CompileError> {
        self.bump();
        let mut s = String::new();
        loop {
            match self.bump() {
                None => return Err(err(line, column, "unterminated string")),
                Some('"') => return Ok(Tok::Str(s)),
                Some('\\') => match self.bump() {
                    None => return Err(err(line, column, "unterminated string")),
                    Some(c) => s.push(c),
                },
                Some(c) => s.push(c),
            }
        }
    }

    /// `text:` up to a line holding a single `.`; lines starting with `..` lose one dot.
    /// Line ends become CRLF, as the grammar writes them.
    fn multiline(&mut self, line: u32, column: u32) -> Result<Tok, CompileError> {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.bump();
        }
        match self.peek() {
            Some('#') => {
                while let Some(c) = self.bump() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            Some('\r') if self.peek_at(1) == Some('\n') => {
                self.bump();
                self.bump();
            }
            Some('\n') => {
                self.bump();
            }
            _ => {
                return Err(err(
                    self.line,
                    self.column,
                    "'text:' must be followed by the end of the line",
                ));
            }
        }
        let mut s = String::new();
        loop {
            if self.peek().is_none() {
                return Err(err(line, column, "unterminated multi-line string"));
            }
            let mut text = String::new();
            let mut ended = false;
            while let Some(c) = self.bump() {
                if c == '\n' {
                    ended = true;
                    break;
                }
                text.push(c);
            }
            if text.ends_with('\r') {
                text.pop();
            }
            if text == "." {
                return Ok(Tok::Str(s));
            }
            if !ended {
                return Err(err(line, column, "unterminated multi-line string"));
            }
            let text = text
                .strip_prefix('.')
                .filter(|t| t.starts_with('.'))
                .unwrap_or(&text);
            s.push_str(text);
            s.push_str("\r\n");
        }
    }
}
