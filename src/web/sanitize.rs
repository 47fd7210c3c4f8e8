//! HTML mail made safe to show: ammonia's allow-list (no scripts, event handlers, forms,
//! frames, `<meta>`, `<base>`, SVG or MathML; only http(s)/mailto/tel links), plus our rules
//! for mail: inline styles limited to layout and colour properties without `url()`, links
//! opened in a new tab without a referrer, `cid:` images inlined from the message itself, and
//! remote images dropped unless the reader allowed them for this message.
//!
//! This is one layer. The webmail also serves the result in a sandboxed frame (no scripts, no
//! same-origin) under a Content-Security-Policy that forbids scripts and, by default, every
//! remote load.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The sanitized document and what was held back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sanitized {
    pub html: String,
    /// Remote images removed (0 when they were allowed).
    pub blocked_images: usize,
}

/// CSS properties kept in `style` attributes: enough for the layout of newsletters and
/// signatures; nothing that loads, positions over the page or animates.
const STYLE_PROPERTIES: &[&str] = &[
    "background-color",
    "border",
    "border-bottom",
    "border-collapse",
    "border-color",
    "border-left",
    "border-radius",
    "border-right",
    "border-spacing",
    "border-style",
    "border-top",
    "border-width",
    "color",
    "display",
    "font",
    "font-family",
    "font-size",
    "font-style",
    "font-weight",
    "height",
    "letter-spacing",
    "line-height",
    "list-style-type",
    "margin",
    "margin-bottom",
    "margin-left",
    "margin-right",
    "margin-top",
    "max-width",
    "min-width",
    "padding",
    "padding-bottom",
    "padding-left",
    "padding-right",
    "padding-top",
    "text-align",
    "text-decoration",
    "text-indent",
    "text-transform",
    "vertical-align",
    "white-space",
    "width",
    "word-break",
];

/// Sanitizes `html`. `cid` turns a `cid:` reference into a `data:` URL of that part of the
/// message (or `None` when there is no such image); remote images stay only when
/// `allow_remote`.
pub fn sanitize<F>(html: &str, allow_remote: bool, cid: F) -> Sanitized
where
    F: Fn(&str) -> Option<String> + Send + Sync + 'static,
{
    let blocked = Arc::new(AtomicUsize::new(0));
    let counter = blocked.clone();
    let mut builder = ammonia::Builder::default();
    builder
        .add_tags([
            "center", "font", "span", "div", "table", "caption", "u", "s",
        ])
        .add_tag_attributes("font", ["color", "face", "size"])
        .add_tag_attributes(
            "table",
            [
                "width",
                "height",
                "border",
                "cellpadding",
                "cellspacing",
                "bgcolor",
                "align",
            ],
        )
        .add_tag_attributes(
            "td",
            ["width", "height", "bgcolor", "align", "valign", "nowrap"],
        )
        .add_tag_attributes(
            "th",
            ["width", "height", "bgcolor", "align", "valign", "nowrap"],
        )
        .add_tag_attributes("tr", ["bgcolor", "align", "valign"])
        .add_tag_attributes("img", ["border"])
        .add_tag_attributes("div", ["align"])
        .add_tag_attributes("p", ["align"])
        .add_generic_attributes(["style", "dir"])
        .filter_style_properties(STYLE_PROPERTIES.iter().copied().collect::<HashSet<_>>())
        .url_schemes(
            ["http", "https", "mailto", "tel", "cid", "data"]
                .into_iter()
                .collect(),
        )
        .link_rel(Some("noopener noreferrer"))
        .set_tag_attribute_value("a", "target", "_blank")
        .strip_comments(true)
        .attribute_filter(move |element, attribute, value| {
            filter_attribute(element, attribute, value, allow_remote, &counter, &cid)
        });
    let html = builder.clean(html).to_string();
    Sanitized {
        html,
        blocked_images: blocked.load(Ordering::Relaxed),
    }
}

fn filter_attribute<'a>(
    element: &str,
    attribute: &str,
    value: &'a str,
    allow_remote: bool,
    blocked: &AtomicUsize,
    cid: &dyn Fn(&str) -> Option<String>,
) -> Option<Cow<'a, str>> {
    let lower = value.trim().to_ascii_lowercase();
    match (element, attribute) {
        ("img", "src") => {
            if let Some(id) = value.trim().strip_prefix("cid:") {
                return cid(id).map(Cow::Owned);
            }
            if lower.starts_with("data:image/") && !lower.starts_with("data:image/svg") {
                return Some(Cow::Borrowed(value));
            }
            if lower.starts_with("http:") || lower.starts_with("https:") || lower.starts_with("//")
            {
                if allow_remote {
                    return Some(Cow::Borrowed(value));
                }
                blocked.fetch_add(1, Ordering::Relaxed);
            }
            None
        }
        // Links go to the web, mail or phone only; `data:` and `cid:` were allowed above for
        // images alone.
        (_, "href") => (lower.starts_with("http:")
            || lower.starts_with("https:")
            || lower.starts_with("mailto:")
            || lower.starts_with("tel:")
            || lower.starts_with('#'))
        .then_some(Cow::Borrowed(value)),
        // ammonia keeps only the listed properties, but not their values: `url(...)` in a
        // border or font shorthand would still load something, and `expression(...)` is old
        // IE's script.
        (_, "style") => {
            if lower.contains("url(")
                || lower.contains("expression")
                || lower.contains("javascript:")
                || lower.contains('\\')
            {
                None
            } else {
                Some(Cow::Borrowed(value))
            }
        }
        _ => Some(Cow::Borrowed(value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(html: &str) -> Sanitized {
        sanitize(html, false, |id| {
            (id == "logo@x").then(|| "data:image/png;base64,iVBORw0KGgo=".to_string())
        })
    }

    /// Hostile markup of every kind we know: nothing executable or loading may survive.
    const HOSTILE: &[&str] = &[
        "<script>window.pwned=1</script>",
        "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
        "<img src=x onerror=\"window.pwned=1\">",
        "<body onload=window.pwned=1>",
        "<a href=\"javascript:window.pwned=1\">click</a>",
        "<a href=\"JaVaScRiPt:alert(1)\">click</a>",
        "<a href=\"  javascript:alert(1)\">click</a>",
        "<a href=\"java&#x09;script:alert(1)\">x</a>",
        "<a href=\"data:text/html,<script>alert(1)</script>\">x</a>",
        "<iframe src=\"https://evil.example\"></iframe>",
        "<object data=\"x.swf\"></object><embed src=\"x.swf\">",
        "<svg onload=\"window.pwned=1\"><script>window.pwned=1</script></svg>",
        "<svg><a xlink:href=\"javascript:alert(1)\"><text>x</text></a></svg>",
        "<math><mtext><script>window.pwned=1</script></mtext></math>",
        "<meta http-equiv=\"refresh\" content=\"0;url=https://evil.example\">",
        "<base href=\"https://evil.example/\">",
        "<form action=\"https://evil.example\"><input name=p type=password><button>Go</button></form>",
        "<div style=\"background:url(https://evil.example/t.png)\">x</div>",
        "<div style=\"width: expression(alert(1))\">x</div>",
        "<div style=\"color:red;background-image:url(javascript:alert(1))\">x</div>",
        "<p style=\"color: r\\65 d; behavior: url(x.htc)\">x</p>",
        "<style>body{background:url(https://evil.example/t.png)}</style>",
        "<link rel=stylesheet href=https://evil.example/x.css>",
        "<img src=\"data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+\">",
        "<video src=x onerror=alert(1)></video><audio src=x>",
        "<details open ontoggle=window.pwned=1>",
        "<<script>script>window.pwned=1<</script>/script>",
        "<img src=\"x\" / onerror=\"window.pwned=1\">",
        "<a href=x onclick=window.pwned=1>x</a><p onmouseover=window.pwned=1>",
        "<noscript><p title=\"</noscript><img src=x onerror=window.pwned=1>\"></noscript>",
        "<table background=\"https://evil.example/t.png\"><tr><td>x</td></tr></table>",
        "<!--[if gte IE 4]><script>window.pwned=1</script><![endif]-->",
        "<div><a href=\"vbscript:msgbox(1)\">x</a>",
        "<isindex action=javascript:alert(1) type=image>",
    ];

    #[test]
    fn nothing_executable_or_loading_survives() {
        for input in HOSTILE {
            let out = clean(input).html.to_ascii_lowercase();
            for bad in [
                "<script",
                "onerror",
                "onload",
                "onclick",
                "onmouseover",
                "ontoggle",
                "javascript:",
                "vbscript:",
                "<iframe",
                "<object",
                "<embed",
                "<svg",
                "<math",
                "<meta",
                "<base",
                "<form",
                "<input",
                "<style",
                "<link",
                "url(",
                "expression",
                "evil.example",
                "data:text",
                "data:image/svg",
                "<video",
                "<audio",
                "background=",
                "<isindex",
            ] {
                assert!(!out.contains(bad), "{input:?} -> {out:?} still has {bad:?}");
            }
        }
    }

    #[test]
    fn mail_layout_survives() {
        let out = clean(
            "<table width=\"600\" bgcolor=\"#fff\"><tr><td align=\"center\" style=\"color: #333; padding: 4px\">\
             <font color=\"red\">Hi</font> <a href=\"https://example.org/x\">link</a>\
             <img src=\"cid:logo@x\" alt=\"logo\"></td></tr></table>",
        );
        assert!(out.html.contains("width=\"600\""), "{}", out.html);
        assert!(
            out.html.contains("style=\"color:#333;padding:4px\""),
            "{}",
            out.html
        );
        assert!(out.html.contains("<font color=\"red\">"));
        assert!(out.html.contains("target=\"_blank\""));
        assert!(out.html.contains("rel=\"noopener noreferrer\""));
        assert!(
            out.html.contains("src=\"data:image/png;base64,"),
            "{}",
            out.html
        );
        assert_eq!(out.blocked_images, 0);
    }

    #[test]
    fn remote_images_wait_for_permission() {
        let html = "<p>news</p><img src=\"https://tracker.example/p.gif\" alt=\"pixel\"><img src=\"http://x.example/a.png\">";
        let blocked = clean(html);
        assert_eq!(blocked.blocked_images, 2);
        assert!(
            !blocked.html.contains("tracker.example"),
            "{}",
            blocked.html
        );
        assert!(blocked.html.contains("alt=\"pixel\""));
        let allowed = sanitize(html, true, |_| None);
        assert_eq!(allowed.blocked_images, 0);
        assert!(allowed.html.contains("https://tracker.example/p.gif"));
    }
}
