//! The message itself: DATA (dot-unstuffed by `parser::DataDecoder`) and BDAT chunks (RFC
//! 3030) into one `MessageBuffer`, and the end of the transaction: delivery (MX) or
//! submission, the trace fields, the reply and the log line.

use super::Kind;
use super::parser::{DataDecoder, Dropped, MessageBuffer};
use super::reply::{self, Reply};
use super::session::{COMMAND_TIMEOUT, DATA_TIMEOUT, Envelope, Session};
use crate::mime::rfc5322_now;
use crate::net::Transport;
use crate::store::StoreError;
use crate::submission::SubmitError;

impl<'a, T: Transport> Session<'a, T> {
    pub(super) async fn data(&mut self) -> std::io::Result<()> {
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
            let (used, done) = decoder.feed(self.rbuf.pending());
            self.rbuf.consume(used);
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
    pub(super) fn message_buffer(&self) -> MessageBuffer {
        MessageBuffer::new(
            self.smtp.max_message_size,
            self.smtp.budget.claim(self.peer.ip()),
        )
    }

    pub(super) async fn bdat(&mut self, size: usize, last: bool) -> std::io::Result<()> {
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
            let take = left.min(self.rbuf.pending().len());
            if let Some(buffer) = self.envelope.as_mut().and_then(|e| e.chunks.as_mut()) {
                buffer.push(self.rbuf.pending().get(..take).unwrap_or_default());
            }
            self.rbuf.consume(take);
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
    pub(super) async fn finish(&mut self, buffer: MessageBuffer) {
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

    pub(super) async fn submit(&mut self, env: &Envelope, message: &[u8]) -> Reply {
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
    pub(super) fn trace_headers(&self, env: &Envelope) -> Vec<u8> {
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
}
