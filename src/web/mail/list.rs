//! Message lists (a folder, newest first, 50 a page; or search results) and what can be done
//! to the selected messages: mark read/unread, flag, move, delete (to Trash; from Trash, for
//! good), "Spam" (into Junk) and "Not spam" (out of Junk into INBOX), which teach the spam
//! filter as IMAP moves do.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use axum::http::{HeaderMap, header};

use super::super::sanitize::neutralise_bidi;
use super::super::session::{Client, NoFields, Posted, set_cookie};
use super::super::{WebError, WebState};
use super::{Chrome, Reader, conversations, iso_date, short_date, undo};
use crate::config::format_size;
use crate::store::{FlagOp, Flags, ListEntry, MailQuery, Mailbox, ThreadRow};

pub const PAGE_SIZE: u32 = 50;
/// Search results shown at most.
const SEARCH_LIMIT: u32 = 200;

/// One line of a list.
pub struct Row {
    pub mailbox_id: i64,
    pub uid: u32,
    pub from: String,
    pub subject: String,
    pub snippet: String,
    pub date: String,
    pub iso: String,
    pub size: String,
    pub attachment: bool,
    pub seen: bool,
    pub flagged: bool,
    pub answered: bool,
    /// The folder's name, in search results over all folders.
    pub folder: Option<String>,
    /// Messages on this line: more than one for a conversation.
    pub count: usize,
    /// A conversation's UIDs, comma-separated (its checkbox selects them all).
    pub uids: String,
}

impl Row {
    /// `recipients`: the folder holds one's own mail (Sent, Drafts), where who it went to is
    /// what tells the lines apart, not the sender (always oneself).
    fn of(e: &ListEntry, folder: Option<String>, recipients: bool) -> Row {
        let t = e.header_date.unwrap_or(e.internal_date);
        Row {
            mailbox_id: e.mailbox_id,
            uid: e.uid,
            from: match (
                recipients,
                e.to_display.is_empty(),
                e.from_display.is_empty(),
            ) {
                (true, true, _) => "To: (no recipients)".into(),
                (true, false, _) => format!("To: {}", neutralise_bidi(&e.to_display)),
                (false, _, true) => "(no sender)".into(),
                (false, _, false) => neutralise_bidi(&e.from_display).into_owned(),
            },
            subject: if e.subject.trim().is_empty() {
                "(no subject)".into()
            } else {
                neutralise_bidi(&e.subject).into_owned()
            },
            snippet: neutralise_bidi(&e.snippet).into_owned(),
            date: short_date(t),
            iso: iso_date(t),
            size: format_size(u64::try_from(e.size).unwrap_or(0)),
            attachment: e.has_attachment,
            seen: e.flags.contains(Flags::SEEN),
            flagged: e.flags.contains(Flags::FLAGGED),
            answered: e.flags.contains(Flags::ANSWERED),
            folder,
            count: 1,
            uids: e.uid.to_string(),
        }
    }

    /// A conversation's line: the newest message's date (and snippet, when `entry` could be
    /// read), who took part, the first subject, the count, unread if any message is.
    fn of_conversation(
        rows: &[ThreadRow],
        c: &conversations::Conversation,
        entry: Option<&ListEntry>,
        mailbox_id: i64,
        recipients: bool,
    ) -> Option<Row> {
        let newest = rows.get(c.newest)?;
        let members: Vec<&ThreadRow> = c.members.iter().filter_map(|&i| rows.get(i)).collect();
        let t = newest.header_date.unwrap_or(newest.internal_date);
        let subject = members
            .first()
            .map(|r| r.subject.trim())
            .filter(|s| !s.is_empty())
            .unwrap_or("(no subject)");
        let any = |f: Flags| members.iter().any(|r| r.flags.contains(f));
        Some(Row {
            mailbox_id,
            uid: newest.uid,
            from: neutralise_bidi(&conversations::participants(rows, c, recipients)).into_owned(),
            subject: neutralise_bidi(subject).into_owned(),
            snippet: entry
                .map(|e| neutralise_bidi(&e.snippet).into_owned())
                .unwrap_or_default(),
            date: short_date(t),
            iso: iso_date(t),
            size: entry
                .map(|e| format_size(u64::try_from(e.size).unwrap_or(0)))
                .unwrap_or_default(),
            attachment: entry.is_some_and(|e| e.has_attachment),
            seen: members.iter().all(|r| r.flags.contains(Flags::SEEN)),
            flagged: any(Flags::FLAGGED),
            answered: any(Flags::ANSWERED),
            folder: None,
            count: members.len(),
            uids: members
                .iter()
                .map(|r| r.uid.to_string())
                .collect::<Vec<_>>()
                .join(","),
        })
    }

    fn link(&self) -> String {
        if self.count > 1 {
            format!("/mail/box/{}/thread/{}", self.mailbox_id, self.uid)
        } else {
            format!("/mail/box/{}/{}", self.mailbox_id, self.uid)
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "mail/list.html")]
pub struct ListPage {
    chrome: Chrome,
    /// The folder acted on (for search over all folders: INBOX, for the actions form).
    box_id: i64,
    title: String,
    rows: Vec<Row>,
    page: u32,
    pages: u32,
    total: u32,
    /// Set for search results.
    search: Option<SearchForm>,
    in_trash: bool,
    /// The folder is Junk: "Not spam" instead of "Spam".
    in_junk: bool,
    /// Search results over every folder: both buttons.
    all_folders: bool,
    /// Where actions return to.
    back: String,
    /// Lines are conversations (`None` for search results, which have no toggle).
    threads: Option<bool>,
}

#[derive(Deserialize)]
pub struct PageQuery {
    page: Option<u32>,
    /// `threads` or `messages`: switches the view (and remembers it in a cookie).
    view: Option<String>,
    done: Option<String>,
    /// A token for the Undo button after a move or delete ([`undo`]).
    undo: Option<String>,
}

pub async fn page(
    reader: Reader,
    State(state): State<WebState>,
    client: Client,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(q): Query<PageQuery>,
) -> Result<Response, WebError> {
    let mailbox = reader.mailbox(&state, id).await?;
    let mut chrome = Chrome::new(&state, &reader, Some(id), q.done.as_deref()).await?;
    // Offered as it came: the server checks it when it is used.
    chrome.undo = q
        .undo
        .filter(|t| t.len() <= 8192 && matches!(q.done.as_deref(), Some("moved" | "deleted")));
    let chosen = match q.view.as_deref() {
        Some("threads") => Some(true),
        Some("messages") => Some(false),
        _ => None,
    };
    let threads = chosen.unwrap_or_else(|| conversations::threaded(&headers));
    let recipients = shows_recipients(&mailbox);
    let (rows, total, page, pages) = if threads {
        let all = state.store.thread_rows(&mailbox).await?;
        let convs = conversations::group(&all);
        let total = u32::try_from(convs.len()).unwrap_or(u32::MAX);
        let pages = total.div_ceil(PAGE_SIZE).max(1);
        let page = q.page.unwrap_or(1).clamp(1, pages);
        let mut rows = Vec::new();
        for c in convs
            .iter()
            .skip(((page - 1) * PAGE_SIZE) as usize)
            .take(PAGE_SIZE as usize)
        {
            // The snippet, size and attachment mark of the newest message: one indexed read
            // per line shown (the threading rows leave them out to stay small).
            let entry = match all.get(c.newest) {
                Some(r) => state.store.list_entry(&mailbox, r.uid).await?,
                None => None,
            };
            rows.extend(Row::of_conversation(
                &all,
                c,
                entry.as_ref(),
                id,
                recipients,
            ));
        }
        (rows, total, page, pages)
    } else {
        // The sidebar has just counted this folder.
        let total = chrome
            .folders
            .iter()
            .find(|f| f.id == id)
            .map_or(0, |f| f.counts.messages);
        let pages = total.div_ceil(PAGE_SIZE).max(1);
        let page = q.page.unwrap_or(1).clamp(1, pages);
        let entries = state
            .store
            .message_list(&mailbox, (page - 1) * PAGE_SIZE, PAGE_SIZE)
            .await?;
        let rows = entries
            .iter()
            .map(|e| Row::of(e, None, recipients))
            .collect();
        (rows, total, page, pages)
    };
    let list = ListPage {
        chrome,
        box_id: id,
        title: mailbox.name.clone(),
        rows,
        page,
        pages,
        total,
        search: None,
        in_trash: mailbox.special_use.as_deref() == Some("\\Trash"),
        in_junk: mailbox.special_use.as_deref() == Some("\\Junk"),
        all_folders: false,
        back: if page > 1 {
            format!("/mail/box/{id}?page={page}")
        } else {
            format!("/mail/box/{id}")
        },
        threads: Some(threads),
    };
    Ok(match chosen {
        Some(on) => {
            let value = if on { "threads" } else { "messages" };
            // A year: a preference of this browser.
            let cookie = set_cookie(conversations::VIEW_COOKIE, value, client, Some(31_536_000));
            ([(header::SET_COOKIE, cookie)], list).into_response()
        }
        None => list.into_response(),
    })
}

/// `POST /mail/box/{id}/empty`: Empty Trash or Empty Junk. Expunges every message the folder
/// holds now (one transaction: the bodies lose their references and the account's usage
/// drops with it); other folders cannot be emptied this way.
pub async fn empty(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    Posted(reader, _): Posted<Reader, NoFields>,
) -> Result<Response, WebError> {
    let mailbox = reader.mailbox(&state, id).await?;
    if !matches!(mailbox.special_use.as_deref(), Some("\\Trash" | "\\Junk")) {
        return Err(WebError::BadRequest(
            "Only Trash and Junk can be emptied.".into(),
        ));
    }
    let uids: Vec<u32> = state
        .store
        .messages(&mailbox)
        .await?
        .iter()
        .map(|m| m.uid)
        .collect();
    let gone = state.store.expunge(&mailbox, &uids).await?;
    tracing::info!(
        account = reader.account_id(),
        folder = %mailbox.name,
        messages = gone.len(),
        "folder emptied"
    );
    Ok(Redirect::to(&format!("/mail/box/{id}?done=emptied")).into_response())
}

/// Sent and Drafts list who the mail is for.
pub(super) fn shows_recipients(m: &Mailbox) -> bool {
    matches!(m.special_use.as_deref(), Some("\\Sent" | "\\Drafts"))
}

/// The search form, as typed.
#[derive(Deserialize, Default, Clone)]
pub struct SearchForm {
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub subject: String,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    pub since: String,
    #[serde(default)]
    pub before: String,
    pub attachment: Option<String>,
    /// A folder id, or empty for all folders.
    #[serde(default)]
    pub folder: String,
}

impl SearchForm {
    fn folder_id(&self) -> Option<i64> {
        self.folder.parse().ok()
    }
}

/// The search page again, with its query (where actions on results return).
fn search_back(f: &SearchForm) -> String {
    let enc = super::super::admin::url_encode;
    let mut q = format!(
        "/mail/search?q={}&from={}&to={}&subject={}&since={}&before={}&folder={}",
        enc(&f.q),
        enc(&f.from),
        enc(&f.to),
        enc(&f.subject),
        enc(&f.since),
        enc(&f.before),
        enc(&f.folder)
    );
    if f.attachment.is_some() {
        q.push_str("&attachment=1");
    }
    q
}

/// Midnight UTC of a `YYYY-MM-DD` date.
fn day(s: &str) -> Result<Option<i64>, WebError> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s.trim(), format)
        .map(|d| Some(d.midnight().assume_utc().unix_timestamp()))
        .map_err(|_| WebError::BadRequest(format!("{s:?} is not a date (YYYY-MM-DD)")))
}

pub async fn search(
    reader: Reader,
    State(state): State<WebState>,
    Query(f): Query<SearchForm>,
) -> Result<ListPage, WebError> {
    let folder = match f.folder_id() {
        Some(id) => Some(reader.mailbox(&state, id).await?),
        None => None,
    };
    let query = MailQuery {
        words: f.q.clone(),
        from: f.from.clone(),
        to: f.to.clone(),
        subject: f.subject.clone(),
        since: day(&f.since)?,
        // "Before" names the last day wanted: up to its end.
        before: day(&f.before)?.map(|t| t + 86400),
        has_attachment: f.attachment.is_some(),
    };
    let chrome = Chrome::new(&state, &reader, folder.as_ref().map(Mailbox::id), None).await?;
    let entries = if query.is_empty() {
        Vec::new()
    } else {
        state
            .store
            .search_mail(reader.account_id(), folder.as_ref(), &query, SEARCH_LIMIT)
            .await?
    };
    let name_of = |id: i64| {
        chrome
            .folders
            .iter()
            .find(|f| f.id == id)
            .map(|f| f.name.clone())
    };
    let rows: Vec<Row> = entries
        .iter()
        .map(|e| {
            let recipients = folder.as_ref().is_some_and(shows_recipients);
            Row::of(
                e,
                folder.is_none().then(|| name_of(e.mailbox_id)).flatten(),
                recipients,
            )
        })
        .collect();
    let box_id = match &folder {
        Some(m) => m.id(),
        None => chrome.folders.first().map(|f| f.id).unwrap_or(0),
    };
    Ok(ListPage {
        title: match &folder {
            Some(m) => format!("Search in {}", m.name),
            None => "Search in all folders".into(),
        },
        total: rows.len() as u32,
        rows,
        page: 1,
        pages: 1,
        in_trash: folder
            .as_ref()
            .is_some_and(|m| m.special_use.as_deref() == Some("\\Trash")),
        in_junk: folder
            .as_ref()
            .is_some_and(|m| m.special_use.as_deref() == Some("\\Junk")),
        all_folders: folder.is_none(),
        back: search_back(&f),
        threads: None,
        search: Some(f),
        box_id,
        chrome,
    })
}

/// Applies an action to the selected messages. The form's fields repeat, so they come as
/// pairs: `action`, `target` for moves, `back`, and the messages: `uid` for messages of folder
/// `id`, or `msg` as `folder:uid` (search results span folders). Every folder is checked to be
/// the reader's before anything changes.
pub async fn act(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    Posted(reader, fields): Posted<Reader, Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let mut action = String::new();
    let mut target = String::new();
    let mut back = String::new();
    let mut picked: Vec<(i64, u32)> = Vec::new();
    for (k, v) in fields {
        match k.as_str() {
            "action" => action = v,
            "target" => target = v,
            "back" => back = v,
            "uid" => picked.extend(v.parse::<u32>().ok().map(|u| (id, u))),
            "msg" => picked.extend(super::compose::message_ref(&v)),
            // A conversation's line: `folder:uid,uid,…`.
            "conv" => {
                if let Some((b, uids)) = v.split_once(':')
                    && let Ok(b) = b.parse::<i64>()
                {
                    picked.extend(
                        uids.split(',')
                            .filter_map(|u| u.parse().ok())
                            .map(|u| (b, u)),
                    );
                }
            }
            _ => {}
        }
    }
    // The folder in the address must be the reader's even when only `msg` entries are sent.
    reader.mailbox(&state, id).await?;
    picked.sort_unstable();
    picked.dedup();
    let back = if back.starts_with("/mail/") && !back.contains("//") {
        back
    } else {
        format!("/mail/box/{id}")
    };
    let mut folders: Vec<Mailbox> = Vec::new();
    for (box_id, _) in &picked {
        if !folders.iter().any(|m| m.id() == *box_id) {
            folders.push(reader.mailbox(&state, *box_id).await?);
        }
    }
    let to = match action.as_str() {
        "move" => {
            let to: i64 = target
                .parse()
                .map_err(|_| WebError::BadRequest("Choose a folder to move to.".into()))?;
            Some(reader.mailbox(&state, to).await?)
        }
        "spam" if !picked.is_empty() => Some(reader.junk(&state).await?),
        "notspam" => state.store.mailbox(reader.account_id(), "INBOX").await?,
        _ => None,
    };
    let trash = reader.special(&state, "\\Trash").await?;
    let mut done = "updated";
    let mut undo = None;
    for mailbox in &folders {
        let uids: Vec<u32> = picked
            .iter()
            .filter(|(b, _)| *b == mailbox.id())
            .map(|(_, u)| *u)
            .collect();
        let moved;
        (done, moved) = apply(&state, mailbox, &uids, &action, to.as_ref(), trash.as_ref()).await?;
        // Undo is offered for a move or delete out of one folder (search results may span
        // several; those moves are not undone here).
        undo = match (folders.len(), done, moved) {
            (1, "moved" | "deleted", Some((to, uids))) => undo::Pending {
                account_id: reader.account_id(),
                from: mailbox.id(),
                to,
                uids,
                at: crate::store::now(),
            }
            .token(),
            _ => None,
        };
    }
    if picked.is_empty() {
        return Ok(Redirect::to(&back).into_response());
    }
    // Back to a single message that is no longer there: to its folder instead.
    let gone = matches!(done, "moved" | "deleted" | "purged" | "junked" | "unjunked");
    let back = if gone && back.starts_with(&format!("/mail/box/{id}/")) {
        format!("/mail/box/{id}")
    } else {
        back
    };
    let sep = if back.contains('?') { '&' } else { '?' };
    // Only a folder's list shows the Undo button (not search results).
    let on_list = back.split('?').next() == Some(format!("/mail/box/{id}").as_str());
    let undo = match undo {
        Some(t) if on_list => format!("&undo={t}"),
        _ => String::new(),
    };
    Ok(Redirect::to(&format!("{back}{sep}done={done}{undo}")).into_response())
}

/// What [`apply`] did: the notice code, and for a move, the target folder and the UIDs the
/// messages got there.
type Applied = (&'static str, Option<(i64, Vec<u32>)>);

/// One action on messages of one folder. Moves teach the spam filter what they mean (into
/// Junk: spam; out of it, not to Trash: not spam).
async fn apply(
    state: &WebState,
    mailbox: &Mailbox,
    uids: &[u32],
    action: &str,
    to: Option<&Mailbox>,
    trash: Option<&Mailbox>,
) -> Result<Applied, WebError> {
    let store = &state.store;
    let flag = |op, f| store.set_flags(mailbox, uids, op, f, &[], None);
    let is_junk = |m: &Mailbox| m.special_use.as_deref() == Some("\\Junk");
    let move_to = async |to: &Mailbox| -> Result<Option<(i64, Vec<u32>)>, WebError> {
        if to.id() == mailbox.id() {
            return Ok(None);
        }
        let transfer = store.move_messages(mailbox, uids, to).await?;
        let moved: Vec<u32> = transfer.copied.iter().map(|c| c.uid).collect();
        state
            .learner
            .after_transfer(mailbox, to, moved.clone(), true);
        Ok(Some((to.id(), moved)))
    };
    Ok(match action {
        "read" => (
            flag(FlagOp::Add, Flags::SEEN).await.map(|_| "updated")?,
            None,
        ),
        "unread" => (
            flag(FlagOp::Remove, Flags::SEEN).await.map(|_| "updated")?,
            None,
        ),
        "flag" => (
            flag(FlagOp::Add, Flags::FLAGGED).await.map(|_| "updated")?,
            None,
        ),
        "unflag" => (
            flag(FlagOp::Remove, Flags::FLAGGED)
                .await
                .map(|_| "updated")?,
            None,
        ),
        "move" => {
            let to =
                to.ok_or_else(|| WebError::BadRequest("Choose a folder to move to.".into()))?;
            ("moved", move_to(to).await?)
        }
        // "Spam": into Junk (messages already there stay).
        "spam" => {
            let junk = to.ok_or_else(|| WebError::BadRequest("There is no Junk folder.".into()))?;
            if !is_junk(mailbox) {
                move_to(junk).await?;
            }
            ("junked", None)
        }
        // "Not spam": out of Junk into INBOX (messages elsewhere stay).
        "notspam" => {
            let inbox = to.ok_or_else(|| WebError::BadRequest("There is no INBOX.".into()))?;
            if is_junk(mailbox) {
                move_to(inbox).await?;
            }
            ("unjunked", None)
        }
        "delete" if mailbox.special_use.as_deref() == Some("\\Trash") => {
            store.expunge(mailbox, uids).await?;
            ("purged", None)
        }
        "delete" => {
            let trash =
                trash.ok_or_else(|| WebError::BadRequest("There is no Trash folder.".into()))?;
            ("deleted", move_to(trash).await?)
        }
        other => return Err(WebError::BadRequest(format!("Unknown action {other:?}."))),
    })
}
