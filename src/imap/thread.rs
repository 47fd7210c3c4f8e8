//! THREAD and UID THREAD (RFC 5256) with REFERENCES and ORDEREDSUBJECT: the messages a search
//! finds, threaded by [`crate::thread`] (meant to be shared with the webmail), written as a THREAD
//! response.
//!
//! Where the data comes from: subject, Date (as an instant) and internal date from the search
//! rows, Message-ID and In-Reply-To from the envelope parsed at delivery. References is not
//! kept apart, so REFERENCES reads each message's header block from the store, one message
//! at a time, keeping only that field (SQLite reads the body to cut the block from it: the
//! cost of a HEADER search, paid once per THREAD REFERENCES command).

use std::collections::HashMap;

use futures::TryStreamExt;
use imap_codec::imap_types::core::{Charset, Vec1};
use imap_codec::imap_types::extensions::thread::ThreadingAlgorithm;
use imap_codec::imap_types::search::SearchKey;

use super::search::charset_ok;
use super::session::{CmdResult, Reply, Session};
use crate::net::Transport;
use crate::thread::{self, Algorithm, Forest, Message};

/// The threading algorithms advertised (`THREAD=…`).
pub(super) const CAPABILITIES: &str = "THREAD=ORDEREDSUBJECT THREAD=REFERENCES";

impl<T: Transport> Session<T> {
    pub(super) async fn thread(
        &mut self,
        algorithm: ThreadingAlgorithm<'static>,
        charset: Charset<'static>,
        criteria: Vec1<SearchKey<'static>>,
        uid: bool,
    ) -> CmdResult {
        let algorithm = match algorithm {
            ThreadingAlgorithm::References => Algorithm::References,
            ThreadingAlgorithm::OrderedSubject => Algorithm::OrderedSubject,
            ThreadingAlgorithm::Other(other) => {
                return Ok(Reply::bad(format!(
                    "unsupported threading algorithm {}",
                    super::response::sanitize(other.as_ref())
                )));
            }
        };
        if !charset_ok(Some(&charset)) {
            return Ok(Reply::no(
                "[BADCHARSET (UTF-8 US-ASCII)] unsupported charset",
            ));
        }
        let references = algorithm == Algorithm::References;
        let (found, _) = self.matches(criteria, references, true, None).await?;
        let mut refs: HashMap<u32, String> = HashMap::new();
        if references && !found.is_empty() {
            let uids: Vec<u32> = found.iter().map(|(_, r)| r.uid).collect();
            let wanted: HashMap<u32, ()> = uids.iter().map(|&u| (u, ())).collect();
            if let Some(selected) = &self.selected {
                let mut blocks = self
                    .imap
                    .store
                    .header_blocks(&selected.mailbox, Some(&uids));
                while let Some((u, block)) = blocks.try_next().await? {
                    if wanted.contains_key(&u)
                        && let Some(value) = thread::header_field(&block, "References")
                    {
                        refs.insert(u, thread::kept_references(&value));
                    }
                }
            }
        }
        let messages: Vec<Message<'_>> = found
            .iter()
            .map(|(seq, row)| {
                let envelope = row.envelope.as_ref();
                Message {
                    id: if uid { row.uid } else { *seq },
                    message_id: envelope.and_then(|e| e.message_id.as_deref()),
                    references: refs.get(&row.uid).map(String::as_str),
                    in_reply_to: envelope.and_then(|e| e.in_reply_to.as_deref()),
                    subject: &row.subject,
                    sent: row.header_date.unwrap_or(row.internal_date),
                }
            })
            .collect();
        let forest = thread::thread(&messages, algorithm);
        self.out.text("* THREAD");
        if !forest.roots.is_empty() {
            self.out.text(" ");
        }
        write_forest(&forest, |s| {
            self.out.text(s);
        });
        self.out.crlf();
        Ok(Reply::ok("THREAD completed"))
    }
}

/// Writes the threads in RFC 5256's `1*thread-list` form: a chain of single replies as
/// `(1 2 3)`, several replies as nested lists `(1 (2)(3 4))`, a dummy parent as a list of
/// lists `((2)(3))`. Iterative: a thread may nest as deep as there are messages.
pub(super) fn write_forest(forest: &Forest, mut put: impl FnMut(&str)) {
    enum Task {
        Open(usize),
        Close,
    }
    let mut tasks: Vec<Task> = forest.roots.iter().rev().map(|&r| Task::Open(r)).collect();
    while let Some(task) = tasks.pop() {
        let Task::Open(start) = task else {
            put(")");
            continue;
        };
        put("(");
        let mut at = start;
        let mut first = true;
        loop {
            let Some(node) = forest.nodes.get(at) else {
                put(")");
                break;
            };
            if let Some(id) = node.id {
                if !first {
                    put(" ");
                }
                put(&id.to_string());
                first = false;
            }
            match node.children.as_slice() {
                [] => {
                    put(")");
                    break;
                }
                [only] => at = *only,
                several => {
                    if !first {
                        put(" ");
                    }
                    tasks.push(Task::Close);
                    tasks.extend(several.iter().rev().map(|&c| Task::Open(c)));
                    break;
                }
            }
        }
    }
}
