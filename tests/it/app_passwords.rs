//! App passwords and the mail protocols with two-factor sign-in on (issue 19), through the
//! whole server over TCP: made, listed and revoked from the webmail page; scoped per protocol;
//! revocation ends the IMAP (in IDLE), POP3 and SMTP sessions using one within a second; with a
//! confirmed TOTP the account password is refused on IMAP, POP3 and SMTP AUTH (the credentials
//! cache included) while app passwords work; the iOS profile carries an app password; every
//! sign-in of an existing account lands in the sign-in history.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use base64::Engine;
use mailroom::auth::AuthError;
use mailroom::store::Account;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::harness::{self, TestServer, account};
use crate::imap::connect;
use crate::web_client::Browser;

async fn server() -> (TestServer, Account) {
    let t = harness::start_with(|c| c.auth.allow_plaintext = true).await;
    let alice = account(&t.running.store, "alice@localhost", 0).await;
    (t, alice)
}

/// A browser signed in to the webmail as alice.
async fn webmail(t: &TestServer) -> Browser {
    let mut b = Browser::new(t);
    let page = b.sign_in_at("/mail", "alice@localhost", "secret").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    b
}

/// Makes an app password on the webmail page; the password shown once.
async fn make(b: &mut Browser, name: &str, scopes: &[&str]) -> String {
    let csrf = b.csrf_of("/mail/settings/app-passwords").await;
    let mut form = vec![("csrf", csrf.as_str()), ("name", name)];
    for s in scopes {
        form.push((s, "1"));
    }
    let page = b.post("/mail/settings/app-passwords", &form).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let start = page
        .body
        .find("id=\"app-password-value\">")
        .expect("the new password is shown")
        + "id=\"app-password-value\">".len();
    page.body[start..].split('<').next().unwrap().to_string()
}

/// The id of the app password named `name` in the page's revoke forms.
async fn id_of(b: &mut Browser, name: &str) -> i64 {
    let page = b.get("/mail/settings/app-passwords").await;
    let row = page
        .body
        .split("<tr>")
        .find(|r| r.contains(&format!("<td>{name}</td>")))
        .unwrap_or_else(|| panic!("no row {name} in {}", page.body));
    let after = row.split("/mail/settings/app-passwords/").nth(1).unwrap();
    after.split('/').next().unwrap().parse().unwrap()
}

async fn revoke(b: &mut Browser, id: i64) {
    let csrf = b.csrf_of("/mail/settings/app-passwords").await;
    let page = b
        .post(
            &format!("/mail/settings/app-passwords/{id}/revoke"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
}

/// Turns two-factor sign-in on as the TOTP setup does once confirmed: a confirmed `totp` row
/// (written beside the running server, as another process would).
async fn confirm_totp(t: &TestServer, account_id: i64) {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(SqliteConnectOptions::new().filename(t.dir.path().join("mailroom.db")))
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO totp (account_id, secret, confirmed_at, created_at) VALUES (?, ?, 1, 1)",
    )
    .bind(account_id)
    .bind(vec![7u8; 20])
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    assert!(t.running.store.second_factor_on(account_id).await.unwrap());
}

/// The tagged reply to an IMAP LOGIN on a new connection (logged out after).
async fn imap_login(t: &TestServer, user: &str, pass: &str) -> String {
    let mut c = connect(t).await;
    let (_, tagged) = c.cmd(&format!("LOGIN {user} \"{pass}\"")).await;
    if tagged.starts_with("TAG OK") {
        c.ok("LOGOUT").await;
    }
    tagged
}

/// A line-based client for POP3 and SMTP.
struct Lines {
    s: BufReader<TcpStream>,
}

impl Lines {
    async fn open(t: &TestServer, kind: &str) -> Lines {
        let tcp = TcpStream::connect(t.running.addr(kind).unwrap())
            .await
            .unwrap();
        let mut l = Lines {
            s: BufReader::new(tcp),
        };
        l.line().await;
        l
    }

    /// One line, "" when the connection closed.
    async fn line(&mut self) -> String {
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(10), self.s.read_line(&mut line))
            .await
            .expect("a line in time")
            .unwrap_or(0);
        line.trim_end().to_string()
    }

    async fn send(&mut self, command: &str) {
        self.s
            .get_mut()
            .write_all(format!("{command}\r\n").as_bytes())
            .await
            .unwrap();
    }

    async fn cmd(&mut self, command: &str) -> String {
        self.send(command).await;
        self.line().await
    }

    /// Sends `command` and reads an SMTP reply to its last line.
    async fn smtp(&mut self, command: &str) -> String {
        self.send(command).await;
        loop {
            let line = self.line().await;
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return line;
            }
        }
    }
}

/// USER/PASS on a new POP3 connection: the connection and the answer to PASS.
async fn pop3_login(t: &TestServer, pass: &str) -> (Lines, String) {
    let mut l = Lines::open(t, "pop3").await;
    assert!(l.cmd("USER alice@localhost").await.starts_with("+OK"));
    let answer = l.cmd(&format!("PASS {pass}")).await;
    (l, answer)
}

/// EHLO and AUTH PLAIN on a new submission connection: the connection and the AUTH reply.
async fn smtp_login(t: &TestServer, pass: &str) -> (Lines, String) {
    let mut l = Lines::open(t, "submission").await;
    l.smtp("EHLO laptop").await;
    let plain =
        base64::engine::general_purpose::STANDARD.encode(format!("\0alice@localhost\0{pass}"));
    let answer = l.smtp(&format!("AUTH PLAIN {plain}")).await;
    (l, answer)
}

#[tokio::test]
async fn an_app_password_made_on_the_page_signs_in_within_its_scopes_and_shows_its_last_use() {
    let (t, alice) = server().await;
    let mut b = webmail(&t).await;
    // The settings page links to the app-password page.
    assert!(
        b.get("/mail/settings")
            .await
            .body
            .contains("href=\"/mail/settings/app-passwords\"")
    );
    let pw = make(&mut b, "Phone", &["imap", "smtp"]).await;
    // At least 128 bits: 28 base32 characters, in groups for typing.
    let canonical = pw.replace('-', "");
    assert_eq!(canonical.len(), 28, "{pw}");
    assert!(
        canonical
            .bytes()
            .all(|c| c.is_ascii_lowercase() || (b'2'..=b'7').contains(&c))
    );
    // Shown once: the list has the name, never the password.
    let list = b.get("/mail/settings/app-passwords").await.body;
    assert!(list.contains("<td>Phone</td>") && list.contains("never"));
    assert!(!list.contains(&pw));
    assert_eq!(
        t.running.store.app_passwords(alice.id).await.unwrap().len(),
        1
    );
    // Stored as HMAC-SHA256 under the server's key (in `meta`), not the password or its
    // plain SHA-256.
    {
        use sha2::{Digest, Sha256};
        use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(SqliteConnectOptions::new().filename(t.dir.path().join("mailroom.db")))
            .await
            .unwrap();
        let tag: String = sqlx::query_scalar("SELECT tag FROM app_passwords")
            .fetch_one(&pool)
            .await
            .unwrap();
        let key: String =
            sqlx::query_scalar("SELECT value FROM meta WHERE key = 'app_password_key'")
                .fetch_one(&pool)
                .await
                .unwrap();
        pool.close().await;
        let key = base64::engine::general_purpose::STANDARD
            .decode(key)
            .unwrap();
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(
            tag,
            hex(ring::hmac::sign(&key, canonical.as_bytes()).as_ref())
        );
        assert_ne!(tag, hex(&Sha256::digest(canonical.as_bytes())));
        assert!(!tag.contains(&canonical));
    }

    assert!(
        imap_login(&t, "alice@localhost", &pw)
            .await
            .starts_with("TAG OK")
    );
    // Typed in capitals without the dashes: the same password.
    assert!(
        imap_login(&t, "alice@localhost", &canonical.to_uppercase())
            .await
            .starts_with("TAG OK")
    );
    let (_, smtp) = smtp_login(&t, &pw).await;
    assert!(smtp.starts_with("235 "), "{smtp}");
    // POP3 is not in its scope.
    let (_, pop) = pop3_login(&t, &pw).await;
    assert!(pop.starts_with("-ERR [AUTH]"), "{pop}");
    // Nor is the web.
    let mut other = Browser::new(&t);
    let page = other.sign_in_at("/mail", "alice@localhost", &pw).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    // Another account's app password is no password of this one.
    account(&t.running.store, "bob@localhost", 0).await;
    assert!(
        imap_login(&t, "bob@localhost", &pw)
            .await
            .starts_with("TAG NO [AUTHENTICATIONFAILED]")
    );
    // The account password still works: two-factor sign-in is off.
    assert!(
        imap_login(&t, "alice@localhost", "secret")
            .await
            .starts_with("TAG OK")
    );

    t.running.auth.flush_records().await;
    let list = b.get("/mail/settings/app-passwords").await.body;
    let row = list
        .split("<tr>")
        .find(|r| r.contains("<td>Phone</td>"))
        .unwrap();
    assert!(row.contains("from 127.0.0.1 over SMTP"), "{row}");
    let used = &t.running.store.app_passwords(alice.id).await.unwrap()[0];
    assert_eq!(used.last_used_protocol.as_deref(), Some("smtp"));
    assert!(used.last_used_at.is_some());
}

#[tokio::test]
async fn the_page_refuses_a_nameless_or_scopeless_app_password_and_a_forged_form() {
    let (t, alice) = server().await;
    let mut b = webmail(&t).await;
    let csrf = b.csrf_of("/mail/settings/app-passwords").await;
    let page = b
        .post(
            "/mail/settings/app-passwords",
            &[("csrf", &csrf), ("name", " "), ("imap", "1")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    let page = b
        .post(
            "/mail/settings/app-passwords",
            &[("csrf", &csrf), ("name", "Laptop")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("Choose at least one protocol."));
    let page = b
        .post(
            "/mail/settings/app-passwords",
            &[("csrf", "forged"), ("name", "Laptop"), ("imap", "1")],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(
        t.running
            .store
            .app_passwords(alice.id)
            .await
            .unwrap()
            .is_empty()
    );
    // Another account cannot revoke alice's app password.
    let _pw = make(&mut b, "Laptop", &["imap"]).await;
    let id = id_of(&mut b, "Laptop").await;
    account(&t.running.store, "bob@localhost", 0).await;
    let mut bob = Browser::new(&t);
    bob.sign_in_at("/mail", "bob@localhost", "secret").await;
    let csrf = bob.csrf_of("/mail/settings/app-passwords").await;
    let page = bob
        .post(
            &format!("/mail/settings/app-passwords/{id}/revoke"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert_eq!(
        t.running.store.app_passwords(alice.id).await.unwrap().len(),
        1
    );
}

#[tokio::test]
async fn revoking_ends_the_imap_idle_pop3_and_smtp_sessions_using_it_within_a_second() {
    let (t, _alice) = server().await;
    let mut b = webmail(&t).await;
    let pw = make(&mut b, "Everything", &["imap", "pop3", "smtp"]).await;
    let kept = make(&mut b, "Kept", &["imap"]).await;

    let mut idle = connect(&t).await;
    idle.ok(&format!("LOGIN alice@localhost {pw}")).await;
    idle.ok("SELECT INBOX").await;
    idle.send(b"i1 IDLE\r\n").await;
    assert!(idle.line().await.starts_with("+ "));
    // A second IMAP session with the same app password, between commands.
    let mut waiting = connect(&t).await;
    waiting.ok(&format!("LOGIN alice@localhost {pw}")).await;
    // Sessions with another app password and with the account password stay.
    let mut other = connect(&t).await;
    other.ok(&format!("LOGIN alice@localhost {kept}")).await;
    let mut by_password = connect(&t).await;
    by_password.ok("LOGIN alice@localhost secret").await;
    let (mut pop, answer) = pop3_login(&t, &pw).await;
    assert!(answer.starts_with("+OK"), "{answer}");
    let (mut smtp, answer) = smtp_login(&t, &pw).await;
    assert!(answer.starts_with("235 "), "{answer}");

    let id = id_of(&mut b, "Everything").await;
    let start = Instant::now();
    revoke(&mut b, id).await;
    let bye = idle.line().await;
    assert!(bye.starts_with("* BYE"), "{bye}");
    assert!(bye.contains("revoked"), "{bye}");
    assert_eq!(idle.line().await, "", "closed after BYE");
    let bye = waiting.line().await;
    assert!(bye.starts_with("* BYE") && bye.contains("revoked"), "{bye}");
    let err = pop.line().await;
    assert!(
        err.starts_with("-ERR [AUTH]") && err.contains("revoked"),
        "{err}"
    );
    assert_eq!(pop.line().await, "");
    let closing = smtp.line().await;
    assert!(
        closing.starts_with("421 4.7.0") && closing.contains("revoked"),
        "{closing}"
    );
    assert_eq!(smtp.line().await, "");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    other.ok("NOOP").await;
    by_password.ok("NOOP").await;
    // And the password no longer signs in.
    assert!(
        imap_login(&t, "alice@localhost", &pw)
            .await
            .starts_with("TAG NO [AUTHENTICATIONFAILED]")
    );
}

#[tokio::test]
async fn with_two_factor_sign_in_on_the_account_password_is_refused_on_imap_pop3_and_smtp() {
    let (t, alice) = server().await;
    let mut b = webmail(&t).await;
    let pw = make(&mut b, "Phone", &["imap", "pop3", "smtp"]).await;
    // Before: the account password works, and is now in the credentials cache.
    assert!(
        imap_login(&t, "alice@localhost", "secret")
            .await
            .starts_with("TAG OK")
    );
    let (_, answer) = pop3_login(&t, "secret").await;
    assert!(answer.starts_with("+OK"), "{answer}");
    let cached = t.running.auth.stats();
    assert!(cached.cached >= 1);

    confirm_totp(&t, alice.id).await;
    let imap = imap_login(&t, "alice@localhost", "secret").await;
    assert!(
        imap.starts_with("TAG NO [AUTHENTICATIONFAILED]") && imap.contains("app password"),
        "{imap}"
    );
    // The refusal came after a cache hit: the cache does not let the password through.
    assert!(t.running.auth.stats().cache_hits > cached.cache_hits);
    let (_, pop) = pop3_login(&t, "secret").await;
    assert!(
        pop.starts_with("-ERR [AUTH]") && pop.contains("app password"),
        "{pop}"
    );
    let (_, smtp) = smtp_login(&t, "secret").await;
    assert!(
        smtp.starts_with("535 5.7.8") && smtp.contains("app password"),
        "{smtp}"
    );
    // AUTHENTICATE PLAIN is the same login.
    let mut c = connect(&t).await;
    let plain = base64::engine::general_purpose::STANDARD.encode("\0alice@localhost\0secret");
    let (_, tagged) = c.cmd(&format!("AUTHENTICATE PLAIN {plain}")).await;
    assert!(
        tagged.starts_with("TAG NO [AUTHENTICATIONFAILED]"),
        "{tagged}"
    );
    // A wrong password gets the plain answer (nothing says whether 2FA is on).
    assert_eq!(
        imap_login(&t, "alice@localhost", "wrong").await,
        "TAG NO [AUTHENTICATIONFAILED] invalid credentials"
    );
    // App passwords work on every protocol of their scope.
    assert!(
        imap_login(&t, "alice@localhost", &pw)
            .await
            .starts_with("TAG OK")
    );
    let (_, pop) = pop3_login(&t, &pw).await;
    assert!(pop.starts_with("+OK"), "{pop}");
    let (_, smtp) = smtp_login(&t, &pw).await;
    assert!(smtp.starts_with("235 "), "{smtp}");
    // The refused correct password did not count as failures against this address: many
    // more tries and the app password still signs in from here.
    for _ in 0..12 {
        assert!(matches!(
            t.running
                .auth
                .login("imap", [127, 0, 0, 1].into(), "alice@localhost", "secret")
                .await,
            Err(AuthError::AppPasswordRequired)
        ));
    }
    assert!(
        imap_login(&t, "alice@localhost", &pw)
            .await
            .starts_with("TAG OK")
    );
}

#[tokio::test]
async fn the_ios_profile_carries_an_app_password_when_two_factor_sign_in_is_on() {
    let (t, alice) = server().await;
    let mut b = webmail(&t).await;
    // Off: the profile as before, without a password (the device asks for it).
    let page = b.get("/mail/settings/mobileconfig").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("<key>IncomingPassword</key>"));
    assert!(
        t.running
            .store
            .app_passwords(alice.id)
            .await
            .unwrap()
            .is_empty()
    );

    confirm_totp(&t, alice.id).await;
    let page = b.get("/mail/settings/mobileconfig").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(page.location.starts_with("/mail/settings/app-passwords"));
    let page = b.get(&page.location).await;
    assert!(page.body.contains("id=\"second-factor-note\""));
    assert!(page.body.contains("action=\"/mail/settings/mobileconfig\""));
    // The form needs its token (it makes an app password).
    let page = b
        .post("/mail/settings/mobileconfig", &[("csrf", "forged")])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let csrf = b.csrf_of("/mail/settings/app-passwords").await;
    let page = b
        .post("/mail/settings/mobileconfig", &[("csrf", &csrf)])
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(
        page.headers["content-type"],
        "application/x-apple-aspen-config"
    );
    let pw = page
        .body
        .split("<key>IncomingPassword</key><string>")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap()
        .to_string();
    assert!(
        page.body
            .contains(&format!("<key>OutgoingPassword</key><string>{pw}</string>"))
    );
    let rows = t.running.store.app_passwords(alice.id).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].name, "iPhone, iPad or Mac profile");
    assert!(
        imap_login(&t, "alice@localhost", &pw)
            .await
            .starts_with("TAG OK")
    );
    let (_, smtp) = smtp_login(&t, &pw).await;
    assert!(smtp.starts_with("235 "), "{smtp}");
    let (_, pop) = pop3_login(&t, &pw).await;
    assert!(pop.starts_with("-ERR"), "IMAP and SMTP only: {pop}");
    // Thunderbird's autoconfig has no password in it; the page makes one for it.
    let csrf = b.csrf_of("/mail/settings/app-passwords").await;
    let page = b
        .post(
            "/mail/settings/app-passwords",
            &[
                ("csrf", &csrf),
                ("name", "Thunderbird"),
                ("imap", "1"),
                ("smtp", "1"),
            ],
        )
        .await;
    assert!(page.body.contains("App password for Thunderbird"));
    assert!(page.body.contains("id=\"thunderbird-app-password\""));
}

#[tokio::test]
async fn every_sign_in_of_an_existing_account_is_in_the_history() {
    let (t, alice) = server().await;
    let mut b = webmail(&t).await;
    let pw = make(&mut b, "Tablet", &["imap", "pop3"]).await;
    assert!(
        imap_login(&t, "alice@localhost", "secret")
            .await
            .starts_with("TAG OK")
    );
    assert!(
        imap_login(&t, "alice@localhost", "wrong")
            .await
            .starts_with("TAG NO")
    );
    assert!(
        imap_login(&t, "alice@localhost", &pw)
            .await
            .starts_with("TAG OK")
    );
    let (_, pop) = pop3_login(&t, &pw).await;
    assert!(pop.starts_with("+OK"));
    let (_, smtp) = smtp_login(&t, &pw).await;
    assert!(smtp.starts_with("535 "), "out of scope: {smtp}");
    let (_, smtp) = smtp_login(&t, "secret").await;
    assert!(smtp.starts_with("235 "));
    // Unknown names are not recorded (they would let anyone fill the table).
    assert!(
        imap_login(&t, "nobody@localhost", "x")
            .await
            .starts_with("TAG NO")
    );
    t.running.auth.flush_records().await;
    let seen: Vec<(String, String, bool)> = t
        .running
        .store
        .recent_sign_ins(alice.id, 20)
        .await
        .unwrap()
        .into_iter()
        .rev()
        .map(|s| {
            assert_eq!(s.ip, "127.0.0.1");
            (s.protocol, s.method, s.success)
        })
        .collect();
    let expected: Vec<(String, String, bool)> = [
        ("web", "password", true),
        ("imap", "password", true),
        ("imap", "password", false),
        ("imap", "app password Tablet", true),
        ("pop3", "app password Tablet", true),
        ("smtp", "app password Tablet", false),
        ("smtp", "password", true),
    ]
    .iter()
    .map(|(p, m, s)| (p.to_string(), m.to_string(), *s))
    .collect();
    assert_eq!(seen, expected);
    assert_eq!(t.running.auth.dropped_records(), 0);
}

/// During an attack on the account from many addresses, a correct app password from an address
/// that has not failed signs in at once (the account's slowdown is not applied to it), and the
/// per-address lock still stops a guesser trying app-password-shaped strings.
#[tokio::test]
async fn an_app_password_signs_in_at_once_while_the_account_is_attacked() {
    let t = harness::start_with(|c| {
        c.auth.allow_plaintext = true;
        c.auth.lock_after = 3;
        c.auth.slow_after = 1;
        c.auth.max_delay_secs = 3;
    })
    .await;
    account(&t.running.store, "alice@localhost", 0).await;
    let mut b = webmail(&t).await;
    let pw = make(&mut b, "Phone", &["imap"]).await;
    let auth = &t.running.auth;
    for i in 0..6u8 {
        let ip = [127, 0, 0, 10 + i].into();
        assert!(matches!(
            auth.login("imap", ip, "alice@localhost", "guess").await,
            Err(AuthError::Failed)
        ));
    }
    // An unknown address with the account password is slowed now...
    let fresh = [127, 0, 0, 50].into();
    let start = Instant::now();
    assert!(
        auth.login("imap", fresh, "alice@localhost", "secret")
            .await
            .is_ok()
    );
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "{:?}",
        start.elapsed()
    );
    // ...an app password from another unknown address is not.
    let start = Instant::now();
    let login = auth
        .login("imap", [127, 0, 0, 51].into(), "alice@localhost", &pw)
        .await
        .unwrap();
    assert!(login.app_password.is_some());
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
    // Guessing app passwords from one address: locked after `lock_after` failures.
    let guesser = [127, 0, 0, 60].into();
    let guess = "abcd-efgh-ijkl-mnop-qrst-uvwx-yz23";
    for _ in 0..3 {
        assert!(matches!(
            auth.login("imap", guesser, "alice@localhost", guess).await,
            Err(AuthError::Failed)
        ));
    }
    assert!(matches!(
        auth.login("imap", guesser, "alice@localhost", &pw).await,
        Err(AuthError::Locked(_))
    ));
}

/// When the writer cannot keep up, records are dropped and counted, never waited for.
#[test]
fn sign_in_records_dropped_are_counted_not_waited_for() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (store, _dir) = rt.block_on(harness::store());
    // Made outside the runtime: no writer runs, so the queue fills and then every record
    // is dropped.
    let recorder = mailroom::auth::recorder::Recorder::start(store.clone());
    let n = mailroom::auth::recorder::QUEUE + 10;
    let start = Instant::now();
    for _ in 0..n {
        recorder.sign_in(mailroom::store::Store::sign_in_now(
            1,
            "127.0.0.1",
            "imap",
            "password",
            false,
        ));
    }
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(recorder.dropped(), n as u64);
    let dropped = store
        .event_counters()
        .into_iter()
        .find(|(k, _)| *k == "sign_in_records_dropped")
        .map(|(_, n)| n);
    assert_eq!(dropped, Some(n as i64));
}

/// `cargo test --release --test it app_password_login_latency -- --ignored --nocapture`:
/// the p50/p99 of `Authenticator::login` with an app password (target p99 <= 2 ms).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn app_password_login_latency() {
    let (t, alice) = server().await;
    let (_, pw) = t
        .running
        .auth
        .create_app_password(alice.id, "bench", mailroom::auth::app_passwords::ALL)
        .await
        .unwrap()
        .unwrap();
    let auth = &t.running.auth;
    let ip = [127, 0, 0, 1].into();
    let mut took = Vec::new();
    for _ in 0..2000 {
        let start = Instant::now();
        auth.login("imap", ip, "alice@localhost", &pw)
            .await
            .unwrap();
        took.push(start.elapsed());
    }
    took.sort();
    let p = |q: f64| took[((took.len() as f64 * q) as usize).min(took.len() - 1)];
    println!(
        "app password login over 2000: p50 {:?} p99 {:?} max {:?}",
        p(0.5),
        p(0.99),
        took[took.len() - 1]
    );
    assert!(p(0.99) <= Duration::from_millis(2));
}

/// Python's imaplib (`tests/interop/imap_app_password_imaplib.py`): an app password signs in,
/// the account password is refused with the hint, two-factor sign-in being on.
#[tokio::test]
async fn imaplib_signs_in_with_an_app_password() {
    let (t, alice) = server().await;
    crate::imap::deliver(
        &t.running.store,
        &alice,
        b"From: a@example.org\r\nSubject: hi\r\n\r\nhello\r\n",
    )
    .await;
    let mut b = webmail(&t).await;
    let pw = make(&mut b, "Python", &["imap"]).await;
    confirm_totp(&t, alice.id).await;
    let root = env!("CARGO_MANIFEST_DIR");
    let out = tokio::process::Command::new("python3")
        .arg(format!("{root}/tests/interop/imap_app_password_imaplib.py"))
        .env("IMAP_HOST", "127.0.0.1")
        .env(
            "IMAP_PORT",
            t.running.addr("imap").unwrap().port().to_string(),
        )
        .env("IMAP_USER", "alice@localhost")
        .env("IMAP_PASSWORD", "secret")
        .env("IMAP_APP_PASSWORD", &pw)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("python3 runs (CI installs it: .ci/run)");
    println!("{}", String::from_utf8_lossy(&out.stdout));
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The journey in Chromium (`tests/browser/app_passwords.mjs`): create an app password on the
/// page, sign in with it over IMAP, revoke it, the session ends and it no longer signs in.
#[tokio::test]
async fn app_password_journey_in_chromium() {
    let (t, alice) = server().await;
    let imap = t.running.addr("imap").unwrap();
    crate::browser::journey(
        "app_passwords.mjs",
        &t,
        &[("IMAP_PORT", imap.port().to_string())],
    )
    .await;
    t.running.auth.flush_records().await;
    let history = t.running.store.recent_sign_ins(alice.id, 20).await.unwrap();
    if history.iter().any(|s| s.protocol == "imap") {
        // The browser ran: its IMAP sign-in with the app password is in the history.
        assert!(history.iter().any(|s| s.protocol == "imap"
            && s.method == "app password Browser phone"
            && s.success));
        assert!(
            t.running
                .store
                .app_passwords(alice.id)
                .await
                .unwrap()
                .is_empty()
        );
    }
    t.running.shutdown().await;
}
