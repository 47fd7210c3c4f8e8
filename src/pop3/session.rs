//! One POP3 session: the read loop, the reply buffer, and the dispatch of commands by state.
//!
//! The states of RFC 1939 §3: AUTHORIZATION (USER/PASS, AUTH, STLS, CAPA, QUIT), TRANSACTION
//! (STAT, LIST, RETR, DELE, NOOP, RSET, TOP, UIDL, CAPA, QUIT), and UPDATE, which only QUIT
//! enters and which is not a state the loop waits in: it expunges and closes. Any other way out
//! (a dropped connection, the idle timeout, too many errors, server shutdown) deletes nothing.
//!
//! Replies are collected in a buffer and written when the client has no further complete
//! command waiting, so a pipelining client (RFC 2449 PIPELINING) gets its replies in one
//! write; RETR and TOP flush each chunk as it is produced.
//!
//! Negative replies are [`Refusal`]s: a response code (RFC 2449/3206), a text, and whose fault
//! it was. The client's protocol errors are logged at debug and counted ("strikes"); past
//! `max_errors` the session is closed. Our failures are logged at error with their cause and
//! the client gets `[SYS/TEMP]`.

use std::io;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::maildrop::Maildrop;
use super::parser::{self, Command};
use super::server::Shared;
use crate::auth::live::Revoked;
use crate::net::Connection;
use crate::wire::line::{Frame, LineBuffer};

/// What the loop does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    Continue,
    Close,
}

/// A negative reply.
#[derive(Debug)]
pub(super) struct Refusal {
    /// RFC 2449 response code, without brackets: "AUTH", "IN-USE", "SYS/TEMP".
    pub code: Option<&'static str>,
    pub text: String,
    pub fault: Fault,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fault {
    /// A protocol error or failed login: logged at debug and counted against the session.
    Strike,
    /// A normal negative answer (no such message, maildrop in use): not counted.
    Answer,
    /// Ours: logged at error.
    Ours,
}

impl Refusal {
    pub fn strike(text: impl Into<String>) -> Refusal {
        Refusal {
            code: None,
            text: text.into(),
            fault: Fault::Strike,
        }
    }
    pub fn answer(text: impl Into<String>) -> Refusal {
        Refusal {
            code: None,
            text: text.into(),
            fault: Fault::Answer,
        }
    }
    /// Our failure: the client sees `[SYS/TEMP] text`, the log gets the cause.
    pub fn ours(text: &str, cause: impl std::fmt::Display) -> Refusal {
        tracing::error!("pop3: {text}: {cause}");
        Refusal {
            code: Some("SYS/TEMP"),
            text: text.to_string(),
            fault: Fault::Ours,
        }
    }
    pub fn code(mut self, code: &'static str) -> Refusal {
        self.code = Some(code);
        self
    }
}

/// Why a command did not simply succeed.
#[derive(Debug)]
pub(super) enum Fail {
    Refused(Refusal),
    /// The connection failed: the session ends.
    Io(io::Error),
}

impl From<Refusal> for Fail {
    fn from(r: Refusal) -> Fail {
        Fail::Refused(r)
    }
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Fail {
        Fail::Io(e)
    }
}

pub(super) type Outcome = Result<Flow, Fail>;

pub(super) enum State {
    Authorization {
        /// The name given by USER, waiting for PASS.
        user: Option<String>,
    },
    Transaction {
        maildrop: Maildrop,
    },
}

/// What waiting for input produced.
enum Input {
    Data,
    Eof,
    Shutdown,
}

/// What a session signed in with an app password is told when that app password is revoked.
const REVOKED: &str = "the app password of this session was revoked; nothing was deleted";

pub(super) struct Session {
    pub shared: Arc<Shared>,
    pub conn: Connection,
    pub state: State,
    input: LineBuffer,
    out: Vec<u8>,
    strikes: u32,
    /// The account logged in, for the end-of-session log line.
    pub account: Option<String>,
    /// Fires when the app password the session signed in with is revoked: the session ends,
    /// deleting nothing.
    pub revoked: Revoked,
    /// Messages sent whole by RETR, for the end-of-session log line.
    pub retrieved: usize,
    pub deleted: usize,
    /// The next RETRs' bodies, read ahead (see `transaction.rs`).
    pub prefetch: super::transaction::Prefetch,
}

pub(super) async fn run(shared: Arc<Shared>, mut conn: Connection) {
    conn.stream.set_idle_timeout(shared.settings.idle_timeout);
    let mut session = Session {
        shared,
        conn,
        state: State::Authorization { user: None },
        input: LineBuffer::new(),
        out: Vec::new(),
        strikes: 0,
        account: None,
        revoked: Revoked::never(),
        retrieved: 0,
        deleted: 0,
        prefetch: Default::default(),
    };
    let result = session.serve().await;
    match result {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::TimedOut => {
            tracing::debug!("pop3 session timed out");
        }
        Err(e) => tracing::debug!("pop3 connection failed: {e}"),
    }
    if let Some(account) = &session.account {
        tracing::info!(
            account,
            retrieved = session.retrieved,
            deleted = session.deleted,
            "pop3 session ended"
        );
    }
}

impl Session {
    async fn serve(&mut self) -> io::Result<()> {
        let greeting = format!(
            "Mailroom POP3 server ready on {}",
            self.shared.settings.hostname
        );
        self.ok(&greeting);
        loop {
            match self.input.next_line(parser::COMMAND_LIMIT) {
                // A command that arrived with the revocation is not run.
                Frame::Line(_) if self.revoked.is_set() => {
                    self.err(Some("AUTH"), REVOKED);
                    let _ = self.flush().await;
                    return Ok(());
                }
                Frame::Line(line) => {
                    let outcome = match parser::parse(&line) {
                        Ok(command) => {
                            tracing::trace!(command = command.name(), "pop3 command");
                            self.dispatch(command).await
                        }
                        Err(e) => Err(Refusal::strike(e.to_string()).into()),
                    };
                    if self.settle(outcome)? == Flow::Close {
                        self.flush().await?;
                        return Ok(());
                    }
                }
                Frame::TooLong => {
                    let too_long =
                        format!("line too long (at most {} octets)", parser::MAX_COMMAND);
                    if self.settle(Err(Refusal::strike(too_long).into()))? == Flow::Close {
                        self.flush().await?;
                        return Ok(());
                    }
                }
                Frame::Incomplete => match self.read_more().await? {
                    Input::Data => {}
                    Input::Eof => return Ok(()),
                    Input::Shutdown => return Ok(()),
                },
            }
        }
    }

    /// Turns a command's outcome into the loop's next step, writing a refusal's reply.
    fn settle(&mut self, outcome: Outcome) -> io::Result<Flow> {
        match outcome {
            Ok(flow) => Ok(flow),
            Err(Fail::Io(e)) => Err(e),
            Err(Fail::Refused(r)) => {
                if r.fault == Fault::Strike {
                    tracing::debug!("pop3 client error: {}", r.text);
                    self.strikes += 1;
                    if self.strikes >= self.shared.settings.max_errors {
                        self.err(None, &format!("{}; too many errors, closing", r.text));
                        return Ok(Flow::Close);
                    }
                }
                self.err(r.code, &r.text);
                Ok(Flow::Continue)
            }
        }
    }

    /// Flushes pending replies, then waits for input (or shutdown). Timeouts come back as
    /// `TimedOut` errors after a best-effort goodbye.
    async fn read_more(&mut self) -> io::Result<Input> {
        self.flush().await?;
        let mut chunk = [0u8; 8192];
        let read = tokio::select! {
            biased;
            r = self.conn.stream.read(&mut chunk) => Some(r),
            _ = self.conn.shutdown.wait() => None,
            _ = self.revoked.wait() => {
                self.err(Some("AUTH"), REVOKED);
                let _ = self.flush().await;
                return Ok(Input::Shutdown);
            }
        };
        let Some(read) = read else {
            self.err(
                Some("SYS/TEMP"),
                "server shutting down, nothing was deleted",
            );
            let _ = self.flush().await;
            return Ok(Input::Shutdown);
        };
        match read {
            Ok(0) => Ok(Input::Eof),
            Ok(n) => {
                self.input.extend(chunk.get(..n).unwrap_or_default());
                Ok(Input::Data)
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                self.err(None, "autologout: idle for too long, nothing was deleted");
                let _ = self.flush().await;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Reads one client line of an AUTH exchange (longer lines allowed than for commands).
    /// `None` when the connection ended; a too-long line is a refusal.
    pub async fn continuation(&mut self) -> Result<Option<Vec<u8>>, Fail> {
        loop {
            match self.input.next_line(parser::AUTH_LINE_LIMIT) {
                Frame::Line(line) => return Ok(Some(line)),
                Frame::TooLong => {
                    return Err(Refusal::strike("authentication line too long").into());
                }
                Frame::Incomplete => match self.read_more().await? {
                    Input::Data => {}
                    Input::Eof | Input::Shutdown => return Ok(None),
                },
            }
        }
    }

    pub fn ok(&mut self, text: &str) {
        if text.is_empty() {
            self.line("+OK");
        } else {
            self.line(&format!("+OK {text}"));
        }
    }

    pub fn err(&mut self, code: Option<&str>, text: &str) {
        match code {
            Some(code) => self.line(&format!("-ERR [{code}] {text}")),
            None => self.line(&format!("-ERR {text}")),
        }
    }

    /// Appends a line of a reply, CRLF added.
    pub fn line(&mut self, line: &str) {
        self.out.extend_from_slice(line.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    /// The reply buffer, for multi-line bodies produced elsewhere.
    pub fn out(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            self.conn.stream.write_all(&self.out).await?;
            self.out.clear();
        }
        self.conn.stream.flush().await
    }

    /// May passwords be sent on this connection?
    pub fn plaintext_ok(&self) -> bool {
        self.conn.is_tls() || self.shared.settings.allow_plaintext
    }

    async fn dispatch(&mut self, command: Command) -> Outcome {
        let logged_in = matches!(self.state, State::Transaction { .. });
        match command {
            Command::Capa => self.capa(),
            Command::Quit if logged_in => self.update().await,
            Command::Quit => {
                self.ok("bye");
                Ok(Flow::Close)
            }
            Command::Stls if logged_in => {
                Err(Refusal::strike("STLS is only allowed before login").into())
            }
            Command::Stls => self.stls().await,
            Command::User(_) | Command::Pass(_) | Command::Apop | Command::Auth { .. }
                if logged_in =>
            {
                Err(Refusal::strike("already logged in").into())
            }
            Command::User(name) => self.user(name),
            Command::Pass(password) => self.pass(password).await,
            Command::Apop => Err(Refusal::strike(
                "APOP is not supported; use USER/PASS or AUTH PLAIN over TLS",
            )
            .into()),
            Command::Auth { mechanism, initial } => self.auth(mechanism, initial).await,
            other if !logged_in => Err(Refusal::strike(format!(
                "{} is only valid after login (use USER/PASS or AUTH)",
                other.name()
            ))
            .into()),
            Command::Stat => self.stat().await,
            Command::List(n) => self.list(n).await,
            Command::Uidl(n) => self.uidl(n),
            Command::Retr(n) => self.retr(n).await,
            Command::Top { msg, lines } => self.top(msg, lines).await,
            Command::Dele(n) => self.dele(n),
            Command::Noop => {
                self.ok("");
                Ok(Flow::Continue)
            }
            Command::Rset => self.rset(),
        }
    }

    /// RFC 2449 CAPA. Before login, USER and SASL are listed only where a password may be sent
    /// (RFC 2595 §4 suggests not advertising them before STLS), and STLS where it can be used.
    fn capa(&mut self) -> Outcome {
        let before_login = matches!(self.state, State::Authorization { .. });
        self.ok("capability list follows");
        for cap in ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"] {
            self.line(cap);
        }
        self.line("EXPIRE NEVER");
        if before_login {
            if self.plaintext_ok() {
                self.line("USER");
                self.line("SASL PLAIN LOGIN");
            }
            if self.conn.can_starttls() {
                self.line("STLS");
            }
        }
        self.line("IMPLEMENTATION Mailroom");
        self.line(".");
        Ok(Flow::Continue)
    }

    /// RFC 2595 STLS: the go-ahead is flushed, anything the client pipelined after STLS is
    /// thrown away, then the handshake. A failed handshake ends the session.
    async fn stls(&mut self) -> Outcome {
        if self.conn.is_tls() {
            return Err(Refusal::strike("already using TLS").into());
        }
        if !self.conn.can_starttls() {
            return Err(Refusal::answer("TLS is not available on this port").into());
        }
        self.ok("begin TLS negotiation");
        self.flush().await?;
        self.input.clear();
        self.conn.starttls().await?;
        self.state = State::Authorization { user: None };
        Ok(Flow::Continue)
    }
}
