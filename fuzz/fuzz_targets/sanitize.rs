//! The webmail's HTML sanitizer: never panics, and whatever goes in, every tag that comes out
//! is one of the allowed ones and carries only allowed attributes, no event handler or script
//! URL, and elements nest no deeper than a small multiple of the cap (issue 16: deep nesting
//! once cost seconds). What our rules add on top of ammonia holds too: before the reader's
//! consent no image loads from anywhere (only `data:image/` sources, never SVG), and no style
//! can load anything (`url(`, `expression`, CSS escapes).
//!
//! Run it with a time limit per input, so that an input that is slow to sanitize is a
//! finding, and with the seeds (deeply nested HTML among them) and inputs as large as they:
//!   cargo +nightly fuzz run sanitize fuzz/corpus/sanitize fuzz/seeds/sanitize -- \
//!     -timeout=2 -max_len=300000 -max_total_time=300
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailroom::web::sanitize::{MAX_DEPTH, nesting_depth, sanitize};

const ALLOWED: &[&str] = &[
    "a", "abbr", "acronym", "area", "article", "aside", "b", "bdi", "bdo", "blockquote", "br",
    "caption", "center", "cite", "code", "col", "colgroup", "data", "dd", "del", "details",
    "dfn", "div", "dl", "dt", "em", "figcaption", "figure", "font", "footer", "h1", "h2", "h3",
    "h4", "h5", "h6", "header", "hgroup", "hr", "i", "img", "ins", "kbd", "li", "map", "mark",
    "nav", "ol", "p", "pre", "q", "rp", "rt", "rtc", "ruby", "s", "samp", "small", "span",
    "strike", "strong", "sub", "summary", "sup", "table", "tbody", "td", "th", "thead", "time",
    "tfoot", "tr", "tt", "u", "ul", "var", "wbr",
];

/// Attributes any tag may keep: ammonia's defaults (generic and per tag) and ours
/// (`web/sanitize.rs`), `rel`/`target` as set on links. Per-tag precision is ammonia's job;
/// this catches an attribute nobody allowed.
const ATTRIBUTES: &[&str] = &[
    "lang", "title", "href", "hreflang", "rel", "target", "dir", "cite", "align", "char",
    "charoff", "span", "datetime", "size", "width", "height", "alt", "src", "start", "summary",
    "colspan", "headers", "rowspan", "scope", "color", "face", "border", "cellpadding",
    "cellspacing", "bgcolor", "valign", "nowrap", "style",
];

fuzz_target!(|data: &[u8]| {
    let html = String::from_utf8_lossy(data);
    check(&sanitize(&html, false, |_| None).html, false);
    check(&sanitize(&html, true, |_| None).html, true);
});

fn check(out: &str, remote_allowed: bool) {
    // html5ever adds elements of its own (a table's body and row), so not exactly the cap.
    let depth = nesting_depth(&out);
    assert!(depth <= 4 * MAX_DEPTH, "depth {depth}");
    // Text is escaped, so every '<' in the output opens a tag (or closes one).
    for tag in out.split('<').skip(1) {
        let end = tag.find('>').unwrap_or(tag.len());
        let inside = &tag[..end];
        let name: String = inside
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        assert!(ALLOWED.contains(&name.as_str()), "tag {name:?} in {out:?}");
        // ammonia writes every value in double quotes, with '"' escaped inside.
        let mut rest = inside.trim_start_matches('/')[name.len()..].trim_start();
        while !rest.is_empty() && rest != "/" {
            let name_end = rest
                .find(|c: char| c == '=' || c.is_whitespace())
                .unwrap_or(rest.len());
            let attr = rest[..name_end].to_ascii_lowercase();
            assert!(!attr.starts_with("on"), "handler {attr:?} in {out:?}");
            assert!(ATTRIBUTES.contains(&attr.as_str()), "attribute {attr:?} in {out:?}");
            rest = &rest[name_end..];
            let mut value = "";
            if let Some(v) = rest.strip_prefix("=\"") {
                let close = v.find('"').expect("closing quote");
                value = &v[..close];
                rest = &v[close + 1..];
            }
            let v = value.trim().to_ascii_lowercase();
            if matches!(attr.as_str(), "href" | "src") {
                assert!(
                    !v.starts_with("javascript:") && !v.starts_with("vbscript:") && !v.starts_with("data:text"),
                    "{attr}={value:?} in {out:?}"
                );
            }
            if attr == "src" && !remote_allowed {
                assert!(
                    v.starts_with("data:image/") && !v.starts_with("data:image/svg"),
                    "an image loads before consent: src={value:?} in {out:?}"
                );
            }
            if attr == "style" {
                assert!(
                    !v.contains("url(") && !v.contains("expression") && !v.contains('\\'),
                    "a style that can load: {value:?} in {out:?}"
                );
            }
            rest = rest.trim_start();
        }
    }
}
