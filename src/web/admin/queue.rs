//! The outbound queue: what waits for other servers, why, and when it is tried next; retry
//! now, or drop.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::response::Response;

use super::super::{WebError, WebState};
use super::{
    Admin, Chrome, Confirm, ListQuery, NoFields, Paged, Posted, done, relative, timestamp,
};
use crate::config::format_size;
use crate::store::QueuedMessage;

/// One queued message as the table shows it.
pub(super) struct Row {
    id: i64,
    sender: String,
    size: String,
    queued: String,
    recipients: Vec<RecipientRow>,
}

pub(super) struct RecipientRow {
    address: String,
    attempts: i64,
    next: String,
    error: String,
}

impl Row {
    fn of(m: &QueuedMessage) -> Row {
        Row {
            id: m.id,
            sender: if m.sender.is_empty() {
                "<> (a bounce)".into()
            } else {
                m.sender.clone()
            },
            size: format_size(u64::try_from(m.size).unwrap_or(0)),
            queued: format!("{} ({})", timestamp(m.created_at), relative(m.created_at)),
            recipients: m
                .recipients
                .iter()
                .map(|r| RecipientRow {
                    address: r.address.clone(),
                    attempts: r.attempts,
                    next: relative(r.next_attempt),
                    error: r.last_error.clone().unwrap_or_default(),
                })
                .collect(),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/queue.html")]
pub(super) struct QueuePage {
    chrome: Chrome,
    messages: Paged<Row>,
}

pub(super) async fn list(
    admin: Admin,
    State(state): State<WebState>,
    Query(q): Query<ListQuery>,
) -> Result<QueuePage, WebError> {
    let rows = state
        .store
        .queue_list()
        .await?
        .iter()
        .map(Row::of)
        .collect();
    Ok(QueuePage {
        chrome: Chrome::new(&state, &admin, "queue", q.done.as_deref()),
        messages: Paged::new(rows, q.page),
    })
}

pub(super) async fn retry(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    Posted(admin, _): Posted<Admin, NoFields>,
) -> Result<Response, WebError> {
    if !state.store.queue_retry(id).await? {
        return Err(WebError::NotFound);
    }
    admin
        .audit(&state, "queue.retry", &format!("message {id}"), "")
        .await?;
    Ok(done("/admin/queue", "queue-retry"))
}

pub(super) async fn confirm_drop(
    admin: Admin,
    State(state): State<WebState>,
    Path(id): Path<i64>,
) -> Result<Confirm, WebError> {
    let m = state
        .store
        .queue_list()
        .await?
        .into_iter()
        .find(|m| m.id == id)
        .ok_or(WebError::NotFound)?;
    Ok(Confirm {
        chrome: Chrome::new(&state, &admin, "queue", None),
        title: format!("Drop message {id} from the queue?"),
        text: format!(
            "The message from {} to {} is deleted without being delivered, and no bounce is \
             sent to the sender.",
            if m.sender.is_empty() { "<>" } else { &m.sender },
            m.recipients
                .iter()
                .map(|r| r.address.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        action: format!("/admin/queue/{id}/drop"),
        button: "Drop the message",
        back: "/admin/queue".into(),
        error: None,
    })
}

pub(super) async fn drop(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    Posted(admin, _): Posted<Admin, NoFields>,
) -> Result<Response, WebError> {
    if !state.store.queue_drop(id).await? {
        return Err(WebError::NotFound);
    }
    admin
        .audit(&state, "queue.drop", &format!("message {id}"), "")
        .await?;
    Ok(done("/admin/queue", "queue-dropped"))
}
