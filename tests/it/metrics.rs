//! `/metrics`: well-formed Prometheus text, counters that move with what happens, and only
//! for this machine or a client with the bearer token.

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use mailroom::store::{Delivery, Target};
use tokio::net::TcpStream;

use crate::harness::{account, http_get, message, start_with};
use crate::web_client::Browser;

const TOKEN: &str = "metrics-token-0123456789";

/// Checks every line of the text format and returns the samples by `name{labels}`.
fn parse(text: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    let mut typed: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut words = comment.split(' ');
            let (kind, name) = (words.next(), words.next());
            assert!(
                matches!(kind, Some("HELP" | "TYPE")) && name.is_some(),
                "bad comment: {line}"
            );
            if kind == Some("TYPE") {
                let t = words.next().unwrap_or("");
                assert!(
                    ["counter", "gauge", "histogram"].contains(&t),
                    "bad type: {line}"
                );
                typed.push(name.unwrap().to_string());
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                && !name.starts_with(|c: char| c.is_ascii_digit()),
            "bad name: {line}"
        );
        if name_end < series.len() {
            let labels = &series[name_end..];
            assert!(
                labels.starts_with('{') && labels.ends_with('}'),
                "bad labels: {line}"
            );
            for pair in labels[1..labels.len() - 1].split(',') {
                let (k, v) = pair.split_once('=').unwrap_or_else(|| panic!("{line}"));
                assert!(
                    !k.is_empty() && v.starts_with('"') && v.ends_with('"') && v.len() >= 2,
                    "bad label: {line}"
                );
            }
        }
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        assert!(
            typed.iter().any(|t| name.starts_with(t.as_str())),
            "sample without TYPE: {line}"
        );
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "twice: {line}"
        );
    }
    samples
}

async fn scrape(addr: std::net::SocketAddr) -> HashMap<String, f64> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let (status, head, body) = http_get(&mut s, "/metrics").await;
    assert_eq!(status, 200, "{head}{body}");
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    parse(&body)
}

#[tokio::test]
async fn metrics_count_deliveries_and_are_private() {
    let server = start_with(|c| {
        c.domain = "example.org".into();
        c.web.metrics_token = Some(TOKEN.into());
    })
    .await;
    let store = &server.running.store;
    let bob = account(store, "bob@example.org", 0).await;
    let http = server.running.addr("http").unwrap();

    let before = scrape(http).await;
    for name in [
        "mailroom_deliveries_total",
        "mailroom_failed_logins_total",
        "mailroom_queue_messages",
        "mailroom_queue_oldest_age_seconds",
        "mailroom_messages",
        "mailroom_database_bytes",
        "mailroom_accounts",
        "mailroom_domains",
        "mailroom_http_request_duration_seconds_count",
    ] {
        assert!(before.contains_key(name), "{name} missing: {before:?}");
    }
    assert!(before["mailroom_database_bytes"] > 0.0);
    assert!(
        before
            .contains_key("mailroom_certificate_expiry_timestamp_seconds{source=\"self-signed\"}")
    );
    assert!(before["mailroom_connections_total{protocol=\"http\"}"] >= 1.0);
    assert!(
        before["mailroom_connections_open{protocol=\"http\"}"] >= 1.0,
        "this one"
    );

    let raw = message("metrics", "counted", 300);
    store
        .deliver(
            Delivery {
                raw: &raw,
                internal_date: None,
            },
            &[Target::inbox(bob.id)],
        )
        .await
        .unwrap();
    // A failed login is counted too.
    let ip = "127.0.0.1".parse().unwrap();
    assert!(
        server
            .running
            .auth
            .login("test", ip, "bob@example.org", "wrong")
            .await
            .is_err()
    );
    let after = scrape(http).await;
    let moved = |name: &str| after[name] - before.get(name).copied().unwrap_or(0.0);
    assert_eq!(moved("mailroom_deliveries_total"), 1.0);
    assert_eq!(moved("mailroom_messages"), 1.0);
    assert_eq!(moved("mailroom_failed_logins_total"), 1.0);
    assert!(moved("mailroom_http_request_duration_seconds_count") >= 1.0);

    // Another machine: refused without the token or with a wrong one, served with it.
    let mut remote = Browser::new(&server);
    remote.client.ip = "192.0.2.7".parse().unwrap();
    assert_eq!(remote.get("/metrics").await.status, StatusCode::FORBIDDEN);
    for (auth, expected) in [
        ("Bearer wrong-token-0123456789", StatusCode::FORBIDDEN),
        (&format!("Basic {TOKEN}") as &str, StatusCode::FORBIDDEN),
        (&format!("Bearer {TOKEN}"), StatusCode::OK),
    ] {
        let page = remote
            .send(
                Request::get("/metrics")
                    .header(header::AUTHORIZATION, auth)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(page.status, expected, "{auth}");
        if expected == StatusCode::OK {
            assert!(parse(&page.body)["mailroom_deliveries_total"] >= 1.0);
        }
    }
    server.running.shutdown().await;
}

#[tokio::test]
async fn without_a_token_only_this_machine_reads_metrics() {
    let server = start_with(|_| {}).await;
    let mut remote = Browser::new(&server);
    remote.client.ip = "2001:db8::1".parse().unwrap();
    let page = remote
        .send(
            Request::get("/metrics")
                .header(header::AUTHORIZATION, "Bearer ")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let mut local = Browser::new(&server);
    local.client.ip = "::1".parse().unwrap();
    assert_eq!(local.get("/metrics").await.status, StatusCode::OK);
    server.running.shutdown().await;
}
