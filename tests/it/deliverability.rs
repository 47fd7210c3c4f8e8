//! Issue 23: the required addresses (postmaster@, abuse@, the bare postmaster), MTA-STS
//! publishing, the TLS-RPT record, the smarthost and the self-check.

use crate::harness::{TestServer, account, inbox_texts, start_with};
use crate::smtp::connect;

async fn server() -> TestServer {
    let server = start_with(|c| {
        c.domain = "example.org".into();
        c.hostname = "mail.example.org".into();
    })
    .await;
    let store = &server.running.store;
    store.add_domain("example.net").await.unwrap();
    account(store, "bob@example.org", 0).await;
    server
}

fn body(subject: &str) -> String {
    format!(
        "From: someone@remote.test\r\nTo: postmaster\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@remote.test>\r\n\r\nHello postmaster.\r\n"
    )
}

async fn send(server: &TestServer, rcpts: &[&str], subject: &str) -> Vec<(u16, String)> {
    let mut c = connect(server, "smtp").await;
    c.expect("EHLO remote.test", 250, "").await;
    c.expect("MAIL FROM:<someone@remote.test>", 250, "").await;
    let mut replies = Vec::new();
    for rcpt in rcpts {
        replies.push(c.cmd(&format!("RCPT TO:<{rcpt}>")).await);
    }
    if replies.iter().any(|(code, _)| *code == 250) {
        c.expect("DATA", 354, "").await;
        c.send(body(subject).as_bytes()).await;
        c.expect(".", 250, "").await;
    }
    c.expect("QUIT", 221, "").await;
    replies
}

fn subjects(texts: &[String]) -> Vec<String> {
    texts
        .iter()
        .filter_map(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
        })
        .collect()
}

#[tokio::test]
async fn postmaster_and_abuse_are_accepted_and_reach_the_first_admin() {
    let server = server().await;
    let store = &server.running.store;
    for (rcpt, subject) in [
        ("postmaster@example.org", "p-org"),
        ("PostMaster@Example.NET", "p-net"),
        ("abuse@example.net", "a-net"),
        ("postmaster", "bare"),
        ("POSTMASTER", "bare-upper"),
    ] {
        let replies = send(&server, &[rcpt], subject).await;
        assert_eq!(replies[0].0, 250, "{rcpt}: {:?}", replies[0]);
    }
    // Other names are still unknown, and other domains still not ours.
    let replies = send(
        &server,
        &["hostmaster@example.org", "postmaster@remote.test"],
        "x",
    )
    .await;
    assert_eq!(replies[0].0, 550, "{replies:?}");
    assert_eq!(replies[1].0, 554, "{replies:?}");
    let got = subjects(&inbox_texts(store, "admin@example.org").await);
    assert_eq!(got, ["p-org", "p-net", "a-net", "bare", "bare-upper"]);
    assert!(inbox_texts(store, "bob@example.org").await.is_empty());
}

#[tokio::test]
async fn required_addresses_follow_routes_and_explicit_names_win() {
    let server = server().await;
    let store = &server.running.store;
    // Globally to bob, for example.net's abuse to a remote address (forwarded), and an alias
    // named postmaster@example.net beats both.
    store
        .set_required_route(None, "postmaster", Some("bob@example.org"))
        .await
        .unwrap();
    store
        .set_required_route(None, "abuse", Some("bob@example.org"))
        .await
        .unwrap();
    store
        .set_required_route(Some("example.net"), "abuse", Some("abuse-desk@remote.test"))
        .await
        .unwrap();
    account(store, "carol@example.net", 0).await;
    store
        .add_alias("postmaster@example.net", &["carol@example.net".into()])
        .await
        .unwrap();
    // A catch-all does not take the required addresses from their route.
    store
        .add_alias("@example.org", &["carol@example.net".into()])
        .await
        .unwrap();
    for (rcpt, subject) in [
        ("postmaster@example.org", "to-bob-1"),
        ("abuse@example.org", "to-bob-2"),
        ("postmaster@example.net", "to-carol"),
        ("abuse@example.net", "to-remote"),
    ] {
        let replies = send(&server, &[rcpt], subject).await;
        assert_eq!(replies[0].0, 250, "{rcpt}: {replies:?}");
    }
    assert_eq!(
        subjects(&inbox_texts(store, "bob@example.org").await),
        ["to-bob-1", "to-bob-2"]
    );
    assert_eq!(
        subjects(&inbox_texts(store, "carol@example.net").await),
        ["to-carol"]
    );
    assert!(inbox_texts(store, "admin@example.org").await.is_empty());
    // The remote route is forwarded (the message itself may already have bounced: the test DNS
    // knows no remote.test).
    let expansion = store
        .expand_recipient("abuse@example.net")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(expansion.remote, ["abuse-desk@remote.test"]);
    assert!(expansion.local.is_empty());
    // Back to the default: the first admin.
    store
        .set_required_route(None, "postmaster", None)
        .await
        .unwrap();
    send(&server, &["postmaster@example.org"], "to-admin").await;
    assert_eq!(
        subjects(&inbox_texts(store, "admin@example.org").await),
        ["to-admin"]
    );
    // Routes only for our domains and to real addresses.
    assert!(
        store
            .set_required_route(Some("remote.test"), "abuse", Some("a@b.test"))
            .await
            .is_err()
    );
    assert!(
        store
            .set_required_route(None, "abuse", Some("not an address"))
            .await
            .is_err()
    );
    assert!(
        store
            .set_required_route(None, "hostmaster", Some("a@b.test"))
            .await
            .is_err()
    );
}

/// GET `path` with this `Host` over `stream`: (status, head lower-cased, body).
async fn get_as<S>(stream: &mut S, host: &str, path: &str) -> (u16, String, String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_lowercase(), body.to_string())
}

async fn fetch_policy(server: &TestServer, https: bool, host: &str) -> (u16, String, String) {
    let kind = if https { "https" } else { "http" };
    let tcp = tokio::net::TcpStream::connect(server.running.addr(kind).unwrap())
        .await
        .unwrap();
    if https {
        let mut tls = crate::harness::tls_client(server.dir.path(), tcp).await;
        get_as(&mut tls, host, "/.well-known/mta-sts.txt").await
    } else {
        let mut tcp = tcp;
        get_as(&mut tcp, host, "/.well-known/mta-sts.txt").await
    }
}

#[tokio::test]
async fn mta_sts_is_switched_on_by_an_admin_and_served_over_https_only() {
    let server = server().await;
    let store = &server.running.store;
    // Off by default: nothing served, no records.
    assert_eq!(
        fetch_policy(&server, true, "mta-sts.example.org").await.0,
        404
    );
    let records = mailroom::records::for_domain(store, "mail.example.org", "example.org")
        .await
        .unwrap();
    assert!(!records.iter().any(|r| r.name.contains("mta-sts")));

    let login = server.running.first_login.clone().unwrap();
    let mut b = crate::web_client::Browser::new(&server);
    b.sign_in(&login.address, &login.password).await;
    let csrf = b.csrf().await;
    let page = b
        .post(
            "/admin/deliverability/mta-sts/example.org",
            &[("csrf", &csrf), ("mode", "testing")],
        )
        .await;
    assert_eq!(
        page.status,
        axum::http::StatusCode::SEE_OTHER,
        "{}",
        page.body
    );
    let page = b
        .post(
            "/admin/deliverability/mta-sts/example.org",
            &[("csrf", &csrf), ("mode", "sometimes")],
        )
        .await;
    assert_eq!(page.status, axum::http::StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("Choose off, testing or enforce."));
    let audit = store.audit_entries("mta_sts.set", 0, 10).await.unwrap();
    assert_eq!(audit.entries.len(), 1, "audited once");

    let (status, head, body) = fetch_policy(&server, true, "MTA-STS.example.org").await;
    assert_eq!(status, 200, "{head}{body}");
    assert!(head.contains("content-type: text/plain"), "{head}");
    assert_eq!(
        body,
        "version: STSv1\r\nmode: testing\r\nmx: mail.example.org\r\nmax_age: 86400\r\n"
    );
    // Not over plain HTTP, not for another host or a domain without a policy.
    assert_eq!(
        fetch_policy(&server, false, "mta-sts.example.org").await.0,
        404
    );
    assert_eq!(fetch_policy(&server, true, "mail.example.org").await.0, 404);
    assert_eq!(
        fetch_policy(&server, true, "mta-sts.example.net").await.0,
        404
    );
    assert_eq!(
        fetch_policy(&server, true, "mta-sts.remote.test").await.0,
        404
    );

    // The records: the CNAME and the id, which changes with the mode.
    let testing = mailroom::records::for_domain(store, "mail.example.org", "example.org")
        .await
        .unwrap();
    let id_of = |records: &[mailroom::records::DnsRecord]| {
        records
            .iter()
            .find(|r| r.name == "_mta-sts.example.org.")
            .map(|r| r.value.clone())
            .unwrap()
    };
    assert!(
        testing
            .iter()
            .any(|r| r.name == "mta-sts.example.org." && r.value == "mail.example.org.")
    );
    store
        .set_mta_sts_mode("example.org", mailroom::store::MtaStsMode::Enforce)
        .await
        .unwrap();
    let enforce = mailroom::records::for_domain(store, "mail.example.org", "example.org")
        .await
        .unwrap();
    assert_ne!(id_of(&testing), id_of(&enforce));
    let (_, _, body) = fetch_policy(&server, true, "mta-sts.example.org").await;
    assert!(body.contains("mode: enforce\r\n") && body.contains("max_age: 604800"));
    // The domain page lists them too.
    let page = b.get("/admin/domains/example.org").await;
    assert!(page.body.contains("_mta-sts.example.org."), "{}", page.body);
    assert!(page.body.contains("_smtp._tls.example.org."));
}

#[tokio::test]
async fn the_admin_page_sets_routes_and_the_smarthost_without_showing_the_password() {
    let server = server().await;
    let store = &server.running.store;
    let login = server.running.first_login.clone().unwrap();
    let mut b = crate::web_client::Browser::new(&server);
    b.sign_in(&login.address, &login.password).await;
    let csrf = b.csrf().await;
    let page = b.get("/admin/deliverability").await;
    assert!(page.body.contains("admin@example.org"), "the default shown");
    let page = b
        .post(
            "/admin/deliverability/required",
            &[
                ("csrf", &csrf),
                ("local", "abuse"),
                ("domain", "example.net"),
                ("target", "bob@example.org"),
            ],
        )
        .await;
    assert_eq!(
        page.status,
        axum::http::StatusCode::SEE_OTHER,
        "{}",
        page.body
    );
    let page = b
        .post(
            "/admin/deliverability/required",
            &[("csrf", &csrf), ("local", "abuse"), ("target", "nonsense")],
        )
        .await;
    assert_eq!(page.status, axum::http::StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("id=\"required-error\""), "{}", page.body);
    let page = b
        .post(
            "/admin/deliverability/smarthost",
            &[
                ("csrf", &csrf),
                ("domain", ""),
                ("host", "relay.example.com"),
                ("port", "587"),
                ("tls", "starttls"),
                ("username", "mailer"),
                ("password", "s3cret-relay-pass"),
            ],
        )
        .await;
    assert_eq!(
        page.status,
        axum::http::StatusCode::SEE_OTHER,
        "{}",
        page.body
    );
    let page = b.get("/admin/deliverability").await;
    assert!(page.body.contains("relay.example.com:587"), "{}", page.body);
    assert!(page.body.contains("abuse@example.net"));
    assert!(!page.body.contains("s3cret-relay-pass"), "never shown back");
    // Saved again without a password: the stored one is kept.
    b.post(
        "/admin/deliverability/smarthost",
        &[
            ("csrf", &csrf),
            ("host", "relay.example.com"),
            ("port", "465"),
            ("tls", "implicit"),
            ("username", "mailer"),
            ("password", ""),
        ],
    )
    .await;
    let relay = store.smarthost_for("example.org").await.unwrap().unwrap();
    assert_eq!(relay.port, 465);
    assert_eq!(relay.password, "s3cret-relay-pass");
    let audit = store.audit_entries("smarthost", 0, 10).await.unwrap();
    assert_eq!(audit.entries.len(), 2);
    assert!(
        audit
            .entries
            .iter()
            .all(|e| !e.detail.contains("s3cret-relay-pass"))
    );
    let page = b
        .post(
            "/admin/deliverability/smarthost/clear",
            &[("csrf", &csrf), ("domain", "")],
        )
        .await;
    assert_eq!(page.status, axum::http::StatusCode::SEE_OTHER);
    assert!(store.smarthost_for("example.org").await.unwrap().is_none());
    assert_eq!(
        store
            .audit_entries("required_address", 0, 10)
            .await
            .unwrap()
            .entries
            .len(),
        1
    );
}

/// DNS for the self-check: our hostname at 127.0.0.2, whose PTR names another host that
/// does not point back (a mismatch), listed on the test list `bl.test`; example.org listed on `dbl.test`; the
/// well-known domain's MX at 127.0.0.1 (whose port 25 `smtp_port` points at a closed port).
fn check_zone() -> crate::dns_server::Zone {
    use std::net::IpAddr;
    let zone = crate::dns_server::Zone::default();
    zone.ip("mail.example.org", IpAddr::from([127, 0, 0, 2]));
    zone.ptr(IpAddr::from([127, 0, 0, 2]), "elsewhere.example.net");
    zone.ip("2.0.0.127.bl.test", IpAddr::from([127, 0, 0, 2]));
    zone.ip("example.org.dbl.test", IpAddr::from([127, 0, 1, 2]));
    zone.mx("wellknown.test", 10, "mx.wellknown.test");
    zone.ip("mx.wellknown.test", IpAddr::from([127, 0, 0, 1]));
    zone
}

fn check_settings(c: &mut mailroom::config::Config) {
    c.check.port25_domain = "wellknown.test".into();
    c.check.ip_blocklists = vec!["bl.test".into()];
    c.check.domain_blocklists = vec!["dbl.test".into()];
    c.queue.smtp_port = crate::harness::free_port();
}

#[tokio::test]
async fn the_check_page_explains_each_problem() {
    let dns = crate::dns_server::start(check_zone()).await;
    let server = start_with(|c| {
        c.domain = "example.org".into();
        c.hostname = "mail.example.org".into();
        c.dns.nameservers = vec![dns];
        check_settings(c);
    })
    .await;
    let login = server.running.first_login.clone().unwrap();
    let mut b = crate::web_client::Browser::new(&server);
    b.sign_in(&login.address, &login.password).await;
    let page = b.get("/admin/check").await;
    assert_eq!(page.status, axum::http::StatusCode::OK, "{}", page.body);
    let body = page.body;
    for words in [
        "Reverse DNS of 127.0.0.2",
        "does not point back to the address (mismatch)",
        "127.0.0.2 on bl.test",
        "listed on bl.test",
        "example.org on dbl.test",
        "Outbound port 25",
        "cannot connect to mx.wellknown.test",
        "smarthost",
        "_dmarc.example.org.",
        "missing",
        "no DMARC report received yet",
        "problem(s)",
    ] {
        assert!(body.contains(words), "{words:?} in {body}");
    }
}

#[test]
fn mailroom_check_prints_the_findings_and_fails_on_a_problem() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (dns, _keep) = rt.block_on(async {
        let dns = crate::dns_server::start(check_zone()).await;
        let store = mailroom::store::Store::open(&data.join("mailroom.db"))
            .await
            .unwrap();
        store.add_domain("example.org").await.unwrap();
        store.close().await;
        (dns, ())
    });
    let config = dir.path().join("mailroom.toml");
    std::fs::write(
        &config,
        format!(
            "hostname = \"mail.example.org\"\ndomain = \"example.org\"\ndata_dir = \"{}\"\n\
             [dns]\nnameservers = [\"{dns}\"]\n[queue]\nsmtp_port = {}\n\
             [check]\nport25_domain = \"wellknown.test\"\nip_blocklists = [\"bl.test\"]\n\
             domain_blocklists = [\"dbl.test\"]\n",
            data.display(),
            crate::harness::free_port()
        ),
    )
    .unwrap();
    // The DNS server runs on `rt`; the CLI is another process.
    let out = std::thread::scope(|s| {
        let handle = s.spawn(|| {
            std::process::Command::new(env!("CARGO_BIN_EXE_mailroom"))
                .arg("--config")
                .arg(&config)
                .arg("check")
                .env_remove("RUST_LOG")
                .output()
                .unwrap()
        });
        rt.block_on(async {
            while !handle.is_finished() {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        });
        handle.join().unwrap()
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    for words in [
        "problem  Reverse DNS of 127.0.0.2: its PTR name does not point back to the address (mismatch)",
        "problem  127.0.0.2 on bl.test: listed on bl.test",
        "fix: ",
        "problem  Outbound port 25",
        "_smtp._tls.example.org.",
    ] {
        assert!(stdout.contains(words), "{words:?} in {stdout}");
    }
    assert!(stderr.contains("problems found"), "{stderr}");
}

#[tokio::test]
async fn deliverability_journey_in_chromium() {
    let server = crate::harness::start().await;
    let login = server.running.first_login.clone().unwrap();
    crate::browser::journey(
        "deliverability.mjs",
        &server,
        &[
            ("ADMIN_ADDRESS", login.address),
            ("ADMIN_PASSWORD", login.password),
        ],
    )
    .await;
    if crate::browser::missing().is_none() {
        let store = &server.running.store;
        assert_eq!(
            store.mta_sts_mode("localhost").await.unwrap(),
            mailroom::store::MtaStsMode::Testing
        );
        let relay = store.smarthost_for("localhost").await.unwrap().unwrap();
        assert_eq!(relay.password, "relay-password-123");
        let routes = store.required_routes().await.unwrap();
        assert_eq!(routes.len(), 1);
        assert_eq!(routes[0].target, "abuse-desk@elsewhere.test");
    }
    server.running.shutdown().await;
}
