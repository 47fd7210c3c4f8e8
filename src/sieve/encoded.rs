//! The "encoded-character" extension (RFC 5228 §2.4.2.4): `${hex: 41 42}` and
//! `${unicode: 263A}` in strings, decoded once at compile time. A sequence that is not
//! well formed is left as written, as the RFC says.

/// `s` with every well-formed encoded-character sequence decoded.
pub(crate) fn decode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        let (before, from) = rest.split_at(start);
        out.push_str(before);
        match decode_one(from) {
            Some((text, used)) => {
                out.push_str(&text);
                rest = from.get(used..).unwrap_or_default();
            }
            None => {
                out.push_str("${");
                rest = from.get(2..).unwrap_or_default();
            }
        }
    }
    out.push_str(rest);
    out
}

/// At `${`: the decoded text and how many bytes of `from` it used, or None if malformed.
fn decode_one(from: &str) -> Option<(String, usize)> {
    let inner = from.get(2..)?;
    let close = inner.find('}')?;
    let body = inner.get(..close)?;
    let (kind, values) = body.split_once(':')?;
    let kind = kind.trim_matches([' ', '\t']).to_ascii_lowercase();
    let words: Vec<&str> = values
        .split([' ', '\t', '\r', '\n'])
        .filter(|w| !w.is_empty())
        .collect();
    // The grammar wants at least one hex pair or code point: `${hex:}` stays as written.
    if words.is_empty() {
        return None;
    }
    let text = match kind.as_str() {
        "hex" => {
            let mut bytes = Vec::new();
            for w in &words {
                if !w.bytes().all(|b| b.is_ascii_hexdigit()) || w.trim_start_matches('0').len() > 2
                {
                    return None;
                }
                bytes.push(u8::from_str_radix(w, 16).ok()?);
            }
            // Octets that are not UTF-8 make the sequence malformed for a string.
            String::from_utf8(bytes).ok()?
        }
        "unicode" => {
            let mut text = String::new();
            for w in &words {
                if !w.bytes().all(|b| b.is_ascii_hexdigit()) || w.trim_start_matches('0').len() > 6
                {
                    return None;
                }
                let cp = u32::from_str_radix(w, 16).ok()?;
                text.push(char::from_u32(cp)?);
            }
            text
        }
        _ => return None,
    };
    Some((text, 2 + close + 1))
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn decodes_hex_and_unicode() {
        assert_eq!(decode("${hex: 40 41}b"), "@Ab");
        assert_eq!(decode("${HEX:40}"), "@");
        assert_eq!(decode("x${unicode:263a}"), "x\u{263a}");
        assert_eq!(decode("${unicode:D800}"), "${unicode:D800}");
        assert_eq!(decode("${hex:zz}${hex:41}"), "${hex:zz}A");
        assert_eq!(decode("${other:41}"), "${other:41}");
        assert_eq!(decode("${hex: 41"), "${hex: 41");
        assert_eq!(decode("${hex:}${unicode: }"), "${hex:}${unicode: }");
    }
}
