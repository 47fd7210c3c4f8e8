//! The web skeleton over HTTP and HTTPS: start page, health, static files, error pages.

use tokio::net::TcpStream;

use crate::harness::{http_get, start, tls_client};

#[tokio::test]
async fn http_serves_health_static_and_error_pages() {
    let server = start().await;
    let http = server.running.addr("http").unwrap();

    let mut s = TcpStream::connect(http).await.unwrap();
    let (status, head, body) = http_get(&mut s, "/healthz").await;
    assert_eq!(status, 200, "{head}");
    assert_eq!(body, "ok\n");

    let mut s = TcpStream::connect(http).await.unwrap();
    let (status, head, body) = http_get(&mut s, "/static/style.css").await;
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/css"), "{head}");
    assert!(body.contains(":root"));

    let mut s = TcpStream::connect(http).await.unwrap();
    let (status, head, body) = http_get(&mut s, "/no/such/page").await;
    assert_eq!(status, 404);
    assert!(head.contains("text/html"), "{head}");
    assert!(body.contains("There is nothing at this address"), "{body}");

    let mut s = TcpStream::connect(http).await.unwrap();
    let (status, _, body) = http_get(&mut s, "/static/../Cargo.toml").await;
    assert_eq!(status, 404, "{body}");

    server.running.shutdown().await;
}

#[tokio::test]
async fn https_uses_the_shared_certificate() {
    let server = start().await;
    let https = server.running.addr("https").unwrap();
    let tcp = TcpStream::connect(https).await.unwrap();
    let mut tls = tls_client(server.dir.path(), tcp).await;
    let (status, _, body) = http_get(&mut tls, "/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(body, "ok\n");
    assert_eq!(server.running.tls.status().source, "self-signed");
    server.running.shutdown().await;
}

#[tokio::test]
async fn first_start_creates_the_admin_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::harness::config(dir.path());
    let running = mailroom::app::start(config.clone()).await.unwrap();
    let login = running
        .first_login
        .clone()
        .expect("admin created on first start");
    assert_eq!(login.address, "admin@localhost");
    assert!(login.password.len() >= 16);
    let admin = running
        .store
        .account_by_address("admin@localhost")
        .await
        .unwrap()
        .unwrap();
    assert!(admin.is_admin);
    let ip = "127.0.0.1".parse().unwrap();
    running
        .auth
        .login("test", ip, &login.address, &login.password)
        .await
        .unwrap();
    // `serve` says it printed the password.
    running.first_login_shown().await.unwrap();
    running.shutdown().await;

    let running = mailroom::app::start(config).await.unwrap();
    assert!(running.first_login.is_none(), "not again on restart");
    running
        .auth
        .login("test", ip, &login.address, &login.password)
        .await
        .unwrap();
    running.shutdown().await;
}

/// A first start whose password was never shown (it failed or was killed before printing it)
/// makes a new one at the next start; the lost one no longer works. A start that cannot bind
/// its listeners creates no account at all.
#[tokio::test]
async fn an_unshown_first_password_is_made_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::harness::config(dir.path());
    // A port in use: the start fails before any account exists.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    config.listen.imap = vec![taken.local_addr().unwrap()];
    assert!(mailroom::app::start(config.clone()).await.is_err());
    let store = mailroom::store::Store::open(&config.database_path())
        .await
        .unwrap();
    assert!(
        store
            .account_by_address("admin@localhost")
            .await
            .unwrap()
            .is_none()
    );
    store.close().await;
    drop(taken);
    config.listen.imap = vec!["127.0.0.1:0".parse().unwrap()];

    let running = mailroom::app::start(config.clone()).await.unwrap();
    let lost = running.first_login.clone().expect("admin created");
    running.shutdown().await;
    let running = mailroom::app::start(config.clone()).await.unwrap();
    let shown = running
        .first_login
        .clone()
        .expect("a new password, the last was never shown");
    assert_eq!(shown.address, lost.address);
    assert_ne!(shown.password, lost.password);
    let ip = "127.0.0.1".parse().unwrap();
    assert!(
        running
            .auth
            .login("test", ip, &lost.address, &lost.password)
            .await
            .is_err()
    );
    running
        .auth
        .login("test", ip, &shown.address, &shown.password)
        .await
        .unwrap();
    running.first_login_shown().await.unwrap();
    running.shutdown().await;
    let running = mailroom::app::start(config).await.unwrap();
    assert!(running.first_login.is_none());
    running.shutdown().await;
}

/// Parses `xml` with Python's ElementTree and prints "tag=text" for the given tags, so the
/// test sees what a real XML parser sees.
fn parse_xml(xml: &str, tags: &[&str]) -> String {
    use std::io::Write;
    let script = format!(
        "import sys, xml.etree.ElementTree as ET\n\
         root = ET.fromstring(sys.stdin.read())\n\
         for el in root.iter():\n    \
             tag = el.tag.split('}}')[-1]\n    \
             if tag in {tags:?}: print(tag + '=' + (el.text or '') + ' ' + str(el.attrib.get('type', '')))\n"
    );
    let mut child = std::process::Command::new("python3")
        .args(["-c", &script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(xml.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "not well-formed XML: {}\n{xml}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn mail_clients_configure_themselves() {
    let server = crate::harness::start_with(|c| {
        c.domain = "example.org".into();
        c.hostname = "mail.example.org".into();
    })
    .await;
    let http = server.running.addr("http").unwrap();
    let imaps = server.running.addr("imaps").unwrap().port();
    let smtps = server.running.addr("submissions").unwrap().port();

    for path in [
        "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=bob%40example.org",
        "/mail/config-v1.1.xml?emailaddress=bob@EXAMPLE.org",
    ] {
        let mut s = TcpStream::connect(http).await.unwrap();
        let (status, head, body) = http_get(&mut s, path).await;
        assert_eq!(status, 200, "{path}: {head}{body}");
        assert!(head.contains("content-type: application/xml"), "{head}");
        let seen = parse_xml(
            &body,
            &[
                "domain",
                "hostname",
                "port",
                "socketType",
                "incomingServer",
                "outgoingServer",
            ],
        );
        assert!(seen.contains("domain=example.org"), "{seen}");
        assert!(seen.contains("hostname=mail.example.org"), "{seen}");
        assert!(seen.contains(&format!("port={imaps} ")), "{seen}");
        assert!(seen.contains(&format!("port={smtps} ")), "{seen}");
        assert!(
            seen.contains("incomingServer=") && seen.contains(" imap"),
            "{seen}"
        );
        assert!(
            seen.contains("outgoingServer=") && seen.contains(" smtp"),
            "{seen}"
        );
    }
    let mut s = TcpStream::connect(http).await.unwrap();
    let (status, _, _) = http_get(
        &mut s,
        "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=x@elsewhere.test",
    )
    .await;
    assert_eq!(status, 404, "not our domain");

    // Outlook's autodiscover: a POST naming the address.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request = "<?xml version=\"1.0\"?><Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006\"><Request><EMailAddress>bob@example.org</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>";
    let mut s = TcpStream::connect(http).await.unwrap();
    s.write_all(
        format!(
            "POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/xml\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{request}",
            request.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let seen = parse_xml(body, &["Type", "Server", "Port", "LoginName", "SSL"]);
    assert!(seen.contains("Type=IMAP"), "{seen}");
    assert!(seen.contains(&format!("Port={imaps} ")), "{seen}");
    assert!(seen.contains("Server=mail.example.org"), "{seen}");
    assert!(seen.contains("LoginName=bob@example.org"), "{seen}");
    server.running.shutdown().await;
}

#[tokio::test]
async fn apple_devices_get_a_profile_with_the_real_ports() {
    use axum::http::StatusCode;
    let server = crate::harness::start_with(|c| {
        c.domain = "example.org".into();
        c.hostname = "mail.example.org".into();
    })
    .await;
    let store = &server.running.store;
    crate::harness::account(store, "bob@example.org", 0).await;
    store
        .set_display_name("bob@example.org", "Bob <& Co>")
        .await
        .unwrap();
    let imaps = server.running.addr("imaps").unwrap().port();
    let smtps = server.running.addr("submissions").unwrap().port();

    let mut b = crate::web_client::Browser::new(&server);
    let page = b.get("/mail/settings/mobileconfig").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "signed-in users only");
    let page = b.sign_in_at("/mail", "bob@example.org", "secret").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(
        b.get("/mail/settings")
            .await
            .body
            .contains("/mail/settings/mobileconfig")
    );
    let page = b.get("/mail/settings/mobileconfig").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(
        page.headers[axum::http::header::CONTENT_TYPE],
        "application/x-apple-aspen-config"
    );
    // What Python's plistlib reads from it.
    let script = "import sys, plistlib, json\n\
        p = plistlib.loads(sys.stdin.buffer.read())\n\
        m = p['PayloadContent'][0]\n\
        print(json.dumps([p['PayloadType'], p['PayloadUUID'], m['PayloadType'], m['EmailAddress'], \
        m['EmailAccountName'], m['IncomingMailServerHostName'], m['IncomingMailServerPortNumber'], \
        m['IncomingMailServerUseSSL'], m['OutgoingMailServerPortNumber'], m['OutgoingMailServerUsername']]))\n";
    let read = |body: &str| {
        use std::io::Write;
        let mut child = std::process::Command::new("python3")
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("python3 runs");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(body.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "not a plist: {}\n{body}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let seen = read(&page.body);
    let uuid = seen.split('"').nth(3).unwrap_or_default().to_string();
    assert_eq!(
        seen.trim(),
        format!(
            "[\"Configuration\", \"{uuid}\", \"com.apple.mail.managed\", \"bob@example.org\", \
             \"Bob <& Co>\", \"mail.example.org\", {imaps}, true, {smtps}, \"bob@example.org\"]"
        )
    );
    assert_eq!(uuid.len(), 36, "{seen}");
    // The same profile again: it replaces the installed one.
    let again = b.get("/mail/settings/mobileconfig").await;
    assert!(again.body.contains(&uuid));
    server.running.shutdown().await;
}
