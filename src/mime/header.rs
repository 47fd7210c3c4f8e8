//! Header blocks: where a header ends, its fields as raw byte ranges, unfolding, and the
//! MIME header values (`Content-Type`, `Content-Disposition`, `Content-Transfer-Encoding`,
//! `Content-Language`) parsed without decoding, as IMAP wants them.
//!
//! Splitting rules (the same as Python's `email` package, which wrote the fixtures):
//! - the header ends at the first empty line (`\n` or `\r\n`); the body starts after it;
//! - a line that is neither a field (`name:`) nor a continuation (leading space or tab)
//!   ends the header too, and the body starts at that line (there is no blank line then);
//! - in a message header, a first line starting with `From ` (an mbox separator) is
//!   skipped, not a field;
//! - a header that runs to the end of its range has an empty body at the end.

/// One header field: name and raw value (after the colon, folding kept, final line end not
/// included).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field<'a> {
    pub name: &'a [u8],
    pub value: &'a [u8],
}

/// A parsed header block.
#[derive(Debug, Default)]
pub(crate) struct Header<'a> {
    pub fields: Vec<Field<'a>>,
    /// Absolute offset where the body starts (after the blank line, if any).
    pub body_start: usize,
}

impl<'a> Header<'a> {
    /// The first field with this name (ASCII case-insensitive).
    pub fn get(&self, name: &str) -> Option<&'a [u8]> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
            .map(|f| f.value)
    }

    /// The first field with this name, unfolded and trimmed, as text.
    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name).map(|v| bytes_to_string(&unfold(v)))
    }
}

/// Splits the header of the entity that starts at `start` and ends at `end` in `raw`;
/// `unix_from`: skip a first line starting with `From ` (messages, not MIME parts).
pub(crate) fn parse_header(raw: &[u8], start: usize, end: usize, unix_from: bool) -> Header<'_> {
    let end = end.min(raw.len());
    let mut header = Header {
        fields: Vec::new(),
        body_start: end,
    };
    let mut pos = start.min(end);
    // (name, value start) of the field being read and where its value ends so far.
    let mut current: Option<(&[u8], usize, usize)> = None;
    let mut first = unix_from;

    while pos < end {
        let rest = raw.get(pos..end).unwrap_or_default();
        let (content_len, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(nl) => (nl, pos + nl + 1),
            None => (rest.len(), end),
        };
        let mut line = rest.get(..content_len).unwrap_or_default();
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }

        if line.is_empty() {
            header.body_start = next;
            break;
        }
        if first && line.starts_with(b"From ") {
            first = false;
            pos = next;
            continue;
        }
        first = false;

        if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            match current.as_mut() {
                Some((_, _, value_end)) => *value_end = pos + line.len(),
                None => {
                    header.body_start = pos;
                    break;
                }
            }
        } else if let Some((name, colon)) = field_name(line) {
            if let Some((name, vs, ve)) = current.take() {
                header.fields.push(field(raw, name, vs, ve));
            }
            current = Some((name, pos + colon + 1, pos + line.len()));
        } else {
            header.body_start = pos;
            break;
        }
        pos = next;
    }
    if let Some((name, vs, ve)) = current {
        header.fields.push(field(raw, name, vs, ve));
    }
    header
}

/// Whether a line that looks like a field (`name:`) comes after the header of `raw` (as
/// [`parse_header`] split it, ending at `body_start`) but before the first empty line: the
/// header then ended at a line that is neither a field nor a continuation, and a more lenient
/// reader (mail-parser is one) takes what follows as more fields of the header.
pub(crate) fn stray_field(raw: &[u8], body_start: usize) -> bool {
    let Some(before) = raw.get(..body_start) else {
        return false;
    };
    // Ended by an empty line (or by the end of the message): nothing can follow.
    let last_line = before
        .strip_suffix(b"\n")
        .map(|b| b.strip_suffix(b"\r").unwrap_or(b));
    if body_start >= raw.len() || last_line.is_some_and(|b| b.is_empty() || b.ends_with(b"\n")) {
        return false;
    }
    raw.get(body_start..)
        .unwrap_or_default()
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .take_while(|line| !line.is_empty())
        .any(|line| field_name(line).is_some())
}

fn field<'a>(raw: &'a [u8], name: &'a [u8], start: usize, end: usize) -> Field<'a> {
    Field {
        name,
        value: raw.get(start..end.max(start)).unwrap_or_default(),
    }
}

/// `name *WSP ":"` at the start of a line: the name and the index of the colon.
fn field_name(line: &[u8]) -> Option<(&[u8], usize)> {
    let name_len = line
        .iter()
        .position(|&b| !(33..=126).contains(&b) || b == b':')?;
    if name_len == 0 {
        return None;
    }
    let colon = name_len
        + line
            .get(name_len..)?
            .iter()
            .position(|&b| b != b' ' && b != b'\t')?;
    (line.get(colon) == Some(&b':')).then(|| (line.get(..name_len).unwrap_or_default(), colon))
}

/// Unfolds a raw value: line breaks removed (RFC 5322 §2.2.3), surrounding white space
/// trimmed.
pub(crate) fn unfold(value: &[u8]) -> Vec<u8> {
    let out: Vec<u8> = value
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect();
    let start = out.iter().position(|b| !is_wsp(*b)).unwrap_or(out.len());
    let end = out
        .iter()
        .rposition(|b| !is_wsp(*b))
        .map_or(start, |e| e + 1);
    out.get(start..end).unwrap_or_default().to_vec()
}

fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Bytes as text: UTF-8 when valid, else Windows-1252 (the usual undeclared 8-bit charset).
pub(crate) fn bytes_to_string(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => match mail_parser::decoders::charsets::map::charset_decoder(b"windows-1252") {
            Some(decode) => decode(bytes),
            None => String::from_utf8_lossy(bytes).into_owned(),
        },
    }
}

/// MIME parameters, in order.
pub(crate) type Params = Vec<(String, String)>;

/// A cursor over an unfolded structured MIME value.
struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    /// Skips white space and (nested) comments.
    fn skip_cfws(&mut self) {
        let mut depth = 0usize;
        while let Some(b) = self.peek() {
            match b {
                b'(' => depth += 1,
                b')' if depth > 0 => depth -= 1,
                b'\\' if depth > 0 => self.pos += 1,
                b' ' | b'\t' | b'\r' | b'\n' => {}
                _ if depth > 0 => {}
                _ => return,
            }
            self.pos += 1;
        }
    }

    /// An RFC 2045 token.
    fn token(&mut self) -> &'a [u8] {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b <= b' ' || b == 127 || b"()<>@,;:\\\"/[]?=".contains(&b) {
                break;
            }
            self.pos += 1;
        }
        self.s.get(start..self.pos).unwrap_or_default()
    }

    /// A parameter value: a quoted string (unquoted) or everything up to the next `;`.
    fn value(&mut self) -> Vec<u8> {
        if self.peek() == Some(b'"') {
            self.pos += 1;
            let mut out = Vec::new();
            while let Some(b) = self.peek() {
                self.pos += 1;
                match b {
                    b'"' => break,
                    b'\\' => {
                        if let Some(next) = self.peek() {
                            out.push(next);
                            self.pos += 1;
                        }
                    }
                    _ => out.push(b),
                }
            }
            out
        } else {
            let start = self.pos;
            while self.peek().is_some_and(|b| b != b';') {
                self.pos += 1;
            }
            let v = self.s.get(start..self.pos).unwrap_or_default();
            let end = v.iter().rposition(|b| !is_wsp(*b)).map_or(0, |e| e + 1);
            v.get(..end).unwrap_or_default().to_vec()
        }
    }

    /// `*(";" attribute "=" value)`, leniently: junk up to the next `;` is skipped.
    fn params(&mut self) -> Vec<(String, String)> {
        let mut params = Vec::new();
        loop {
            self.skip_cfws();
            match self.peek() {
                None => break,
                Some(b';') => self.pos += 1,
                Some(_) => {
                    // Junk where a ';' should be: skip to the next one.
                    while self.peek().is_some_and(|b| b != b';') {
                        self.pos += 1;
                    }
                    continue;
                }
            }
            self.skip_cfws();
            let name = self.token();
            self.skip_cfws();
            if name.is_empty() || self.peek() != Some(b'=') {
                continue;
            }
            self.pos += 1;
            self.skip_cfws();
            let value = self.value();
            params.push((bytes_to_string(name), bytes_to_string(&value)));
        }
        merge_continuations(params)
    }
}

/// `Content-Type`: (type, subtype, parameters), type and subtype lower case; `None` when the
/// value is not `type/subtype` (RFC 2045 then says: use the default).
pub(crate) fn content_type(value: &[u8]) -> Option<(String, String, Params)> {
    let value = unfold(value);
    let mut c = Cursor { s: &value, pos: 0 };
    c.skip_cfws();
    let ty = c.token();
    c.skip_cfws();
    if ty.is_empty() || c.peek() != Some(b'/') {
        return None;
    }
    c.pos += 1;
    c.skip_cfws();
    let sub = c.token();
    if sub.is_empty() {
        return None;
    }
    let (ty, sub) = (lower(ty), lower(sub));
    Some((ty, sub, c.params()))
}

/// `Content-Disposition`: (type lower case, parameters); `None` when there is no type.
pub(crate) fn disposition(value: &[u8]) -> Option<(String, Vec<(String, String)>)> {
    let value = unfold(value);
    let mut c = Cursor { s: &value, pos: 0 };
    c.skip_cfws();
    let ty = c.token();
    if ty.is_empty() {
        return None;
    }
    let ty = lower(ty);
    Some((ty, c.params()))
}

/// `Content-Transfer-Encoding` as IMAP shows it: the token, upper case.
pub(crate) fn transfer_encoding(value: Option<&[u8]>) -> String {
    let Some(value) = value else {
        return "7BIT".to_string();
    };
    let value = unfold(value);
    let mut c = Cursor { s: &value, pos: 0 };
    c.skip_cfws();
    let token = c.token();
    if token.is_empty() {
        "7BIT".to_string()
    } else {
        bytes_to_string(token).to_ascii_uppercase()
    }
}

/// `Content-Language`: the comma separated tags, comments removed.
pub(crate) fn languages(value: &[u8]) -> Vec<String> {
    let value = unfold(value);
    let mut out = Vec::new();
    for item in value.split(|&b| b == b',') {
        let mut c = Cursor { s: item, pos: 0 };
        c.skip_cfws();
        let tag = c.token();
        if !tag.is_empty() {
            out.push(bytes_to_string(tag));
        }
    }
    out
}

fn lower(b: &[u8]) -> String {
    bytes_to_string(b).to_ascii_lowercase()
}

/// The value of parameter `name` (ASCII case-insensitive), RFC 2231 extended values
/// (`name*=charset'lang'%XX`) decoded.
pub(crate) fn param(params: &[(String, String)], name: &str) -> Option<String> {
    if let Some((_, v)) = params.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
        return Some(v.clone());
    }
    let (_, v) = params.iter().find(|(n, _)| {
        n.strip_suffix('*')
            .is_some_and(|base| base.eq_ignore_ascii_case(name))
    })?;
    let mut fields = v.splitn(3, '\'');
    let (charset, encoded) = match (fields.next(), fields.next(), fields.next()) {
        (Some(charset), Some(_lang), Some(rest)) => (charset, rest),
        _ => ("", v.as_str()),
    };
    Some(decode_charset(&percent_decode(encoded), charset))
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let hex = |j: usize| b.get(j).and_then(|c| (*c as char).to_digit(16));
        match (c, hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Bytes in a declared charset as text; unknown, ASCII and UTF-8 charsets go through
/// [`bytes_to_string`].
pub(crate) fn decode_charset(bytes: &[u8], charset: &str) -> String {
    let charset = charset.trim().to_ascii_lowercase();
    match charset.as_str() {
        "" | "us-ascii" | "ascii" | "utf-8" | "utf8" => bytes_to_string(bytes),
        other => match mail_parser::decoders::charsets::map::charset_decoder(other.as_bytes()) {
            Some(decode) => decode(bytes),
            None => bytes_to_string(bytes),
        },
    }
}

/// `name*N` or `name*N*`: (name, N, extended).
fn section(name: &str) -> Option<(&str, u32, bool)> {
    let (name, extended) = match name.strip_suffix('*') {
        Some(n) => (n, true),
        None => (name, false),
    };
    let (base, n) = name.rsplit_once('*')?;
    if base.is_empty() || n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((base, n.parse().ok()?, extended))
}

/// RFC 2231 sections of one parameter: (number, extended, value).
type Sections = Vec<(u32, bool, String)>;

/// Merges RFC 2231 continuations (`name*0`, `name*1*`, ...) into one parameter where the
/// first one was: `name`, or `name*` with an extended value if any section was extended
/// (plain sections are then percent-encoded), as Dovecot shows them.
fn merge_continuations(params: Params) -> Params {
    let mut out: Params = Vec::with_capacity(params.len());
    // (base name, index in `out`, sections)
    let mut groups: Vec<(String, usize, Sections)> = Vec::new();
    for (name, value) in params {
        let Some((base, n, extended)) = section(&name) else {
            out.push((name, value));
            continue;
        };
        match groups.iter_mut().find(|g| g.0.eq_ignore_ascii_case(base)) {
            Some(g) => g.2.push((n, extended, value)),
            None => {
                groups.push((base.to_string(), out.len(), vec![(n, extended, value)]));
                out.push((String::new(), String::new()));
            }
        }
    }
    for (base, at, mut sections) in groups {
        sections.sort_by_key(|s| s.0);
        sections.dedup_by_key(|s| s.0);
        let any_extended = sections.iter().any(|s| s.1);
        let mut value = String::new();
        for (i, (_, extended, v)) in sections.iter().enumerate() {
            if !any_extended || *extended {
                value.push_str(v);
            } else {
                if i == 0 {
                    value.push_str("''");
                }
                for b in v.bytes() {
                    if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                        value.push(b as char);
                    } else {
                        value.push_str(&format!("%{b:02X}"));
                    }
                }
            }
        }
        let name = if any_extended {
            format!("{base}*")
        } else {
            base
        };
        if let Some(slot) = out.get_mut(at) {
            *slot = (name, value);
        }
    }
    out
}
