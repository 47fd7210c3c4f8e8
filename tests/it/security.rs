//! Account security in the web (issue 19): the Security page (sessions with device and
//! address, sign out one or everywhere else, the sign-in history), the webmail's password
//! change ending other sessions, the admin audit log (every panel action, search, paging),
//! and the password rule in the panel and the webmail.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use mailroom::store::{Audit, SignIn, Store};
use mailroom::web::session::Client;

use crate::harness::{self, TestServer};
use crate::web_client::{Browser, Page, field};

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, \
                      like Gecko) Chrome/131.0.0.0 Safari/537.36";
const EVIL: &str = "<script>alert('ua')</script>";

/// bob@localhost, password "secret".
async fn server() -> TestServer {
    let server = harness::start().await;
    harness::account(&server.running.store, "bob@localhost", 0).await;
    server
}

/// A browser at `ip` (loopback, so the password may travel over plain HTTP) signed in to the
/// webmail as bob, saying it is `user_agent`.
async fn bob_from(server: &TestServer, ip: [u8; 4], user_agent: &str) -> Browser {
    let mut b = Browser::new(server);
    b.client = Client {
        ip: ip.into(),
        https: false,
    };
    let form = b.get("/mail/login").await;
    let token = field(&form.body, "login_token");
    let body = format!("address=bob%40localhost&password=secret&login_token={token}&next=%2Fmail");
    let page = b
        .send(
            Request::post("/mail/login")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::USER_AGENT, user_agent)
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    b
}

/// The values of the hidden `session` fields of a page, in order.
fn session_ids(html: &str) -> Vec<String> {
    html.match_indices("name=\"session\" value=\"")
        .map(|(i, m)| html[i + m.len()..].split('"').next().unwrap().to_string())
        .collect()
}

/// Whether the browser's session still opens the webmail.
async fn signed_in(b: &mut Browser) -> bool {
    let page = b.get("/mail/settings").await;
    match page.status {
        StatusCode::OK => true,
        StatusCode::SEE_OTHER => {
            assert!(
                page.location.starts_with("/mail/login"),
                "{}",
                page.location
            );
            false
        }
        s => panic!("unexpected {s}"),
    }
}

async fn security(b: &mut Browser) -> Page {
    let page = b.get("/mail/settings/security").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page
}

#[tokio::test]
async fn the_security_page_lists_sessions_and_signs_them_out() {
    let server = server().await;
    let store = server.running.store.clone();
    let mut laptop = bob_from(&server, [127, 0, 0, 1], FIREFOX).await;
    let mut desktop = bob_from(&server, [127, 0, 0, 2], CHROME).await;
    let mut odd = bob_from(&server, [127, 0, 0, 3], EVIL).await;

    // The settings page links to it; it lists the three sessions, this one marked.
    assert!(
        laptop
            .get("/mail/settings")
            .await
            .body
            .contains("href=\"/mail/settings/security\"")
    );
    let page = security(&mut laptop).await;
    for text in [
        "Firefox on Linux",
        "Chrome on Windows",
        "Unknown browser",
        "127.0.0.2",
        "127.0.0.3",
        "/mail/settings/app-passwords",
        "/mail/settings/two-factor",
    ] {
        assert!(page.body.contains(text), "{text}: {}", page.body);
    }
    assert_eq!(page.body.matches("\"tag\">this device").count(), 1);
    let this_row = page
        .body
        .split("<tr")
        .find(|r| r.contains("\"tag\">this device"))
        .unwrap();
    assert!(this_row.contains("Firefox on Linux"), "{this_row}");
    // The User-Agent is shown (as a tooltip) escaped, never as markup.
    assert!(!page.body.contains("<script>alert"), "{}", page.body);
    assert!(page.body.contains("&#60;script&#62;"), "{}", page.body);
    // Sessions are named by an opaque id, not by anything the cookie or the database key is.
    let ids = session_ids(&page.body);
    assert_eq!(ids.len(), 3);
    for id in &ids {
        assert_eq!(id.len(), 32, "{id}");
        for (_, token) in laptop.cookies.iter().chain(&desktop.cookies) {
            assert!(!token.contains(id.as_str()) && !id.contains(token.as_str()));
        }
    }
    let bob = store
        .account_by_address("bob@localhost")
        .await
        .unwrap()
        .unwrap();
    let stored = store.sessions_of(bob.id).await.unwrap();
    let desktop_id = stored
        .iter()
        .find(|s| s.ip == "127.0.0.2")
        .unwrap()
        .id
        .clone();
    assert_eq!(
        stored
            .iter()
            .find(|s| s.ip == "127.0.0.1")
            .unwrap()
            .user_agent,
        FIREFOX
    );

    // Sign out the desktop: its cookie no longer opens anything; the others still work.
    let csrf = field(&page.body, "csrf");
    let done = laptop
        .post(
            "/mail/settings/security/sign-out",
            &[("csrf", &csrf), ("session", &desktop_id)],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location, "/mail/settings/security?done=signed-out");
    assert!(!signed_in(&mut desktop).await);
    assert!(signed_in(&mut laptop).await);
    assert!(signed_in(&mut odd).await);
    // Gone is gone: the same id again, or one never given, is not found.
    for id in [desktop_id.as_str(), "00000000000000000000000000000000"] {
        let again = laptop
            .post(
                "/mail/settings/security/sign-out",
                &[("csrf", &csrf), ("session", id)],
            )
            .await;
        assert_eq!(again.status, StatusCode::NOT_FOUND);
    }
    // Without the token nothing happens.
    let forged = desktop_id_of(&store, bob.id, "127.0.0.3").await;
    let refused = laptop
        .post(
            "/mail/settings/security/sign-out",
            &[("csrf", "forged"), ("session", &forged)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(signed_in(&mut odd).await);

    // Everywhere else: the odd browser goes, this one stays, and the page says so.
    let mut desktop = bob_from(&server, [127, 0, 0, 2], CHROME).await;
    let done = laptop
        .post(
            "/mail/settings/security/sign-out-others",
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(
        done.location,
        "/mail/settings/security?done=signed-out-others"
    );
    assert!(!signed_in(&mut odd).await);
    assert!(!signed_in(&mut desktop).await);
    assert!(signed_in(&mut laptop).await);
    let page = laptop.get(&done.location).await;
    assert_eq!(session_ids(&page.body).len(), 1);
    assert!(page.body.contains("Every other session was signed out."));
    assert!(page.body.contains("signed in on this device only"));

    // Signing out this very session is signing out.
    let own = session_ids(&page.body).remove(0);
    let done = laptop
        .post(
            "/mail/settings/security/sign-out",
            &[("csrf", &csrf), ("session", &own)],
        )
        .await;
    assert_eq!(done.location, "/mail/login");
    assert!(!signed_in(&mut laptop).await);
    assert!(store.sessions_of(bob.id).await.unwrap().is_empty());
    server.running.shutdown().await;
}

async fn desktop_id_of(store: &Store, account: i64, ip: &str) -> String {
    store
        .sessions_of(account)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.ip == ip)
        .unwrap()
        .id
}

#[tokio::test]
async fn the_sign_in_history_shows_the_last_twenty() {
    let server = server().await;
    let store = server.running.store.clone();
    let bob = store
        .account_by_address("bob@localhost")
        .await
        .unwrap()
        .unwrap();
    let mut b = bob_from(&server, [127, 0, 0, 1], FIREFOX).await;
    // The browser's own sign-in is recorded off the login path (in batches): wait for it, so
    // it is older than the rows below whenever the recorder writes.
    for _ in 0..100 {
        if !store.recent_sign_ins(bob.id, 1).await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let first = store.recent_sign_ins(bob.id, 1).await.unwrap();
    assert_eq!(first.len(), 1, "the web sign-in is in the history");
    assert_eq!(
        (first[0].protocol.as_str(), first[0].success),
        ("web", true)
    );
    // What the sign-in paths record (auth and web/login.rs): older ones first.
    let mut batch: Vec<SignIn> = (0..25)
        .map(|i| SignIn {
            account_id: bob.id,
            at: mailroom::store::now() - 1000 + i,
            ip: format!("198.51.100.{i}"),
            protocol: "imap".into(),
            method: "password".into(),
            success: true,
        })
        .collect();
    batch.push(Store::sign_in_now(
        bob.id,
        "203.0.113.9",
        "web",
        "password",
        false,
    ));
    batch.push(Store::sign_in_now(
        bob.id,
        "203.0.113.10",
        "smtp",
        "app password phone",
        true,
    ));
    store.record_sign_ins(&batch).await.unwrap();
    let page = security(&mut b).await;
    let table = page.body.split("id=\"sign-ins\"").nth(1).unwrap();
    let table = table.split("</table>").next().unwrap();
    assert_eq!(
        table.matches("<tr").count(),
        21,
        "a head and 20 rows: {table}"
    );
    // Newest first: the successful SMTP sign-in, then the failed web one (the sign-in of this
    // browser may be among them too, when the web sign-in records it).
    let rows: Vec<&str> = table.split("<tr").skip(2).collect();
    let row = |ip: &str| {
        rows.iter()
            .position(|r| r.contains(&format!(">{ip}<")))
            .unwrap()
    };
    let (smtp, web) = (row("203.0.113.10"), row("203.0.113.9"));
    assert!(smtp < web && web < row("198.51.100.24"));
    assert!(rows[smtp].contains("SMTP") && rows[smtp].contains("app password phone"));
    assert!(rows[smtp].contains("signed in") && !rows[smtp].contains("failed"));
    assert!(
        rows[web].contains("Web") && rows[web].contains("failed"),
        "{}",
        rows[web]
    );
    // The oldest of the 25 are past the last 20.
    assert!(table.contains("198.51.100.24"));
    assert!(!table.contains("198.51.100.6<"));
    server.running.shutdown().await;
}

#[tokio::test]
async fn a_webmail_password_change_ends_the_other_sessions() {
    let server = server().await;
    let mut here = bob_from(&server, [127, 0, 0, 1], FIREFOX).await;
    let mut there = bob_from(&server, [127, 0, 0, 2], CHROME).await;
    let csrf = here.csrf_of("/mail/settings").await;
    let page = here
        .post(
            "/mail/settings/password",
            &[
                ("csrf", &csrf),
                ("current", "secret"),
                ("new", "staple orbit lantern"),
                ("repeat", "staple orbit lantern"),
            ],
        )
        .await;
    assert_eq!(
        page.location, "/mail/settings?done=password",
        "{}",
        page.body
    );
    assert!(signed_in(&mut here).await);
    assert!(!signed_in(&mut there).await);
    server.running.shutdown().await;
}

#[tokio::test]
async fn the_password_rule_holds_in_the_panel_and_the_webmail() {
    let server = server().await;
    let store = server.running.store.clone();
    let before = store
        .account_by_address("bob@localhost")
        .await
        .unwrap()
        .unwrap();
    // Webmail: too short, then long but the user's own address.
    let mut b = bob_from(&server, [127, 0, 0, 1], FIREFOX).await;
    let csrf = b.csrf_of("/mail/settings").await;
    for (new, why) in [
        ("short1", "use at least 10"),
        ("bob@localhost", "too easy to guess"),
        ("qwertyuiop", "too easy to guess"),
    ] {
        let page = b
            .post(
                "/mail/settings/password",
                &[
                    ("csrf", &csrf),
                    ("current", "secret"),
                    ("new", new),
                    ("repeat", new),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{new}");
        let error = page.body.split("id=\"new-error\">").nth(1).unwrap();
        assert!(error.contains(why), "{new}: {error}");
    }
    let after = store
        .account_by_address("bob@localhost")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.password_hash, before.password_hash);

    // Panel: creating and resetting.
    let (mut admin, csrf) = admin(&server).await;
    let page = admin
        .post(
            "/admin/accounts",
            &[
                ("csrf", &csrf),
                ("address", "quixote@localhost"),
                ("password", "quixotelocalhost"),
                ("quota", ""),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("too easy to guess"), "{}", page.body);
    assert!(
        store
            .account_by_address("quixote@localhost")
            .await
            .unwrap()
            .is_none()
    );
    let page = admin
        .post(
            "/admin/accounts/bob@localhost/password",
            &[("csrf", &csrf), ("password", "password12")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("too easy to guess"), "{}", page.body);
    let after = store
        .account_by_address("bob@localhost")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.password_hash, before.password_hash);
    server.running.shutdown().await;
}

/// The first admin, signed in to the panel, and the CSRF token.
async fn admin(server: &TestServer) -> (Browser, String) {
    let login = server.running.first_login.clone().expect("first login");
    let mut b = Browser::new(server);
    let page = b.sign_in(&login.address, &login.password).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let csrf = b.csrf().await;
    (b, csrf)
}

#[tokio::test]
async fn every_admin_action_is_audited_and_the_log_is_searchable() {
    let server = server().await;
    let store = server.running.store.clone();
    let (mut b, csrf) = admin(&server).await;
    let me = server.running.first_login.clone().unwrap().address;
    let posts: &[(&str, &[(&str, &str)])] = &[
        ("/admin/domains", &[("name", "example.net")]),
        (
            "/admin/accounts",
            &[
                ("address", "carol@example.net"),
                ("password", "staple orbit lantern"),
                ("quota", "1G"),
            ],
        ),
        (
            "/admin/accounts/carol@example.net/quota",
            &[("quota", "2G")],
        ),
        (
            "/admin/accounts/carol@example.net/password",
            &[("password", "cactus harbour violin")],
        ),
        (
            "/admin/accounts/carol@example.net/state",
            &[("action", "disable")],
        ),
        (
            "/admin/accounts/carol@example.net/state",
            &[("action", "enable")],
        ),
        (
            "/admin/accounts/carol@example.net/state",
            &[("action", "make-admin")],
        ),
        (
            "/admin/accounts/carol@example.net/state",
            &[("action", "revoke-admin")],
        ),
        (
            "/admin/aliases",
            &[
                ("source", "team@example.net"),
                ("targets", "carol@example.net"),
            ],
        ),
        ("/admin/aliases/remove", &[("source", "team@example.net")]),
        ("/admin/accounts/carol@example.net/remove", &[]),
        ("/admin/domains/example.net/remove", &[]),
    ];
    for (path, form) in posts {
        let mut form = form.to_vec();
        form.push(("csrf", &csrf));
        let page = b.post(path, &form).await;
        assert!(
            page.status == StatusCode::SEE_OTHER || page.status == StatusCode::OK,
            "{path}: {} {}",
            page.status,
            page.body
        );
    }
    let log = store.audit_entries("", 0, 100).await.unwrap();
    let mut got: Vec<(String, String, String)> = log
        .entries
        .iter()
        .map(|e| (e.action.clone(), e.target.clone(), e.detail.clone()))
        .collect();
    got.reverse();
    let want = [
        ("domain.create", "example.net", ""),
        (
            "account.create",
            "carol@example.net",
            "quota 1G, password chosen",
        ),
        ("account.quota", "carol@example.net", "2G"),
        ("account.password", "carol@example.net", "chosen"),
        ("account.disable", "carol@example.net", ""),
        ("account.enable", "carol@example.net", ""),
        ("account.admin_grant", "carol@example.net", ""),
        ("account.admin_revoke", "carol@example.net", ""),
        ("alias.create", "team@example.net", "carol@example.net"),
        ("alias.remove", "team@example.net", "all targets"),
        ("account.remove", "carol@example.net", ""),
        ("domain.remove", "example.net", ""),
    ];
    let want: Vec<(String, String, String)> = want
        .iter()
        .map(|(a, t, d)| (a.to_string(), t.to_string(), d.to_string()))
        .collect();
    assert_eq!(got, want);
    for e in &log.entries {
        assert_eq!(
            (e.actor.as_str(), e.ip.as_str()),
            (me.as_str(), "127.0.0.1")
        );
        assert!(!e.detail.contains("lantern") && !e.detail.contains("violin"));
    }
    // A refused action is not recorded.
    let page = b
        .post(
            "/admin/domains",
            &[("csrf", &csrf), ("name", "not a domain")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(store.audit_entries("", 0, 100).await.unwrap().total, 12);

    // The page: newest first, searchable, with the search kept when paging.
    let page = b.get("/admin/audit").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains("href=\"/admin/audit\" aria-current=\"page\"")
    );
    let first = page.body.find("domain.remove").unwrap();
    assert!(first < page.body.find("domain.create").unwrap());
    let page = b.get("/admin/audit?q=account.quota").await;
    assert_eq!(page.body.matches("<code>").count(), 1, "{}", page.body);
    assert!(page.body.contains("2G"));
    let page = b.get("/admin/audit?q=%25").await;
    assert!(page.body.contains("No entry matches"), "{}", page.body);
    for i in 0..60 {
        store
            .audit(Audit {
                actor: "cli",
                ip: "",
                action: "account.create",
                target: &format!("user{i}@example.org"),
                detail: "",
            })
            .await
            .unwrap();
    }
    let page = b.get("/admin/audit?q=example.org").await;
    assert!(page.body.contains("60 entries"), "{}", page.body);
    assert!(
        page.body.contains("href=\"?page=2&#38;q=example.org\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("user59@example.org") && !page.body.contains("user9@"));
    let page = b.get("/admin/audit?q=example.org&page=2").await;
    assert_eq!(page.body.matches("<code>").count(), 10, "{}", page.body);
    assert!(page.body.contains("user0@example.org"));
    let page = b.get("/admin/audit?q=example.org&page=99").await;
    assert!(page.body.contains("Page 2 of 2"), "{}", page.body);
    server.running.shutdown().await;
}

#[tokio::test]
async fn an_admin_changing_their_own_password_ends_their_other_sessions() {
    let server = server().await;
    let login = server.running.first_login.clone().unwrap();
    let (mut here, csrf) = admin(&server).await;
    let (mut there, _) = admin(&server).await;
    let path = format!("/admin/accounts/{}/password", login.address);
    let page = here
        .post(
            &path,
            &[("csrf", &csrf), ("password", "staple orbit lantern")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(here.get("/admin").await.status, StatusCode::OK);
    let gone = there.get("/admin").await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER);
    assert!(
        gone.location.starts_with("/admin/login"),
        "{}",
        gone.location
    );
    server.running.shutdown().await;
}

#[tokio::test]
async fn audit_pages_past_any_end_show_the_last() {
    let server = server().await;
    let (mut b, _) = admin(&server).await;
    for page in ["9223372036854775807", "18446744073709551615", "0"] {
        let got = b.get(&format!("/admin/audit?page={page}")).await;
        assert_eq!(got.status, StatusCode::OK, "{page}: {}", got.body);
    }
    server.running.shutdown().await;
}

/// The page also lists what else lets someone in: the second factors (with recovery codes
/// left) and the app passwords, by name and last use.
#[tokio::test]
async fn the_security_page_lists_app_passwords_and_second_factors() {
    let server = server().await;
    let store = server.running.store.clone();
    let bob = store
        .account_by_address("bob@localhost")
        .await
        .unwrap()
        .unwrap();
    let mut b = bob_from(&server, [127, 0, 0, 1], FIREFOX).await;
    let page = security(&mut b).await;
    assert!(
        page.body.contains("Turn on two-factor sign-in"),
        "{}",
        page.body
    );

    store
        .create_app_password(bob.id, "Phone <mail>", "tag-for-the-test", 1)
        .await
        .unwrap()
        .unwrap();
    store
        .begin_totp(bob.id, b"12345678901234567890")
        .await
        .unwrap();
    let codes: Vec<String> = (0..10).map(|i| format!("hash{i}")).collect();
    assert!(store.confirm_totp(bob.id, 1, &codes).await.unwrap());
    assert!(store.use_recovery_code(bob.id, "hash3").await.unwrap());
    store
        .add_passkey(mailroom::store::NewPasskey {
            account_id: bob.id,
            credential_id: b"credential",
            public_key: b"key",
            sign_count: 0,
            name: "Laptop",
            user_handle: b"handle",
        })
        .await
        .unwrap();
    let page = security(&mut b).await;
    for text in [
        "Authenticator app (codes) · 9 recovery codes left",
        "Passkey “Laptop” · never used",
        "“Phone &#60;mail&#62;” · never used",
    ] {
        assert!(page.body.contains(text), "{text}: {}", page.body);
    }
    assert!(!page.body.contains("Turn on two-factor sign-in"));
}
