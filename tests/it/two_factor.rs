//! Two-factor sign-in on the web (issue 19), through the router: the second step after the
//! password (TOTP, recovery codes, passkeys), the pending sign-in that is no session, the
//! bounds on wrong codes, the admin's reset and the requirements per domain and for admins.

use axum::http::StatusCode;
use mailroom::auth::totp;
use mailroom::store::{Account, now};

use crate::harness::{self, TestServer};
use crate::web_client::Browser;

const SETTINGS: &str = "/mail/settings/two-factor";

async fn user(server: &TestServer, address: &str) -> Account {
    harness::account(&server.running.store, address, 0).await
}

/// A browser signed in to the webmail (no second factor yet).
async fn signed_in(server: &TestServer, address: &str) -> Browser {
    let mut b = Browser::new(server);
    let page = b.sign_in_at("/mail", address, "secret").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location, "/mail");
    b
}

fn cookie<'a>(b: &'a Browser, name: &str) -> Option<&'a str> {
    b.cookies
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The recovery codes on a page that shows them.
fn codes(html: &str) -> Vec<String> {
    let list = html
        .split("id=\"recovery-codes\"")
        .nth(1)
        .expect("recovery codes shown")
        .split("</ul>")
        .next()
        .unwrap();
    list.split("<code>")
        .skip(1)
        .map(|c| c.split("</code>").next().unwrap().to_string())
        .collect()
}

/// Turns TOTP on from the settings page; returns the secret and the recovery codes.
async fn enable_totp(
    server: &TestServer,
    b: &mut Browser,
    account: &Account,
) -> (Vec<u8>, Vec<String>) {
    let csrf = b.csrf_of(SETTINGS).await;
    let page = b
        .post(&format!("{SETTINGS}/totp"), &[("csrf", &csrf)])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let page = b.get(SETTINGS).await;
    assert!(page.body.contains("<svg"), "QR code drawn: {}", page.body);
    let stored = server
        .running
        .store
        .totp(account.id)
        .await
        .unwrap()
        .unwrap();
    assert!(!stored.confirmed);
    // The key shown is the stored secret.
    assert!(page.body.contains(&totp::secret_text(&stored.secret)));
    // Not on until confirmed: a sign-in now needs no code.
    assert!(
        !server
            .running
            .store
            .second_factor_on(account.id)
            .await
            .unwrap()
    );
    let wrong = b
        .post(
            &format!("{SETTINGS}/totp/confirm"),
            &[("csrf", &csrf), ("code", "000000")],
        )
        .await;
    if totp::matching_step(&stored.secret, "000000", now()).is_none() {
        assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            !server
                .running
                .store
                .second_factor_on(account.id)
                .await
                .unwrap()
        );
    }
    let code = totp::code_at(&stored.secret, now() as u64).unwrap();
    let page = b
        .post(
            &format!("{SETTINGS}/totp/confirm"),
            &[("csrf", &csrf), ("code", &code)],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let codes = codes(&page.body);
    assert_eq!(codes.len(), 10);
    assert!(
        server
            .running
            .store
            .second_factor_on(account.id)
            .await
            .unwrap()
    );
    assert_eq!(
        server
            .running
            .store
            .recovery_codes_left(account.id)
            .await
            .unwrap(),
        10
    );
    (stored.secret, codes)
}

/// Password step: answers the redirect to the second step.
async fn password_step(b: &mut Browser, address: &str) {
    let page = b.sign_in_at("/mail", address, "secret").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location, "/mail/login/second");
}

/// A code for the step after now: the step of now was spent confirming.
fn next_code(secret: &[u8]) -> String {
    totp::code_at(secret, (now() + 30) as u64).unwrap()
}

#[tokio::test]
async fn sign_in_with_totp_requires_the_code_refuses_wrong_and_replayed_codes() {
    let server = harness::start().await;
    let alice = user(&server, "alice@localhost").await;
    let mut b = signed_in(&server, "alice@localhost").await;
    let (secret, _) = enable_totp(&server, &mut b, &alice).await;

    // A new browser: the password alone gives a pending sign-in, not a session.
    let mut b = Browser::new(&server);
    password_step(&mut b, "alice@localhost").await;
    assert!(
        cookie(&b, "mr_session").is_none(),
        "no session before the code"
    );
    assert!(cookie(&b, "mr_pending").is_some());
    let page = b.get("/mail").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(
        page.location.starts_with("/mail/login"),
        "{}",
        page.location
    );
    let page = b.get("/mail/login/second").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("alice@localhost"));

    // A wrong code: refused, counted by the pending sign-in, and recorded.
    let wrong = if next_code(&secret) == "123456" {
        "654321"
    } else {
        "123456"
    };
    let page = b.post("/mail/login/second", &[("code", wrong)]).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.body);
    assert!(page.body.contains("4 attempts left"), "{}", page.body);
    assert!(cookie(&b, "mr_session").is_none());
    let history = server
        .running
        .store
        .recent_sign_ins(alice.id, 5)
        .await
        .unwrap();
    assert!(
        history
            .iter()
            .any(|s| s.method == "totp" && !s.success && s.protocol == "web")
    );

    // The right code: a session.
    let code = next_code(&secret);
    let page = b.post("/mail/login/second", &[("code", &code)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location, "/mail");
    assert!(cookie(&b, "mr_session").is_some());
    assert!(cookie(&b, "mr_pending").is_none());
    assert_eq!(b.get("/mail").await.status, StatusCode::SEE_OTHER);
    assert_eq!(b.get(SETTINGS).await.status, StatusCode::OK);
    let history = server
        .running
        .store
        .recent_sign_ins(alice.id, 1)
        .await
        .unwrap();
    assert!(history[0].success && history[0].method == "totp");

    // The same code again, from another browser: refused (one code, one sign-in).
    let mut other = Browser::new(&server);
    password_step(&mut other, "alice@localhost").await;
    let page = other.post("/mail/login/second", &[("code", &code)]).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.body);
    assert!(cookie(&other, "mr_session").is_none());
    server.running.shutdown().await;
}

#[tokio::test]
async fn a_pending_sign_in_allows_five_wrong_codes_then_the_password_again() {
    let server = harness::start().await;
    let bob = user(&server, "bob@localhost").await;
    let mut b = signed_in(&server, "bob@localhost").await;
    let (secret, _) = enable_totp(&server, &mut b, &bob).await;
    let mut b = Browser::new(&server);
    password_step(&mut b, "bob@localhost").await;
    let right = next_code(&secret);
    let wrong = if right == "111111" {
        "222222"
    } else {
        "111111"
    };
    for left in (1..5).rev() {
        let page = b.post("/mail/login/second", &[("code", wrong)]).await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        assert!(
            page.body.contains(&format!("{left} attempt")),
            "{}",
            page.body
        );
    }
    let page = b.post("/mail/login/second", &[("code", wrong)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location, "/mail/login?expired=1");
    // Spent: even the right code is refused now, and the pending cookie is gone.
    assert!(cookie(&b, "mr_pending").is_none());
    let page = b.post("/mail/login/second", &[("code", &right)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(cookie(&b, "mr_session").is_none());
    let page = b.get("/mail/login?expired=1").await;
    assert!(
        page.body.contains("Type your password again"),
        "{}",
        page.body
    );
    server.running.shutdown().await;
}

#[tokio::test]
async fn a_recovery_code_signs_in_once() {
    let server = harness::start().await;
    let carol = user(&server, "carol@localhost").await;
    let mut b = signed_in(&server, "carol@localhost").await;
    let (_, codes) = enable_totp(&server, &mut b, &carol).await;
    let code = codes[3].to_uppercase().replace('-', " ");

    let mut b = Browser::new(&server);
    password_step(&mut b, "carol@localhost").await;
    let page = b.post("/mail/login/second", &[("code", &code)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(cookie(&b, "mr_session").is_some());
    assert_eq!(
        server
            .running
            .store
            .recovery_codes_left(carol.id)
            .await
            .unwrap(),
        9
    );
    let history = server
        .running
        .store
        .recent_sign_ins(carol.id, 1)
        .await
        .unwrap();
    assert_eq!(history[0].method, "recovery code");

    let mut b = Browser::new(&server);
    password_step(&mut b, "carol@localhost").await;
    let page = b.post("/mail/login/second", &[("code", &code)]).await;
    assert_eq!(
        page.status,
        StatusCode::UNAUTHORIZED,
        "a used code is refused"
    );
    // Another one still works; new codes replace the old.
    let page = b.post("/mail/login/second", &[("code", &codes[4])]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let csrf = b.csrf_of(SETTINGS).await;
    let page = b
        .post(&format!("{SETTINGS}/recovery"), &[("csrf", &csrf)])
        .await;
    let fresh = self::codes(&page.body);
    assert_eq!(fresh.len(), 10);
    let mut b = Browser::new(&server);
    password_step(&mut b, "carol@localhost").await;
    let page = b.post("/mail/login/second", &[("code", &codes[5])]).await;
    assert_eq!(
        page.status,
        StatusCode::UNAUTHORIZED,
        "old codes stop working"
    );
    let page = b.post("/mail/login/second", &[("code", &fresh[0])]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    server.running.shutdown().await;
}

#[tokio::test]
async fn turning_totp_off_needs_the_password() {
    let server = harness::start().await;
    let dan = user(&server, "dan@localhost").await;
    let mut b = signed_in(&server, "dan@localhost").await;
    enable_totp(&server, &mut b, &dan).await;
    let csrf = b.csrf_of(SETTINGS).await;
    let page = b
        .post(
            &format!("{SETTINGS}/totp/remove"),
            &[("csrf", &csrf), ("password", "wrong")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(server.running.store.second_factor_on(dan.id).await.unwrap());
    let page = b
        .post(
            &format!("{SETTINGS}/totp/remove"),
            &[("csrf", &csrf), ("password", "secret")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(!server.running.store.second_factor_on(dan.id).await.unwrap());
    assert_eq!(
        server
            .running
            .store
            .recovery_codes_left(dan.id)
            .await
            .unwrap(),
        0
    );
    signed_in(&server, "dan@localhost").await;
    server.running.shutdown().await;
}

/// The admin panel signed in as the first admin.
async fn admin(server: &TestServer) -> (Browser, String) {
    let login = server.running.first_login.clone().expect("first login");
    let mut b = Browser::new(server);
    let page = b.sign_in(&login.address, &login.password).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let csrf = b.csrf().await;
    (b, csrf)
}

/// The audit log's actions for `target` (read straight from the database: the store's audit
/// queries belong to the audit page).
async fn audited(server: &TestServer, target: &str) -> Vec<(String, String, String)> {
    use sqlx::sqlite::SqliteConnectOptions;
    let options = SqliteConnectOptions::new().filename(server.dir.path().join("mailroom.db"));
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT actor, action, detail FROM audit_log WHERE target = ? ORDER BY id")
            .bind(target)
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    rows
}

#[tokio::test]
async fn the_admin_resets_a_second_factor_and_it_is_audited() {
    let server = harness::start().await;
    let erin = user(&server, "erin@localhost").await;
    let mut b = signed_in(&server, "erin@localhost").await;
    enable_totp(&server, &mut b, &erin).await;
    let (mut admin, csrf) = admin(&server).await;
    let page = admin.get("/admin/accounts/erin@localhost").await;
    assert!(page.body.contains("second-factor-reset"), "{}", page.body);
    let page = admin
        .post(
            "/admin/accounts/erin@localhost/second-factor/reset",
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let store = &server.running.store;
    assert!(!store.second_factor_on(erin.id).await.unwrap());
    assert!(store.totp(erin.id).await.unwrap().is_none());
    assert_eq!(store.recovery_codes_left(erin.id).await.unwrap(), 0);
    // Erin's open session ended; the password alone signs in again.
    assert_eq!(b.get(SETTINGS).await.status, StatusCode::SEE_OTHER);
    signed_in(&server, "erin@localhost").await;
    let log = audited(&server, "erin@localhost").await;
    assert!(
        log.iter().any(|(actor, action, _)| action == "second_factor.reset" && actor == "admin@localhost"),
        "{log:?}"
    );
    // Without a CSRF token: refused.
    let page = admin
        .post("/admin/accounts/erin@localhost/second-factor/reset", &[])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    server.running.shutdown().await;
}

#[tokio::test]
async fn a_domain_that_requires_a_second_factor_gets_only_the_set_up_page() {
    let server = harness::start().await;
    let frank = user(&server, "frank@localhost").await;
    let mut before = signed_in(&server, "frank@localhost").await;
    let (mut admin, csrf) = admin(&server).await;
    let page = admin
        .post(
            "/admin/domains/localhost/two-factor",
            &[("csrf", &csrf), ("require", "1")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let store = &server.running.store;
    assert!(
        store
            .domain_requires_second_factor("localhost")
            .await
            .unwrap()
    );
    assert!(store.second_factor_required(frank.id).await.unwrap());
    // The session opened before the requirement ended.
    assert_eq!(before.get("/mail").await.status, StatusCode::SEE_OTHER);
    assert!(
        before
            .get("/mail")
            .await
            .location
            .starts_with("/mail/login")
    );

    // After the password: the set-up page only, and no session.
    let mut b = Browser::new(&server);
    let page = b.sign_in_at("/mail", "frank@localhost", "secret").await;
    assert_eq!(page.location, "/mail/login/enroll");
    assert!(cookie(&b, "mr_session").is_none());
    assert!(b.get("/mail").await.location.starts_with("/mail/login"));
    assert_eq!(b.get(SETTINGS).await.status, StatusCode::SEE_OTHER);
    // The pending sign-in is not a second step either.
    assert_eq!(
        b.get("/mail/login/second").await.location,
        "/mail/login?expired=1"
    );
    let mut b = Browser::new(&server);
    b.sign_in_at("/mail", "frank@localhost", "secret").await;
    let page = b.get("/mail/login/enroll").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<svg"));
    let secret = store.totp(frank.id).await.unwrap().unwrap().secret;
    let page = b.post("/mail/login/enroll", &[("code", "12")]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    let code = totp::code_at(&secret, now() as u64).unwrap();
    let page = b.post("/mail/login/enroll", &[("code", &code)]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(codes(&page.body).len(), 10);
    assert!(cookie(&b, "mr_session").is_some());
    assert_eq!(b.get("/mail").await.status, StatusCode::SEE_OTHER);
    assert_eq!(b.get(SETTINGS).await.status, StatusCode::OK);
    // Its only factor cannot be removed while required.
    let csrf_f = b.csrf_of(SETTINGS).await;
    let page = b
        .post(
            &format!("{SETTINGS}/totp/remove"),
            &[("csrf", &csrf_f), ("password", "secret")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(store.second_factor_on(frank.id).await.unwrap());
    // Next sign-in: the second step.
    let mut b = Browser::new(&server);
    password_step(&mut b, "frank@localhost").await;

    let log = audited(&server, "localhost").await;
    assert!(
        log.iter()
            .any(|(_, a, d)| a == "domain.require_two_factor" && d == "required"),
        "{log:?}"
    );
    server.running.shutdown().await;
}

#[tokio::test]
async fn requiring_it_of_admins_needs_the_admins_own_first_and_then_applies_to_admins() {
    let server = harness::start().await;
    let login = server.running.first_login.clone().unwrap();
    let store = &server.running.store;
    let root = store
        .account_by_address(&login.address)
        .await
        .unwrap()
        .unwrap();
    let grace = user(&server, "grace@localhost").await;
    store.set_admin("grace@localhost", true).await.unwrap();
    let (mut admin, csrf) = admin(&server).await;
    // Without a second factor of its own, an admin cannot require it (it would sign out).
    let page = admin
        .post("/admin/two-factor", &[("csrf", &csrf), ("require", "1")])
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(!store.admins_require_second_factor().await.unwrap());

    // With one (set up in the webmail), it can.
    let mut mail = Browser::new(&server);
    let page = mail
        .sign_in_at("/mail", &login.address, &login.password)
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    enable_totp(&server, &mut mail, &root).await;
    let page = admin
        .post("/admin/two-factor", &[("csrf", &csrf), ("require", "1")])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(store.admins_require_second_factor().await.unwrap());
    assert!(store.second_factor_required(grace.id).await.unwrap());
    // The admin's own session stays (it has a factor).
    assert_eq!(admin.get("/admin").await.status, StatusCode::OK);
    // Grace, an admin without one, gets the set-up page; a plain user is not concerned.
    let mut b = Browser::new(&server);
    let page = b.sign_in_at("/admin", "grace@localhost", "secret").await;
    assert_eq!(page.location, "/admin/login/enroll");
    assert!(b.get("/admin").await.location.starts_with("/admin/login"));
    user(&server, "henry@localhost").await;
    signed_in(&server, "henry@localhost").await;
    let log = audited(&server, "admins").await;
    assert!(
        log.iter()
            .any(|(_, a, d)| a == "admins.require_two_factor" && d == "required"),
        "{log:?}"
    );
    server.running.shutdown().await;
}

#[tokio::test]
async fn the_second_step_is_only_reachable_with_a_pending_sign_in_from_this_site() {
    let server = harness::start().await;
    let ivy = user(&server, "ivy@localhost").await;
    let mut b = signed_in(&server, "ivy@localhost").await;
    let (secret, _) = enable_totp(&server, &mut b, &ivy).await;
    // No pending cookie: back to the password.
    let mut stranger = Browser::new(&server);
    let page = stranger
        .post("/mail/login/second", &[("code", &next_code(&secret))])
        .await;
    assert_eq!(page.location, "/mail/login?expired=1");
    // A made-up pending token: the same.
    stranger.cookies.push(("mr_pending".into(), "x".repeat(43)));
    let page = stranger
        .post("/mail/login/second", &[("code", &next_code(&secret))])
        .await;
    assert_eq!(page.location, "/mail/login?expired=1");
    // From another site: refused (the form has no token of its own: the SameSite=Strict
    // cookie and the Origin check guard it).
    let mut b = Browser::new(&server);
    password_step(&mut b, "ivy@localhost").await;
    let page = b
        .send(
            axum::http::Request::post("/mail/login/second")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("origin", "https://evil.example")
                .body(axum::body::Body::from(format!(
                    "code={}",
                    next_code(&secret)
                )))
                .unwrap(),
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(cookie(&b, "mr_session").is_none());
    // A pending sign-in of the webmail is not one of the admin panel.
    let page = b.get("/admin/login/second").await;
    assert_eq!(page.location, "/admin/login?expired=1");
    server.running.shutdown().await;
}

#[tokio::test]
async fn wrong_codes_count_in_the_password_throttle() {
    let server = harness::start_with(|c| {
        c.auth.slow_after = 100;
        c.auth.lock_after = 3;
    })
    .await;
    let jo = user(&server, "jo@localhost").await;
    let mut b = signed_in(&server, "jo@localhost").await;
    let (secret, _) = enable_totp(&server, &mut b, &jo).await;
    let mut b = Browser::new(&server);
    password_step(&mut b, "jo@localhost").await;
    let right = next_code(&secret);
    let wrong = if right == "111111" {
        "222222"
    } else {
        "111111"
    };
    for _ in 0..3 {
        let page = b.post("/mail/login/second", &[("code", wrong)]).await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    }
    // The pair (address, account) is locked now: the right code is not even checked, and the
    // password is refused as after wrong passwords.
    let page = b.post("/mail/login/second", &[("code", &right)]).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "{}", page.body);
    assert!(cookie(&b, "mr_session").is_none());
    let mut b = Browser::new(&server);
    let page = b.sign_in_at("/mail", "jo@localhost", "secret").await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    server.running.shutdown().await;
}

#[tokio::test]
async fn the_admin_panel_sign_in_goes_through_the_same_second_step() {
    let server = harness::start().await;
    let login = server.running.first_login.clone().unwrap();
    let store = &server.running.store;
    let root = store
        .account_by_address(&login.address)
        .await
        .unwrap()
        .unwrap();
    let mut mail = Browser::new(&server);
    mail.sign_in_at("/mail", &login.address, &login.password)
        .await;
    let (secret, _) = enable_totp(&server, &mut mail, &root).await;

    let mut b = Browser::new(&server);
    let page = b.sign_in(&login.address, &login.password).await;
    assert_eq!(page.location, "/admin/login/second");
    assert!(b.get("/admin").await.location.starts_with("/admin/login"));
    let page = b.get("/admin/login/second").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("action=\"/admin/login/second\""),
        "{}",
        page.body
    );
    let page = b
        .post("/admin/login/second", &[("code", &next_code(&secret))])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location, "/admin");
    assert_eq!(b.get("/admin").await.status, StatusCode::OK);
    server.running.shutdown().await;
}
