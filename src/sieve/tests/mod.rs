//! Unit tests of the Sieve module: compiling (errors with positions) and running scripts
//! against small messages, one file per area.

mod actions;
mod compile;
mod extensions;
mod matching;

use crate::sieve::{Action, Context, Limits, Message, Outcome, compile, run};

/// The message most tests run against.
pub(super) const MAIL: &str = "From: Alice <alice+lists@example.org>\r\n\
To: Bob <bob@example.com>, carol@example.net\r\n\
Cc: \"Dave, D\" <dave@Example.COM>\r\n\
Subject: Hello =?utf-8?q?w=C3=B6rld?=\r\n\
Message-ID: <abc@example.org>\r\n\
Date: Fri, 13 Feb 2009 23:31:30 +0100\r\n\
Received: from a by b; Fri, 13 Feb 2009 23:31:00 +0100\r\n\
Received: from c by d; Fri, 13 Feb 2009 23:30:00 +0100\r\n\
X-Count: 42\r\n\
\r\n\
Hi Bob,\r\nthe meeting is at noon.\r\n";

pub(super) struct Env<'a> {
    pub raw: &'a str,
    pub from: &'a str,
    pub to: &'a str,
    pub spam: Option<u8>,
    pub limits: Limits,
}

impl Default for Env<'_> {
    fn default() -> Self {
        Env {
            raw: MAIL,
            from: "alice+lists@example.org",
            to: "bob@example.com",
            spam: None,
            limits: Limits::default(),
        }
    }
}

pub(super) fn outcome_in(src: &str, env: &Env) -> Outcome {
    let script = compile(src).unwrap_or_else(|e| panic!("{e}\n{src}"));
    let own = vec!["bob@example.com".to_string()];
    let exists = |m: &str| m == "INBOX" || m == "Existing";
    let ctx = Context {
        now: time::macros::datetime!(2026-12-04 21:48:02 UTC),
        own_addresses: &own,
        mailbox_exists: &exists,
        limits: &env.limits,
    };
    let message = Message {
        raw: env.raw.as_bytes(),
        envelope_from: env.from,
        envelope_to: env.to,
        auth: Some("alice@example.org"),
        spam_percent: env.spam,
    };
    run(&script, &message, &ctx)
}

/// The actions of running `src` on [`MAIL`]; the run must not fail.
pub(super) fn actions(src: &str) -> Vec<Action> {
    actions_in(src, &Env::default())
}

pub(super) fn actions_in(src: &str, env: &Env) -> Vec<Action> {
    let o = outcome_in(src, env);
    assert_eq!(o.error, None, "{src}");
    o.actions
}

pub(super) fn keep() -> Action {
    Action::Keep { flags: Vec::new() }
}

pub(super) fn fileinto(m: &str) -> Action {
    Action::FileInto {
        mailbox: m.into(),
        flags: Vec::new(),
        create: false,
    }
}

/// Whether `test` (a Sieve test, with `require`s before it) is true on [`MAIL`].
pub(super) fn holds(require: &str, test: &str) -> bool {
    holds_in(require, test, &Env::default())
}

pub(super) fn holds_in(require: &str, test: &str, env: &Env) -> bool {
    let src = format!("{require}\nif {test} {{ discard; }}");
    match actions_in(&src, env).as_slice() {
        [Action::Discard] => true,
        [Action::Keep { .. }] => false,
        other => panic!("{other:?}"),
    }
}
