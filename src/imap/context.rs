//! CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 §4): `SEARCH`/`SORT RETURN (UPDATE …)` keeps a
//! result up to date. The session remembers the criteria and the result the client holds
//! (UIDs in result order); whenever it catches up with the store (`updates.rs` `sync`, after
//! every command and during IDLE) it tells the client how each result changed:
//!
//! - `* ESEARCH (TAG "t") [UID] REMOVEFROM (…)` for expunged messages, written before the
//!   `EXPUNGE` responses so sequence numbers still name them;
//! - then, after `EXISTS` and the flag changes, the messages that changed (new ones, new
//!   flags) are searched again and the difference sent: `REMOVEFROM` for those that no longer
//!   match and `ADDTO` for new matches. Nothing else can change a match (the other keys are
//!   fixed properties of a message), so the cost follows the change, not the mailbox; a SORT
//!   result that gains messages reads its own rows again to place them.
//!
//! Positions: an unsorted SEARCH result has none, so its updates carry position 0 and one set
//! (as Dovecot does). A SORT result names each message's position: `REMOVEFROM` lists them
//! from the last position to the first, `ADDTO` by ascending final position, so each pair is
//! right whether the client applies the pairs one after another or all against the list it
//! had. Sort keys never change (dates, size, subject, addresses), so a kept message never
//! moves.
//!
//! Bounds: at most [`MAX_CONTEXTS`] kept results per session; one more, or criteria with
//! message sequence numbers (which renumber as messages go, so the result could not be kept
//! meaningfully) or BODY/TEXT/HEADER keys (looked up over the whole mailbox, so each change
//! would cost the mailbox), gets `* NO [NOUPDATE "t"]` and an ordinary answer (RFC 5267 §4.3 lets a
//! server decline). Each catch-up searches the changed messages once per kept result; a SORT
//! result that gains messages reads its rows again to place them. Results end with CANCELUPDATE or when the mailbox is closed (they live in
//! `Selected`).

use std::collections::{HashMap, HashSet};

use imap_codec::imap_types::core::Vec1;
use imap_codec::imap_types::extensions::sort::SortCriterion;
use imap_codec::imap_types::search::SearchKey;

use super::extended::SearchReturn;
use super::search::sorted;
use super::selected::Update;
use super::seqset;
use super::session::{Reply, Session};
use crate::net::Transport;
use crate::store::SearchRow;

/// Most results one session keeps up to date.
pub const MAX_CONTEXTS: usize = 8;

/// One kept result.
#[derive(Debug, Clone)]
pub struct SearchContext {
    /// The tag of the SEARCH or SORT that asked for updates.
    pub tag: String,
    /// UID SEARCH/SORT: updates name UIDs, otherwise sequence numbers.
    pub uid: bool,
    /// SORT's criteria; `None` for SEARCH (ascending, no positions).
    pub sort: Option<Vec<SortCriterion>>,
    pub criteria: Vec1<SearchKey<'static>>,
    /// The result as the client holds it: UIDs in result order.
    pub result: Vec<u32>,
}

/// Whether any key in `key` (nested in AND, OR, NOT) is one `is` picks.
fn any_key(key: &SearchKey<'_>, is: &dyn Fn(&SearchKey<'_>) -> bool) -> bool {
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().any(|k| any_key(k, is)),
        SearchKey::Or(a, b) => any_key(a, is) || any_key(b, is),
        SearchKey::Not(k) => any_key(k, is),
        k => is(k),
    }
}

/// Whether a search key names messages by sequence number.
fn names_sequence_numbers(key: &SearchKey<'_>) -> bool {
    any_key(key, &|k| matches!(k, SearchKey::SequenceSet(_)))
}

/// Whether a search key reads message text or raw headers: those are looked up over the whole
/// mailbox (the trigram index, the header blocks), so keeping such a result current would cost
/// the mailbox at every change, not the change.
fn reads_text(key: &SearchKey<'_>) -> bool {
    any_key(key, &|k| {
        matches!(
            k,
            SearchKey::Body(_) | SearchKey::Text(_) | SearchKey::Header(..)
        )
    })
}

impl<T: Transport> Session<T> {
    /// The refusal of an UPDATE before the search runs: a tag that already has a kept result
    /// (RFC 5267 §4.3 needs the tag to tell results apart).
    pub(super) fn refuse_update(
        &mut self,
        esearch: Option<&(String, SearchReturn)>,
    ) -> Option<Reply> {
        let (tag, options) = esearch?;
        let selected = self.selected.as_ref()?;
        if !options.update || !selected.contexts.iter().any(|c| &c.tag == tag) {
            return None;
        }
        if options.save {
            self.clear_saved();
        }
        Some(Reply::bad(format!(
            "the tag {tag} already has a result kept up to date; use another tag"
        )))
    }

    /// Keeps a result after SEARCH/SORT RETURN (UPDATE), or says why not with NOUPDATE.
    pub(super) fn keep_context(
        &mut self,
        tag: String,
        uid: bool,
        sort: Option<Vec<SortCriterion>>,
        criteria: Option<Vec1<SearchKey<'static>>>,
        found: &[(u32, SearchRow)],
    ) {
        let Some(criteria) = criteria else {
            return;
        };
        let Some(selected) = self.selected.as_mut() else {
            return;
        };
        let refusal = if selected.contexts.len() >= MAX_CONTEXTS {
            Some(format!(
                "at most {MAX_CONTEXTS} results are kept up to date"
            ))
        } else if criteria.as_ref().iter().any(names_sequence_numbers) {
            Some("a result chosen by sequence numbers is not kept up to date".to_string())
        } else if criteria.as_ref().iter().any(reads_text) {
            Some("a result chosen by BODY, TEXT or HEADER is not kept up to date".to_string())
        } else {
            None
        };
        if let Some(text) = refusal {
            self.out
                .text("* NO [NOUPDATE ")
                .string(tag.as_bytes())
                .text("] ")
                .text(&text)
                .crlf();
            return;
        }
        selected.contexts.push(SearchContext {
            tag,
            uid,
            sort,
            criteria,
            result: found.iter().map(|(_, row)| row.uid).collect(),
        });
    }

    /// CANCELUPDATE (RFC 5267 §4.3): ends the updates of each tag; NO when one is unknown
    /// (the ones before it stay cancelled, as in Dovecot).
    pub(super) fn cancel_update(&mut self, tags: &[String]) -> Reply {
        let Some(selected) = self.selected.as_mut() else {
            return Reply::bad("CANCELUPDATE needs a selected mailbox");
        };
        for tag in tags {
            let before = selected.contexts.len();
            selected.contexts.retain(|c| &c.tag != tag);
            if selected.contexts.len() == before {
                return Reply::no(format!("no result of tag {tag} is kept up to date"));
            }
        }
        Reply::ok("CANCELUPDATE completed")
    }

    /// Before the catch-up's EXPUNGE responses: `REMOVEFROM` for the expunged messages in
    /// each kept result, those reported now (`updates`) and those held back (still numbered).
    pub(super) fn contexts_expunged(&mut self, updates: &[Update]) {
        let Some(selected) = self.selected.as_mut() else {
            return;
        };
        if selected.contexts.is_empty() {
            return;
        }
        // Reported expunges come highest sequence number first, so each one's number is
        // the one the client knows now.
        let reported: HashMap<u32, u32> = updates
            .iter()
            .filter_map(|u| match u {
                Update::Expunge { seq, uid } => Some((*uid, *seq)),
                _ => None,
            })
            .collect();
        let mut contexts = std::mem::take(&mut selected.contexts);
        for context in &mut contexts {
            let mut removed = Vec::new();
            for (i, &uid) in context.result.iter().enumerate() {
                let seq = match reported.get(&uid) {
                    Some(&seq) => seq,
                    None if selected.is_expunged(uid) => selected.seq(uid).unwrap_or(0),
                    None => continue,
                };
                removed.push((i, uid, seq));
            }
            if removed.is_empty() {
                continue;
            }
            let gone: HashSet<u32> = removed.iter().map(|&(_, uid, _)| uid).collect();
            write_removed(&mut self.out, context, &removed);
            context.result.retain(|uid| !gone.contains(uid));
        }
        selected.contexts = contexts;
    }

    /// After the catch-up's responses: looks again at the messages that changed (`changed`:
    /// new or with new flags, ascending UIDs) and sends how each kept result changed
    /// (`REMOVEFROM`, then `ADDTO`). A SEARCH result costs one search over the changed
    /// messages; a SORT result that gains messages is sorted again to place them.
    pub(super) async fn contexts_refresh(&mut self, changed: &[u32]) {
        let Some(selected) = self.selected.as_mut() else {
            return;
        };
        if selected.contexts.is_empty() || changed.is_empty() {
            return;
        }
        let mut contexts = std::mem::take(&mut selected.contexts);
        for context in &mut contexts {
            if let Err(e) = self.refresh(context, changed).await {
                // The next catch-up looks again; the client keeps the result it has.
                tracing::warn!("imap: updating a kept search result failed: {e}");
            }
        }
        if let Some(selected) = self.selected.as_mut() {
            selected.contexts = contexts;
        }
    }

    async fn refresh(
        &mut self,
        context: &mut SearchContext,
        changed: &[u32],
    ) -> Result<(), crate::store::StoreError> {
        let (addresses, subject) = context
            .sort
            .as_deref()
            .map(super::search::sort_needs)
            .unwrap_or_default();
        let criteria = context.criteria.clone();
        let (matching, _) = self
            .matches(criteria.clone(), addresses, subject, Some(changed))
            .await?;
        let matching: HashMap<u32, u32> =
            matching.iter().map(|(seq, row)| (row.uid, *seq)).collect();
        let Some(selected) = self.selected.as_ref() else {
            return Ok(());
        };
        let held: HashSet<u32> = context.result.iter().copied().collect();
        let removed: Vec<(usize, u32, u32)> = context
            .result
            .iter()
            .enumerate()
            .filter(|(_, uid)| changed.binary_search(uid).is_ok() && !matching.contains_key(uid))
            .map(|(i, &uid)| (i, uid, selected.seq(uid).unwrap_or(0)))
            .collect();
        if !removed.is_empty() {
            write_removed(&mut self.out, context, &removed);
            let gone: HashSet<u32> = removed.iter().map(|&(_, uid, _)| uid).collect();
            context.result.retain(|uid| !gone.contains(uid));
        }
        let mut new: Vec<u32> = matching
            .keys()
            .copied()
            .filter(|uid| !held.contains(uid))
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        new.sort_unstable();
        let added: Vec<(usize, u32, u32)> = match &context.sort {
            None => {
                // Ascending UIDs, the new ones above or among the old ones.
                context.result.extend(&new);
                context.result.sort_unstable();
                new.iter()
                    .map(|uid| (0, *uid, matching.get(uid).copied().unwrap_or(0)))
                    .collect()
            }
            Some(order) => {
                let mut all: Vec<u32> = context.result.iter().chain(&new).copied().collect();
                all.sort_unstable();
                let (rows, _) = self
                    .matches(criteria, addresses, subject, Some(&all))
                    .await?;
                let rows = sorted(order, rows);
                context.result = rows.iter().map(|(_, row)| row.uid).collect();
                rows.iter()
                    .enumerate()
                    .filter(|(_, (_, row))| new.binary_search(&row.uid).is_ok())
                    .map(|(i, (seq, row))| (i, row.uid, *seq))
                    .collect()
            }
        };
        if !added.is_empty() {
            write_added(&mut self.out, context, &added);
        }
        Ok(())
    }
}

/// `REMOVEFROM` for `removed` = (position in the old result, UID, sequence number), by
/// ascending position: written last position first, so each position is right before and
/// after the ones already taken out.
fn write_removed(
    out: &mut super::response::Out,
    context: &SearchContext,
    removed: &[(usize, u32, u32)],
) {
    let last_first: Vec<_> = removed.iter().rev().copied().collect();
    write_change(out, context, "REMOVEFROM", &last_first);
}

/// `ADDTO` for `added` = (position in the new result, UID, sequence number), ascending.
fn write_added(
    out: &mut super::response::Out,
    context: &SearchContext,
    added: &[(usize, u32, u32)],
) {
    write_change(out, context, "ADDTO", added);
}

/// `* ESEARCH (TAG "t") [UID] word (…)`: for SEARCH one set at position 0, for SORT a
/// position and a number per message, in the order given.
fn write_change(
    out: &mut super::response::Out,
    context: &SearchContext,
    word: &str,
    items: &[(usize, u32, u32)],
) {
    out.text("* ESEARCH (TAG ")
        .string(context.tag.as_bytes())
        .text(")");
    if context.uid {
        out.text(" UID");
    }
    out.text(" ").text(word).text(" (");
    let number = |&(_, uid, seq): &(usize, u32, u32)| if context.uid { uid } else { seq };
    if context.sort.is_none() {
        let mut numbers: Vec<u32> = items.iter().map(number).collect();
        numbers.sort_unstable();
        out.text("0 ").text(&seqset::compact(&numbers));
    } else {
        for (k, item) in items.iter().enumerate() {
            if k > 0 {
                out.text(" ");
            }
            out.num(item.0 + 1).text(" ").num(number(item));
        }
    }
    out.text(")").crlf();
}

#[cfg(test)]
mod tests {
    use super::*;
    use imap_codec::imap_types::sequence::SequenceSet;

    #[test]
    fn sequence_numbers_are_found_anywhere() {
        let set = SearchKey::SequenceSet(SequenceSet::try_from("1:3").unwrap());
        let uid = SearchKey::Uid(SequenceSet::try_from("1:3").unwrap());
        assert!(names_sequence_numbers(&set));
        assert!(!names_sequence_numbers(&uid));
        let nested = SearchKey::Not(Box::new(SearchKey::Or(
            Box::new(SearchKey::Seen),
            Box::new(set),
        )));
        assert!(names_sequence_numbers(&nested));
        let body = SearchKey::Not(Box::new(SearchKey::Body(
            imap_codec::imap_types::core::AString::try_from("x").unwrap(),
        )));
        assert!(reads_text(&body));
        assert!(!reads_text(&SearchKey::Seen));
    }
}
