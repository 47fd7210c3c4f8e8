//! SMTP AUTH (RFC 4954) on the submission ports: PLAIN and LOGIN, only over TLS (unless the
//! config allows plaintext), checked through the one login path (`Authenticator::login`). The
//! exchange is `sasl::Exchange`'s; this file frames it (`334` challenges) and answers it.

use super::Kind;
use super::reply::{self, Reply};
use super::session::{Next, Session};
use crate::auth::AuthError;
use crate::auth::sasl::{Exchange, Mechanism, Response, SaslError, Step};
use crate::net::Transport;

impl<'a, T: Transport> Session<'a, T> {
    pub(super) async fn auth(&mut self, mechanism: u64, initial: String) -> std::io::Result<()> {
        if self.kind != Kind::Submission {
            self.error(Reply::new(
                503,
                "5.5.1",
                "AUTH is only available on the submission ports",
            ));
            return Ok(());
        }
        if !self.auth_allowed() {
            self.error(Reply::new(
                530,
                "5.7.0",
                "Must issue a STARTTLS command first",
            ));
            return Ok(());
        }
        if self.account.is_some() {
            self.error(reply::bad_sequence("Already authenticated"));
            return Ok(());
        }
        if self.envelope.is_some() {
            self.error(reply::bad_sequence(
                "AUTH is not allowed during a mail transaction",
            ));
            return Ok(());
        }
        let mechanism = match mechanism {
            smtp_proto::AUTH_PLAIN => Mechanism::Plain,
            smtp_proto::AUTH_LOGIN => Mechanism::Login,
            _ => {
                self.error(Reply::new(
                    504,
                    "5.5.4",
                    "Unrecognized authentication mechanism",
                ));
                return Ok(());
            }
        };
        // smtp-proto gives "" for no initial response (`=` is an empty one).
        let initial = Some(initial.as_str())
            .filter(|i| !i.is_empty())
            .map(Response::Base64);
        let (mut exchange, mut step) = Exchange::start(mechanism, initial);
        let credentials = loop {
            match step {
                Step::Challenge(challenge) => {
                    self.reply(Reply::new(334, "", challenge));
                    let Some(line) = self.challenge_response().await? else {
                        return Ok(());
                    };
                    step = exchange.respond(Response::Base64(&line));
                }
                Step::Done(credentials) => break credentials,
                Step::Failed(SaslError::Cancelled) => {
                    self.error(Reply::new(501, "5.0.0", "Authentication cancelled"));
                    return Ok(());
                }
                Step::Failed(e) => {
                    self.error(Reply::new(
                        501,
                        "5.5.2",
                        format!("Cannot decode response: {e}"),
                    ));
                    return Ok(());
                }
            }
        };
        if credentials.authzid.is_some() {
            self.error(Reply::new(
                535,
                "5.7.8",
                "Authorization identity not permitted",
            ));
            return Ok(());
        }
        match self
            .smtp
            .auth
            .login(
                "smtp",
                self.peer.ip(),
                &credentials.username,
                &credentials.password,
            )
            .await
        {
            Ok(login) => {
                let account = login.account;
                tracing::Span::current().record("account", account.address.as_str());
                self.io.authenticated();
                self.account = Some(account);
                self.revoked = login.revoked;
                self.reply(Reply::new(235, "2.7.0", "Authentication successful"));
            }
            Err(AuthError::Failed) => {
                self.error(Reply::new(
                    535,
                    "5.7.8",
                    "Authentication credentials invalid",
                ));
            }
            Err(AuthError::AppPasswordRequired) => {
                self.error(Reply::new(
                    535,
                    "5.7.8",
                    "Two-factor sign-in is on for this account: authenticate with an app \
                     password (webmail: Settings, App passwords)",
                ));
            }
            Err(AuthError::Locked(secs)) => self.error(Reply::new(
                454,
                "4.7.0",
                format!("Too many failed logins; try again in {secs} seconds"),
            )),
            Err(AuthError::Internal(e)) => {
                tracing::error!("authentication failed internally: {e}");
                self.reply(Reply::new(454, "4.7.0", "Temporary authentication failure"));
            }
        }
        Ok(())
    }

    /// One line of a SASL exchange; `None` (with the reply already queued) when the line was
    /// unusable.
    pub(super) async fn challenge_response(&mut self) -> std::io::Result<Option<String>> {
        match self.next_line().await? {
            Next::Line(line) => match String::from_utf8(line) {
                Ok(s) => Ok(Some(s)),
                Err(_) => {
                    self.error(Reply::new(501, "5.5.2", "Invalid response"));
                    Ok(None)
                }
            },
            Next::TooLong => {
                self.error(Reply::new(500, "5.5.2", "Line too long"));
                Ok(None)
            }
            Next::Eof => Err(std::io::ErrorKind::UnexpectedEof.into()),
        }
    }
}
