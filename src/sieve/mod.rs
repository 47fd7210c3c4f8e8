//! Sieve mail filtering (RFC 5228) with the extensions in [`EXTENSIONS`]: `compile` parses
//! and validates a script into a [`Script`] (kept by the store as JSON beside the source),
//! `run` evaluates it against one delivery and returns the actions, implicit keep resolved.
//!
//! Layout: `lexer` → `parser` (generic tree with positions) → `validate` (typed `ir`) at
//! compile time; `interpret` with `compare` (comparators, match types), `variables`, `date`,
//! `mail` (what tests read of the message) and `vacation` at run time. Nothing here does I/O:
//! the caller files, forwards and replies.

mod compare;
mod date;
pub mod deliver;
mod encoded;
mod flags;
mod interpret;
mod ir;
mod lexer;
mod mail;
pub mod managesieve;
mod parser;
mod replies;
pub mod rules;
mod vacation;
mod validate;
mod variables;

use serde::{Deserialize, Serialize};

/// Extensions the interpreter implements, in the order ManageSieve's "SIEVE" capability lists
/// them.
pub const EXTENSIONS: &[&str] = &[
    "fileinto",
    "reject",
    "ereject",
    "envelope",
    "imap4flags",
    "vacation",
    "vacation-seconds",
    "body",
    "variables",
    "relational",
    "subaddress",
    "copy",
    "date",
    "index",
    "mailbox",
    "encoded-character",
    "spamtest",
    "spamtestplus",
    "comparator-i;ascii-numeric",
];

/// Bounds on a script and on one run of it (see `Default`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_script_bytes: usize,
    pub max_nesting: usize,
    /// Tests and commands evaluated, plus string matching work units, per run.
    pub max_instructions: u64,
    pub max_redirects: usize,
    pub max_actions: usize,
    pub max_variables: usize,
    pub max_variable_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_script_bytes: 64 << 10,
            max_nesting: 32,
            max_instructions: 200_000,
            max_redirects: 4,
            max_actions: 32,
            max_variables: 128,
            max_variable_bytes: 4 << 10,
        }
    }
}

/// A compile error; `line` and `column` are 1-based, of where the problem starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for CompileError {}

/// The version of the stored form: a script stored by a build with another number is
/// compiled again from its source.
const STORED_FORM: u32 = 1;

/// A compiled script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Script {
    form: u32,
    required: Vec<String>,
    commands: Vec<ir::Command>,
}

impl Script {
    /// The JSON the store keeps beside the source.
    pub fn to_stored(&self) -> String {
        // Serialising plain enums, strings and numbers to a String cannot fail; an empty
        // string would only make `from_stored` return None and the caller compile again.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The script from its stored form, or None when written by another version (or not
    /// ours): the caller compiles the source again.
    pub fn from_stored(stored: &str) -> Option<Script> {
        serde_json::from_str::<Script>(stored)
            .ok()
            .filter(|s| s.form == STORED_FORM)
    }

    /// The extensions the script requires, in the order it names them.
    pub fn required(&self) -> &[String] {
        &self.required
    }

    /// Whether the script can ask which folders exist (`mailboxexists`): only then does
    /// delivery read the account's folders for [`Context::mailbox_exists`]. (Compiled
    /// scripts nest at most `Limits::max_nesting` deep, which bounds the walk.)
    pub fn asks_mailboxes(&self) -> bool {
        fn test(t: &ir::Test) -> bool {
            match t {
                ir::Test::MailboxExists(_) => true,
                ir::Test::Not(t) => test(t),
                ir::Test::AllOf(ts) | ir::Test::AnyOf(ts) => ts.iter().any(test),
                _ => false,
            }
        }
        fn commands(cs: &[ir::Command]) -> bool {
            cs.iter().any(|c| match c {
                ir::Command::If {
                    branches,
                    otherwise,
                } => {
                    branches.iter().any(|(t, body)| test(t) || commands(body))
                        || otherwise.as_deref().is_some_and(commands)
                }
                _ => false,
            })
        }
        commands(&self.commands)
    }
}

/// Parses and validates `source` under the default [`Limits`].
pub fn compile(source: &str) -> Result<Script, CompileError> {
    compile_with(source, &Limits::default())
}

/// Parses and validates `source`; `limits` bounds its size and nesting.
pub fn compile_with(source: &str, limits: &Limits) -> Result<Script, CompileError> {
    if source.len() > limits.max_script_bytes {
        return Err(lexer::err(
            1,
            1,
            &format!("script larger than {} bytes", limits.max_script_bytes),
        ));
    }
    let tokens = lexer::tokenize(source)?;
    let end = end_position(source);
    let nodes = parser::parse(&tokens, end, limits.max_nesting)?;
    let (required, commands) = validate::validate(&nodes)?;
    Ok(Script {
        form: STORED_FORM,
        required,
        commands,
    })
}

/// The position just after the last character, for "unexpected end of script".
fn end_position(source: &str) -> parser::Pos {
    let line = source.matches('\n').count() + 1;
    let last = source.rsplit('\n').next().unwrap_or_default();
    parser::Pos {
        line: u32::try_from(line).unwrap_or(u32::MAX),
        column: u32::try_from(last.chars().count() + 1).unwrap_or(u32::MAX),
    }
}

/// Runs `script` on one delivery: the actions to carry out, or on a runtime error (a limit
/// hit, conflicting actions) a plain keep and the error. Never panics.
pub fn run(script: &Script, message: &Message, ctx: &Context) -> Outcome {
    interpret::run(script, message, ctx)
}

/// What the interpreter sees of one delivery.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// The whole message as stored.
    pub raw: &'a [u8],
    /// MAIL FROM, "" for the null sender.
    pub envelope_from: &'a str,
    /// The address this account was reached by (RCPT TO).
    pub envelope_to: &'a str,
    /// The authenticated submitter, for envelope "auth".
    pub auth: Option<&'a str>,
    /// 0–100 when the spam filter judged it; None: not tested (spamtest gives "0").
    pub spam_percent: Option<u8>,
}

/// The account's side of a run.
pub struct Context<'a> {
    /// For currentdate and vacation; its offset is the "local" zone of the date test.
    pub now: time::OffsetDateTime,
    /// The account's addresses (vacation's "addressed to me").
    pub own_addresses: &'a [String],
    /// For the mailboxexists test.
    pub mailbox_exists: &'a (dyn Fn(&str) -> bool + Sync),
    pub limits: &'a Limits,
}

/// The actions to carry out, implicit keep already resolved (a standing implicit keep is a
/// `Keep` with the imap4flags internal variable's flags). On a runtime error `actions` is
/// `[Keep { flags: [] }]` (RFC 5228 §2.10.6) and `error` says what happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub actions: Vec<Action>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Keep {
        flags: Vec<String>,
    },
    FileInto {
        mailbox: String,
        flags: Vec<String>,
        create: bool,
    },
    Redirect {
        address: String,
    },
    Reject {
        reason: String,
        ereject: bool,
    },
    /// Only when nothing else keeps the message.
    Discard,
    Vacation(Vacation),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Vacation {
    /// Who gets the reply: the envelope sender (RFC 5230 §4.1).
    pub to: String,
    /// `:from`.
    pub from: Option<String>,
    /// `:subject`, or "Auto: " + the original subject.
    pub subject: String,
    /// The reason.
    pub body: String,
    /// `:mime`: `body` is a MIME entity.
    pub mime: bool,
    /// `:handle`, or derived from the reason, subject, from and mime.
    pub handle: String,
    /// `:days` × 86400 clamped to 1–90 days, or `:seconds` clamped to 1 hour–90 days;
    /// 7 days by default.
    pub period_secs: u64,
    /// The original Message-ID.
    pub in_reply_to: Option<String>,
    /// For the reply's References.
    pub references: Option<String>,
}

#[cfg(test)]
mod tests;
