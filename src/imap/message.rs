//! Commands that change messages: STORE, COPY, MOVE (RFC 6851), EXPUNGE, UID EXPUNGE
//! (UIDPLUS, RFC 4315), CLOSE and UNSELECT.

use imap_codec::imap_types::command::StoreModifier;
use imap_codec::imap_types::flag::{Flag, StoreResponse, StoreType};
use imap_codec::imap_types::mailbox::Mailbox as WireMailbox;
use imap_codec::imap_types::sequence::SequenceSet;

use super::mailbox::split_flags;
use super::response::FlagItems;
use super::selected::Selected;
use super::seqset::{self, compact};
use super::session::{CmdResult, Reply, Session};
use super::updates::{announce_keywords, write_updates};
use crate::net::Transport;
use crate::store::{FlagOp, Flags, Mailbox};

/// The messages a set names in the selected mailbox, without those already expunged: their
/// (sequence number, UID), or the BAD reply for a sequence number past the end.
pub(super) fn targets(
    selected: &Selected,
    set: &SequenceSet,
    uid: bool,
) -> Result<Vec<(u32, u32)>, Reply> {
    let star = if uid {
        selected.max_uid()
    } else {
        selected.exists()
    };
    if star == 0 && !uid {
        return Err(Reply::bad(
            "the mailbox is empty: no message sequence numbers",
        ));
    }
    let ranges = seqset::ranges(set, star);
    match selected.resolve(&ranges, uid) {
        Ok(found) => Ok(found
            .into_iter()
            .filter(|(_, u)| !selected.is_expunged(*u))
            .collect()),
        Err(n) => Err(Reply::bad(format!(
            "message sequence number {n} is out of range (EXISTS is {})",
            selected.exists()
        ))),
    }
}

impl<T: Transport> Session<T> {
    pub(super) async fn store_flags(
        &mut self,
        set: SequenceSet,
        kind: StoreType,
        response: StoreResponse,
        flags: Vec<Flag<'static>>,
        uid: bool,
        modifiers: Vec<StoreModifier>,
    ) -> CmdResult {
        let Some(selected) = &self.selected else {
            return Ok(Reply::bad("no mailbox selected"));
        };
        if selected.read_only {
            return Ok(Reply::no("[READ-ONLY] the mailbox is read-only"));
        }
        let found = match targets(selected, &set, uid) {
            Ok(f) => f,
            Err(r) => return Ok(r),
        };
        let mut unchanged_since = None;
        for m in &modifiers {
            let StoreModifier::UnchangedSince(n) = m;
            unchanged_since = Some(*n);
            self.condstore = true;
        }
        let uids: Vec<u32> = found.iter().map(|(_, u)| *u).collect();
        let (bits, keywords) = split_flags(&flags);
        let op = match kind {
            StoreType::Replace => FlagOp::Replace,
            StoreType::Add => FlagOp::Add,
            StoreType::Remove => FlagOp::Remove,
        };
        let mailbox = selected.mailbox.clone();
        // `$Junk` and `$NotJunk` (the keywords Thunderbird and Apple Mail set when the user
        // marks a message junk or not junk) teach the spam filter too.
        let marked = |k: &str| keywords.iter().any(|w| w.eq_ignore_ascii_case(k));
        let teaches = match op {
            FlagOp::Remove => None,
            _ if marked("$Junk") => Some(true),
            _ if marked("$NotJunk") => Some(false),
            _ => None,
        };
        let outcome = self
            .imap
            .store
            .set_flags(&mailbox, &uids, op, bits, &keywords, unchanged_since)
            .await?;
        if let (Some(as_spam), Some(account)) = (teaches, &self.account) {
            self.imap.learner.teach(crate::spam::learn::Lesson {
                account_id: account.id,
                mailbox: mailbox.clone(),
                uids: outcome.changed.clone(),
                as_spam,
            });
        }
        let condstore = self.condstore;
        let Some(selected) = &mut self.selected else {
            return Ok(Reply::bad("no mailbox selected"));
        };
        if let Some(modseq) = outcome.modseq {
            selected.note_own(modseq);
        }
        // A keyword new to the mailbox is announced before the FETCH that shows it, even when
        // .SILENT shows none (the client's list of flags changed all the same).
        announce_keywords(
            &mut self.out,
            selected,
            outcome.current.iter().flat_map(|s| &s.keywords),
        );
        let silent = matches!(response, StoreResponse::Silent);
        // Looked up once per message: `STORE 1:*` on a large mailbox must stay linear.
        let changed_set: std::collections::HashSet<u32> = outcome.changed.iter().copied().collect();
        let modified_set: std::collections::HashSet<u32> =
            outcome.modified.iter().copied().collect();
        for state in &outcome.current {
            // RFC 7162 §3.2: with CONDSTORE, changed messages are reported even for .SILENT,
            // so the client learns their new MODSEQ.
            let changed = changed_set.contains(&state.uid);
            if (silent && !(condstore && changed)) || modified_set.contains(&state.uid) {
                continue;
            }
            let Some(seq) = selected.seq(state.uid) else {
                continue;
            };
            let items = FlagItems {
                // With QRESYNC every FETCH response carries the UID (RFC 7162 §3.2.4).
                uid: uid || self.qresync,
                flags: (!silent).then(|| selected.is_recent(state.uid)),
                modseq: condstore,
            };
            self.out.flag_fetch(seq, state, items);
        }
        if !outcome.modified.is_empty() {
            let numbers: Vec<u32> = if uid {
                outcome.modified.clone()
            } else {
                outcome
                    .modified
                    .iter()
                    .filter_map(|u| selected.seq(*u))
                    .collect()
            };
            return Ok(Reply::ok(format!(
                "[MODIFIED {}] conditional STORE failed for some messages",
                compact(&numbers)
            )));
        }
        Ok(Reply::ok("STORE completed"))
    }

    pub(super) async fn copy(
        &mut self,
        set: SequenceSet,
        mailbox: WireMailbox<'static>,
        uid: bool,
        remove: bool,
    ) -> CmdResult {
        let command = if remove { "MOVE" } else { "COPY" };
        let name = match self.name_arg(&mailbox) {
            Ok(n) => n,
            Err(r) => return Ok(r),
        };
        let Some(selected) = &self.selected else {
            return Ok(Reply::bad("no mailbox selected"));
        };
        if remove && selected.read_only {
            return Ok(Reply::no("[READ-ONLY] the mailbox is read-only"));
        }
        let found = match targets(selected, &set, uid) {
            Ok(f) => f,
            Err(r) => return Ok(r),
        };
        let source = selected.mailbox.clone();
        let account_id = self.account.as_ref().map_or(0, |a| a.id);
        let Some(target) = self.imap.store.mailbox(account_id, &name).await? else {
            return Ok(Reply::no("[TRYCREATE] no such mailbox"));
        };
        let uids: Vec<u32> = found.iter().map(|(_, u)| *u).collect();
        if uids.is_empty() {
            return Ok(Reply::ok(format!("{command} completed (no messages)")));
        }
        let transfer = if remove {
            self.imap
                .store
                .move_messages(&source, &uids, &target)
                .await?
        } else {
            self.imap
                .store
                .copy_messages(&source, &uids, &target)
                .await?
        };
        let from: Vec<u32> = transfer.copied.iter().map(|c| c.source_uid).collect();
        let to: Vec<u32> = transfer.copied.iter().map(|c| c.uid).collect();
        // Into Junk is spam, out of it (not to Trash) ham: learned off the request path.
        self.imap
            .learner
            .after_transfer(&source, &target, to.clone(), remove);
        let code = if transfer.copied.is_empty() {
            String::new()
        } else {
            format!(
                "[COPYUID {} {} {}] ",
                transfer.uidvalidity,
                compact(&from),
                compact(&to)
            )
        };
        if !remove {
            return Ok(Reply::ok(format!("{code}COPY completed")));
        }
        self.out.untagged(&format!("OK {}moved", code));
        let (condstore, qresync) = (self.condstore, self.qresync);
        if let Some(selected) = &mut self.selected {
            let updates = selected.expunge(&from);
            write_updates(&mut self.out, selected, &updates, condstore, qresync);
        }
        Ok(Reply::ok("MOVE completed"))
    }

    /// EXPUNGE, or UID EXPUNGE with a set: removes the messages marked \Deleted.
    pub(super) async fn expunge(&mut self, set: Option<SequenceSet>) -> CmdResult {
        let Some(selected) = &self.selected else {
            return Ok(Reply::bad("no mailbox selected"));
        };
        if selected.read_only {
            return Ok(Reply::no("[READ-ONLY] the mailbox is read-only"));
        }
        let allowed = match &set {
            Some(set) => match targets(selected, set, true) {
                Ok(found) => Some(found.into_iter().map(|(_, u)| u).collect::<Vec<_>>()),
                Err(r) => return Ok(r),
            },
            None => None,
        };
        let mailbox = selected.mailbox.clone();
        let uids = self.deleted_uids(&mailbox, allowed.as_deref()).await?;
        let gone = self.imap.store.expunge(&mailbox, &uids).await?;
        let (condstore, qresync) = (self.condstore, self.qresync);
        if let Some(selected) = &mut self.selected {
            let updates = selected.expunge(&gone);
            write_updates(&mut self.out, selected, &updates, condstore, qresync);
        }
        if qresync && !gone.is_empty() {
            // RFC 7162 §3.2.7: the tagged OK carries the new HIGHESTMODSEQ. Catching up first
            // makes it a value the client may trust: every change up to it has been reported
            // (the expunge itself, and whatever other sessions did meanwhile).
            self.dirty = true;
            self.sync(true).await?;
            if let Some(selected) = &self.selected {
                return Ok(Reply::ok(format!(
                    "[HIGHESTMODSEQ {}] EXPUNGE completed",
                    selected.highestmodseq
                )));
            }
        }
        Ok(Reply::ok("EXPUNGE completed"))
    }

    /// UIDs known to this session, marked \Deleted, optionally limited to `allowed`.
    async fn deleted_uids(
        &self,
        mailbox: &Mailbox,
        allowed: Option<&[u32]>,
    ) -> Result<Vec<u32>, crate::store::StoreError> {
        let Some(selected) = &self.selected else {
            return Ok(Vec::new());
        };
        let (states, _) = self.imap.store.flag_snapshot(mailbox).await?;
        Ok(states
            .into_iter()
            .filter(|s| s.flags.contains(Flags::DELETED))
            .map(|s| s.uid)
            .filter(|u| selected.seq(*u).is_some() && !selected.is_expunged(*u))
            .filter(|u| allowed.is_none_or(|a| a.binary_search(u).is_ok()))
            .collect())
    }

    /// CLOSE (expunging silently) or UNSELECT (not expunging).
    pub(super) async fn close(&mut self, expunge: bool) -> CmdResult {
        let Some(selected) = &self.selected else {
            return Ok(Reply::bad("no mailbox selected"));
        };
        if expunge && !selected.read_only {
            let mailbox = selected.mailbox.clone();
            let uids = self.deleted_uids(&mailbox, None).await?;
            self.imap.store.expunge(&mailbox, &uids).await?;
        }
        self.selected = None;
        Ok(Reply::ok(if expunge {
            "CLOSE completed"
        } else {
            "UNSELECT completed"
        }))
    }
}
