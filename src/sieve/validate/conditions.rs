//! Validating tests: each test's tags and arguments, match types, comparators, address
//! parts, `:index`, date parts and zones.

use super::{Args, Param, Tagged, Validator, Value, at};
use crate::sieve::CompileError;
use crate::sieve::date;
use crate::sieve::ir::{
    AddressPart, BodyTransform, Comparator, DateZone, Index, MatchType, Matcher, Relation, Test,
};
use crate::sieve::parser::{Arg, Pos, TestNode};

/// The headers the address test accepts: RFC 5322's address fields and the common
/// non-standard ones (the same set Pigeonhole accepts).
const ADDRESS_HEADERS: &[&str] = &[
    "from",
    "to",
    "cc",
    "bcc",
    "sender",
    "resent-from",
    "resent-to",
    "reply-to",
    "resent-reply-to",
    "resent-sender",
    "resent-cc",
    "resent-bcc",
    "for-approval",
    "for-handling",
    "for-comment",
    "apparently-to",
    "errors-to",
    "delivered-to",
    "return-receipt-to",
    "x-admin",
    "read-receipt-to",
    "x-confirm-reading-to",
    "return-receipt-requested",
    "registered-mail-reply-requested-by",
    "mail-followup-to",
    "mail-reply-to",
    "abuse-reports-to",
    "x-complaints-to",
    "x-report-abuse-to",
    "x-beenthere",
    "x-original-to",
    "return-path",
    "envelope-to",
    "disposition-notification-to",
];

impl Validator {
    pub(super) fn test(&self, node: &TestNode) -> Result<Test, CompileError> {
        let name = node.name.as_str();
        let pos = &node.pos;
        let ext = match name {
            "envelope" | "body" | "date" | "currentdate" | "mailboxexists" | "spamtest"
            | "string" | "hasflag" => Some(match name {
                "currentdate" => "date",
                "mailboxexists" => "mailbox",
                "string" => "variables",
                "hasflag" => "imap4flags",
                other => other,
            }),
            "true" | "false" | "not" | "allof" | "anyof" | "exists" | "size" | "header"
            | "address" => None,
            _ => return Err(at(pos, &format!("unknown test '{name}'"))),
        };
        if let Some(ext) = ext {
            self.need(ext, pos, &format!("test '{name}'"))?;
        }
        match name {
            "not" => {
                if let Some(a) = node.args.first() {
                    return Err(at(&a.pos, "'not' takes a test, not arguments"));
                }
                return match node.tests.as_slice() {
                    [t] if !node.test_list => Ok(Test::Not(Box::new(self.test(t)?))),
                    _ => Err(at(pos, "'not' needs exactly one test")),
                };
            }
            "allof" | "anyof" => {
                if let Some(a) = node.args.first() {
                    return Err(at(
                        &a.pos,
                        &format!("'{name}' takes a test list, not arguments"),
                    ));
                }
                if !node.test_list {
                    return Err(at(
                        pos,
                        &format!("'{name}' needs a test list in parentheses"),
                    ));
                }
                let tests = node
                    .tests
                    .iter()
                    .map(|t| self.test(t))
                    .collect::<Result<Vec<_>, _>>()?;
                return Ok(if name == "allof" {
                    Test::AllOf(tests)
                } else {
                    Test::AnyOf(tests)
                });
            }
            _ => {}
        }
        if let Some(t) = node.tests.first() {
            return Err(at(&t.pos, &format!("test '{name}' takes no nested test")));
        }
        let spec = |t: &str| -> Option<Param> {
            let matching = matches!(
                t,
                "comparator" | "is" | "contains" | "matches" | "value" | "count"
            );
            let addr = matches!(t, "all" | "localpart" | "domain" | "user" | "detail");
            let index = matches!(t, "index" | "last");
            let ok = match name {
                "header" => matching || index,
                "address" => matching || addr || index,
                "envelope" => matching || addr,
                "body" => matching || matches!(t, "raw" | "content" | "text"),
                "date" => matching || index || matches!(t, "zone" | "originalzone"),
                "currentdate" => matching || t == "zone",
                "string" | "hasflag" => matching,
                "spamtest" => matching || t == "percent",
                "size" => matches!(t, "over" | "under"),
                _ => false,
            };
            if !ok {
                return None;
            }
            Some(match t {
                "comparator" | "value" | "count" | "zone" => Param::Str,
                "content" => Param::List,
                "index" => Param::Number,
                _ => Param::None,
            })
        };
        let a = self.args(&node.args, &spec)?;
        let test = match name {
            "true" | "false" => {
                self.count(&a, 0, pos, name)?;
                if name == "true" {
                    Test::True
                } else {
                    Test::False
                }
            }
            "exists" => {
                self.count(&a, 1, pos, name)?;
                Test::Exists(self.list(a.positional.first(), pos, "header names")?)
            }
            "size" => {
                self.count(&a, 1, pos, name)?;
                let over = match a.tags.as_slice() {
                    [t] => t.name == "over",
                    _ => return Err(at(pos, "'size' needs exactly one of ':over' and ':under'")),
                };
                Test::Size {
                    over,
                    limit: self.number(a.positional.first(), pos, "size limit")?,
                }
            }
            "header" => {
                self.count(&a, 2, pos, name)?;
                Test::Header {
                    matcher: self.matcher(&a, pos)?,
                    index: self.index(&a)?,
                    names: self.list(a.positional.first(), pos, "header names")?,
                    keys: self.list(a.positional.get(1), pos, "key list")?,
                }
            }
            "address" | "envelope" => {
                self.count(&a, 2, pos, name)?;
                let matcher = self.matcher(&a, pos)?;
                let part = self.address_part(&a)?;
                let names = self.list(a.positional.first(), pos, "header names")?;
                let keys = self.list(a.positional.get(1), pos, "key list")?;
                if name == "address" {
                    // RFC 5228 §5.1: only headers that hold addresses.
                    if let Some(n) = names.iter().find(|n| {
                        !n.contains("${")
                            && !ADDRESS_HEADERS.contains(&n.to_ascii_lowercase().as_str())
                    }) {
                        let p = a.positional.first().map_or(pos, |a| &a.pos);
                        return Err(at(p, &format!("header \"{n}\" does not hold addresses")));
                    }
                    Test::Address {
                        matcher,
                        part,
                        index: self.index(&a)?,
                        names,
                        keys,
                    }
                } else {
                    for n in &names {
                        let lower = n.to_ascii_lowercase();
                        if !n.contains("${") && !matches!(lower.as_str(), "from" | "to" | "auth") {
                            let p = a.positional.first().map_or(pos, |a| &a.pos);
                            return Err(at(p, &format!("unknown envelope part \"{n}\"")));
                        }
                    }
                    Test::Envelope {
                        matcher,
                        part,
                        names,
                        keys,
                    }
                }
            }
            "body" => {
                self.count(&a, 1, pos, name)?;
                let mut transform = BodyTransform::Text;
                let mut seen = false;
                for t in &a.tags {
                    let tr = match (t.name.as_str(), &t.value) {
                        ("raw", _) => BodyTransform::Raw,
                        ("text", _) => BodyTransform::Text,
                        ("content", Value::List(l)) => BodyTransform::Content(l.clone()),
                        _ => continue,
                    };
                    if seen {
                        return Err(at(&t.pos, "only one of ':raw', ':content' and ':text'"));
                    }
                    seen = true;
                    transform = tr;
                }
                Test::Body {
                    matcher: self.matcher(&a, pos)?,
                    transform,
                    keys: self.list(a.positional.first(), pos, "key list")?,
                }
            }
            "hasflag" => {
                let matcher = self.matcher(&a, pos)?;
                let (variables, keys) = match a.positional.as_slice() {
                    [keys] => (Vec::new(), self.list(Some(keys), pos, "flag list")?),
                    [vars, keys] => {
                        self.need("variables", &vars.pos, "a variable list in 'hasflag'")?;
                        let vars = self.list(Some(vars), pos, "variable list")?;
                        (vars, self.list(Some(keys), pos, "flag list")?)
                    }
                    _ => return Err(at(pos, "'hasflag' takes [variable-list] flag-list")),
                };
                Test::HasFlag {
                    matcher,
                    variables,
                    keys,
                }
            }
            "string" => {
                self.count(&a, 2, pos, name)?;
                Test::String {
                    matcher: self.matcher(&a, pos)?,
                    sources: self.list(a.positional.first(), pos, "source list")?,
                    keys: self.list(a.positional.get(1), pos, "key list")?,
                }
            }
            "date" => {
                self.count(&a, 3, pos, name)?;
                let zone_tag = a.tags.iter().find(|t| t.name == "zone");
                let original = a.tags.iter().find(|t| t.name == "originalzone");
                let zone = match (zone_tag, original) {
                    (Some(_), Some(o)) => {
                        return Err(at(&o.pos, "':zone' and ':originalzone' exclude each other"));
                    }
                    (Some(t), None) => DateZone::Zone(self.zone(t)?),
                    (None, Some(_)) => DateZone::Original,
                    (None, None) => DateZone::Local,
                };
                let header = self.string(a.positional.first(), pos, "header name")?;
                let part = self.date_part(a.positional.get(1), pos)?;
                Test::Date {
                    matcher: self.matcher(&a, pos)?,
                    zone,
                    index: self.index(&a)?,
                    header,
                    part,
                    keys: self.list(a.positional.get(2), pos, "key list")?,
                }
            }
            "currentdate" => {
                self.count(&a, 2, pos, name)?;
                let zone = match a.tags.iter().find(|t| t.name == "zone") {
                    Some(t) => Some(self.zone(t)?),
                    None => None,
                };
                Test::CurrentDate {
                    matcher: self.matcher(&a, pos)?,
                    zone,
                    part: self.date_part(a.positional.first(), pos)?,
                    keys: self.list(a.positional.get(1), pos, "key list")?,
                }
            }
            "mailboxexists" => {
                self.count(&a, 1, pos, name)?;
                Test::MailboxExists(self.list(a.positional.first(), pos, "mailbox names")?)
            }
            _ => {
                // spamtest
                self.count(&a, 1, pos, name)?;
                let percent = match a.tags.iter().find(|t| t.name == "percent") {
                    Some(t) => {
                        self.need("spamtestplus", &t.pos, "tag ':percent'")?;
                        true
                    }
                    None => false,
                };
                Test::Spam {
                    matcher: self.matcher(&a, pos)?,
                    percent,
                    value: self.string(a.positional.first(), pos, "value")?,
                }
            }
        };
        Ok(test)
    }

    fn zone(&self, t: &Tagged) -> Result<String, CompileError> {
        match &t.value {
            Value::Str(z) if z.contains("${") || date::parse_zone(z).is_some() => Ok(z.clone()),
            Value::Str(z) => Err(at(&t.pos, &format!("invalid time zone \"{z}\""))),
            _ => Err(at(&t.pos, "':zone' needs a string")),
        }
    }

    /// A date part not in RFC 5260 §4.2's list is not an error: like a part named by a
    /// variable that expands to no known one, it matches nothing at run time (as in
    /// Pigeonhole, so a script moved from Dovecot still runs).
    fn date_part(&self, arg: Option<&Arg>, pos: &Pos) -> Result<String, CompileError> {
        let part = self.string(arg, pos, "date part")?;
        Ok(part.to_ascii_lowercase())
    }

    fn index(&self, a: &Args) -> Result<Option<Index>, CompileError> {
        let index = a.tags.iter().find(|t| t.name == "index");
        let last = a.tags.iter().find(|t| t.name == "last");
        match (index, last) {
            (None, Some(l)) => Err(at(&l.pos, "':last' needs ':index'")),
            (None, None) => Ok(None),
            (Some(t), last) => {
                self.need("index", &t.pos, "tag ':index'")?;
                let n = match t.value {
                    Value::Number(n) if n > 0 => n,
                    _ => return Err(at(&t.pos, "':index' needs a number from 1")),
                };
                Ok(Some(Index {
                    n,
                    last: last.is_some(),
                }))
            }
        }
    }

    fn address_part(&self, a: &Args) -> Result<AddressPart, CompileError> {
        let mut part = None;
        for t in &a.tags {
            let p = match t.name.as_str() {
                "all" => AddressPart::All,
                "localpart" => AddressPart::LocalPart,
                "domain" => AddressPart::Domain,
                "user" | "detail" => {
                    self.need("subaddress", &t.pos, &format!("tag ':{}'", t.name))?;
                    if t.name == "user" {
                        AddressPart::User
                    } else {
                        AddressPart::Detail
                    }
                }
                _ => continue,
            };
            if part.is_some() {
                return Err(at(&t.pos, "only one address part"));
            }
            part = Some(p);
        }
        Ok(part.unwrap_or(AddressPart::All))
    }

    fn matcher(&self, a: &Args, pos: &Pos) -> Result<Matcher, CompileError> {
        let mut kind = None;
        let mut comparator = Comparator::AsciiCasemap;
        let mut kind_pos = pos;
        for t in &a.tags {
            let k = match (t.name.as_str(), &t.value) {
                ("is", _) => MatchType::Is,
                ("contains", _) => MatchType::Contains,
                ("matches", _) => MatchType::Matches,
                ("value" | "count", Value::Str(r)) => {
                    self.need("relational", &t.pos, &format!("tag ':{}'", t.name))?;
                    let rel = match r.to_ascii_lowercase().as_str() {
                        "gt" => Relation::Gt,
                        "ge" => Relation::Ge,
                        "lt" => Relation::Lt,
                        "le" => Relation::Le,
                        "eq" => Relation::Eq,
                        "ne" => Relation::Ne,
                        _ => return Err(at(&t.pos, &format!("invalid relation \"{r}\""))),
                    };
                    if t.name == "value" {
                        MatchType::Value(rel)
                    } else {
                        MatchType::Count(rel)
                    }
                }
                ("comparator", Value::Str(c)) => {
                    comparator = match c.to_ascii_lowercase().as_str() {
                        "i;octet" => Comparator::Octet,
                        "i;ascii-casemap" => Comparator::AsciiCasemap,
                        "i;ascii-numeric" => {
                            self.need(
                                "comparator-i;ascii-numeric",
                                &t.pos,
                                "comparator \"i;ascii-numeric\"",
                            )?;
                            Comparator::AsciiNumeric
                        }
                        _ => return Err(at(&t.pos, &format!("unknown comparator \"{c}\""))),
                    };
                    continue;
                }
                _ => continue,
            };
            if kind.is_some() {
                return Err(at(&t.pos, "only one match type"));
            }
            kind = Some(k);
            kind_pos = &t.pos;
        }
        let kind = kind.unwrap_or(MatchType::Is);
        if comparator == Comparator::AsciiNumeric
            && matches!(kind, MatchType::Contains | MatchType::Matches)
        {
            return Err(at(
                kind_pos,
                "comparator \"i;ascii-numeric\" does not support substring matching",
            ));
        }
        Ok(Matcher { comparator, kind })
    }
}
