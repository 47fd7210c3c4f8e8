//! Conversations: a folder's list as one line per thread, and a page with all the messages of
//! one thread, oldest first, the newest open.
//!
//! Threads are RFC 5256 REFERENCES, the same [`crate::thread`] as IMAP THREAD, over the
//! folder's newest [`MAX_THREADED`](crate::store::MAX_THREADED) messages as `Store::thread_rows` reads them: the parsed
//! columns and the references kept per body at delivery (`blobs.thread_refs`), so no body is
//! read. The cost of a list page in this view is that read and the threading of the whole
//! folder (both linear in its size; a 10,000-message INBOX is timed by `bench/webmail`), then
//! one indexed read per line shown for its snippet. Nothing is cached: each page threads anew,
//! so new mail and moves show at once.
//!
//! Whether a reader sees conversations is a cookie ([`VIEW_COOKIE`]), set by the list's
//! toggle (`?view=threads` / `?view=messages`): a preference of this browser, like the
//! reading pane's width, not an account setting.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::HeaderMap;

use super::super::sanitize::neutralise_bidi;
use super::super::{WebError, WebState};
use super::{Chrome, Reader, iso_date, read};
use crate::store::{FlagOp, Flags, ThreadRow};
use crate::thread::{self, Algorithm, Forest};

/// The cookie that remembers the view: `threads` or `messages`.
pub const VIEW_COOKIE: &str = "mailroom_view";
/// Messages a conversation page shows (the newest ones).
pub const MAX_SHOWN: usize = 100;
/// Of those, the newest ones shown with their text (the others are a line each, linking to
/// the message): each costs a parse of the message.
pub const MAX_BODIES: usize = 20;

/// Whether this browser chose the conversation view.
pub fn threaded(headers: &HeaderMap) -> bool {
    super::super::session::cookie(headers, VIEW_COOKIE).as_deref() == Some("threads")
}

/// One thread of a folder: indexes into the rows it was made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// By sent date (then UID), oldest first.
    pub members: Vec<usize>,
    /// The member that arrived last (highest UID): the conversation's place in the list.
    pub newest: usize,
}

/// The sent date threading and the page use: the Date field, else the arrival.
fn sent(r: &ThreadRow) -> i64 {
    r.header_date.unwrap_or(r.internal_date)
}

/// Threads `rows` (ascending UID) into conversations, the one with the latest arrival first.
pub fn group(rows: &[ThreadRow]) -> Vec<Conversation> {
    // Message-IDs are kept without brackets; threading compares them with brackets.
    let ids: Vec<Option<String>> = rows
        .iter()
        .map(|r| r.message_id.as_ref().map(|m| format!("<{m}>")))
        .collect();
    let messages: Vec<thread::Message<'_>> = rows
        .iter()
        .zip(&ids)
        .enumerate()
        .map(|(i, (r, id))| thread::Message {
            id: u32::try_from(i).unwrap_or(u32::MAX),
            message_id: id.as_deref(),
            // Already References, or In-Reply-To when it has none (`thread::stored_refs`).
            references: Some(r.thread_refs.as_str()),
            in_reply_to: None,
            subject: &r.subject,
            sent: sent(r),
        })
        .collect();
    let forest = thread::thread(&messages, Algorithm::References);
    let mut out: Vec<Conversation> = forest
        .roots
        .iter()
        .filter_map(|&root| {
            let mut members = members_of(&forest, root, rows.len());
            members.sort_by_key(|&i| rows.get(i).map(|r| (sent(r), r.uid)));
            let newest = members
                .iter()
                .copied()
                .max_by_key(|&i| rows.get(i).map(|r| r.uid))?;
            Some(Conversation { members, newest })
        })
        .collect();
    out.sort_by_key(|c| std::cmp::Reverse(rows.get(c.newest).map(|r| r.uid)));
    out
}

/// The messages (not the dummies) of the tree under `root`, without recursion.
fn members_of(forest: &Forest, root: usize, len: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(n) = stack.pop() {
        let Some(node) = forest.nodes.get(n) else {
            continue;
        };
        if let Some(id) = node.id.map(|i| i as usize).filter(|&i| i < len) {
            out.push(id);
        }
        stack.extend(node.children.iter().copied());
    }
    out
}

/// The display names of a list of addresses as `from_display` keeps them (`Name <a@b>, c@d`,
/// names possibly quoted with commas in them): the names, or the addresses of those without.
fn names(display: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let (mut quoted, mut angle, mut start) = (false, false, 0);
    for (i, c) in display.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                parts.push(display.get(start..i).unwrap_or_default());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(display.get(start..).unwrap_or_default());
    parts
        .into_iter()
        .filter_map(|one| {
            let one = one.trim();
            let name = match one.split_once('<') {
                Some((name, address)) if name.trim().is_empty() => address.trim_end_matches('>'),
                Some((name, _)) => name.trim().trim_matches('"'),
                None => one,
            };
            (!name.is_empty()).then(|| name.to_string())
        })
        .collect()
}

/// Who took part, for a conversation's line: the distinct senders (or for one's own mail,
/// recipients), oldest first, at most three and "…" for more.
pub fn participants(rows: &[ThreadRow], c: &Conversation, recipients: bool) -> String {
    let mut seen: Vec<String> = Vec::new();
    let mut more = false;
    for r in c.members.iter().filter_map(|&i| rows.get(i)) {
        let field = if recipients {
            &r.to_display
        } else {
            &r.from_display
        };
        for name in names(field) {
            if !seen.contains(&name) {
                if seen.len() == 3 {
                    more = true;
                    break;
                }
                seen.push(name);
            }
        }
    }
    let mut s = seen.join(", ");
    if more {
        s.push_str(", …");
    }
    if recipients {
        s.insert_str(0, "To: ");
    }
    s
}

/// One message on the conversation page.
pub struct Item {
    pub uid: u32,
    pub from: String,
    pub date: String,
    pub iso: String,
    pub seen: bool,
    pub flagged: bool,
    /// Shown open (the newest).
    pub open: bool,
    /// `Some(text)` for a plain-text message, `None` for one with an HTML part (framed from
    /// the reading page's `/body`), or when not loaded (see `loaded`).
    pub text: Option<String>,
    pub has_html: bool,
    /// Among the newest [`MAX_BODIES`]: its body is on the page.
    pub loaded: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "mail/conversation.html")]
pub struct ConversationPage {
    chrome: Chrome,
    box_id: i64,
    folder: String,
    subject: String,
    items: Vec<Item>,
    /// Messages of the conversation not shown (older than the newest [`MAX_SHOWN`]).
    hidden: usize,
}

/// `GET /mail/box/{id}/thread/{uid}`: the conversation that message `uid` belongs to. Opening
/// it marks the messages shown with their text read, as opening each would.
pub async fn page(
    reader: Reader,
    State(state): State<WebState>,
    Path((id, uid)): Path<(i64, u32)>,
) -> Result<ConversationPage, WebError> {
    let mailbox = reader.mailbox(&state, id).await?;
    let rows = state.store.thread_rows(&mailbox).await?;
    let conversation = group(&rows)
        .into_iter()
        .find(|c| {
            c.members
                .iter()
                .any(|&i| rows.get(i).is_some_and(|r| r.uid == uid))
        })
        .ok_or(WebError::NotFound)?;
    let hidden = conversation.members.len().saturating_sub(MAX_SHOWN);
    let shown: Vec<&ThreadRow> = conversation
        .members
        .iter()
        .skip(hidden)
        .filter_map(|&i| rows.get(i))
        .collect();
    let first_loaded = shown.len().saturating_sub(MAX_BODIES);
    // The shown bodies are read together (at most MAX_BODIES; the store's reader pool bounds how
    // many queries run at once), not one after the other.
    let bodies = futures::future::try_join_all(
        shown
            .iter()
            .skip(first_loaded)
            .map(|r| read::text_unless_html(&state, &mailbox, r.uid)),
    )
    .await?;
    let mut bodies = bodies.into_iter();
    let mut items = Vec::with_capacity(shown.len());
    let mut to_mark = Vec::new();
    for (n, r) in shown.iter().enumerate() {
        let loaded = n >= first_loaded;
        let (text, has_html) = match loaded.then(|| bodies.next()).flatten() {
            Some(Some(text)) => (Some(text), false),
            Some(None) => (None, true),
            None => (None, false),
        };
        if loaded && !r.flags.contains(Flags::SEEN) {
            to_mark.push(r.uid);
        }
        let t = sent(r);
        items.push(Item {
            uid: r.uid,
            from: if r.from_display.is_empty() {
                "(no sender)".into()
            } else {
                neutralise_bidi(&r.from_display).into_owned()
            },
            date: super::short_date(t),
            iso: iso_date(t),
            seen: r.flags.contains(Flags::SEEN),
            flagged: r.flags.contains(Flags::FLAGGED),
            open: n + 1 == shown.len(),
            text,
            has_html,
            loaded,
        });
    }
    if !to_mark.is_empty() {
        state
            .store
            .set_flags(&mailbox, &to_mark, FlagOp::Add, Flags::SEEN, &[], None)
            .await?;
    }
    let subject = shown
        .first()
        .map(|r| neutralise_bidi(r.subject.trim()).into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "(no subject)".into());
    Ok(ConversationPage {
        chrome: Chrome::new(&state, &reader, Some(id), None).await?,
        box_id: id,
        folder: mailbox.name.clone(),
        subject,
        items,
        hidden,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(uid: u32, id: &str, refs: &str, subject: &str, from: &str) -> ThreadRow {
        ThreadRow {
            uid,
            flags: Flags::default(),
            internal_date: 1000 + i64::from(uid),
            header_date: Some(1000 + i64::from(uid)),
            subject: subject.into(),
            from_display: from.into(),
            to_display: String::new(),
            message_id: Some(id.into()),
            thread_refs: refs.into(),
        }
    }

    #[test]
    fn replies_group_with_their_thread_newest_first() {
        let rows = vec![
            row(1, "a@x", "", "Lunch", "Ann <ann@x>"),
            row(2, "b@x", "", "Other", "Bo <bo@x>"),
            row(3, "c@x", "<a@x>", "Re: Lunch", "Cy <cy@x>"),
            row(4, "d@x", "<a@x> <c@x>", "Re: Lunch", "ann@x"),
        ];
        let c = group(&rows);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].members, vec![0, 2, 3]);
        assert_eq!(c[0].newest, 3);
        assert_eq!(c[1].members, vec![1]);
        assert_eq!(participants(&rows, &c[0], false), "Ann, Cy, ann@x");
    }

    #[test]
    fn names_of_display_lists() {
        let n = names("\"Doe, J\" <j@x>, k@y, <l@z>");
        assert_eq!(n, vec!["Doe, J", "k@y", "l@z"]);
    }

    /// Threading a 10,000-message folder (2,000 threads of 5) stays linear: bounded here
    /// generously for debug builds on a busy machine; `bench/webmail` times release builds.
    #[test]
    fn ten_thousand_rows_thread_quickly() {
        let rows: Vec<ThreadRow> = (0..10_000u32)
            .map(|i| {
                let root = i - i % 5;
                let refs = if i == root {
                    String::new()
                } else {
                    format!("<m{root}@x>")
                };
                row(
                    i + 1,
                    &format!("m{i}@x"),
                    &refs,
                    &format!("Topic {root}"),
                    "A <a@x>",
                )
            })
            .collect();
        let t = std::time::Instant::now();
        let c = group(&rows);
        let took = t.elapsed();
        assert_eq!(c.len(), 2000);
        assert!(c.iter().all(|c| c.members.len() == 5));
        eprintln!("grouped 10,000 messages in {took:?}");
        assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    }
}
