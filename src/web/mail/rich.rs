//! Rich text in compose: the plain-text part written from the editor's HTML (sent with it as
//! multipart/alternative), and HTML made from plain text (a reply's quote in the rich editor).
//!
//! [`html_to_text`] reads HTML that [`crate::web::sanitize::sanitize`] has already cleaned
//! (so well formed, quoted attributes, no scripts or styles to skip), and writes what a text
//! reader expects: paragraphs and lines, list items as `- ` (or `1. `), links as
//! `text <url>`, quotes as `> ` lines. It is a small tag walker rather than a crate because
//! no HTML-to-text crate is in this project's registry cache, and the input is our own
//! sanitizer's output.

/// Decodes the character references the sanitizer writes (and the numeric ones).
fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let end = rest.find(';').filter(|&e| e <= 10);
        let decoded = end.and_then(|e| {
            let name = &rest[1..e];
            let c = match name {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                "nbsp" => '\u{a0}',
                _ => {
                    let n = name.strip_prefix('#')?;
                    let v = match n.strip_prefix(['x', 'X']) {
                        Some(h) => u32::from_str_radix(h, 16).ok()?,
                        None => n.parse().ok()?,
                    };
                    char::from_u32(v)?
                }
            };
            Some((c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The value of attribute `name` in a start tag's text (after the tag name).
fn attribute(tag: &str, name: &str) -> Option<String> {
    let mut rest = tag;
    loop {
        let i = rest.find(name)?;
        let before_ok = i == 0 || rest[..i].ends_with(|c: char| c.is_ascii_whitespace());
        let after = rest[i + name.len()..].trim_start();
        if before_ok && let Some(v) = after.strip_prefix('=') {
            let v = v.trim_start();
            let value = match v.chars().next() {
                Some(q @ ('"' | '\'')) => v[1..].split(q).next().unwrap_or(""),
                _ => v
                    .split(|c: char| c.is_ascii_whitespace())
                    .next()
                    .unwrap_or(""),
            };
            return Some(decode_entities(value));
        }
        rest = &rest[i + name.len()..];
    }
}

struct Writer {
    out: String,
    quote: usize,
    /// Line breaks owed before the next text.
    breaks: usize,
    space: bool,
    at_line_start: bool,
    /// A list item's marker, written at the start of its first line.
    marker: Option<String>,
    /// Open lists: ordered, and the next number.
    lists: Vec<(bool, usize)>,
    /// Open links: the href and where their text starts in `out`.
    links: Vec<(Option<String>, usize)>,
    pre: usize,
    /// The quote depth of the last text written.
    last_quote: usize,
}

impl Writer {
    /// `>> ` at depth 2 (RFC 3676's quote marks), nothing outside quotes.
    fn prefix(&self) -> String {
        if self.quote == 0 {
            String::new()
        } else {
            format!("{} ", ">".repeat(self.quote))
        }
    }

    fn text(&mut self, s: &str) {
        for c in s.chars() {
            if c.is_whitespace() && c != '\u{a0}' && self.pre == 0 {
                if !self.at_line_start {
                    self.space = true;
                }
                continue;
            }
            if c == '\n' {
                // Inside <pre>.
                self.breaks += 1;
                continue;
            }
            self.flush();
            self.last_quote = self.quote;
            if self.space {
                self.out.push(' ');
                self.space = false;
            }
            self.out.push(if c == '\u{a0}' { ' ' } else { c });
        }
    }

    /// Writes owed line breaks and the new line's prefix.
    fn flush(&mut self) {
        if !self.out.is_empty() && self.breaks > 0 {
            for n in 0..self.breaks {
                self.out.push('\n');
                if n + 1 < self.breaks {
                    // A blank line inside a quote stays in the quote (not one before it).
                    self.out
                        .push_str(&">".repeat(self.quote.min(self.last_quote)));
                }
            }
            self.at_line_start = true;
        }
        self.breaks = 0;
        if self.at_line_start {
            let p = self.prefix();
            self.out.push_str(&p);
            if let Some(m) = self.marker.take() {
                self.out.push_str(&m);
            }
            self.at_line_start = false;
            self.space = false;
        }
    }

    /// At least `n` line breaks before the next text (none at the very start).
    fn line_break(&mut self, n: usize) {
        self.space = false;
        if !self.out.is_empty() {
            self.breaks = self.breaks.max(n);
        }
    }

    fn start(&mut self, name: &str, tag: &str) {
        match name {
            "br" => {
                self.breaks += 1;
                self.space = false;
            }
            "p" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "table" => self.line_break(2),
            "div" | "tr" | "dl" | "dt" | "dd" | "hr" => self.line_break(1),
            "pre" => {
                self.line_break(1);
                self.pre += 1;
            }
            "blockquote" => {
                self.line_break(1);
                self.quote += 1;
                self.at_line_start = true;
            }
            "ul" | "ol" => {
                self.line_break(1);
                self.lists.push((name == "ol", 1));
            }
            "li" => {
                self.line_break(1);
                self.at_line_start = true;
                let depth = self.lists.len().saturating_sub(1);
                let marker = match self.lists.last_mut() {
                    Some((true, n)) => {
                        *n += 1;
                        format!("{}. ", *n - 1)
                    }
                    _ => "- ".to_string(),
                };
                self.marker = Some(format!("{}{marker}", "  ".repeat(depth)));
            }
            "a" => {
                let start = self.out.len();
                self.links.push((attribute(tag, "href"), start));
            }
            "td" | "th" => self.space = true,
            _ => {}
        }
    }

    fn end(&mut self, name: &str) {
        match name {
            "p" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "table" => self.line_break(2),
            "div" | "tr" | "dl" | "dt" | "dd" | "li" => self.line_break(1),
            "pre" => {
                self.pre = self.pre.saturating_sub(1);
                self.line_break(1);
            }
            "blockquote" => {
                self.line_break(1);
                self.flush_breaks_only();
                self.quote = self.quote.saturating_sub(1);
            }
            "ul" | "ol" => {
                self.lists.pop();
                self.line_break(1);
            }
            "a" => {
                if let Some((Some(href), start)) = self.links.pop() {
                    let text = self.out.get(start..).unwrap_or("").trim().to_string();
                    let bare = href.strip_prefix("mailto:").unwrap_or(&href);
                    if text.is_empty() {
                        self.text(&href);
                    } else if text != href && text != bare {
                        self.text(&format!(" <{href}>"));
                    }
                }
            }
            _ => {}
        }
    }

    /// Ends a quote's last line inside the quote (the breaks are written by the next text).
    fn flush_breaks_only(&mut self) {
        if self.breaks > 1 {
            self.breaks = 1;
        }
    }
}

/// The plain text of sanitized HTML.
pub fn html_to_text(html: &str) -> String {
    let mut w = Writer {
        out: String::new(),
        quote: 0,
        breaks: 0,
        space: false,
        at_line_start: true,
        marker: None,
        lists: Vec::new(),
        links: Vec::new(),
        pre: 0,
        last_quote: 0,
    };
    let mut rest = html;
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            w.text(&decode_entities(rest));
            break;
        };
        w.text(&decode_entities(&rest[..lt]));
        rest = &rest[lt..];
        // The tag ends at the first `>` outside quotes.
        let mut quote: Option<char> = None;
        let mut end = None;
        for (i, c) in rest.char_indices().skip(1) {
            match (c, quote) {
                ('"' | '\'', None) => quote = Some(c),
                (c, Some(q)) if c == q => quote = None,
                ('>', None) => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let Some(end) = end else {
            break;
        };
        let inner = &rest[1..end];
        rest = &rest[end + 1..];
        if inner.starts_with('!') || inner.starts_with('?') {
            continue;
        }
        let (closing, inner) = match inner.strip_prefix('/') {
            Some(i) => (true, i),
            None => (false, inner),
        };
        let name_end = inner
            .find(|c: char| c.is_ascii_whitespace() || c == '/')
            .unwrap_or(inner.len());
        let name = inner[..name_end].to_ascii_lowercase();
        if closing {
            w.end(&name);
        } else {
            w.start(&name, &inner[name_end..]);
        }
    }
    let mut out: Vec<&str> = w.out.lines().map(str::trim_end).collect();
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    out.join("\n")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// HTML for the rich editor from plain text: lines kept (`<br>`), `>`-quoted lines as nested
/// `<blockquote>`s.
pub fn text_to_html(text: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for line in text.replace("\r\n", "\n").split('\n') {
        let mut level = 0;
        let mut rest = line;
        while let Some(r) = rest.strip_prefix('>') {
            level += 1;
            rest = r.strip_prefix(' ').unwrap_or(r);
        }
        while depth < level {
            out.push_str("<blockquote>");
            depth += 1;
        }
        while depth > level {
            out.push_str("</blockquote>");
            depth -= 1;
        }
        out.push_str("<div>");
        if rest.is_empty() {
            out.push_str("<br>");
        } else {
            out.push_str(&escape(rest));
        }
        out.push_str("</div>");
    }
    while depth > 0 {
        out.push_str("</blockquote>");
        depth -= 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_links_quotes_and_paragraphs() {
        let html = "<p>Hello <b>bold</b> &amp; <i>it</i></p><ul><li>one</li><li>two <a href=\"https://x.example/?a=1&amp;b=2\" rel=\"noopener\">site</a></li></ul>\
                    <ol><li>first</li><li>second</li></ol><blockquote><p>quoted line</p><p>another</p></blockquote><div>after</div>";
        assert_eq!(
            html_to_text(html),
            "Hello bold & it\n\n- one\n- two site <https://x.example/?a=1&b=2>\n1. first\n2. second\n\n> quoted line\n>\n> another\nafter"
        );
    }

    #[test]
    fn editor_lines_and_nested_lists() {
        let html = "<div>line one</div><div>line&nbsp; two<br></div><div><br></div><div>x</div>\
                    <ul><li>a<ul><li>b</li></ul></li></ul><a href=\"mailto:a@b.example\">a@b.example</a>";
        assert_eq!(
            html_to_text(html),
            "line one\nline  two\n\nx\n- a\n  - b\na@b.example"
        );
    }

    #[test]
    fn text_round_trip_keeps_quotes() {
        let text = "Hi\n\nOn Monday, Ann wrote:\n> first\n>> older <b>\n> last";
        let html = text_to_html(text);
        assert!(html.contains(
            "<blockquote><div>first</div><blockquote><div>older &lt;b&gt;</div></blockquote>"
        ));
        assert_eq!(html_to_text(&html), text);
    }

    #[test]
    fn odd_input_does_not_panic() {
        for s in [
            "<",
            "<a",
            "<a href='x>",
            "&",
            "&#xffffffff;",
            "&#;",
            "</>",
            "<p>é&eacute;",
            "<<>>",
        ] {
            let _ = html_to_text(s);
        }
    }
}
