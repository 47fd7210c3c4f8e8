//! RFC 5322 address lists parsed into RFC 3501 address structures, raw (encoded words are
//! kept: IMAP clients decode them), plus the decoded display form for the webmail.
//!
//! The parser is lenient, in the way Dovecot's is: a mailbox without a domain gets the host
//! [`MISSING_DOMAIN`], an empty local part [`MISSING_MAILBOX`] (a NIL host would make it a
//! group marker); a comment stands in for a missing display name; quotes are removed from
//! display names and local parts; an unterminated `<`, quote or comment runs to the end.

use super::Address;
use super::header::bytes_to_string;
use super::text::decode_words;

/// Host given to a mailbox that has none (as Dovecot does).
pub(crate) const MISSING_DOMAIN: &str = "MISSING_DOMAIN";
/// Local part given to an address that has none (as Dovecot does).
pub(crate) const MISSING_MAILBOX: &str = "MISSING_MAILBOX";

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// An atom, or the content of a quoted string.
    Word(Vec<u8>),
    /// The content of a comment (outer parentheses removed).
    Comment(Vec<u8>),
    /// A domain literal, brackets included.
    Literal(Vec<u8>),
    /// One of `< > @ , ; : .`
    Special(u8),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    /// White space came before this token.
    space: bool,
}

fn lex(s: &[u8]) -> Vec<Token> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut space = false;
    while let Some(&b) = s.get(i) {
        let tok = match b {
            b' ' | b'\t' | b'\r' | b'\n' => {
                space = true;
                i += 1;
                continue;
            }
            b'"' => {
                let mut v = Vec::new();
                i += 1;
                while let Some(&c) = s.get(i) {
                    i += 1;
                    match c {
                        b'"' => break,
                        b'\\' => {
                            if let Some(&n) = s.get(i) {
                                v.push(n);
                                i += 1;
                            }
                        }
                        _ => v.push(c),
                    }
                }
                Tok::Word(v)
            }
            b'(' => {
                let mut v = Vec::new();
                let mut depth = 1usize;
                i += 1;
                while let Some(&c) = s.get(i) {
                    i += 1;
                    match c {
                        b'(' => depth += 1,
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        b'\\' => {
                            if let Some(&n) = s.get(i) {
                                v.push(n);
                                i += 1;
                            }
                            continue;
                        }
                        _ => {}
                    }
                    v.push(c);
                }
                Tok::Comment(v)
            }
            b'[' => {
                let start = i;
                while let Some(&c) = s.get(i) {
                    i += 1;
                    if c == b']' {
                        break;
                    }
                }
                Tok::Literal(s.get(start..i).unwrap_or_default().to_vec())
            }
            b'<' | b'>' | b'@' | b',' | b';' | b':' | b'.' => {
                i += 1;
                Tok::Special(b)
            }
            _ => {
                let start = i;
                while let Some(&c) = s.get(i) {
                    if b" \t\r\n\"([<>@,;:.".contains(&c) {
                        break;
                    }
                    i += 1;
                }
                Tok::Word(s.get(start..i).unwrap_or_default().to_vec())
            }
        };
        out.push(Token { tok, space });
        space = false;
    }
    out
}

/// Parses an unfolded address list value (e.g. of `From:`, `To:`).
pub(crate) fn parse_list(value: &[u8]) -> Vec<Address> {
    let mut out = Vec::new();
    let mut item: Vec<Token> = Vec::new();
    let mut in_angle = false;
    let mut in_group = false;
    for t in lex(value) {
        match t.tok {
            Tok::Special(b'<') => {
                in_angle = true;
                item.push(t);
            }
            Tok::Special(b'>') => {
                in_angle = false;
                item.push(t);
            }
            Tok::Special(b',') if !in_angle => flush(&mut item, &mut out),
            Tok::Special(b':')
                if !in_angle && !in_group && !item.iter().any(|t| t.tok == Tok::Special(b'@')) =>
            {
                let name = phrase(&item);
                out.push(Address {
                    mailbox: Some(name),
                    ..Address::default()
                });
                item.clear();
                in_group = true;
            }
            Tok::Special(b';') if !in_angle => {
                flush(&mut item, &mut out);
                if in_group {
                    out.push(Address::default());
                    in_group = false;
                }
            }
            _ => item.push(t),
        }
    }
    flush(&mut item, &mut out);
    if in_group {
        out.push(Address::default());
    }
    out
}

fn flush(item: &mut Vec<Token>, out: &mut Vec<Address>) {
    if let Some(a) = mailbox(item) {
        out.push(a);
    }
    item.clear();
}

/// One mailbox: `[phrase] "<" [route ":"] addr-spec ">"` or `addr-spec [comment]`.
fn mailbox(item: &[Token]) -> Option<Address> {
    let words: Vec<&Token> = item
        .iter()
        .filter(|t| !matches!(t.tok, Tok::Comment(_)))
        .collect();
    if words.is_empty() {
        return None;
    }
    let comment = item.iter().find_map(|t| match &t.tok {
        Tok::Comment(c) if !c.iter().all(|b| b.is_ascii_whitespace()) => {
            Some(bytes_to_string(c).trim().to_string())
        }
        _ => None,
    });

    let (name, adl, spec): (Option<String>, Option<String>, Vec<&Token>) =
        match words.iter().position(|t| t.tok == Tok::Special(b'<')) {
            Some(lt) => {
                let before: Vec<Token> = words
                    .get(..lt)
                    .unwrap_or_default()
                    .iter()
                    .map(|t| (*t).clone())
                    .collect();
                let name = Some(phrase(&before)).filter(|n| !n.is_empty()).or(comment);
                let inner: Vec<&Token> = words
                    .get(lt + 1..)
                    .unwrap_or_default()
                    .iter()
                    .take_while(|t| t.tok != Tok::Special(b'>'))
                    .copied()
                    .collect();
                let (adl, spec) = match inner.first() {
                    Some(t) if t.tok == Tok::Special(b'@') => {
                        match inner.iter().position(|t| t.tok == Tok::Special(b':')) {
                            Some(colon) => (
                                Some(compact(inner.get(..colon).unwrap_or_default())),
                                inner.get(colon + 1..).unwrap_or_default().to_vec(),
                            ),
                            None => (None, inner),
                        }
                    }
                    _ => (None, inner),
                };
                (name, adl, spec)
            }
            None => (comment, None, words),
        };

    let (local, domain) = match spec.iter().position(|t| t.tok == Tok::Special(b'@')) {
        Some(at) => (
            compact(spec.get(..at).unwrap_or_default()),
            compact(spec.get(at + 1..).unwrap_or_default()),
        ),
        None => (compact(&spec), String::new()),
    };
    Some(Address {
        name,
        adl: adl.filter(|a| !a.is_empty()),
        mailbox: Some(if local.is_empty() {
            MISSING_MAILBOX.to_string()
        } else {
            local
        }),
        host: Some(if domain.is_empty() {
            MISSING_DOMAIN.to_string()
        } else {
            domain
        }),
    })
}

/// A display name or group name: the words as written, quotes removed, white space kept as
/// single spaces.
fn phrase(tokens: &[Token]) -> String {
    let mut out = Vec::new();
    for t in tokens {
        let bytes: &[u8] = match &t.tok {
            Tok::Word(w) | Tok::Literal(w) => w,
            Tok::Special(b) => std::slice::from_ref(b),
            Tok::Comment(_) => continue,
        };
        if t.space && !out.is_empty() {
            out.push(b' ');
        }
        out.extend_from_slice(bytes);
    }
    bytes_to_string(&out).trim().to_string()
}

/// A local part, domain or route: the words and specials joined, with a space only between
/// two words that were apart (`undisclosed recipients`).
fn compact(tokens: &[&Token]) -> String {
    let mut out = Vec::new();
    let mut last_word = false;
    for t in tokens {
        let (bytes, word): (&[u8], bool) = match &t.tok {
            Tok::Word(w) => (w, true),
            Tok::Literal(w) => (w, false),
            Tok::Special(b) => (std::slice::from_ref(b), false),
            Tok::Comment(_) => continue,
        };
        if word && last_word && t.space {
            out.push(b' ');
        }
        out.extend_from_slice(bytes);
        last_word = word;
    }
    bytes_to_string(&out)
}

/// `mailbox@host`, without a made-up host.
pub(crate) fn email(a: &Address) -> Option<String> {
    let mailbox = a.mailbox.as_deref()?;
    match a.host.as_deref() {
        None => None,
        Some(MISSING_DOMAIN) if mailbox == MISSING_MAILBOX => None,
        Some(MISSING_DOMAIN) => Some(mailbox.to_string()),
        Some(host) => Some(format!("{mailbox}@{host}")),
    }
}

/// The decoded display form: `Alice <a@x.org>, b@y.org, Friends: c@z.org;`.
pub(crate) fn display(list: &[Address]) -> String {
    display_items(list).join(", ")
}

/// [`display`], one item per address or group.
pub(crate) fn display_items(list: &[Address]) -> Vec<String> {
    let mut items: Vec<String> = Vec::new();
    let mut group: Option<(String, Vec<String>)> = None;
    for a in list {
        match (&a.mailbox, &a.host) {
            (Some(name), None) => {
                if let Some((g, members)) = group.take() {
                    items.push(group_text(&g, &members));
                }
                group = Some((decode_words(name), Vec::new()));
            }
            (None, None) => {
                if let Some((g, members)) = group.take() {
                    items.push(group_text(&g, &members));
                }
            }
            _ => {
                let name = a.name.as_deref().map(decode_words).unwrap_or_default();
                let one = match (email(a), name.is_empty()) {
                    (Some(addr), false) => format!("{name} <{addr}>"),
                    (Some(addr), true) => addr,
                    (None, false) => name,
                    (None, true) => continue,
                };
                match group.as_mut() {
                    Some((_, members)) => members.push(one),
                    None => items.push(one),
                }
            }
        }
    }
    if let Some((g, members)) = group {
        items.push(group_text(&g, &members));
    }
    items
}

fn group_text(name: &str, members: &[String]) -> String {
    if members.is_empty() {
        format!("{name}:;")
    } else {
        format!("{name}: {};", members.join(", "))
    }
}

/// Every decoded display name, group name and address, space separated (for search).
pub(crate) fn search_text(list: &[Address], out: &mut String) {
    for a in list {
        let mut push = |s: &str| {
            if !s.is_empty() {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(s);
            }
        };
        if let Some(name) = &a.name {
            push(&decode_words(name));
        }
        match (&a.mailbox, &a.host) {
            (Some(group), None) => push(&decode_words(group)),
            _ => {
                if let Some(addr) = email(a) {
                    push(&addr);
                }
            }
        }
    }
}

/// A mailbox of an author field (`From:`, `Sender:`), read strictly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The display name, RFC 2047 words decoded; `None` when there is none.
    pub name: Option<String>,
    /// `local@domain` as written (quotes and comments removed).
    pub address: String,
}

/// Parses an author field's value (`mailbox-list` of RFC 5322 §3.4, folding allowed, without
/// the obsolete forms): each mailbox is `addr-spec` or `[phrase] "<" addr-spec ">"`, with
/// comments anywhere. Refused, where [`parse_list`] would guess: groups, source routes, two
/// angle addresses in one mailbox, anything after the `>`, a missing `@`. The submission path
/// checks who a message claims to be from with this, so what it checks is what every reader
/// would show, not one parser's best guess.
pub(crate) fn parse_mailboxes(value: &[u8]) -> Result<Vec<Mailbox>, String> {
    let mut out = Vec::new();
    let mut item: Vec<Token> = Vec::new();
    let mut in_angle = false;
    for t in lex(value) {
        match t.tok {
            Tok::Special(b'<') => {
                if in_angle {
                    return Err("a '<' inside an address".into());
                }
                in_angle = true;
                item.push(t);
            }
            Tok::Special(b'>') => {
                in_angle = false;
                item.push(t);
            }
            Tok::Special(b',') if !in_angle => {
                if let Some(m) = strict_mailbox(&item)? {
                    out.push(m);
                }
                item.clear();
            }
            Tok::Special(b':' | b';') => {
                return Err("a group or a source route, which an author field may not have".into());
            }
            _ => item.push(t),
        }
    }
    if let Some(m) = strict_mailbox(&item)? {
        out.push(m);
    }
    Ok(out)
}

/// One mailbox of [`parse_mailboxes`]; `None` for an empty item (`a@x, , b@y`).
fn strict_mailbox(item: &[Token]) -> Result<Option<Mailbox>, String> {
    let words: Vec<&Token> = item
        .iter()
        .filter(|t| !matches!(t.tok, Tok::Comment(_)))
        .collect();
    if words.is_empty() {
        return Ok(None);
    }
    let (name, spec) = match words.iter().position(|t| t.tok == Tok::Special(b'<')) {
        Some(lt) => {
            let before = words.get(..lt).unwrap_or_default();
            let after = words.get(lt + 1..).unwrap_or_default();
            // The phrase: words, the dots of "J. Smith" (obs-phrase, still common), and the
            // '@' of "j@x.org <j@x.org>" (scripts and some phones write the address as its own
            // unquoted name; the address is the one in angle brackets either way).
            if before
                .iter()
                .any(|t| !matches!(t.tok, Tok::Word(_) | Tok::Special(b'.' | b'@')))
            {
                return Err("a display name with special characters that are not quoted".into());
            }
            let Some((last, spec)) = after.split_last() else {
                return Err("an address without its closing '>'".into());
            };
            if last.tok != Tok::Special(b'>') {
                return Err("something after the closing '>' of an address, or no '>'".into());
            }
            let phrase_tokens: Vec<Token> = before.iter().map(|t| (*t).clone()).collect();
            let name = phrase(&phrase_tokens);
            let name = (!name.is_empty()).then(|| super::text::decode_words(&name));
            (name, spec)
        }
        None => (None, words.as_slice()),
    };
    Ok(Some(Mailbox {
        name,
        address: addr_spec(spec)?,
    }))
}

/// `local-part "@" domain` from its tokens: dot-separated words, then a domain of
/// dot-separated words or one domain literal.
fn addr_spec(tokens: &[&Token]) -> Result<String, String> {
    let at = tokens
        .iter()
        .position(|t| t.tok == Tok::Special(b'@'))
        .ok_or("an address without '@'")?;
    let dotted = |part: &[&Token], literal_ok: bool| -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        if let [one] = part
            && let Tok::Literal(l) = &one.tok
            && literal_ok
        {
            return Ok(l.clone());
        }
        for (i, t) in part.iter().enumerate() {
            match (&t.tok, i % 2) {
                (Tok::Word(w), 0) if !w.is_empty() => out.extend_from_slice(w),
                (Tok::Special(b'.'), 1) => out.push(b'.'),
                _ => return Err("an address that is not local@domain".to_string()),
            }
        }
        if part.len().is_multiple_of(2) {
            return Err("an address that is not local@domain".to_string());
        }
        Ok(out)
    };
    let local = dotted(tokens.get(..at).unwrap_or_default(), false)?;
    let domain = dotted(tokens.get(at + 1..).unwrap_or_default(), true)?;
    let mut address = local;
    address.push(b'@');
    address.extend_from_slice(&domain);
    Ok(bytes_to_string(&address))
}
