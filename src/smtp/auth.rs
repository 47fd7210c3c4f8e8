//! SMTP AUTH (RFC 4954) on the submission ports: PLAIN and LOGIN, only over TLS (unless the
//! config allows plaintext), checked through the one login path (`Authenticator::login`).

use super::Kind;
use super::reply::{self, Reply};
use super::session::{Next, Session};
use crate::auth::{AuthError, sasl};
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
        let credentials = match mechanism {
            smtp_proto::AUTH_PLAIN => {
                let data = if initial.is_empty() {
                    self.reply(Reply::new(334, "", ""));
                    match self.challenge_response().await? {
                        Some(line) => line,
                        None => return Ok(()),
                    }
                } else {
                    initial
                };
                sasl::decode_response(&data).and_then(|d| sasl::decode_plain(&d))
            }
            smtp_proto::AUTH_LOGIN => {
                let user = if initial.is_empty() {
                    self.reply(Reply::new(334, "", sasl::LOGIN_USERNAME_CHALLENGE));
                    match self.challenge_response().await? {
                        Some(line) => line,
                        None => return Ok(()),
                    }
                } else {
                    initial
                };
                match sasl::decode_login_step(&user) {
                    Ok(username) => {
                        self.reply(Reply::new(334, "", sasl::LOGIN_PASSWORD_CHALLENGE));
                        match self.challenge_response().await? {
                            Some(line) => {
                                sasl::decode_login_step(&line).map(|password| sasl::Credentials {
                                    authzid: None,
                                    username,
                                    password,
                                })
                            }
                            None => return Ok(()),
                        }
                    }
                    Err(e) => Err(e),
                }
            }
            _ => {
                self.error(Reply::new(
                    504,
                    "5.5.4",
                    "Unrecognized authentication mechanism",
                ));
                return Ok(());
            }
        };
        let credentials = match credentials {
            Ok(c) => c,
            Err(sasl::SaslError::Cancelled) => {
                self.error(Reply::new(501, "5.0.0", "Authentication cancelled"));
                return Ok(());
            }
            Err(e) => {
                self.error(Reply::new(
                    501,
                    "5.5.2",
                    format!("Cannot decode response: {e}"),
                ));
                return Ok(());
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
            Ok(account) => {
                tracing::Span::current().record("account", account.address.as_str());
                self.io.authenticated();
                self.account = Some(account);
                self.reply(Reply::new(235, "2.7.0", "Authentication successful"));
            }
            Err(AuthError::Failed) => {
                self.error(Reply::new(
                    535,
                    "5.7.8",
                    "Authentication credentials invalid",
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
