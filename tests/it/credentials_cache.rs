//! The verified-credentials cache (`auth::cache`) through the whole server: a repeated IMAP or
//! POP3 login skips the argon2 check (seen in `Authenticator::stats`, not by timing), while a
//! changed password, a disabled or removed account, a wrong password and the throttle behave
//! as if there were no cache. The changes are made both through the store alone (what the
//! CLI does from another process, which cannot reach the server's memory) and through the
//! admin panel and the webmail (which also drop the account's entries).

use std::net::IpAddr;

use axum::http::StatusCode;
use mailroom::auth::{AuthError, Authenticator, LoginStats, password};
use mailroom::config::AuthConfig;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::harness::{self, TestServer, account};
use crate::imap::connect;
use crate::web_client::Browser;

async fn plaintext_server() -> TestServer {
    harness::start_with(|c| c.auth.allow_plaintext = true).await
}

/// One IMAP connection: LOGIN, then LOGOUT; the tagged reply to LOGIN.
async fn imap_login(t: &TestServer, user: &str, pass: &str) -> String {
    let mut c = connect(t).await;
    let (_, tagged) = c.cmd(&format!("LOGIN {user} \"{pass}\"")).await;
    if tagged.starts_with("TAG OK") {
        c.ok("LOGOUT").await;
    }
    tagged
}

fn ok(tagged: &str) -> bool {
    tagged.starts_with("TAG OK")
}

fn refused(tagged: &str) -> bool {
    tagged == "TAG NO [AUTHENTICATIONFAILED] invalid credentials"
}

fn stats(t: &TestServer) -> LoginStats {
    t.running.auth.stats()
}

#[tokio::test]
async fn a_second_imap_login_skips_the_hash_check() {
    let t = plaintext_server().await;
    account(&t.running.store, "alice@localhost", 0).await;
    let before = stats(&t);
    assert!(ok(&imap_login(&t, "alice@localhost", "secret").await));
    let first = stats(&t);
    assert_eq!(first.hash_checks, before.hash_checks + 1);
    assert_eq!(first.cache_hits, before.cache_hits);
    assert_eq!(first.cached, 1);
    for n in 1..=3 {
        assert!(ok(&imap_login(&t, "alice@localhost", "secret").await));
        let now = stats(&t);
        assert_eq!(now.hash_checks, first.hash_checks, "login {n}: no argon2");
        assert_eq!(now.cache_hits, first.cache_hits + n);
        assert_eq!(now.cached, 1);
    }
    // The address is case-insensitive at login; the cache is per account, so this is a hit.
    assert!(ok(&imap_login(&t, "Alice@Localhost", "secret").await));
    assert_eq!(stats(&t).hash_checks, first.hash_checks);
}

#[tokio::test]
async fn a_wrong_password_is_never_cached() {
    let t = plaintext_server().await;
    account(&t.running.store, "alice@localhost", 0).await;
    assert!(ok(&imap_login(&t, "alice@localhost", "secret").await));
    let base = stats(&t);
    for n in 1..=2 {
        assert!(refused(
            &imap_login(&t, "alice@localhost", "secret-not").await
        ));
        let now = stats(&t);
        // Each wrong guess costs a full check, and adds nothing to the cache.
        assert_eq!(now.hash_checks, base.hash_checks + n);
        assert_eq!(now.cache_hits, base.cache_hits);
        assert_eq!(now.cached, 1);
    }
    // An unknown account: refused, nothing cached.
    assert!(refused(&imap_login(&t, "nobody@localhost", "secret").await));
    assert_eq!(stats(&t).cached, 1);
}

#[tokio::test]
async fn a_changed_password_stops_working_at_once_though_cached() {
    let t = plaintext_server().await;
    let store = &t.running.store;
    let alice = account(store, "alice@localhost", 0).await;
    assert!(ok(&imap_login(&t, "alice@localhost", "secret").await));
    assert!(ok(&imap_login(&t, "alice@localhost", "secret").await));
    assert_eq!(stats(&t).cached, 1);

    // Changed in the store only, as `mailroom user passwd` does from its own process: the
    // server's cache still holds the entry, and it must not let the old password in.
    let hash = password::hash("another secret").await.unwrap();
    store
        .set_password_hash(&alice.address, &hash)
        .await
        .unwrap();
    assert_eq!(stats(&t).cached, 1, "no hook ran");
    let hits = stats(&t).cache_hits;
    assert!(refused(&imap_login(&t, "alice@localhost", "secret").await));
    assert_eq!(stats(&t).cache_hits, hits);
    assert!(ok(
        &imap_login(&t, "alice@localhost", "another secret").await
    ));

    // Changed back to the same text: a new salted hash, so the old entry still cannot match
    // (a fresh check runs and is cached anew).
    let checks = stats(&t).hash_checks;
    let hash = password::hash("secret").await.unwrap();
    store
        .set_password_hash(&alice.address, &hash)
        .await
        .unwrap();
    assert!(ok(&imap_login(&t, "alice@localhost", "secret").await));
    assert_eq!(stats(&t).hash_checks, checks + 1);
    assert_eq!(
        stats(&t).cache_hits,
        hits,
        "no login since the first change was a hit"
    );
}

#[tokio::test]
async fn a_disabled_or_removed_account_is_refused_at_once() {
    let t = plaintext_server().await;
    let store = &t.running.store;
    account(store, "alice@localhost", 0).await;
    assert!(ok(&imap_login(&t, "alice@localhost", "secret").await));
    assert!(ok(&imap_login(&t, "alice@localhost", "secret").await));

    store.set_disabled("alice@localhost", true).await.unwrap();
    let hits = stats(&t).cache_hits;
    assert!(refused(&imap_login(&t, "alice@localhost", "secret").await));
    assert_eq!(stats(&t).cache_hits, hits, "not served from the cache");
    assert_eq!(
        stats(&t).cached,
        0,
        "a disabled account's entries are dropped"
    );

    store.set_disabled("alice@localhost", false).await.unwrap();
    assert!(ok(&imap_login(&t, "alice@localhost", "secret").await));
    assert_eq!(stats(&t).cached, 1);
    store.remove_account("alice@localhost").await.unwrap();
    assert!(refused(&imap_login(&t, "alice@localhost", "secret").await));
    assert_eq!(stats(&t).cache_hits, hits);
}

/// POP3 shares the one login: its second USER/PASS is a cache hit too.
#[tokio::test]
async fn pop3_logins_use_the_cache() {
    let t = plaintext_server().await;
    account(&t.running.store, "alice@localhost", 0).await;
    async fn pop3_login(t: &TestServer, pass: &str) -> String {
        let tcp = TcpStream::connect(t.running.addr("pop3").unwrap())
            .await
            .unwrap();
        let mut s = BufReader::new(tcp);
        let mut line = String::new();
        s.read_line(&mut line).await.unwrap();
        assert!(line.starts_with("+OK"), "{line}");
        for command in ["USER alice@localhost".to_string(), format!("PASS {pass}")] {
            s.get_mut()
                .write_all(format!("{command}\r\n").as_bytes())
                .await
                .unwrap();
            line.clear();
            s.read_line(&mut line).await.unwrap();
        }
        let _ = s.get_mut().write_all(b"QUIT\r\n").await;
        line.trim_end().to_string()
    }
    let base = stats(&t);
    assert!(pop3_login(&t, "secret").await.starts_with("+OK"));
    assert!(pop3_login(&t, "secret").await.starts_with("+OK"));
    let now = stats(&t);
    assert_eq!(now.hash_checks, base.hash_checks + 1);
    assert_eq!(now.cache_hits, base.cache_hits + 1);
    assert!(pop3_login(&t, "wrong").await.starts_with("-ERR [AUTH]"));
}

/// The admin panel's password reset, disable and removal drop the account's entries at once
/// (besides the cache refusing them anyway); the web sign-in neither uses nor fills the cache.
#[tokio::test]
async fn admin_panel_changes_drop_the_entries_and_web_sign_in_bypasses_the_cache() {
    let t = plaintext_server().await;
    let store = &t.running.store;
    account(store, "bob@localhost", 0).await;
    let login = t.running.first_login.clone().expect("first login");
    let checks = stats(&t).hash_checks;
    let mut b = Browser::new(&t);
    for _ in 0..2 {
        b = Browser::new(&t);
        let page = b.sign_in(&login.address, &login.password).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    }
    assert_eq!(
        stats(&t).hash_checks,
        checks + 2,
        "every web sign-in checks"
    );
    assert_eq!(stats(&t).cached, 0, "and fills nothing");
    let csrf = b.csrf().await;
    let path = "/admin/accounts/bob@localhost";

    assert!(ok(&imap_login(&t, "bob@localhost", "secret").await));
    assert_eq!(stats(&t).cached, 1);
    let page = b
        .post(
            &format!("{path}/password"),
            &[("csrf", &csrf), ("password", "a brand new secret")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(stats(&t).cached, 0);
    assert!(refused(&imap_login(&t, "bob@localhost", "secret").await));
    assert!(ok(
        &imap_login(&t, "bob@localhost", "a brand new secret").await
    ));
    assert_eq!(stats(&t).cached, 1);

    let page = b
        .post(
            &format!("{path}/state"),
            &[("csrf", &csrf), ("action", "disable")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(stats(&t).cached, 0);
    assert!(refused(
        &imap_login(&t, "bob@localhost", "a brand new secret").await
    ));

    let page = b
        .post(
            &format!("{path}/state"),
            &[("csrf", &csrf), ("action", "enable")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(ok(
        &imap_login(&t, "bob@localhost", "a brand new secret").await
    ));
    assert_eq!(stats(&t).cached, 1);
    let page = b.post(&format!("{path}/remove"), &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(stats(&t).cached, 0);
    assert!(refused(
        &imap_login(&t, "bob@localhost", "a brand new secret").await
    ));
}

/// The webmail's password change drops the entries too.
#[tokio::test]
async fn webmail_password_change_drops_the_entries() {
    let t = plaintext_server().await;
    account(&t.running.store, "carol@localhost", 0).await;
    assert!(ok(&imap_login(&t, "carol@localhost", "secret").await));
    assert_eq!(stats(&t).cached, 1);
    let mut b = Browser::new(&t);
    let page = b.sign_in_at("/mail", "carol@localhost", "secret").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let csrf = b.csrf_of("/mail/settings").await;
    let page = b
        .post(
            "/mail/settings/password",
            &[
                ("csrf", &csrf),
                ("current", "secret"),
                ("new", "carol's new secret"),
                ("repeat", "carol's new secret"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(stats(&t).cached, 0);
    assert!(refused(&imap_login(&t, "carol@localhost", "secret").await));
    assert!(ok(
        &imap_login(&t, "carol@localhost", "carol's new secret").await
    ));
}

/// The throttle comes first: a cached password does not get past a lock, and its attempt is
/// counted like any other.
#[tokio::test]
async fn the_throttle_applies_before_the_cache() {
    let (store, _dir) = harness::store().await;
    account(&store, "a@example.org", 0).await;
    let auth = Authenticator::new(
        store.clone(),
        AuthConfig {
            slow_after: 100,
            lock_after: 2,
            lock_secs: 60,
            ip_lock_after: 100,
            max_delay_secs: 10,
            window_secs: 60,
            ..AuthConfig::default()
        },
    );
    let ip: IpAddr = "192.0.2.20".parse().unwrap();
    auth.login("imap", ip, "a@example.org", "secret")
        .await
        .unwrap();
    auth.login("imap", ip, "a@example.org", "secret")
        .await
        .unwrap();
    assert_eq!(auth.stats().cache_hits, 1);
    for _ in 0..2 {
        assert!(matches!(
            auth.login("imap", ip, "a@example.org", "wrong").await,
            Err(AuthError::Failed)
        ));
    }
    // Locked for this address: the right, cached password is refused without a check.
    let before = auth.stats();
    assert!(matches!(
        auth.login("imap", ip, "a@example.org", "secret").await,
        Err(AuthError::Locked(s)) if s > 0
    ));
    let after = auth.stats();
    assert_eq!(after.cache_hits, before.cache_hits);
    assert_eq!(after.hash_checks, before.hash_checks);
    // Another address is not locked and still gets the cached answer.
    let other: IpAddr = "192.0.2.21".parse().unwrap();
    auth.login("imap", other, "a@example.org", "secret")
        .await
        .unwrap();
    assert_eq!(auth.stats().cache_hits, before.cache_hits + 1);
}

/// `cache_secs = 0` turns the cache off: every login checks the hash.
#[tokio::test]
async fn the_cache_can_be_turned_off() {
    let t = harness::start_with(|c| {
        c.auth.allow_plaintext = true;
        c.auth.cache_secs = 0;
    })
    .await;
    account(&t.running.store, "alice@localhost", 0).await;
    let base = stats(&t);
    for _ in 0..2 {
        assert!(ok(&imap_login(&t, "alice@localhost", "secret").await));
    }
    let now = stats(&t);
    assert_eq!(now.hash_checks, base.hash_checks + 2);
    assert_eq!(now.cache_hits, 0);
    assert_eq!(now.cached, 0);
}
