//! Mailbox commands: SELECT/EXAMINE, CREATE, DELETE, RENAME, (UN)SUBSCRIBE, LIST/LSUB,
//! STATUS, APPEND, and the read-only QUOTA commands (RFC 9208).
//!
//! Names are stored in UTF-8 and sent in modified UTF-7; the hierarchy separator is `/`.
//! LIST shows special-use attributes (RFC 6154) and `\HasChildren`/`\HasNoChildren`
//! (RFC 3348) without being asked, as both RFCs allow. SELECT/EXAMINE take the CONDSTORE and
//! QRESYNC parameters (RFC 7162).
//!
//! The extended LIST (RFC 5258, parsed in `extended.rs`): selection options SUBSCRIBED,
//! SPECIAL-USE (RFC 6154), RECURSIVEMATCH (with SUBSCRIBED; a matching unsubscribed parent of
//! a subscribed mailbox is listed with `("CHILDINFO" ("SUBSCRIBED"))`) and REMOTE (nothing
//! is remote); return options SUBSCRIBED, CHILDREN and SPECIAL-USE (the last two are always
//! shown anyway), and STATUS (RFC 5819), answered with a `* STATUS` line right after each
//! mailbox's LIST line. Subscriptions are a list of names apart from the mailboxes (RFC 3501
//! §6.3.6, `store/subscriptions.rs`): CREATE, DELETE and RENAME leave it alone, and a
//! subscribed name without a mailbox is listed as `\NonExistent` (RFC 5258 §3).

use std::collections::BTreeMap;
use std::ops::Bound;

use imap_codec::imap_types::command::SelectParameter;
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::flag::Flag;
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox as WireMailbox};
use imap_codec::imap_types::sequence::SequenceSet;
use imap_codec::imap_types::status::StatusDataItemName;

use super::extended::ListCommand;
use super::response::{FlagItems, Out};
use super::selected::Selected;
use super::session::{CmdError, CmdResult, Reply, Session};
use super::updates::write_flag_lists;
use super::{seqset, utf7};
use crate::net::Transport;
use crate::store::{Delivery, FlagState, Flags, Mailbox, SelectSummary, StoreError, Target};

const SEPARATOR: char = '/';

/// The QRESYNC parameter of SELECT/EXAMINE (RFC 7162 §3.2.5).
struct Resync {
    uidvalidity: u32,
    since: u64,
    known_uids: Option<SequenceSet>,
}

/// The UTF-8 name of a mailbox argument (see [`decode_name`]; `utf8` once IMAP4rev2 is
/// enabled), or the NO reply for one that does not decode: any astring is valid syntax, so a
/// name that is not a mailbox name is refused with NO, not BAD.
pub(super) fn mailbox_name(mailbox: &WireMailbox<'_>, utf8: bool) -> Result<String, Reply> {
    match mailbox {
        WireMailbox::Inbox => Ok("INBOX".into()),
        WireMailbox::Other(other) => decode_name(other.inner().as_ref(), utf8).ok_or_else(|| {
            Reply::no(if utf8 {
                "[CANNOT] invalid mailbox name (not UTF-8)"
            } else {
                "[CANNOT] invalid mailbox name (not modified UTF-7)"
            })
        }),
    }
}

/// A mailbox name (or pattern) from the wire in UTF-8. IMAP4rev2 names are UTF-8 as they are
/// (RFC 9051 §5.1); IMAP4rev1 names are modified UTF-7, or raw UTF-8 from clients that send
/// it. `None` when the bytes are neither.
pub(super) fn decode_name(bytes: &[u8], utf8: bool) -> Option<String> {
    if utf8 {
        std::str::from_utf8(bytes).ok().map(str::to_string)
    } else {
        utf7::decode_lenient(bytes)
    }
}

/// Writes a mailbox name as it goes on the wire: modified UTF-7, or UTF-8 once IMAP4rev2 is
/// enabled.
pub(super) fn write_name(out: &mut Out, name: &str, utf8: bool) {
    if utf8 {
        out.string(name.as_bytes());
    } else {
        out.string(utf7::encode(name).as_bytes());
    }
}

/// System flags and keywords of a flag list (STORE, APPEND); `\Recent` and unknown `\X`
/// flags are ignored.
pub(super) fn split_flags(flags: &[Flag<'_>]) -> (Flags, Vec<String>) {
    let mut bits = Flags::default();
    let mut keywords = Vec::new();
    for f in flags {
        match f {
            Flag::Seen => bits = bits.union(Flags::SEEN),
            Flag::Answered => bits = bits.union(Flags::ANSWERED),
            Flag::Flagged => bits = bits.union(Flags::FLAGGED),
            Flag::Deleted => bits = bits.union(Flags::DELETED),
            Flag::Draft => bits = bits.union(Flags::DRAFT),
            Flag::Keyword(k) => keywords.push(k.as_ref().to_string()),
            Flag::Extension(_) => {}
        }
    }
    (bits, keywords)
}

/// What a LIST or LSUB lists and shows.
#[derive(Default)]
struct Listing {
    lsub: bool,
    /// Full patterns (reference and pattern joined); a mailbox matching any is a candidate.
    patterns: Vec<String>,
    /// Selection options (RFC 5258 SUBSCRIBED, RFC 6154 SPECIAL-USE, RECURSIVEMATCH).
    subscribed_only: bool,
    special_use_only: bool,
    recursive_match: bool,
    /// Show `\Subscribed` (RFC 5258: the SUBSCRIBED selection or return option).
    show_subscribed: bool,
    /// RFC 5819 STATUS return option.
    status: Option<Vec<StatusDataItemName>>,
    /// The patterns did not decode to UTF-8 (modified UTF-7 that is not valid): they are
    /// matched against the names as sent on the wire, so `Tom &*` still finds `Tom &- Jerry`
    /// and a pattern no name can match lists nothing (RFC 3501 §6.3.8: a pattern is not a
    /// reason for BAD).
    wire: bool,
}

/// A pattern or reference from the wire in UTF-8; the empty one stays empty.
fn decode_pattern(bytes: &[u8], utf8: bool) -> Option<String> {
    decode_name(bytes, utf8).or_else(|| bytes.is_empty().then(String::new))
}

/// The full patterns of a listing (reference and pattern joined): decoded to UTF-8, or, when
/// one does not decode, all kept as sent to match the names' wire forms (`true`).
fn full_patterns(reference: &[u8], patterns: &[&[u8]], utf8: bool) -> (Vec<String>, bool) {
    let reference_text = if reference.eq_ignore_ascii_case(b"INBOX") {
        Some("INBOX".to_string())
    } else {
        decode_pattern(reference, utf8)
    };
    let decoded: Option<Vec<String>> = reference_text.and_then(|r| {
        patterns
            .iter()
            .map(|p| decode_pattern(p, utf8).map(|p| format!("{r}{p}")))
            .collect()
    });
    match decoded {
        Some(full) => (full, false),
        None => {
            let wire = patterns
                .iter()
                .map(|p| String::from_utf8_lossy(&[reference, p].concat()).into_owned())
                .collect();
            (wire, true)
        }
    }
}

/// A name LIST or LSUB may show: a mailbox, a subscribed name, or both (or, for LSUB and
/// RECURSIVEMATCH, only the parent of a subscribed name).
#[derive(Default, Clone, Copy)]
struct Candidate<'a> {
    mailbox: Option<&'a Mailbox>,
    subscribed: bool,
}

impl<'a> Candidate<'a> {
    fn mailbox(m: &'a Mailbox) -> Self {
        Candidate {
            mailbox: Some(m),
            subscribed: false,
        }
    }
}

/// RFC 9051 has no `\Recent`: the RECENT status item and search keys are not in its grammar.
pub(super) fn recent_is_not_rev2() -> Reply {
    Reply::bad("RECENT is not part of IMAP4rev2")
}

/// `a/b/c` → `a`, `a/b`.
fn ancestors(name: &str) -> impl Iterator<Item = &str> {
    name.char_indices()
        .filter(|(_, c)| *c == SEPARATOR)
        .filter_map(|(i, _)| name.get(..i))
}

/// The names under `name` in the hierarchy: those starting with `name/`, which in byte order
/// lie from `name/` up to `name0` (`0` follows `/`), so a range finds them without a scan.
fn descendants<'m, 'a>(
    names: &'m BTreeMap<&'a str, Candidate<'a>>,
    name: &str,
) -> impl Iterator<Item = (&'a str, &'m Candidate<'a>)> {
    let low = format!("{name}{SEPARATOR}");
    let high = format!("{name}0");
    names
        .range::<str, _>((
            Bound::Included(low.as_str()),
            Bound::Excluded(high.as_str()),
        ))
        .map(|(n, c)| (*n, c))
}

/// LIST wildcard matching: `*` matches anything, `%` anything but the separator. Dynamic
/// programming over (pattern, name) so no pattern can take exponential time.
#[allow(
    clippy::indexing_slicing,
    reason = "j stays within 0..=n.len() and both tables have n.len() + 1 entries"
)]
pub(super) fn wildcard_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // reach[j]: the first i pattern characters can match the first j name characters.
    let mut reach = vec![false; n.len() + 1];
    reach[0] = true;
    for &pc in &p {
        let mut next = vec![false; n.len() + 1];
        match pc {
            '*' | '%' => {
                for j in 0..=n.len() {
                    let prev_ok =
                        j > 0 && next[j - 1] && (pc == '*' || n.get(j - 1) != Some(&SEPARATOR));
                    next[j] = reach[j] || prev_ok;
                }
            }
            c => {
                for j in 1..=n.len() {
                    next[j] = reach[j - 1] && n.get(j - 1) == Some(&c);
                }
            }
        }
        reach = next;
    }
    reach[n.len()]
}

impl<T: Transport> Session<T> {
    fn account_id(&self) -> i64 {
        self.account.as_ref().map_or(0, |a| a.id)
    }

    /// Whether mailbox names travel in UTF-8 (IMAP4rev2, or UTF8=ACCEPT, RFC 6855 §3) rather
    /// than modified UTF-7.
    pub(super) fn utf8_names(&self) -> bool {
        self.rev2 || self.utf8
    }

    /// The UTF-8 name of a mailbox argument, as this session's protocol version reads it, or
    /// the NO reply for one that is not a mailbox name.
    pub(super) fn name_arg(&self, mailbox: &WireMailbox<'_>) -> Result<String, Reply> {
        mailbox_name(mailbox, self.utf8_names())
    }

    async fn find_mailbox(&self, name: &str) -> Result<Option<Mailbox>, StoreError> {
        self.imap.store.mailbox(self.account_id(), name).await
    }

    pub(super) async fn select(
        &mut self,
        mailbox: WireMailbox<'static>,
        parameters: Vec<SelectParameter>,
        read_only: bool,
    ) -> CmdResult {
        // RFC 3501 §6.3.1: a SELECT deselects the current mailbox even when it fails. A server
        // that advertises CONDSTORE or QRESYNC marks where the old mailbox's responses end
        // (RFC 7162 §3.2.11), whether or not the client enabled them.
        if self.selected.take().is_some() {
            self.out.untagged("OK [CLOSED] previous mailbox closed");
        }
        let mut resync = None;
        for p in parameters {
            match p {
                SelectParameter::CondStore => self.condstore = true,
                SelectParameter::QResync {
                    uid_validity,
                    mod_sequence_value,
                    known_uids,
                    // Only a hint for servers that forget expunges; ours keeps them all.
                    seq_match_data: _,
                } => {
                    if !self.qresync {
                        return Ok(Reply::bad("QRESYNC parameters need ENABLE QRESYNC first"));
                    }
                    resync = Some(Resync {
                        uidvalidity: uid_validity.get(),
                        since: mod_sequence_value.get(),
                        known_uids,
                    });
                }
            }
        }
        let name = match self.name_arg(&mailbox) {
            Ok(n) => n,
            Err(r) => return Ok(r),
        };
        let Some(mb) = self.find_mailbox(&name).await? else {
            return Ok(Reply::no("[NONEXISTENT] no such mailbox"));
        };
        // RFC 7162 §3.2.5.2: with another UIDVALIDITY the client's cache is worthless and the
        // rest of the parameter is ignored.
        let resync = resync.filter(|r| r.uidvalidity == mb.uidvalidity);
        // QRESYNC needs every message's flags and MODSEQ; a plain SELECT only the summary.
        let (summary, states) = if resync.is_some() {
            let (states, highest) = self.imap.store.flag_snapshot(&mb).await?;
            (SelectSummary::of_snapshot(&states, highest), states)
        } else {
            (self.imap.store.select_summary(&mb).await?, Vec::new())
        };
        let SelectSummary {
            uids,
            first_unseen,
            keywords,
            highest,
        } = summary;
        let count = uids.len();
        let max_uid = uids.last().copied().unwrap_or(0);
        let uidnext = mb.uidnext.max(max_uid.saturating_add(1));
        // \Recent (IMAP4rev1): SELECT claims the messages nobody has claimed; EXAMINE shows
        // them without taking them (RFC 3501 §6.3.2). Every UID of the snapshot is below
        // `uidnext`, so the claim covers exactly what the snapshot may show.
        let recent_from = if self.rev2 {
            u32::MAX
        } else {
            self.imap
                .store
                .claim_recent(&mb, uidnext, !read_only)
                .await?
        };
        let name = mb.name.clone();
        let mut selected = Selected::new(mb.clone(), name, read_only, recent_from, uids, highest);
        if self.rev2 {
            selected = selected.without_recent();
        }
        selected.learn_keywords(&keywords);
        write_flag_lists(&mut self.out, selected.keywords(), read_only);
        self.out.untagged(&format!("{count} EXISTS"));
        if self.rev2 {
            // RFC 9051 §6.3.2: the LIST response of the mailbox is required; RECENT and the
            // UNSEEN response code are gone.
            self.write_own_list(&mb).await?;
        } else {
            self.out
                .untagged(&format!("{} RECENT", selected.recent_count()));
            if let Some(i) = first_unseen {
                self.out
                    .untagged(&format!("OK [UNSEEN {}] first unseen", i + 1));
            }
        }
        self.out
            .untagged(&format!("OK [UIDVALIDITY {}] UIDs valid", mb.uidvalidity));
        self.out
            .untagged(&format!("OK [UIDNEXT {uidnext}] predicted next UID"));
        self.out
            .untagged(&format!("OK [HIGHESTMODSEQ {highest}] highest"));
        if let Some(resync) = resync {
            let uids: Vec<u32> = states.iter().map(|s| s.uid).collect();
            self.resync(&mb, &states, &uids, &resync).await?;
        }
        self.selected = Some(selected);
        Ok(Reply::ok(if read_only {
            "[READ-ONLY] EXAMINE completed"
        } else {
            "[READ-WRITE] SELECT completed"
        }))
    }

    /// The `* LIST` line of one mailbox, as LIST would show it (IMAP4rev2's SELECT).
    async fn write_own_list(&mut self, mb: &Mailbox) -> Result<(), StoreError> {
        let mailboxes = self.imap.store.mailboxes(self.account_id()).await?;
        let prefix = format!("{}{SEPARATOR}", mb.name);
        let mut attrs = vec![if mailboxes.iter().any(|m| m.name.starts_with(&prefix)) {
            "\\HasChildren"
        } else {
            "\\HasNoChildren"
        }];
        if let Some(su) = mb.special_use.as_deref() {
            attrs.push(su);
        }
        self.out
            .text("* LIST (")
            .text(&attrs.join(" "))
            .text(") \"/\" ");
        let utf8 = self.utf8_names();
        write_name(&mut self.out, &mb.name, utf8);
        self.out.crlf();
        Ok(())
    }

    /// What SELECT (QRESYNC …) adds (RFC 7162 §3.2.5.1): the known messages expunged since
    /// the client's MODSEQ as `VANISHED (EARLIER)`, then the flags of those changed since,
    /// with UID and MODSEQ. `states` and `uids` are the snapshot SELECT reported.
    async fn resync(
        &mut self,
        mailbox: &Mailbox,
        states: &[FlagState],
        uids: &[u32],
        resync: &Resync,
    ) -> Result<(), CmdError> {
        // Without known UIDs the client is taken to know them all (1:*).
        let known = resync
            .known_uids
            .as_ref()
            .map(|set| seqset::ranges(set, u32::MAX));
        let is_known = |uid: u32| known.as_ref().is_none_or(|k| seqset::contains(k, uid));
        let expunged = self
            .imap
            .store
            .changes_since(mailbox, resync.since)
            .await?
            .map(|c| c.expunged)
            .unwrap_or_default();
        // A UID still in the snapshot was expunged after it was read: the session reports it
        // later as a plain VANISHED, when it catches up.
        let vanished: Vec<u32> = expunged
            .into_iter()
            .filter(|&u| is_known(u) && uids.binary_search(&u).is_err())
            .collect();
        if !vanished.is_empty() {
            self.out.untagged(&format!(
                "VANISHED (EARLIER) {}",
                seqset::compact(&vanished)
            ));
        }
        for (i, state) in states.iter().enumerate() {
            if state.modseq > resync.since && is_known(state.uid) {
                let items = FlagItems {
                    uid: true,
                    flags: Some(false),
                    modseq: true,
                };
                self.out.flag_fetch(i as u32 + 1, state, items);
                self.flush_if_large().await?;
            }
        }
        Ok(())
    }

    pub(super) async fn create(&mut self, mailbox: WireMailbox<'static>) -> CmdResult {
        let name = match self.name_arg(&mailbox) {
            Ok(n) => n,
            Err(r) => return Ok(r),
        };
        // A trailing separator only says the client intends to create children (RFC 3501).
        let name = name.trim_end_matches(SEPARATOR).to_string();
        match self
            .imap
            .store
            .create_mailbox_path(self.account_id(), &name)
            .await
        {
            Ok(_) => {}
            Err(StoreError::Conflict(text)) => {
                return Ok(Reply::no(format!("[ALREADYEXISTS] {text}")));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(Reply::ok("CREATE completed"))
    }

    pub(super) async fn delete(&mut self, mailbox: WireMailbox<'static>) -> CmdResult {
        let name = match self.name_arg(&mailbox) {
            Ok(n) => n,
            Err(r) => return Ok(r),
        };
        if self.selected.as_ref().is_some_and(|s| s.name == name) {
            self.selected = None;
        }
        self.imap
            .store
            .delete_mailbox(self.account_id(), &name)
            .await?;
        Ok(Reply::ok("DELETE completed"))
    }

    pub(super) async fn rename(
        &mut self,
        from: WireMailbox<'static>,
        to: WireMailbox<'static>,
    ) -> CmdResult {
        let (from, to) = match (self.name_arg(&from), self.name_arg(&to)) {
            (Ok(f), Ok(t)) => (f, t),
            (Err(r), _) | (_, Err(r)) => return Ok(r),
        };
        match self
            .imap
            .store
            .rename_mailbox(self.account_id(), &from, &to)
            .await
        {
            Ok(()) => {}
            Err(StoreError::Conflict(text)) => {
                return Ok(Reply::no(format!("[ALREADYEXISTS] {text}")));
            }
            Err(e) => return Err(e.into()),
        }
        if let Some(s) = &mut self.selected
            && s.name == from
            && from != "INBOX"
        {
            s.name = to;
        }
        Ok(Reply::ok("RENAME completed"))
    }

    /// SUBSCRIBE and UNSUBSCRIBE change the account's list of names, not its mailboxes: a
    /// name that does not exist can be subscribed, and one whose mailbox is gone unsubscribed
    /// (RFC 3501 §6.3.6–7, RFC 9051 §6.3.7).
    pub(super) async fn subscribe(&mut self, mailbox: WireMailbox<'static>, on: bool) -> CmdResult {
        let name = match self.name_arg(&mailbox) {
            Ok(n) => n,
            Err(r) => return Ok(r),
        };
        let account_id = self.account_id();
        if on {
            self.imap.store.subscribe_name(account_id, &name).await?;
        } else {
            self.imap.store.unsubscribe_name(account_id, &name).await?;
        }
        Ok(Reply::ok(if on {
            "SUBSCRIBE completed"
        } else {
            "UNSUBSCRIBE completed"
        }))
    }

    pub(super) async fn list(
        &mut self,
        reference: WireMailbox<'static>,
        pattern: ListMailbox<'static>,
        lsub: bool,
    ) -> CmdResult {
        let reference: &[u8] = match &reference {
            WireMailbox::Inbox => b"INBOX",
            WireMailbox::Other(o) => o.inner().as_ref(),
        };
        let pattern_bytes: &[u8] = match &pattern {
            ListMailbox::Token(t) => t.as_ref(),
            ListMailbox::String(s) => s.as_ref(),
        };
        if pattern_bytes.is_empty() && !lsub {
            return Ok(self.hierarchy_delimiter());
        }
        let (patterns, wire) = full_patterns(reference, &[pattern_bytes], self.utf8_names());
        let list = Listing {
            lsub,
            patterns,
            wire,
            ..Listing::default()
        };
        self.write_list(&list).await
    }

    /// The hierarchy separator request, `LIST "" ""` (RFC 3501 §6.3.8).
    fn hierarchy_delimiter(&mut self) -> Reply {
        self.out.untagged("LIST (\\Noselect) \"/\" \"\"");
        Reply::ok("LIST completed")
    }

    /// LIST with the RFC 5258 extensions (selection options, several patterns, return
    /// options, and RFC 5819's STATUS), as `extended.rs` parsed it.
    pub(super) async fn list_extended(&mut self, cmd: ListCommand) -> CmdResult {
        // RFC 5258 §3: the empty-pattern request keeps its RFC 3501 meaning when nothing
        // selects mailboxes in another way.
        if !cmd.selection && cmd.patterns.len() == 1 && cmd.patterns.iter().all(Vec::is_empty) {
            return Ok(self.hierarchy_delimiter());
        }
        if self.rev2
            && cmd
                .return_status
                .as_ref()
                .is_some_and(|items| items.contains(&StatusDataItemName::Recent))
        {
            return Ok(recent_is_not_rev2());
        }
        let pattern_bytes: Vec<&[u8]> = cmd.patterns.iter().map(Vec::as_slice).collect();
        let (patterns, wire) = full_patterns(&cmd.reference, &pattern_bytes, self.utf8_names());
        let list = Listing {
            lsub: false,
            patterns,
            wire,
            subscribed_only: cmd.select_subscribed,
            special_use_only: cmd.select_special_use,
            recursive_match: cmd.recursive_match,
            show_subscribed: cmd.select_subscribed || cmd.return_subscribed,
            status: cmd.return_status,
        };
        self.write_list(&list).await
    }

    /// Writes the LIST (or LSUB) responses of a listing, each followed by its STATUS
    /// response when asked (RFC 5819 §2: "immediately" after the LIST line of its mailbox).
    ///
    /// The names considered are the mailboxes and, when subscriptions select (LSUB, the
    /// SUBSCRIBED selection option), the subscribed names and their parents too, existing or
    /// not: a subscribed name without a mailbox is `\NonExistent` in LIST and `\Noselect` in
    /// LSUB, and LSUB shows an unsubscribed parent of a subscribed name its pattern does not
    /// reach as `\Noselect` (RFC 3501 §6.3.9: `LSUB "" %` with only `foo/bar` subscribed).
    async fn write_list(&mut self, list: &Listing) -> CmdResult {
        let command = if list.lsub { "LSUB" } else { "LIST" };
        let account_id = self.account_id();
        let mailboxes = self.imap.store.mailboxes(account_id).await?;
        let subscribed = if list.lsub || list.subscribed_only || list.show_subscribed {
            self.imap.store.subscriptions(account_id).await?
        } else {
            Vec::new()
        };
        let mut names: BTreeMap<&str, Candidate<'_>> = mailboxes
            .iter()
            .map(|m| (m.name.as_str(), Candidate::mailbox(m)))
            .collect();
        for name in &subscribed {
            names.entry(name.as_str()).or_default().subscribed = true;
        }
        if list.lsub || list.subscribed_only {
            for name in &subscribed {
                for parent in ancestors(name) {
                    names.entry(parent).or_default();
                }
            }
        }
        let matches = |name: &str| {
            let encoded;
            let shown = if list.wire {
                encoded = utf7::encode(name);
                encoded.as_str()
            } else {
                name
            };
            list.patterns.iter().any(|full| {
                wildcard_match(full, shown)
                    || (name == "INBOX" && wildcard_match(&full.to_ascii_uppercase(), "INBOX"))
            })
        };
        let selects = |c: &Candidate<'_>| {
            if list.lsub {
                return c.subscribed;
            }
            (c.mailbox.is_some() || list.subscribed_only)
                && (!list.subscribed_only || c.subscribed)
                && (!list.special_use_only || c.mailbox.is_some_and(|m| m.special_use.is_some()))
        };
        // INBOX first, then the others in name order (as `Store::mailboxes` gives them).
        let inbox = names.get_key_value("INBOX");
        let ordered = inbox
            .into_iter()
            .chain(names.iter().filter(|(n, _)| **n != "INBOX"));
        for (&name, cand) in ordered {
            if !matches(name) {
                continue;
            }
            let mut attrs: Vec<&str> = Vec::new();
            let mut child_info = false;
            let under = || descendants(&names, name);
            if list.lsub {
                if cand.subscribed {
                    if cand.mailbox.is_none() {
                        attrs.push("\\Noselect");
                    }
                } else if under().any(|(n, c)| c.subscribed && !matches(n)) {
                    // Only a stand-in for its subscribed children: nothing about the mailbox
                    // of that name, if there is one, since it is not subscribed.
                    self.out.text("* LSUB (\\Noselect) \"/\" ");
                    let utf8 = self.utf8_names();
                    write_name(&mut self.out, name, utf8);
                    self.out.crlf();
                    self.flush_if_large().await?;
                    continue;
                } else {
                    continue;
                }
            } else {
                // RFC 5258 §3: with RECURSIVEMATCH a matching parent of a selected mailbox is
                // listed (whether or not it is selected itself) with CHILDINFO.
                child_info = list.recursive_match && under().any(|(_, c)| selects(c));
                if !selects(cand) && !child_info {
                    continue;
                }
                if cand.mailbox.is_none() {
                    attrs.push("\\NonExistent");
                }
            }
            if cand.mailbox.is_some() {
                attrs.push(if under().any(|(_, c)| c.mailbox.is_some()) {
                    "\\HasChildren"
                } else {
                    "\\HasNoChildren"
                });
            }
            if list.show_subscribed && cand.subscribed {
                attrs.push("\\Subscribed");
            }
            if let Some(su) = cand.mailbox.and_then(|m| m.special_use.as_deref()) {
                attrs.push(su);
            }
            self.out
                .text("* ")
                .text(command)
                .text(" (")
                .text(&attrs.join(" "))
                .text(") \"/\" ");
            let utf8 = self.utf8_names();
            write_name(&mut self.out, name, utf8);
            if child_info {
                self.out.text(" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
            }
            self.out.crlf();
            // RFC 5819 §2: no STATUS for a name that is not a mailbox.
            if let (Some(items), Some(mb)) = (&list.status, cand.mailbox) {
                self.write_status(mb, items).await?;
            }
            self.flush_if_large().await?;
        }
        Ok(Reply::ok(format!("{command} completed")))
    }

    pub(super) async fn status(
        &mut self,
        mailbox: WireMailbox<'static>,
        items: &[StatusDataItemName],
    ) -> CmdResult {
        let name = match self.name_arg(&mailbox) {
            Ok(n) => n,
            Err(r) => return Ok(r),
        };
        if self.rev2 && items.contains(&StatusDataItemName::Recent) {
            return Ok(recent_is_not_rev2());
        }
        let Some(mb) = self.find_mailbox(&name).await? else {
            return Ok(Reply::no("[NONEXISTENT] no such mailbox"));
        };
        self.write_status(&mb, items).await?;
        Ok(Reply::ok("STATUS completed"))
    }

    /// How many messages of a mailbox are `\Recent`: those no session has claimed, and in the
    /// selected mailbox also those recent to this session (as its FETCH FLAGS and SEARCH
    /// RECENT say).
    async fn recent_in(&self, mb: &Mailbox) -> Result<u32, StoreError> {
        match self.selected.as_ref().filter(|s| s.mailbox.id() == mb.id()) {
            Some(s) => {
                let beyond = s.max_uid().saturating_add(1);
                let unclaimed = self.imap.store.unclaimed_recent(mb, beyond).await?;
                Ok(s.recent_count().saturating_add(unclaimed))
            }
            None => self.imap.store.unclaimed_recent(mb, 0).await,
        }
    }

    /// One `* STATUS` response (STATUS, and LIST's STATUS return option).
    async fn write_status(
        &mut self,
        mb: &Mailbox,
        items: &[StatusDataItemName],
    ) -> Result<(), StoreError> {
        let counts = self.imap.store.mailbox_counts(mb).await?;
        let mut parts = Vec::new();
        for item in items {
            parts.push(match item {
                StatusDataItemName::Messages => format!("MESSAGES {}", counts.messages),
                StatusDataItemName::Recent => format!("RECENT {}", self.recent_in(mb).await?),
                StatusDataItemName::UidNext => format!("UIDNEXT {}", mb.uidnext),
                StatusDataItemName::UidValidity => format!("UIDVALIDITY {}", mb.uidvalidity),
                StatusDataItemName::Unseen => format!("UNSEEN {}", counts.unseen),
                StatusDataItemName::Deleted => format!("DELETED {}", counts.deleted),
                StatusDataItemName::DeletedStorage => {
                    format!("DELETED-STORAGE {}", counts.deleted_size)
                }
                StatusDataItemName::Size => format!("SIZE {}", counts.size),
                StatusDataItemName::HighestModSeq => {
                    self.condstore = true;
                    format!("HIGHESTMODSEQ {}", mb.highestmodseq)
                }
            });
        }
        self.out.text("* STATUS ");
        let utf8 = self.utf8_names();
        write_name(&mut self.out, &mb.name, utf8);
        self.out.text(" (").text(&parts.join(" ")).text(")").crlf();
        Ok(())
    }

    pub(super) async fn append(
        &mut self,
        mailbox: WireMailbox<'static>,
        flags: Vec<Flag<'static>>,
        date: Option<DateTime>,
        message: LiteralOrLiteral8<'static>,
    ) -> CmdResult {
        let name = match self.name_arg(&mailbox) {
            Ok(n) => n,
            Err(r) => return Ok(r),
        };
        let Some(mb) = self.find_mailbox(&name).await? else {
            return Ok(Reply::no("[TRYCREATE] no such mailbox"));
        };
        let raw: &[u8] = match &message {
            LiteralOrLiteral8::Literal(l) => l.as_ref(),
            LiteralOrLiteral8::Literal8(l) => l.data.as_ref(),
        };
        if raw.is_empty() {
            return Ok(Reply::no("[CANNOT] an empty message cannot be stored"));
        }
        if raw.len() as u64 > self.imap.max_message_size {
            return Ok(Reply::no("[TOOBIG] message too large"));
        }
        let (bits, keywords) = split_flags(&flags);
        let internal_date = date.map(|d| d.as_ref().timestamp());
        let target = Target::mailbox(&mb).with_flags(bits, keywords);
        let report = self
            .imap
            .store
            .deliver(Delivery { raw, internal_date }, &[target])
            .await?;
        if let Some((_, e)) = report.refused.into_iter().next() {
            return Err(e.into());
        }
        let Some(d) = report.delivered.first() else {
            return Ok(Reply::no("[SERVERBUG] the message was not stored"));
        };
        Ok(Reply::ok(format!(
            "[APPENDUID {} {}] APPEND completed",
            mb.uidvalidity, d.uid
        )))
    }

    /// The quota of the account: one root, `""`, for all its mailboxes. An account without a
    /// limit has no quota root at all: a QUOTA response needs at least one resource (RFC 9208's
    /// formal syntax), and `()` breaks clients (ImapFlow).
    fn write_quota(&mut self, account: &crate::store::Account) {
        if account.quota_bytes > 0 {
            self.out.untagged(&format!(
                "QUOTA \"\" (STORAGE {} {})",
                account.used_bytes.max(0) / 1024,
                account.quota_bytes / 1024
            ));
        }
    }

    async fn fresh_account(&self) -> Result<Option<crate::store::Account>, StoreError> {
        self.imap.store.account(self.account_id()).await
    }

    pub(super) async fn get_quota(&mut self, root: &[u8]) -> CmdResult {
        if !root.is_empty() {
            return Ok(Reply::no("[NONEXISTENT] no such quota root"));
        }
        let Some(account) = self.fresh_account().await? else {
            return Ok(Reply::no("[NONEXISTENT] no such account"));
        };
        if account.quota_bytes <= 0 {
            return Ok(Reply::no("[NONEXISTENT] no such quota root (no limit)"));
        }
        self.write_quota(&account);
        Ok(Reply::ok("GETQUOTA completed"))
    }

    pub(super) async fn get_quota_root(&mut self, mailbox: WireMailbox<'static>) -> CmdResult {
        let name = match self.name_arg(&mailbox) {
            Ok(n) => n,
            Err(r) => return Ok(r),
        };
        let Some(mb) = self.find_mailbox(&name).await? else {
            return Ok(Reply::no("[NONEXISTENT] no such mailbox"));
        };
        let Some(account) = self.fresh_account().await? else {
            return Ok(Reply::no("[NONEXISTENT] no such account"));
        };
        self.out.text("* QUOTAROOT ");
        let utf8 = self.utf8_names();
        write_name(&mut self.out, &mb.name, utf8);
        // No root names for a mailbox without a quota (RFC 9208 allows zero).
        if account.quota_bytes > 0 {
            self.out.text(" \"\"");
        }
        self.out.crlf();
        self.write_quota(&account);
        Ok(Reply::ok("GETQUOTAROOT completed"))
    }
}

#[cfg(test)]
mod tests {
    use super::wildcard_match;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*", "a/b/c"));
        assert!(wildcard_match("%", "INBOX"));
        assert!(!wildcard_match("%", "a/b"));
        assert!(wildcard_match("a/%", "a/b"));
        assert!(!wildcard_match("a/%", "a/b/c"));
        assert!(wildcard_match("a*c", "a/b/c"));
        assert!(wildcard_match("", ""));
        assert!(!wildcard_match("Sent", "Sent/2026"));
        // Many stars stay fast.
        assert!(!wildcard_match(&"*a".repeat(200), &"a".repeat(150)));
    }
}
