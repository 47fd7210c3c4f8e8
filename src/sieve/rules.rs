//! The rules the webmail's Rules pages edit (filters, a vacation reply, forwarding) and the one
//! Sieve script they are kept as, named [`SCRIPT_NAME`].
//!
//! [`to_sieve`] writes the script; [`from_sieve`] reads it back with this module's own lexer
//! and parser and then writes it again: only a script byte for byte in the form `to_sieve`
//! writes gives `Some`, so anything edited by hand (or by a ManageSieve client) is shown as
//! text rather than silently rewritten. Rules -> Sieve -> rules round-trips for every rule set
//! that passes [`Rules::check`].
//!
//! A disabled filter or vacation stays in the script as `if allof (false, TEST) { … }` (or
//! `if false`): it is still Sieve the compiler validates and this parser reads with the same
//! code as an enabled one, where a commented-out block would need a second reader and could
//! hold anything.

use std::collections::BTreeSet;

mod read;

pub use read::from_sieve;

/// The script the Rules pages own.
pub const SCRIPT_NAME: &str = "mailroom";
/// The first line of the script: tells a ManageSieve user where it comes from.
const HEADER: &str = "# Mailroom rules: written by the webmail's Rules pages. Change it there; \
                      a script edited by hand is shown there as text.\n";
/// Filters a rule set may hold (the script stays far below the 64 KiB compile limit).
pub const MAX_FILTERS: usize = 100;
/// Longest value, folder, address or subject, in characters.
pub const MAX_VALUE_CHARS: usize = 500;
/// Longest reject or vacation message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 5000;
/// Addresses the vacation reply answers for, besides the account's own.
pub const MAX_VACATION_ADDRESSES: usize = 20;
/// RFC 5230 §4.1 lets a site bound `:days`; the interpreter clamps to the same range.
pub const MAX_VACATION_DAYS: u32 = 90;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    pub filters: Vec<Filter>,
    pub vacation: Option<VacationRule>,
    pub forward: Option<ForwardRule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub enabled: bool,
    pub field: Field,
    pub op: Op,
    /// Text for header fields (a pattern with `*` and `?` for [`Op::Matches`]); for
    /// [`Field::Size`] a number with an optional K/M/G (as [`size_text`] writes it); for
    /// [`Field::SpamScore`] a percentage 0–100.
    pub value: String,
    pub action: FilterAction,
    /// "Stop processing more rules" after this one matched.
    pub stop: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    From,
    ToOrCc,
    Subject,
    /// Any other header field, by name.
    Header(String),
    Size,
    /// The spam filter's score as a percentage (the `spamtest :percent` test).
    SpamScore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Contains,
    Is,
    Matches,
    GreaterThan,
    LessThan,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterAction {
    MoveTo(String),
    CopyTo(String),
    MarkRead,
    Flag,
    Forward { address: String, keep: bool },
    Reject(String),
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VacationRule {
    pub enabled: bool,
    /// `YYYY-MM-DD`, inclusive, in the server's time zone.
    pub first_day: Option<String>,
    pub last_day: Option<String>,
    /// Empty: the reply's subject is "Auto: " and the original subject.
    pub subject: String,
    pub message: String,
    /// Replies to one sender at most once per this many days.
    pub days: u32,
    /// Addresses it answers for besides the account's own (aliases).
    pub addresses: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardRule {
    pub address: String,
    /// Keep a copy in the INBOX (and let the filters run) as well.
    pub keep: bool,
}

impl Field {
    /// Whether the field compares text (contains/is/matches) rather than numbers.
    pub fn is_text(&self) -> bool {
        !matches!(self, Field::Size | Field::SpamScore)
    }
}

impl Op {
    /// The operators that make sense for `field`.
    pub fn allowed_for(self, field: &Field) -> bool {
        match field {
            Field::Size => matches!(self, Op::GreaterThan | Op::LessThan),
            Field::SpamScore => matches!(self, Op::GreaterThan | Op::LessThan | Op::Is),
            _ => matches!(self, Op::Contains | Op::Is | Op::Matches),
        }
    }
}

/// A size as typed ("100K", "2 M", "5000"): bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().replace(' ', "").to_ascii_uppercase();
    let (digits, shift) = match s.strip_suffix(['K', 'M', 'G']) {
        Some(d) if s.ends_with('K') => (d, 10),
        Some(d) if s.ends_with('M') => (d, 20),
        Some(d) => (d, 30),
        None => (s.as_str(), 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 12 {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// The shortest form of a size in bytes, as the script writes it and the page shows it.
pub fn size_text(bytes: u64) -> String {
    for (shift, unit) in [(30, 'G'), (20, 'M'), (10, 'K')] {
        if bytes != 0 && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

/// A calendar day `YYYY-MM-DD` that exists.
pub fn valid_day(s: &str) -> bool {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    s.len() == 10 && time::Date::parse(s, &format).is_ok()
}

/// A header field name (RFC 5322 §3.6.8: printable ASCII but the colon).
pub fn valid_header_name(s: &str) -> bool {
    (1..=76).contains(&s.len()) && s.bytes().all(|b| (33..=126).contains(&b) && b != b':')
}

/// One-line text: no control characters.
fn one_line(s: &str) -> bool {
    !s.chars().any(char::is_control)
}

/// Message text: lines, tabs, no other control characters.
fn multi_line(s: &str) -> bool {
    !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t')
}

fn check_address(s: &str, what: &str) -> Result<(), String> {
    crate::address::Address::parse(s)
        .map(|_| ())
        .map_err(|_| format!("{what}: {s:?} is not an e-mail address."))
}

impl Rules {
    /// Whether the rules can be written and read back as they are; the first problem, in
    /// words for the page.
    pub fn check(&self) -> Result<(), String> {
        if self.filters.len() > MAX_FILTERS {
            return Err(format!("At most {MAX_FILTERS} filters."));
        }
        for (i, f) in self.filters.iter().enumerate() {
            f.check().map_err(|e| format!("Filter {}: {e}", i + 1))?;
        }
        if let Some(v) = &self.vacation {
            v.check().map_err(|e| format!("Vacation: {e}"))?;
        }
        if let Some(f) = &self.forward {
            check_address(&f.address, "Forwarding")?;
        }
        // RFC 5429 §2.1: reject is incompatible with vacation and, once a message has been
        // redirected, with redirect; the interpreter makes either a runtime error (the message
        // kept), so the combinations that would always meet are refused here.
        let rejects = self
            .filters
            .iter()
            .any(|f| f.enabled && matches!(f.action, FilterAction::Reject(_)));
        if rejects && self.vacation.as_ref().is_some_and(|v| v.enabled) {
            return Err(
                "A filter that rejects mail cannot be on while the vacation reply is: \
                        a message cannot be both refused and answered. Disable one of them."
                    .into(),
            );
        }
        if rejects && self.forward.as_ref().is_some_and(|f| f.keep) {
            return Err(
                "A filter that rejects mail cannot be on while all mail is forwarded: \
                        a forwarded message cannot be refused afterwards. Disable one of them."
                    .into(),
            );
        }
        Ok(())
    }

    /// Every address mail may be forwarded to: forwarding and the enabled filters' forwards.
    pub fn forward_addresses(&self) -> Vec<&str> {
        let filters = self.filters.iter().filter(|f| f.enabled);
        self.forward
            .iter()
            .map(|f| f.address.as_str())
            .chain(filters.filter_map(|f| match &f.action {
                FilterAction::Forward { address, .. } => Some(address.as_str()),
                _ => None,
            }))
            .collect()
    }
}

impl Filter {
    pub fn check(&self) -> Result<(), String> {
        if !self.op.allowed_for(&self.field) {
            return Err("that comparison does not apply to that field.".into());
        }
        if let Field::Header(name) = &self.field {
            if !valid_header_name(name) {
                return Err(format!("{name:?} is not a header field name."));
            }
            // One spelling per test, or the script would read back as the other field.
            if ["from", "subject"]
                .iter()
                .any(|n| name.eq_ignore_ascii_case(n))
            {
                return Err(format!("choose {name} from the list."));
            }
        }
        match self.field {
            Field::Size => match parse_size(&self.value) {
                Some(n) if size_text(n) == self.value => {}
                _ => {
                    return Err(
                        "a size is a number, with K, M or G for kilo-, mega-, gigabytes.".into(),
                    );
                }
            },
            Field::SpamScore => match self.value.parse::<u8>() {
                Ok(n) if n <= 100 && n.to_string() == self.value => {}
                _ => return Err("a spam score is a percentage from 0 to 100.".into()),
            },
            _ => {
                if self.value.is_empty() {
                    return Err("give a value to compare with.".into());
                }
                if self.value.chars().count() > MAX_VALUE_CHARS || !one_line(&self.value) {
                    return Err(format!(
                        "the value is one line of at most {MAX_VALUE_CHARS} characters."
                    ));
                }
            }
        }
        match &self.action {
            FilterAction::MoveTo(f) | FilterAction::CopyTo(f) => {
                if f.is_empty() || f.chars().count() > MAX_VALUE_CHARS || !one_line(f) {
                    return Err("choose a folder.".into());
                }
            }
            FilterAction::Forward { address, .. } => check_address(address, "forward to")?,
            FilterAction::Reject(m) => {
                if m.trim().is_empty() || m.chars().count() > MAX_MESSAGE_CHARS || !multi_line(m) {
                    return Err(format!(
                        "a rejection needs a message of at most {MAX_MESSAGE_CHARS} characters."
                    ));
                }
            }
            FilterAction::MarkRead | FilterAction::Flag | FilterAction::Delete => {}
        }
        Ok(())
    }
}

impl VacationRule {
    pub fn check(&self) -> Result<(), String> {
        for day in [&self.first_day, &self.last_day].into_iter().flatten() {
            if !valid_day(day) {
                return Err(format!("{day:?} is not a day (YYYY-MM-DD)."));
            }
        }
        if let (Some(a), Some(b)) = (&self.first_day, &self.last_day)
            && a > b
        {
            return Err("the last day is before the first.".into());
        }
        if self.subject.chars().count() > MAX_VALUE_CHARS || !one_line(&self.subject) {
            return Err(format!(
                "the subject is one line of at most {MAX_VALUE_CHARS} characters."
            ));
        }
        if self.message.trim().is_empty()
            || self.message.chars().count() > MAX_MESSAGE_CHARS
            || !multi_line(&self.message)
        {
            return Err(format!(
                "write a message of at most {MAX_MESSAGE_CHARS} characters."
            ));
        }
        if !(1..=MAX_VACATION_DAYS).contains(&self.days) {
            return Err(format!("reply once every 1 to {MAX_VACATION_DAYS} days."));
        }
        if self.addresses.len() > MAX_VACATION_ADDRESSES {
            return Err(format!("at most {MAX_VACATION_ADDRESSES} addresses."));
        }
        for a in &self.addresses {
            check_address(a, "answers for")?;
        }
        Ok(())
    }
}

/// A Sieve quoted string: `"` and `\` escaped, everything else as it is (a `matches`
/// pattern's `*`, `?` and `\` keep their meaning as the user typed them; line breaks may
/// stand in a quoted string).
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn quote_list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", items.join(", "))
}

/// One test, and the extensions it needs.
fn write_test(f: &Filter, need: &mut BTreeSet<&'static str>) -> String {
    let match_type = match f.op {
        Op::Contains => ":contains",
        Op::Is => ":is",
        Op::Matches => ":matches",
        Op::GreaterThan => "gt",
        Op::LessThan => "lt",
    };
    let header = |names: &str| format!("header {match_type} {names} {}", quote(&f.value));
    match &f.field {
        Field::From => header("\"from\""),
        Field::ToOrCc => header("[\"to\", \"cc\"]"),
        Field::Subject => header("\"subject\""),
        Field::Header(name) => header(&quote(name)),
        Field::Size => {
            let over = if f.op == Op::LessThan {
                "under"
            } else {
                "over"
            };
            format!("size :{over} {}", f.value)
        }
        Field::SpamScore => {
            need.extend(["spamtestplus", "relational", "comparator-i;ascii-numeric"]);
            let rel = if f.op == Op::Is { "eq" } else { match_type };
            format!(
                "spamtest :percent :value \"{rel}\" :comparator \"i;ascii-numeric\" {}",
                quote(&f.value)
            )
        }
    }
}

fn write_action(a: &FilterAction, need: &mut BTreeSet<&'static str>) -> String {
    match a {
        FilterAction::MoveTo(folder) => {
            need.insert("fileinto");
            format!("fileinto {};", quote(folder))
        }
        FilterAction::CopyTo(folder) => {
            need.extend(["fileinto", "copy"]);
            format!("fileinto :copy {};", quote(folder))
        }
        FilterAction::MarkRead => {
            need.insert("imap4flags");
            "addflag \"\\\\Seen\";".into()
        }
        FilterAction::Flag => {
            need.insert("imap4flags");
            "addflag \"\\\\Flagged\";".into()
        }
        FilterAction::Forward { address, keep } => {
            if *keep {
                need.insert("copy");
                format!("redirect :copy {};", quote(address))
            } else {
                format!("redirect {};", quote(address))
            }
        }
        FilterAction::Reject(message) => {
            need.insert("reject");
            format!("reject {};", quote(message))
        }
        FilterAction::Delete => "discard;".into(),
    }
}

/// `if TESTS { BODY }`, with `false` first when disabled; the body alone when there is no
/// test at all.
fn write_block(out: &mut String, enabled: bool, tests: Vec<String>, body: &[String]) {
    let mut tests = tests;
    if !enabled {
        tests.insert(0, "false".into());
    }
    let (open, indent) = match tests.as_slice() {
        [] => (None, ""),
        [one] => (Some(format!("if {one} {{\n")), "    "),
        many => (Some(format!("if allof ({}) {{\n", many.join(", "))), "    "),
    };
    if let Some(open) = &open {
        out.push_str(open);
    }
    for line in body {
        out.push_str(indent);
        out.push_str(line);
        out.push('\n');
    }
    if open.is_some() {
        out.push_str("}\n");
    }
}

/// The script for `rules` (which should pass [`Rules::check`]): vacation first (so that no
/// filter's `stop` or `discard` keeps it from answering), then forwarding (without a copy it
/// ends the script: the mail is gone, filing it would keep it after all), then the filters in
/// order.
pub fn to_sieve(rules: &Rules) -> String {
    let mut need = BTreeSet::new();
    let mut body = String::new();
    if let Some(v) = &rules.vacation {
        need.insert("vacation");
        let mut tests = Vec::new();
        for (day, rel) in [(&v.first_day, "ge"), (&v.last_day, "le")] {
            if let Some(day) = day {
                need.extend(["date", "relational"]);
                tests.push(format!(
                    "currentdate :value \"{rel}\" \"date\" {}",
                    quote(day)
                ));
            }
        }
        let mut cmd = format!("vacation :days {}", v.days);
        if !v.subject.is_empty() {
            cmd.push_str(&format!(" :subject {}", quote(&v.subject)));
        }
        if !v.addresses.is_empty() {
            cmd.push_str(&format!(" :addresses {}", quote_list(&v.addresses)));
        }
        cmd.push_str(&format!(" {};", quote(&v.message)));
        body.push_str(if v.enabled {
            "\n# Vacation\n"
        } else {
            "\n# Vacation (off)\n"
        });
        write_block(&mut body, v.enabled, tests, &[cmd]);
    }
    if let Some(f) = &rules.forward {
        body.push_str("\n# Forwarding\n");
        if f.keep {
            need.insert("copy");
            body.push_str(&format!("redirect :copy {};\n", quote(&f.address)));
        } else {
            body.push_str(&format!("redirect {};\nstop;\n", quote(&f.address)));
        }
    }
    for (i, f) in rules.filters.iter().enumerate() {
        let state = if f.enabled { "" } else { " (disabled)" };
        body.push_str(&format!("\n# Filter {}{state}\n", i + 1));
        let test = write_test(f, &mut need);
        let mut lines = vec![write_action(&f.action, &mut need)];
        if f.stop {
            lines.push("stop;".into());
        }
        write_block(&mut body, f.enabled, vec![test], &lines);
    }
    let mut out = String::from(HEADER);
    if !need.is_empty() {
        let need: Vec<String> = need.into_iter().map(String::from).collect();
        out.push_str(&format!("require {};\n", quote_list(&need)));
    }
    out.push_str(&body);
    out
}

#[cfg(test)]
mod tests;
