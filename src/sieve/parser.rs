//! The Sieve grammar (RFC 5228 §8.2) over the lexer's tokens, into a generic tree of commands
//! and tests with positions; `validate` then checks names and arguments and builds the typed
//! script. Nesting is bounded here so that neither parsing nor anything after it recurses
//! without limit.

use super::CompileError;
use super::lexer::{Tok, Token, err};

#[derive(Debug, Clone)]
pub(crate) struct Pos {
    pub line: u32,
    pub column: u32,
}

#[derive(Debug, Clone)]
pub(crate) enum ArgValue {
    Tag(String),
    Number(u64),
    /// A string or a string list; `list` tells whether it was written in brackets.
    Strings {
        values: Vec<String>,
        list: bool,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Arg {
    pub value: ArgValue,
    pub pos: Pos,
}

#[derive(Debug, Clone)]
pub(crate) struct TestNode {
    pub name: String,
    pub args: Vec<Arg>,
    pub tests: Vec<TestNode>,
    /// Whether the tests were written as a parenthesised list.
    pub test_list: bool,
    pub pos: Pos,
}

#[derive(Debug, Clone)]
pub(crate) struct CommandNode {
    pub name: String,
    pub args: Vec<Arg>,
    pub tests: Vec<TestNode>,
    /// Whether the arguments ended in a parenthesised test list (`anyof(…)`), as opposed to a
    /// single test.
    pub test_list: bool,
    pub block: Option<Vec<CommandNode>>,
    pub pos: Pos,
}

struct Parser<'a> {
    tokens: &'a [Token],
    pos: usize,
    max_nesting: usize,
    /// Where the input ends, for "unexpected end" errors.
    end: Pos,
}

/// Parses the whole script; `max_nesting` bounds blocks and test nesting alike.
pub(crate) fn parse(
    tokens: &[Token],
    end: Pos,
    max_nesting: usize,
) -> Result<Vec<CommandNode>, CompileError> {
    let mut p = Parser {
        tokens,
        pos: 0,
        max_nesting,
        end,
    };
    let commands = p.commands(0)?;
    if let Some(t) = p.peek() {
        return Err(err(t.line, t.column, "unexpected '}'"));
    }
    Ok(commands)
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn here(&self) -> Pos {
        match self.peek() {
            Some(t) => Pos {
                line: t.line,
                column: t.column,
            },
            None => self.end.clone(),
        }
    }

    fn error_here(&self, message: &str) -> CompileError {
        let p = self.here();
        let found = match self.peek().map(|t| &t.tok) {
            None => "the end of the script".to_string(),
            Some(t) => describe(t),
        };
        err(p.line, p.column, &format!("{message}, found {found}"))
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if self.peek().is_some_and(|t| &t.tok == tok) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Commands up to a `}` or the end (which the caller checks).
    fn commands(&mut self, depth: usize) -> Result<Vec<CommandNode>, CompileError> {
        let mut out = Vec::new();
        while let Some(t) = self.peek() {
            match &t.tok {
                Tok::RBrace => break,
                Tok::Ident(_) => out.push(self.command(depth)?),
                _ => return Err(self.error_here("expected a command")),
            }
        }
        Ok(out)
    }

    fn command(&mut self, depth: usize) -> Result<CommandNode, CompileError> {
        let pos = self.here();
        let name = match self.peek().map(|t| &t.tok) {
            Some(Tok::Ident(n)) => n.clone(),
            _ => return Err(self.error_here("expected a command")),
        };
        self.pos += 1;
        let args = self.arguments()?;
        let (tests, test_list) = self.tests_after_args(depth)?;
        let block = if self.eat(&Tok::Semicolon) {
            None
        } else if self.peek().is_some_and(|t| t.tok == Tok::LBrace) {
            if depth + 1 > self.max_nesting {
                return Err(self.error_here("blocks nested too deeply"));
            }
            self.pos += 1;
            let inner = self.commands(depth + 1)?;
            if !self.eat(&Tok::RBrace) {
                return Err(self.error_here("expected '}'"));
            }
            Some(inner)
        } else {
            return Err(self.error_here(&format!("expected ';' after command '{name}'")));
        };
        Ok(CommandNode {
            name,
            args,
            tests,
            test_list,
            block,
            pos,
        })
    }

    fn arguments(&mut self) -> Result<Vec<Arg>, CompileError> {
        let mut args = Vec::new();
        loop {
            let pos = self.here();
            let value = match self.peek().map(|t| &t.tok) {
                Some(Tok::Tag(t)) => ArgValue::Tag(t.clone()),
                Some(Tok::Number(n)) => ArgValue::Number(*n),
                Some(Tok::Str(s)) => ArgValue::Strings {
                    values: vec![s.clone()],
                    list: false,
                },
                Some(Tok::LBracket) => {
                    self.pos += 1;
                    ArgValue::Strings {
                        values: self.string_list()?,
                        list: true,
                    }
                }
                _ => return Ok(args),
            };
            if !matches!(value, ArgValue::Strings { list: true, .. }) {
                self.pos += 1;
            }
            args.push(Arg { value, pos });
        }
    }

    /// After `[`: strings separated by commas, then `]`.
    fn string_list(&mut self) -> Result<Vec<String>, CompileError> {
        let mut out = Vec::new();
        loop {
            match self.peek().map(|t| &t.tok) {
                Some(Tok::Str(s)) => {
                    out.push(s.clone());
                    self.pos += 1;
                }
                _ => return Err(self.error_here("expected a string in the string list")),
            }
            if self.eat(&Tok::RBracket) {
                return Ok(out);
            }
            if !self.eat(&Tok::Comma) {
                return Err(self.error_here("expected ',' or ']' in the string list"));
            }
        }
    }

    /// A single test, or a parenthesised list of them, or nothing.
    fn tests_after_args(&mut self, depth: usize) -> Result<(Vec<TestNode>, bool), CompileError> {
        match self.peek().map(|t| &t.tok) {
            Some(Tok::Ident(_)) => Ok((vec![self.test(depth + 1)?], false)),
            Some(Tok::LParen) => {
                self.pos += 1;
                let mut tests = vec![self.test(depth + 1)?];
                while self.eat(&Tok::Comma) {
                    tests.push(self.test(depth + 1)?);
                }
                if !self.eat(&Tok::RParen) {
                    return Err(self.error_here("expected ',' or ')' in the test list"));
                }
                Ok((tests, true))
            }
            _ => Ok((Vec::new(), false)),
        }
    }

    fn test(&mut self, depth: usize) -> Result<TestNode, CompileError> {
        if depth > self.max_nesting {
            return Err(self.error_here("tests nested too deeply"));
        }
        let pos = self.here();
        let name = match self.peek().map(|t| &t.tok) {
            Some(Tok::Ident(n)) => n.clone(),
            _ => return Err(self.error_here("expected a test")),
        };
        self.pos += 1;
        let args = self.arguments()?;
        let (tests, test_list) = self.tests_after_args(depth)?;
        Ok(TestNode {
            name,
            args,
            tests,
            test_list,
            pos,
        })
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(n) => format!("identifier '{n}'"),
        Tok::Tag(n) => format!("tag ':{n}'"),
        Tok::Number(n) => format!("number {n}"),
        Tok::Str(_) => "a string".to_string(),
        Tok::LBracket => "'['".to_string(),
        Tok::RBracket => "']'".to_string(),
        Tok::LParen => "'('".to_string(),
        Tok::RParen => "')'".to_string(),
        Tok::LBrace => "'{'".to_string(),
        Tok::RBrace => "'}'".to_string(),
        Tok::Comma => "','".to_string(),
        Tok::Semicolon => "';'".to_string(),
    }
}
