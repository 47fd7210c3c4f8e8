//! A message as the set of tokens the classifier counts: words of the subject and the body
//! text (HTML turned into text by mail-parser), the sender's address and domain, the domains
//! of the links, and a few header facts. Each token is counted once per message (presence, as
//! in Graham's and Robinson's filters: repeating a word does not make a message more spammy),
//! and hashed to 64 bits so storage does not keep the user's words.
//!
//! Bounds: at most [`MAX_TEXT`] bytes of body text are read and at most [`MAX_TOKENS`] tokens
//! kept per message, so a huge message costs no more than a large one.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

use mail_parser::{HeaderValue, MessageParser};

/// The part of a message parsed: its headers and what follows, cut here before parsing, so
/// a large message (or a deep MIME tree further down) costs no more than this much.
pub const MAX_INPUT: usize = 256 * 1024;
/// Body text read per message: spam says what it says near the top.
pub const MAX_TEXT: usize = 64 * 1024;
/// Distinct tokens kept per message.
pub const MAX_TOKENS: usize = 3000;
/// Words shorter or longer than these are not tokens (long ones are mostly encoded junk).
const MIN_WORD: usize = 3;
const MAX_WORD: usize = 24;

/// FNV-1a, 64 bits: a fixed function (stored hashes must not change with the toolchain, as
/// `std`'s hasher may), fast on short strings; 64 bits make collisions between the few
/// hundred thousand tokens of one account negligible.
pub fn hash(token: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in token.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The distinct tokens of a raw message, readable (for tests and explanations); see
/// [`hashed`] for what the classifier stores.
pub fn tokens(raw: &[u8]) -> Vec<String> {
    let mut out = Tokens {
        readable: Some(Vec::new()),
        ..Tokens::default()
    };
    walk(raw, &mut out);
    out.readable.unwrap_or_default()
}

/// [`tokens`], hashed: what the classifier stores and looks up. (It runs for every message
/// received, so it keeps only the hashes: no token string is kept or copied.)
pub fn hashed(raw: &[u8]) -> Vec<u64> {
    let mut out = Tokens::default();
    walk(raw, &mut out);
    out.list
}

/// Adds the tokens of `raw` to `out`.
fn walk(raw: &[u8], out: &mut Tokens) {
    let raw = raw.get(..MAX_INPUT).unwrap_or(raw);
    let Some(message) = MessageParser::default().parse(raw) else {
        out.add("meta:unparsable");
        return;
    };
    if let Some(from) = message.from().and_then(|a| a.first()) {
        if let Some(address) = from.address() {
            let address = address.to_ascii_lowercase();
            if let Some((_, domain)) = address.rsplit_once('@') {
                out.add(&format!("from-domain:{domain}"));
            }
            out.add(&format!("from:{address}"));
        }
        if let Some(name) = from.name() {
            for word in words(name) {
                out.add(&format!("from-name:{word}"));
            }
        }
    } else {
        out.add("meta:no-from");
    }
    for word in words(message.subject().unwrap_or_default()) {
        out.add(&format!("subject:{word}"));
    }
    if message.subject().is_none_or(|s| s.trim().is_empty()) {
        out.add("meta:no-subject");
    }
    for header in message.headers() {
        let name = header.name().to_ascii_lowercase();
        match name.as_str() {
            "x-mailer" | "user-agent" => {
                if let HeaderValue::Text(text) = header.value() {
                    for word in words(text).take(3) {
                        out.add(&format!("{name}:{word}"));
                    }
                }
            }
            "list-unsubscribe" | "list-id" | "precedence" | "reply-to" | "x-priority" => {
                out.add(&format!("has:{name}"));
            }
            _ => {}
        }
    }
    let recipients =
        message.to().map_or(0, |a| a.iter().count()) + message.cc().map_or(0, |a| a.iter().count());
    out.add(&format!("meta:recipients-{}", recipients.min(10)));
    let html = message.html_body_count() > 0;
    let plain = message.text_body_count() > 0
        && message
            .text_body
            .iter()
            .any(|&i| message.part(i).is_some_and(|p| !p.is_text_html()));
    out.add(&format!("meta:html-{html}-plain-{plain}"));
    if message.attachment_count() > 0 {
        out.add("meta:attachment");
        for part in message.attachments() {
            if let Some(ct) = mail_parser::MimeHeaders::content_type(part) {
                out.add(&format!("attachment:{}", ct.ctype().to_ascii_lowercase()));
            }
        }
    }
    let text = message.body_text(0).unwrap_or_default();
    let text = cut(&text, MAX_TEXT);
    for domain in link_domains(text) {
        out.add(&format!("url:{domain}"));
    }
    // Only a real HTML part has links of its own: for plain text, mail-parser would make HTML
    // of the text just read.
    let real_html = message
        .html_body
        .iter()
        .any(|&i| message.part(i).is_some_and(|p| p.is_text_html()));
    if real_html && let Some(html) = message.body_html(0) {
        for domain in link_domains(cut(&html, MAX_TEXT)) {
            out.add(&format!("url:{domain}"));
        }
    }
    for word in words(text) {
        if out.list.len() >= MAX_TOKENS {
            break;
        }
        out.add(&word);
    }
}

/// The distinct tokens seen so far, by hash, in the order first seen.
#[derive(Default)]
struct Tokens {
    seen: HashSet<u64, BuildHasherDefault<Passthrough>>,
    list: Vec<u64>,
    /// The tokens themselves, when asked for ([`tokens`]).
    readable: Option<Vec<String>>,
}

impl Tokens {
    fn add(&mut self, token: &str) {
        let h = hash(token);
        if self.list.len() < MAX_TOKENS && self.seen.insert(h) {
            self.list.push(h);
            if let Some(readable) = &mut self.readable {
                readable.push(token.to_string());
            }
        }
    }
}

/// A set of FNV hashes needs no second hash: this one passes the value through.
#[derive(Default)]
struct Passthrough(u64);

impl Hasher for Passthrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default()
}

/// The words of `text`: runs of letters, digits and a few joiners (`'`, `-`, `$`, `!`),
/// lower-cased, of [`MIN_WORD`] to [`MAX_WORD`] characters, not all digits.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_alphanumeric() || matches!(c, '\'' | '-' | '$' | '!')))
        .map(|w| w.trim_matches(|c: char| matches!(c, '\'' | '-')))
        .filter(|w| {
            let n = w.chars().count();
            (MIN_WORD..=MAX_WORD).contains(&n) && !w.chars().all(|c| c.is_ascii_digit())
        })
        .map(|w| match w.is_ascii() {
            true => w.to_ascii_lowercase(),
            false => w.to_lowercase(),
        })
}

/// The host names of `http://` and `https://` links in `text`, lower-cased, without `www.`.
fn link_domains(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let lower = text.to_ascii_lowercase();
    let mut rest = lower.as_str();
    while let Some(i) = rest.find("http") {
        let after = rest.get(i + 4..).unwrap_or_default();
        let after = after.strip_prefix('s').unwrap_or(after);
        rest = after;
        let Some(host) = after.strip_prefix("://") else {
            continue;
        };
        let host: String = host
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
            .take(253)
            .collect();
        let host = host.trim_start_matches("www.").trim_end_matches('.');
        if host.contains('.') && found.len() < 50 {
            found.push(host.to_string());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_of_a_message() {
        let raw = b"From: \"Cheap Pills\" <Offers@Pharma.example>\r\nTo: a@x.org, b@x.org\r\n\
            Subject: Buy now, BUY now!\r\nX-Mailer: BulkMailer 9\r\nList-Unsubscribe: <x>\r\n\
            Content-Type: text/html\r\n\r\n<p>Visit <a href=\"https://www.pharma.example/buy\">our \
            shop</a> at 12345 prices</p>";
        let t = tokens(raw);
        for want in [
            "from:offers@pharma.example",
            "from-domain:pharma.example",
            "from-name:cheap",
            "subject:buy",
            "subject:now!",
            "x-mailer:bulkmailer",
            "has:list-unsubscribe",
            "meta:recipients-2",
            "url:pharma.example",
            "visit",
            "shop",
            "prices",
        ] {
            assert!(t.iter().any(|x| x == want), "{want} in {t:?}");
        }
        // Once each, digits-only words and short ones left out.
        assert_eq!(t.iter().filter(|x| *x == "subject:buy").count(), 1);
        assert!(!t.iter().any(|x| x == "12345" || x == "at"));
    }

    #[test]
    fn bounded_and_odd_input() {
        let mut raw = b"Subject: x\r\n\r\n".to_vec();
        for i in 0..100_000 {
            raw.extend_from_slice(format!("word{i} ").as_bytes());
        }
        assert!(tokens(&raw).len() <= MAX_TOKENS);
        // Past MAX_INPUT nothing is read: a word only there is no token.
        let mut big = b"Subject: x\r\n\r\n".to_vec();
        big.resize(MAX_INPUT, b' ');
        big.extend_from_slice(b" zzzfarawayword ");
        assert!(!tokens(&big).iter().any(|t| t == "zzzfarawayword"));
        assert_eq!(tokens(b""), ["meta:unparsable"]);
        let odd = tokens(b"\xff\xfe\x00garbage");
        assert!(odd.iter().any(|t| t.starts_with("meta:")), "{odd:?}");
        assert_ne!(hash("abc"), hash("abd"));
        // The fixed function: a stored hash means the same token forever.
        assert_eq!(hash(""), 0xcbf2_9ce4_8422_2325);
    }
}
