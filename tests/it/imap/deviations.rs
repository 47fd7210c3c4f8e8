//! Small deviations from the RFCs found in review (issue 18): the HIGHESTMODSEQ owed to the
//! first CONDSTORE enabling command (RFC 7162 §3.1), MOVE into the selected mailbox itself
//! (RFC 6851), nothing after BYE at LOGOUT (RFC 3501 §7.1.5), QUOTA for an account without a
//! limit (RFC 9208), no WARN per TLS client that sends an IP address as SNI (RFC 6066), and
//! LITERAL- before login (RFC 7888).

use super::{connect, deliver, logged_in, server};
use crate::harness::{account, message};

#[tokio::test]
async fn first_condstore_enabling_command_reports_highestmodseq() {
    let (t, alice) = server().await;
    for i in 1..=3 {
        deliver(
            &t.running.store,
            &alice,
            &message(&format!("m{i}"), "w", 300),
        )
        .await;
    }
    // Each enabling command, first in its own session: the untagged OK comes before the
    // tagged one, once. The mailbox's HIGHESTMODSEQ is 4 until the STORE makes it 5.
    for (i, (command, rest)) in [
        ("FETCH 1 (MODSEQ)", vec!["* 1 FETCH (MODSEQ (2))"]),
        (
            "FETCH 1:* (FLAGS) (CHANGEDSINCE 3)",
            vec!["* 3 FETCH (FLAGS () MODSEQ (4))"],
        ),
        ("SEARCH MODSEQ 4", vec!["* SEARCH 3 (MODSEQ 4)"]),
        (
            "STORE 1 (UNCHANGEDSINCE 9) +FLAGS.SILENT (\\Seen)",
            vec!["* 1 FETCH (MODSEQ (5))"],
        ),
        (
            "STATUS Sent (HIGHESTMODSEQ)",
            vec!["* STATUS \"Sent\" (HIGHESTMODSEQ 1)"],
        ),
        ("ENABLE CONDSTORE", vec!["* ENABLED CONDSTORE"]),
    ]
    .into_iter()
    .enumerate()
    {
        let mut c = logged_in(&t).await;
        c.ok("SELECT INBOX").await;
        let lines = c.ok(command).await;
        let at = lines
            .iter()
            .position(|l| l.starts_with("* OK [HIGHESTMODSEQ"))
            .unwrap_or_else(|| panic!("{command}: no HIGHESTMODSEQ in {lines:?}"));
        let mut others = lines.clone();
        let highest = others.remove(at);
        let expected = if i < 3 { 4 } else { 5 };
        assert_eq!(
            highest,
            format!("* OK [HIGHESTMODSEQ {expected}] CONDSTORE enabled"),
            "{command}"
        );
        assert_eq!(others, rest, "{command}");
        // Only the first.
        let lines = c.ok("FETCH 1 (MODSEQ)").await;
        assert!(
            !lines.iter().any(|l| l.contains("HIGHESTMODSEQ")),
            "{command}: {lines:?}"
        );
    }
}

#[tokio::test]
async fn no_second_highestmodseq_when_select_enabled_condstore() {
    let (t, alice) = server().await;
    deliver(&t.running.store, &alice, &message("m1", "w", 300)).await;
    let mut c = logged_in(&t).await;
    let lines = c.ok("SELECT INBOX (CONDSTORE)").await;
    assert!(lines.contains(&"* OK [HIGHESTMODSEQ 2] highest".to_string()));
    assert_eq!(c.ok("FETCH 1 (MODSEQ)").await, ["* 1 FETCH (MODSEQ (2))"]);
    // ENABLE before SELECT: SELECT's own HIGHESTMODSEQ is the one.
    let mut c = logged_in(&t).await;
    assert_eq!(c.ok("ENABLE CONDSTORE").await, ["* ENABLED CONDSTORE"]);
    c.ok("SELECT INBOX").await;
    assert_eq!(c.ok("FETCH 1 (MODSEQ)").await, ["* 1 FETCH (MODSEQ (2))"]);
    // Outside the selected state there is no mailbox to report.
    let mut c = logged_in(&t).await;
    assert_eq!(
        c.ok("STATUS INBOX (HIGHESTMODSEQ)").await,
        ["* STATUS \"INBOX\" (HIGHESTMODSEQ 2)"]
    );
}

#[tokio::test]
async fn move_into_the_same_mailbox() {
    let (t, alice) = server().await;
    for i in 1..=2 {
        deliver(
            &t.running.store,
            &alice,
            &message(&format!("m{i}"), "w", 300),
        )
        .await;
    }
    let uidvalidity = t
        .running
        .store
        .mailbox(alice.id, "INBOX")
        .await
        .expect("store")
        .expect("INBOX")
        .uidvalidity;
    let mut c = logged_in(&t).await;
    c.ok("SELECT INBOX").await;
    // Allowed like COPY (RFC 6851 §3.3): the old message expunged, the new one announced.
    let (lines, r) = c.cmd("MOVE 1 INBOX").await;
    assert_eq!(r, "TAG OK MOVE completed");
    assert_eq!(
        lines,
        [
            format!("* OK [COPYUID {uidvalidity} 1 3] moved"),
            "* 1 EXPUNGE".to_string(),
            "* 2 EXISTS".to_string(),
            "* 2 RECENT".to_string(),
        ]
    );
    assert_eq!(
        c.ok("FETCH 1:* (UID)").await,
        ["* 1 FETCH (UID 2)", "* 2 FETCH (UID 3)"]
    );
    // With QRESYNC the expunge is a VANISHED; UID MOVE of both.
    let mut q = logged_in(&t).await;
    q.ok("ENABLE QRESYNC").await;
    q.ok("SELECT INBOX").await;
    let (lines, r) = q.cmd("UID MOVE 2:3 INBOX").await;
    assert_eq!(r, "TAG OK MOVE completed");
    assert_eq!(
        lines,
        [
            format!("* OK [COPYUID {uidvalidity} 2:3 4:5] moved"),
            "* VANISHED 2:3".to_string(),
            "* 2 EXISTS".to_string(),
            "* 2 RECENT".to_string(),
        ]
    );
    // The first session sees the other's move as usual.
    let lines = c.ok("NOOP").await;
    assert_eq!(
        lines,
        ["* 2 EXPUNGE", "* 1 EXPUNGE", "* 2 EXISTS", "* 0 RECENT"]
    );
    assert_eq!(c.ok("UID SEARCH ALL").await, ["* SEARCH 4 5"]);
}

#[tokio::test]
async fn nothing_but_the_tagged_ok_after_bye() {
    let (t, alice) = server().await;
    deliver(&t.running.store, &alice, &message("m1", "w", 300)).await;
    for qresync in [false, true] {
        let mut a = logged_in(&t).await;
        if qresync {
            a.ok("ENABLE QRESYNC").await;
        }
        a.ok("SELECT INBOX").await;
        // Another session changes the mailbox; the change is pending in the first one.
        let mut b = logged_in(&t).await;
        b.ok("SELECT INBOX").await;
        b.ok("STORE 1 FLAGS.SILENT (\\Flagged)").await;
        deliver(&t.running.store, &alice, &message("m2", "w", 300)).await;
        let (lines, r) = a.cmd("LOGOUT").await;
        assert_eq!(r, "TAG OK LOGOUT completed");
        assert_eq!(lines.last().map(String::as_str), Some("* BYE logging out"));
        // Reported before the BYE, or not at all.
        assert!(
            lines.iter().filter(|l| l.starts_with("* BYE")).count() == 1,
            "{lines:?}"
        );
        b.ok("LOGOUT").await;
    }
}

#[tokio::test]
async fn quota_without_and_with_a_limit() {
    let (t, _alice) = server().await;
    // alice has no limit: no quota root, so no empty `QUOTA "" ()`.
    let mut c = logged_in(&t).await;
    assert_eq!(c.ok("GETQUOTAROOT INBOX").await, ["* QUOTAROOT \"INBOX\""]);
    let (lines, r) = c.cmd("GETQUOTA \"\"").await;
    assert!(lines.is_empty(), "{lines:?}");
    assert_eq!(r, "TAG NO [NONEXISTENT] no such quota root (no limit)");
    // bob has 10 MiB: one root, "", with its STORAGE in KiB.
    account(&t.running.store, "bob@localhost", 10 * 1024 * 1024).await;
    let mut b = connect(&t).await;
    b.ok("LOGIN bob@localhost secret").await;
    assert_eq!(
        b.ok("GETQUOTAROOT Sent").await,
        [
            "* QUOTAROOT \"Sent\" \"\"",
            "* QUOTA \"\" (STORAGE 0 10240)"
        ]
    );
    assert_eq!(
        b.ok("GETQUOTA \"\"").await,
        ["* QUOTA \"\" (STORAGE 0 10240)"]
    );
}

/// A TLS ClientHello whose SNI is `name` (RFC 6066 §3), otherwise as bare as rustls reads.
fn client_hello(name: &[u8]) -> Vec<u8> {
    let len16 = |n: usize| (n as u16).to_be_bytes();
    let mut sni = vec![0u8]; // host_name
    sni.extend(len16(name.len()));
    sni.extend(name);
    let mut ext = vec![0, 0]; // server_name
    ext.extend(len16(sni.len() + 2));
    ext.extend(len16(sni.len()));
    ext.extend(sni);
    let mut body = vec![3, 3];
    body.extend([7u8; 32]); // random
    body.push(0); // no session id
    body.extend([0, 2, 0x13, 0x01]); // TLS_AES_128_GCM_SHA256
    body.extend([1, 0]); // no compression
    body.extend(len16(ext.len()));
    body.extend(ext);
    let mut hs = vec![1, 0];
    hs.extend(len16(body.len()));
    hs.extend(body);
    let mut record = vec![0x16, 3, 1];
    record.extend(len16(hs.len()));
    record.extend(hs);
    record
}

/// Clients that send an IP address as SNI (invalid, but common) leave no WARN line per
/// connection in the server's log.
#[test]
fn ip_address_as_sni_is_not_a_warning() {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    use std::time::Duration;

    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("mailroom.toml");
    std::fs::write(
        &config,
        format!(
            "hostname = \"localhost\"\ndomain = \"localhost\"\ndata_dir = \"{}\"\n\
             [listen]\nsmtp = []\nsubmission = []\nsubmissions = []\n\
             imap = []\nimaps = [\"127.0.0.1:0\"]\npop3 = []\npop3s = []\nmanagesieve = []\nhttp = []\nhttps = []\n\
             [inbound]\nverify = false\n[dns]\nnameservers = [\"127.0.0.1:9\"]\n",
            dir.path().join("data").display()
        ),
    )
    .expect("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailroom"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let rx = crate::harness::stderr_lines(&mut child);
    let addr: std::net::SocketAddr = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the server logs its address");
        if let Some(rest) = line.split("listening: imaps on ").nth(1) {
            break rest.trim().parse().expect("address");
        }
    };
    for _ in 0..3 {
        let mut tcp = std::net::TcpStream::connect(addr).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        tcp.write_all(&client_hello(b"127.0.0.1")).expect("hello");
        // The server answers (an alert or a ServerHello) or closes: the hello was read.
        let _ = tcp.read(&mut [0u8; 512]);
    }
    // Anything logged for those connections arrives within this.
    let mut logged = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(2)) {
        logged.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(!logged.iter().any(|l| l.contains("WARN")), "{logged:#?}");
}

/// LITERAL- before login, LITERAL+ after (RFC 7888): before login a non-synchronizing literal
/// may have at most 4096 octets; a larger one is refused with a tagged BAD [TOOBIG] and the
/// connection ends (its octets are already on their way). After login the limit is APPENDLIMIT.
/// Before this, LITERAL+ was advertised before login and a 5,000-octet non-synchronizing
/// literal was read.
#[tokio::test]
async fn literal_minus_before_login_literal_plus_after() {
    let (t, _alice) = server().await;
    let mut c = connect(&t).await;
    let caps = c.ok("CAPABILITY").await;
    assert!(caps[0].contains(" LITERAL- "), "{caps:?}");
    assert!(!caps[0].contains("LITERAL+"), "{caps:?}");
    // 4096 octets pass (a wrong password, refused as such).
    let password = "p".repeat(4096);
    c.send(format!("a1 LOGIN alice@localhost {{4096+}}\r\n{password}\r\n").as_bytes())
        .await;
    assert_eq!(
        c.line().await,
        "a1 NO [AUTHENTICATIONFAILED] invalid credentials"
    );
    // 4097 octets do not.
    c.send(b"a2 LOGIN alice@localhost {4097+}\r\n").await;
    let bye = c.line().await;
    assert!(bye.starts_with("* BYE [TOOBIG] "), "{bye}");
    let bad = c.line().await;
    assert!(bad.starts_with("a2 BAD [TOOBIG] "), "{bad}");
    assert!(bad.contains("(LITERAL-)"), "{bad}");

    // After login: LITERAL+, and a larger non-synchronizing literal is taken.
    let mut c = logged_in(&t).await;
    let caps = c.ok("CAPABILITY").await;
    assert!(caps[0].contains(" LITERAL+ "), "{caps:?}");
    let body = format!("Subject: big\r\n\r\n{}\r\n", "x".repeat(6000));
    c.send(format!("b1 APPEND INBOX {{{}+}}\r\n{body}\r\n", body.len()).as_bytes())
        .await;
    let (_, r) = c.until("b1").await;
    assert!(r.starts_with("TAG OK [APPENDUID "), "{r}");
}
