//! SMTP replies: a code, an enhanced status code (RFC 3463, advertised as
//! ENHANCEDSTATUSCODES) and a human sentence. Multi-line replies come from `\n` in the text.

use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// "" when the reply carries no enhanced code (the greeting, 221/354/334).
    pub enhanced: &'static str,
    pub text: Cow<'static, str>,
}

impl Reply {
    pub fn new(code: u16, enhanced: &'static str, text: impl Into<Cow<'static, str>>) -> Reply {
        Reply {
            code,
            enhanced,
            text: text.into(),
        }
    }

    /// True for 4xx and 5xx.
    pub fn is_error(&self) -> bool {
        self.code >= 400
    }

    /// Appends the wire form, CRLF-terminated, to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let lines: Vec<&str> = self.text.split('\n').collect();
        let last = lines.len().saturating_sub(1);
        for (i, line) in lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            out.extend_from_slice(self.code.to_string().as_bytes());
            out.push(sep as u8);
            if !self.enhanced.is_empty() {
                out.extend_from_slice(self.enhanced.as_bytes());
                out.push(b' ');
            }
            // Replies never carry a peer's control characters into the stream.
            out.extend(
                line.bytes()
                    .map(|b| if b.is_ascii_control() { b'?' } else { b }),
            );
            out.extend_from_slice(b"\r\n");
        }
    }
}

// The replies used in more than one place.
pub fn ok() -> Reply {
    Reply::new(250, "2.0.0", "OK")
}
pub fn bad_sequence(what: &'static str) -> Reply {
    Reply::new(503, "5.5.1", what)
}
pub fn syntax(what: impl Into<Cow<'static, str>>) -> Reply {
    Reply::new(501, "5.5.4", what)
}
pub fn unavailable() -> Reply {
    Reply::new(
        451,
        "4.3.0",
        "Temporary server error; please try again later",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form() {
        let mut out = Vec::new();
        Reply::new(250, "2.1.0", "Sender OK").write_to(&mut out);
        Reply::new(250, "", "mail.example.org\nPIPELINING\nSIZE 100").write_to(&mut out);
        Reply::new(550, "5.1.1", "bad\r\u{7}").write_to(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "250 2.1.0 Sender OK\r\n250-mail.example.org\r\n250-PIPELINING\r\n250 SIZE 100\r\n550 5.1.1 bad??\r\n"
        );
    }
}
