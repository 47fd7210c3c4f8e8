//! SASL mechanisms shared by SMTP, IMAP and POP3 (and ManageSieve next): PLAIN (RFC 4616) and
//! LOGIN (the draft-murchison-sasl-login mechanism every client still speaks).
//!
//! [`Exchange`] is the one server-side step machine: it is started with the mechanism and the
//! initial response, if any, and answers each step with a [`Step`]: a challenge to send, the
//! final credentials, or why the exchange failed (`*` cancel, bad base64, a malformed message,
//! a response too long). Each protocol only frames it: how a challenge goes out (SMTP
//! `334 …`, POP3 and IMAP `+ …`), how a response line is read, and what the failures are
//! answered with. Checking the credentials is `Authenticator::login`'s, never this module's.

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
    #[error("response too long")]
    TooLong,
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

pub fn encode(data: &[u8]) -> String {
    STANDARD.encode(data)
}

/// The longest client response an [`Exchange`] takes, as base64 text or decoded: more than any
/// PLAIN message with a password within `auth::password`'s limit needs, and not less than
/// what the framers of SMTP (1000), POP3 (8192) and IMAP (64 KiB lines) let through, so today
/// it only bounds what a protocol framing responses more loosely would hand over.
pub const MAX_RESPONSE: usize = 64 * 1024;

/// A client response, as the protocol received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response<'a> {
    /// A base64 line (SMTP, POP3): `*` cancels, `=` is an empty response (RFC 4954 §4).
    Base64(&'a str),
    /// Already decoded by the protocol's own parser (IMAP, where imap-codec decodes it).
    Decoded(&'a [u8]),
    /// The client cancelled (a protocol whose parser recognised the `*` itself).
    Cancel,
}

/// What the protocol does next in an [`Exchange`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this challenge (already base64, possibly empty), then pass the client's next
    /// response to [`Exchange::respond`].
    Challenge(&'static str),
    /// The exchange is over: these credentials are to be checked.
    Done(Credentials),
    /// The exchange is over without credentials.
    Failed(SaslError),
}

/// One server-side SASL exchange, PLAIN or LOGIN.
#[derive(Debug)]
pub struct Exchange {
    state: State,
}

#[derive(Debug)]
enum State {
    /// PLAIN, the empty challenge sent: the message comes next.
    PlainMessage,
    /// LOGIN, the username challenge sent.
    LoginUsername,
    /// LOGIN, the password challenge sent.
    LoginPassword { username: String },
    /// Done or failed: any further response is a failure.
    Over,
}

impl Exchange {
    /// Starts an exchange; `initial` is the initial response sent with the command, if any.
    /// For LOGIN it is the username (as clients send `AUTH LOGIN dXNlcg==`).
    pub fn start(mechanism: Mechanism, initial: Option<Response<'_>>) -> (Exchange, Step) {
        let mut exchange = Exchange {
            state: match mechanism {
                Mechanism::Plain => State::PlainMessage,
                Mechanism::Login => State::LoginUsername,
            },
        };
        let step = match (initial, mechanism) {
            (Some(response), _) => exchange.respond(response),
            (None, Mechanism::Plain) => Step::Challenge(""),
            (None, Mechanism::Login) => Step::Challenge(LOGIN_USERNAME_CHALLENGE),
        };
        (exchange, step)
    }

    /// Takes the client's response to the last challenge.
    pub fn respond(&mut self, response: Response<'_>) -> Step {
        let step = match decode(response) {
            Err(e) => Step::Failed(e),
            Ok(data) => match std::mem::replace(&mut self.state, State::Over) {
                State::PlainMessage => match decode_plain(&data) {
                    Ok(credentials) => Step::Done(credentials),
                    Err(e) => Step::Failed(e),
                },
                State::LoginUsername => match utf8(data) {
                    Ok(username) => {
                        self.state = State::LoginPassword { username };
                        Step::Challenge(LOGIN_PASSWORD_CHALLENGE)
                    }
                    Err(e) => Step::Failed(e),
                },
                State::LoginPassword { username } => match utf8(data) {
                    Ok(password) => Step::Done(Credentials {
                        authzid: None,
                        username,
                        password,
                    }),
                    Err(e) => Step::Failed(e),
                },
                // A protocol that goes on after the end is wrong; fail rather than guess.
                State::Over => Step::Failed(SaslError::Malformed),
            },
        };
        if !matches!(step, Step::Challenge(_)) {
            self.state = State::Over;
        }
        step
    }
}

fn decode(response: Response<'_>) -> Result<Vec<u8>, SaslError> {
    match response {
        Response::Cancel => Err(SaslError::Cancelled),
        Response::Base64(line) if line.len() > MAX_RESPONSE => Err(SaslError::TooLong),
        Response::Base64(line) => decode_response(line),
        Response::Decoded(data) if data.len() > MAX_RESPONSE => Err(SaslError::TooLong),
        Response::Decoded(data) => Ok(data.to_vec()),
    }
}

fn utf8(data: Vec<u8>) -> Result<String, SaslError> {
    String::from_utf8(data).map_err(|_| SaslError::Utf8)
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
        assert_eq!(decode_response(&encode(b"alice")).unwrap(), b"alice");
        assert_eq!(
            decode_response(LOGIN_USERNAME_CHALLENGE).unwrap(),
            b"Username:"
        );
        assert_eq!(
            decode_response(LOGIN_PASSWORD_CHALLENGE).unwrap(),
            b"Password:"
        );
        assert_eq!(Mechanism::parse("plain"), Some(Mechanism::Plain));
        assert_eq!(Mechanism::parse("CRAM-MD5"), None);
    }

    fn run(mechanism: Mechanism, initial: Option<&str>, lines: &[&str]) -> (Vec<Step>, Step) {
        let (mut exchange, mut step) = Exchange::start(mechanism, initial.map(Response::Base64));
        let mut challenges = Vec::new();
        for line in lines {
            assert!(
                matches!(step, Step::Challenge(_)),
                "{step:?} before {line:?}"
            );
            challenges.push(step);
            step = exchange.respond(Response::Base64(line));
        }
        (challenges, step)
    }

    fn done(username: &str, password: &str) -> Step {
        Step::Done(Credentials {
            authzid: None,
            username: username.into(),
            password: password.into(),
        })
    }

    #[test]
    fn plain_with_and_without_an_initial_response() {
        let message = encode(b"\0alice@x.org\0secret");
        let (challenges, last) = run(Mechanism::Plain, Some(&message), &[]);
        assert!(challenges.is_empty());
        assert_eq!(last, done("alice@x.org", "secret"));
        let (challenges, last) = run(Mechanism::Plain, None, &[&message]);
        assert_eq!(challenges, vec![Step::Challenge("")]);
        assert_eq!(last, done("alice@x.org", "secret"));
        // Decoded by the protocol (IMAP).
        let (_, step) = Exchange::start(Mechanism::Plain, Some(Response::Decoded(b"\0u\0p")));
        assert_eq!(step, done("u", "p"));
        let (mut exchange, _) = Exchange::start(Mechanism::Plain, None);
        assert_eq!(
            exchange.respond(Response::Decoded(b"\0u\0p")),
            done("u", "p")
        );
        // An authorization identity is passed on for the protocol to refuse.
        let (_, step) = run(Mechanism::Plain, Some(&encode(b"boss\0u\0p")), &[]);
        assert!(matches!(
            step,
            Step::Done(Credentials {
                authzid: Some(_),
                ..
            })
        ));
    }

    #[test]
    fn login_asks_for_username_then_password() {
        let (challenges, last) = run(
            Mechanism::Login,
            None,
            &[&encode(b"alice@x.org"), &encode(b"pass word")],
        );
        assert_eq!(
            challenges,
            vec![
                Step::Challenge(LOGIN_USERNAME_CHALLENGE),
                Step::Challenge(LOGIN_PASSWORD_CHALLENGE)
            ]
        );
        assert_eq!(last, done("alice@x.org", "pass word"));
        // The initial response is the username.
        let (challenges, last) = run(
            Mechanism::Login,
            Some(&encode(b"alice@x.org")),
            &[&encode(b"pw")],
        );
        assert_eq!(challenges, vec![Step::Challenge(LOGIN_PASSWORD_CHALLENGE)]);
        assert_eq!(last, done("alice@x.org", "pw"));
    }

    #[test]
    fn cancel_at_any_step() {
        let (_, last) = run(Mechanism::Plain, None, &["*"]);
        assert_eq!(last, Step::Failed(SaslError::Cancelled));
        let (_, last) = run(Mechanism::Login, None, &[&encode(b"u"), " * "]);
        assert_eq!(last, Step::Failed(SaslError::Cancelled));
        let (_, last) = run(Mechanism::Login, Some("*"), &[]);
        assert_eq!(last, Step::Failed(SaslError::Cancelled));
        let (mut exchange, _) = Exchange::start(Mechanism::Plain, None);
        assert_eq!(
            exchange.respond(Response::Cancel),
            Step::Failed(SaslError::Cancelled)
        );
    }

    #[test]
    fn an_empty_initial_response_is_empty() {
        // `=`: PLAIN gets an empty message (malformed), LOGIN an empty username.
        let (_, last) = run(Mechanism::Plain, Some("="), &[]);
        assert_eq!(last, Step::Failed(SaslError::Malformed));
        let (challenges, last) = run(Mechanism::Login, Some("="), &[&encode(b"pw")]);
        assert_eq!(challenges, vec![Step::Challenge(LOGIN_PASSWORD_CHALLENGE)]);
        assert_eq!(last, done("", "pw"));
    }

    #[test]
    fn bad_input_fails_the_exchange() {
        let (_, last) = run(Mechanism::Plain, Some("!!!"), &[]);
        assert_eq!(last, Step::Failed(SaslError::Base64));
        let (_, last) = run(Mechanism::Login, None, &[&encode(b"u"), "not base64"]);
        assert_eq!(last, Step::Failed(SaslError::Base64));
        let (_, last) = run(Mechanism::Login, None, &[&encode(b"\xff")]);
        assert_eq!(last, Step::Failed(SaslError::Utf8));
        let (_, last) = run(Mechanism::Plain, None, &[&encode(b"no nuls")]);
        assert_eq!(last, Step::Failed(SaslError::Malformed));
        // Once over, an exchange takes nothing more.
        let (mut exchange, _) = Exchange::start(Mechanism::Plain, Some(Response::Base64("*")));
        assert_eq!(
            exchange.respond(Response::Base64(&encode(b"\0u\0p"))),
            Step::Failed(SaslError::Malformed)
        );
    }

    #[test]
    fn responses_are_bounded() {
        let long = encode(&vec![b'a'; MAX_RESPONSE]);
        let (_, last) = run(Mechanism::Plain, Some(&long), &[]);
        assert_eq!(last, Step::Failed(SaslError::TooLong));
        let (_, last) = run(Mechanism::Login, None, &[&long]);
        assert_eq!(last, Step::Failed(SaslError::TooLong));
        let big = vec![0u8; MAX_RESPONSE + 1];
        let (_, step) = Exchange::start(Mechanism::Plain, Some(Response::Decoded(&big)));
        assert_eq!(step, Step::Failed(SaslError::TooLong));
        // At the limit, taken.
        let mut fits = b"\0u\0".to_vec();
        fits.resize(MAX_RESPONSE, b'p');
        let (_, step) = Exchange::start(Mechanism::Plain, Some(Response::Decoded(&fits)));
        assert!(matches!(step, Step::Done(_)));
    }
}
