//! The login throttle as an attacker meets it, through the whole server: guesses from many
//! loopback addresses (127.0.0.x, each client socket bound to its own source address) and
//! parallel guesses from one, and the real user signing in while it goes on.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::net::{TcpSocket, TcpStream};

use crate::harness::{TestServer, account, start_with};
use crate::{imap, smtp};

const FAILED: &str = "TAG NO [AUTHENTICATIONFAILED] invalid credentials";
const REFUSED: &str = "TAG NO [UNAVAILABLE] too many failed logins";

/// A TCP connection to the listener `kind` from the loopback address 127.0.0.`from`.
async fn tcp_from(t: &TestServer, kind: &str, from: u8) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, from)),
            0,
        ))
        .expect("bind a loopback source address");
    socket
        .connect(t.running.addr(kind).expect("listener"))
        .await
        .expect("connect")
}

async fn imap_from(t: &TestServer, from: u8) -> imap::Client<TcpStream> {
    let mut c = imap::Client::new(tcp_from(t, "imap", from).await);
    let greeting = c.line().await;
    assert!(greeting.starts_with("* OK "), "{greeting}");
    c
}

/// LOGIN from 127.0.0.`from` on a new connection: the tagged reply.
async fn imap_login(t: &TestServer, from: u8, password: &str) -> String {
    let mut c = imap_from(t, from).await;
    c.cmd(&format!("LOGIN alice@localhost {password}")).await.1
}

/// Sixty wrong passwords for one account sent at the same moment from one address: before the
/// fix each was checked (none refused), so concurrency multiplied the guesses an address may
/// make. Now an attempt is counted before its password is checked, so at most `lock_after`
/// of them reach the check and the rest get the throttle's refusal.
#[tokio::test]
async fn parallel_guesses_are_counted_before_the_password_check() {
    let t = start_with(|c| c.auth.allow_plaintext = true).await;
    account(&t.running.store, "alice@localhost", 0).await;
    let lock_after = mailroom::config::Config::embedded().auth.lock_after;

    let mut clients = Vec::new();
    for _ in 0..60 {
        clients.push(imap_from(&t, 1).await);
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(clients.len()));
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                c.cmd("LOGIN alice@localhost wrong").await.1
            })
        })
        .collect();
    let (mut checked, mut refused) = (0u32, 0u32);
    for task in tasks {
        let reply = task.await.expect("task");
        if reply == FAILED {
            checked += 1;
        } else if reply.starts_with(REFUSED) {
            refused += 1;
        } else {
            panic!("unexpected reply {reply}");
        }
    }
    eprintln!(
        "60 parallel guesses: {checked} checked, {refused} refused, in {:?}",
        started.elapsed()
    );
    assert!(
        checked <= lock_after,
        "{checked} guesses checked; the limit is {lock_after}"
    );
    assert!(checked >= 1, "the first guesses are checked");
    assert_eq!(checked + refused, 60);

    // That address is now refused even with the right password; another one is not.
    assert!(imap_login(&t, 1, "secret").await.starts_with(REFUSED));
    assert!(imap_login(&t, 2, "secret").await.starts_with("TAG OK"));
}

/// SMTP AUTH PLAIN on the submission port from 127.0.0.`from`: the reply code.
async fn smtp_auth(t: &TestServer, from: u8, password: &str) -> u16 {
    use base64::Engine;
    let mut c = smtp::Client::new(tcp_from(t, "submission", from).await);
    assert_eq!(c.reply().await.0, 220);
    assert_eq!(c.cmd("EHLO laptop").await.0, 250);
    let token =
        base64::engine::general_purpose::STANDARD.encode(format!("\0alice@localhost\0{password}"));
    c.cmd(&format!("AUTH PLAIN {token}")).await.0
}

/// Twenty addresses guess alice's password until each is refused, and keep knocking. Before
/// the fix ten wrong passwords from anywhere locked the account itself for everyone for
/// 15 minutes; now each address locks only itself out, and alice signs in during the attack:
/// at once from the address she used before, slowed but successfully from a new one, over
/// IMAP and SMTP alike.
#[tokio::test]
async fn the_real_user_signs_in_while_many_addresses_attack() {
    const LOCK_AFTER: u32 = 3;
    const MAX_DELAY: u64 = 3;
    let t = start_with(|c| {
        c.auth.allow_plaintext = true;
        c.auth.slow_after = 2;
        c.auth.lock_after = LOCK_AFTER;
        c.auth.max_delay_secs = MAX_DELAY;
    })
    .await;
    account(&t.running.store, "alice@localhost", 0).await;
    let t = Arc::new(t);
    // Alice's phone signs in from 127.0.0.2 before the attack.
    assert!(imap_login(&t, 2, "secret").await.starts_with("TAG OK"));

    let stop = Arc::new(AtomicBool::new(false));
    let attackers: Vec<_> = (10..30u8)
        .map(|from| {
            let (t, stop) = (t.clone(), stop.clone());
            tokio::spawn(async move {
                let mut c = imap_from(&t, from).await;
                let mut checked = 0u32;
                let mut n = 0u32;
                loop {
                    let reply = c.cmd(&format!("LOGIN alice@localhost guess{n}")).await.1;
                    n += 1;
                    if reply == FAILED {
                        checked += 1;
                    } else {
                        assert!(reply.starts_with(REFUSED), "{reply}");
                        // Locked out: keep knocking (which must not extend anything) until
                        // told to stop.
                        if stop.load(Ordering::Relaxed) {
                            return checked;
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            })
        })
        .collect();
    // Wait until the attack has made more failures than one address could.
    tokio::time::sleep(Duration::from_secs(4)).await;

    // From the known address: not slowed.
    let started = Instant::now();
    assert!(imap_login(&t, 2, "secret").await.starts_with("TAG OK"));
    let known = started.elapsed();
    // From an address that has never failed: slowed, and it works.
    let started = Instant::now();
    let reply = imap_login(&t, 3, "secret").await;
    let unknown = started.elapsed();
    assert!(
        reply.starts_with("TAG OK"),
        "the real user is locked out: {reply}"
    );
    assert_eq!(smtp_auth(&t, 4, "secret").await, 235);
    // An attacking address is refused even with the right password.
    assert!(imap_login(&t, 10, "secret").await.starts_with(REFUSED));
    assert_eq!(smtp_auth(&t, 11, "secret").await, 454);
    eprintln!("during the attack: known address {known:?}, new address {unknown:?}");
    assert!(
        unknown >= Duration::from_secs(MAX_DELAY),
        "a new address is slowed: {unknown:?}"
    );
    assert!(
        known < Duration::from_secs(MAX_DELAY),
        "a known address is not slowed: {known:?}"
    );

    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for attacker in attackers {
        let checked = attacker.await.expect("attacker");
        assert!(
            (1..=LOCK_AFTER).contains(&checked),
            "one address had {checked} guesses checked"
        );
        total += checked;
    }
    eprintln!("20 addresses: {total} guesses checked");
}
