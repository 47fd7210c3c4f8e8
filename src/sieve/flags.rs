//! IMAP flag lists for the "imap4flags" extension (RFC 5232): a list of strings, each holding
//! flags separated by spaces; duplicates (ASCII case-insensitive) dropped, system flags written
//! the way IMAP writes them.

const SYSTEM: &[&str] = &["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"];

/// The flags in `texts`, in order, without duplicates.
pub(crate) fn parse(texts: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for flag in texts.iter().flat_map(|t| t.split_whitespace()) {
        let flag = SYSTEM
            .iter()
            .find(|s| s.eq_ignore_ascii_case(flag))
            .map_or(flag, |s| s);
        if !out.iter().any(|f| f.eq_ignore_ascii_case(flag)) {
            out.push(flag.to_string());
        }
    }
    out
}

/// `current` with `more` added (those not there yet).
pub(crate) fn union(mut current: Vec<String>, more: Vec<String>) -> Vec<String> {
    for f in more {
        if !current.iter().any(|c| c.eq_ignore_ascii_case(&f)) {
            current.push(f);
        }
    }
    current
}

/// `current` without any of `remove`.
pub(crate) fn without(mut current: Vec<String>, remove: &[String]) -> Vec<String> {
    current.retain(|c| !remove.iter().any(|r| r.eq_ignore_ascii_case(c)));
    current
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists() {
        let f = parse(&["\\seen  a".into(), "A b".into()]);
        assert_eq!(f, ["\\Seen", "a", "b"]);
        assert_eq!(
            union(f.clone(), vec!["B".into(), "c".into()]),
            ["\\Seen", "a", "b", "c"]
        );
        assert_eq!(without(f, &["\\SEEN".into()]), ["a", "b"]);
    }
}
