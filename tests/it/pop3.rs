//! POP3 over TCP and TLS against the whole server: every command, every state rule, the
//! plaintext policy, STLS, AUTH, the IN-USE lock, UIDL stability, UPDATE-only deletion,
//! idle timeout and shutdown. `interop` runs third-party clients (poplib, fetchmail).

mod client;
mod interop;

use std::net::SocketAddr;
use std::time::Duration;

use mailroom::auth::Authenticator;
use mailroom::auth::throttle::Verdict;
use mailroom::net::{Limits, Listener, Security};
use mailroom::pop3::{Server, Settings};
use mailroom::store::{Account, Change, Store};

use crate::harness::{self, TestServer, account, message};
use client::{Pop, WAIT, deliver, implicit, inbox_uids, plain};

/// A server with alice@localhost holding `n` messages.
async fn with_messages(n: usize) -> (TestServer, Account) {
    let t = harness::start().await;
    let alice = account(&t.running.store, "alice@localhost", 0).await;
    for i in 0..n {
        deliver(
            &t.running.store,
            &alice,
            &message(&format!("m{i}"), "pop", 600),
        )
        .await;
    }
    (t, alice)
}

fn has_line(lines: &[String], want: &str) -> bool {
    lines.iter().any(|l| l == want)
}

#[tokio::test]
async fn capa_stls_and_the_plaintext_policy() {
    let (t, _alice) = with_messages(1).await;
    let mut p = plain(t.running.addr("pop3").expect("pop3")).await;
    let (_, capa) = p.multi("CAPA").await;
    for cap in [
        "TOP",
        "UIDL",
        "RESP-CODES",
        "AUTH-RESP-CODE",
        "PIPELINING",
        "EXPIRE NEVER",
        "STLS",
        "IMPLEMENTATION Mailroom",
    ] {
        assert!(has_line(&capa, cap), "{cap} missing from {capa:?}");
    }
    assert!(!has_line(&capa, "USER"), "{capa:?}");
    assert!(!capa.iter().any(|c| c.starts_with("SASL")), "{capa:?}");
    // Passwords are refused before TLS, with a response code and a hint.
    let r = p.cmd("USER alice@localhost").await;
    assert!(r.starts_with("-ERR [AUTH] ") && r.contains("STLS"), "{r}");
    assert!(p.cmd("PASS secret").await.starts_with("-ERR [AUTH] "));
    assert!(
        p.cmd("AUTH PLAIN AGFsaWNlQGxvY2FsaG9zdABzZWNyZXQ=")
            .await
            .starts_with("-ERR [AUTH] ")
    );
    assert!(p.cmd("AUTH").await.starts_with("-ERR [AUTH] "));
    let r = p.cmd("STAT").await;
    assert!(r.starts_with("-ERR ") && r.contains("after login"), "{r}");

    let mut p = p.stls(t.dir.path()).await;
    let (_, capa) = p.multi("CAPA").await;
    assert!(has_line(&capa, "USER"), "{capa:?}");
    assert!(has_line(&capa, "SASL PLAIN LOGIN"), "{capa:?}");
    assert!(!has_line(&capa, "STLS"), "{capa:?}");
    assert!(p.cmd("STLS").await.starts_with("-ERR "));
    let r = p.login("alice@localhost").await;
    assert_eq!(r, "+OK alice@localhost has 1 message");
    // After login: no USER, SASL or STLS, and STLS is refused.
    let (_, capa) = p.multi("CAPA").await;
    assert!(
        has_line(&capa, "UIDL") && !has_line(&capa, "USER"),
        "{capa:?}"
    );
    assert!(p.cmd("STLS").await.starts_with("-ERR "));
    assert!(p.cmd("QUIT").await.starts_with("+OK "));
    assert!(p.closed().await);

    // 995: TLS from the start, USER offered, STLS not.
    let mut p = implicit(&t).await;
    let (_, capa) = p.multi("CAPA").await;
    assert!(
        has_line(&capa, "USER") && !has_line(&capa, "STLS"),
        "{capa:?}"
    );
    assert_eq!(p.cmd("QUIT").await, "+OK bye");
    assert!(p.closed().await);
}

#[tokio::test]
async fn stls_discards_commands_pipelined_before_the_handshake() {
    let (t, _alice) = with_messages(0).await;
    let mut p = plain(t.running.addr("pop3").expect("pop3")).await;
    p.send("STLS\r\nCAPA\r\n").await;
    assert!(p.line().await.starts_with("+OK "));
    let mut p = Pop::new(harness::tls_client(t.dir.path(), p.into_inner()).await);
    // The plaintext CAPA was dropped: the first reply over TLS answers NOOP's wrong state.
    let r = p.cmd("NOOP").await;
    assert!(r.starts_with("-ERR ") && r.contains("NOOP"), "{r}");
}

#[tokio::test]
async fn allow_plaintext_accepts_passwords_without_tls() {
    let t = harness::start_with(|c| c.auth.allow_plaintext = true).await;
    account(&t.running.store, "alice@localhost", 0).await;
    let mut p = plain(t.running.addr("pop3").expect("pop3")).await;
    let (_, capa) = p.multi("CAPA").await;
    assert!(
        has_line(&capa, "USER") && has_line(&capa, "STLS"),
        "{capa:?}"
    );
    assert_eq!(
        p.login("alice@localhost").await,
        "+OK alice@localhost has 0 messages"
    );
}

#[tokio::test]
async fn transaction_commands_and_update() {
    let t = harness::start().await;
    let store = t.running.store.clone();
    let alice = account(&store, "alice@localhost", 0).await;
    let crlf = message("first", "one", 300);
    let bare_lf = b"Subject: bare\n\nline one\n.dot line\n..two dots\nlast".to_vec();
    let third = message("third", "three", 2000);
    for m in [&crlf, &bare_lf, &third] {
        deliver(&store, &alice, m).await;
    }
    let bare_lf_wire = b"Subject: bare\r\n\r\nline one\r\n.dot line\r\n..two dots\r\nlast\r\n";
    let sizes = [crlf.len(), bare_lf_wire.len(), third.len()];
    let total: usize = sizes.iter().sum();
    let used_before = store.account(alice.id).await.unwrap().unwrap().used_bytes;

    let mut p = implicit(&t).await;
    assert_eq!(
        p.login("alice@localhost").await,
        "+OK alice@localhost has 3 messages"
    );
    assert_eq!(p.cmd("STAT").await, format!("+OK 3 {total}"));
    let (status, list) = p.multi("LIST").await;
    assert_eq!(status, format!("+OK 3 messages ({total} octets)"));
    let want: Vec<String> = (1..).zip(sizes).map(|(n, s)| format!("{n} {s}")).collect();
    assert_eq!(list, want);
    assert_eq!(p.cmd("LIST 2").await, format!("+OK 2 {}", sizes[1]));
    let r = p.cmd("LIST 4").await;
    assert!(r.starts_with("-ERR no such message"), "{r}");
    let (_, uidl) = p.multi("UIDL").await;
    assert_eq!(uidl.len(), 3);
    for (i, line) in uidl.iter().enumerate() {
        let (n, id) = line.split_once(' ').expect("n uid");
        assert_eq!(n, (i + 1).to_string());
        assert_eq!(id.len(), 16, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    }
    assert_eq!(p.cmd("UIDL 2").await, format!("+OK {}", uidl[1]));

    // RETR: CRLF whatever was stored, dots stuffed on the wire, size as announced.
    assert_eq!(p.cmd("RETR 2").await, format!("+OK {} octets", sizes[1]));
    assert_eq!(p.body().await, bare_lf_wire);
    assert_eq!(p.cmd("RETR 1").await, format!("+OK {} octets", sizes[0]));
    assert_eq!(p.body().await, crlf);
    // TOP: the header, the blank line, n body lines.
    assert!(p.cmd("TOP 2 0").await.starts_with("+OK"));
    assert_eq!(p.body().await, b"Subject: bare\r\n\r\n");
    assert!(p.cmd("TOP 2 2").await.starts_with("+OK"));
    assert_eq!(
        p.body().await,
        b"Subject: bare\r\n\r\nline one\r\n.dot line\r\n"
    );
    assert!(p.cmd("TOP 2 99").await.starts_with("+OK"));
    assert_eq!(p.body().await, bare_lf_wire);

    // DELE marks; the message disappears from every command until RSET.
    assert_eq!(p.cmd("DELE 1").await, "+OK message 1 deleted");
    for cmd in ["DELE 1", "RETR 1", "TOP 1 1", "LIST 1", "UIDL 1"] {
        let r = p.cmd(cmd).await;
        assert_eq!(r, "-ERR message 1 already deleted", "{cmd}");
    }
    assert_eq!(p.cmd("STAT").await, format!("+OK 2 {}", total - sizes[0]));
    let (_, list) = p.multi("LIST").await;
    assert_eq!(list, want[1..]);
    let (_, uidl_after) = p.multi("UIDL").await;
    assert_eq!(uidl_after, uidl[1..]);
    assert_eq!(p.cmd("RSET").await, "+OK maildrop has 3 messages");
    assert_eq!(p.cmd("STAT").await, format!("+OK 3 {total}"));
    assert_eq!(p.cmd("NOOP").await, "+OK");

    // Wrong state and bad arguments.
    assert!(
        p.cmd("USER bob")
            .await
            .starts_with("-ERR already logged in")
    );
    assert!(p.cmd("PASS x").await.starts_with("-ERR already logged in"));
    assert!(
        p.cmd("AUTH PLAIN")
            .await
            .starts_with("-ERR already logged in")
    );
    assert!(p.cmd("RETR x").await.starts_with("-ERR syntax: RETR msg"));
    assert!(
        p.cmd("TOP 1")
            .await
            .starts_with("-ERR syntax: TOP msg lines")
    );
    assert!(p.cmd("DELE 0").await.starts_with("-ERR syntax: DELE msg"));

    // Nothing is removed before QUIT.
    assert_eq!(p.cmd("DELE 1").await, "+OK message 1 deleted");
    assert_eq!(p.cmd("DELE 3").await, "+OK message 3 deleted");
    assert_eq!(inbox_uids(&store, &alice).await, [1, 2, 3]);
    // QUIT expunges through the store: quota drops and IMAP sessions hear of it.
    let mut changes = store.changes().subscribe();
    let r = p.cmd("QUIT").await;
    assert_eq!(
        r,
        "+OK localhost POP3 server signing off (2 messages deleted)"
    );
    assert!(p.closed().await);
    assert_eq!(inbox_uids(&store, &alice).await, [2]);
    let used_after = store.account(alice.id).await.unwrap().unwrap().used_bytes;
    assert_eq!(used_before - used_after, (crlf.len() + third.len()) as i64);
    let change = tokio::time::timeout(WAIT, changes.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(&change, Change::Expunged { account_id, uids, .. } if *account_id == alice.id && uids == &[1, 3]),
        "{change:?}"
    );
}

#[tokio::test]
async fn a_dropped_connection_deletes_nothing() {
    let (t, alice) = with_messages(2).await;
    let mut p = implicit(&t).await;
    p.login("alice@localhost").await;
    assert!(p.cmd("DELE 1").await.starts_with("+OK"));
    assert!(p.cmd("DELE 2").await.starts_with("+OK"));
    drop(p);
    // The next session gets the lock once the server has seen the connection go.
    let mut p = implicit(&t).await;
    let mut r = p.login("alice@localhost").await;
    for _ in 0..50 {
        if !r.contains("[IN-USE]") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        r = p.login("alice@localhost").await;
    }
    assert_eq!(r, "+OK alice@localhost has 2 messages");
    assert_eq!(inbox_uids(&t.running.store, &alice).await, [1, 2]);
    // QUIT without DELE deletes nothing either.
    assert!(p.cmd("QUIT").await.contains("(0 messages deleted)"));
    assert_eq!(inbox_uids(&t.running.store, &alice).await, [1, 2]);
}

#[tokio::test]
async fn a_second_session_gets_in_use_across_both_ports() {
    let (t, _alice) = with_messages(1).await;
    let mut first = implicit(&t).await;
    first.login("alice@localhost").await;
    let mut second = plain(t.running.addr("pop3").expect("pop3"))
        .await
        .stls(t.dir.path())
        .await;
    let r = second.login("alice@localhost").await;
    assert!(r.starts_with("-ERR [IN-USE] "), "{r}");
    // Still in AUTHORIZATION: the client may try again once the first session is gone.
    assert!(second.cmd("STAT").await.starts_with("-ERR "));
    // Another account is not affected.
    account(&t.running.store, "bob@localhost", 0).await;
    let mut bob = implicit(&t).await;
    assert_eq!(
        bob.login("bob@localhost").await,
        "+OK bob@localhost has 0 messages"
    );
    assert!(first.cmd("QUIT").await.starts_with("+OK"));
    let r = second.login("alice@localhost").await;
    assert_eq!(r, "+OK alice@localhost has 1 message");
}

#[tokio::test]
async fn uidl_is_stable_across_sessions_and_new_mail_waits() {
    let (t, alice) = with_messages(3).await;
    let store = t.running.store.clone();
    let mut p = implicit(&t).await;
    p.login("alice@localhost").await;
    let (_, first) = p.multi("UIDL").await;
    let stat = p.cmd("STAT").await;
    // Mail delivered during the session does not appear in it.
    deliver(&store, &alice, &message("late", "late", 500)).await;
    assert_eq!(p.cmd("STAT").await, stat);
    let (_, list) = p.multi("LIST").await;
    assert_eq!(list.len(), 3);
    assert!(p.cmd("RETR 4").await.starts_with("-ERR no such message"));
    assert!(p.cmd("DELE 1").await.starts_with("+OK"));
    assert!(p.cmd("QUIT").await.starts_with("+OK"));

    let mut p = implicit(&t).await;
    assert_eq!(
        p.login("alice@localhost").await,
        "+OK alice@localhost has 3 messages"
    );
    let (_, second) = p.multi("UIDL").await;
    let ids = |l: &[String]| -> Vec<String> {
        l.iter()
            .map(|x| x.split_once(' ').unwrap().1.to_string())
            .collect()
    };
    let (first, second) = (ids(&first), ids(&second));
    // Messages 2 and 3 keep their ids under new numbers; the late one has a new id.
    assert_eq!(second[..2], first[1..]);
    assert!(!first.contains(&second[2]));
    p.cmd("QUIT").await;

    // Delete everything, deliver again: ids are never reused.
    let mut p = implicit(&t).await;
    p.login("alice@localhost").await;
    for n in 1..=3 {
        assert!(p.cmd(&format!("DELE {n}")).await.starts_with("+OK"));
    }
    p.cmd("QUIT").await;
    deliver(&store, &alice, &message("m0", "pop", 600)).await;
    let mut p = implicit(&t).await;
    p.login("alice@localhost").await;
    let (_, third) = p.multi("UIDL").await;
    let third = ids(&third);
    assert_eq!(third.len(), 1);
    assert!(!first.contains(&third[0]) && !second.contains(&third[0]));
}

#[tokio::test]
async fn auth_plain_and_login() {
    let (t, _alice) = with_messages(1).await;
    let b64 = |s: &[u8]| mailroom::auth::sasl::encode(s);
    let ok = "+OK alice@localhost has 1 message";

    let mut p = implicit(&t).await;
    let (_, mechs) = p.multi("AUTH").await;
    assert_eq!(mechs, ["PLAIN", "LOGIN"]);
    let r = p
        .cmd(&format!("AUTH PLAIN {}", b64(b"\0alice@localhost\0secret")))
        .await;
    assert_eq!(r, ok);
    p.cmd("QUIT").await;

    // Without an initial response: an empty challenge, then the response.
    let mut p = implicit(&t).await;
    // (The client's line reader trims the space after "+".)
    assert_eq!(p.cmd("AUTH PLAIN").await, "+");
    assert_eq!(
        p.cmd(&b64(b"alice@localhost\0alice@localhost\0secret"))
            .await,
        ok
    );
    p.cmd("QUIT").await;

    let mut p = implicit(&t).await;
    assert_eq!(p.cmd("AUTH LOGIN").await, "+ VXNlcm5hbWU6");
    assert_eq!(p.cmd(&b64(b"alice@localhost")).await, "+ UGFzc3dvcmQ6");
    assert_eq!(p.cmd(&b64(b"secret")).await, ok);
    p.cmd("QUIT").await;

    let mut p = implicit(&t).await;
    assert_eq!(p.cmd("AUTH PLAIN").await, "+");
    assert_eq!(p.cmd("*").await, "-ERR authentication cancelled");
    let r = p.cmd("AUTH PLAIN !!!notbase64").await;
    assert!(r.starts_with("-ERR [AUTH] "), "{r}");
    let r = p
        .cmd(&format!(
            "AUTH PLAIN {}",
            b64(b"boss@localhost\0alice@localhost\0secret")
        ))
        .await;
    assert!(r.starts_with("-ERR [AUTH] "), "{r}");
    let r = p.cmd("AUTH CRAM-MD5").await;
    assert!(r.starts_with("-ERR unsupported SASL mechanism"), "{r}");
    let r = p
        .cmd(&format!("AUTH PLAIN {}", b64(b"\0alice@localhost\0wrong")))
        .await;
    assert_eq!(r, "-ERR [AUTH] invalid credentials");
    // USER/PASS: a wrong password and an unknown user get the same answer.
    assert_eq!(p.cmd("PASS secret").await, "-ERR send USER first");
    p.cmd("USER nobody@localhost").await;
    assert_eq!(
        p.cmd("PASS secret").await,
        "-ERR [AUTH] invalid credentials"
    );
    assert!(
        p.cmd("APOP alice@localhost 0123456789abcdef")
            .await
            .starts_with("-ERR APOP is not supported")
    );
    assert_eq!(p.login("alice@localhost").await, ok);
}

#[tokio::test]
async fn failed_logins_go_through_the_shared_throttle() {
    let t = harness::start_with(|c| {
        c.auth.slow_after = 100;
        c.auth.lock_after = 2;
    })
    .await;
    account(&t.running.store, "alice@localhost", 0).await;
    let mut p = implicit(&t).await;
    p.cmd("USER alice@localhost").await;
    assert_eq!(p.cmd("PASS wrong").await, "-ERR [AUTH] invalid credentials");
    p.cmd("USER alice@localhost").await;
    assert_eq!(p.cmd("PASS wrong").await, "-ERR [AUTH] invalid credentials");
    // Locked now, even with the right password; the throttle is shared with other protocols.
    let r = p.login("alice@localhost").await;
    assert!(
        r.starts_with("-ERR [SYS/TEMP] too many failed logins"),
        "{r}"
    );
    let verdict = t
        .running
        .auth
        .throttle()
        .check("127.0.0.1".parse().unwrap(), "alice@localhost");
    assert!(matches!(verdict, Verdict::Locked(_)), "{verdict:?}");
}

#[tokio::test]
async fn bad_input_gets_clear_errors_and_too_many_close() {
    let (t, _alice) = with_messages(1).await;
    let mut p = implicit(&t).await;
    assert_eq!(p.cmd("HELO there").await, "-ERR unknown command HELO");
    assert_eq!(p.cmd("").await, "-ERR empty command");
    assert_eq!(p.cmd("LIST 0").await, "-ERR syntax: LIST [msg]");
    let long = format!("USER {}", "x".repeat(2000));
    let r = p.cmd(&long).await;
    assert_eq!(r, "-ERR line too long (at most 512 octets)");
    // The session goes on after each error.
    assert!(p.cmd("CAPA").await.starts_with("+OK"));
    p.body().await;
    let r = p.cmd("RETR 1").await;
    assert!(r.starts_with("-ERR RETR is only valid after login"), "{r}");
    for _ in 0..4 {
        assert!(p.cmd("XYZZ").await.starts_with("-ERR unknown command"));
    }
    // The tenth error closes the session.
    let r = p.cmd("XYZZ").await;
    assert_eq!(r, "-ERR unknown command XYZZ; too many errors, closing");
    assert!(p.closed().await);
}

#[tokio::test]
async fn pipelined_commands_are_answered_in_order() {
    let (t, _alice) = with_messages(2).await;
    let mut p = implicit(&t).await;
    p.send("USER alice@localhost\r\nPASS secret\r\nSTAT\r\nLIST\r\nUIDL 2\r\nRETR 1\r\nDELE 1\r\nQUIT\r\n")
        .await;
    assert!(p.line().await.starts_with("+OK send PASS"));
    assert!(p.line().await.starts_with("+OK alice@localhost has 2"));
    assert!(p.line().await.starts_with("+OK 2 "));
    assert!(p.line().await.starts_with("+OK 2 messages"));
    assert_eq!(
        String::from_utf8(p.body().await).unwrap().lines().count(),
        2
    );
    assert!(p.line().await.starts_with("+OK 2 "));
    assert!(p.line().await.ends_with(" octets"));
    assert!(p.body().await.starts_with(b"From: "));
    assert_eq!(p.line().await, "+OK message 1 deleted");
    assert!(p.line().await.contains("(1 message deleted)"));
    assert!(p.closed().await);
}

#[tokio::test]
async fn large_messages_are_streamed_intact() {
    let t = harness::start().await;
    let alice = account(&t.running.store, "alice@localhost", 0).await;
    // ~6 MB with bare LFs and lines starting with a dot.
    let mut raw = b"Subject: big\nFrom: a@example.net\n\n".to_vec();
    let mut wire = b"Subject: big\r\nFrom: a@example.net\r\n\r\n".to_vec();
    for i in 0..100_000 {
        let line = format!(".{i} the quick brown fox jumps over the lazy dog");
        raw.extend_from_slice(line.as_bytes());
        raw.push(b'\n');
        wire.extend_from_slice(line.as_bytes());
        wire.extend_from_slice(b"\r\n");
    }
    deliver(&t.running.store, &alice, &raw).await;
    let mut p = implicit(&t).await;
    p.login("alice@localhost").await;
    assert_eq!(p.cmd("LIST 1").await, format!("+OK 1 {}", wire.len()));
    assert_eq!(p.cmd("RETR 1").await, format!("+OK {} octets", wire.len()));
    let got = p.body().await;
    assert_eq!(got.len(), wire.len());
    assert!(got == wire, "content differs");
}

/// RETR reads the next message's body ahead: in order, out of order, and past a DELE of the
/// message read ahead, every reply is the right message.
#[tokio::test]
async fn retr_in_any_order_serves_the_right_bodies() {
    let t = harness::start().await;
    let alice = account(&t.running.store, "alice@localhost", 0).await;
    for i in 1..=6 {
        deliver(
            &t.running.store,
            &alice,
            format!("Subject: n{i}\r\n\r\nbody {i}\r\n").as_bytes(),
        )
        .await;
    }
    let body = |i: u32| format!("Subject: n{i}\r\n\r\nbody {i}\r\n").into_bytes();
    let mut p = implicit(&t).await;
    p.login("alice@localhost").await;
    for (command, want) in [
        ("RETR 1", Some(1)),
        ("RETR 2", Some(2)),
        // 3 was read ahead; deleted, it is not served, and 4 is.
        ("DELE 3", None),
        ("RETR 3", None),
        ("RETR 4", Some(4)),
        // Backwards, then forwards past a gap.
        ("RETR 1", Some(1)),
        ("RETR 6", Some(6)),
        ("RETR 5", Some(5)),
    ] {
        let reply = p.cmd(command).await;
        match want {
            Some(i) => {
                assert!(reply.starts_with("+OK"), "{command}: {reply}");
                assert_eq!(p.body().await, body(i), "{command}");
            }
            None if command.starts_with("DELE") => assert!(reply.starts_with("+OK"), "{reply}"),
            None => assert_eq!(reply, "-ERR message 3 already deleted"),
        }
    }
}

/// A POP3 listener of our own, for settings the config does not expose (a short idle time).
async fn own_listener(
    t: &TestServer,
    settings: Settings,
) -> (SocketAddr, mailroom::shutdown::ShutdownTrigger) {
    let server = Server::new(
        t.running.store.clone(),
        Authenticator::new(t.running.store.clone(), Default::default()),
        settings,
    );
    let listener = Listener::bind(
        "pop3",
        "127.0.0.1:0".parse().unwrap(),
        Security::Plain(None),
        server.handler(),
    )
    .await
    .unwrap();
    let addr = listener.local;
    let (tx, rx) = mailroom::shutdown::channel();
    tokio::spawn(listener.run(Limits::new(10, 10), rx, Duration::from_secs(1)));
    (addr, tx)
}

#[tokio::test]
async fn idle_sessions_are_logged_out_without_deleting() {
    let (t, alice) = with_messages(1).await;
    let settings = Settings {
        hostname: "localhost".into(),
        allow_plaintext: true,
        idle_timeout: Duration::from_millis(300),
        max_errors: 10,
    };
    let (addr, _stop) = own_listener(&t, settings).await;
    let mut p = plain(addr).await;
    p.login("alice@localhost").await;
    assert!(p.cmd("DELE 1").await.starts_with("+OK"));
    let r = p.line().await;
    assert!(r.starts_with("-ERR autologout"), "{r}");
    assert!(p.closed().await);
    assert_eq!(inbox_uids(&t.running.store, &alice).await, [1]);
}

#[tokio::test]
async fn shutdown_ends_sessions_without_deleting() {
    let (t, alice) = with_messages(2).await;
    let db = t.dir.path().join("mailroom.db");
    let mut p = implicit(&t).await;
    p.login("alice@localhost").await;
    assert!(p.cmd("DELE 1").await.starts_with("+OK"));
    let TestServer { running, dir } = t;
    let stopping = tokio::spawn(running.shutdown());
    let r = p.line().await;
    assert_eq!(
        r,
        "-ERR [SYS/TEMP] server shutting down, nothing was deleted"
    );
    assert!(p.closed().await);
    stopping.await.unwrap();
    let store = Store::open(&db).await.unwrap();
    assert_eq!(inbox_uids(&store, &alice).await, [1, 2]);
    store.close().await;
    drop(dir);
}

/// The session's snapshot names messages by UID within the INBOX, never by body id: once
/// another session expunges a message, SQLite may hand its body's id to the next message
/// stored, another account's, and RETR must not serve that one (found in review: it did).
#[tokio::test]
async fn a_message_expunged_elsewhere_is_never_served_as_another_accounts() {
    let (t, alice) = with_messages(1).await;
    let store = &t.running.store;
    let bob = account(store, "bob@localhost", 0).await;
    let mut p = implicit(&t).await;
    let r = p.login("alice@localhost").await;
    assert!(r.starts_with("+OK"), "{r}");
    // IMAP or the webmail expunges Alice's message (POP3's lock keeps only POP3 out)…
    let inbox = store.mailbox(alice.id, "INBOX").await.unwrap().unwrap();
    assert_eq!(store.expunge(&inbox, &[1]).await.unwrap(), vec![1]);
    // … and Bob's new mail is stored: its body may take the freed id.
    deliver(store, &bob, b"Subject: BobSecret\r\n\r\nfor Bob only\r\n").await;
    for command in ["RETR 1", "TOP 1 5", "LIST 1"] {
        let r = p.cmd(command).await;
        assert!(
            r.starts_with("-ERR") && r.contains("removed"),
            "{command}: {r}"
        );
    }
    let r = p.cmd("QUIT").await;
    assert!(r.starts_with("+OK"), "{r}");
}
