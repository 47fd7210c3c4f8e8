//! The shared login: argon2 check, one answer for every failure, throttle and lock.

use std::net::IpAddr;

use mailroom::auth::{AuthError, Authenticator};
use mailroom::config::AuthConfig;

use crate::harness::{account, store};

#[tokio::test]
async fn login_checks_password_and_locks_after_repeated_failures() {
    let (store, _dir) = store().await;
    account(&store, "a@example.org", 0).await;
    let auth = Authenticator::new(
        store.clone(),
        AuthConfig {
            allow_plaintext: false,
            slow_after: 100,
            lock_after: 3,
            lock_secs: 60,
            ip_lock_after: 3,
            max_delay_secs: 10,
            window_secs: 60,
            ..Default::default()
        },
    );
    let ip: IpAddr = "192.0.2.10".parse().unwrap();
    let ok = auth
        .login("imap", ip, "A@example.org", "secret")
        .await
        .unwrap();
    assert_eq!(ok.account.address, "a@example.org");
    assert!(matches!(
        auth.login("imap", ip, "a@example.org", "wrong").await,
        Err(AuthError::Failed)
    ));
    assert!(matches!(
        auth.login("imap", ip, "nobody@example.org", "secret").await,
        Err(AuthError::Failed)
    ));
    // Disabled accounts get the same answer as a wrong password.
    store.set_disabled("a@example.org", true).await.unwrap();
    assert!(matches!(
        auth.login("pop3", ip, "a@example.org", "secret").await,
        Err(AuthError::Failed)
    ));
    // Third failure from this IP (over any account): locked, even with the right password.
    store.set_disabled("a@example.org", false).await.unwrap();
    assert!(
        matches!(auth.login("imap", ip, "a@example.org", "secret").await, Err(AuthError::Locked(s)) if s > 0)
    );
    let other: IpAddr = "192.0.2.11".parse().unwrap();
    assert!(
        auth.login("imap", other, "a@example.org", "secret")
            .await
            .is_ok()
    );
}
