//! From the parser's generic tree to the typed script: `require` first, every command, test
//! and tag known and its extension required, argument counts and types, conflicting tags.
//! Errors carry the line and column of the offending token. Commands here, tests and their
//! tags in `conditions`.

mod conditions;

use std::collections::BTreeSet;

use super::CompileError;
use super::EXTENSIONS;
use super::encoded;
use super::ir::{Command, FlagOp, Modifier, Test, VacationCmd};
use super::lexer::err;
use super::parser::{Arg, ArgValue, CommandNode, Pos};

/// What a tag takes after it.
#[derive(Clone, Copy, PartialEq)]
enum Param {
    None,
    Str,
    List,
    Number,
}

#[derive(Debug)]
enum Value {
    None,
    Str(String),
    List(Vec<String>),
    Number(u64),
}

struct Tagged {
    name: String,
    pos: Pos,
    value: Value,
}

/// One command's or test's arguments, split into tags and positional arguments.
struct Args {
    tags: Vec<Tagged>,
    positional: Vec<Arg>,
}

pub(crate) struct Validator {
    required: BTreeSet<String>,
}

/// Validates `nodes` (the whole script); returns the required extensions and the commands.
pub(crate) fn validate(nodes: &[CommandNode]) -> Result<(Vec<String>, Vec<Command>), CompileError> {
    let mut v = Validator {
        required: BTreeSet::new(),
    };
    let mut order = Vec::new();
    let mut rest = nodes;
    // RFC 5228 §3.2: require comes before any other command.
    while let Some((first, tail)) = rest.split_first() {
        if first.name != "require" {
            break;
        }
        if !first.tests.is_empty() || first.block.is_some() {
            return Err(at(&first.pos, "'require' takes only a string list"));
        }
        let [arg] = first.args.as_slice() else {
            return Err(at(&first.pos, "'require' takes one string list"));
        };
        let ArgValue::Strings { values, .. } = &arg.value else {
            return Err(at(&arg.pos, "'require' takes a string list"));
        };
        for ext in values {
            let ext = ext.to_ascii_lowercase();
            let builtin = ext == "comparator-i;octet" || ext == "comparator-i;ascii-casemap";
            if !builtin && !EXTENSIONS.contains(&ext.as_str()) {
                return Err(at(&arg.pos, &format!("unsupported extension \"{ext}\"")));
            }
            if v.required.insert(ext.clone()) {
                order.push(ext);
            }
        }
        rest = tail;
    }
    let commands = v.block(rest)?;
    Ok((order, commands))
}

fn at(pos: &Pos, message: &str) -> CompileError {
    err(pos.line, pos.column, message)
}

impl Validator {
    /// Whether `ext` is required, directly or by an extension that implies it
    /// (RFC 6131 §2: vacation-seconds; RFC 5235 §3.2: spamtestplus).
    fn has(&self, ext: &str) -> bool {
        self.required.contains(ext)
            || (ext == "vacation" && self.required.contains("vacation-seconds"))
            || (ext == "spamtest" && self.required.contains("spamtestplus"))
    }

    fn need(&self, ext: &str, pos: &Pos, what: &str) -> Result<(), CompileError> {
        if self.has(ext) {
            Ok(())
        } else {
            Err(at(
                pos,
                &format!("{what} needs the extension \"{ext}\" (require \"{ext}\";)"),
            ))
        }
    }

    /// A string as the script means it: encoded characters decoded when required.
    fn text(&self, s: &str) -> String {
        if self.has("encoded-character") {
            encoded::decode(s)
        } else {
            s.to_string()
        }
    }

    fn block(&self, nodes: &[CommandNode]) -> Result<Vec<Command>, CompileError> {
        let mut out = Vec::new();
        let mut i = 0;
        while let Some(node) = nodes.get(i) {
            i += 1;
            match node.name.as_str() {
                "if" => {
                    let mut branches = vec![(self.condition(node)?, self.body(node)?)];
                    let mut otherwise = None;
                    while let Some(next) = nodes.get(i) {
                        match next.name.as_str() {
                            "elsif" => {
                                branches.push((self.condition(next)?, self.body(next)?));
                                i += 1;
                            }
                            "else" => {
                                if !next.args.is_empty() || !next.tests.is_empty() {
                                    return Err(at(&next.pos, "'else' takes no arguments"));
                                }
                                otherwise = Some(self.body(next)?);
                                i += 1;
                                break;
                            }
                            _ => break,
                        }
                    }
                    out.push(Command::If {
                        branches,
                        otherwise,
                    });
                }
                "elsif" | "else" => {
                    return Err(at(
                        &node.pos,
                        &format!("'{}' without a preceding 'if'", node.name),
                    ));
                }
                "require" => {
                    return Err(at(&node.pos, "'require' must come before other commands"));
                }
                _ => out.push(self.command(node)?),
            }
        }
        Ok(out)
    }

    fn condition(&self, node: &CommandNode) -> Result<Test, CompileError> {
        if let Some(a) = node.args.first() {
            return Err(at(
                &a.pos,
                &format!("'{}' takes a test, not arguments", node.name),
            ));
        }
        match node.tests.as_slice() {
            [t] if !node.test_list => self.test(t),
            _ => Err(at(
                &node.pos,
                &format!("'{}' needs exactly one test", node.name),
            )),
        }
    }

    fn body(&self, node: &CommandNode) -> Result<Vec<Command>, CompileError> {
        match &node.block {
            Some(b) => self.block(b),
            None => Err(at(&node.pos, &format!("'{}' needs a block", node.name))),
        }
    }

    /// Splits arguments using `spec` (tag name → what it takes); tags must come first.
    fn args(
        &self,
        args: &[Arg],
        spec: &dyn Fn(&str) -> Option<Param>,
    ) -> Result<Args, CompileError> {
        let mut out = Args {
            tags: Vec::new(),
            positional: Vec::new(),
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match &a.value {
                ArgValue::Tag(name) => {
                    if !out.positional.is_empty() {
                        return Err(at(
                            &a.pos,
                            &format!("tag ':{name}' after positional arguments"),
                        ));
                    }
                    let Some(param) = spec(name) else {
                        return Err(at(&a.pos, &format!("unknown tag ':{name}'")));
                    };
                    if out.tags.iter().any(|t| &t.name == name) {
                        return Err(at(&a.pos, &format!("tag ':{name}' given twice")));
                    }
                    let value = match param {
                        Param::None => Value::None,
                        _ => {
                            let missing =
                                || at(&a.pos, &format!("tag ':{name}' needs an argument"));
                            let next = it.next().ok_or_else(missing)?;
                            match (param, &next.value) {
                                (Param::Number, ArgValue::Number(n)) => Value::Number(*n),
                                (
                                    Param::Str,
                                    ArgValue::Strings {
                                        values,
                                        list: false,
                                    },
                                ) => Value::Str(self.text(values.first().map_or("", |s| s))),
                                (Param::List, ArgValue::Strings { values, .. }) => {
                                    Value::List(values.iter().map(|s| self.text(s)).collect())
                                }
                                _ => {
                                    let want = match param {
                                        Param::Number => "a number",
                                        Param::Str => "a string",
                                        _ => "a string list",
                                    };
                                    return Err(at(
                                        &next.pos,
                                        &format!("tag ':{name}' needs {want}"),
                                    ));
                                }
                            }
                        }
                    };
                    out.tags.push(Tagged {
                        name: name.clone(),
                        pos: a.pos.clone(),
                        value,
                    });
                }
                _ => out.positional.push(a.clone()),
            }
        }
        Ok(out)
    }

    fn string(&self, arg: Option<&Arg>, pos: &Pos, what: &str) -> Result<String, CompileError> {
        match arg {
            Some(Arg {
                value:
                    ArgValue::Strings {
                        values,
                        list: false,
                    },
                ..
            }) => Ok(self.text(values.first().map_or("", |s| s))),
            Some(a) => Err(at(&a.pos, &format!("{what} must be a string"))),
            None => Err(at(pos, &format!("missing {what}"))),
        }
    }

    fn list(&self, arg: Option<&Arg>, pos: &Pos, what: &str) -> Result<Vec<String>, CompileError> {
        match arg {
            Some(Arg {
                value: ArgValue::Strings { values, .. },
                ..
            }) => Ok(values.iter().map(|s| self.text(s)).collect()),
            Some(a) => Err(at(&a.pos, &format!("{what} must be a string list"))),
            None => Err(at(pos, &format!("missing {what}"))),
        }
    }

    fn number(&self, arg: Option<&Arg>, pos: &Pos, what: &str) -> Result<u64, CompileError> {
        match arg {
            Some(Arg {
                value: ArgValue::Number(n),
                ..
            }) => Ok(*n),
            Some(a) => Err(at(&a.pos, &format!("{what} must be a number"))),
            None => Err(at(pos, &format!("missing {what}"))),
        }
    }

    fn count(&self, a: &Args, n: usize, pos: &Pos, name: &str) -> Result<(), CompileError> {
        if let Some(extra) = a.positional.get(n) {
            return Err(at(&extra.pos, &format!("too many arguments for '{name}'")));
        }
        if a.positional.len() < n {
            return Err(at(pos, &format!("too few arguments for '{name}'")));
        }
        Ok(())
    }

    fn no_tests(&self, node: &CommandNode) -> Result<(), CompileError> {
        if let Some(t) = node.tests.first() {
            return Err(at(
                &t.pos,
                &format!("expected ';' after '{}' (found '{}')", node.name, t.name),
            ));
        }
        if node.block.is_some() {
            return Err(at(&node.pos, &format!("'{}' takes no block", node.name)));
        }
        Ok(())
    }

    fn command(&self, node: &CommandNode) -> Result<Command, CompileError> {
        let name = node.name.as_str();
        let pos = &node.pos;
        let ext = match name {
            "stop" | "keep" | "discard" | "redirect" => None,
            "fileinto" | "reject" | "ereject" | "vacation" => Some(name),
            "setflag" | "addflag" | "removeflag" => Some("imap4flags"),
            "set" => Some("variables"),
            _ => return Err(at(pos, &format!("unknown command '{name}'"))),
        };
        if let Some(ext) = ext {
            self.need(ext, pos, &format!("command '{name}'"))?;
        }
        self.no_tests(node)?;
        let cmd = match name {
            "stop" | "discard" => {
                let a = self.args(&node.args, &|_| None)?;
                self.count(&a, 0, pos, name)?;
                if name == "stop" {
                    Command::Stop
                } else {
                    Command::Discard
                }
            }
            "keep" => {
                let a = self.args(&node.args, &|t| (t == "flags").then_some(Param::List))?;
                self.count(&a, 0, pos, name)?;
                Command::Keep {
                    flags: self.flags_tag(&a)?,
                }
            }
            "fileinto" => {
                let a = self.args(&node.args, &|t| match t {
                    "copy" | "create" => Some(Param::None),
                    "flags" => Some(Param::List),
                    _ => None,
                })?;
                self.count(&a, 1, pos, name)?;
                Command::FileInto {
                    mailbox: self.string(a.positional.first(), pos, "mailbox name")?,
                    copy: self.flag_tag(&a, "copy", "copy")?,
                    create: self.flag_tag(&a, "create", "mailbox")?,
                    flags: self.flags_tag(&a)?,
                }
            }
            "redirect" => {
                let a = self.args(&node.args, &|t| (t == "copy").then_some(Param::None))?;
                self.count(&a, 1, pos, name)?;
                let address = self.string(a.positional.first(), pos, "address")?;
                if !address.contains("${") && redirect_address(&address).is_none() {
                    let p = a.positional.first().map_or(pos, |a| &a.pos);
                    return Err(at(p, &format!("invalid redirect address \"{address}\"")));
                }
                Command::Redirect {
                    address,
                    copy: self.flag_tag(&a, "copy", "copy")?,
                }
            }
            "reject" | "ereject" => {
                let a = self.args(&node.args, &|_| None)?;
                self.count(&a, 1, pos, name)?;
                Command::Reject {
                    reason: self.string(a.positional.first(), pos, "reason")?,
                    ereject: name == "ereject",
                }
            }
            "vacation" => self.vacation(node)?,
            "setflag" | "addflag" | "removeflag" => {
                let a = self.args(&node.args, &|_| None)?;
                let (variable, flags) = match a.positional.as_slice() {
                    [flags] => (None, self.list(Some(flags), pos, "flag list")?),
                    [var, flags] => {
                        let v = self.string(Some(var), pos, "variable name")?;
                        if !valid_variable_name(&v) {
                            return Err(at(&var.pos, &format!("invalid variable name \"{v}\"")));
                        }
                        (Some(v), self.list(Some(flags), pos, "flag list")?)
                    }
                    _ => return Err(at(pos, &format!("'{name}' takes [variable] flag-list"))),
                };
                let op = match name {
                    "setflag" => FlagOp::Set,
                    "addflag" => FlagOp::Add,
                    _ => FlagOp::Remove,
                };
                Command::Flags {
                    op,
                    variable,
                    flags,
                }
            }
            _ => self.set(node)?,
        };
        Ok(cmd)
    }

    fn flag_tag(&self, a: &Args, tag: &str, ext: &str) -> Result<bool, CompileError> {
        match a.tags.iter().find(|t| t.name == tag) {
            Some(t) => {
                self.need(ext, &t.pos, &format!("tag ':{tag}'"))?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn flags_tag(&self, a: &Args) -> Result<Option<Vec<String>>, CompileError> {
        match a.tags.iter().find(|t| t.name == "flags") {
            Some(t) => {
                self.need("imap4flags", &t.pos, "tag ':flags'")?;
                match &t.value {
                    Value::List(l) => Ok(Some(l.clone())),
                    _ => Ok(Some(Vec::new())),
                }
            }
            None => Ok(None),
        }
    }

    fn vacation(&self, node: &CommandNode) -> Result<Command, CompileError> {
        let pos = &node.pos;
        let a = self.args(&node.args, &|t| match t {
            "days" | "seconds" => Some(Param::Number),
            "subject" | "from" | "handle" => Some(Param::Str),
            "addresses" => Some(Param::List),
            "mime" => Some(Param::None),
            _ => None,
        })?;
        self.count(&a, 1, pos, "vacation")?;
        let mut cmd = VacationCmd {
            period: None,
            seconds: false,
            subject: None,
            from: None,
            addresses: Vec::new(),
            mime: false,
            handle: None,
            reason: self.string(a.positional.first(), pos, "reason")?,
        };
        for t in &a.tags {
            match (t.name.as_str(), &t.value) {
                ("days" | "seconds", Value::Number(n)) => {
                    if cmd.period.is_some() {
                        return Err(at(&t.pos, "':days' and ':seconds' exclude each other"));
                    }
                    if t.name == "seconds" {
                        self.need("vacation-seconds", &t.pos, "tag ':seconds'")?;
                        cmd.seconds = true;
                        cmd.period = Some(*n);
                    } else {
                        cmd.period = Some(n.saturating_mul(86_400));
                    }
                }
                ("subject", Value::Str(s)) => cmd.subject = Some(s.clone()),
                ("from", Value::Str(s)) => cmd.from = Some(s.clone()),
                ("handle", Value::Str(s)) => cmd.handle = Some(s.clone()),
                ("addresses", Value::List(l)) => cmd.addresses = l.clone(),
                ("mime", _) => cmd.mime = true,
                _ => {}
            }
        }
        Ok(Command::Vacation(Box::new(cmd)))
    }

    fn set(&self, node: &CommandNode) -> Result<Command, CompileError> {
        let pos = &node.pos;
        let a = self.args(&node.args, &|t| {
            matches!(
                t,
                "lower" | "upper" | "lowerfirst" | "upperfirst" | "quotewildcard" | "length"
            )
            .then_some(Param::None)
        })?;
        self.count(&a, 2, pos, "set")?;
        let name = self.string(a.positional.first(), pos, "variable name")?;
        if !valid_variable_name(&name) {
            let p = a.positional.first().map_or(pos, |a| &a.pos);
            return Err(at(p, &format!("invalid variable name \"{name}\"")));
        }
        let value = self.string(a.positional.get(1), pos, "value")?;
        // RFC 5229 §4.1: one modifier per precedence level; applied highest level first.
        let mut modifiers: Vec<(u8, Modifier)> = Vec::new();
        for t in &a.tags {
            let m = match t.name.as_str() {
                "lower" => (40, Modifier::Lower),
                "upper" => (40, Modifier::Upper),
                "lowerfirst" => (30, Modifier::LowerFirst),
                "upperfirst" => (30, Modifier::UpperFirst),
                "quotewildcard" => (20, Modifier::QuoteWildcard),
                _ => (10, Modifier::Length),
            };
            if modifiers.iter().any(|(level, _)| *level == m.0) {
                return Err(at(&t.pos, "two modifiers of the same precedence"));
            }
            modifiers.push(m);
        }
        modifiers.sort_by_key(|m| std::cmp::Reverse(m.0));
        Ok(Command::Set {
            modifiers: modifiers.into_iter().map(|(_, m)| m).collect(),
            name: name.to_ascii_lowercase(),
            value,
        })
    }
}

/// A variable name for `set` and the flag commands: identifier characters, not starting with a
/// digit (RFC 5229 §3).
pub(crate) fn valid_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The address `redirect` sends to: RFC 5228 §2.4.2.3 allows a mailbox with a display name
/// (`"Bob <bob@example.net>"`), which goes to the bare address; None when `s` is not one
/// plausible address.
pub(crate) fn redirect_address(s: &str) -> Option<String> {
    if plausible_address(s) {
        let s = s.trim();
        let bare = s
            .strip_prefix('<')
            .and_then(|s| s.strip_suffix('>'))
            .unwrap_or(s);
        return Some(bare.to_string());
    }
    match crate::mime::mailboxes(s.as_bytes()).ok()?.as_slice() {
        [one] if plausible_address(&one.address) => Some(one.address.clone()),
        _ => None,
    }
}

/// Whether `s` could be a mail address: a local part, one `@`, a domain, no spaces.
pub(crate) fn plausible_address(s: &str) -> bool {
    let s = s.trim();
    let s = s
        .strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(s);
    match s.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !s.chars().any(|c| c.is_whitespace() || c.is_control())
                && !domain.contains(['<', '>', ',', '@'])
        }
        None => false,
    }
}
