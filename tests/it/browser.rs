//! Browser journeys in headless Chromium (Debian's `chromium`, driven by npm's
//! `playwright-core` from `tests/browser/`). `.ci/run` installs both and sets
//! `MAILROOM_BROWSER_TESTS=required`, so there a missing browser fails the test; elsewhere it is
//! skipped with a message. Screenshots of failures (and of the main pages) land in
//! `tests/browser/artifacts/`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::harness::{self, TestServer};

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Why the journeys cannot run here, if they cannot.
pub fn missing() -> Option<String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Some(format!("no Chromium at {chromium} (apt install chromium)"));
    }
    if !browser_dir().join("node_modules/playwright-core").exists() {
        return Some("playwright-core is not installed (cd tests/browser && npm ci)".into());
    }
    None
}

/// Runs `tests/browser/<script>` against `server` with `vars`; panics with its output if the
/// journey fails.
pub async fn journey(script: &str, server: &TestServer, vars: &[(&str, String)]) {
    if let Some(why) = missing() {
        if std::env::var("MAILROOM_BROWSER_TESTS").as_deref() == Ok("required") {
            panic!("browser tests are required here, but {why}");
        }
        eprintln!("SKIPPED {script}: {why}");
        return;
    }
    let http = server.running.addr("http").expect("http listener");
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(browser_dir().join(script))
        .current_dir(browser_dir())
        .env("BASE_URL", format!("http://{http}"))
        .env("ARTIFACTS", browser_dir().join("artifacts"))
        .kill_on_drop(true);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(180), cmd.output())
        .await
        .expect("the journey finishes within 3 minutes")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script} failed:\n{stdout}\n{stderr}");
    print!("{stdout}");
}

#[tokio::test]
async fn admin_journey_in_chromium() {
    let server = harness::start().await;
    let login = server.running.first_login.clone().expect("first login");
    let smtp = server.running.addr("smtp").expect("smtp listener");
    journey(
        "admin.mjs",
        &server,
        &[
            ("ADMIN_ADDRESS", login.address),
            ("ADMIN_PASSWORD", login.password),
            ("SMTP_PORT", smtp.port().to_string()),
        ],
    )
    .await;
    // What the browser did is in the store.
    let walter = server
        .running
        .store
        .account_by_address("walter@browser.test")
        .await
        .unwrap();
    if missing().is_none() {
        let walter = walter.expect("account created in the browser");
        assert_eq!(walter.quota_bytes, 1 << 20);
        assert_eq!(walter.message_count, 1);
    }
    server.running.shutdown().await;
}

#[tokio::test]
async fn webmail_journey_in_chromium() {
    let (server, _alice) = crate::imap::server().await;
    harness::account(&server.running.store, "bob@localhost", 0).await;
    let smtp = server.running.addr("smtp").expect("smtp listener");
    journey(
        "webmail.mjs",
        &server,
        &[("SMTP_PORT", smtp.port().to_string())],
    )
    .await;
    if missing().is_some() {
        return server.running.shutdown().await;
    }
    // Bob's reply, sent from the browser, is in Alice's INBOX over IMAP, attachment and all.
    let mut imap = crate::imap::logged_in(&server).await;
    imap.ok("SELECT INBOX").await;
    let lines = imap.ok("UID SEARCH SUBJECT \"Re: Newsletter\"").await;
    let uid = lines
        .iter()
        .find_map(|l| l.strip_prefix("* SEARCH "))
        .and_then(|u| u.split_whitespace().next())
        .expect("the reply arrived")
        .to_string();
    let fetched = imap
        .ok(&format!("UID FETCH {uid} BODY.PEEK[]"))
        .await
        .join("\n");
    assert!(fetched.contains("In-Reply-To:"), "{fetched}");
    assert!(fetched.contains("agenda.txt"), "{fetched}");
    assert!(
        fetched.contains("Thanks! See the agenda attached."),
        "{fetched}"
    );
    server.running.shutdown().await;
}

#[tokio::test]
async fn two_factor_journey_in_chromium() {
    let server = harness::start().await;
    let store = &server.running.store;
    let pat = harness::account(store, "pat@localhost", 0).await;
    journey(
        "two_factor.mjs",
        &server,
        &[
            ("ADDRESS", "pat@localhost".to_string()),
            ("PASSWORD", "secret".to_string()),
        ],
    )
    .await;
    if missing().is_none() {
        // What the browser did is in the store: TOTP on, two recovery codes spent, a passkey
        // used, and each sign-in recorded with its method.
        assert!(store.totp(pat.id).await.unwrap().unwrap().confirmed);
        assert_eq!(store.recovery_codes_left(pat.id).await.unwrap(), 8);
        let passkeys = store.passkeys(pat.id).await.unwrap();
        assert_eq!(passkeys.len(), 1);
        assert_eq!(passkeys[0].name, "Chromium");
        assert!(passkeys[0].last_used_at.is_some());
        let methods: Vec<(String, bool)> = store
            .recent_sign_ins(pat.id, 20)
            .await
            .unwrap()
            .into_iter()
            .map(|s| (s.method, s.success))
            .collect();
        for expected in [
            ("totp", true),
            ("totp", false),
            ("recovery code", true),
            ("recovery code", false),
            ("passkey", true),
        ] {
            assert!(
                methods
                    .iter()
                    .any(|(m, ok)| m == expected.0 && *ok == expected.1),
                "{expected:?} in {methods:?}"
            );
        }
    }
    server.running.shutdown().await;
}

#[tokio::test]
async fn security_journey_in_chromium() {
    let server = harness::start().await;
    let bob = harness::account(&server.running.store, "bob@localhost", 0).await;
    journey("security.mjs", &server, &[]).await;
    if missing().is_none() {
        // The browser signed one of its two sessions out: one is left.
        let left = server.running.store.sessions_of(bob.id).await.unwrap();
        assert_eq!(left.len(), 1, "{left:?}");
        assert!(left[0].user_agent.contains("Chrome"), "{left:?}");
    }
    server.running.shutdown().await;
}

#[tokio::test]
async fn reports_journey_in_chromium() {
    let server = harness::start_with(|c| c.domain = "example.org".into()).await;
    let login = server.running.first_login.clone().expect("first login");
    // A DMARC and a TLS report as they are stored when they arrive at postmaster@ (the
    // arrival over SMTP is tests/it/reports.rs's).
    let xml = crate::reports::XML.replace("REPORT-ID", "browser-1");
    let parsed = mail_auth::report::Report::parse_xml(xml.as_bytes()).expect("report");
    let store = &server.running.store;
    store
        .add_dmarc_report(&mailroom::reports::intake::dmarc_record(&parsed), 1)
        .await
        .unwrap();
    let tls = mail_auth::report::tlsrpt::TlsReport::parse_json(crate::reports::TLS_JSON.as_bytes())
        .expect("TLS report");
    store
        .add_tls_report(&mailroom::reports::intake::tls_record(&tls), 1)
        .await
        .unwrap();
    journey(
        "reports.mjs",
        &server,
        &[
            ("ADMIN_ADDRESS", login.address),
            ("ADMIN_PASSWORD", login.password),
        ],
    )
    .await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn compose_journey_in_chromium() {
    let server = harness::start().await;
    let store = &server.running.store;
    let bob = harness::account(store, "bob@localhost", 0).await;
    harness::account(store, "carol@localhost", 0).await;
    store
        .add_contact(
            bob.id,
            &mailroom::store::ContactFields {
                name: "Carol Example".into(),
                emails: vec!["carol@localhost".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    journey("compose.mjs", &server, &[]).await;
    if missing().is_some() {
        return server.running.shutdown().await;
    }
    let received = harness::inbox_texts(store, "carol@localhost").await;
    for size in ["desktop", "phone"] {
        let rich = received
            .iter()
            .find(|m| m.contains(&format!("Subject: Rich hello {size}")))
            .unwrap_or_else(|| panic!("the rich message ({size}) arrived"));
        let parsed = mail_parser::MessageParser::default()
            .parse(rich.as_bytes())
            .unwrap();
        assert!(rich.contains("multipart/alternative"), "{rich}");
        let html = parsed.body_html(0).unwrap();
        assert!(
            html.contains("<b>bold words</b>") || html.contains("<strong>bold words</strong>"),
            "{html}"
        );
        assert!(
            html.contains("<ul>") && html.contains("second item"),
            "{html}"
        );
        assert!(
            !html.contains("onerror") && !html.contains("pwned"),
            "{html}"
        );
        let text = parsed.body_text(0).unwrap();
        assert!(text.contains("bold words"), "{text}");
        assert!(
            text.contains("- first item") && text.contains("- second item"),
            "{text}"
        );
        for (subject, file) in [
            (format!("Kept file {size}"), format!("notes-{size}.txt")),
            (format!("Draft {size}"), format!("plan-{size}.txt")),
        ] {
            let m = received
                .iter()
                .find(|m| m.contains(&format!("Subject: {subject}")))
                .unwrap_or_else(|| panic!("{subject} arrived"));
            assert!(m.contains(&file), "{subject} carries {file}: {m}");
        }
    }
    let drafts = store.mailbox(bob.id, "Drafts").await.unwrap().unwrap();
    assert!(store.messages(&drafts).await.unwrap().is_empty());
    server.running.shutdown().await;
}

/// Issue 24's lists and layout: conversations, the reading pane, Undo, Empty Trash, and the
/// phone layout of the webmail and the admin panel.
#[tokio::test]
async fn lists_journey_in_chromium() {
    let server = harness::start().await;
    harness::account(&server.running.store, "bob@localhost", 0).await;
    harness::account(&server.running.store, "ann@localhost", 0).await;
    let login = server.running.first_login.clone().expect("first login");
    let smtp = server.running.addr("smtp").expect("smtp listener");
    journey(
        "lists.mjs",
        &server,
        &[
            ("SMTP_PORT", smtp.port().to_string()),
            ("ADMIN_ADDRESS", login.address),
            ("ADMIN_PASSWORD", login.password),
        ],
    )
    .await;
    server.running.shutdown().await;
}

/// axe-core on the list, reading, compose and settings pages (desktop and phone): no serious
/// or critical violation.
#[tokio::test]
async fn accessibility_journey_in_chromium() {
    let server = harness::start().await;
    harness::account(&server.running.store, "bob@localhost", 0).await;
    let smtp = server.running.addr("smtp").expect("smtp listener");
    journey(
        "a11y.mjs",
        &server,
        &[("SMTP_PORT", smtp.port().to_string())],
    )
    .await;
    server.running.shutdown().await;
}

/// Reading (issue 24), at desktop and phone sizes: plain-text links, a right-to-left override
/// in a file name, the remote-images notice, the download's own policy, the favicon.
#[tokio::test]
async fn reading_journey_in_chromium() {
    let (server, _alice) = crate::imap::server().await;
    harness::account(&server.running.store, "bob@localhost", 0).await;
    let smtp = server.running.addr("smtp").expect("smtp listener");
    journey(
        "reading.mjs",
        &server,
        &[("SMTP_PORT", smtp.port().to_string())],
    )
    .await;
    server.running.shutdown().await;
}
