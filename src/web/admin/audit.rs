//! The audit log (`/admin/audit`): what admins did in the panel and at the command line,
//! newest first, 50 a page, searchable by actor, action or target. The store does the paging
//! and the search (a parameterised `LIKE` with its wildcards escaped), so a large log is never
//! read whole.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};

use super::super::{WebError, WebState};
use super::{Admin, Chrome, ListQuery, PAGE_SIZE, Paged, timestamp, url_encode};
use crate::store::AuditEntry;

/// An entry as the table shows it.
pub(super) struct Row {
    at: String,
    actor: String,
    ip: String,
    action: String,
    target: String,
    detail: String,
}

impl Row {
    fn of(e: AuditEntry) -> Row {
        Row {
            at: timestamp(e.at),
            actor: e.actor,
            ip: e.ip,
            action: e.action,
            target: e.target,
            detail: e.detail,
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/audit.html")]
pub(super) struct AuditPage {
    chrome: Chrome,
    entries: Paged<Row>,
    q: String,
}

impl AuditPage {
    /// Keeps the search when paging.
    fn query_suffix(&self) -> String {
        if self.q.is_empty() {
            String::new()
        } else {
            format!("&q={}", url_encode(&self.q))
        }
    }
}

pub(super) async fn list(
    admin: Admin,
    State(state): State<WebState>,
    Query(query): Query<ListQuery>,
) -> Result<AuditPage, WebError> {
    let q = query.q.unwrap_or_default().trim().to_string();
    let size = i64::try_from(PAGE_SIZE).unwrap_or(50);
    let wanted = i64::try_from(query.page.unwrap_or(1).max(1)).unwrap_or(1);
    // Saturating: `?page=` is any number the address bar holds.
    let first = state
        .store
        .audit_entries(&q, (wanted - 1).saturating_mul(size), size)
        .await?;
    let total = usize::try_from(first.total).unwrap_or(0);
    let pages = i64::try_from(total.div_ceil(PAGE_SIZE).max(1)).unwrap_or(1);
    // A page past the end shows the last one, as the other lists do.
    let (page, found) = if wanted > pages {
        (
            pages,
            state
                .store
                .audit_entries(&q, (pages - 1).saturating_mul(size), size)
                .await?,
        )
    } else {
        (wanted, first)
    };
    let rows = found.entries.into_iter().map(Row::of).collect();
    Ok(AuditPage {
        chrome: Chrome::new(&state, &admin, "audit", query.done.as_deref()),
        entries: Paged::of_page(rows, usize::try_from(page).unwrap_or(1), total),
        q,
    })
}
