//! AUTHENTICATE (RFC 5804 §2.1) with SASL PLAIN and LOGIN, and UNAUTHENTICATE (§2.14).
//!
//! ManageSieve frames SASL as strings: the initial response is the command's second
//! argument, each challenge a string on its own line, each client response a string (quoted or
//! a literal) on its own line, `"*"` cancelling. The exchange itself is the shared
//! [`Exchange`]; the check is [`Authenticator::login`] with protocol `managesieve`, whose
//! throttle and sign-in history every protocol shares.
//!
//! [`Authenticator::login`]: crate::auth::Authenticator::login

use super::parser::{self, Frame, Token};
use super::session::{Fail, Flow, Input, LoggedIn, Outcome, Refusal, Session};
use crate::auth::AuthError;
use crate::auth::live::Revoked;
use crate::auth::sasl::{Exchange, Mechanism, Response, SaslError, Step};

fn sasl_refused(e: SaslError) -> Fail {
    match e {
        SaslError::Cancelled => Refusal::answer("authentication cancelled").into(),
        other => Refusal::strike(format!("authentication failed: {other}")).into(),
    }
}

impl Session {
    pub(super) async fn authenticate(
        &mut self,
        mechanism: &str,
        initial: Option<String>,
    ) -> Outcome {
        if !self.plaintext_ok() {
            return Err(Refusal::strike(
                "plaintext authentication is disabled; use STARTTLS first",
            )
            .code("ENCRYPT-NEEDED")
            .into());
        }
        let Some(mechanism) = Mechanism::parse(mechanism) else {
            return Err(Refusal::strike("unsupported SASL mechanism (PLAIN and LOGIN are)").into());
        };
        let initial = initial.as_deref().map(Response::Base64);
        let (mut exchange, mut step) = Exchange::start(mechanism, initial);
        let credentials = loop {
            match step {
                Step::Challenge(challenge) => {
                    parser::write_string(self.out(), challenge.as_bytes());
                    self.out().extend_from_slice(b"\r\n");
                    let Some(response) = self.sasl_response().await? else {
                        return Ok(Flow::Close);
                    };
                    step = exchange.respond(Response::Base64(&response));
                }
                Step::Done(credentials) => break credentials,
                Step::Failed(e) => return Err(sasl_refused(e)),
            }
        };
        if credentials.authzid.is_some() {
            return Err(Refusal::strike("logging in as another user is not supported").into());
        }
        self.login(&credentials.username, &credentials.password)
            .await
    }

    /// The client's next SASL response: one string alone on its line. `None`: the
    /// connection ended.
    async fn sasl_response(&mut self) -> Result<Option<String>, Fail> {
        loop {
            match self.input.next(super::MAX_LITERAL_BEFORE_LOGIN) {
                Frame::Line(tokens) => {
                    let mut tokens = tokens.into_iter();
                    return match (tokens.next(), tokens.next()) {
                        (Some(Token::Str(s)), None) => String::from_utf8(s)
                            .map(Some)
                            .map_err(|_| sasl_refused(SaslError::Base64)),
                        _ => Err(
                            Refusal::strike("a SASL response is one string (\"*\" cancels)").into(),
                        ),
                    };
                }
                Frame::Incomplete => match self.read_more().await? {
                    Input::Data => {}
                    Input::End => return Ok(None),
                },
                Frame::Fatal(why) => return Err(Refusal::strike(why).into()),
                Frame::Bad(why) => return Err(Refusal::strike(why).into()),
                Frame::TooLong | Frame::LiteralTooLarge { .. } => {
                    return Err(sasl_refused(SaslError::TooLong));
                }
            }
        }
    }

    async fn login(&mut self, username: &str, password: &str) -> Outcome {
        let ip = self.conn.peer.ip();
        let auth = self.shared.auth.clone();
        match auth.login("managesieve", ip, username, password).await {
            Ok(login) => {
                let account = login.account;
                tracing::Span::current().record("account", account.address.as_str());
                tracing::info!(account = account.address, "managesieve login");
                self.conn.authenticated();
                self.revoked = login.revoked;
                self.account = Some(LoggedIn {
                    id: account.id,
                    address: account.address,
                });
                self.ok(None, "Logged in");
                Ok(Flow::Continue)
            }
            Err(AuthError::Failed) => Err(Refusal::strike("invalid credentials").into()),
            Err(AuthError::AppPasswordRequired) => Err(Refusal::strike(
                "two-factor sign-in is on for this account: sign in with an app password \
                 (webmail: Settings, App passwords)",
            )
            .into()),
            Err(AuthError::Locked(secs)) => Err(Refusal::strike(format!(
                "too many failed logins; try again in {secs} seconds"
            ))
            .code("TRYLATER")
            .into()),
            Err(AuthError::Internal(e)) => {
                Err(Refusal::ours("authentication is unavailable, try again later", e).into())
            }
        }
    }

    /// RFC 5804 §2.14: back to the state before AUTHENTICATE. (`net`'s login deadline, lifted
    /// at the login, stays lifted: the session is bounded by the commands it may send.)
    pub(super) fn unauthenticate(&mut self) -> Outcome {
        if let Some(account) = self.account.take() {
            tracing::info!(account = account.address, "managesieve unauthenticated");
        }
        self.revoked = Revoked::never();
        self.ok(None, "");
        Ok(Flow::Continue)
    }
}
