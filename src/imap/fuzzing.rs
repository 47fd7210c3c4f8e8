//! For the fuzzer (`fuzz/fuzz_targets/imap_session.rs`): whole IMAP sessions, from the bytes
//! a client sends to what the server answers, over an in-memory pipe and a real store. This
//! covers what the narrower targets do not: the framing (lines, literals and their limits,
//! continuation requests), imap-codec's decoding as the session uses it, the state machine and
//! every command's handler with the store behind it.
//!
//! Each input is one connection of an authenticated account (the first byte chooses whether
//! INBOX is selected first). The store lives across inputs, so state built by one input (new
//! mailboxes, appended messages, flags) is there for the next; it is made anew every
//! [`RENEW_EVERY`] inputs so it stays small, and a quota bounds what APPEND can add.
//!
//! Compiled only with the `fuzzing` feature; panicking is how it reports a finding.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};
use tokio::runtime::Runtime;

use super::Imap;
use super::session::Session;
use crate::auth::Authenticator;
use crate::config::Config;
use crate::net::{TlsInfo, Transport};
use crate::store::{Account, NewAccount, Store};

const RENEW_EVERY: u32 = 2000;
/// A session that has not finished this long after its input ended is a hang: a finding.
const HANG: Duration = Duration::from_secs(20);

/// The client's end is plain memory; the session believes it is TLS, so LOGIN is allowed.
struct Pipe(DuplexStream);

impl AsyncRead for Pipe {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Pipe {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, data)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

impl Transport for Pipe {
    fn can_starttls(&self) -> bool {
        false
    }
    fn is_tls(&self) -> bool {
        true
    }
    fn tls_info(&self) -> Option<TlsInfo> {
        None
    }
    async fn starttls(&mut self) -> io::Result<()> {
        Err(io::Error::other("no TLS on a pipe"))
    }
    fn set_idle_timeout(&mut self, _idle: Duration) {}
}

struct World {
    dir: std::path::PathBuf,
    store: Store,
    imap: Arc<Imap>,
    account: Account,
    runs: u32,
}

struct Fuzzer {
    rt: Runtime,
    world: Option<World>,
    generation: u32,
}

static FUZZER: Mutex<Option<Fuzzer>> = Mutex::new(None);

async fn make_world(dir: std::path::PathBuf) -> World {
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = Config::embedded();
    config.data_dir = dir.clone();
    config.limits.max_message_size = 64 * 1024;
    let store = Store::open(&dir.join("mailroom.db"))
        .await
        .unwrap_or_else(|e| panic!("fuzz store: {e}"));
    let auth = Authenticator::new(store.clone(), config.auth.clone());
    let imap = Arc::new(Imap::new(
        &config,
        &store,
        &auth,
        &crate::budget::Budget::new(
            config.limits.max_message_memory,
            config.limits.max_message_size,
        ),
        &crate::spam::learn::Learner::start(store.clone(), crate::shutdown::channel().1),
    ));
    let _ = store.add_domain("localhost").await;
    let account = store
        .create_account(NewAccount {
            address: "fuzz@localhost",
            password_hash: "not a hash: sessions start authenticated",
            quota_bytes: 4 * 1024 * 1024,
            is_admin: false,
        })
        .await
        .unwrap_or_else(|e| panic!("fuzz account: {e}"));
    World {
        dir,
        store,
        imap,
        account,
        runs: 0,
    }
}

/// Runs one session on `input` and returns what the server wrote. Panics (the fuzzer's
/// finding) if the session does not end once its input has.
#[doc(hidden)]
pub fn session(input: &[u8]) -> Vec<u8> {
    let mut guard = FUZZER.lock().unwrap_or_else(|e| e.into_inner());
    let fuzzer = guard.get_or_insert_with(|| Fuzzer {
        rt: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}")),
        world: None,
        generation: 0,
    });
    if fuzzer.world.as_ref().is_some_and(|w| w.runs >= RENEW_EVERY)
        && let Some(old) = fuzzer.world.take()
    {
        fuzzer.rt.block_on(old.store.close());
        let _ = std::fs::remove_dir_all(&old.dir);
    }
    if fuzzer.world.is_none() {
        fuzzer.generation += 1;
        let dir = std::env::temp_dir().join(format!(
            "mailroom-fuzz-{}-{}",
            std::process::id(),
            fuzzer.generation
        ));
        fuzzer.world = Some(fuzzer.rt.block_on(make_world(dir)));
    }
    let Some(world) = fuzzer.world.as_mut() else {
        return Vec::new();
    };
    world.runs += 1;
    let (select, input) = match input.split_first() {
        Some((first, rest)) => (first & 1 == 1, rest),
        None => (false, input),
    };
    let imap = world.imap.clone();
    let account = world.account.clone();
    fuzzer.rt.block_on(async move {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let (_stop, shutdown) = crate::shutdown::channel();
        let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let mut session = Box::new(Session::new(imap, Pipe(server), ip, shutdown));
        session.account = Some(account);
        let (mut from_server, mut to_server) = tokio::io::split(client);
        let send = async {
            if select {
                let _ = to_server.write_all(b"s SELECT INBOX\r\n").await;
            }
            let _ = to_server.write_all(input).await;
            let _ = to_server.shutdown().await;
        };
        let receive = async {
            let mut out = Vec::new();
            let _ = from_server.read_to_end(&mut out).await;
            out
        };
        let ran = tokio::time::timeout(HANG, async {
            let ((), (), out) = tokio::join!(session.run(), send, receive);
            out
        })
        .await;
        match ran {
            Ok(out) => out,
            Err(_) => panic!("the session did not end after its input did"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::session;

    fn text(out: &[u8]) -> String {
        String::from_utf8_lossy(out).into_owned()
    }

    #[test]
    fn sessions_run_end_and_keep_their_store() {
        let out = text(&session(
            b"\x01a APPEND INBOX {5}\r\nhello\r\nb NOOP\r\nc UID FETCH 1:* (FLAGS)\r\nd LOGOUT\r\n",
        ));
        assert!(out.starts_with("* OK "), "{out}");
        assert!(out.contains("s OK [READ-WRITE]"), "{out}");
        assert!(out.contains("a OK [APPENDUID"), "{out}");
        assert!(out.contains("d OK"), "{out}");
        // The next input sees what the last one stored.
        let out = text(&session(b"\x01f FETCH 1 (BODY[])\r\n"));
        assert!(out.contains("hello"), "{out}");
        // Input that stops mid-literal, mid-line or in IDLE still ends the session.
        for cut in [
            &b"\x00a APPEND INBOX {100}\r\nabc"[..],
            b"\x00a SEL",
            b"\x01i IDLE\r\n",
        ] {
            let out = text(&session(cut));
            assert!(out.starts_with("* OK "), "{out}");
        }
        // In the same test: the store is one per process, and a second test running at the
        // same time would change what the checks above read.
        search_strings_with_fts_syntax_are_substrings();
    }

    /// What `fuzz/fuzz_targets/imap_search.rs` sends: strings in FTS5's query syntax reach the
    /// real trigram index as substrings to find, never as syntax.
    fn search_strings_with_fts_syntax_are_substrings() {
        let message =
            b"Subject: NEAR(x y) AND \"q\" *\r\n\r\nsyntax: a* OR b NEAR(c d) ^e col:h\r\n";
        for (criteria, hit) in [
            (&b"TEXT \"a* OR b\""[..], true),
            (b"BODY \"NEAR(c d)\"", true),
            (b"SUBJECT \"AND \\\"q\\\"\"", true),
            (b"BODY \"col:h\"", true),
            (b"BODY \"^e\"", true),
            (b"TEXT \"OR NOT\"", false),
            (b"BODY \"\\\"\"", false),
        ] {
            // INBOX selected after the APPEND, so the selected view holds the message.
            let mut input = b"\x00a APPEND INBOX {".to_vec();
            input.extend_from_slice(format!("{}+}}\r\n", message.len()).as_bytes());
            input.extend_from_slice(message);
            input.extend_from_slice(b"\r\ns SELECT INBOX\r\nq UID SEARCH ");
            input.extend_from_slice(criteria);
            input.extend_from_slice(b"\r\n");
            let out = text(&session(&input));
            let what = String::from_utf8_lossy(criteria);
            assert!(out.contains("\r\nq OK"), "{what}: {out}");
            let found = out
                .lines()
                .find(|l| l.starts_with("* SEARCH"))
                .unwrap_or_default();
            assert_eq!(found.len() > "* SEARCH".len(), hit, "{what}: {out}");
        }
    }
}
