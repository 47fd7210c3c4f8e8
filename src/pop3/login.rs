//! The AUTHORIZATION state: USER/PASS (RFC 1939 §7), AUTH PLAIN and LOGIN with or without an
//! initial response (RFC 5034), and opening the maildrop once the login succeeds.
//!
//! - Passwords are refused on a plain connection unless `[auth] allow_plaintext` is set, with
//!   `-ERR [AUTH]` and a hint to use STLS, before the client has sent the password (USER is
//!   refused already), so a password is never sent in clear by a client that reads replies.
//! - Every check goes through [`Authenticator::login`], which applies the shared throttle and
//!   logs failures for fail2ban. Failures are `[AUTH]` (RFC 3206: "don't retry with the same
//!   credentials"); a throttle lock is `[SYS/TEMP]`, because the credentials may be right and
//!   the client should simply try later.
//! - USER does not reveal whether the account exists; the answer to PASS is the same for an
//!   unknown user and a wrong password.
//! - After a successful login the maildrop is locked (a second session gets `[IN-USE]` and
//!   stays in AUTHORIZATION, as RFC 1939 allows) and snapshotted.
//!
//! [`Authenticator::login`]: crate::auth::Authenticator::login

use super::maildrop::Maildrop;
use super::session::{Fail, Flow, Outcome, Refusal, Session, State};
use crate::auth::AuthError;
use crate::auth::sasl::{Exchange, Mechanism, Response, SaslError, Step};
use crate::store::Account;

fn plaintext_refused() -> Fail {
    Refusal::strike("plaintext authentication is disabled; use STLS (or port 995) first")
        .code("AUTH")
        .into()
}

fn sasl_refused(e: SaslError) -> Fail {
    match e {
        SaslError::Cancelled => Refusal::answer("authentication cancelled").into(),
        other => Refusal::strike(format!("authentication failed: {other}"))
            .code("AUTH")
            .into(),
    }
}

impl Session {
    pub(super) fn user(&mut self, name: String) -> Outcome {
        if !self.plaintext_ok() {
            return Err(plaintext_refused());
        }
        self.state = State::Authorization { user: Some(name) };
        self.ok("send PASS");
        Ok(Flow::Continue)
    }

    pub(super) async fn pass(&mut self, password: String) -> Outcome {
        if !self.plaintext_ok() {
            return Err(plaintext_refused());
        }
        let user = match &mut self.state {
            State::Authorization { user } => user.take(),
            State::Transaction { .. } => None,
        };
        let Some(user) = user else {
            return Err(Refusal::strike("send USER first").into());
        };
        self.login(&user, &password).await
    }

    pub(super) async fn auth(
        &mut self,
        mechanism: Option<String>,
        initial: Option<String>,
    ) -> Outcome {
        if !self.plaintext_ok() {
            return Err(plaintext_refused());
        }
        self.state = State::Authorization { user: None };
        let Some(mechanism) = mechanism else {
            self.ok("SASL mechanisms follow");
            self.line("PLAIN");
            self.line("LOGIN");
            self.line(".");
            return Ok(Flow::Continue);
        };
        let Some(mechanism) = Mechanism::parse(&mechanism) else {
            return Err(Refusal::strike("unsupported SASL mechanism (PLAIN and LOGIN are)").into());
        };
        let initial = initial.as_deref().map(Response::Base64);
        let (mut exchange, mut step) = Exchange::start(mechanism, initial);
        let credentials = loop {
            match step {
                Step::Challenge(challenge) => {
                    self.line(&format!("+ {challenge}"));
                    let Some(response) = self.response().await? else {
                        return Ok(Flow::Close);
                    };
                    step = exchange.respond(Response::Base64(&response));
                }
                Step::Done(credentials) => break credentials,
                Step::Failed(e) => return Err(sasl_refused(e)),
            }
        };
        if credentials.authzid.is_some() {
            return Err(
                Refusal::strike("logging in as another user is not supported")
                    .code("AUTH")
                    .into(),
            );
        }
        let (username, password) = (credentials.username, credentials.password);
        self.login(&username, &password).await
    }

    /// One client line of a SASL exchange, as text (base64 is ASCII). `None`: connection gone.
    async fn response(&mut self) -> Result<Option<String>, Fail> {
        match self.continuation().await? {
            Some(line) => String::from_utf8(line)
                .map(Some)
                .map_err(|_| sasl_refused(SaslError::Base64)),
            None => Ok(None),
        }
    }

    async fn login(&mut self, username: &str, password: &str) -> Outcome {
        let ip = self.conn.peer.ip();
        match self.shared.auth.login("pop3", ip, username, password).await {
            Ok(login) => {
                let flow = self.open_maildrop(login.account).await?;
                self.revoked = login.revoked;
                Ok(flow)
            }
            Err(AuthError::Failed) => {
                Err(Refusal::strike("invalid credentials").code("AUTH").into())
            }
            Err(AuthError::AppPasswordRequired) => Err(Refusal::strike(
                "two-factor sign-in is on for this account: sign in with an app password \
                 (webmail: Settings, App passwords)",
            )
            .code("AUTH")
            .into()),
            Err(AuthError::Locked(secs)) => Err(Refusal::strike(format!(
                "too many failed logins; try again in {secs} seconds"
            ))
            .code("SYS/TEMP")
            .into()),
            Err(AuthError::Internal(e)) => {
                Err(Refusal::ours("authentication is unavailable, try again later", e).into())
            }
        }
    }

    /// Locks and snapshots the account's INBOX, entering the TRANSACTION state.
    async fn open_maildrop(&mut self, account: Account) -> Outcome {
        let Some(lock) = self.shared.locks.try_lock(account.id) else {
            tracing::info!(account = account.address, "pop3 maildrop in use");
            return Err(
                Refusal::answer("maildrop already locked by another POP3 session")
                    .code("IN-USE")
                    .into(),
            );
        };
        let store = &self.shared.store;
        let cannot_open = "the maildrop cannot be opened, try again later";
        let mailbox = match store.mailbox(account.id, "INBOX").await {
            Ok(Some(mailbox)) => mailbox,
            Ok(None) => {
                let cause = format!("{} has no INBOX", account.address);
                return Err(Refusal::ours(cannot_open, cause).into());
            }
            Err(e) => return Err(Refusal::ours(cannot_open, e).into()),
        };
        let messages = store
            .messages(&mailbox)
            .await
            .map_err(|e| Refusal::ours(cannot_open, e))?;
        tracing::Span::current().record("account", account.address.as_str());
        self.account = Some(account.address.clone());
        self.conn.authenticated();
        let maildrop = Maildrop::new(&mailbox, messages, lock, self.shared.sizes.clone());
        let n = maildrop.len();
        let plural = if n == 1 { "" } else { "s" };
        self.ok(&format!("{} has {n} message{plural}", account.address));
        self.state = State::Transaction { maildrop };
        Ok(Flow::Continue)
    }
}
