//! The dashboard: what is stored, what is waiting, what happened in the last day, and whether
//! the certificate and the backups are in order.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};

use super::super::{WebError, WebState};
use super::{Admin, Chrome, ListQuery, relative, timestamp};
use crate::config::format_size;
use crate::store::now;

#[derive(Template, WebTemplate)]
#[template(path = "admin/dashboard.html")]
pub(super) struct Dashboard {
    chrome: Chrome,
    domains: usize,
    accounts: i64,
    messages: i64,
    database: String,
    queue_messages: i64,
    queue_recipients: i64,
    queue_oldest: Option<String>,
    delivered: i64,
    /// Rejections in the last 24 hours by reason, largest first.
    rejected: Vec<(String, i64)>,
    rejected_total: i64,
    login_failed: i64,
    /// Messages the spam filter put in Junk, and refused.
    spam_junked: i64,
    spam_rejected: i64,
    cert_source: &'static str,
    cert_names: String,
    cert_expiry: Option<String>,
    /// Less than 14 days left.
    cert_warning: bool,
    cert_error: Option<String>,
    backup: Option<(String, String)>,
    backup_old: bool,
    /// Every admin must sign in with a second factor.
    admins_require_two_factor: bool,
}

pub(super) async fn page(
    admin: Admin,
    State(state): State<WebState>,
    Query(q): Query<ListQuery>,
) -> Result<Dashboard, WebError> {
    let store = &state.store;
    let totals = store.storage_totals().await?;
    let queue = store.queue_stats().await?;
    let events = store.event_totals(now() - 86400).await?;
    let count = |kind: &str| {
        events
            .iter()
            .find(|(k, _)| k == kind)
            .map_or(0, |(_, n)| *n)
    };
    let mut rejected: Vec<(String, i64)> = events
        .iter()
        .filter_map(|(k, n)| Some((reason(k.strip_prefix("rejected:")?), *n)))
        .collect();
    rejected.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    let cert = state.tls.status();
    let cert_warning = cert.not_after.is_some_and(|t| t - now() < 14 * 86400);
    let backup = store.meta(crate::backup::LAST_BACKUP).await?.and_then(|v| {
        let (t, place) = v.split_once(' ')?;
        let t: i64 = t.parse().ok()?;
        Some((t, place.to_string()))
    });
    Ok(Dashboard {
        chrome: Chrome::new(&state, &admin, "dashboard", q.done.as_deref()),
        admins_require_two_factor: store.admins_require_second_factor().await?,
        domains: store.domains().await?.len(),
        accounts: store.account_count().await?,
        messages: totals.messages,
        database: format_size(u64::try_from(totals.database_bytes).unwrap_or(0)),
        queue_messages: queue.messages,
        queue_recipients: queue.recipients,
        queue_oldest: queue.oldest_created_at.map(relative),
        delivered: count("delivered"),
        rejected_total: rejected.iter().map(|(_, n)| n).sum(),
        rejected,
        login_failed: count("login_failed"),
        spam_junked: count("spam_junked"),
        spam_rejected: count("rejected:spam"),
        cert_source: cert.source,
        cert_names: cert.names.join(", "),
        cert_expiry: cert
            .not_after
            .map(|t| format!("{} ({})", timestamp(t), relative(t))),
        cert_warning,
        cert_error: cert.error,
        backup_old: backup.as_ref().is_none_or(|(t, _)| now() - t > 7 * 86400),
        backup: backup.map(|(t, place)| (format!("{} ({})", timestamp(t), relative(t)), place)),
    })
}

/// Words for the rejection reasons counted by the SMTP server.
fn reason(kind: &str) -> String {
    match kind {
        "relay" => "relay attempts (not our domain)",
        "unknown_user" => "unknown recipients",
        "quota" => "mailbox full",
        "size" => "message too big",
        "dmarc" => "DMARC policy reject",
        "loop" => "mail loops",
        "spam" => "spam (over the reject threshold)",
        other => other,
    }
    .to_string()
}
