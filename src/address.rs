//! E-mail addresses and domains as Mailroom stores them.
//!
//! Decisions:
//! - Domains are stored lower case (ASCII; internationalised domains in their A-label form).
//! - Local parts are kept as written but compared without case (SQLite `COLLATE NOCASE`):
//!   every mainstream server treats `Alice@` and `alice@` as one mailbox, and users expect it.
//! - Only dot-atom local parts are accepted for accounts and aliases (RFC 5322 §3.4.1); quoted
//!   local parts are legal on the wire but nobody creates mailboxes with them. UTF-8 local parts
//!   (RFC 6531) are accepted.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    pub local: String,
    pub domain: String,
}

impl Address {
    /// Parses `local@domain` (no display name, no angle brackets), normalising the domain.
    pub fn parse(s: &str) -> Result<Address, String> {
        let s = s.trim();
        let (local, domain) = s
            .rsplit_once('@')
            .ok_or_else(|| format!("{s:?} is not an address (expected local@domain)"))?;
        validate_local(local).map_err(|e| format!("{s:?}: {e}"))?;
        let domain = validate_domain(domain).map_err(|e| format!("{s:?}: {e}"))?;
        Ok(Address {
            local: local.to_string(),
            domain,
        })
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

/// What an alias can be named: one address, or a whole domain (catch-all, written `@domain`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AliasSource {
    Address(Address),
    CatchAll(String),
}

impl AliasSource {
    pub fn parse(s: &str) -> Result<AliasSource, String> {
        let s = s.trim();
        match s.strip_prefix('@') {
            Some(domain) => Ok(AliasSource::CatchAll(
                validate_domain(domain).map_err(|e| format!("{s:?}: {e}"))?,
            )),
            None => Address::parse(s).map(AliasSource::Address),
        }
    }

    pub fn domain(&self) -> &str {
        match self {
            AliasSource::Address(a) => &a.domain,
            AliasSource::CatchAll(d) => d,
        }
    }
}

impl fmt::Display for AliasSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AliasSource::Address(a) => a.fmt(f),
            AliasSource::CatchAll(d) => write!(f, "@{d}"),
        }
    }
}

fn validate_local(local: &str) -> Result<(), String> {
    if local.is_empty() {
        return Err("the local part is empty".into());
    }
    if local.len() > 64 {
        return Err("the local part is longer than 64 octets".into());
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err("the local part has a misplaced dot".into());
    }
    const SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~.";
    // Letters and digits of any script, the RFC 5322 atext specials, and other non-ASCII
    // printable characters (RFC 6531).
    let allowed =
        |c: char| c.is_alphanumeric() || SPECIALS.contains(c) || !(c.is_ascii() || c.is_control());
    match local.chars().find(|c| !allowed(*c)) {
        Some(c) => Err(format!("the local part may not contain {c:?}")),
        None => Ok(()),
    }
}

/// Checks a domain name and returns it lower case.
pub fn validate_domain(domain: &str) -> Result<String, String> {
    let d = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    if d.is_empty() {
        return Err("the domain is empty".into());
    }
    if d.len() > 253 {
        return Err("the domain is longer than 253 octets".into());
    }
    for label in d.split('.') {
        if label.is_empty() {
            return Err("the domain has an empty label".into());
        }
        if label.len() > 63 {
            return Err(format!(
                "the domain label {label:?} is longer than 63 octets"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "the domain label {label:?} starts or ends with '-'"
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(format!("the domain may not contain {c:?}"));
        }
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let a = Address::parse(" Alice.B+tag@Example.ORG ").unwrap();
        assert_eq!(a.local, "Alice.B+tag");
        assert_eq!(a.domain, "example.org");
        assert_eq!(a.to_string(), "Alice.B+tag@example.org");
        assert!(Address::parse("jörg@example.org").is_ok());
        for bad in [
            "",
            "nobody",
            "@example.org",
            "a@",
            "a b@example.org",
            ".a@example.org",
            "a..b@example.org",
            "a@exa mple.org",
            "a@-x.org",
            "a@x..org",
            "a\"b@x.org",
            "a@b@c",
        ] {
            assert!(Address::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn alias_sources() {
        assert_eq!(
            AliasSource::parse("@Example.org").unwrap(),
            AliasSource::CatchAll("example.org".into())
        );
        assert_eq!(
            AliasSource::parse("info@example.org").unwrap().to_string(),
            "info@example.org"
        );
        assert!(AliasSource::parse("@").is_err());
    }
}
