//! One SMTP session: the RFC 5321 state machine, generic over [`Transport`] so it runs on a
//! server connection or an in-memory stream.
//!
//! States: greeting sent → EHLO/HELO → (AUTH, on submission) → MAIL → RCPT… → DATA/BDAT → back
//! to "EHLO done". Replies are buffered and flushed only when the client's input is used up, so
//! a pipelined batch (RFC 2920) gets its replies in order and in one write, and a client that
//! waits for each reply gets it at once.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use smtp_proto::{Error as ProtoError, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::parser::{DataDecoder, Dropped, LineScan, MessageBuffer, scan_line, skip_to_eol};
use super::reply::{self, Reply};
use super::{Kind, Smtp};
use crate::address::Address;
use crate::auth::{AuthError, sasl};
use crate::mime::{rfc5322_now, unique_id};
use crate::net::Transport;
use crate::store::{Account, StoreError, Target};
use crate::submission::{Recipient, SubmitError};

/// §4.5.3.2: 5 minutes for a command, 3 for each DATA block.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);
const DATA_TIMEOUT: Duration = Duration::from_secs(180);
/// §4.5.3.1.8 asks for at least 100.
pub const MAX_RECIPIENTS: usize = 100;
/// Errors after which the session is closed (a confused or hostile client); refused recipients
/// count, as in Postfix (`smtpd_hard_error_limit`), which stops address harvesting.
const MAX_ERRORS: u32 = 20;

/// A transaction in progress: after MAIL, before the end of DATA.
struct Envelope {
    id: String,
    /// "" for the null sender.
    from: String,
    declared_size: usize,
    rcpts: Vec<String>,
    /// Inbound: the local accounts to deliver to. Submission: the resolved recipients.
    accounts: Vec<i64>,
    /// Inbound: remote addresses aliases forward to (and senders behind SRS bounces), with the
    /// local domain that forwards (the SRS domain).
    forwards: Vec<String>,
    forward_domain: Option<String>,
    resolved: Vec<Recipient>,
    /// BDAT chunks so far.
    chunks: Option<MessageBuffer>,
    started: Instant,
}

pub struct Session<'a, T: Transport> {
    io: T,
    smtp: &'a Smtp,
    kind: Kind,
    peer: SocketAddr,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    helo: Option<String>,
    esmtp: bool,
    account: Option<Account>,
    envelope: Option<Envelope>,
    errors: u32,
    quit: bool,
}

enum Next {
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
            rbuf: Vec::with_capacity(4096),
            wbuf: Vec::with_capacity(4096),
            helo: None,
            esmtp: false,
            account: None,
            envelope: None,
            errors: 0,
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
            let next = tokio::select! {
                n = self.next_line() => n,
                _ = shutdown.wait() => {
                    self.reply(Reply::new(421, "4.3.2", "Server shutting down; please try again later"));
                    let _ = self.flush().await;
                    return;
                }
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

    fn reply(&mut self, reply: Reply) {
        reply.write_to(&mut self.wbuf);
    }

    fn error(&mut self, reply: Reply) {
        self.errors += 1;
        self.reply(reply);
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if !self.wbuf.is_empty() {
            self.io.write_all(&self.wbuf).await?;
            self.io.flush().await?;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// Reads more input, flushing pending replies first when the client may be waiting for
    /// them (PIPELINING: replies go out when the batch is used up).
    async fn fill(&mut self) -> std::io::Result<usize> {
        self.flush().await?;
        let mut chunk = [0u8; 8192];
        let n = self.io.read(&mut chunk).await?;
        self.rbuf
            .extend_from_slice(chunk.get(..n).unwrap_or_default());
        Ok(n)
    }

    async fn next_line(&mut self) -> std::io::Result<Next> {
        loop {
            match scan_line(&self.rbuf) {
                LineScan::Line(len, used) => {
                    let line = self.rbuf.get(..len).unwrap_or_default().to_vec();
                    self.rbuf.drain(..used);
                    return Ok(Next::Line(line));
                }
                LineScan::TooLong(drop) => {
                    let ended = self.rbuf.get(..drop).is_some_and(|b| b.ends_with(b"\n"));
                    self.rbuf.drain(..drop);
                    if !ended {
                        loop {
                            let (n, found) = skip_to_eol(&self.rbuf);
                            self.rbuf.drain(..n);
                            if found {
                                break;
                            }
                            if self.fill().await? == 0 {
                                return Ok(Next::Eof);
                            }
                        }
                    }
                    return Ok(Next::TooLong);
                }
                LineScan::NeedMore => {
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
            Request::Rcpt { to } => self.rcpt(to).await,
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
    fn auth_allowed(&self) -> bool {
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
        Ok(())
    }

    async fn auth(&mut self, mechanism: u64, initial: String) -> std::io::Result<()> {
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
    async fn challenge_response(&mut self) -> std::io::Result<Option<String>> {
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
        if reply.is_error() {
            self.error(reply);
        } else {
            if let Some(env) = &mut self.envelope {
                env.rcpts.push(to.address);
            }
            self.reply(reply);
        }
    }

    async fn rcpt_inbound(&mut self, rcpt: &str, declared_size: usize, null_sender: bool) -> Reply {
        let Ok(address) = Address::parse(rcpt) else {
            return Reply::new(501, "5.1.3", "Bad recipient address syntax");
        };
        let store = &self.smtp.store;
        // A bounce coming back to an address we rewrote when forwarding: pass it on to the
        // original sender. Only bounces (from the null sender) may use these addresses, or a
        // valid one would relay anyone's mail.
        if null_sender
            && let Some(original) = self.smtp.srs.reverse(&address.local)
            && matches!(store.is_local_domain(&address.domain).await, Ok(true))
        {
            if let Some(env) = &mut self.envelope {
                env.forwards.push(original);
                env.forward_domain.get_or_insert(address.domain.clone());
            }
            return Reply::new(250, "2.1.5", "Recipient OK");
        }
        let expansion = match store.expand_recipient(&address.to_string()).await {
            Ok(Some(e)) => e,
            Ok(None) => {
                return match store.is_local_domain(&address.domain).await {
                    Ok(true) => {
                        store.count_event("rejected:unknown_user");
                        Reply::new(550, "5.1.1", "No such user here")
                    }
                    Ok(false) => {
                        store.count_event("rejected:relay");
                        Reply::new(554, "5.7.1", "Relay access denied")
                    }
                    Err(e) => self.store_error(e),
                };
            }
            Err(e) => return self.store_error(e),
        };
        for account in &expansion.local {
            let quota = account.quota_bytes;
            if quota > 0 && account.used_bytes.saturating_add(declared_size as i64) >= quota {
                store.count_event("rejected:quota");
                return Reply::new(452, "4.2.2", format!("Mailbox full: {address}"));
            }
        }
        if let Some(env) = &mut self.envelope {
            for account in expansion.local {
                if !env.accounts.contains(&account.id) {
                    env.accounts.push(account.id);
                }
            }
            for target in expansion.remote {
                if !env.forwards.contains(&target) {
                    env.forwards.push(target);
                }
                env.forward_domain.get_or_insert(address.domain.clone());
            }
        }
        Reply::new(250, "2.1.5", "Recipient OK")
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

    async fn data(&mut self) -> std::io::Result<()> {
        let Some(env) = &self.envelope else {
            self.error(reply::bad_sequence("Need MAIL before DATA"));
            return Ok(());
        };
        if env.rcpts.is_empty() {
            self.error(Reply::new(554, "5.5.1", "No valid recipients"));
            return Ok(());
        }
        if env.chunks.is_some() {
            self.error(reply::bad_sequence("DATA cannot follow BDAT"));
            return Ok(());
        }
        self.reply(Reply::new(
            354,
            "",
            "Start mail input; end with <CRLF>.<CRLF>",
        ));
        self.io.set_idle_timeout(DATA_TIMEOUT);
        let mut decoder = DataDecoder::new(self.message_buffer());
        loop {
            let (used, done) = decoder.feed(&self.rbuf);
            self.rbuf.drain(..used);
            if done {
                break;
            }
            if self.fill().await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
        self.io.set_idle_timeout(COMMAND_TIMEOUT);
        self.finish(decoder.finish()).await;
        Ok(())
    }

    /// An empty buffer for one message, under the size limit and the shared memory budget.
    fn message_buffer(&self) -> MessageBuffer {
        MessageBuffer::new(
            self.smtp.max_message_size,
            self.smtp.budget.claim(self.peer.ip()),
        )
    }

    async fn bdat(&mut self, size: usize, last: bool) -> std::io::Result<()> {
        // The chunk follows the command whatever we answer, so read it first (RFC 3030 §2).
        self.io.set_idle_timeout(DATA_TIMEOUT);
        let keep = self.envelope.as_ref().is_some_and(|e| !e.rcpts.is_empty());
        if keep {
            let fresh = self.message_buffer();
            if let Some(env) = &mut self.envelope {
                env.chunks.get_or_insert(fresh);
            }
        }
        let mut left = size;
        loop {
            let take = left.min(self.rbuf.len());
            if let Some(buffer) = self.envelope.as_mut().and_then(|e| e.chunks.as_mut()) {
                buffer.push(self.rbuf.get(..take).unwrap_or_default());
            }
            self.rbuf.drain(..take);
            left -= take;
            if left == 0 {
                break;
            }
            if self.fill().await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
        self.io.set_idle_timeout(COMMAND_TIMEOUT);
        let Some(env) = &mut self.envelope else {
            self.error(reply::bad_sequence("Need MAIL before BDAT"));
            return Ok(());
        };
        if env.rcpts.is_empty() {
            self.error(Reply::new(554, "5.5.1", "No valid recipients"));
            return Ok(());
        }
        let Some(buffer) = env.chunks.take_if(|_| last) else {
            let held = env.chunks.as_ref().map_or(0, MessageBuffer::size);
            self.reply(Reply::new(
                250,
                "2.0.0",
                format!("{size} octets received ({held} so far)"),
            ));
            return Ok(());
        };
        self.finish(buffer).await;
        Ok(())
    }

    /// Ends the transaction: stores the message (or reports why not), replies, logs one line.
    async fn finish(&mut self, buffer: MessageBuffer) {
        let Some(env) = self.envelope.take() else {
            return;
        };
        let size = buffer.size();
        let reply = match buffer.finish() {
            // The claim is held until the message is stored: delivery works on this copy.
            Ok((message, _claim)) => match self.kind {
                Kind::Mx => self.deliver_inbound(&env, &message).await,
                Kind::Submission => self.submit(&env, &message).await,
            },
            Err(Dropped::TooBig) => Reply::new(
                552,
                "5.3.4",
                format!(
                    "Message too big ({size} bytes; this server accepts up to {})",
                    self.smtp.max_message_size
                ),
            ),
            Err(Dropped::NoMemory) => {
                tracing::warn!(
                    "smtp: memory budget for mail in flight spent ({} bytes); message of {size} bytes refused for now",
                    self.smtp.budget.limit()
                );
                self.smtp.store.count_event("rejected:busy");
                Reply::new(
                    452,
                    "4.3.1",
                    "Insufficient system resources: too much mail in flight; try again later",
                )
            }
        };
        let tls = self.io.tls_info().map_or("none".to_string(), |t| t.version);
        tracing::info!(
            "smtp transaction: id={} peer={} tls={tls} from=<{}> rcpts={} size={size} result={} ms={}",
            env.id,
            self.peer.ip(),
            env.from,
            env.rcpts.join(","),
            reply.code,
            env.started.elapsed().as_millis()
        );
        if reply.is_error() {
            self.error(reply);
        } else {
            self.reply(reply);
        }
    }

    async fn deliver_inbound(&mut self, env: &Envelope, message: &[u8]) -> Reply {
        // Each server adds a Received field: this many means the message is going round in
        // circles (two aliases forwarding to each other across servers, RFC 5321 §6.3).
        let hops = count_received(message);
        if hops >= MAX_HOPS {
            self.smtp.store.count_event("rejected:loop");
            return Reply::new(
                554,
                "5.4.6",
                format!("Too many hops ({hops} Received fields): a mail loop?"),
            );
        }
        let mut raw = self.trace_headers(env);
        if let Some(verifier) = &self.smtp.verifier {
            let helo = self.helo.as_deref().unwrap_or("unknown");
            let verdict = verifier
                .verify(self.peer.ip(), helo, &env.from, message)
                .await;
            if let Some(why) = verdict.reject {
                self.smtp.store.count_event("rejected:dmarc");
                return Reply::new(550, "5.7.1", why);
            }
            raw.extend_from_slice(verdict.header.as_bytes());
        }
        // Only we may state our verdicts, whether or not we checked.
        raw.extend_from_slice(&super::verify::strip_forged_results(
            message,
            &self.smtp.hostname,
        ));
        let targets: Vec<Target> = env.accounts.iter().map(|id| Target::inbox(*id)).collect();
        let delivery = crate::store::Delivery {
            raw: &raw,
            internal_date: None,
        };
        match self.smtp.store.deliver_atomic(delivery, &targets).await {
            Ok(_) if env.forwards.is_empty() => {
                Reply::new(250, "2.0.0", format!("OK: stored as {}", env.id))
            }
            Ok(_) => self.forward(env, &raw).await,
            Err(StoreError::QuotaExceeded { address, .. }) if targets.len() == 1 => {
                Reply::new(552, "5.2.2", format!("Mailbox full: {address}"))
            }
            Err(StoreError::QuotaExceeded { address, .. }) => Reply::new(
                452,
                "4.2.2",
                format!("Mailbox full: {address}; nothing was delivered, please retry"),
            ),
            Err(e) => self.store_error(e),
        }
    }

    /// Queues `raw` for the remote targets of aliases, from an SRS address of the forwarding
    /// domain so SPF passes at the destination. Local copies are already stored.
    async fn forward(&mut self, env: &Envelope, raw: &[u8]) -> Reply {
        let domain = env
            .forward_domain
            .clone()
            .unwrap_or_else(|| self.smtp.hostname.clone());
        let sender = self.smtp.srs.forward(&env.from, &domain);
        // The Return-Path is ours to add only at final delivery; the next server adds its own.
        let outbound = crate::submission::without_return_path(raw);
        match self
            .smtp
            .store
            .queue_add(&sender, &env.forwards, outbound)
            .await
        {
            Ok(id) => Reply::new(
                250,
                "2.0.0",
                format!("OK: stored as {}, forwarded as queue item {id}", env.id),
            ),
            Err(e) => self.store_error(e),
        }
    }

    async fn submit(&mut self, env: &Envelope, message: &[u8]) -> Reply {
        let Some(account) = &self.account else {
            return Reply::new(530, "5.7.0", "Authentication required");
        };
        let trace = self.trace_headers(env);
        match self
            .smtp
            .submission
            .submit(account, &env.from, &env.resolved, &trace, message)
            .await
        {
            Ok(_) => Reply::new(250, "2.0.0", format!("OK: stored as {}", env.id)),
            Err(SubmitError::Store(StoreError::QuotaExceeded { address, .. })) => {
                Reply::new(452, "4.2.2", format!("Mailbox full: {address}"))
            }
            Err(SubmitError::Store(e)) => self.store_error(e),
            Err(e @ SubmitError::NotYourAddress(_)) => Reply::new(550, "5.7.1", e.to_string()),
            Err(e @ SubmitError::BadRecipient(_)) => Reply::new(550, "5.1.1", e.to_string()),
            Err(e @ SubmitError::Malformed(_)) => Reply::new(554, "5.6.0", e.to_string()),
            Err(e @ SubmitError::Dkim(_)) => {
                tracing::error!("submission: {e}");
                Reply::new(451, "4.3.0", "Cannot sign the message now; try again later")
            }
        }
    }

    /// `Return-Path:` and `Received:` for the top of a stored message. `for <rcpt>` only with a
    /// single recipient, so one body serves every recipient (and is stored once).
    fn trace_headers(&self, env: &Envelope) -> Vec<u8> {
        let helo = self.helo.as_deref().unwrap_or("unknown");
        let helo: String = helo
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(255)
            .collect();
        let mut with = match (self.esmtp, self.io.is_tls(), self.account.is_some()) {
            (false, _, _) => "SMTP",
            (true, false, false) => "ESMTP",
            (true, false, true) => "ESMTPA",
            (true, true, false) => "ESMTPS",
            (true, true, true) => "ESMTPSA",
        }
        .to_string();
        if let Some(tls) = self.io.tls_info() {
            with.push_str(&format!(" ({} {})", tls.version, tls.cipher));
        }
        let for_clause = match env.rcpts.as_slice() {
            [one] => format!("\r\n\tfor <{one}>"),
            _ => String::new(),
        };
        format!(
            "Return-Path: <{}>\r\nReceived: from {helo} ([{}])\r\n\tby {} (Mailroom) with {with}\r\n\tid {}{for_clause};\r\n\t{}\r\n",
            env.from,
            self.peer.ip(),
            self.smtp.hostname,
            env.id,
            rfc5322_now()
        )
        .into_bytes()
    }

    fn store_error(&self, e: StoreError) -> Reply {
        if let StoreError::StorageFull(why) = &e {
            // RFC 3463 4.3.1 "mail system full"; temporary, the client retries.
            tracing::warn!("refusing mail for lack of storage: {why}");
            return Reply::new(452, "4.3.1", "Insufficient system storage; try again later");
        }
        tracing::error!("store error during SMTP session: {e}");
        reply::unavailable()
    }

    fn store_failed(&mut self, e: StoreError) {
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

/// Received fields at which a message is refused as looping (Postfix uses 50, RFC 5321
/// suggests at least 100 is excessive; forwarding chains this long do not occur in practice).
const MAX_HOPS: usize = 30;

/// The number of `Received:` fields in the header section of `message`.
fn count_received(message: &[u8]) -> usize {
    crate::mime::header_fields(message)
        .filter(|name| name.eq_ignore_ascii_case(b"received"))
        .count()
}
