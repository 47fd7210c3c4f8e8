//! `cargo bench --bench webmail`: how fast the webmail's pages come back.
//!
//! Starts the whole server in this process (`mailroom::app::start`, a temporary data
//! directory, HTTP on 127.0.0.1), fills one INBOX with `WEBMAIL_N` (default 10,000) ~4 KB
//! messages through the one delivery path, plus one message with a 1 MB HTML body, signs in
//! through the login form, and then times over one keep-alive HTTP/1.1 connection:
//!
//! - the message-list page (first page, 50 messages, folder counts included), `WEBMAIL_RUNS`
//!   times (default 200);
//! - the same for page 100 (messages 4,951 to 5,000: the OFFSET cost);
//! - opening the 1 MB HTML message: the reading page plus its sanitized HTML body (the frame),
//!   `WEBMAIL_RUNS / 4` times;
//! - the conversation view of a 20-message thread ([`CONVERSATION_PATH`]);
//! - the compose page's autosave round trip (`POST /mail/compose/autosave`, each save
//!   replacing the draft before it).
//!
//! and prints p50 / p99 / max in ms. The client reads the whole response; no compression is
//! asked for.

// Test and bench code: a failed assumption is a failed run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "common/corpus.rs"]
mod corpus;

use corpus::report as message;
use std::time::{Duration, Instant};

use mailroom::config::{Config, Listen};
use mailroom::store::{Delivery, NewAccount, Target};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A newsletter-like HTML message of about 1 MB: tables, inline styles, links, images.
fn big_html() -> Vec<u8> {
    let mut html = String::from("<html><body><table width=\"600\" cellpadding=\"4\">");
    let mut i = 0;
    while html.len() < 1 << 20 {
        html.push_str(&format!(
            "<tr><td style=\"color:#333;padding:4px;font-family:Arial\"><a href=\"https://example.org/item/{i}\">Item {i}</a> \
             <img src=\"https://cdn.example.org/img/{i}.png\" width=\"40\" height=\"40\" alt=\"\"> \
             <span style=\"font-weight:bold\">Price</span> {i}.99 <font color=\"red\">sale</font></td></tr>\n"
        ));
        i += 1;
    }
    html.push_str("</table></body></html>");
    let mut m = String::from(
        "From: Shop <news@shop.example>\r\nTo: user@localhost\r\nSubject: The big catalogue\r\n\
         Date: Thu, 26 Nov 2026 11:00:00 +0000\r\nMessage-ID: <catalogue@shop.example>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
    );
    for line in html.lines() {
        m.push_str(line);
        m.push_str("\r\n");
    }
    m.into_bytes()
}

/// The conversation page of the thread containing `{uid}` (issue 24).
const CONVERSATION_PATH: &str = "/mail/box/{inbox}/thread/{uid}";

/// A thread of `n` replies, each referring to all before it: (raw messages).
fn thread(n: usize) -> Vec<Vec<u8>> {
    let mut refs: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for i in 0..n {
        let id = format!("<plan-{i}@team.example>");
        let mut m = format!(
            "From: Member {i} <m{i}@team.example>\r\nTo: user@localhost\r\n\
             Subject: {}The plan\r\nDate: Thu, 26 Nov 2026 12:{:02}:00 +0000\r\nMessage-ID: {id}\r\n",
            if i == 0 { "" } else { "Re: " },
            i % 60
        );
        if let Some(last) = refs.last() {
            m.push_str(&format!(
                "In-Reply-To: {last}\r\nReferences: {}\r\n",
                refs.join(" ")
            ));
        }
        m.push_str("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
        for line in 0..40 {
            m.push_str(&format!(
                "Reply {i}, line {line}: what we agreed, and what is left to do.\r\n"
            ));
        }
        refs.push(id);
        out.push(m.into_bytes());
    }
    out
}

/// Times the conversation view of the thread of `uid`; `None` when this build has no such page.
async fn conversation_view(
    http: &mut Http,
    inbox: i64,
    uid: u32,
    runs: usize,
) -> Option<(Vec<Duration>, usize)> {
    let path = CONVERSATION_PATH
        .replace("{inbox}", &inbox.to_string())
        .replace("{uid}", &uid.to_string());
    if http.request("GET", &path, "").await.status == 404 {
        return None;
    }
    let mut times = Vec::with_capacity(runs);
    let mut bytes = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let r = http.request("GET", &path, "").await;
        times.push(t.elapsed());
        assert_eq!(r.status, 200, "{path}");
        bytes = r.body.len();
    }
    Some((times, bytes))
}

struct Http {
    s: BufReader<TcpStream>,
    cookie: String,
    /// The type of request bodies: forms, or the compose form's multipart.
    content_type: String,
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Http {
    async fn request(&mut self, method: &str, path: &str, body: &str) -> Reply {
        let content_type = self.content_type.clone();
        self.request_typed(method, path, &content_type, body).await
    }

    async fn request_typed(
        &mut self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &str,
    ) -> Reply {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nCookie: {}\r\n",
            self.cookie
        );
        if !body.is_empty() {
            req.push_str(&format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        req.push_str("\r\n");
        req.push_str(body);
        self.s
            .get_mut()
            .write_all(req.as_bytes())
            .await
            .expect("write");
        let mut line = String::new();
        self.s.read_line(&mut line).await.expect("status line");
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.s.read_line(&mut line).await.expect("header");
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let mut body = Vec::new();
        if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
            body.resize(len, 0);
            self.s.read_exact(&mut body).await.expect("body");
        } else if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            loop {
                line.clear();
                self.s.read_line(&mut line).await.expect("chunk size");
                let size = usize::from_str_radix(line.trim(), 16).expect("chunk size");
                let mut chunk = vec![0u8; size + 2];
                self.s.read_exact(&mut chunk).await.expect("chunk");
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        }
        for (k, v) in &headers {
            if k == "set-cookie" {
                let pair = v.split(';').next().unwrap_or("");
                if !pair.ends_with('=') && pair.starts_with("mr_") {
                    let name = pair.split('=').next().unwrap_or("");
                    let mut kept: Vec<String> = self
                        .cookie
                        .split("; ")
                        .filter(|c| !c.is_empty() && !c.starts_with(&format!("{name}=")))
                        .map(str::to_string)
                        .collect();
                    kept.push(pair.to_string());
                    self.cookie = kept.join("; ");
                }
            }
        }
        Reply {
            status,
            headers,
            body,
        }
    }
}

fn field(html: &str, name: &str) -> String {
    let key = format!("name=\"{name}\" value=\"");
    let start = html.find(&key).expect("field") + key.len();
    html[start..].split('"').next().unwrap_or("").to_string()
}

fn report(label: &str, mut times: Vec<Duration>, bytes: usize) {
    times.sort();
    let at = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{label:<52} p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  ({} KiB)",
        ms(at(0.5)),
        ms(at(0.99)),
        ms(at(1.0)),
        bytes / 1024
    );
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("WEBMAIL_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let runs: usize = std::env::var("WEBMAIL_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::embedded();
    config.data_dir = dir.path().to_path_buf();
    config.listen = Listen {
        http: vec!["127.0.0.1:0".parse().expect("addr")],
        ..Listen::default()
    };
    let running = mailroom::app::start(config).await.expect("server starts");
    let store = running.store.clone();
    let hash = mailroom::auth::password::hash("secret")
        .await
        .expect("hash");
    let account = store
        .create_account(NewAccount {
            address: "user@localhost",
            password_hash: &hash,
            quota_bytes: 0,
            is_admin: false,
        })
        .await
        .expect("account");
    let fill = Instant::now();
    let workers = 16;
    let mut tasks = Vec::new();
    for w in 0..workers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in (w..n).step_by(workers) {
                let raw = message(i, "user@localhost");
                store
                    .deliver(
                        Delivery {
                            raw: &raw,
                            internal_date: None,
                        },
                        &[Target::inbox(account.id)],
                    )
                    .await
                    .expect("delivery");
            }
        }));
    }
    for t in tasks {
        t.await.expect("filler");
    }
    let big = big_html();
    let big_uid = store
        .deliver(
            Delivery {
                raw: &big,
                internal_date: None,
            },
            &[Target::inbox(account.id)],
        )
        .await
        .expect("big message")
        .delivered[0]
        .uid;
    let mut thread_uid = 0;
    for raw in thread(20) {
        thread_uid = store
            .deliver(
                Delivery {
                    raw: &raw,
                    internal_date: None,
                },
                &[Target::inbox(account.id)],
            )
            .await
            .expect("thread message")
            .delivered[0]
            .uid;
    }
    println!(
        "filled INBOX with {n} messages (+1 of {} KiB HTML, +a thread of 20) in {:.1} s",
        big.len() / 1024,
        fill.elapsed().as_secs_f64()
    );
    let inbox = store
        .mailbox(account.id, "INBOX")
        .await
        .expect("store")
        .expect("INBOX")
        .id();

    let addr = running.addr("http").expect("http listener");
    let mut http = Http {
        s: BufReader::new(TcpStream::connect(addr).await.expect("connect")),
        cookie: String::new(),
        content_type: "application/x-www-form-urlencoded".into(),
    };
    let form = http.request("GET", "/mail/login", "").await;
    let token = field(&String::from_utf8_lossy(&form.body), "login_token");
    let signed = http
        .request(
            "POST",
            "/mail/login",
            &format!("address=user%40localhost&password=secret&login_token={token}&next=%2Fmail"),
        )
        .await;
    assert_eq!(signed.status, 303, "sign-in");

    for (label, path) in [
        (
            "message list, page 1 (10,000-message INBOX)",
            format!("/mail/box/{inbox}"),
        ),
        (
            "message list, page 100",
            format!("/mail/box/{inbox}?page=100"),
        ),
    ] {
        let mut times = Vec::with_capacity(runs);
        let mut bytes = 0;
        for _ in 0..runs {
            let t = Instant::now();
            let r = http.request("GET", &path, "").await;
            times.push(t.elapsed());
            assert_eq!(r.status, 200, "{path}");
            bytes = r.body.len();
        }
        report(label, times, bytes);
    }

    let mut page_times = Vec::new();
    let mut body_times = Vec::new();
    let mut both = Vec::new();
    let (mut page_bytes, mut body_bytes) = (0, 0);
    for _ in 0..(runs / 4).max(5) {
        let t = Instant::now();
        let page = http
            .request("GET", &format!("/mail/box/{inbox}/{big_uid}"), "")
            .await;
        let mid = Instant::now();
        let body = http
            .request("GET", &format!("/mail/box/{inbox}/{big_uid}/body"), "")
            .await;
        let end = Instant::now();
        assert_eq!(page.status, 200);
        assert_eq!(body.status, 200);
        assert!(
            body.headers
                .iter()
                .any(|(k, v)| k == "content-security-policy" && v.contains("sandbox"))
        );
        page_times.push(mid - t);
        body_times.push(end - mid);
        both.push(end - t);
        page_bytes = page.body.len();
        body_bytes = body.body.len();
    }
    report(
        "open 1 MB HTML message: reading page",
        page_times,
        page_bytes,
    );
    report(
        "open 1 MB HTML message: sanitized body",
        body_times,
        body_bytes,
    );
    report(
        "open 1 MB HTML message: both",
        both,
        page_bytes + body_bytes,
    );
    match conversation_view(&mut http, inbox, thread_uid, runs).await {
        Some((times, bytes)) => report("conversation view (20 messages)", times, bytes),
        None => println!(
            "conversation view: {CONVERSATION_PATH} answers 404 in this build, not measured"
        ),
    }
    autosave_round_trips(&mut http, runs).await;
    running.shutdown().await;
}

/// The compose page's autosave (issue 24): each save appends the new version of the draft
/// to Drafts and expunges the one before, and answers JSON with the new reference.
async fn autosave_round_trips(http: &mut Http, runs: usize) {
    let form = http.request("GET", "/mail/compose", "").await;
    let csrf = field(&String::from_utf8_lossy(&form.body), "csrf");
    let boundary = "bench-boundary-1f3a";
    http.content_type = format!("multipart/form-data; boundary={boundary}");
    let text =
        "A paragraph of a message being written, long enough to be a real draft. ".repeat(20);
    let mut draft = String::new();
    let mut times = Vec::with_capacity(runs);
    let mut bytes = 0;
    for i in 0..runs {
        let mut body = String::new();
        for (k, v) in [
            ("csrf", csrf.as_str()),
            ("to", "someone@example.org"),
            ("subject", "Autosaved"),
            ("body", &format!("{text} {i}")),
            ("draft", &draft),
        ] {
            body.push_str(&format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
            ));
        }
        body.push_str(&format!("--{boundary}--\r\n"));
        let t = Instant::now();
        let r = http.request("POST", "/mail/compose/autosave", &body).await;
        times.push(t.elapsed());
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let json: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON");
        draft = json["draft"].as_str().expect("draft").to_string();
        bytes = body.len();
    }
    http.content_type = "application/x-www-form-urlencoded".into();
    report(
        "compose autosave (save the new draft, expunge the old)",
        times,
        bytes,
    );
}
