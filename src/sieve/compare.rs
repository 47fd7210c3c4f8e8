//! Comparators (RFC 4790: i;octet, i;ascii-casemap, i;ascii-numeric) and match types
//! (RFC 5228 §2.7: :is, :contains, :matches; RFC 5231: :value, :count). `:matches` returns
//! what each wildcard matched, for the variables extension's `${1}`…, with the first
//! wildcard taking as little as it can (as Pigeonhole does).

use std::cmp::Ordering;

use super::ir::{Comparator, MatchType, Matcher, Relation};

/// Counts work: each unit of string matching adds to the run's instruction count, and a
/// match stops early once `limit` is passed (the caller then reports the limit).
pub(crate) struct Work {
    pub units: u64,
    pub limit: u64,
}

/// Characters looked at per work unit: linear scans of a large body stay cheap, while
/// quadratic wildcard backtracking soon reaches the limit.
const STEPS_PER_UNIT: usize = 256;

impl Work {
    fn charge(&mut self, steps: usize) {
        let units = u64::try_from(steps / STEPS_PER_UNIT)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        self.units = self.units.saturating_add(units);
    }

    fn exhausted(&self, steps: usize) -> bool {
        let pending = u64::try_from(steps / STEPS_PER_UNIT).unwrap_or(u64::MAX);
        self.units.saturating_add(pending) > self.limit
    }
}

fn fold(c: &Comparator, ch: char) -> char {
    match c {
        Comparator::Octet => ch,
        _ => ch.to_ascii_lowercase(),
    }
}

/// The leading digits of `s` without leading zeros, or None (positive infinity).
fn numeric(s: &str) -> Option<&str> {
    let digits = s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return None;
    }
    let lead = s.get(..digits)?;
    let trimmed = lead.trim_start_matches('0');
    Some(if trimmed.is_empty() { "0" } else { trimmed })
}

/// The comparator's ordering of `a` and `b`.
pub(crate) fn order(c: &Comparator, a: &str, b: &str) -> Ordering {
    match c {
        Comparator::Octet => a.as_bytes().cmp(b.as_bytes()),
        Comparator::AsciiCasemap => a
            .bytes()
            .map(|b| b.to_ascii_lowercase())
            .cmp(b.bytes().map(|b| b.to_ascii_lowercase())),
        Comparator::AsciiNumeric => match (numeric(a), numeric(b)) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(x), Some(y)) => x.len().cmp(&y.len()).then_with(|| x.cmp(y)),
        },
    }
}

fn relation_holds(r: Relation, o: Ordering) -> bool {
    match r {
        Relation::Gt => o == Ordering::Greater,
        Relation::Ge => o != Ordering::Less,
        Relation::Lt => o == Ordering::Less,
        Relation::Le => o != Ordering::Greater,
        Relation::Eq => o == Ordering::Equal,
        Relation::Ne => o != Ordering::Equal,
    }
}

fn contains(c: &Comparator, hay: &str, needle: &str) -> bool {
    match c {
        Comparator::Octet => hay.contains(needle),
        _ => hay
            .to_ascii_lowercase()
            .contains(&needle.to_ascii_lowercase()),
    }
}

enum Tok {
    Lit(char),
    One,
    Star,
}

fn pattern(p: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut chars = p.chars();
    while let Some(ch) = chars.next() {
        out.push(match ch {
            '*' => Tok::Star,
            '?' => Tok::One,
            '\\' => match chars.next() {
                Some(esc) => Tok::Lit(esc),
                None => Tok::Lit('\\'),
            },
            other => Tok::Lit(other),
        });
    }
    out
}

/// Glob matching with `*`, `?` and `\` escapes; on success, what each wildcard matched.
/// Linear space and at most len(text) × len(pattern) steps (one backtrack point, the last
/// star), which `work` counts.
pub(crate) fn glob(c: &Comparator, text: &str, pat: &str, work: &mut Work) -> Option<Vec<String>> {
    let toks = pattern(pat);
    let chars: Vec<char> = text.chars().collect();
    // Where in the text each pattern token matched (for the captures).
    let mut at = vec![0usize; toks.len() + 1];
    let (mut ti, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None; // (pattern index of star, text index)
    let mut steps = 0usize;
    loop {
        steps += 1;
        if steps.is_multiple_of(4096) && work.exhausted(steps) {
            work.charge(steps);
            return None;
        }
        match toks.get(pi) {
            Some(Tok::Star) => {
                if let Some(slot) = at.get_mut(pi) {
                    *slot = ti;
                }
                star = Some((pi, ti));
                pi += 1;
                continue;
            }
            Some(tok) if ti < chars.len() => {
                let ok = match (tok, chars.get(ti)) {
                    (Tok::One, Some(_)) => true,
                    (Tok::Lit(l), Some(&t)) => fold(c, *l) == fold(c, t),
                    _ => false,
                };
                if ok {
                    if let Some(slot) = at.get_mut(pi) {
                        *slot = ti;
                    }
                    pi += 1;
                    ti += 1;
                    continue;
                }
            }
            None if ti == chars.len() => break,
            _ => {}
        }
        // Mismatch: let the last star take one more character, or fail.
        match star {
            Some((sp, st)) if st < chars.len() => {
                star = Some((sp, st + 1));
                pi = sp + 1;
                ti = st + 1;
            }
            _ => {
                work.charge(steps);
                return None;
            }
        }
    }
    work.charge(steps);
    if let Some(slot) = at.get_mut(toks.len()) {
        *slot = chars.len();
    }
    let slice = |from: usize, to: usize| -> String {
        chars
            .get(from..to.max(from))
            .unwrap_or_default()
            .iter()
            .collect()
    };
    let mut caps = Vec::new();
    for (i, tok) in toks.iter().enumerate() {
        let start = at.get(i).copied().unwrap_or(0);
        match tok {
            Tok::Star => caps.push(slice(start, at.get(i + 1).copied().unwrap_or(start))),
            Tok::One => caps.push(slice(start, start + 1)),
            Tok::Lit(_) => {}
        }
    }
    Some(caps)
}

/// The outcome of a match test over `values` and `keys`.
pub(crate) struct Found {
    pub matched: bool,
    /// For a successful `:matches`: `${0}` (the whole value) then each wildcard's text.
    pub captures: Option<Vec<String>>,
}

/// Whether any value matches any key under `m` (RFC 5228 §2.7.1); `:count` counts values.
pub(crate) fn test(m: &Matcher, values: &[String], keys: &[String], work: &mut Work) -> Found {
    let no = Found {
        matched: false,
        captures: None,
    };
    if let MatchType::Count(rel) = m.kind {
        let count = values.len().to_string();
        let matched = keys.iter().any(|k| {
            work.charge(k.len());
            relation_holds(rel, order(&m.comparator, &count, k))
        });
        return Found {
            matched,
            captures: None,
        };
    }
    for v in values {
        for k in keys {
            if work.units > work.limit {
                return no;
            }
            let hit = match &m.kind {
                MatchType::Is => {
                    work.charge(v.len());
                    order(&m.comparator, v, k) == Ordering::Equal
                }
                MatchType::Contains => {
                    work.charge(v.len().saturating_add(k.len()));
                    contains(&m.comparator, v, k)
                }
                MatchType::Value(rel) => {
                    work.charge(v.len());
                    relation_holds(*rel, order(&m.comparator, v, k))
                }
                MatchType::Matches => {
                    if let Some(mut caps) = glob(&m.comparator, v, k, work) {
                        caps.insert(0, v.clone());
                        return Found {
                            matched: true,
                            captures: Some(caps),
                        };
                    }
                    false
                }
                MatchType::Count(_) => false,
            };
            if hit {
                return Found {
                    matched: true,
                    captures: None,
                };
            }
        }
    }
    no
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(text: &str, pat: &str) -> Option<Vec<String>> {
        glob(&Comparator::AsciiCasemap, text, pat, &mut work())
    }

    fn work() -> Work {
        Work {
            units: 0,
            limit: u64::MAX,
        }
    }

    #[test]
    fn glob_captures_like_pigeonhole() {
        assert_eq!(g("a@b@c", "*@*").unwrap(), ["a", "b@c"]);
        assert_eq!(g("abcabc", "*b*?").unwrap(), ["a", "cab", "c"]);
        assert_eq!(g("ABC", "a?c").unwrap(), ["B"]);
        assert!(g("abc", "a\\?c").is_none());
        assert!(g("a?c", "a\\?c").is_some());
        assert!(g("a*c", "a\\*c").is_some());
        assert!(g("", "*").is_some());
        assert!(g("", "?").is_none());
        assert!(g("abc", "").is_none());
        assert!(g("xyz", "*y").is_none());
        assert!(glob(&Comparator::Octet, "ABC", "abc", &mut work()).is_none());
    }

    #[test]
    fn glob_work_is_bounded() {
        let text = "a".repeat(4000);
        let mut w = work();
        let pat = format!("*{}b", "a".repeat(50));
        assert!(glob(&Comparator::Octet, &text, &pat, &mut w).is_none());
        assert!(w.units > 500, "{}", w.units);
        // A match that would take far more than the limit stops at it.
        let text = "a".repeat(100_000);
        let pat = format!("*{}b", "a".repeat(5_000));
        let mut w = Work {
            units: 0,
            limit: 1_000,
        };
        assert!(glob(&Comparator::Octet, &text, &pat, &mut w).is_none());
        assert!(w.units > 1_000 && w.units < 1_100, "{}", w.units);
    }

    #[test]
    fn numeric_order() {
        let n = Comparator::AsciiNumeric;
        assert_eq!(order(&n, "010", "9"), Ordering::Greater);
        assert_eq!(order(&n, "10abc", "10"), Ordering::Equal);
        assert_eq!(order(&n, "x", "99999999999999999999999"), Ordering::Greater);
        assert_eq!(order(&n, "x", "y"), Ordering::Equal);
        assert_eq!(
            order(&Comparator::AsciiCasemap, "ABC", "abd"),
            Ordering::Less
        );
    }
}
