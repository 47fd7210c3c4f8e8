//! One SMTP session: the RFC 5321 state machine, generic over [`Transport`] so it runs on a
//! server connection or an in-memory stream.
//!
//! States: greeting sent → EHLO/HELO → (AUTH, on submission) → MAIL → RCPT… → DATA/BDAT → back
//! to "EHLO done". Replies are buffered and flushed only when the client's input is used up, so
//! a pipelined batch (RFC 2920) gets its replies in order and in one write, and a client that
//! waits for each reply gets it at once.
//!
//! The commands with a concern of their own are in sibling files, as further `impl Session`
//! blocks: AUTH in `auth.rs`, the inbound (MX) recipient policy and delivery in `inbound.rs`,
//! DATA/BDAT and the end of a transaction in `data.rs`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use smtp_proto::{Error as ProtoError, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::parser::{LINE_LIMIT, MessageBuffer};
use super::reply::{self, Reply};
use super::{Kind, Smtp};
use crate::address::Address;
use crate::auth::live::Revoked;
use crate::mime::unique_id;
use crate::net::Transport;
use crate::store::{Account, StoreError};
use crate::submission::{Recipient, SubmitError};
use crate::wire::line::{Frame, LineBuffer};

/// §4.5.3.2: 5 minutes for a command, 3 for each DATA block.
pub(super) const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);
pub(super) const DATA_TIMEOUT: Duration = Duration::from_secs(180);
/// §4.5.3.1.8 asks for at least 100.
pub const MAX_RECIPIENTS: usize = 100;
/// Errors after which the session is closed (a confused or hostile client); refused recipients
/// count, as in Postfix (`smtpd_hard_error_limit`), which stops address harvesting.
const MAX_ERRORS: u32 = 20;
/// Recipients deferred (greylisting) in one session before each further one counts as an
/// error: a client looping RSET/MAIL/RCPT must not write triplets for ever.
const MAX_DEFERRALS: u32 = 100;

/// A transaction in progress: after MAIL, before the end of DATA.
pub(super) struct Envelope {
    pub(super) id: String,
    /// "" for the null sender.
    pub(super) from: String,
    pub(super) declared_size: usize,
    pub(super) rcpts: Vec<String>,
    /// Inbound: the local accounts to deliver to. Submission: the resolved recipients.
    pub(super) accounts: Vec<i64>,
    /// Inbound: the addresses (lower case) each local account was reached by, and its own:
    /// the spam filter's "addressed to me" looks for them in To and Cc.
    pub(super) addressed_as: Vec<(i64, String)>,
    /// Inbound: remote addresses aliases forward to (and senders behind SRS bounces), with the
    /// local domain that forwards (the SRS domain).
    pub(super) forwards: Vec<String>,
    pub(super) forward_domain: Option<String>,
    pub(super) resolved: Vec<Recipient>,
    /// BDAT chunks so far.
    pub(super) chunks: Option<MessageBuffer>,
    pub(super) started: Instant,
}

pub struct Session<'a, T: Transport> {
    pub(super) io: T,
    pub(super) smtp: &'a Smtp,
    pub(super) kind: Kind,
    pub(super) peer: SocketAddr,
    pub(super) rbuf: LineBuffer,
    pub(super) wbuf: Vec<u8>,
    pub(super) helo: Option<String>,
    pub(super) esmtp: bool,
    pub(super) account: Option<Account>,
    /// Fires when the app password the session signed in with is revoked: the session ends.
    pub(super) revoked: Revoked,
    pub(super) envelope: Option<Envelope>,
    pub(super) errors: u32,
    pub(super) deferrals: u32,
    pub(super) quit: bool,
}

pub(super) enum Next {
    Line(Vec<u8>),
    TooLong,
    Eof,
}

impl<'a, T: Transport> Session<'a, T> {
    pub fn new(io: T, smtp: &'a Smtp, kind: Kind, peer: SocketAddr) -> Session<'a, T> {
        Session {
            io,
            smtp,
            kind,
            peer,
            rbuf: LineBuffer::new(),
            wbuf: Vec::with_capacity(4096),
            helo: None,
            esmtp: false,
            account: None,
            revoked: Revoked::never(),
            envelope: None,
            errors: 0,
            deferrals: 0,
            quit: false,
        }
    }

    /// Runs the session to its end. I/O errors (a vanished or idle peer) end it quietly.
    pub async fn run(mut self, shutdown: crate::shutdown::Shutdown) {
        self.io.set_idle_timeout(COMMAND_TIMEOUT);
        self.reply(Reply::new(
            220,
            "",
            format!("{} ESMTP Mailroom", self.smtp.hostname),
        ));
        loop {
            let revoked = self.revoked.clone();
            let next = tokio::select! {
                n = self.next_line() => Some(n),
                _ = shutdown.wait() => {
                    self.reply(Reply::new(421, "4.3.2", "Server shutting down; please try again later"));
                    let _ = self.flush().await;
                    return;
                }
                _ = revoked.wait() => None,
            };
            // A command that arrived with the revocation is not run either.
            let Some(next) = next.filter(|_| !self.revoked.is_set()) else {
                self.reply(Reply::new(
                    421,
                    "4.7.0",
                    "The app password of this session was revoked; closing connection",
                ));
                let _ = self.flush().await;
                return;
            };
            let line = match next {
                Ok(Next::Line(line)) => line,
                Ok(Next::TooLong) => {
                    self.error(Reply::new(
                        500,
                        "5.5.2",
                        "Line too long (limit 1000 octets)",
                    ));
                    if self.check_errors().await {
                        return;
                    }
                    continue;
                }
                Ok(Next::Eof) | Err(_) => return,
            };
            if let Err(e) = self.command(&line).await {
                tracing::debug!("session ended: {e}");
                return;
            }
            if self.quit || self.check_errors().await {
                let _ = self.flush().await;
                return;
            }
        }
    }

    /// After too many errors: say so and end (true).
    async fn check_errors(&mut self) -> bool {
        if self.errors < MAX_ERRORS {
            return false;
        }
        self.reply(Reply::new(
            421,
            "4.7.0",
            "Too many errors; closing connection",
        ));
        let _ = self.flush().await;
        true
    }

    pub(super) fn reply(&mut self, reply: Reply) {
        reply.write_to(&mut self.wbuf);
    }

    pub(super) fn error(&mut self, reply: Reply) {
        self.errors += 1;
        self.reply(reply);
    }

    pub(super) async fn flush(&mut self) -> std::io::Result<()> {
        if !self.wbuf.is_empty() {
            self.io.write_all(&self.wbuf).await?;
            self.io.flush().await?;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// Reads more input, flushing pending replies first when the client may be waiting for
    /// them (PIPELINING: replies go out when the batch is used up).
    pub(super) async fn fill(&mut self) -> std::io::Result<usize> {
        self.flush().await?;
        let mut chunk = [0u8; 8192];
        let n = self.io.read(&mut chunk).await?;
        self.rbuf.extend(chunk.get(..n).unwrap_or_default());
        Ok(n)
    }

    pub(super) async fn next_line(&mut self) -> std::io::Result<Next> {
        loop {
            match self.rbuf.next_line(LINE_LIMIT) {
                Frame::Line(line) => return Ok(Next::Line(line)),
                Frame::TooLong => return Ok(Next::TooLong),
                Frame::Incomplete => {
                    if self.fill().await? == 0 {
                        return Ok(Next::Eof);
                    }
                }
            }
        }
    }

    async fn command(&mut self, line: &[u8]) -> std::io::Result<()> {
        if line.contains(&0) {
            self.error(Reply::new(500, "5.5.2", "NUL characters are not allowed"));
            return Ok(());
        }
        let mut with_crlf = line.to_vec();
        with_crlf.extend_from_slice(b"\r\n");
        let request = match Request::parse(&mut with_crlf.iter()) {
            Ok(r) => r.into_owned(),
            Err(e) => {
                let r = proto_error(e);
                self.error(r);
                return Ok(());
            }
        };
        match request {
            Request::Ehlo { host } => self.hello(host, true),
            Request::Helo { host } => self.hello(host, false),
            Request::StartTls => return self.starttls().await,
            Request::Auth {
                mechanism,
                initial_response,
            } => return self.auth(mechanism, initial_response).await,
            Request::Mail { from } => {
                let size = super::parser::mail_size_param(line).unwrap_or(from.size as u64);
                self.mail(from, size).await
            }
            // smtp-proto reads the bare postmaster as an empty address.
            Request::Rcpt { mut to } => {
                if to.address.is_empty() && super::parser::bare_postmaster(line) {
                    to.address = "postmaster".into();
                }
                self.rcpt(to).await
            }
            Request::Data => return self.data().await,
            Request::Bdat {
                chunk_size,
                is_last,
            } => return self.bdat(chunk_size, is_last).await,
            Request::Rset => {
                self.envelope = None;
                self.reply(reply::ok());
            }
            Request::Noop { .. } => self.reply(reply::ok()),
            Request::Quit => {
                self.reply(Reply::new(221, "2.0.0", "Bye"));
                self.quit = true;
            }
            Request::Vrfy { .. } => self.reply(Reply::new(
                252,
                "2.5.0",
                "Cannot VRFY user, but will accept message and attempt delivery",
            )),
            Request::Help { .. } => self.reply(Reply::new(
                214,
                "2.0.0",
                "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH",
            )),
            Request::Expn { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. }
            | Request::Lhlo { .. } => {
                self.error(Reply::new(502, "5.5.1", "Command not implemented"));
            }
        }
        Ok(())
    }

    fn hello(&mut self, host: String, esmtp: bool) {
        self.helo = Some(host);
        self.esmtp = esmtp;
        self.envelope = None;
        let hostname = &self.smtp.hostname;
        if !esmtp {
            self.reply(Reply::new(250, "", format!("{hostname} Hello")));
            return;
        }
        let mut caps = vec![
            format!("{hostname} Hello {}", self.peer.ip()),
            "PIPELINING".to_string(),
            format!("SIZE {}", self.smtp.max_message_size),
            "8BITMIME".into(),
            "ENHANCEDSTATUSCODES".into(),
            "SMTPUTF8".into(),
            "CHUNKING".into(),
        ];
        if self.io.can_starttls() {
            caps.push("STARTTLS".into());
        }
        if self.kind == Kind::Submission && self.auth_allowed() {
            caps.push("AUTH PLAIN LOGIN".into());
        }
        caps.push("HELP".into());
        self.reply(Reply::new(250, "", caps.join("\n")));
    }

    /// Passwords only over TLS, unless the config says TLS is impossible here.
    pub(super) fn auth_allowed(&self) -> bool {
        self.io.is_tls() || self.smtp.allow_plaintext
    }

    async fn starttls(&mut self) -> std::io::Result<()> {
        if !self.io.can_starttls() {
            self.error(if self.io.is_tls() {
                reply::bad_sequence("TLS already active")
            } else {
                Reply::new(502, "5.5.1", "STARTTLS not available")
            });
            return Ok(());
        }
        self.reply(Reply::new(220, "2.0.0", "Ready to start TLS"));
        self.flush().await?;
        // RFC 3207 §4.2: anything the client sent after STARTTLS, before the handshake, is
        // discarded (it could be injected plaintext).
        self.rbuf.clear();
        self.io.starttls().await?;
        // §4.2: the client must start over with EHLO.
        self.helo = None;
        self.esmtp = false;
        self.envelope = None;
        self.account = None;
        self.revoked = Revoked::never();
        Ok(())
    }

    async fn mail(&mut self, from: smtp_proto::MailFrom<String>, declared_size: u64) {
        if self.helo.is_none() {
            return self.error(reply::bad_sequence("Send EHLO or HELO first"));
        }
        if self.envelope.is_some() {
            return self.error(reply::bad_sequence("Nested MAIL command"));
        }
        if self.kind == Kind::Submission && self.account.is_none() {
            return self.error(Reply::new(
                530,
                "5.7.0",
                if self.auth_allowed() {
                    "Authentication required"
                } else {
                    "Must issue a STARTTLS command first"
                },
            ));
        }
        if declared_size > self.smtp.max_message_size as u64 {
            self.smtp.store.count_event("rejected:size");
            return self.error(Reply::new(
                552,
                "5.3.4",
                format!(
                    "Message too big (this server accepts up to {} bytes)",
                    self.smtp.max_message_size
                ),
            ));
        }
        // Short of storage: say so now (RFC 5321 §4.2.2, 452), not after the whole message.
        if let Err(StoreError::StorageFull(why)) = self.smtp.store.room_for(declared_size).await {
            tracing::warn!("smtp: refusing mail for now: {why}");
            return self.error(Reply::new(
                452,
                "4.3.1",
                "Insufficient system storage; try again later",
            ));
        }
        let address = from.address.trim().to_string();
        if !address.is_empty() && Address::parse(&address).is_err() {
            return self.error(Reply::new(553, "5.1.7", "Bad sender address syntax"));
        }
        if let Some(account) = &self.account {
            let allowed = match self.smtp.submission.may_send_as(account, &address).await {
                Ok(ok) => ok,
                Err(e) => return self.store_failed(e),
            };
            if !allowed {
                return self.error(Reply::new(
                    550,
                    "5.7.1",
                    format!("{address:?} is not one of your addresses"),
                ));
            }
        }
        self.envelope = Some(Envelope {
            id: unique_id(),
            from: address,
            declared_size: usize::try_from(declared_size).unwrap_or(usize::MAX),
            rcpts: Vec::new(),
            accounts: Vec::new(),
            addressed_as: Vec::new(),
            forwards: Vec::new(),
            forward_domain: None,
            resolved: Vec::new(),
            chunks: None,
            started: Instant::now(),
        });
        self.reply(Reply::new(250, "2.1.0", "Sender OK"));
    }

    async fn rcpt(&mut self, to: smtp_proto::RcptTo<String>) {
        let Some(env) = &self.envelope else {
            return self.error(reply::bad_sequence("Need MAIL before RCPT"));
        };
        if env.rcpts.len() >= MAX_RECIPIENTS {
            return self.reply(Reply::new(452, "4.5.3", "Too many recipients"));
        }
        let declared = env.declared_size;
        let null_sender = env.from.is_empty();
        let reply = match self.kind {
            Kind::Mx if self.smtp.anvil.blocked(self.peer.ip()) => {
                self.smtp.store.count_event("rejected:rcpt_limit");
                Reply::new(
                    450,
                    "4.7.1",
                    "Too many refused recipients from your address; try again later",
                )
            }
            Kind::Mx => {
                let reply = self.rcpt_inbound(&to.address, declared, null_sender).await;
                if reply.code >= 500 {
                    self.smtp.anvil.refused(self.peer.ip());
                }
                reply
            }
            Kind::Submission => self.rcpt_submission(&to.address).await,
        };
        if reply.code == 451 && self.deferrals < MAX_DEFERRALS {
            // Greylisting (or a passing store failure): the client did nothing wrong, so a
            // message to many recipients must not run into the error limit.
            self.deferrals += 1;
            self.reply(reply);
        } else if reply.is_error() {
            self.error(reply);
        } else {
            if let Some(env) = &mut self.envelope {
                env.rcpts.push(to.address);
            }
            self.reply(reply);
        }
    }

    async fn rcpt_submission(&mut self, rcpt: &str) -> Reply {
        match self.smtp.submission.check_recipient(rcpt).await {
            Ok(resolved) => {
                if let Some(env) = &mut self.envelope {
                    env.resolved.push(resolved);
                }
                Reply::new(250, "2.1.5", "Recipient OK")
            }
            Err(SubmitError::BadRecipient(m)) => Reply::new(550, "5.1.1", m),
            Err(SubmitError::Store(e)) => self.store_error(e),
            Err(e) => Reply::new(550, "5.7.1", e.to_string()),
        }
    }

    pub(super) fn store_error(&self, e: StoreError) -> Reply {
        if let StoreError::StorageFull(why) = &e {
            // RFC 3463 4.3.1 "mail system full"; temporary, the client retries.
            tracing::warn!("refusing mail for lack of storage: {why}");
            return Reply::new(452, "4.3.1", "Insufficient system storage; try again later");
        }
        tracing::error!("store error during SMTP session: {e}");
        reply::unavailable()
    }

    pub(super) fn store_failed(&mut self, e: StoreError) {
        let r = self.store_error(e);
        self.reply(r);
    }
}

/// The reply for a command smtp-proto could not parse.
fn proto_error(e: ProtoError) -> Reply {
    match e {
        ProtoError::UnknownCommand => Reply::new(500, "5.5.2", "Command not recognized"),
        ProtoError::InvalidSenderAddress => Reply::new(553, "5.1.7", "Bad sender address syntax"),
        ProtoError::InvalidRecipientAddress => {
            Reply::new(501, "5.1.3", "Bad recipient address syntax")
        }
        ProtoError::SyntaxError { syntax } => reply::syntax(format!("Syntax: {syntax}")),
        ProtoError::InvalidParameter { param } => {
            Reply::new(501, "5.5.4", format!("Invalid parameter {param}"))
        }
        ProtoError::UnsupportedParameter { param } => Reply::new(
            555,
            "5.5.4",
            format!(
                "Unsupported parameter {}",
                param.chars().take(64).collect::<String>()
            ),
        ),
        ProtoError::NeedsMoreData { .. }
        | ProtoError::ResponseTooLong
        | ProtoError::InvalidResponse { .. } => reply::syntax("Syntax error"),
    }
}
