//! The decision on one message for one account, pure: what each check found, as points on one
//! scale (positive: spam-like), added up and compared with the account's thresholds; and the
//! `X-Mailroom-Spam:` field that explains it, which the webmail reads back ([`explain`]).
//!
//! The scale is SpamAssassin's habit: 5 points junk a message by default, 15 refuse it. No
//! single check but the user's own block list can reach the reject threshold: Bayes gives at
//! most +6, reputation +6, the DNS lists their weights, so a refusal needs several checks to
//! agree (the sender is told why; nothing is lost silently).

use std::fmt::Write as _;

/// Points at which a message goes to Junk, unless the domain or account says otherwise.
pub const DEFAULT_JUNK: f64 = 5.0;
/// Points at which a message is refused at the end of DATA, unless the domain says otherwise.
pub const DEFAULT_REJECT: f64 = 15.0;
/// The header field this filter adds; copies from outside are removed.
pub const FIELD: &str = "X-Mailroom-Spam";

/// Where the message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Inbox,
    Junk,
    Reject,
}

impl Verdict {
    fn word(self) -> &'static str {
        match self {
            Verdict::Inbox => "inbox",
            Verdict::Junk => "junk",
            Verdict::Reject => "reject",
        }
    }
}

/// The outcome of an authentication check, as the decision needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Outcome {
    Pass,
    Fail,
    /// Not checked, or nothing to check (no record, no signature).
    #[default]
    None,
}

/// SPF, DKIM and DMARC as the inbound checks found them (`smtp/verify.rs`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Auth {
    /// Whether the checks ran at all (`[inbound] verify`).
    pub checked: bool,
    pub spf: Outcome,
    pub dkim: Outcome,
    pub dmarc: Outcome,
}

/// Forward-confirmed reverse DNS of the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReverseDns {
    Verified,
    /// A PTR name whose addresses do not include the client.
    Mismatch,
    /// No PTR record.
    Missing,
    /// Not asked, or the lookup failed.
    #[default]
    Unknown,
}

/// What was found about the message that is the same for every recipient.
#[derive(Debug, Clone, Default)]
pub struct Shared {
    pub auth: Auth,
    /// The DNS lists' points and the zones that listed the client.
    pub dnsbl: f64,
    pub dnsbl_zones: Vec<String>,
    pub rdns: ReverseDns,
    /// The message came over TLS.
    pub tls: bool,
}

/// What one account's own memory says.
#[derive(Debug, Clone, Default)]
pub struct Personal {
    /// The account's Bayes probability; `None` while it abstains (too little training).
    pub bayes: Option<f64>,
    /// Reputation points and the key that gave them.
    pub reputation: Option<(f64, String)>,
    /// The account's list entry the sender matched: allowed (`true`) or blocked.
    pub list: Option<(bool, String)>,
    /// One of the account's addresses is in To or Cc.
    pub addressed: bool,
}

/// The thresholds in force for the account.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub junk: f64,
    pub reject: f64,
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            junk: DEFAULT_JUNK,
            reject: DEFAULT_REJECT,
        }
    }
}

/// The decision and its reasons.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub score: f64,
    pub verdict: Verdict,
    /// `(name, points, detail)` of each check that counted, in the field's order.
    pub parts: Vec<(&'static str, f64, String)>,
    pub junk: f64,
}

/// Bayes points: up to +6 for a certain spam, down to -4 for a certain ham; 0.5 is nothing.
/// Steep up to 0.7 (+4), where the SpamAssassin corpus shows it catching 95% of spam for
/// 0.34% of ham (`bench/spam`'s "bayes alone" rows), flatter above: alone, Bayes junks from
/// about 0.85; one more sign (no TLS, a DNS list) brings that down towards 0.7.
pub fn bayes_points(p: f64) -> f64 {
    if p >= 0.7 {
        4.0 + (p - 0.7) * 20.0 / 3.0
    } else if p >= 0.5 {
        20.0 * (p - 0.5)
    } else {
        8.0 * (p - 0.5)
    }
}

/// Decides for one account.
pub fn decide(shared: &Shared, personal: &Personal, thresholds: Thresholds) -> Decision {
    let mut parts: Vec<(&'static str, f64, String)> = Vec::new();
    if let Some(p) = personal.bayes {
        parts.push(("bayes", bayes_points(p), format!("{p:.2}")));
    }
    if let Some((points, key)) = &personal.reputation
        && *points != 0.0
    {
        parts.push(("reputation", *points, key.clone()));
    }
    if shared.dnsbl != 0.0 {
        parts.push(("dnsbl", shared.dnsbl, shared.dnsbl_zones.join(" ")));
    }
    let auth = auth_points(&shared.auth);
    if auth.0 != 0.0 {
        parts.push(("auth", auth.0, auth.1));
    }
    match shared.rdns {
        ReverseDns::Missing => parts.push(("rdns", 1.5, "no reverse DNS".into())),
        ReverseDns::Mismatch => parts.push(("rdns", 1.0, "reverse DNS not confirmed".into())),
        ReverseDns::Verified | ReverseDns::Unknown => {}
    }
    if !shared.tls {
        parts.push(("tls", 0.5, "no TLS".into()));
    }
    if !personal.addressed {
        parts.push(("to", 0.5, "not addressed to me".into()));
    }
    let score = round(parts.iter().map(|p| p.1).sum());
    let verdict = match &personal.list {
        Some((true, _)) => Verdict::Inbox,
        Some((false, _)) => Verdict::Junk,
        // The DNS lists are a score, never on their own a reason to refuse: the rest must
        // junk the message by itself before the lists can push it over the reject threshold.
        None if score >= thresholds.reject && score - shared.dnsbl >= thresholds.junk => {
            Verdict::Reject
        }
        None if score >= thresholds.junk => Verdict::Junk,
        None => Verdict::Inbox,
    };
    if let Some((allow, entry)) = &personal.list {
        parts.push((
            "list",
            0.0,
            format!("{} {entry}", if *allow { "allow" } else { "block" }),
        ));
    }
    Decision {
        score,
        verdict,
        parts,
        junk: thresholds.junk,
    }
}

/// Points from SPF, DKIM and DMARC: a DMARC failure is the strong signal (the From domain
/// says this is not its mail); a pass is a small credit, since spammers authenticate their own
/// domains too.
fn auth_points(auth: &Auth) -> (f64, String) {
    if !auth.checked {
        return (0.0, String::new());
    }
    match (auth.dmarc, auth.spf, auth.dkim) {
        (Outcome::Fail, _, _) => (3.0, "dmarc=fail".into()),
        (Outcome::Pass, _, _) => (-1.0, "dmarc=pass".into()),
        (_, Outcome::Fail, Outcome::Pass) | (_, Outcome::Pass, _) | (_, _, Outcome::Pass) => {
            (0.0, String::new())
        }
        (_, Outcome::Fail, _) => (1.5, "spf=fail".into()),
        (_, _, Outcome::Fail) => (1.0, "dkim=fail".into()),
        _ => (1.0, "no SPF or DKIM pass".into()),
    }
}

fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn signed(x: f64) -> String {
    format!("{x:+.1}")
}

impl Decision {
    /// The `X-Mailroom-Spam:` field, CRLF-terminated, with `keys` (the sender's reputation
    /// keys, which the learner reads back when the user moves the message) at the end.
    pub fn field(&self, keys: &[String]) -> String {
        let mut out = format!(
            "{FIELD}: score={:.1}; junk={:.1}; verdict={}",
            self.score,
            self.junk,
            self.verdict.word()
        );
        for (name, points, detail) in &self.parts {
            let _ = match (*name, detail.is_empty()) {
                ("bayes", _) => write!(out, ";\r\n\tbayes={detail} ({})", signed(*points)),
                ("list", _) => write!(out, ";\r\n\tlist={}", clean(detail)),
                (_, true) => write!(out, ";\r\n\t{name}={}", signed(*points)),
                (_, false) => write!(out, ";\r\n\t{name}={} ({})", signed(*points), clean(detail)),
            };
        }
        if !keys.is_empty() {
            // Folded so no line passes 998 octets (RFC 5322 §2.1.1) however long the names.
            out.push_str(";\r\n\tkeys=");
            let mut line = "\tkeys=".len();
            // A key is one word: a quoted local part's spaces are dropped.
            for (i, key) in keys.iter().map(|k| clean(k).replace(' ', "")).enumerate() {
                if i > 0 && line + 1 + key.len() > 78 {
                    out.push_str("\r\n\t");
                    line = 1;
                } else if i > 0 {
                    out.push(' ');
                    line += 1;
                }
                line += key.len();
                out.push_str(&key);
            }
        }
        out.push_str("\r\n");
        out
    }
}

/// The field for a recipient of a message sent to more accounts than get their own copy
/// (`smtp/inbound.rs` bounds them): the verdict only.
pub fn brief_field(verdict: Verdict) -> String {
    format!(
        "{FIELD}: verdict={}; details=not kept (one of many recipients)\r\n",
        verdict.word()
    )
}

/// Text safe inside the field: no separators, no line breaks, printable ASCII, bounded.
fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .filter(|c| !matches!(c, ';' | '(' | ')' | '='))
        .take(200)
        .collect()
}

/// Whether a header field's first line is an `X-Mailroom-Spam:` field (any case, spaces
/// before the colon allowed): ours to write, and removed when it comes from outside.
pub fn is_field(line: &[u8]) -> bool {
    line.iter().position(|b| *b == b':').is_some_and(|colon| {
        line.get(..colon)
            .is_some_and(|name| name.trim_ascii().eq_ignore_ascii_case(FIELD.as_bytes()))
    })
}

/// The items of an `X-Mailroom-Spam:` value (unfolded or not): `(name, value)` pairs, each
/// name once (the first wins: what we wrote comes first).
fn items(value: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut seen: Vec<&str> = Vec::new();
    value.split(';').filter_map(move |item| {
        let (name, value) = item.split_once('=')?;
        let name = name.trim();
        if seen.contains(&name) || seen.len() > 32 {
            return None;
        }
        seen.push(name);
        Some((name, value.trim()))
    })
}

/// The reputation keys recorded in an `X-Mailroom-Spam:` value.
pub fn keys_of(value: &str) -> Vec<String> {
    items(value)
        .filter(|(name, _)| *name == "keys")
        .flat_map(|(_, v)| v.split_whitespace().map(str::to_string))
        .take(16)
        .collect()
}

/// Whether an `X-Mailroom-Spam:` value says the message was junked (`None`: not ours).
pub fn junked(value: &str) -> Option<bool> {
    items(value)
        .find(|(name, _)| *name == "verdict")
        .and_then(|(_, v)| match v {
            "junk" | "reject" => Some(true),
            "inbox" => Some(false),
            _ => None,
        })
}

/// One line for a person, from an `X-Mailroom-Spam:` value: why the message was junked or
/// kept ("Junked: score 7.4 (threshold 5.0): Bayes 0.99 +5.9, …"); `None` when the value is
/// not ours.
pub fn explain(value: &str) -> Option<String> {
    let mut score = None;
    let mut junk = None;
    let mut verdict = None;
    let mut reasons = Vec::new();
    for (name, value) in items(value) {
        match name {
            "score" => score = value.parse::<f64>().ok(),
            "junk" => junk = value.parse::<f64>().ok(),
            "verdict" => verdict = Some(value),
            "keys" => {}
            "list" => reasons.push(match value.split_once(' ') {
                Some(("allow", who)) => format!("{who} is on your allow list"),
                Some(("block", who)) => format!("{who} is on your block list"),
                _ => return None,
            }),
            _ => {
                let (points, detail) = match value.split_once(' ') {
                    Some((points, detail)) => (points, detail.trim_matches(['(', ')'])),
                    None => (value, ""),
                };
                let label = match name {
                    // Bayes writes its probability first and the points in brackets.
                    "bayes" => {
                        format!("learned from your Junk {detail} (spam probability {points})")
                    }
                    "reputation" => format!("sender history ({detail}) {points}"),
                    "dnsbl" => format!("DNS lists ({detail}) {points}"),
                    "auth" => format!("authentication ({detail}) {points}"),
                    "rdns" | "tls" | "to" => format!("{detail} {points}"),
                    _ => continue,
                };
                reasons.push(label);
            }
        }
    }
    let verdict = verdict?;
    let (Some(score), Some(junk)) = (score, junk) else {
        return match verdict {
            "junk" | "reject" => Some(
                "Junked (the message went to many recipients: the details were not kept)".into(),
            ),
            "inbox" => Some(
                "Not junk (the message went to many recipients: the details were not kept)".into(),
            ),
            _ => None,
        };
    };
    let head = match verdict {
        "junk" => "Junked",
        // Refused for this account, taken for another recipient: in this account's Junk.
        "reject" => "Junked (over the refusal threshold)",
        "inbox" => "Not junk",
        _ => return None,
    };
    let mut line = format!("{head}: score {score:.1} (Junk from {junk:.1})");
    if !reasons.is_empty() {
        line.push_str(": ");
        line.push_str(&reasons.join(", "));
    }
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Shared {
        Shared {
            tls: true,
            ..Shared::default()
        }
    }

    fn addressed() -> Personal {
        Personal {
            addressed: true,
            ..Personal::default()
        }
    }

    #[test]
    fn a_clean_message_stays_in_the_inbox() {
        let d = decide(&shared(), &addressed(), Thresholds::default());
        assert_eq!((d.score, d.verdict), (0.0, Verdict::Inbox));
    }

    #[test]
    fn bayes_alone_junks_but_never_rejects() {
        let personal = Personal {
            bayes: Some(0.999),
            ..addressed()
        };
        let d = decide(&shared(), &personal, Thresholds::default());
        assert_eq!(d.verdict, Verdict::Junk);
        assert!(d.score < DEFAULT_REJECT);
        let unsure = Personal {
            bayes: Some(0.6),
            ..addressed()
        };
        assert_eq!(
            decide(&shared(), &unsure, Thresholds::default()).verdict,
            Verdict::Inbox
        );
    }

    #[test]
    fn several_checks_together_reject() {
        let s = Shared {
            auth: Auth {
                checked: true,
                dmarc: Outcome::Fail,
                ..Auth::default()
            },
            dnsbl: 4.0,
            dnsbl_zones: vec!["zen.example".into()],
            rdns: ReverseDns::Missing,
            tls: false,
        };
        let p = Personal {
            bayes: Some(1.0),
            reputation: Some((2.0, "ip:192.0.2.0/26".into())),
            ..Personal::default()
        };
        let d = decide(&s, &p, Thresholds::default());
        assert_eq!(d.verdict, Verdict::Reject, "{d:?}");
        // The allow list wins over everything, the block list junks (never rejects).
        let allowed = Personal {
            list: Some((true, "example.com".into())),
            ..p.clone()
        };
        assert_eq!(
            decide(&s, &allowed, Thresholds::default()).verdict,
            Verdict::Inbox
        );
        let blocked = Personal {
            list: Some((false, "example.com".into())),
            ..addressed()
        };
        assert_eq!(
            decide(&shared(), &blocked, Thresholds::default()).verdict,
            Verdict::Junk
        );
    }

    #[test]
    fn dns_lists_alone_never_refuse() {
        let listed = Shared {
            dnsbl: 20.0,
            dnsbl_zones: vec!["zen.example".into()],
            tls: true,
            ..Shared::default()
        };
        let d = decide(&listed, &addressed(), Thresholds::default());
        assert_eq!(d.verdict, Verdict::Junk, "{d:?}");
        // With Bayes junking it on its own, the listing may push it over.
        let spammy = Personal {
            bayes: Some(1.0),
            ..addressed()
        };
        let d = decide(&listed, &spammy, Thresholds::default());
        assert_eq!(d.verdict, Verdict::Reject, "{d:?}");
    }

    #[test]
    fn the_field_explains_itself_and_reads_back() {
        let s = Shared {
            dnsbl: 2.0,
            dnsbl_zones: vec!["zen.example".into()],
            ..Shared::default()
        };
        let p = Personal {
            bayes: Some(0.99),
            reputation: Some((1.5, "from:x@spam.example".into())),
            ..Personal::default()
        };
        let d = decide(&s, &p, Thresholds::default());
        let keys = vec!["from:x@spam.example".to_string(), "ip:192.0.2.1".into()];
        let field = d.field(&keys);
        assert!(
            field.starts_with(
                "X-Mailroom-Spam: score=10.4; junk=5.0; verdict=junk;\r\n\tbayes=0.99 (+5.9);"
            ),
            "{field}"
        );
        assert!(
            field.ends_with("keys=from:x@spam.example ip:192.0.2.1\r\n"),
            "{field}"
        );
        let value = field.split_once(':').map(|x| x.1).unwrap_or_default();
        assert_eq!(keys_of(value), keys);
        let line = explain(value).unwrap_or_default();
        assert!(line.starts_with("Junked: score 10.4 (Junk from 5.0): learned from your Junk +5.9 (spam probability 0.99)"), "{line}");
        assert!(line.contains("DNS lists (zen.example) +2.0"), "{line}");
        assert!(
            line.contains("no TLS +0.5") && line.contains("not addressed to me +0.5"),
            "{line}"
        );
        assert_eq!(explain("score=1; garbage"), None);
    }
}
