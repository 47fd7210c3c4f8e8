//! vCard files (RFC 2426 vCard 3.0, RFC 6350 vCard 4.0; 2.1's plain lines too) for the
//! address book's import and export: FN, N, EMAIL (several), TEL (several), ORG and NOTE.
//! Other properties are skipped.
//!
//! No crate for this was in the registry cache this project builds from, so this is a small
//! parser: lines are unfolded (a line starting with a space or tab continues the one before),
//! each content line is `[group.]NAME[;params]:value` (a `:` inside a quoted parameter value
//! does not end the name), text values are unescaped (`\n`, `\,`, `\;`, `\\`), and every card
//! that cannot be used is reported with its number (and its name, when it has one) while the
//! others are imported. Input is bounded by the caller ([`MAX_FILE`] bytes) and here
//! ([`MAX_CARDS`] cards); [`parse`] takes any `&str` and never panics (a fuzzing entry).

/// Largest vCard file accepted (bytes): 5,000 contacts of about 1 KiB.
pub const MAX_FILE: usize = 5 << 20;
/// Cards read from one file, at most (the address book's own bound).
pub const MAX_CARDS: usize = 5000;
/// Properties kept per card, at most (the store bounds addresses and numbers again).
const MAX_VALUES: usize = 32;

/// One card's fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Card {
    pub name: String,
    pub emails: Vec<String>,
    pub phones: Vec<String>,
    pub org: String,
    pub note: String,
}

/// What a file held: the usable cards (each with its number in the file, from 1), and one
/// message per card (or line) that was not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    pub cards: Vec<(usize, Card)>,
    pub errors: Vec<String>,
}

/// Unfolds `input` into logical lines (RFC 6350 §3.2).
fn unfold(input: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for raw in input.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        match (line.strip_prefix([' ', '\t']), out.last_mut()) {
            (Some(rest), Some(last)) => last.push_str(rest),
            _ => out.push(line.to_string()),
        }
    }
    out
}

/// Splits a content line into (name without group, parameters, value). `None` without `:`.
fn split_line(line: &str) -> Option<(String, Vec<String>, &str)> {
    let mut quoted = false;
    let mut colon = None;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ':' if !quoted => {
                colon = Some(i);
                break;
            }
            _ => {}
        }
    }
    let colon = colon?;
    let head = &line[..colon];
    let value = &line[colon + 1..];
    let mut parts = head.split(';');
    let name = parts.next().unwrap_or("");
    let name = name
        .rsplit('.')
        .next()
        .unwrap_or(name)
        .trim()
        .to_ascii_uppercase();
    Some((name, parts.map(|p| p.to_ascii_uppercase()).collect(), value))
}

/// Unescapes a text value (RFC 6350 §3.4).
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Splits a structured value on `;` that is not escaped, each component unescaped.
fn components(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ';' => {
                out.push(unescape(&s[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(unescape(&s[start..]));
    out
}

/// Escapes a text value for writing.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ',' => out.push_str("\\,"),
            ';' => out.push_str("\\;"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// A card being read.
#[derive(Default)]
struct Open {
    card: Card,
    /// The name from N, used when there is no FN.
    n_name: String,
    problem: Option<String>,
}

/// Reads every card of `input`.
pub fn parse(input: &str) -> Parsed {
    // A byte-order mark some exporters write.
    let input = input.strip_prefix('\u{feff}').unwrap_or(input);
    let mut parsed = Parsed::default();
    let mut open: Option<Open> = None;
    let mut number = 0usize;
    for (i, line) in unfold(input).iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Some((name, params, value)) = split_line(line) else {
            match open.as_mut() {
                Some(o) => {
                    o.problem
                        .get_or_insert(format!("line {} has no \":\"", i + 1));
                }
                None => parsed
                    .errors
                    .push(format!("Line {}: not part of a card.", i + 1)),
            }
            continue;
        };
        match (name.as_str(), open.as_mut()) {
            ("BEGIN", None) if value.trim().eq_ignore_ascii_case("VCARD") => {
                number += 1;
                if number > MAX_CARDS {
                    parsed.errors.push(format!(
                        "The file has more than {MAX_CARDS} cards; the rest were not read."
                    ));
                    return parsed;
                }
                open = Some(Open::default());
            }
            ("BEGIN", Some(o)) => {
                o.problem
                    .get_or_insert(format!("line {}: a card inside a card", i + 1));
            }
            ("END", Some(_)) if value.trim().eq_ignore_ascii_case("VCARD") => {
                if let Some(o) = open.take() {
                    finish(o, number, &mut parsed);
                }
            }
            (_, None) => parsed
                .errors
                .push(format!("Line {}: not part of a card.", i + 1)),
            (_, Some(o)) => read_property(o, &name, &params, value),
        }
    }
    if let Some(mut o) = open.take() {
        o.problem.get_or_insert("it has no END:VCARD".into());
        finish(o, number, &mut parsed);
    }
    parsed
}

fn read_property(o: &mut Open, name: &str, params: &[String], value: &str) {
    // vCard 2.1's quoted-printable is not read: say so rather than import mangled text.
    if params.iter().any(|p| p.contains("QUOTED-PRINTABLE")) {
        o.problem.get_or_insert(
            "it uses quoted-printable (vCard 2.1): export as vCard 3.0 or 4.0".into(),
        );
        return;
    }
    let full = o.card.emails.len() >= MAX_VALUES || o.card.phones.len() >= MAX_VALUES;
    match name {
        "FN" => o.card.name = unescape(value).trim().to_string(),
        "N" => {
            // Family; Given; Additional; Prefixes; Suffixes.
            let c = components(value);
            let part = |n: usize| c.get(n).map(|s| s.trim()).unwrap_or("");
            o.n_name = [part(3), part(1), part(2), part(0), part(4)]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(" ");
        }
        "EMAIL" if !full => {
            let v = unescape(value);
            let v = v.trim();
            let v = v.strip_prefix("mailto:").unwrap_or(v);
            if !v.is_empty() {
                o.card.emails.push(v.to_string());
            }
        }
        "TEL" if !full => {
            let v = unescape(value);
            let v = v.trim();
            let v = v.strip_prefix("tel:").unwrap_or(v);
            if !v.is_empty() {
                o.card.phones.push(v.to_string());
            }
        }
        "ORG" => {
            o.card.org = components(value)
                .iter()
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(", ")
        }
        "NOTE" => o.card.note = unescape(value).trim().to_string(),
        _ => {}
    }
}

fn finish(mut o: Open, number: usize, parsed: &mut Parsed) {
    if o.card.name.is_empty() {
        o.card.name = std::mem::take(&mut o.n_name);
    }
    // A name that is only the address (what [`write`] puts in FN, which vCard requires, for a
    // contact without a name) is no name.
    if o.card
        .emails
        .first()
        .is_some_and(|e| e.eq_ignore_ascii_case(o.card.name.trim()))
    {
        o.card.name.clear();
    }
    if o.problem.is_none() && o.card.emails.is_empty() {
        o.problem = Some("it has no e-mail address".into());
    }
    match o.problem {
        None => parsed.cards.push((number, o.card)),
        Some(why) => {
            let name: String = o.card.name.chars().take(80).collect();
            parsed.errors.push(if name.is_empty() {
                format!("Card {number}: {why}.")
            } else {
                format!("Card {number} ({name}): {why}.")
            });
        }
    }
}

/// Appends `line` folded at 75 octets (RFC 6350 §3.2), never inside a character, with CRLF.
fn push_folded(out: &mut String, line: &str) {
    let mut width = 0;
    for c in line.chars() {
        let len = c.len_utf8();
        if width + len > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += len;
    }
    out.push_str("\r\n");
}

/// Writes cards as vCard 3.0 (what most address books read).
pub fn write(cards: &[Card]) -> String {
    let mut out = String::new();
    for c in cards {
        out.push_str("BEGIN:VCARD\r\nVERSION:3.0\r\n");
        let name = if c.name.is_empty() {
            c.emails.first().cloned().unwrap_or_default()
        } else {
            c.name.clone()
        };
        push_folded(&mut out, &format!("FN:{}", escape(&name)));
        // N is required in 3.0: the whole name as the family name is what clients do when
        // they cannot tell the parts apart.
        push_folded(&mut out, &format!("N:{};;;;", escape(&c.name)));
        for e in &c.emails {
            push_folded(&mut out, &format!("EMAIL;TYPE=INTERNET:{}", escape(e)));
        }
        for t in &c.phones {
            push_folded(&mut out, &format!("TEL:{}", escape(t)));
        }
        if !c.org.is_empty() {
            push_folded(&mut out, &format!("ORG:{}", escape(&c.org)));
        }
        if !c.note.is_empty() {
            push_folded(&mut out, &format!("NOTE:{}", escape(&c.note)));
        }
        out.push_str("END:VCARD\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_3_0_and_4_0_with_folding_escapes_and_several_addresses() {
        let file = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ann Lee\\, PhD\r\nN:Lee;Ann;;;\r\n\
                    item1.EMAIL;TYPE=INTERNET,pref:ann@example.org\r\nEMAIL:ann.lee@wo\r\n rk.example\r\n\
                    TEL;TYPE=\"cell,voice\":+1 555 0100\r\nORG:Acme\\; Co;Sales\r\n\
                    NOTE:first\\nsecond\\\\ end\r\nPHOTO;VALUE=uri:https://x.example/p.jpg\r\nEND:VCARD\r\n\
                    BEGIN:VCARD\nVERSION:4.0\nN:Smith;Bo;;Dr.;\nEMAIL:mailto:bo@example.net\n\
                    TEL;VALUE=uri:tel:+44-20\nEND:VCARD\n";
        let p = parse(file);
        assert_eq!(p.errors, Vec::<String>::new());
        assert_eq!(p.cards.len(), 2);
        let a = &p.cards[0].1;
        assert_eq!(a.name, "Ann Lee, PhD");
        assert_eq!(a.emails, vec!["ann@example.org", "ann.lee@work.example"]);
        assert_eq!(a.phones, vec!["+1 555 0100"]);
        assert_eq!(a.org, "Acme; Co, Sales");
        assert_eq!(a.note, "first\nsecond\\ end");
        let b = &p.cards[1].1;
        assert_eq!(b.name, "Dr. Bo Smith");
        assert_eq!(b.emails, vec!["bo@example.net"]);
        assert_eq!(b.phones, vec!["+44-20"]);
    }

    #[test]
    fn bad_cards_are_reported_and_the_others_kept() {
        let file = "BEGIN:VCARD\nFN:No Mail\nEND:VCARD\nstray\nBEGIN:VCARD\nFN:Ok\n\
                    EMAIL:ok@example.org\nEND:VCARD\nBEGIN:VCARD\nFN:Broken\nEMAIL:b@example.org\n\
                    garbage line\nEND:VCARD\nBEGIN:VCARD\nEMAIL;ENCODING=QUOTED-PRINTABLE:x=40y\nEND:VCARD\n\
                    BEGIN:VCARD\nFN:Open\nEMAIL:o@example.org\n";
        let p = parse(file);
        assert_eq!(p.cards.len(), 1);
        assert_eq!(p.cards[0].1.name, "Ok");
        assert_eq!(p.cards[0].0, 2);
        assert_eq!(p.errors.len(), 5, "{:?}", p.errors);
        assert!(p.errors[0].starts_with("Card 1 (No Mail): it has no e-mail"));
        assert!(p.errors[1].starts_with("Line 4"));
        assert!(p.errors[2].contains("Card 3 (Broken)"));
        assert!(p.errors[3].contains("quoted-printable"));
        assert!(p.errors[4].contains("Card 5 (Open): it has no END:VCARD"));
    }

    #[test]
    fn card_count_is_bounded() {
        let one = "BEGIN:VCARD\nEMAIL:a@b.example\nEND:VCARD\n";
        let p = parse(&one.repeat(MAX_CARDS + 3));
        assert_eq!(p.cards.len(), MAX_CARDS);
        assert_eq!(p.errors.len(), 1);
    }

    #[test]
    fn writes_what_it_reads_back() {
        let cards = vec![
            Card {
                name: "Zoë; \"Z\", Ödegaard".into(),
                emails: vec!["z@example.org".into(), "z2@example.org".into()],
                phones: vec!["+47 1234".into()],
                org: "Fjord, Inc".into(),
                note: format!("multi\nline {}", "é".repeat(60)),
            },
            Card {
                name: String::new(),
                emails: vec!["only@example.org".into()],
                ..Card::default()
            },
        ];
        let text = write(&cards);
        assert!(text.lines().all(|l| l.len() <= 76), "{text}");
        let back = parse(&text);
        assert_eq!(back.errors, Vec::<String>::new());
        assert_eq!(back.cards[0].1, cards[0]);
        assert_eq!(back.cards[1].1, cards[1]);
    }

    #[test]
    fn any_input_is_safe() {
        for s in [
            "",
            "\\",
            ":",
            "BEGIN:VCARD",
            "END:VCARD",
            "BEGIN:VCARD\n \n\t",
            "a\"b:c\"",
            "BEGIN:VCARD\nN:;;;;;;;;\nEMAIL:\\\nEND:VCARD",
            "\u{feff}BEGIN:VCARD",
            "BEGIN:VCARD\nFN:a@b\nEMAIL:A@B\nTEL:\"x\":y\nNOTE:\\n\r\nEND:VCARD",
            "BEGIN:VCARD\nEMAIL:\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\nEND:VCARD",
        ] {
            for cut in (0..=s.len()).filter(|&c| s.is_char_boundary(c)) {
                // The fuzz target's property: what is written back reads as the same cards.
                let cards: Vec<Card> = parse(&s[..cut]).cards.into_iter().map(|(_, c)| c).collect();
                let again = parse(&write(&cards));
                assert!(again.errors.is_empty(), "{:?}", again.errors);
                assert_eq!(again.cards.len(), cards.len());
            }
        }
    }
}
