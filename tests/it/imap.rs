//! IMAP against the whole server, per command group, asserting the exact responses: the
//! connection (greeting, CAPABILITY, STARTTLS, LOGIN/AUTHENTICATE, LOGINDISABLED), mailboxes,
//! APPEND and FETCH, STORE/EXPUNGE/COPY/MOVE, SEARCH and SORT, two sessions on one mailbox,
//! IDLE with a delivery, CONDSTORE, limits and bad input. `qresync` covers the rest of RFC 7162,
//! `search_dates` the date keys at day boundaries and SORT's base subject and collation,
//! `subscriptions` the list of subscribed names, `deviations` the smaller RFC points, `extended`
//! ESEARCH, LIST-EXTENDED and LIST-STATUS, `metadata` METADATA (RFC 5464), `multiappend`
//! MULTIAPPEND (RFC 3502), `special_use` CREATE-SPECIAL-USE (RFC 6154), and `interop` runs
//! Python's imaplib and mbsync.

mod context;
mod deviations;
mod extended;
mod interop;
mod metadata;
mod multiappend;
mod qresync;
mod search;
mod search_dates;
mod search_substring;
mod session_rules;
mod special_use;
mod subscriptions;
mod thread_compress;

use std::time::Duration;

use mailroom::store::{Account, Delivery, Store, Target};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::harness::{self, TestServer, account, message};

const WAIT: Duration = Duration::from_secs(20);

/// A small IMAP client: sends tagged commands, returns every response line up to and
/// including the tagged one, with literals inlined.
pub struct Client<S> {
    s: BufReader<S>,
    n: u32,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    pub fn new(s: S) -> Client<S> {
        Client {
            s: BufReader::new(s),
            n: 0,
        }
    }

    /// One response line (with any literals it announces read into it), without CRLF.
    pub async fn line(&mut self) -> String {
        let mut full = Vec::new();
        loop {
            let mut raw = Vec::new();
            tokio::time::timeout(WAIT, self.s.read_until(b'\n', &mut raw))
                .await
                .expect("response in time")
                .expect("read");
            if raw.is_empty() {
                break;
            }
            assert!(raw.ends_with(b"\r\n"), "not CRLF: {raw:?}");
            raw.truncate(raw.len() - 2);
            let literal = raw
                .strip_suffix(b"}")
                .and_then(|r| r.iter().rposition(|&b| b == b'{').map(|i| &r[i + 1..]))
                .and_then(|n| std::str::from_utf8(n).ok()?.parse::<usize>().ok());
            full.extend_from_slice(&raw);
            match literal {
                Some(n) => {
                    full.extend_from_slice(b"\r\n");
                    let mut data = vec![0u8; n];
                    tokio::time::timeout(WAIT, self.s.read_exact(&mut data))
                        .await
                        .expect("literal in time")
                        .expect("read literal");
                    full.extend_from_slice(&data);
                }
                None => break,
            }
        }
        String::from_utf8_lossy(&full).to_string()
    }

    pub async fn send(&mut self, data: &[u8]) {
        self.s.get_mut().write_all(data).await.expect("write");
    }

    pub fn next_tag(&mut self) -> String {
        self.n += 1;
        format!("a{}", self.n)
    }

    /// Sends `command` with a fresh tag; returns the untagged lines and the tagged line
    /// (with the tag replaced by `TAG`).
    pub async fn cmd(&mut self, command: &str) -> (Vec<String>, String) {
        let tag = self.next_tag();
        self.send(format!("{tag} {command}\r\n").as_bytes()).await;
        self.until(&tag).await
    }

    /// Reads until the tagged response of `tag`.
    pub async fn until(&mut self, tag: &str) -> (Vec<String>, String) {
        let mut lines = Vec::new();
        loop {
            let line = self.line().await;
            assert!(!line.is_empty(), "connection closed; so far {lines:?}");
            if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                return (lines, format!("TAG {rest}"));
            }
            lines.push(line);
        }
    }

    /// A command that must succeed: its untagged lines.
    pub async fn ok(&mut self, command: &str) -> Vec<String> {
        let (lines, tagged) = self.cmd(command).await;
        assert!(
            tagged.starts_with("TAG OK"),
            "{command}: {tagged} after {lines:?}"
        );
        lines
    }
}

pub async fn connect(t: &TestServer) -> Client<TcpStream> {
    let tcp = TcpStream::connect(t.running.addr("imap").expect("imap"))
        .await
        .expect("connect");
    let mut c = Client::new(tcp);
    let greeting = c.line().await;
    assert!(
        greeting.starts_with("* OK [CAPABILITY IMAP4rev1 "),
        "{greeting}"
    );
    c
}

/// A server that allows passwords without TLS, with alice@localhost (password "secret").
pub async fn server() -> (TestServer, Account) {
    let t = harness::start_with(|c| c.auth.allow_plaintext = true).await;
    let alice = account(&t.running.store, "alice@localhost", 0).await;
    (t, alice)
}

pub async fn logged_in(t: &TestServer) -> Client<TcpStream> {
    let mut c = connect(t).await;
    c.ok("LOGIN alice@localhost secret").await;
    c
}

pub async fn deliver(store: &Store, account: &Account, raw: &[u8]) -> u32 {
    store
        .deliver(
            Delivery {
                raw,
                internal_date: Some(1_795_687_200),
            },
            &[Target::inbox(account.id)],
        )
        .await
        .expect("deliver")
        .delivered[0]
        .uid
}

#[tokio::test]
async fn logindisabled_until_starttls() {
    let t = harness::start().await;
    account(&t.running.store, "alice@localhost", 0).await;
    let mut c = connect(&t).await;
    let caps = c.ok("CAPABILITY").await;
    assert_eq!(
        caps,
        ["* CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL- SASL-IR ID ENABLE IDLE STARTTLS LOGINDISABLED"]
    );
    let (_, r) = c.cmd("LOGIN alice@localhost secret").await;
    assert_eq!(
        r,
        "TAG NO [PRIVACYREQUIRED] LOGIN is disabled until STARTTLS"
    );
    let (_, r) = c
        .cmd("AUTHENTICATE PLAIN AGFsaWNlQGxvY2FsaG9zdABzZWNyZXQ=")
        .await;
    assert!(r.starts_with("TAG NO [PRIVACYREQUIRED]"), "{r}");
    let (_, r) = c.cmd("SELECT INBOX").await;
    assert_eq!(r, "TAG BAD SELECT is only valid after login");
    // STARTTLS; a command pipelined behind it in clear text is dropped.
    c.send(b"t1 STARTTLS\r\nt2 NOOP\r\n").await;
    assert_eq!(c.line().await, "t1 OK Begin TLS negotiation now");
    let tcp = c.s.into_inner();
    let mut c = Client::new(harness::tls_client(t.dir.path(), tcp).await);
    let caps = c.ok("CAPABILITY").await;
    assert_eq!(
        caps,
        ["* CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL- SASL-IR ID ENABLE IDLE AUTH=PLAIN"]
    );
    let (_, r) = c.cmd("LOGIN alice@localhost wrong").await;
    assert_eq!(r, "TAG NO [AUTHENTICATIONFAILED] invalid credentials");
    let (_, r) = c.cmd("LOGIN alice@localhost secret").await;
    assert!(
        r.starts_with("TAG OK [CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL+"),
        "{r}"
    );
    assert!(
        r.ends_with(
            "CONDSTORE QRESYNC SORT ESEARCH LIST-EXTENDED LIST-STATUS UNAUTHENTICATE UTF8=ACCEPT] logged in"
        ),
        "{r}"
    );
    let (lines, r) = c.cmd("LOGOUT").await;
    assert_eq!(lines, ["* BYE logging out"]);
    assert_eq!(r, "TAG OK LOGOUT completed");
}

#[tokio::test]
async fn imaps_and_authenticate_plain() {
    let t = harness::start().await;
    account(&t.running.store, "alice@localhost", 0).await;
    let tcp = TcpStream::connect(t.running.addr("imaps").expect("imaps"))
        .await
        .expect("connect");
    let mut c = Client::new(harness::tls_client(t.dir.path(), tcp).await);
    let greeting = c.line().await;
    assert_eq!(
        greeting,
        "* OK [CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL- SASL-IR ID ENABLE IDLE AUTH=PLAIN] Mailroom IMAP ready"
    );
    // Without SASL-IR: the empty challenge, then the response.
    c.send(b"x AUTHENTICATE PLAIN\r\n").await;
    assert_eq!(c.line().await, "+ ");
    c.send(b"*\r\n").await;
    assert_eq!(c.line().await, "x BAD AUTHENTICATE cancelled");
    c.send(b"y AUTHENTICATE PLAIN\r\n").await;
    assert_eq!(c.line().await, "+ ");
    c.send(b"AGFsaWNlQGxvY2FsaG9zdABzZWNyZXQ=\r\n").await;
    let r = c.line().await;
    assert!(r.starts_with("y OK [CAPABILITY "), "{r}");
    let (_, r) = c
        .cmd("AUTHENTICATE PLAIN AGFsaWNlQGxvY2FsaG9zdABzZWNyZXQ=")
        .await;
    assert_eq!(r, "TAG BAD already logged in");

    // SASL-IR in one line, on a second connection; an authzid is refused.
    let tcp = TcpStream::connect(t.running.addr("imaps").expect("imaps"))
        .await
        .expect("connect");
    let mut c = Client::new(harness::tls_client(t.dir.path(), tcp).await);
    c.line().await;
    let (_, r) = c
        .cmd("AUTHENTICATE PLAIN Ym9zcwBhbGljZUBsb2NhbGhvc3QAc2VjcmV0")
        .await;
    assert!(r.starts_with("TAG NO [AUTHORIZATIONFAILED]"), "{r}");
    let (_, r) = c.cmd("AUTHENTICATE CRAM-MD5").await;
    assert!(
        r.starts_with("TAG NO [CANNOT] unsupported mechanism"),
        "{r}"
    );
    let (_, r) = c
        .cmd("AUTHENTICATE PLAIN AGFsaWNlQGxvY2FsaG9zdABzZWNyZXQ=")
        .await;
    assert!(r.starts_with("TAG OK [CAPABILITY "), "{r}");
}

#[tokio::test]
async fn mailbox_commands() {
    let (t, _alice) = server().await;
    let mut c = logged_in(&t).await;
    assert_eq!(
        c.ok("LIST \"\" \"*\"").await,
        [
            "* LIST (\\HasNoChildren) \"/\" \"INBOX\"",
            "* LIST (\\HasNoChildren \\Archive) \"/\" \"Archive\"",
            "* LIST (\\HasNoChildren \\Drafts) \"/\" \"Drafts\"",
            "* LIST (\\HasNoChildren \\Junk) \"/\" \"Junk\"",
            "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"",
            "* LIST (\\HasNoChildren \\Trash) \"/\" \"Trash\"",
        ]
    );
    assert_eq!(
        c.ok("LIST \"\" \"\"").await,
        ["* LIST (\\Noselect) \"/\" \"\""]
    );
    c.ok("CREATE Work/2026/Q1").await;
    c.ok("CREATE Entw&APw-rfe").await;
    let (_, r) = c.cmd("CREATE Work").await;
    assert_eq!(r, "TAG NO [ALREADYEXISTS] mailbox Work already exists");
    assert_eq!(
        c.ok("LIST \"\" \"Work/%\"").await,
        ["* LIST (\\HasChildren) \"/\" \"Work/2026\""]
    );
    assert_eq!(
        c.ok("LIST Work/ %").await,
        ["* LIST (\\HasChildren) \"/\" \"Work/2026\""]
    );
    assert_eq!(
        c.ok("LIST \"\" Entw*").await,
        ["* LIST (\\HasNoChildren) \"/\" \"Entw&APw-rfe\""]
    );
    assert_eq!(
        t.running
            .store
            .mailbox(_alice.id, "Entwürfe")
            .await
            .unwrap()
            .map(|m| m.name),
        Some("Entwürfe".to_string())
    );
    c.ok("RENAME Work Projects").await;
    assert_eq!(
        c.ok("LIST \"\" Projects*").await,
        [
            "* LIST (\\HasChildren) \"/\" \"Projects\"",
            "* LIST (\\HasChildren) \"/\" \"Projects/2026\"",
            "* LIST (\\HasNoChildren) \"/\" \"Projects/2026/Q1\"",
        ]
    );
    let (_, r) = c.cmd("DELETE Projects").await;
    assert_eq!(
        r,
        "TAG NO [CANNOT] mailbox Projects has children; delete them first"
    );
    c.ok("DELETE Projects/2026/Q1").await;
    let (_, r) = c.cmd("DELETE Nope").await;
    assert_eq!(r, "TAG NO [NONEXISTENT] mailbox Nope does not exist");
    let (_, r) = c.cmd("DELETE INBOX").await;
    assert_eq!(r, "TAG NO [CANNOT] INBOX cannot be deleted");
    c.ok("UNSUBSCRIBE Drafts").await;
    let lsub = c.ok("LSUB \"\" *").await;
    assert!(!lsub.iter().any(|l| l.contains("Drafts")), "{lsub:?}");
    assert!(lsub.iter().any(|l| l.contains("\"Sent\"")), "{lsub:?}");
    // A name without a mailbox can be subscribed (RFC 3501 §6.3.6).
    c.ok("SUBSCRIBE Nope").await;
    assert_eq!(
        c.ok("STATUS INBOX (MESSAGES UNSEEN SIZE)").await,
        ["* STATUS \"INBOX\" (MESSAGES 0 UNSEEN 0 SIZE 0)"]
    );
    assert_eq!(
        c.ok("NAMESPACE").await,
        ["* NAMESPACE ((\"\" \"/\")) NIL NIL"]
    );
    assert_eq!(
        c.ok("ID NIL").await,
        [format!(
            "* ID (\"name\" \"Mailroom\" \"version\" \"{}\")",
            env!("CARGO_PKG_VERSION")
        )]
    );
    assert_eq!(c.ok("ENABLE CONDSTORE").await, ["* ENABLED CONDSTORE"]);
    // INBOX rename: the messages move, INBOX stays (empty).
    deliver(&t.running.store, &_alice, &message("one", "x", 300)).await;
    c.ok("RENAME INBOX Old").await;
    assert_eq!(
        c.ok("STATUS Old (MESSAGES)").await,
        ["* STATUS \"Old\" (MESSAGES 1)"]
    );
    assert_eq!(
        c.ok("STATUS inbox (MESSAGES)").await,
        ["* STATUS \"INBOX\" (MESSAGES 0)"]
    );
    let (_, r) = c.cmd("CHECK").await;
    assert_eq!(r, "TAG BAD CHECK needs a selected mailbox");
}

#[tokio::test]
async fn select_examine_close_unselect() {
    let (t, alice) = server().await;
    let store = &t.running.store;
    deliver(store, &alice, &message("one", "x", 300)).await;
    deliver(store, &alice, &message("two", "y", 300)).await;
    let mut c = logged_in(&t).await;
    let inbox = store.mailbox(alice.id, "INBOX").await.unwrap().unwrap();
    let (lines, r) = c.cmd("SELECT INBOX").await;
    assert_eq!(
        lines,
        [
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)".to_string(),
            "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] flags permitted".into(),
            "* 2 EXISTS".into(),
            "* 2 RECENT".into(),
            "* OK [UNSEEN 1] first unseen".into(),
            format!("* OK [UIDVALIDITY {}] UIDs valid", inbox.uidvalidity),
            "* OK [UIDNEXT 3] predicted next UID".into(),
            "* OK [HIGHESTMODSEQ 3] highest".into(),
        ]
    );
    assert_eq!(r, "TAG OK [READ-WRITE] SELECT completed");
    c.ok("CHECK").await;
    c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    c.ok("UNSELECT").await;
    let (lines, r) = c.cmd("EXAMINE INBOX").await;
    assert!(lines.contains(&"* OK [PERMANENTFLAGS ()] read-only mailbox".to_string()));
    assert_eq!(r, "TAG OK [READ-ONLY] EXAMINE completed");
    let (_, r) = c.cmd("STORE 1 +FLAGS (\\Seen)").await;
    assert_eq!(r, "TAG NO [READ-ONLY] the mailbox is read-only");
    c.ok("CLOSE").await;
    assert_eq!(
        store.messages(&inbox).await.unwrap().len(),
        2,
        "EXAMINE+CLOSE keeps"
    );
    c.ok("SELECT INBOX").await;
    let lines = c.ok("CLOSE").await;
    assert!(lines.is_empty(), "CLOSE expunges silently: {lines:?}");
    assert_eq!(store.messages(&inbox).await.unwrap().len(), 1);
    let (_, r) = c.cmd("FETCH 1 FLAGS").await;
    assert_eq!(r, "TAG BAD FETCH needs a selected mailbox");
    let (_, r) = c.cmd("SELECT Nope").await;
    assert_eq!(r, "TAG NO [NONEXISTENT] no such mailbox");
}

const MIME: &[u8] = b"From: \"Alice Example\" <alice@example.net>\r\n\
To: bob@example.org, Carol <carol@example.org>\r\n\
Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\
Date: Thu, 26 Nov 2026 10:00:00 +0000\r\n\
Message-ID: <m1@example.net>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Hello Bob,\r\nsee the attachment.\r\n\
--b1\r\n\
Content-Type: application/pdf; name=\"a.pdf\"\r\n\
Content-Disposition: attachment; filename=\"a.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
JVBERi0xLjQK\r\n\
--b1--\r\n";

/// FETCH of more big messages than one read of the store holds (4 MiB): every body comes,
/// whole and in order, across the reads.
#[tokio::test]
async fn fetch_of_big_messages_in_several_reads() {
    let (t, alice) = server().await;
    let mut raws = Vec::new();
    for i in 1..=4 {
        let mut raw = format!("Subject: big {i}\r\n\r\n").into_bytes();
        let mut n = 0;
        while raw.len() < 1_500_000 {
            raw.extend_from_slice(format!("line {n} of message {i}\r\n").as_bytes());
            n += 1;
        }
        deliver(&t.running.store, &alice, &raw).await;
        raws.push(raw);
    }
    let mut c = logged_in(&t).await;
    c.ok("SELECT INBOX").await;
    let lines = c.ok("FETCH 1:* BODY.PEEK[]").await;
    // The test client reads a literal as part of its line.
    assert_eq!(lines.len(), raws.len(), "one response per message");
    for (k, (line, raw)) in lines.iter().zip(&raws).enumerate() {
        let head = format!("* {} FETCH (BODY[] {{{}}}\r\n", k + 1, raw.len());
        let body = line.strip_prefix(&head).and_then(|l| l.strip_suffix(")"));
        assert!(
            body.is_some_and(|b| b.as_bytes() == raw.as_slice()),
            "message {}: {:?}",
            k + 1,
            line.get(..80)
        );
    }
}

#[tokio::test]
async fn append_and_fetch_every_item() {
    let (t, alice) = server().await;
    let mut c = logged_in(&t).await;
    // A synchronizing literal: the server asks for it with "+".
    c.send(
        format!(
            "a1 APPEND INBOX (\\Seen $Work) \"26-Nov-2026 10:00:00 +0000\" {{{}}}\r\n",
            MIME.len()
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(c.line().await, "+ Ready for literal data");
    c.send(MIME).await;
    c.send(b"\r\n").await;
    let inbox = t
        .running
        .store
        .mailbox(alice.id, "INBOX")
        .await
        .unwrap()
        .unwrap();
    let (_, r) = c.until("a1").await;
    assert_eq!(
        r,
        format!(
            "TAG OK [APPENDUID {} 1] APPEND completed",
            inbox.uidvalidity
        )
    );
    // A non-synchronizing literal (LITERAL+): no "+".
    let plain = b"Subject: plain\r\n\r\nbody\r\n";
    c.send(format!("a2 APPEND INBOX {{{}+}}\r\n", plain.len()).as_bytes())
        .await;
    c.send(plain).await;
    c.send(b"\r\n").await;
    let (_, r) = c.until("a2").await;
    assert!(r.starts_with("TAG OK [APPENDUID "), "{r}");
    let (_, r) = c.cmd("APPEND Nope {3+}\r\nabc").await;
    assert_eq!(r, "TAG NO [TRYCREATE] no such mailbox");

    c.ok("SELECT INBOX").await;
    let size = MIME.len();
    assert_eq!(
        c.ok("FETCH 1 (UID FLAGS INTERNALDATE RFC822.SIZE)").await,
        [format!(
            "* 1 FETCH (UID 1 FLAGS (\\Seen $Work \\Recent) INTERNALDATE \"26-Nov-2026 10:00:00 +0000\" RFC822.SIZE {size})"
        )]
    );
    assert_eq!(
        c.ok("FETCH 1 ENVELOPE").await,
        [
            "* 1 FETCH (ENVELOPE (\"Thu, 26 Nov 2026 10:00:00 +0000\" \"=?utf-8?q?Gr=C3=BC=C3=9Fe?=\" \
((\"Alice Example\" NIL \"alice\" \"example.net\")) ((\"Alice Example\" NIL \"alice\" \"example.net\")) \
((\"Alice Example\" NIL \"alice\" \"example.net\")) ((NIL NIL \"bob\" \"example.org\")(\"Carol\" NIL \"carol\" \"example.org\")) \
NIL NIL NIL \"<m1@example.net>\"))"
        ]
    );
    assert_eq!(
        c.ok("FETCH 1 BODYSTRUCTURE").await,
        [
            "* 1 FETCH (BODYSTRUCTURE ((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7BIT\" 31 1 NIL NIL NIL NIL)\
(\"application\" \"pdf\" (\"name\" \"a.pdf\") NIL NIL \"BASE64\" 12 NIL (\"attachment\" (\"filename\" \"a.pdf\")) NIL NIL) \
\"mixed\" (\"boundary\" \"b1\") NIL NIL NIL))"
        ]
    );
    assert_eq!(
        c.ok("FETCH 1 BODY").await,
        [
            "* 1 FETCH (BODY ((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7BIT\" 31 1)\
(\"application\" \"pdf\" (\"name\" \"a.pdf\") NIL NIL \"BASE64\" 12) \"mixed\"))"
        ]
    );
    assert_eq!(
        c.ok("FETCH 1 (BODY.PEEK[1] BODY.PEEK[2.MIME])").await,
        [
            "* 1 FETCH (BODY[1] {31}\r\nHello Bob,\r\nsee the attachment. BODY[2.MIME] {133}\r\n\
Content-Type: application/pdf; name=\"a.pdf\"\r\nContent-Disposition: attachment; filename=\"a.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\n)"
        ]
    );
    assert_eq!(
        c.ok("FETCH 1 BODY.PEEK[HEADER.FIELDS (subject message-id)]")
            .await,
        [
            "* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT MESSAGE-ID)] {70}\r\n\
Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nMessage-ID: <m1@example.net>\r\n\r\n)"
        ]
    );
    let lines = c
        .ok("FETCH 1 BODY.PEEK[HEADER.FIELDS.NOT (From To Subject Date Message-ID)]")
        .await;
    assert_eq!(
        lines,
        [
            "* 1 FETCH (BODY[HEADER.FIELDS.NOT (FROM TO SUBJECT DATE MESSAGE-ID)] {67}\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n)"
        ]
    );
    assert_eq!(
        c.ok("FETCH 1 BODY.PEEK[]<0.10>").await,
        ["* 1 FETCH (BODY[]<0> {10}\r\nFrom: \"Ali)"]
    );
    let header_len = MIME.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let lines = c.ok("FETCH 1 (RFC822.HEADER RFC822.TEXT)").await;
    assert_eq!(
        lines,
        [format!(
            "* 1 FETCH (RFC822.HEADER {{{header_len}}}\r\n{} RFC822.TEXT {{{}}}\r\n{})",
            String::from_utf8_lossy(&MIME[..header_len]),
            size - header_len,
            String::from_utf8_lossy(&MIME[header_len..])
        )]
    );
    let lines = c.ok("FETCH 1 (RFC822)").await;
    assert_eq!(
        lines,
        [format!(
            "* 1 FETCH (RFC822 {{{size}}}\r\n{})",
            String::from_utf8_lossy(MIME)
        )]
    );
    assert_eq!(
        c.ok("FETCH 2 BODY.PEEK[TEXT]").await,
        ["* 2 FETCH (BODY[TEXT] {6}\r\nbody\r\n)"]
    );
    // A non-peek body fetch sets \Seen and says so.
    assert_eq!(
        c.ok("FETCH 2 BODY[TEXT]").await,
        ["* 2 FETCH (BODY[TEXT] {6}\r\nbody\r\n FLAGS (\\Seen \\Recent))"]
    );
    assert_eq!(
        c.ok("UID FETCH 2 FAST").await,
        [format!(
            "* 2 FETCH (UID 2 FLAGS (\\Seen \\Recent) INTERNALDATE \"{}\" RFC822.SIZE {})",
            c_date(&t, &alice, 2).await,
            plain.len()
        )]
    );
    assert_eq!(
        c.ok("UID FETCH 9:* FLAGS").await,
        ["* 2 FETCH (UID 2 FLAGS (\\Seen \\Recent))"]
    );
    let (_, r) = c.cmd("FETCH 3 FLAGS").await;
    assert_eq!(
        r,
        "TAG BAD message sequence number 3 is out of range (EXISTS is 2)"
    );
    assert_eq!(
        c.ok("FETCH 1 (BODY.PEEK[3] BODY.PEEK[1.HEADER])").await,
        ["* 1 FETCH (BODY[3] {0}\r\n BODY[1.HEADER] {0}\r\n)"]
    );
}

/// The INTERNALDATE the server shows for a message appended "now".
async fn c_date(t: &TestServer, alice: &Account, uid: u32) -> String {
    let inbox = t
        .running
        .store
        .mailbox(alice.id, "INBOX")
        .await
        .unwrap()
        .unwrap();
    let m = t.running.store.messages(&inbox).await.unwrap();
    let date = m.iter().find(|m| m.uid == uid).unwrap().internal_date;
    let f = time::macros::format_description!(
        "[day]-[month repr:short]-[year] [hour]:[minute]:[second] +0000"
    );
    time::OffsetDateTime::from_unix_timestamp(date)
        .unwrap()
        .format(f)
        .unwrap()
}

#[tokio::test]
async fn store_expunge_copy_move() {
    let (t, alice) = server().await;
    let store = &t.running.store;
    for i in 1..=5 {
        deliver(store, &alice, &message(&format!("m{i}"), "w", 300)).await;
    }
    let mut c = logged_in(&t).await;
    c.ok("SELECT INBOX").await;
    assert_eq!(
        c.ok("STORE 1:2 +FLAGS (\\Flagged $Todo)").await,
        [
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Todo)",
            "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Todo \\*)] flags permitted",
            "* 1 FETCH (FLAGS (\\Flagged $Todo \\Recent))",
            "* 2 FETCH (FLAGS (\\Flagged $Todo \\Recent))"
        ]
    );
    assert_eq!(
        c.ok("UID STORE 2 -FLAGS ($todo)").await,
        ["* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent))"]
    );
    assert_eq!(
        c.ok("STORE 3 FLAGS.SILENT (\\Deleted \\Seen)").await,
        Vec::<String>::new()
    );
    let trash = store.mailbox(alice.id, "Trash").await.unwrap().unwrap();
    let (_, r) = c.cmd("COPY 1:2 Trash").await;
    assert_eq!(
        r,
        format!(
            "TAG OK [COPYUID {} 1:2 1:2] COPY completed",
            trash.uidvalidity
        )
    );
    let (_, r) = c.cmd("COPY 1 Nope").await;
    assert_eq!(r, "TAG NO [TRYCREATE] no such mailbox");
    assert_eq!(c.ok("EXPUNGE").await, ["* 3 EXPUNGE"]);
    // Now 1 2 4 5 remain (seq 1..4). MOVE seq 3 (uid 4).
    let (lines, r) = c.cmd("MOVE 3 Trash").await;
    assert_eq!(
        lines,
        [
            format!("* OK [COPYUID {} 4 3] moved", trash.uidvalidity),
            "* 3 EXPUNGE".to_string()
        ]
    );
    assert_eq!(r, "TAG OK MOVE completed");
    assert_eq!(c.ok("UID FETCH 1:* UID").await.len(), 3);
    // UID EXPUNGE only touches the UIDs given.
    c.ok("STORE 1:3 +FLAGS.SILENT (\\Deleted)").await;
    assert_eq!(c.ok("UID EXPUNGE 5").await, ["* 3 EXPUNGE"]);
    assert_eq!(c.ok("UID SEARCH ALL").await, ["* SEARCH 1 2"]);
    let inbox = store.mailbox(alice.id, "INBOX").await.unwrap().unwrap();
    let uids: Vec<u32> = store
        .messages(&inbox)
        .await
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(uids, [1, 2]);
    let uids: Vec<u32> = store
        .messages(&trash)
        .await
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(uids, [1, 2, 3]);
    // Quota: a copy counts against it.
    let used = store.account(alice.id).await.unwrap().unwrap().used_bytes;
    store
        .set_quota("alice@localhost", used as u64 + 100)
        .await
        .unwrap();
    let (_, r) = c.cmd("COPY 1 Trash").await;
    assert_eq!(r, "TAG NO [OVERQUOTA] the mailbox is full (quota exceeded)");
    let lines = c.ok("GETQUOTAROOT INBOX").await;
    assert_eq!(
        lines,
        [
            "* QUOTAROOT \"INBOX\" \"\"".to_string(),
            format!(
                "* QUOTA \"\" (STORAGE {} {})",
                used / 1024,
                (used + 100) / 1024
            )
        ]
    );
    let (_, r) = c
        .cmd(&format!("APPEND INBOX {{300+}}\r\n{}", "x".repeat(300)))
        .await;
    assert_eq!(r, "TAG NO [OVERQUOTA] the mailbox is full (quota exceeded)");
}

#[tokio::test]
async fn search_and_sort() {
    let (t, alice) = server().await;
    let store = &t.running.store;
    deliver(store, &alice, &message("apple pie", "cinnamon", 500)).await;
    deliver(store, &alice, &message("banana split", "vanilla", 2000)).await;
    deliver(
        store,
        &alice,
        b"From: Zed <zed@example.com>\r\nTo: alice@localhost\r\nBcc: secret@example.com\r\n\
Subject: Re: apple pie\r\nX-Mood: happy\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\n\r\nHello world, here is a cinnamon roll\r\n",
    )
    .await;
    let mut c = logged_in(&t).await;
    c.ok("SELECT INBOX").await;
    c.ok("STORE 2 +FLAGS (\\Flagged)").await;
    for (query, expect) in [
        ("ALL", "* SEARCH 1 2 3"),
        ("SUBJECT apple", "* SEARCH 1 3"),
        ("SUBJECT APPLE NOT FROM zed", "* SEARCH 1"),
        ("FROM zed@example", "* SEARCH 3"),
        ("TO bob", "* SEARCH 1 2"),
        ("BCC secret", "* SEARCH 3"),
        ("BODY cinnamon", "* SEARCH 1 3"),
        ("BODY \"cinnamon roll\"", "* SEARCH 3"),
        ("TEXT vanilla", "* SEARCH 2"),
        ("TEXT zed", "* SEARCH 3"),
        ("BODY nothere", "* SEARCH"),
        ("HEADER X-Mood happy", "* SEARCH 3"),
        ("HEADER X-Mood \"\"", "* SEARCH 3"),
        ("FLAGGED", "* SEARCH 2"),
        ("UNFLAGGED UNSEEN", "* SEARCH 1 3"),
        ("OR FLAGGED LARGER 1000", "* SEARCH 2"),
        ("SMALLER 600", "* SEARCH 1 3"),
        ("2:*", "* SEARCH 2 3"),
        ("UID 3", "* SEARCH 3"),
        ("SENTON 25-Nov-2026", "* SEARCH 3"),
        ("SENTBEFORE 26-Nov-2026", "* SEARCH 3"),
        ("SENTSINCE 26-Nov-2026", "* SEARCH 1 2"),
        ("ON 26-Nov-2026", "* SEARCH 1 2 3"),
        ("BEFORE 26-Nov-2026", "* SEARCH"),
        ("SINCE 27-Nov-2026", "* SEARCH"),
        ("NEW", "* SEARCH 1 2 3"),
        ("OLD", "* SEARCH"),
        ("KEYWORD $x", "* SEARCH"),
        ("UNKEYWORD $x", "* SEARCH 1 2 3"),
        ("CHARSET UTF-8 SUBJECT banana", "* SEARCH 2"),
    ] {
        assert_eq!(c.ok(&format!("SEARCH {query}")).await, [expect], "{query}");
    }
    assert_eq!(c.ok("UID SEARCH FLAGGED").await, ["* SEARCH 2"]);
    let (_, r) = c.cmd("SEARCH CHARSET KOI8-R ALL").await;
    assert_eq!(
        r,
        "TAG NO [BADCHARSET (UTF-8 US-ASCII)] unsupported charset"
    );
    assert_eq!(c.ok("SORT (SUBJECT) UTF-8 ALL").await, ["* SORT 1 3 2"]);
    assert_eq!(
        c.ok("SORT (REVERSE SIZE) UTF-8 ALL").await,
        ["* SORT 2 1 3"]
    );
    assert_eq!(c.ok("SORT (DATE) UTF-8 ALL").await, ["* SORT 3 1 2"]);
    assert_eq!(
        c.ok("UID SORT (FROM) UTF-8 SUBJECT apple").await,
        ["* SORT 1 3"]
    );
    // CONDSTORE: MODSEQ search and the response's highest MODSEQ.
    let lines = c.ok("SEARCH MODSEQ 1").await;
    assert!(lines[0].starts_with("* SEARCH 1 2 3 (MODSEQ "), "{lines:?}");
}

/// The store narrows SUBJECT/FROM/TO/CC with SQL LIKE before the exact comparison; nothing the
/// exact comparison would match may be narrowed away (case, LIKE's wildcards and escape
/// character, characters outside ASCII whose lower case is ASCII).
#[tokio::test]
async fn header_search_narrowing_loses_nothing() {
    let (t, alice) = server().await;
    let store = &t.running.store;
    for (from, subject) in [
        ("Ann <ann@example.com>", "100% off_sale"),
        ("BOB <bob@example.com>", "Kelvin \u{212A} scale"),
        ("Cy <cy@example.com>", "Caf\u{e9} ZANZIBAR"),
        ("Di <di@example.com>", "plain zanzibar"),
        ("Ed <ed@example.com>", "back\\slash"),
    ] {
        let raw =
            format!("From: {from}\r\nTo: alice@localhost\r\nSubject: {subject}\r\n\r\nhi\r\n");
        deliver(store, &alice, raw.as_bytes()).await;
    }
    let mut c = logged_in(&t).await;
    c.ok("SELECT INBOX").await;
    for (query, expect) in [
        ("SUBJECT zanzibar", "* SEARCH 3 4"),
        ("SUBJECT ZanZibar", "* SEARCH 3 4"),
        ("SUBJECT \"100%\"", "* SEARCH 1"),
        ("SUBJECT \"f_s\"", "* SEARCH 1"),
        ("SUBJECT \"f%s\"", "* SEARCH"),
        ("SUBJECT \"k scale\"", "* SEARCH 2"),
        ("SUBJECT \"k\\\\s\"", "* SEARCH 5"),
        ("CHARSET UTF-8 SUBJECT {5+}\r\ncaf\u{c9}", "* SEARCH 3"),
        ("FROM bob SUBJECT scale", "* SEARCH 2"),
        ("FROM BOB@EXAMPLE", "* SEARCH 2"),
        ("OR SUBJECT sale SUBJECT slash", "* SEARCH 1 5"),
        ("NOT SUBJECT zanzibar", "* SEARCH 1 2 5"),
    ] {
        assert_eq!(c.ok(&format!("SEARCH {query}")).await, [expect], "{query}");
    }
}

#[tokio::test]
async fn condstore_fetch_and_store() {
    let (t, alice) = server().await;
    let store = &t.running.store;
    for i in 1..=3 {
        deliver(store, &alice, &message(&format!("m{i}"), "w", 300)).await;
    }
    let mut c = logged_in(&t).await;
    let lines = c.ok("SELECT INBOX (CONDSTORE)").await;
    assert!(
        lines.contains(&"* OK [HIGHESTMODSEQ 4] highest".to_string()),
        "{lines:?}"
    );
    assert_eq!(
        c.ok("FETCH 1:* (FLAGS) (CHANGEDSINCE 3)").await,
        ["* 3 FETCH (FLAGS (\\Recent) MODSEQ (4))"]
    );
    assert_eq!(
        c.ok("STORE 1 +FLAGS (\\Seen)").await,
        ["* 1 FETCH (FLAGS (\\Seen \\Recent) MODSEQ (5))"]
    );
    let (lines, r) = c
        .cmd("STORE 1:2 (UNCHANGEDSINCE 4) +FLAGS (\\Flagged)")
        .await;
    assert_eq!(lines, ["* 2 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ (6))"]);
    assert_eq!(
        r,
        "TAG OK [MODIFIED 1] conditional STORE failed for some messages"
    );
    assert_eq!(
        c.ok("UID FETCH 1:* (UID) (CHANGEDSINCE 5)").await,
        ["* 2 FETCH (UID 2 MODSEQ (6))"]
    );
    assert_eq!(
        c.ok("STATUS INBOX (HIGHESTMODSEQ)").await,
        ["* STATUS \"INBOX\" (HIGHESTMODSEQ 6)"]
    );
}

#[tokio::test]
async fn two_sessions_see_each_other() {
    let (t, alice) = server().await;
    let store = &t.running.store;
    for i in 1..=3 {
        deliver(store, &alice, &message(&format!("m{i}"), "w", 300)).await;
    }
    let mut a = logged_in(&t).await;
    let mut b = logged_in(&t).await;
    a.ok("SELECT INBOX").await;
    b.ok("SELECT INBOX").await;
    // b flags and deletes message 2; a sees the flags at its next command.
    b.ok("STORE 2 +FLAGS.SILENT (\\Deleted)").await;
    assert_eq!(
        a.ok("NOOP").await,
        ["* 2 FETCH (UID 2 FLAGS (\\Deleted \\Recent))"]
    );
    assert_eq!(b.ok("EXPUNGE").await, ["* 2 EXPUNGE"]);
    // A delivery and the expunge: during FETCH the expunge is held back, the EXISTS is not.
    deliver(store, &alice, &message("m4", "w", 300)).await;
    assert_eq!(
        a.ok("FETCH 1 UID").await,
        ["* 1 FETCH (UID 1)", "* 4 EXISTS", "* 4 RECENT"]
    );
    // Message 2 is expunged but keeps its number until a command that may say so.
    assert_eq!(a.ok("FETCH 3 UID").await, ["* 3 FETCH (UID 3)"]);
    assert_eq!(a.ok("NOOP").await, ["* 2 EXPUNGE"]);
    assert_eq!(
        a.ok("FETCH 1:* (UID FLAGS)").await,
        [
            "* 1 FETCH (UID 1 FLAGS (\\Recent))",
            "* 2 FETCH (UID 3 FLAGS (\\Recent))",
            "* 3 FETCH (UID 4 FLAGS (\\Recent))",
        ]
    );
    // b's own changes are not echoed back to b.
    assert!(b.ok("NOOP").await.iter().all(|l| !l.contains("FETCH")));
}

#[tokio::test]
async fn idle_reports_a_delivery_and_flag_changes_as_they_happen() {
    let (t, alice) = server().await;
    deliver(&t.running.store, &alice, &message("m1", "w", 300)).await;
    let mut c = logged_in(&t).await;
    c.ok("SELECT INBOX").await;
    c.send(b"i1 IDLE\r\n").await;
    assert_eq!(c.line().await, "+ idling");
    let store = t.running.store.clone();
    // Pushed without the client asking (how fast is bench/imap's business, not a test's).
    deliver(&store, &alice, &message("m2", "w", 300)).await;
    assert_eq!(c.line().await, "* 2 EXISTS");
    assert_eq!(c.line().await, "* 2 RECENT");
    // A flag change by another session arrives too.
    let mut other = logged_in(&t).await;
    other.ok("SELECT INBOX").await;
    other.ok("STORE 1 +FLAGS (\\Seen)").await;
    assert_eq!(c.line().await, "* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent))");
    other.ok("STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    assert_eq!(
        c.line().await,
        "* 1 FETCH (UID 1 FLAGS (\\Seen \\Deleted \\Recent))"
    );
    other.ok("EXPUNGE").await;
    assert_eq!(c.line().await, "* 1 EXPUNGE");
    c.send(b"DONE\r\n").await;
    assert_eq!(c.line().await, "i1 OK IDLE terminated");
    // Something other than DONE ends IDLE with BAD.
    c.send(b"i2 IDLE\r\n").await;
    assert_eq!(c.line().await, "+ idling");
    c.send(b"NOPE\r\n").await;
    assert_eq!(c.line().await, "i2 BAD expected DONE to end IDLE");
}

#[tokio::test]
async fn idle_sees_smtp_delivery() {
    let (t, alice) = server().await;
    let mut c = logged_in(&t).await;
    c.ok("SELECT INBOX").await;
    c.send(b"i1 IDLE\r\n").await;
    assert_eq!(c.line().await, "+ idling");
    // Over SMTP port 25, as a remote server would deliver.
    let mut smtp = TcpStream::connect(t.running.addr("smtp").expect("smtp"))
        .await
        .expect("smtp");
    let mut smtp_reader = BufReader::new(&mut smtp);
    let mut line = String::new();
    for cmd in [
        "",
        "EHLO peer.example\r\n",
        "MAIL FROM:<x@example.net>\r\n",
        "RCPT TO:<alice@localhost>\r\n",
        "DATA\r\n",
        "Subject: via smtp\r\n\r\nhello\r\n.\r\n",
    ] {
        if !cmd.is_empty() {
            smtp_reader
                .get_mut()
                .write_all(cmd.as_bytes())
                .await
                .unwrap();
        }
        // Read the (possibly multi-line) reply.
        loop {
            line.clear();
            tokio::time::timeout(WAIT, smtp_reader.read_line(&mut line))
                .await
                .expect("smtp reply")
                .unwrap();
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                break;
            }
        }
        assert!(
            line.starts_with('2') || line.starts_with('3'),
            "{cmd}: {line}"
        );
    }
    assert_eq!(c.line().await, "* 1 EXISTS");
    assert_eq!(c.line().await, "* 1 RECENT");
    c.send(b"DONE\r\n").await;
    assert_eq!(c.line().await, "i1 OK IDLE terminated");
    let _ = alice;
}

#[tokio::test]
async fn bad_input_limits_and_chunked_commands() {
    let (t, _alice) = server().await;
    let mut c = connect(&t).await;
    let (_, r) = c.cmd("FROB").await;
    assert_eq!(r, "TAG BAD unknown command FROB");
    let (_, r) = c.cmd("LOGIN onlyuser").await;
    assert_eq!(r, "TAG BAD syntax error in the arguments of LOGIN");
    c.send(b"\r\n").await;
    assert_eq!(c.line().await, "* BAD invalid or missing tag");
    // A literal larger than allowed before login is refused before it is sent.
    c.send(b"x LOGIN {100000}\r\n").await;
    assert_eq!(
        c.line().await,
        "x NO [TOOBIG] literal of 100000 octets is larger than the limit of 65536"
    );
    // A command sent one byte at a time, with a literal.
    let command = b"y LOGIN {15}\r\nalice@localhost secret\r\n";
    for (i, b) in command.iter().enumerate() {
        c.send(&[*b]).await;
        if i == 13 {
            assert_eq!(c.line().await, "+ Ready for literal data");
        }
    }
    let r = c.line().await;
    assert!(r.starts_with("y OK [CAPABILITY "), "{r}");
    // Ten syntax errors in a row end the session.
    for _ in 0..9 {
        let (_, r) = c.cmd("FETCH x").await;
        assert!(r.starts_with("TAG BAD "), "{r}");
    }
    c.send(b"z FETCH\r\n").await;
    assert_eq!(
        c.line().await,
        "z BAD syntax error in the arguments of FETCH"
    );
    assert_eq!(c.line().await, "* BYE too many invalid commands");
    assert_eq!(c.line().await, "");

    // A line longer than 64 KiB is refused, whether it arrives whole or in pieces, and the
    // session goes on.
    let mut c = connect(&t).await;
    for size in [70_000, 1_000_000] {
        c.send(format!("a NOOP {}\r\n", "x".repeat(size)).as_bytes())
            .await;
        assert_eq!(
            c.line().await,
            "a BAD [TOOBIG] command line longer than 65536 octets"
        );
    }
    let (_, r) = c.cmd("NOOP").await;
    assert_eq!(r, "TAG OK NOOP completed");

    // Garbage does not panic the server: it still answers.
    let mut c = connect(&t).await;
    c.send(b"\x00\xff\xfe {3}\r\n").await;
    let r = c.line().await;
    assert!(
        r.starts_with("* BAD") || r.contains("NO [TOOBIG]") || r.starts_with("+"),
        "{r}"
    );
}

#[tokio::test]
async fn shutdown_says_bye() {
    let (t, _alice) = server().await;
    let mut c = logged_in(&t).await;
    c.ok("SELECT INBOX").await;
    let TestServer { running, dir } = t;
    let stop = tokio::spawn(running.shutdown());
    assert_eq!(c.line().await, "* BYE server shutting down");
    stop.await.unwrap();
    drop(dir);
}
