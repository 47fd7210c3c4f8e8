//! The vacation action (RFC 5230, RFC 6131 `:seconds`): whether to reply at all by what the
//! message alone says (the once-per-period memory is the delivery path's), and the reply's
//! fields.

use super::mail::{Mail, addresses};
use super::{Message, Vacation};

const DAY: u64 = 86_400;
/// Bounds of the reply period: `:days` within 1–90 days, `:seconds` within 1 hour–90 days
/// (a shorter period would let two auto-responders talking to each other loop quickly).
const MIN_DAYS_PERIOD: u64 = DAY;
const MIN_SECONDS_PERIOD: u64 = 3_600;
const MAX_PERIOD: u64 = 90 * DAY;
const DEFAULT_PERIOD: u64 = 7 * DAY;

/// The vacation command with its strings expanded.
pub(crate) struct Request {
    pub period: Option<u64>,
    pub seconds: bool,
    pub subject: Option<String>,
    pub from: Option<String>,
    pub addresses: Vec<String>,
    pub mime: bool,
    pub handle: Option<String>,
    pub reason: String,
}

/// The reply to send, or None when RFC 5230's rules say not to answer this message.
pub(crate) fn reply(req: Request, msg: &Message, mail: &Mail, own: &[String]) -> Option<Vacation> {
    let sender = msg
        .envelope_from
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>');
    if sender.is_empty() || !automatic_reply_allowed(sender, mail) {
        return None;
    }
    let mine: Vec<String> = own
        .iter()
        .chain(req.addresses.iter())
        .map(|a| a.trim().to_ascii_lowercase())
        .chain(std::iter::once(msg.envelope_to.trim().to_ascii_lowercase()))
        .filter(|a| !a.is_empty())
        .collect();
    // Never reply to ourselves (RFC 5230 §4.6).
    if mine.iter().any(|a| a.eq_ignore_ascii_case(sender)) {
        return None;
    }
    // Only mail addressed to us, not a list's or a Bcc we cannot see (RFC 5230 §4.5).
    let addressed = ["to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc"]
        .iter()
        .flat_map(|h| mail.raw_values(h))
        .flat_map(|v| addresses(&v))
        .any(|a| mine.iter().any(|m| m.eq_ignore_ascii_case(&a)));
    if !addressed {
        return None;
    }
    let period_secs = match (req.period, req.seconds) {
        (None, _) => DEFAULT_PERIOD,
        (Some(p), true) => p.clamp(MIN_SECONDS_PERIOD, MAX_PERIOD),
        (Some(p), false) => p.clamp(MIN_DAYS_PERIOD, MAX_PERIOD),
    };
    // The handle Pigeonhole derives when none is given: the reason, then the subject, from
    // and mime settings, so that a changed reply is sent again.
    let handle = req.handle.clone().unwrap_or_else(|| {
        format!(
            "{}{}{}{}",
            req.reason,
            req.subject.as_deref().unwrap_or("<default-subject>"),
            req.from.as_deref().unwrap_or("<default-from>"),
            if req.mime { "<MIME>" } else { "<NO-MIME>" }
        )
    });
    let subject = match req.subject {
        Some(s) => s,
        None => {
            let original = mail.first("subject");
            if original.is_empty() {
                "Automated reply".to_string()
            } else {
                format!("Auto: {original}")
            }
        }
    };
    let message_id = mail.raw_values("message-id").into_iter().next();
    let references = match (
        mail.raw_values("references").into_iter().next(),
        &message_id,
    ) {
        (Some(r), Some(id)) => Some(format!("{r} {id}")),
        (None, Some(id)) => Some(id.clone()),
        (r, None) => r,
    };
    Some(Vacation {
        to: sender.to_string(),
        from: req.from,
        subject,
        body: req.reason,
        mime: req.mime,
        handle,
        period_secs,
        in_reply_to: message_id,
        references,
    })
}

/// RFC 5230 §4.6 and RFC 3834: no reply to mailing lists, bulk mail, other automatic mail
/// or system senders.
fn automatic_reply_allowed(sender: &str, mail: &Mail) -> bool {
    let local = sender
        .rsplit_once('@')
        .map_or(sender, |(l, _)| l)
        .to_ascii_lowercase();
    if local == "mailer-daemon"
        || local == "listserv"
        || local == "majordomo"
        || local.starts_with("owner-")
        || local.ends_with("-request")
    {
        return false;
    }
    if mail.values("auto-submitted").iter().any(|v| {
        let first = v.split([';', '(', ' ', '\t']).next().unwrap_or_default();
        !first.eq_ignore_ascii_case("no")
    }) {
        return false;
    }
    if mail.values("precedence").iter().any(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "bulk" | "list" | "junk"
        )
    }) {
        return false;
    }
    !mail.exists("list-id")
}
