//! Mailroom's side: `mailroom::sieve::compile` and `run` on the same script, message and
//! envelope, the outcome in the canonical form of `super` (see its module doc).

use mailroom::sieve::{self, Action, Context, Limits, Message};

use super::cases::Case;

/// The canonical action list for one case.
pub fn run(case: &Case, raw: &[u8]) -> Vec<String> {
    let script = match sieve::compile(&case.script) {
        Ok(script) => script,
        Err(_) => return vec!["compile-error".into()],
    };
    let message = Message {
        raw,
        envelope_from: &case.from,
        envelope_to: &case.to,
        auth: None,
        spam_percent: case.spam,
    };
    // What sieve-test is told about the user: the recipient is their address (-r), and the
    // case's folders (plus INBOX) exist in their mail store.
    let own = [case.to.clone()];
    let exists =
        |name: &str| name.eq_ignore_ascii_case("INBOX") || case.mailboxes.iter().any(|m| m == name);
    let limits = Limits::default();
    let ctx = Context {
        // sieve-test runs with TZ=UTC, so its "local" zone is UTC too.
        now: time::OffsetDateTime::now_utc(),
        own_addresses: &own,
        mailbox_exists: &exists,
        limits: &limits,
    };
    let outcome = sieve::run(&script, &message, &ctx);
    let mut lines: Vec<String> = outcome.actions.iter().map(line).collect();
    if outcome.error.is_some() {
        lines.push("runtime-error".into());
    }
    super::canonical(lines)
}

fn line(action: &Action) -> String {
    match action {
        Action::Keep { flags } => super::store("INBOX", flags, false),
        Action::FileInto {
            mailbox,
            flags,
            create,
        } => super::store(mailbox, flags, *create),
        Action::Redirect { address } => format!("redirect {address}"),
        Action::Reject { reason, ereject } => format!(
            "{} {:?}",
            if *ereject { "ereject" } else { "reject" },
            super::text(reason)
        ),
        Action::Discard => "discard".into(),
        Action::Vacation(v) => {
            let mut line = format!(
                "vacation to={} subject={:?} period={}",
                v.to, v.subject, v.period_secs
            );
            if let Some(from) = &v.from {
                line.push_str(&format!(" from={from:?}"));
            }
            line.push_str(&format!(" reason={:?}", super::text(&v.body)));
            line
        }
    }
}
