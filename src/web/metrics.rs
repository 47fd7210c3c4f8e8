//! `GET /metrics` in the Prometheus text format (version 0.0.4), and the middleware that times
//! every HTTP request for it.
//!
//! Who may read it: clients on this machine (a Prometheus or node exporter beside the
//! server), and others that send `Authorization: Bearer <[web] metrics_token>`. Anyone else
//! gets 403: the numbers say how busy the server is and when its certificate lapses, which is
//! nobody else's business.
//!
//! What it says:
//! - deliveries, rejections by reason, spam junked and refused, lessons taught to the spam
//!   filter, and failed logins since the server started (counters kept by the store, see
//!   `store::events`; they restart from 0 with the server, as Prometheus counters may);
//! - the outbound queue (messages, recipients, age of the oldest), stored messages and the
//!   database size, accounts, domains, the certificate's expiry;
//! - connections per listener and HTTP request durations ([`crate::metrics`]).

use std::fmt::Write;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::WebState;
use super::session::{Client, same_secret};
use crate::metrics::METRICS;

/// Times a request until its response head is ready (a streamed body is not waited for).
pub async fn time_request(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let response = next.run(req).await;
    METRICS.observe_http(start.elapsed());
    response
}

pub async fn metrics(
    State(state): State<WebState>,
    client: Client,
    headers: HeaderMap,
) -> Response {
    if !allowed(&state, client, &headers) {
        return (
            StatusCode::FORBIDDEN,
            [(header::CACHE_CONTROL, "no-store")],
            "metrics are for this machine, or with the bearer token of [web] metrics_token\n",
        )
            .into_response();
    }
    match render(&state).await {
        Ok(body) => (
            [
                (
                    header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                ),
                (header::CACHE_CONTROL, "no-store"),
            ],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!("metrics: {e}");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
        }
    }
}

fn allowed(state: &WebState, client: Client, headers: &HeaderMap) -> bool {
    if client.ip.is_loopback() {
        return true;
    }
    let Some(token) = state.metrics_token.as_deref() else {
        return false;
    };
    headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.strip_prefix("Bearer "))
        .any(|given| same_secret(given.trim(), token))
}

/// One metric: HELP and TYPE lines, then its samples.
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, i64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

fn single(value: i64) -> Vec<(String, i64)> {
    vec![(String::new(), value)]
}

/// A label value in the text format: backslash, quote and newline escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

async fn render(state: &WebState) -> Result<String, crate::store::StoreError> {
    let store = &state.store;
    let now = crate::store::now();
    let mut out = String::new();

    let events = store.event_counters();
    let count = |kind: &str| {
        events
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, n)| *n)
    };
    family(
        &mut out,
        "mailroom_deliveries_total",
        "counter",
        "Message copies stored in mailboxes (SMTP, submission, webmail, APPEND, bounces).",
        &single(count("delivered")),
    );
    let rejections: Vec<(String, i64)> = events
        .iter()
        .filter_map(|(k, n)| {
            k.strip_prefix("rejected:")
                .map(|reason| (format!("{{reason=\"{}\"}}", label(reason)), *n))
        })
        .collect();
    family(
        &mut out,
        "mailroom_rejections_total",
        "counter",
        "SMTP messages or recipients refused, by reason.",
        &rejections,
    );
    family(
        &mut out,
        "mailroom_spam_junked_total",
        "counter",
        "Messages the spam filter delivered to Junk.",
        &single(count("spam_junked")),
    );
    family(
        &mut out,
        "mailroom_spam_rejected_total",
        "counter",
        "Messages the spam filter refused (also in mailroom_rejections_total, reason \"spam\").",
        &single(count("rejected:spam")),
    );
    family(
        &mut out,
        "mailroom_spam_lessons_total",
        "counter",
        "Lessons users gave the spam filter (moves into and out of Junk, Spam / Not spam).",
        &single(count("spam_lessons")),
    );
    family(
        &mut out,
        "mailroom_failed_logins_total",
        "counter",
        "Failed logins over every protocol.",
        &single(count("login_failed")),
    );

    let queue = store.queue_stats().await?;
    family(
        &mut out,
        "mailroom_queue_messages",
        "gauge",
        "Messages waiting in the outbound queue.",
        &single(queue.messages),
    );
    family(
        &mut out,
        "mailroom_queue_recipients",
        "gauge",
        "Recipients waiting in the outbound queue.",
        &single(queue.recipients),
    );
    family(
        &mut out,
        "mailroom_queue_oldest_age_seconds",
        "gauge",
        "Age of the oldest queued message; 0 when the queue is empty.",
        &single(queue.oldest_created_at.map_or(0, |t| (now - t).max(0))),
    );

    let storage = store.storage_totals().await?;
    family(
        &mut out,
        "mailroom_messages",
        "gauge",
        "Messages stored in all mailboxes.",
        &single(storage.messages),
    );
    family(
        &mut out,
        "mailroom_database_bytes",
        "gauge",
        "Size of the database file (without its write-ahead log).",
        &single(storage.database_bytes),
    );
    family(
        &mut out,
        "mailroom_accounts",
        "gauge",
        "Accounts.",
        &single(store.account_count().await?),
    );
    family(
        &mut out,
        "mailroom_domains",
        "gauge",
        "Mail domains.",
        &single(store.domains().await?.len() as i64),
    );

    let cert = state.tls.status();
    if let Some(not_after) = cert.not_after {
        family(
            &mut out,
            "mailroom_certificate_expiry_timestamp_seconds",
            "gauge",
            "When the TLS certificate expires (Unix time).",
            &[(format!("{{source=\"{}\"}}", label(cert.source)), not_after)],
        );
    }

    METRICS.render(&mut out);
    Ok(out)
}
