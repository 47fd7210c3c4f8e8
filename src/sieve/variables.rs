//! The "variables" extension (RFC 5229): `${name}` and `${N}` expansion in strings, the `set`
//! modifiers, and the bounded variable store (names are case-insensitive).

use std::collections::HashMap;

use super::ir::Modifier;

/// The script's variables and the match variables of the last successful `:matches`.
pub(crate) struct Variables {
    values: HashMap<String, String>,
    pub matched: Vec<String>,
    max_count: usize,
    max_bytes: usize,
}

impl Variables {
    pub fn new(max_count: usize, max_bytes: usize) -> Self {
        Variables {
            values: HashMap::new(),
            matched: Vec::new(),
            max_count,
            max_bytes,
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// Sets `name`; a value over the size bound is cut (RFC 5229 §6 lets an implementation
    /// truncate); a new variable past the count bound is an error.
    pub fn set(&mut self, name: &str, mut value: String) -> Result<(), String> {
        truncate(&mut value, self.max_bytes);
        let name = name.to_ascii_lowercase();
        if !self.values.contains_key(&name) && self.values.len() >= self.max_count {
            return Err(format!("more than {} variables", self.max_count));
        }
        self.values.insert(name, value);
        Ok(())
    }

    /// Stores match variables, each cut to the size bound; as many as variables may exist
    /// (Pigeonhole too has `${10}` and beyond).
    pub fn set_matched(&mut self, captures: Vec<String>) {
        self.matched = captures
            .into_iter()
            .take(self.max_count)
            .map(|mut c| {
                truncate(&mut c, self.max_bytes);
                c
            })
            .collect();
    }

    /// `s` with each `${name}` / `${N}` replaced (unknown ones by ""); anything that is not
    /// a well-formed reference stays as written. One pass: expanded text is not expanded
    /// again.
    pub fn expand(&self, s: &str) -> String {
        if !s.contains("${") {
            return s.to_string();
        }
        // Bounded as it grows: many references to a long value must not build a huge string.
        let cap = self.max_bytes.max(s.len());
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(start) = rest.find("${") {
            if out.len() > cap {
                break;
            }
            let (before, from) = rest.split_at(start);
            out.push_str(before);
            let inner = from.get(2..).unwrap_or_default();
            let reference = inner.find('}').and_then(|end| inner.get(..end));
            match reference.filter(|r| is_reference(r)) {
                Some(r) => {
                    out.push_str(&self.lookup(r));
                    rest = inner.get(r.len() + 1..).unwrap_or_default();
                }
                None => {
                    out.push_str("${");
                    rest = inner;
                }
            }
        }
        out.push_str(rest);
        truncate(&mut out, cap);
        out
    }

    fn lookup(&self, r: &str) -> String {
        if r.bytes().all(|b| b.is_ascii_digit()) {
            return r
                .parse::<usize>()
                .ok()
                .and_then(|n| self.matched.get(n))
                .cloned()
                .unwrap_or_default();
        }
        // Namespaced names (`env.x`) belong to extensions we do not have: empty.
        self.get(r).unwrap_or_default().to_string()
    }
}

/// A variable reference's inside: digits, or identifiers separated by dots.
fn is_reference(r: &str) -> bool {
    if !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    !r.is_empty()
        && r.split('.').all(|part| {
            let mut chars = part.chars();
            matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// Cuts `s` to at most `max` bytes at a character boundary.
pub(crate) fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while end > 0 && !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// Applies `set`'s modifiers, already in precedence order (RFC 5229 §4.1).
pub(crate) fn apply_modifiers(modifiers: &[Modifier], mut value: String) -> String {
    for m in modifiers {
        value = match m {
            Modifier::Lower => value.to_lowercase(),
            Modifier::Upper => value.to_uppercase(),
            Modifier::LowerFirst => first_char(&value, |c| c.to_lowercase().collect()),
            Modifier::UpperFirst => first_char(&value, |c| c.to_uppercase().collect()),
            Modifier::QuoteWildcard => {
                let mut out = String::with_capacity(value.len());
                for c in value.chars() {
                    if matches!(c, '*' | '?' | '\\') {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out
            }
            Modifier::Length => value.chars().count().to_string(),
        };
    }
    value
}

fn first_char(s: &str, f: impl Fn(char) -> String) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => f(c) + chars.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_references_once() {
        let mut v = Variables::new(4, 10);
        v.set("A", "x${b}".into()).unwrap();
        v.set("b", "y".into()).unwrap();
        v.set_matched(vec!["all".into(), "one".into()]);
        assert_eq!(
            v.expand("${a}|${B}|${1}|${2}|${c}|${a|${}|${1a}"),
            "x${b}|y|one|||${a|${}|${1a}"
        );
        v.set("c", "0123456789abc".into()).unwrap();
        assert_eq!(v.get("C"), Some("0123456789"));
        v.set("d", String::new()).unwrap();
        assert!(v.set("e", String::new()).is_err());
        assert!(v.set("d", "again".into()).is_ok());
    }

    #[test]
    fn modifiers() {
        use Modifier::*;
        assert_eq!(
            apply_modifiers(&[Upper, LowerFirst], "hello".into()),
            "hELLO"
        );
        assert_eq!(
            apply_modifiers(&[QuoteWildcard], "a*b?c\\".into()),
            "a\\*b\\?c\\\\"
        );
        assert_eq!(apply_modifiers(&[QuoteWildcard, Length], "a*".into()), "3");
        assert_eq!(apply_modifiers(&[UpperFirst], "".into()), "");
    }
}
