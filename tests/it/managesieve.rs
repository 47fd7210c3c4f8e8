//! ManageSieve (RFC 5804) against the whole server: the greeting's capabilities and the
//! plaintext policy, STARTTLS, AUTHENTICATE (PLAIN, LOGIN, cancel, failures throttled and
//! recorded), every script command with its response codes, both literal forms, quotas,
//! literal and error bounds. `managesieve_interop` runs third-party clients.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::harness::{self, TestServer, account, start_with};

const WAIT: Duration = Duration::from_secs(20);
/// `base64("\0alice@localhost\0secret")`.
const ALICE_PLAIN: &str = "AGFsaWNlQGxvY2FsaG9zdABzZWNyZXQ=";

/// A ManageSieve client over any stream.
struct Sieve<S> {
    s: BufReader<S>,
}

/// A response: the lines before the status line (a literal's octets as one entry), and it.
#[derive(Debug)]
struct Response {
    lines: Vec<String>,
    status: String,
}

impl Response {
    fn ok(&self) -> bool {
        self.status.starts_with("OK")
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sieve<S> {
    fn new(s: S) -> Sieve<S> {
        Sieve {
            s: BufReader::new(s),
        }
    }

    async fn line(&mut self) -> String {
        let mut raw = Vec::new();
        tokio::time::timeout(WAIT, self.s.read_until(b'\n', &mut raw))
            .await
            .expect("response in time")
            .expect("read");
        assert!(
            raw.is_empty() || raw.ends_with(b"\r\n"),
            "not CRLF: {raw:?}"
        );
        String::from_utf8(raw).unwrap().trim_end().to_string()
    }

    /// Lines up to the status line (OK, NO or BYE); a `{n}` line brings n octets.
    async fn response(&mut self) -> Response {
        let mut lines = Vec::new();
        loop {
            let line = self.line().await;
            if line.is_empty() {
                panic!("connection closed; got {lines:?}");
            }
            if ["OK", "NO", "BYE"]
                .iter()
                .any(|s| line == *s || line.starts_with(&format!("{s} ")))
            {
                return Response {
                    lines,
                    status: line,
                };
            }
            if let Some(n) = line.strip_prefix('{').and_then(|l| l.strip_suffix('}')) {
                let mut literal = vec![0u8; n.parse().unwrap()];
                self.s.read_exact(&mut literal).await.unwrap();
                lines.push(String::from_utf8(literal).unwrap());
                assert_eq!(self.line().await, "", "CRLF after a literal");
                continue;
            }
            lines.push(line);
        }
    }

    async fn send(&mut self, data: &[u8]) {
        self.s.get_mut().write_all(data).await.expect("write");
    }

    async fn cmd(&mut self, command: &str) -> Response {
        self.send(format!("{command}\r\n").as_bytes()).await;
        self.response().await
    }

    /// PUTSCRIPT or CHECKSCRIPT style: `head {n+}` CRLF, the octets, then `tail` and CRLF.
    async fn with_literal(&mut self, head: &str, octets: &[u8], plus: bool) -> Response {
        let plus = if plus { "+" } else { "" };
        let mut data = format!("{head} {{{}{plus}}}\r\n", octets.len()).into_bytes();
        data.extend_from_slice(octets);
        data.extend_from_slice(b"\r\n");
        self.send(&data).await;
        self.response().await
    }

    async fn put(&mut self, name: &str, script: &str) -> Response {
        self.with_literal(&format!("PUTSCRIPT \"{name}\""), script.as_bytes(), true)
            .await
    }

    async fn login(&mut self) {
        let r = self
            .cmd(&format!("AUTHENTICATE \"PLAIN\" \"{ALICE_PLAIN}\""))
            .await;
        assert!(r.ok(), "{r:?}");
    }

    async fn closed(&mut self) -> bool {
        let mut buf = [0u8; 256];
        loop {
            match tokio::time::timeout(WAIT, self.s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }
}

/// Connects and reads the greeting (the capabilities and OK).
async fn connect(t: &TestServer) -> (Sieve<TcpStream>, Response) {
    let tcp = TcpStream::connect(t.running.addr("managesieve").expect("managesieve"))
        .await
        .expect("connect");
    let mut c = Sieve::new(tcp);
    let greeting = c.response().await;
    assert!(greeting.ok(), "{greeting:?}");
    (c, greeting)
}

/// A server allowing passwords without TLS, with alice@localhost.
async fn plaintext_server() -> TestServer {
    let t = start_with(|c| c.auth.allow_plaintext = true).await;
    account(&t.running.store, "alice@localhost", 0).await;
    t
}

async fn alice_id(t: &TestServer) -> i64 {
    t.running
        .store
        .account_by_address("alice@localhost")
        .await
        .unwrap()
        .unwrap()
        .id
}

#[tokio::test]
async fn capabilities_the_plaintext_policy_and_starttls() {
    let t = harness::start().await;
    account(&t.running.store, "alice@localhost", 0).await;
    let (mut c, greeting) = connect(&t).await;
    let caps = greeting.lines;
    for want in [
        "\"IMPLEMENTATION\" \"Mailroom\"",
        "\"SASL\" \"\"",
        "\"STARTTLS\"",
        "\"VERSION\" \"1.0\"",
        "\"MAXREDIRECTS\" \"4\"",
        "\"UNAUTHENTICATE\"",
    ] {
        assert!(caps.iter().any(|l| l == want), "{want} missing: {caps:?}");
    }
    assert!(
        caps.iter().any(|l| l.starts_with("\"SIEVE\" \"")),
        "{caps:?}"
    );
    assert!(
        !caps.iter().any(|l| l.starts_with("\"NOTIFY\"")),
        "{caps:?}"
    );
    let r = c
        .cmd(&format!("AUTHENTICATE \"PLAIN\" \"{ALICE_PLAIN}\""))
        .await;
    assert!(r.status.starts_with("NO (ENCRYPT-NEEDED) "), "{r:?}");
    let r = c.cmd("LISTSCRIPTS").await;
    assert!(
        r.status.starts_with("NO ") && r.status.contains("after login"),
        "{r:?}"
    );

    let r = c.cmd("STARTTLS").await;
    assert!(r.ok(), "{r:?}");
    let mut c = Sieve::new(harness::tls_client(t.dir.path(), c.s.into_inner()).await);
    // RFC 5804 §2.2: the capabilities again, now with the mechanisms and without STARTTLS.
    let again = c.response().await;
    assert!(again.ok(), "{again:?}");
    assert!(
        again.lines.iter().any(|l| l == "\"SASL\" \"PLAIN LOGIN\""),
        "{again:?}"
    );
    assert!(
        !again.lines.iter().any(|l| l == "\"STARTTLS\""),
        "{again:?}"
    );
    assert!(c.cmd("STARTTLS").await.status.starts_with("NO "));
    c.login().await;
    let caps = c.cmd("CAPABILITY").await;
    assert!(caps.ok());
    assert!(
        caps.lines
            .iter()
            .any(|l| l == "\"OWNER\" \"alice@localhost\""),
        "{caps:?}"
    );
    let r = c.cmd("STARTTLS").await;
    assert!(r.status.starts_with("NO "), "{r:?}");
    assert!(c.cmd("LOGOUT").await.ok());
    assert!(c.closed().await);
}

#[tokio::test]
async fn every_script_command_with_its_response_codes() {
    let t = plaintext_server().await;
    let id = alice_id(&t).await;
    let (mut c, _) = connect(&t).await;
    c.login().await;
    assert_eq!(c.cmd("LISTSCRIPTS").await.lines, Vec::<String>::new());

    // Both literal forms, and a quoted script.
    assert!(c.put("one", "keep;\r\n").await.ok());
    assert!(
        c.with_literal("PUTSCRIPT \"two\"", b"discard;\r\n", false)
            .await
            .ok()
    );
    assert!(c.cmd("PUTSCRIPT \"three\" \"stop;\"").await.ok());
    let list = c.cmd("LISTSCRIPTS").await;
    assert!(list.ok());
    assert_eq!(list.lines, ["\"one\"", "\"three\"", "\"two\""]);

    let r = c.cmd("SETACTIVE \"nope\"").await;
    assert!(r.status.starts_with("NO (NONEXISTENT) "), "{r:?}");
    assert!(c.cmd("SETACTIVE \"two\"").await.ok());
    assert_eq!(
        c.cmd("LISTSCRIPTS").await.lines,
        ["\"one\"", "\"three\"", "\"two\" ACTIVE"]
    );
    let active = t.running.store.active_sieve(id).await.unwrap().unwrap();
    assert_eq!(
        (active.name.as_str(), active.source.as_str()),
        ("two", "discard;\r\n")
    );

    let got = c.cmd("GETSCRIPT \"one\"").await;
    assert!(got.ok(), "{got:?}");
    assert_eq!(got.lines, ["keep;\r\n"]);
    let r = c.cmd("GETSCRIPT \"nope\"").await;
    assert!(r.status.starts_with("NO (NONEXISTENT) "), "{r:?}");

    assert!(c.cmd("HAVESPACE \"four\" 1000").await.ok());

    let r = c.cmd("RENAMESCRIPT \"two\" \"one\"").await;
    assert!(r.status.starts_with("NO (ALREADYEXISTS) "), "{r:?}");
    let r = c.cmd("RENAMESCRIPT \"nope\" \"other\"").await;
    assert!(r.status.starts_with("NO (NONEXISTENT) "), "{r:?}");
    assert!(c.cmd("RENAMESCRIPT \"two\" \"zwei\"").await.ok());
    assert_eq!(
        t.running
            .store
            .active_sieve(id)
            .await
            .unwrap()
            .unwrap()
            .name,
        "zwei",
        "the active script stays active under its new name"
    );

    let r = c.cmd("DELETESCRIPT \"zwei\"").await;
    assert!(r.status.starts_with("NO (ACTIVE) "), "{r:?}");
    assert!(c.cmd("SETACTIVE \"\"").await.ok());
    assert_eq!(t.running.store.active_sieve(id).await.unwrap(), None);
    assert!(c.cmd("DELETESCRIPT \"zwei\"").await.ok());
    let r = c.cmd("DELETESCRIPT \"zwei\"").await;
    assert!(r.status.starts_with("NO (NONEXISTENT) "), "{r:?}");
    assert_eq!(c.cmd("LISTSCRIPTS").await.lines, ["\"one\"", "\"three\""]);

    assert!(c.with_literal("CHECKSCRIPT", b"keep;\r\n", true).await.ok());
    // A name with a control character (sent as a literal) is refused.
    let r = c.cmd("PUTSCRIPT {8+}\r\nbad\tname \"keep;\"").await;
    assert!(
        r.status.starts_with("NO ") && r.status.contains("name"),
        "{r:?}"
    );

    // NOOP carries its tag back, quoted or as a literal.
    assert_eq!(c.cmd("NOOP").await.status, "OK \"Done\"");
    assert_eq!(
        c.cmd("NOOP \"STARTTLS-SYNC-42\"").await.status,
        "OK (TAG \"STARTTLS-SYNC-42\") \"Done\""
    );

    // Pipelined commands are each answered, in order.
    c.send(b"NOOP \"a\"\r\nNOOP \"b\"\r\n").await;
    assert!(c.response().await.status.contains("\"a\""));
    assert!(c.response().await.status.contains("\"b\""));

    assert!(c.cmd("UNAUTHENTICATE").await.ok());
    let r = c.cmd("LISTSCRIPTS").await;
    assert!(r.status.starts_with("NO "), "{r:?}");
    assert!(c.cmd("UNAUTHENTICATE").await.status.starts_with("NO "));
    c.login().await;
    assert!(c.cmd("LISTSCRIPTS").await.ok());
    let r = c.cmd("LOGOUT").await;
    assert!(r.ok(), "{r:?}");
    assert!(c.closed().await);
}

#[tokio::test]
async fn broken_scripts_are_refused_with_line_and_column() {
    let t = plaintext_server().await;
    let id = alice_id(&t).await;
    let (mut c, _) = connect(&t).await;
    c.login().await;
    let broken =
        "require \"fileinto\";\r\nif header :contains \"subject\" \"x\" {\r\n  fileinto;\r\n}\r\n";
    let r = c.put("broken", broken).await;
    assert!(r.status.starts_with("NO "), "{r:?}");
    assert!(r.status.contains("line 3, column"), "{r:?}");
    assert_eq!(t.running.store.sieve_scripts(id).await.unwrap(), []);
    let r = c.with_literal("CHECKSCRIPT", broken.as_bytes(), true).await;
    assert!(
        r.status.starts_with("NO ") && r.status.contains("line 3"),
        "{r:?}"
    );
    // A script using an extension not required.
    let r = c
        .with_literal("CHECKSCRIPT", b"fileinto \"x\";\r\n", true)
        .await;
    assert!(r.status.contains("line 1, column 1"), "{r:?}");
    let r = c.with_literal("CHECKSCRIPT", b"keep;\xff", true).await;
    assert!(r.status.contains("not UTF-8"), "{r:?}");
    // The session goes on: refusals of scripts are answers, not errors.
    let good =
        "require [\"fileinto\"];\r\nif header :contains \"subject\" \"x\" { fileinto \"X\"; }\r\n";
    assert!(c.put("good", good).await.ok());
    let stored = t
        .running
        .store
        .sieve_script(id, "good")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.source, good);
    assert!(!stored.compiled.is_empty());
}

#[tokio::test]
async fn quotas_and_literal_limits() {
    let t = plaintext_server().await;
    let (mut c, _) = connect(&t).await;
    // Before login a literal over 8 KiB is refused, skipped, and the session goes on.
    let r = c
        .with_literal("AUTHENTICATE \"PLAIN\"", &[b'A'; 9000], true)
        .await;
    assert!(r.status.starts_with("NO "), "{r:?}");
    c.login().await;

    // One script: at most 64 KiB, refused from its size before its octets are read.
    let too_big = format!("#{}\r\n", "x".repeat(64 * 1024));
    let r = c.put("big", &too_big).await;
    assert!(r.status.starts_with("NO (QUOTA/MAXSIZE) "), "{r:?}");
    let r = c.cmd("HAVESPACE \"big\" 70000").await;
    assert!(r.status.starts_with("NO (QUOTA/MAXSIZE) "), "{r:?}");
    assert!(c.cmd("NOOP").await.ok(), "the session goes on");

    // 1 MiB for all scripts: 16 of 65,000 octets fit, a 17th does not.
    let large = format!("#{}\r\n", "y".repeat(64_997));
    assert_eq!(large.len(), 65_000);
    for i in 0..16 {
        let r = c.put(&format!("large{i}"), &large).await;
        assert!(r.ok(), "{i}: {r:?}");
    }
    let r = c.cmd("HAVESPACE \"large16\" 65000").await;
    assert!(r.status.starts_with("NO (QUOTA/MAXSIZE) "), "{r:?}");
    let r = c.put("large16", &large).await;
    assert!(r.status.starts_with("NO (QUOTA/MAXSIZE) "), "{r:?}");
    // Replacing one fits.
    assert!(c.put("large0", "keep;").await.ok());

    // 32 scripts at most.
    for i in 16..32 {
        let r = c.put(&format!("small{i}"), "keep;").await;
        assert!(r.ok(), "{i}: {r:?}");
    }
    let r = c.put("small32", "keep;").await;
    assert!(r.status.starts_with("NO (QUOTA/MAXSCRIPTS) "), "{r:?}");
    let r = c.cmd("HAVESPACE \"small32\" 5").await;
    assert!(r.status.starts_with("NO (QUOTA/MAXSCRIPTS) "), "{r:?}");
    assert!(c.cmd("HAVESPACE \"small31\" 5").await.ok());

    // A literal too large even to skip ends the session.
    c.send(b"PUTSCRIPT \"huge\" {999999999+}\r\n").await;
    let r = c.response().await;
    assert!(r.status.starts_with("BYE "), "{r:?}");
    assert!(c.closed().await);
}

#[tokio::test]
async fn sasl_login_cancel_and_app_passwords() {
    let t = plaintext_server().await;
    let id = alice_id(&t).await;
    let (mut c, _) = connect(&t).await;
    // LOGIN with its two challenges, the responses quoted and as a literal.
    c.send(b"AUTHENTICATE \"LOGIN\"\r\n").await;
    assert_eq!(c.line().await, "\"VXNlcm5hbWU6\"");
    c.send(b"\"YWxpY2VAbG9jYWxob3N0\"\r\n").await;
    assert_eq!(c.line().await, "\"UGFzc3dvcmQ6\"");
    c.send(b"{8+}\r\nc2VjcmV0\r\n").await;
    let r = c.response().await;
    assert!(r.ok(), "{r:?}");
    assert!(c.cmd("UNAUTHENTICATE").await.ok());

    // PLAIN without an initial response gets the empty challenge; "*" cancels.
    c.send(b"AUTHENTICATE \"PLAIN\"\r\n").await;
    assert_eq!(c.line().await, "\"\"");
    c.send(b"\"*\"\r\n").await;
    let r = c.response().await;
    assert!(
        r.status.starts_with("NO ") && r.status.contains("cancelled"),
        "{r:?}"
    );
    let r = c.cmd("AUTHENTICATE \"CRAM-MD5\"").await;
    assert!(r.status.starts_with("NO "), "{r:?}");

    // An app password with the ManageSieve scope signs in; one without it does not.
    let auth = &t.running.auth;
    let (_, sieve_pw) = auth
        .create_app_password(id, "sieve", mailroom::auth::app_passwords::MANAGESIEVE)
        .await
        .unwrap()
        .unwrap();
    let (_, imap_pw) = auth
        .create_app_password(id, "imap", mailroom::auth::app_passwords::IMAP)
        .await
        .unwrap()
        .unwrap();
    let plain = |pw: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(format!("\0alice@localhost\0{pw}"))
    };
    let r = c
        .cmd(&format!("AUTHENTICATE \"PLAIN\" \"{}\"", plain(&imap_pw)))
        .await;
    assert!(r.status.starts_with("NO "), "{r:?}");
    let r = c
        .cmd(&format!("AUTHENTICATE \"PLAIN\" \"{}\"", plain(&sieve_pw)))
        .await;
    assert!(r.ok(), "{r:?}");
    // Revoking it ends the session.
    let listed = t.running.store.app_passwords(id).await.unwrap();
    let sieve = listed.iter().find(|p| p.name == "sieve").unwrap();
    assert!(auth.revoke_app_password(id, sieve.id).await.unwrap());
    let r = c.response().await;
    assert!(
        r.status.starts_with("BYE ") && r.status.contains("revoked"),
        "{r:?}"
    );
    assert!(c.closed().await);

    // Every sign-in is in the history under "managesieve".
    auth.flush_records().await;
    let sign_ins = t.running.store.recent_sign_ins(id, 20).await.unwrap();
    assert!(
        sign_ins
            .iter()
            .filter(|s| s.protocol == "managesieve")
            .count()
            >= 3,
        "{sign_ins:?}"
    );
}

#[tokio::test]
async fn failed_logins_are_throttled_and_errors_end_the_session() {
    let t = plaintext_server().await;
    let wrong = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode("\0alice@localhost\0wrong")
    };
    let lock_after = mailroom::config::Config::embedded().auth.lock_after;
    let mut refused = None;
    // Fresh connections (a session closes after 10 errors); the throttle is per address.
    'guessing: for _ in 0..lock_after + 2 {
        let (mut c, _) = connect(&t).await;
        for _ in 0..3 {
            let r = c.cmd(&format!("AUTHENTICATE \"PLAIN\" \"{wrong}\"")).await;
            assert!(r.status.starts_with("NO "), "{r:?}");
            if r.status.starts_with("NO (TRYLATER) ") {
                refused = Some(r.status);
                break 'guessing;
            }
        }
    }
    let refused = refused.expect("the throttle locks the address");
    assert!(refused.contains("too many failed logins"), "{refused}");
    // The right password is refused too while locked.
    let (mut c, _) = connect(&t).await;
    let r = c
        .cmd(&format!("AUTHENTICATE \"PLAIN\" \"{ALICE_PLAIN}\""))
        .await;
    assert!(r.status.starts_with("NO (TRYLATER) "), "{r:?}");

    // Ten protocol errors end a session.
    let (mut c, _) = connect(&t).await;
    for i in 1..10 {
        let r = c.cmd("FROB").await;
        assert!(
            r.status.starts_with("NO ") && r.status.contains("unknown command"),
            "{i}: {r:?}"
        );
    }
    let r = c.cmd("FROB").await;
    assert!(
        r.status.starts_with("BYE ") && r.status.contains("too many errors"),
        "{r:?}"
    );
    assert!(c.closed().await);

    // So do many commands without a login.
    let (mut c, _) = connect(&t).await;
    let mut last = String::new();
    for _ in 0..40 {
        c.send(b"NOOP\r\n").await;
        last = c.response().await.status;
        if last.starts_with("BYE") {
            break;
        }
    }
    assert!(
        last.starts_with("BYE ") && last.contains("without logging in"),
        "{last}"
    );
    assert!(c.closed().await);

    // An over-long line is an error the session survives.
    let (mut c, _) = connect(&t).await;
    let long = format!("NOOP {}", "a".repeat(10_000));
    let r = c.cmd(&long).await;
    assert!(
        r.status.starts_with("NO ") && r.status.contains("too long"),
        "{r:?}"
    );
    assert!(c.cmd("NOOP").await.ok());
}
