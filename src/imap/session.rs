//! One IMAP connection: reading commands, the state machine, and the commands that concern
//! the connection itself (CAPABILITY, NOOP, LOGOUT, STARTTLS, LOGIN, AUTHENTICATE, ENABLE, ID,
//! NAMESPACE, IDLE). Generic over [`Transport`] so tests can drive it over an in-memory pipe.
//!
//! Reading a command off the wire (the fragmentizer, literals, the limits) is in `framing.rs`.
//!
//! States (RFC 3501 §3): not authenticated (`account` is `None`), authenticated (`account`
//! set, `selected` `None`), selected (both set), logout (`logout`). A command sent in a state
//! where it is not valid gets `BAD` with the reason.

use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use imap_codec::decode::Decoder;
use imap_codec::fragmentizer::{DecodeMessageError, Fragmentizer};
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::auth::{AuthMechanism, AuthenticateData};
use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::extensions::enable::CapabilityEnable;
use imap_codec::imap_types::extensions::utf8::Utf8Kind;
use imap_codec::imap_types::search::SearchKey;
use imap_codec::{AuthenticateDataCodec, CommandCodec};
use tokio::io::AsyncWriteExt;
use tokio::sync::broadcast;

use super::compress::Stream;
use super::extended::{self, Extended, ListCommand, SearchReturn, Substituted};
use super::framing::{Input, ReadBuf, TooLong, fragment_limit};
use super::mailbox::recent_is_not_rev2;
use super::response::{Out, Status};
use super::selected::Selected;
use super::{Imap, capabilities, pre_auth_capabilities};
use crate::auth::AuthError;
use crate::auth::live::Revoked;
use crate::auth::sasl::{Exchange, Mechanism, Response, SaslError, Step};
use crate::budget::Claim;
use crate::net::Transport;
use crate::shutdown::Shutdown;
use crate::store::{Account, Change, StoreError};

/// Syntax errors in a row after which the connection is closed.
pub(super) const MAX_BAD_IN_ROW: u32 = 10;
/// RFC 3501 §5.4: at least 30 minutes.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Bytes of response buffered before they are written out mid-command.
pub(super) const FLUSH_AT: usize = 256 * 1024;

/// The tagged result of a command: status and text (which may start with a response code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Reply {
    pub status: Status,
    pub text: String,
}

impl Reply {
    pub fn ok(text: impl Into<String>) -> Reply {
        Reply {
            status: Status::Ok,
            text: text.into(),
        }
    }
    pub fn no(text: impl Into<String>) -> Reply {
        Reply {
            status: Status::No,
            text: text.into(),
        }
    }
    pub fn bad(text: impl Into<String>) -> Reply {
        Reply {
            status: Status::Bad,
            text: text.into(),
        }
    }
}

/// Why a command could not produce a reply.
#[derive(Debug)]
pub(super) enum CmdError {
    /// The connection failed: the session ends.
    Io(io::Error),
    /// The store failed: the client gets `NO` with the reason.
    Store(StoreError),
}

impl From<io::Error> for CmdError {
    fn from(e: io::Error) -> Self {
        CmdError::Io(e)
    }
}

impl From<StoreError> for CmdError {
    fn from(e: StoreError) -> Self {
        CmdError::Store(e)
    }
}

pub(super) type CmdResult = Result<Reply, CmdError>;

/// A command ready to run: one imap-codec decoded (with ESEARCH return options when it was
/// `SEARCH RETURN (…)`), or an extended LIST.
enum Decoded {
    Codec(Command<'static>, Option<SearchReturn>),
    List(String, ListCommand),
    Form(super::forms::Form),
    /// CANCELUPDATE (CONTEXT=SEARCH): the command's tag and the tags it names.
    CancelUpdate(String, Vec<String>),
}

/// Whether the session goes on after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Go {
    Next,
    End,
}

pub struct Session<T> {
    pub(super) imap: Arc<Imap>,
    /// The connection, compressed once COMPRESS DEFLATE succeeded (`compress.rs`).
    pub(super) io: Stream<T>,
    ip: IpAddr,
    pub(super) shutdown: Shutdown,
    pub(super) frag: Fragmentizer,
    /// The current command's share of the memory budget for mail in flight (its literals).
    pub(super) claim: Claim,
    /// Where the current line starts in the fragmentizer's message (for the line limit).
    pub(super) line_start: usize,
    pub(super) in_literal: bool,
    /// An over-long line is being skipped up to its end; holds its tag, if it had one, and
    /// which limit it passed.
    pub(super) discarding: Option<(Option<String>, TooLong)>,
    /// The message just read had a line over [`MAX_LINE`] (it arrived whole in one read).
    pub(super) too_long: bool,
    /// Where reads land (see `ReadBuf`).
    pub(super) rbuf: ReadBuf,
    pub(super) out: Out,
    pub(super) account: Option<Account>,
    /// Fires when the app password the session signed in with is revoked: the session ends.
    pub(super) revoked: Revoked,
    pub(super) selected: Option<Selected>,
    pub(super) changes: Option<broadcast::Receiver<Change>>,
    /// A change for the selected mailbox was announced and not yet read.
    pub(super) dirty: bool,
    pub(super) bad_in_row: u32,
    /// CONDSTORE was enabled (ENABLE, SELECT (CONDSTORE), or a MODSEQ-using command).
    pub(super) condstore: bool,
    /// QRESYNC was enabled (ENABLE QRESYNC only, RFC 7162 §3.2.3): expunges are reported as
    /// VANISHED from then on, and SELECT (QRESYNC …) and UID FETCH (… VANISHED) are allowed.
    pub(super) qresync: bool,
    /// IMAP4rev2 was enabled (ENABLE IMAP4rev2, RFC 9051): no `\Recent`, SEARCH answered with
    /// ESEARCH, mailbox names in UTF-8 instead of modified UTF-7.
    pub(super) rev2: bool,
    /// UTF8=ACCEPT was enabled (RFC 6855): mailbox names in UTF-8, APPEND's UTF8 data item.
    pub(super) utf8: bool,
    pub(super) logout: bool,
    /// The tag and ESEARCH return options of the command being run (`SEARCH RETURN (…)`).
    pub(super) esearch: Option<(String, SearchReturn)>,
}

impl<T: Transport> Session<T> {
    pub fn new(imap: Arc<Imap>, io: T, ip: IpAddr, shutdown: Shutdown) -> Session<T> {
        let frag = Fragmentizer::new(fragment_limit(&imap));
        Session {
            claim: imap.budget.claim(ip),
            imap,
            io: Stream::new(io),
            ip,
            shutdown,
            frag,
            line_start: 0,
            in_literal: false,
            discarding: None,
            too_long: false,
            rbuf: ReadBuf::new(),
            out: Out::new(),
            account: None,
            revoked: Revoked::never(),
            selected: None,
            changes: None,
            dirty: false,
            bad_in_row: 0,
            condstore: false,
            qresync: false,
            rev2: false,
            utf8: false,
            logout: false,
            esearch: None,
        }
    }

    /// Runs the session to its end.
    pub async fn run(mut self: Box<Self>) {
        self.io.set_idle_timeout(IDLE_TIMEOUT);
        let caps = pre_auth_capabilities(&self.imap, self.io.is_tls(), self.io.can_starttls());
        self.out
            .untagged(&format!("OK [CAPABILITY {caps}] Mailroom IMAP ready"));
        if self.flush().await.is_err() {
            return;
        }
        loop {
            match Box::pin(self.next_message()).await {
                // A command that arrived with the revocation is not run (IDLE and the read
                // above end the session on their own when it comes while they wait).
                Ok(Input::Message) if self.revoked.is_set() => {
                    self.out.untagged(super::framing::REVOKED_BYE);
                    let _ =
                        Box::pin(tokio::time::timeout(Duration::from_secs(2), self.flush())).await;
                    break;
                }
                Ok(Input::Message) => {}
                Ok(Input::Closed) => break,
                Err(e) => {
                    if e.kind() == io::ErrorKind::TimedOut {
                        self.out.untagged("BYE idle timeout");
                        let _ =
                            Box::pin(tokio::time::timeout(Duration::from_secs(2), self.flush()))
                                .await;
                    }
                    tracing::debug!("imap read ended: {e}");
                    break;
                }
            }
            // IDLE, the command a thousand sessions may sit in, runs here in the session's
            // own future (small); every other command in a boxed one (see `command`).
            if let Some(tag) = self.idle_command() {
                let result = self.idle().await;
                if Box::pin(self.finish(&tag, true, false, result))
                    .await
                    .is_err()
                    || self.flush().await.is_err()
                {
                    break;
                }
                continue;
            }
            if Box::pin(self.command()).await == Go::End {
                break;
            }
        }
        let _ = self.io.shutdown().await;
    }

    /// The tag of the message just read if it is a plain `tag IDLE` of a signed-in session
    /// (anything else, IDLE with errors included, takes the general path).
    fn idle_command(&self) -> Option<String> {
        if self.account.is_none()
            || self.too_long
            || self.frag.is_message_poisoned()
            || self.frag.is_max_message_size_exceeded()
        {
            return None;
        }
        let line = self.frag.message_bytes();
        let line = line
            .strip_suffix(b"\r\n")
            .or_else(|| line.strip_suffix(b"\n"))?;
        let (tag, word) = line.split_at(line.iter().position(|&b| b == b' ')?);
        let tag = std::str::from_utf8(tag).ok()?;
        let valid_tag = !tag.is_empty()
            && tag.bytes().all(|b| {
                b.is_ascii_graphic()
                    && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b'+')
            });
        (valid_tag && word.eq_ignore_ascii_case(b" IDLE")).then(|| tag.to_string())
    }

    /// Runs the command just read (every command but a plain IDLE), and says whether the
    /// session goes on. Called boxed, so its state (the decoded command, the forms
    /// recognised) exists only while a command runs.
    async fn command(&mut self) -> Go {
        if std::mem::take(&mut self.too_long) {
            let tag = self.frag.decode_tag().map(|t| t.as_ref().to_string());
            self.refuse_long_line(tag, TooLong::Line);
            if self.flush().await.is_err() {
                return Go::End;
            }
            return Go::Next;
        }
        // The extensions imap-codec cannot parse are recognised first (`extended.rs`);
        // a poisoned or truncated message is left to the fragmentizer's own errors.
        let whole = !(self.frag.is_message_poisoned() || self.frag.is_max_message_size_exceeded());
        if whole && let Some(tag) = unauthenticate_tag(self.frag.message_bytes()) {
            let result = Box::pin(self.unauthenticate(&tag)).await;
            if self.flush().await.is_err() || result.is_err() {
                return Go::End;
            }
            return Go::Next;
        }
        // `$` (SEARCHRES) is replaced by the saved result's set before anything else reads
        // the command; only in the selected state, where the saved result exists.
        let saved = if whole && self.selected.is_some() {
            extended::substitute_saved(self.frag.message_bytes(), || self.saved_sets())
        } else {
            Substituted::Unchanged
        };
        let rewritten = match saved {
            Substituted::Unchanged => None,
            Substituted::Rewritten(bytes) => Some(bytes),
            Substituted::TooMany { tag } => {
                let reply = Ok(Reply::no(format!(
                    "[LIMIT] at most {} $ in one command",
                    extended::MAX_SAVED_REFS
                )));
                if Box::pin(self.finish(&tag, false, false, reply))
                    .await
                    .is_err()
                    || self.flush().await.is_err()
                {
                    return Go::End;
                }
                return Go::Next;
            }
            Substituted::Empty {
                tag,
                command,
                uid,
                probe,
            } => {
                let allow_expunge = uid || !matches!(command.as_str(), "FETCH" | "STORE");
                let reply = Box::pin(self.empty_saved_set(&command, &probe)).await;
                if Box::pin(self.finish(&tag, allow_expunge, false, reply))
                    .await
                    .is_err()
                    || self.flush().await.is_err()
                    || self.logout
                {
                    return Go::End;
                }
                return Go::Next;
            }
        };
        let ext = if whole {
            extended::recognise(rewritten.as_deref().unwrap_or(self.frag.message_bytes()))
        } else {
            Extended::Plain
        };
        // MULTIAPPEND and CREATE with USE, taken apart in `forms.rs`; their plain forms
        // stay imap-codec's. A one-message APPEND with UTF8 (RFC 6855) is rewritten first.
        // (Neither has a sequence set, so a command `$` was replaced in is neither.)
        let form = (matches!(ext, Extended::Plain) && rewritten.is_none())
            .then(|| super::forms::recognise(self.frag.message_bytes()))
            .flatten();
        let utf8_append = match ext {
            Extended::Plain if form.is_none() && rewritten.is_none() => {
                append_utf8(self.frag.message_bytes())
            }
            _ => None,
        };
        let decoded = match ext {
            Extended::Plain if form.is_some() => match form {
                Some(Ok(form)) => Ok(Decoded::Form(form)),
                Some(Err((tag, text))) => Err(Some((Some(tag), text))),
                None => Err(None),
            },
            Extended::Plain if utf8_append.is_some() => {
                self.decode_append_utf8(utf8_append.unwrap_or_default())
            }
            Extended::Plain => match &rewritten {
                Some(bytes) => match CommandCodec::default().decode(bytes) {
                    Ok((&[], command)) => Ok(Decoded::Codec(command.into_static(), None)),
                    _ => Err(describe_rewritten(bytes)),
                },
                None => match self.frag.decode_message(&CommandCodec::default()) {
                    Ok(command) => Ok(Decoded::Codec(command.into_static(), None)),
                    Err(e) => Err(describe_decode_error(&e, self.frag.message_bytes())),
                },
            },
            Extended::Search {
                tag: _,
                options,
                command,
            } => match CommandCodec::default().decode(&command) {
                Ok((rest, decoded))
                    if rest.is_empty()
                        && matches!(
                            decoded.body,
                            CommandBody::Search { .. } | CommandBody::Sort { .. }
                        ) =>
                {
                    Ok(Decoded::Codec(decoded.into_static(), Some(options)))
                }
                _ => {
                    // RFC 5182 §2.1: a failed SEARCH with SAVE empties the saved result.
                    if options.save {
                        self.clear_saved();
                    }
                    Err(describe_rewritten(&command))
                }
            },
            Extended::List { tag, list } => Ok(Decoded::List(tag, list)),
            Extended::CancelUpdate { tag, tags } => Ok(Decoded::CancelUpdate(tag, tags)),
            Extended::Bad { tag, text } => Err(Some((Some(tag), text))),
        };
        let result = match decoded {
            Ok(Decoded::Codec(command, esearch)) => {
                // IMAP4rev2 answers every SEARCH with ESEARCH; without RETURN options it
                // is RETURN (ALL) (RFC 9051 §6.4.4).
                let esearch = esearch.or_else(|| {
                    (self.rev2 && matches!(command.body, CommandBody::Search { .. })).then(|| {
                        SearchReturn {
                            all: true,
                            ..SearchReturn::default()
                        }
                    })
                });
                self.esearch = esearch.map(|o| (command.tag.as_ref().to_string(), o));
                let result = Box::pin(self.execute(command)).await;
                self.esearch = None;
                result
            }
            Ok(Decoded::List(tag, list)) => Box::pin(self.execute_list(tag, list)).await,
            Ok(Decoded::CancelUpdate(tag, tags)) => {
                let reply = self.cancel_update(&tags);
                Box::pin(self.finish(&tag, true, false, Ok(reply))).await
            }
            Ok(Decoded::Form(form)) => {
                let tag = form.tag().to_string();
                let result = Box::pin(self.execute_form(form)).await;
                Box::pin(self.finish(&tag, true, false, result)).await
            }
            Err(None) => Ok(()),
            Err(Some((tag, text))) => {
                match tag {
                    Some(tag) => self.out.tagged(&tag, Status::Bad, &text),
                    None => self.out.untagged(&format!("BAD {text}")),
                };
                self.bad_in_row += 1;
                Ok(())
            }
        };
        if let Err(e) = result {
            tracing::debug!("imap session ended: {e}");
            return Go::End;
        }
        if self.bad_in_row >= MAX_BAD_IN_ROW {
            self.out.untagged("BYE too many invalid commands");
            self.logout = true;
        }
        if self.flush().await.is_err() || self.logout {
            return Go::End;
        }
        Go::Next
    }

    pub(super) async fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            let bytes = self.out.take();
            self.io.write_all(&bytes).await?;
        }
        self.io.flush().await
    }

    /// Writes the buffered responses out once they are large (mid-FETCH).
    pub(super) async fn flush_if_large(&mut self) -> io::Result<()> {
        if self.out.len() >= FLUSH_AT {
            let bytes = self.out.take();
            self.io.write_all(&bytes).await?;
        }
        Ok(())
    }

    /// APPEND with RFC 6855's `UTF8 (literal8)` data item, rewritten by [`append_utf8`] to
    /// the plain APPEND imap-codec reads; valid only after ENABLE UTF8=ACCEPT.
    fn decode_append_utf8(
        &self,
        plain: Vec<u8>,
    ) -> Result<Decoded, Option<(Option<String>, String)>> {
        let tag = plain_tag(&plain);
        if !self.utf8 {
            return Err(Some((
                tag,
                "the UTF8 data item of APPEND needs ENABLE UTF8=ACCEPT".to_string(),
            )));
        }
        match CommandCodec::default().decode(&plain) {
            Ok((rest, decoded))
                if rest.is_empty() && matches!(decoded.body, CommandBody::Append { .. }) =>
            {
                Ok(Decoded::Codec(decoded.into_static(), None))
            }
            _ => Err(Some((
                tag,
                "syntax error in the arguments of APPEND".to_string(),
            ))),
        }
    }

    /// UNAUTHENTICATE (RFC 8437), which imap-codec does not know: back to the not
    /// authenticated state on the same connection (and TLS), with everything the login gave
    /// reset as on a new connection: the account, the selected mailbox (not expunged), the
    /// enabled extensions, the change bus subscription, the literal limits.
    async fn unauthenticate(&mut self, tag: &str) -> io::Result<()> {
        let result = if self.account.is_none() {
            Ok(Reply::bad("UNAUTHENTICATE is only valid after login"))
        } else {
            self.selected = None;
            self.account = None;
            self.revoked = Revoked::never();
            self.changes = None;
            self.dirty = false;
            self.condstore = false;
            self.qresync = false;
            self.rev2 = false;
            self.utf8 = false;
            Ok(Reply::ok("UNAUTHENTICATE completed"))
        };
        self.finish(tag, true, false, result).await
    }

    /// An extended LIST (`extended.rs`): valid in the authenticated and selected states.
    async fn execute_list(&mut self, tag: String, list: ListCommand) -> io::Result<()> {
        let result = if self.account.is_some() {
            self.list_extended(list).await
        } else {
            Ok(Reply::bad("LIST is only valid after login"))
        };
        self.finish(&tag, true, false, result).await
    }

    async fn execute(&mut self, command: Command<'static>) -> io::Result<()> {
        let tag = command.tag.as_ref().to_string();
        let allow_expunge = !matches!(
            command.body,
            CommandBody::Fetch { uid: false, .. }
                | CommandBody::Store { uid: false, .. }
                | CommandBody::Search { uid: false, .. }
                | CommandBody::Sort { uid: false, .. }
                | CommandBody::Thread { uid: false, .. }
        );
        if let CommandBody::StartTLS = command.body {
            return Box::pin(self.starttls(&tag)).await;
        }
        if let CommandBody::Compress { .. } = command.body {
            return Box::pin(self.compress(&tag)).await;
        }
        let selecting = matches!(
            command.body,
            CommandBody::Select { .. } | CommandBody::Examine { .. }
        );
        let condstore_before = self.condstore;
        // Every command's future but IDLE's is boxed: a session's own future is then only as
        // large as reading a command or idling needs, which is what a thousand idle sessions
        // each hold (the largest command's state, a few KiB, would otherwise be in every one).
        let result = match command.body {
            CommandBody::Idle => self.idle().await,
            body => Box::pin(self.dispatch(body)).await,
        };
        // RFC 7162 §3.1: the first CONDSTORE enabling command (FETCH MODSEQ, CHANGEDSINCE,
        // SEARCH MODSEQ, STORE UNCHANGEDSINCE, STATUS HIGHESTMODSEQ, ENABLE) in the selected
        // state is answered with the mailbox's HIGHESTMODSEQ before its tagged reply. SELECT
        // and EXAMINE always report it themselves.
        let announce = !condstore_before && self.condstore && !selecting;
        Box::pin(self.finish(&tag, allow_expunge, announce, result)).await
    }

    /// After a command: reports what changed meanwhile, then the tagged reply.
    async fn finish(
        &mut self,
        tag: &str,
        allow_expunge: bool,
        announce_highestmodseq: bool,
        result: CmdResult,
    ) -> io::Result<()> {
        let reply = match result {
            Ok(reply) => reply,
            Err(CmdError::Io(e)) => return Err(e),
            Err(CmdError::Store(e)) => store_error(e),
        };
        // After a BYE (LOGOUT, or a deleted mailbox found by the catch-up) only the tagged
        // reply may follow.
        if !self.logout
            && let Err(e) = self.sync(allow_expunge).await
        {
            tracing::error!("imap: reading mailbox changes failed: {e}");
        }
        // After the catch-up, so the value covers every change reported, this command's too.
        // Expunges still held back (below) keep it at the MODSEQ before them.
        if announce_highestmodseq
            && !self.logout
            && let Some(selected) = &self.selected
        {
            let modseq = selected.held_modseq().unwrap_or(selected.highestmodseq);
            self.out
                .untagged(&format!("OK [HIGHESTMODSEQ {modseq}] CONDSTORE enabled"));
        }
        // RFC 7162 §3.2: a QRESYNC client that saved a MODSEQ from this command's FETCH
        // responses must not skip the expunges still held back.
        if self.qresync
            && !self.logout
            && let Some(modseq) = self.selected.as_ref().and_then(|s| s.held_modseq())
        {
            self.out.untagged(&format!(
                "OK [HIGHESTMODSEQ {modseq}] some expunges are not reported yet"
            ));
        }
        if reply.status == Status::Bad {
            self.bad_in_row += 1;
        } else {
            self.bad_in_row = 0;
        }
        self.out.tagged(tag, reply.status, &reply.text);
        Ok(())
    }

    async fn dispatch(&mut self, body: CommandBody<'static>) -> CmdResult {
        let authenticated = self.account.is_some();
        let selected = self.selected.is_some();
        match body {
            CommandBody::Capability => {
                let caps = self.capability_line();
                self.out.untagged(&format!("CAPABILITY {caps}"));
                Ok(Reply::ok("CAPABILITY completed"))
            }
            CommandBody::Noop => Ok(Reply::ok("NOOP completed")),
            CommandBody::Logout => {
                // What changed meanwhile goes out before the BYE: nothing but the tagged OK
                // may follow it (RFC 3501 §7.1.5), so `finish` does not catch up after it.
                if let Err(e) = self.sync(true).await {
                    tracing::error!("imap: reading mailbox changes failed: {e}");
                }
                self.out.untagged("BYE logging out");
                self.logout = true;
                Ok(Reply::ok("LOGOUT completed"))
            }
            CommandBody::Id { .. } => {
                self.out.untagged(&format!(
                    "ID (\"name\" \"Mailroom\" \"version\" \"{}\")",
                    env!("CARGO_PKG_VERSION")
                ));
                Ok(Reply::ok("ID completed"))
            }
            CommandBody::Enable { capabilities } => {
                if !authenticated {
                    return Ok(Reply::bad("ENABLE is only valid after login"));
                }
                let mut enabled = Vec::new();
                for cap in capabilities.as_ref() {
                    match cap {
                        CapabilityEnable::CondStore if !self.condstore => {
                            self.condstore = true;
                            enabled.push("CONDSTORE");
                        }
                        // imap-types has no variant for QRESYNC: it arrives as an "other"
                        // capability, recognised by name.
                        CapabilityEnable::Other(_)
                            if !self.qresync && cap.to_string().eq_ignore_ascii_case("QRESYNC") =>
                        {
                            // QRESYNC implies CONDSTORE (RFC 7162 §3.2.3).
                            self.qresync = true;
                            self.condstore = true;
                            enabled.push("QRESYNC");
                        }
                        // RFC 9051 §6.3.1: IMAP4rev2 rules from now on. A mailbox selected
                        // already loses its \Recent messages with the rest of rev1.
                        CapabilityEnable::Other(_)
                            if !self.rev2 && cap.to_string().eq_ignore_ascii_case("IMAP4rev2") =>
                        {
                            self.rev2 = true;
                            self.selected = self.selected.take().map(Selected::without_recent);
                            enabled.push("IMAP4rev2");
                        }
                        CapabilityEnable::Utf8(Utf8Kind::Accept) if !self.utf8 => {
                            self.utf8 = true;
                            enabled.push("UTF8=ACCEPT");
                        }
                        _ => {}
                    }
                }
                let list: String = enabled.iter().map(|c| format!(" {c}")).collect();
                self.out.untagged(&format!("ENABLED{list}"));
                Ok(Reply::ok("ENABLE completed"))
            }
            CommandBody::Login { username, password } => {
                if authenticated {
                    return Ok(Reply::bad("already logged in"));
                }
                if !self.plaintext_ok() {
                    return Ok(Reply::no(
                        "[PRIVACYREQUIRED] LOGIN is disabled until STARTTLS",
                    ));
                }
                let user = String::from_utf8_lossy(username.as_ref()).to_string();
                let pass = String::from_utf8_lossy(password.declassify().as_ref()).to_string();
                self.login(&user, &pass).await
            }
            CommandBody::Authenticate {
                mechanism,
                initial_response,
            } => {
                if authenticated {
                    return Ok(Reply::bad("already logged in"));
                }
                let initial = initial_response.map(|r| r.declassify().to_vec());
                self.authenticate(mechanism, initial).await
            }
            other if !authenticated => Ok(Reply::bad(format!(
                "{} is only valid after login",
                other.name()
            ))),
            CommandBody::Namespace => {
                self.out.untagged("NAMESPACE ((\"\" \"/\")) NIL NIL");
                Ok(Reply::ok("NAMESPACE completed"))
            }
            CommandBody::Idle => self.idle().await,
            CommandBody::Select {
                mailbox,
                parameters,
            } => self.select(mailbox, parameters, false).await,
            CommandBody::Examine {
                mailbox,
                parameters,
            } => self.select(mailbox, parameters, true).await,
            CommandBody::Create { mailbox } => self.create(mailbox).await,
            CommandBody::Delete { mailbox } => self.delete(mailbox).await,
            CommandBody::Rename { from, to } => self.rename(from, to).await,
            CommandBody::Subscribe { mailbox } => self.subscribe(mailbox, true).await,
            CommandBody::Unsubscribe { mailbox } => self.subscribe(mailbox, false).await,
            CommandBody::List {
                reference,
                mailbox_wildcard,
            } => self.list(reference, mailbox_wildcard, false).await,
            CommandBody::Lsub {
                reference,
                mailbox_wildcard,
            } => self.list(reference, mailbox_wildcard, true).await,
            CommandBody::Status {
                mailbox,
                item_names,
            } => self.status(mailbox, &item_names).await,
            CommandBody::Append {
                mailbox,
                flags,
                date,
                message,
            } => self.append(mailbox, flags, date, message).await,
            CommandBody::GetQuota { root } => self.get_quota(root.as_ref()).await,
            CommandBody::GetQuotaRoot { mailbox } => self.get_quota_root(mailbox).await,
            CommandBody::SetQuota { .. } => {
                Ok(Reply::no("[NOPERM] quotas are set by the administrator"))
            }
            CommandBody::GetMetadata {
                options,
                mailbox,
                entries,
            } => self.get_metadata(options, mailbox, entries).await,
            CommandBody::SetMetadata {
                mailbox,
                entry_values,
            } => self.set_metadata(mailbox, entry_values).await,
            other if !selected => Ok(Reply::bad(format!(
                "{} needs a selected mailbox",
                other.name()
            ))),
            CommandBody::Check => Ok(Reply::ok("CHECK completed")),
            CommandBody::Close => self.close(true).await,
            CommandBody::Unselect => self.close(false).await,
            CommandBody::Expunge => self.expunge(None).await,
            CommandBody::ExpungeUid { sequence_set } => self.expunge(Some(sequence_set)).await,
            CommandBody::Fetch {
                sequence_set,
                macro_or_item_names,
                uid,
                modifiers,
            } => {
                self.fetch(sequence_set, macro_or_item_names, uid, modifiers)
                    .await
            }
            CommandBody::Store {
                sequence_set,
                kind,
                response,
                flags,
                uid,
                modifiers,
            } => {
                self.store_flags(sequence_set, kind, response, flags, uid, modifiers)
                    .await
            }
            CommandBody::Copy {
                sequence_set,
                mailbox,
                uid,
            } => self.copy(sequence_set, mailbox, uid, false).await,
            CommandBody::Move {
                sequence_set,
                mailbox,
                uid,
            } => self.copy(sequence_set, mailbox, uid, true).await,
            CommandBody::Search {
                charset,
                criteria,
                uid,
            } => {
                if let Some(refused) = self.refuse_search(criteria.as_ref(), charset.is_some()) {
                    return Ok(refused);
                }
                self.search(charset, criteria, uid).await
            }
            CommandBody::Sort {
                sort_criteria,
                charset,
                search_criteria,
                uid,
            } => {
                if let Some(refused) = self.refuse_search(search_criteria.as_ref(), false) {
                    return Ok(refused);
                }
                self.sort(sort_criteria, charset, search_criteria, uid)
                    .await
            }
            CommandBody::Thread {
                algorithm,
                charset,
                search_criteria,
                uid,
            } => {
                if let Some(refused) = self.refuse_search(search_criteria.as_ref(), false) {
                    return Ok(refused);
                }
                self.thread(algorithm, charset, search_criteria, uid).await
            }
            other => Ok(Reply::bad(format!("{} is not supported", other.name()))),
        }
    }

    /// The refusals SEARCH, SORT and THREAD share before reading anything: RECENT after
    /// ENABLE IMAP4rev2 (RFC 9051 removed it), and for SEARCH a CHARSET after ENABLE
    /// UTF8=ACCEPT (RFC 6855 §3: the charset is UTF-8; naming one conflicts with it). A
    /// refused `SEARCH RETURN (SAVE)` empties the saved result (RFC 5182 §2.1).
    fn refuse_search(&mut self, criteria: &[SearchKey<'_>], charset: bool) -> Option<Reply> {
        let reply = if self.rev2 && criteria.iter().any(names_recent) {
            recent_is_not_rev2()
        } else if self.utf8 && charset {
            Reply::bad("no CHARSET in SEARCH after ENABLE UTF8=ACCEPT")
        } else {
            return None;
        };
        if self.esearch.take().is_some_and(|(_, options)| options.save) {
            self.clear_saved();
        }
        Some(reply)
    }

    fn capability_line(&self) -> String {
        if self.account.is_some() {
            capabilities(&self.imap)
        } else {
            pre_auth_capabilities(&self.imap, self.io.is_tls(), self.io.can_starttls())
        }
    }

    fn plaintext_ok(&self) -> bool {
        self.io.is_tls() || self.imap.allow_plaintext
    }

    async fn starttls(&mut self, tag: &str) -> io::Result<()> {
        if self.account.is_some() || !self.io.can_starttls() {
            self.out
                .tagged(tag, Status::Bad, "STARTTLS is not available now");
            self.bad_in_row += 1;
            return Ok(());
        }
        self.out
            .tagged(tag, Status::Ok, "Begin TLS negotiation now");
        self.flush().await?;
        // Anything the client sent after STARTTLS in clear text is discarded (RFC 3501 §6.2.1:
        // it could be an injected command).
        self.frag = Fragmentizer::new(fragment_limit(&self.imap));
        self.line_start = 0;
        self.in_literal = false;
        self.io.starttls().await
    }

    async fn authenticate(
        &mut self,
        mechanism: AuthMechanism<'static>,
        initial: Option<Vec<u8>>,
    ) -> CmdResult {
        if !matches!(mechanism, AuthMechanism::Plain) {
            return Ok(Reply::no(format!(
                "[CANNOT] unsupported mechanism {mechanism}; use PLAIN"
            )));
        }
        if !self.plaintext_ok() {
            return Ok(Reply::no(
                "[PRIVACYREQUIRED] AUTHENTICATE PLAIN is disabled until STARTTLS",
            ));
        }
        let initial = initial.as_deref().map(Response::Decoded);
        let (mut exchange, mut step) = Exchange::start(Mechanism::Plain, initial);
        let credentials = loop {
            match step {
                Step::Challenge(challenge) => {
                    self.out.text(&format!("+ {challenge}")).crlf();
                    self.flush().await?;
                    match self.next_message().await? {
                        Input::Message => {}
                        Input::Closed => {
                            return Err(CmdError::Io(io::ErrorKind::UnexpectedEof.into()));
                        }
                    }
                    // imap-codec decodes the base64 and recognises `*`.
                    step = match self.frag.decode_message(&AuthenticateDataCodec::default()) {
                        Ok(AuthenticateData::Continue(data)) => {
                            exchange.respond(Response::Decoded(data.declassify()))
                        }
                        Ok(AuthenticateData::Cancel) => exchange.respond(Response::Cancel),
                        Err(_) => return Ok(Reply::bad("invalid base64 in AUTHENTICATE response")),
                    };
                }
                Step::Done(credentials) => break credentials,
                Step::Failed(SaslError::Cancelled) => {
                    return Ok(Reply::bad("AUTHENTICATE cancelled"));
                }
                Step::Failed(e) => return Ok(Reply::bad(format!("invalid PLAIN message: {e}"))),
            }
        };
        if credentials.authzid.is_some() {
            return Ok(Reply::no(
                "[AUTHORIZATIONFAILED] acting as another user is not allowed",
            ));
        }
        self.login(&credentials.username, &credentials.password)
            .await
    }

    async fn login(&mut self, username: &str, password: &str) -> CmdResult {
        match self
            .imap
            .auth
            .login("imap", self.ip, username, password)
            .await
        {
            Ok(login) => {
                let account = login.account;
                tracing::Span::current().record("account", account.address.as_str());
                self.changes = Some(self.imap.store.changes().subscribe());
                self.io.authenticated();
                self.account = Some(account);
                self.revoked = login.revoked;
                // Literals up to the message size limit are allowed from now on.
                Ok(Reply::ok(format!(
                    "[CAPABILITY {}] logged in",
                    capabilities(&self.imap)
                )))
            }
            Err(AuthError::Failed) => Ok(Reply::no("[AUTHENTICATIONFAILED] invalid credentials")),
            Err(AuthError::AppPasswordRequired) => Ok(Reply::no(
                "[AUTHENTICATIONFAILED] two-factor sign-in is on for this account: sign in with \
                 an app password (webmail: Settings, App passwords)",
            )),
            Err(AuthError::Locked(secs)) => Ok(Reply::no(format!(
                "[UNAVAILABLE] too many failed logins; try again in {secs} seconds"
            ))),
            Err(AuthError::Internal(e)) => {
                tracing::error!("imap login failed: {e}");
                Ok(Reply::no("[UNAVAILABLE] authentication is unavailable"))
            }
        }
    }
}

/// Longest literal8 the UTF8 data item of APPEND is looked for behind (the fragmentizer
/// has already bounded the message by the message size limit).
const MAX_LENGTH_DIGITS: usize = 10;

/// A complete `tag APPEND mailbox [flags] [date] UTF8 (~{n}\r\n<n octets>)\r\n` (RFC 6855
/// §4) rewritten as `tag APPEND mailbox [flags] [date] {n}\r\n<n octets>\r\n`; `None` for
/// anything else. The data item must be the last thing in the command, its literal ending
/// exactly before the closing `)`, so octets inside the message cannot pass for it (the
/// first position where all of this holds is taken).
fn append_utf8(message: &[u8]) -> Option<Vec<u8>> {
    const MARK: &[u8] = b" UTF8 (~{";
    let mut words = message.splitn(3, |&b| b == b' ');
    let (_, name) = (words.next()?, words.next()?);
    if !name.eq_ignore_ascii_case(b"APPEND") {
        return None;
    }
    let body = message.strip_suffix(b")\r\n")?;
    let mut from = 0;
    while let Some(found) = message
        .get(from..)?
        .windows(MARK.len())
        .position(|w| w.eq_ignore_ascii_case(MARK))
    {
        let at = from + found;
        let digits_at = at + MARK.len();
        let rest = message.get(digits_at..)?;
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if (1..=MAX_LENGTH_DIGITS).contains(&digits) {
            let after = rest.get(digits..)?;
            let close = if after.starts_with(b"+}\r\n") {
                Some(4)
            } else if after.starts_with(b"}\r\n") {
                Some(3)
            } else {
                None
            };
            let length: Option<usize> = std::str::from_utf8(rest.get(..digits)?)
                .ok()
                .and_then(|d| d.parse().ok());
            if let (Some(close), Some(length)) = (close, length) {
                let data_at = digits_at + digits + close;
                if data_at.checked_add(length) == Some(body.len()) {
                    let mut plain = Vec::with_capacity(message.len());
                    plain.extend_from_slice(message.get(..at)?);
                    plain.extend_from_slice(format!(" {{{length}}}\r\n").as_bytes());
                    plain.extend_from_slice(body.get(data_at..)?);
                    plain.extend_from_slice(b"\r\n");
                    return Some(plain);
                }
            }
        }
        from = at + 1;
    }
    None
}

/// The tag a command starts with, if it is a valid one.
fn plain_tag(message: &[u8]) -> Option<String> {
    let end = message.iter().position(|&b| b == b' ')?;
    imap_codec::imap_types::core::Tag::try_from(message.get(..end)?)
        .ok()
        .map(|t| t.as_ref().to_string())
}

/// The tag of a complete `tag UNAUTHENTICATE` command (RFC 8437; it has no arguments).
fn unauthenticate_tag(message: &[u8]) -> Option<String> {
    let line = message
        .strip_suffix(b"\r\n")
        .or_else(|| message.strip_suffix(b"\n"))?;
    let space = line.iter().position(|&b| b == b' ')?;
    let (tag, name) = (line.get(..space)?, line.get(space + 1..)?);
    if !name.eq_ignore_ascii_case(b"UNAUTHENTICATE") {
        return None;
    }
    imap_codec::imap_types::core::Tag::try_from(tag)
        .ok()
        .map(|t| t.as_ref().to_string())
}

/// Whether a search key uses `\Recent` (RECENT, NEW, OLD), which RFC 9051 removed.
fn names_recent(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::Recent | SearchKey::New | SearchKey::Old => true,
        SearchKey::And(keys) => keys.as_ref().iter().any(names_recent),
        SearchKey::Or(a, b) => names_recent(a) || names_recent(b),
        SearchKey::Not(k) => names_recent(k),
        _ => false,
    }
}

/// Maps a store failure to the client's reply. Our faults are logged with their cause and
/// shown without internals.
pub(super) fn store_error(e: StoreError) -> Reply {
    match e {
        StoreError::NotFound(what) => Reply::no(format!("[NONEXISTENT] {what} does not exist")),
        StoreError::Conflict(text) => Reply::no(format!("[CANNOT] {text}")),
        StoreError::Invalid(text) => Reply::no(format!("[CANNOT] {text}")),
        StoreError::QuotaExceeded { .. } => {
            Reply::no("[OVERQUOTA] the mailbox is full (quota exceeded)")
        }
        // IMAP has no code for a full disk (OVERQUOTA is the user's quota); UNAVAILABLE says
        // the failure is temporary (RFC 5530).
        StoreError::StorageFull(why) => {
            tracing::warn!("imap: refused for lack of storage: {why}");
            Reply::no("[UNAVAILABLE] the server is short of storage; try again later")
        }
        StoreError::Unavailable(why) => {
            tracing::warn!("imap: store unavailable: {why}");
            Reply::no("[UNAVAILABLE] the server is busy; try again later")
        }
        e @ (StoreError::Db(_) | StoreError::Migrate(_) | StoreError::Corrupt(_)) => {
            tracing::error!("imap: store failure: {e}");
            Reply::no("[SERVERBUG] internal error; please try again later")
        }
    }
}

/// Commands imap-codec knows, to tell "unknown command" from "bad arguments".
const KNOWN: &[&str] = &[
    "CAPABILITY",
    "NOOP",
    "LOGOUT",
    "STARTTLS",
    "AUTHENTICATE",
    "LOGIN",
    "SELECT",
    "EXAMINE",
    "CREATE",
    "DELETE",
    "RENAME",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "LIST",
    "LSUB",
    "STATUS",
    "APPEND",
    "CHECK",
    "CLOSE",
    "EXPUNGE",
    "SEARCH",
    "FETCH",
    "STORE",
    "COPY",
    "MOVE",
    "UID",
    "IDLE",
    "ENABLE",
    "UNSELECT",
    "NAMESPACE",
    "ID",
    "GETQUOTA",
    "GETQUOTAROOT",
    "SETQUOTA",
    "SORT",
    "THREAD",
    "COMPRESS",
    "GETMETADATA",
    "SETMETADATA",
];

/// The tag (when there is a valid one) and a clear text for a message that did not decode;
/// `None` when the client was already answered (a refused literal).
fn describe_decode_error(
    e: &DecodeMessageError<'_, CommandCodec>,
    bytes: &[u8],
) -> Option<(Option<String>, String)> {
    let mut words = bytes
        .split(|&b| b == b' ' || b == b'\r' || b == b'\n')
        .filter(|w| !w.is_empty());
    let tag = words.next().and_then(|t| {
        imap_codec::imap_types::core::Tag::try_from(t)
            .ok()
            .map(|t| t.as_ref().to_string())
    });
    let mut name = words
        .next()
        .map(|w| String::from_utf8_lossy(w).to_ascii_uppercase())
        .unwrap_or_default();
    if name == "UID"
        && let Some(sub) = words.next()
    {
        name = format!("UID {}", String::from_utf8_lossy(sub).to_ascii_uppercase());
    }
    let text = match e {
        DecodeMessageError::MessagePoisoned { .. } => return None,
        DecodeMessageError::MessageTooLong { .. } => "[TOOBIG] command too long".to_string(),
        _ if tag.is_none() => "invalid or missing tag".to_string(),
        _ if name.is_empty() => "missing command".to_string(),
        _ if !KNOWN.contains(&name.split(' ').next().unwrap_or_default()) => {
            format!("unknown command {}", super::response::sanitize(&name))
        }
        _ => format!(
            "syntax error in the arguments of {}",
            super::response::sanitize(&name)
        ),
    };
    Some((tag, text))
}

impl<T: Transport> Session<T> {
    /// A FETCH, STORE, COPY, MOVE or UID EXPUNGE whose `$` stands for no message (SEARCHRES):
    /// it acts on none, but is refused as it would be with messages: STORE, MOVE and UID
    /// EXPUNGE in a read-only mailbox, COPY and MOVE to a mailbox that does not exist.
    /// `probe` is the command with `$` replaced by `1`, so imap-codec reads its arguments.
    async fn empty_saved_set(&mut self, command: &str, probe: &[u8]) -> CmdResult {
        let read_only = self.selected.as_ref().is_some_and(|s| s.read_only);
        let refused = || Ok(Reply::no("[READ-ONLY] the mailbox is read-only"));
        let target = match CommandCodec::default().decode(probe) {
            Ok((&[], decoded)) => match decoded.body {
                CommandBody::Copy { mailbox, .. } => Some(mailbox.into_static()),
                CommandBody::Move { .. } if read_only => return refused(),
                CommandBody::Move { mailbox, .. } => Some(mailbox.into_static()),
                CommandBody::Store { .. } | CommandBody::ExpungeUid { .. } if read_only => {
                    return refused();
                }
                _ => None,
            },
            _ => {
                return Ok(Reply::bad(format!(
                    "syntax error in the arguments of {}",
                    super::response::sanitize(command)
                )));
            }
        };
        if let Some(mailbox) = target {
            let name = match self.name_arg(&mailbox) {
                Ok(n) => n,
                Err(r) => return Ok(r),
            };
            let account_id = self.account.as_ref().map_or(0, |a| a.id);
            if self.imap.store.mailbox(account_id, &name).await?.is_none() {
                return Ok(Reply::no("[TRYCREATE] no such mailbox"));
            }
        }
        Ok(Reply::ok(format!("{command} completed (no messages)")))
    }
}

/// The BAD for a command with `$` replaced (SEARCHRES) that imap-codec then refused: its tag
/// and name, as [`describe_decode_error`] says it.
fn describe_rewritten(bytes: &[u8]) -> Option<(Option<String>, String)> {
    let mut words = bytes.split(|&b| b == b' ' || b == b'\r' || b == b'\n');
    let tag = words
        .next()
        .map(|t| String::from_utf8_lossy(t).into_owned());
    let mut name = words
        .next()
        .map(|w| String::from_utf8_lossy(w).to_ascii_uppercase())
        .unwrap_or_default();
    if name == "UID"
        && let Some(sub) = words.next()
    {
        name = format!("UID {}", String::from_utf8_lossy(sub).to_ascii_uppercase());
    }
    Some((
        tag,
        format!(
            "syntax error in the arguments of {}",
            super::response::sanitize(&name)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::{append_utf8, unauthenticate_tag};

    #[test]
    fn append_utf8_data_item() {
        let plain = |m: &[u8]| append_utf8(m).map(|p| String::from_utf8_lossy(&p).into_owned());
        assert_eq!(
            plain(b"a APPEND INBOX (\\Seen) UTF8 (~{5+}\r\nHello)\r\n").as_deref(),
            Some("a APPEND INBOX (\\Seen) {5}\r\nHello\r\n")
        );
        assert_eq!(
            plain(b"a append {2}\r\nxy utf8 (~{3}\r\na)b)\r\n").as_deref(),
            Some("a append {2}\r\nxy {3}\r\na)b\r\n")
        );
        // The data's own octets cannot pass for the data item: the length must end there.
        assert_eq!(
            plain(b"a APPEND INBOX UTF8 (~{14}\r\n UTF8 (~{1}\r\nx)\r\n").as_deref(),
            Some("a APPEND INBOX {14}\r\n UTF8 (~{1}\r\nx\r\n")
        );
        for other in [
            &b"a APPEND INBOX {5}\r\nHello\r\n"[..],
            b"a APPEND INBOX UTF8 (~{3}\r\nHello)\r\n",
            b"a APPEND INBOX UTF8 (~{}\r\n)\r\n",
            b"a APPEND INBOX UTF8 (~{99999999999}\r\nx)\r\n",
            b"a NOOP UTF8 (~{1}\r\nx)\r\n",
            b"a APPEND INBOX UTF8 (~{1}\r\nx)",
        ] {
            assert_eq!(plain(other), None, "{}", String::from_utf8_lossy(other));
        }
    }

    #[test]
    fn unauthenticate_is_recognised() {
        assert_eq!(
            unauthenticate_tag(b"x1 Unauthenticate\r\n").as_deref(),
            Some("x1")
        );
        assert_eq!(unauthenticate_tag(b"x1 UNAUTHENTICATE now\r\n"), None);
        assert_eq!(unauthenticate_tag(b"* UNAUTHENTICATE\r\n"), None);
        assert_eq!(unauthenticate_tag(b"x1 NOOP\r\n"), None);
    }
}
