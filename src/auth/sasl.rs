//! SASL mechanisms shared by SMTP, IMAP and POP3: PLAIN (RFC 4616) and LOGIN (the
//! draft-murchison-sasl-login mechanism every client still speaks). Each protocol frames the
//! exchange its own way; this module only decodes what the client sent.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The identity to act as, when the client asked for one different from `username`.
    pub authzid: Option<String>,
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    #[error("invalid base64")]
    Base64,
    #[error("invalid UTF-8")]
    Utf8,
    #[error("malformed PLAIN message")]
    Malformed,
    #[error("authentication cancelled")]
    Cancelled,
}

/// The mechanisms offered, by their SASL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Login,
}

impl Mechanism {
    pub fn parse(name: &str) -> Option<Mechanism> {
        if name.eq_ignore_ascii_case("PLAIN") {
            Some(Mechanism::Plain)
        } else if name.eq_ignore_ascii_case("LOGIN") {
            Some(Mechanism::Login)
        } else {
            None
        }
    }
}

/// Decodes one base64 line of a SASL exchange; `*` is the client cancelling (RFC 4954, 3501).
pub fn decode_response(line: &str) -> Result<Vec<u8>, SaslError> {
    let line = line.trim();
    if line == "*" {
        return Err(SaslError::Cancelled);
    }
    if line == "=" {
        return Ok(Vec::new());
    }
    STANDARD.decode(line).map_err(|_| SaslError::Base64)
}

/// Decodes a PLAIN message: `[authzid] NUL authcid NUL passwd`.
pub fn decode_plain(message: &[u8]) -> Result<Credentials, SaslError> {
    let mut fields = message.split(|b| *b == 0);
    let (Some(authzid), Some(username), Some(password), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(SaslError::Malformed);
    };
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| SaslError::Utf8);
    let authzid = text(authzid)?;
    let username = text(username)?;
    if username.is_empty() {
        return Err(SaslError::Malformed);
    }
    Ok(Credentials {
        authzid: (!authzid.is_empty() && authzid != username).then_some(authzid),
        username,
        password: text(password)?,
    })
}

/// The two server challenges of LOGIN, already base64-encoded ("Username:", "Password:").
pub const LOGIN_USERNAME_CHALLENGE: &str = "VXNlcm5hbWU6";
pub const LOGIN_PASSWORD_CHALLENGE: &str = "UGFzc3dvcmQ6";

/// Decodes one LOGIN step (the username or the password).
pub fn decode_login_step(line: &str) -> Result<String, SaslError> {
    String::from_utf8(decode_response(line)?).map_err(|_| SaslError::Utf8)
}

pub fn encode(data: &[u8]) -> String {
    STANDARD.encode(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain() {
        let c = decode_plain(b"\0alice@x.org\0secret").unwrap();
        assert_eq!(c.username, "alice@x.org");
        assert_eq!(c.password, "secret");
        assert_eq!(c.authzid, None);
        let c = decode_plain(b"alice@x.org\0alice@x.org\0pw").unwrap();
        assert_eq!(c.authzid, None);
        let c = decode_plain(b"boss@x.org\0alice@x.org\0pw").unwrap();
        assert_eq!(c.authzid.as_deref(), Some("boss@x.org"));
        assert_eq!(decode_plain(b"alice\0pw"), Err(SaslError::Malformed));
        assert_eq!(decode_plain(b"\0\0pw"), Err(SaslError::Malformed));
        assert_eq!(decode_plain(b"a\0b\0c\0d"), Err(SaslError::Malformed));
        assert_eq!(decode_plain(b"\0a\0\xff"), Err(SaslError::Utf8));
    }

    #[test]
    fn responses() {
        let line = encode(b"\0u\0p");
        assert_eq!(
            decode_plain(&decode_response(&line).unwrap())
                .unwrap()
                .username,
            "u"
        );
        assert_eq!(decode_response("*"), Err(SaslError::Cancelled));
        assert_eq!(decode_response("!!!"), Err(SaslError::Base64));
        assert_eq!(decode_login_step(&encode(b"alice")).unwrap(), "alice");
        assert_eq!(
            decode_login_step(LOGIN_USERNAME_CHALLENGE).unwrap(),
            "Username:"
        );
        assert_eq!(
            decode_login_step(LOGIN_PASSWORD_CHALLENGE).unwrap(),
            "Password:"
        );
        assert_eq!(Mechanism::parse("plain"), Some(Mechanism::Plain));
        assert_eq!(Mechanism::parse("CRAM-MD5"), None);
    }
}
