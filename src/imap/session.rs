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
use imap_codec::{AuthenticateDataCodec, CommandCodec};
use tokio::io::AsyncWriteExt;
use tokio::sync::broadcast;

use super::extended::{self, Extended, ListCommand, SearchReturn, Substituted};
use super::framing::{Input, READ_BUF, TooLong, fragment_limit};
use super::response::{Out, Status};
use super::selected::Selected;
use super::{Imap, capabilities, pre_auth_capabilities};
use crate::auth::AuthError;
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
}

pub struct Session<T> {
    pub(super) imap: Arc<Imap>,
    pub(super) io: T,
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
    pub(super) buf: Box<[u8]>,
    pub(super) out: Out,
    pub(super) account: Option<Account>,
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
            io,
            ip,
            shutdown,
            frag,
            line_start: 0,
            in_literal: false,
            discarding: None,
            too_long: false,
            buf: vec![0u8; READ_BUF].into_boxed_slice(),
            out: Out::new(),
            account: None,
            selected: None,
            changes: None,
            dirty: false,
            bad_in_row: 0,
            condstore: false,
            qresync: false,
            logout: false,
            esearch: None,
        }
    }

    /// Runs the session to its end.
    pub async fn run(mut self) {
        self.io.set_idle_timeout(IDLE_TIMEOUT);
        let caps = pre_auth_capabilities(&self.imap, self.io.is_tls(), self.io.can_starttls());
        self.out
            .untagged(&format!("OK [CAPABILITY {caps}] Mailroom IMAP ready"));
        if self.flush().await.is_err() {
            return;
        }
        loop {
            match self.next_message().await {
                Ok(Input::Message) => {}
                Ok(Input::Closed) => break,
                Err(e) => {
                    if e.kind() == io::ErrorKind::TimedOut {
                        self.out.untagged("BYE idle timeout");
                        let _ = tokio::time::timeout(Duration::from_secs(2), self.flush()).await;
                    }
                    tracing::debug!("imap read ended: {e}");
                    break;
                }
            }
            if std::mem::take(&mut self.too_long) {
                let tag = self.frag.decode_tag().map(|t| t.as_ref().to_string());
                self.refuse_long_line(tag, TooLong::Line);
                if self.flush().await.is_err() {
                    break;
                }
                continue;
            }
            // The extensions imap-codec cannot parse are recognised first (`extended.rs`);
            // a poisoned or truncated message is left to the fragmentizer's own errors.
            let whole =
                !(self.frag.is_message_poisoned() || self.frag.is_max_message_size_exceeded());
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
                Substituted::Empty { tag, command, uid } => {
                    let allow_expunge = uid || !matches!(command.as_str(), "FETCH" | "STORE");
                    let reply = Ok(Reply::ok(format!("{command} completed (no messages)")));
                    if self
                        .finish(&tag, allow_expunge, false, reply)
                        .await
                        .is_err()
                        || self.flush().await.is_err()
                        || self.logout
                    {
                        break;
                    }
                    continue;
                }
            };
            let ext = if whole {
                extended::recognise(rewritten.as_deref().unwrap_or(self.frag.message_bytes()))
            } else {
                Extended::Plain
            };
            let decoded = match ext {
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
                Extended::Bad { tag, text } => Err(Some((Some(tag), text))),
            };
            let result = match decoded {
                Ok(Decoded::Codec(command, esearch)) => {
                    self.esearch = esearch.map(|o| (command.tag.as_ref().to_string(), o));
                    let result = self.execute(command).await;
                    self.esearch = None;
                    result
                }
                Ok(Decoded::List(tag, list)) => self.execute_list(tag, list).await,
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
                break;
            }
            if self.bad_in_row >= MAX_BAD_IN_ROW {
                self.out.untagged("BYE too many invalid commands");
                self.logout = true;
            }
            if self.flush().await.is_err() || self.logout {
                break;
            }
        }
        let _ = self.io.shutdown().await;
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
        );
        if let CommandBody::StartTLS = command.body {
            return self.starttls(&tag).await;
        }
        let selecting = matches!(
            command.body,
            CommandBody::Select { .. } | CommandBody::Examine { .. }
        );
        let condstore_before = self.condstore;
        let result = self.dispatch(command.body).await;
        // RFC 7162 §3.1: the first CONDSTORE enabling command (FETCH MODSEQ, CHANGEDSINCE,
        // SEARCH MODSEQ, STORE UNCHANGEDSINCE, STATUS HIGHESTMODSEQ, ENABLE) in the selected
        // state is answered with the mailbox's HIGHESTMODSEQ before its tagged reply. SELECT
        // and EXAMINE always report it themselves.
        let announce = !condstore_before && self.condstore && !selecting;
        self.finish(&tag, allow_expunge, announce, result).await
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
            } => self.search(charset, criteria, uid).await,
            CommandBody::Sort {
                sort_criteria,
                charset,
                search_criteria,
                uid,
            } => {
                self.sort(sort_criteria, charset, search_criteria, uid)
                    .await
            }
            other => Ok(Reply::bad(format!("{} is not supported", other.name()))),
        }
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
            Ok(account) => {
                tracing::Span::current().record("account", account.address.as_str());
                self.changes = Some(self.imap.store.changes().subscribe());
                self.io.authenticated();
                self.account = Some(account);
                // Literals up to the message size limit are allowed from now on.
                Ok(Reply::ok(format!(
                    "[CAPABILITY {}] logged in",
                    capabilities(&self.imap)
                )))
            }
            Err(AuthError::Failed) => Ok(Reply::no("[AUTHENTICATIONFAILED] invalid credentials")),
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
