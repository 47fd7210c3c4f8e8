//! One ManageSieve session: the read loop, responses, and the commands of any state
//! (CAPABILITY, STARTTLS, LOGOUT, NOOP).
//!
//! Responses are `OK`, `NO` or `BYE`, each with an optional response code in parentheses and a
//! human-readable string (RFC 5804 §1.3). A refusal is a [`Refusal`]: its code, text, and whose
//! fault it was. Protocol errors and failed logins are "strikes": past `max_errors` the session
//! ends with `BYE`. Our own failures are logged with their cause and answered `NO (TRYLATER)`.
//! Responses are written when no further whole command is waiting, so a pipelining client
//! gets them in one write.

use std::io;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::parser::{self, Command, Frame, Framer, Token};
use super::{MAX_COMMANDS_BEFORE_LOGIN, MAX_LITERAL_BEFORE_LOGIN, Shared, language};
use crate::auth::live::Revoked;
use crate::net::Connection;

/// What the loop does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    Continue,
    Close,
}

/// A `NO` response.
#[derive(Debug)]
pub(super) struct Refusal {
    /// RFC 5804 §1.3 response code: "NONEXISTENT", "QUOTA/MAXSIZE", "TRYLATER", …
    pub code: Option<&'static str>,
    pub text: String,
    pub fault: Fault,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fault {
    /// A protocol error or failed login: counted against the session.
    Strike,
    /// A normal negative answer (no such script, over quota, a script that does not compile).
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
    /// Our failure: the client sees `NO (TRYLATER) text`, the log gets the cause.
    pub fn ours(text: &str, cause: impl std::fmt::Display) -> Refusal {
        tracing::error!("managesieve: {text}: {cause}");
        Refusal {
            code: Some("TRYLATER"),
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

/// The account a session logged in as.
pub(super) struct LoggedIn {
    pub id: i64,
    pub address: String,
}

/// What waiting for input produced.
pub(super) enum Input {
    Data,
    /// The connection ended, or the session must (shutdown, revoked app password): the
    /// goodbye, if any, is written.
    End,
}

pub(super) struct Session {
    pub shared: Arc<Shared>,
    pub conn: Connection,
    pub input: Framer,
    out: Vec<u8>,
    strikes: u32,
    commands_before_login: u32,
    pub account: Option<LoggedIn>,
    /// Fires when the app password the session signed in with is revoked.
    pub revoked: Revoked,
}

pub(super) async fn run(shared: Arc<Shared>, mut conn: Connection) {
    conn.stream.set_idle_timeout(shared.settings.idle_timeout);
    let mut session = Session {
        shared,
        conn,
        input: Framer::new(),
        out: Vec::new(),
        strikes: 0,
        commands_before_login: 0,
        account: None,
        revoked: Revoked::never(),
    };
    match session.serve().await {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::TimedOut => {
            tracing::debug!("managesieve session timed out");
        }
        Err(e) => tracing::debug!("managesieve connection failed: {e}"),
    }
}

impl Session {
    async fn serve(&mut self) -> io::Result<()> {
        self.capabilities();
        self.ok(None, "Mailroom ManageSieve ready");
        loop {
            let frame = self.input.next(self.max_literal());
            let outcome = match frame {
                Frame::Incomplete => match self.read_more().await? {
                    Input::Data => continue,
                    Input::End => return Ok(()),
                },
                Frame::Line(_) if self.revoked.is_set() => {
                    self.revoked_bye();
                    return self.flush().await;
                }
                Frame::Line(tokens) => self.command(tokens).await,
                Frame::Bad(why) => Err(Refusal::strike(format!("syntax error: {why}")).into()),
                Frame::TooLong => Err(Refusal::strike(format!(
                    "line too long (at most {} octets outside literals)",
                    parser::MAX_LINE
                ))
                .into()),
                Frame::LiteralTooLarge { name, size } => Err(self.too_large(name, size).into()),
                Frame::Fatal(why) => {
                    self.bye(None, &format!("{why}; closing"));
                    return self.flush().await;
                }
            };
            if self.settle(outcome)? == Flow::Close {
                return self.flush().await;
            }
        }
    }

    /// Literals may hold a script after login, a SASL response before.
    fn max_literal(&self) -> u64 {
        if self.account.is_some() {
            self.shared.settings.max_script_bytes
        } else {
            MAX_LITERAL_BEFORE_LOGIN
        }
    }

    /// The refusal of a command whose literal was over the limit (its octets are skipped).
    fn too_large(&self, name: Option<String>, size: u64) -> Refusal {
        let script = name.is_some_and(|n| {
            n.eq_ignore_ascii_case("PUTSCRIPT") || n.eq_ignore_ascii_case("CHECKSCRIPT")
        });
        if script && self.account.is_some() {
            let max = self.shared.settings.max_script_bytes;
            Refusal::answer(format!(
                "the script has {size} octets; scripts may have at most {max}"
            ))
            .code("QUOTA/MAXSIZE")
        } else {
            Refusal::strike(format!(
                "a literal of {size} octets is too large here (at most {})",
                self.max_literal()
            ))
        }
    }

    async fn command(&mut self, tokens: Vec<Token>) -> Outcome {
        if self.account.is_none() {
            self.commands_before_login += 1;
            if self.commands_before_login > MAX_COMMANDS_BEFORE_LOGIN {
                self.bye(None, "too many commands without logging in");
                return Ok(Flow::Close);
            }
        }
        let command = Command::parse(tokens).map_err(Refusal::strike)?;
        tracing::trace!(command = command.name(), "managesieve command");
        let logged_in = self.account.is_some();
        match command {
            Command::Capability => {
                self.capabilities();
                self.ok(None, "");
                Ok(Flow::Continue)
            }
            Command::Logout => {
                self.ok(None, "Logout completed");
                Ok(Flow::Close)
            }
            Command::Noop { tag } => {
                self.noop(tag.as_deref());
                Ok(Flow::Continue)
            }
            Command::StartTls if logged_in => {
                Err(Refusal::strike("STARTTLS is only allowed before login").into())
            }
            Command::StartTls => self.starttls().await,
            Command::Authenticate { .. } if logged_in => {
                Err(Refusal::strike("already logged in").into())
            }
            Command::Authenticate { mechanism, initial } => {
                self.authenticate(&mechanism, initial).await
            }
            Command::Unauthenticate if logged_in => self.unauthenticate(),
            other if !logged_in => Err(Refusal::strike(format!(
                "{} is only valid after login (AUTHENTICATE)",
                other.name()
            ))
            .into()),
            Command::Unauthenticate => Err(Refusal::strike("not logged in").into()),
            Command::HaveSpace { name, size } => self.havespace(&name, size).await,
            Command::PutScript { name, script } => self.putscript(&name, script).await,
            Command::ListScripts => self.listscripts().await,
            Command::SetActive { name } => self.setactive(&name).await,
            Command::GetScript { name } => self.getscript(&name).await,
            Command::DeleteScript { name } => self.deletescript(&name).await,
            Command::RenameScript { old, new } => self.renamescript(&old, &new).await,
            Command::CheckScript { script } => self.checkscript(script),
        }
    }

    /// Turns a command's outcome into the loop's next step, writing a refusal's response.
    fn settle(&mut self, outcome: Outcome) -> io::Result<Flow> {
        match outcome {
            Ok(flow) => Ok(flow),
            Err(Fail::Io(e)) => Err(e),
            Err(Fail::Refused(r)) => {
                if r.fault == Fault::Strike {
                    tracing::debug!("managesieve client error: {}", r.text);
                    self.strikes += 1;
                    if self.strikes >= self.shared.settings.max_errors {
                        self.bye(None, &format!("{}; too many errors, closing", r.text));
                        return Ok(Flow::Close);
                    }
                }
                self.no(r.code, &r.text);
                Ok(Flow::Continue)
            }
        }
    }

    /// Flushes pending responses, then waits for input, the shutdown or a revocation.
    pub async fn read_more(&mut self) -> io::Result<Input> {
        self.flush().await?;
        let mut chunk = [0u8; 8192];
        let read = tokio::select! {
            biased;
            r = self.conn.stream.read(&mut chunk) => Some(r),
            _ = self.conn.shutdown.wait() => None,
            _ = self.revoked.wait() => {
                self.revoked_bye();
                let _ = self.flush().await;
                return Ok(Input::End);
            }
        };
        let Some(read) = read else {
            self.bye(Some("TRYLATER"), "server shutting down");
            let _ = self.flush().await;
            return Ok(Input::End);
        };
        match read {
            Ok(0) => Ok(Input::End),
            Ok(n) => {
                self.input.extend(chunk.get(..n).unwrap_or_default());
                Ok(Input::Data)
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                self.bye(None, "idle for too long");
                let _ = self.flush().await;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    fn revoked_bye(&mut self) {
        self.bye(None, "the app password of this session was revoked");
    }

    /// RFC 5804 §1.7. The SASL list is empty while a password may not be sent (STARTTLS is
    /// offered then, when it can be); OWNER names the account once logged in.
    pub fn capabilities(&mut self) {
        let settings = &self.shared.settings;
        let mechanisms = if self.plaintext_ok() {
            "PLAIN LOGIN"
        } else {
            ""
        };
        let lines = [
            ("IMPLEMENTATION", Some("Mailroom".to_string())),
            ("SASL", Some(mechanisms.to_string())),
            ("SIEVE", Some(language::extensions())),
            ("MAXREDIRECTS", Some(settings.max_redirects.to_string())),
            ("VERSION", Some("1.0".to_string())),
            ("UNAUTHENTICATE", None),
        ];
        for (name, value) in lines {
            self.capability(name, value.as_deref());
        }
        if self.conn.can_starttls() && self.account.is_none() {
            self.capability("STARTTLS", None);
        }
        if let Some(account) = &self.account {
            let owner = account.address.clone();
            self.capability("OWNER", Some(&owner));
        }
    }

    fn capability(&mut self, name: &str, value: Option<&str>) {
        parser::write_string(&mut self.out, name.as_bytes());
        if let Some(value) = value {
            self.out.push(b' ');
            parser::write_string(&mut self.out, value.as_bytes());
        }
        self.out.extend_from_slice(b"\r\n");
    }

    /// RFC 5804 §2.2: the go-ahead is flushed, anything pipelined after STARTTLS thrown
    /// away, the handshake made, and the capabilities sent again. A failed handshake ends
    /// the session.
    async fn starttls(&mut self) -> Outcome {
        if self.conn.is_tls() {
            return Err(Refusal::strike("already using TLS").into());
        }
        if !self.conn.can_starttls() {
            return Err(Refusal::answer("TLS is not available on this port").into());
        }
        self.ok(None, "Begin TLS negotiation now");
        self.flush().await?;
        self.input.clear();
        self.conn.starttls().await?;
        self.capabilities();
        self.ok(None, "TLS negotiation successful");
        Ok(Flow::Continue)
    }

    /// RFC 5804 §2.13: with a tag, the response carries it back as `(TAG …)`, which a client
    /// uses to find its place in the response stream.
    fn noop(&mut self, tag: Option<&[u8]>) {
        self.out.extend_from_slice(b"OK");
        if let Some(tag) = tag {
            self.out.extend_from_slice(b" (TAG ");
            parser::write_string(&mut self.out, tag);
            self.out.push(b')');
        }
        self.out.extend_from_slice(b" \"Done\"\r\n");
    }

    /// May passwords be sent on this connection?
    pub fn plaintext_ok(&self) -> bool {
        self.conn.is_tls() || self.shared.settings.allow_plaintext
    }

    pub fn ok(&mut self, code: Option<&str>, text: &str) {
        self.response("OK", code, text);
    }

    pub fn no(&mut self, code: Option<&str>, text: &str) {
        self.response("NO", code, text);
    }

    pub fn bye(&mut self, code: Option<&str>, text: &str) {
        self.response("BYE", code, text);
    }

    fn response(&mut self, kind: &str, code: Option<&str>, text: &str) {
        self.out.extend_from_slice(kind.as_bytes());
        if let Some(code) = code {
            self.out.extend_from_slice(format!(" ({code})").as_bytes());
        }
        if !text.is_empty() {
            self.out.push(b' ');
            parser::write_string(&mut self.out, text.as_bytes());
        }
        self.out.extend_from_slice(b"\r\n");
    }

    /// The response buffer, for what other files write (script lists, literals).
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
}
