//! A full disk (issue 16, item 3): the data directory on a 20 MB tmpfs, filled by SMTP
//! deliveries until the server refuses with `452 4.3.1`; `/healthz` then says the store cannot
//! take mail; once space is freed, deliveries succeed again without a restart; and after a
//! restart every message acknowledged with `250` is there.
//!
//! Mounting needs root (CI and the development machines run as root); elsewhere each test says
//! it was skipped and passes, except under CI (`CI=true`), where a skip would hide the test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use crate::harness::{TestServer, account, http_get, start_with};
use crate::smtp::{Client, connect};

/// A tmpfs mounted on a temporary directory, unmounted when dropped (also when a test fails).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` ("20m"), or says why it cannot and returns `None`.
    fn mount(size: &str) -> Option<Tmpfs> {
        let skip = |why: String| {
            assert!(
                std::env::var("CI").as_deref() != Ok("true")
                    && std::env::var("MAILROOM_INTEROP").as_deref() != Ok("required"),
                "CI must run the full-disk tests, but {why}"
            );
            eprintln!("SKIPPED: {why}");
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { dir }),
            Ok(o) => {
                skip(format!(
                    "cannot mount a tmpfs (needs root): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
                None
            }
            Err(e) => {
                skip(format!("cannot run mount: {e}"));
                None
            }
        }
    }

    /// Grows the file system to `size`, as an administrator adding space would.
    fn grow(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.path())
            .status()
            .expect("mount -o remount");
        assert!(status.success(), "remount to {size}");
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn free(&self) -> u64 {
        let out = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(self.path())
            .output()
            .expect("df");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .expect("df output")
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Something still holds a file open: detach it now, it goes when released.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// A unique message of about `size` bytes (unique, so no two share a stored body).
fn message(n: usize, size: usize) -> Vec<u8> {
    crate::harness::message(&format!("fill-{n}"), &format!("word{n}"), size)
}

/// One delivery over an open session; the reply to the end of DATA, or to MAIL FROM when the
/// server already knows it is short of storage (452 there).
async fn deliver(c: &mut Client<TcpStream>, raw: &[u8]) -> (u16, String) {
    let mail = c.cmd("MAIL FROM:<sender@remote.example>").await;
    if mail.0 == 452 {
        return mail;
    }
    assert_eq!(mail.0, 250, "{mail:?}");
    c.expect("RCPT TO:<bob@localhost>", 250, "").await;
    c.expect("DATA", 354, "").await;
    c.send(raw).await;
    c.cmd(".").await
}

async fn healthz(server: &TestServer) -> (u16, String) {
    let mut s = TcpStream::connect(server.running.addr("http").expect("http"))
        .await
        .expect("connect http");
    let (status, _, body) = http_get(&mut s, "/healthz").await;
    (status, body)
}

async fn start(data: PathBuf, reserve: u64) -> TestServer {
    start_with(move |c| {
        c.data_dir = data;
        c.inbound.verify = false;
        c.auth.allow_plaintext = true;
        c.limits.min_free_space = reserve;
    })
    .await
}

/// Subjects of the messages stored for bob.
async fn stored(server: &TestServer) -> Vec<String> {
    crate::harness::inbox_texts(&server.running.store, "bob@localhost")
        .await
        .iter()
        .filter_map(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
        })
        .collect()
}

/// How the test gives space back.
enum Free {
    /// Delete the 4 MB file written before the server started.
    Filler,
    /// Grow the tmpfs to this size.
    Grow(&'static str),
}

/// Fills the disk, checks the refusal and `/healthz` (and, if asked, that a restart on the full
/// disk works and keeps everything), gives space back, checks that mail is taken again without
/// a restart, restarts, and checks that nothing acknowledged was lost. Returns the figures.
async fn fill_and_recover(
    fs: &Tmpfs,
    reserve: u64,
    free: Free,
    restart_while_full: bool,
) -> String {
    let data = fs.path().join("data");
    std::fs::create_dir(&data).expect("data dir");
    // Room that the test gives back later, as an administrator deleting a big file would.
    let filler = fs.path().join("filler");
    std::fs::write(&filler, vec![0x55u8; 4 << 20]).expect("filler");

    let mut server = start(data.clone(), reserve).await;
    account(&server.running.store, "bob@localhost", 0).await;
    let mut acknowledged: Vec<String> = Vec::new();
    let mut c = connect(&server, "smtp").await;
    c.expect("EHLO client.remote.example", 250, "").await;

    // Fill: 64 KB messages until the server refuses one.
    let started = Instant::now();
    let mut n = 0;
    let refusal = loop {
        assert!(
            n < 2000 && started.elapsed() < Duration::from_secs(120),
            "the server never refused mail on a full disk ({n} accepted)"
        );
        let (code, text) = deliver(&mut c, &message(n, 64 << 10)).await;
        match code {
            250 => acknowledged.push(format!("fill-{n}")),
            _ => break (code, text),
        }
        n += 1;
    };
    let accepted_full = acknowledged.len();
    assert_eq!(
        refusal.0, 452,
        "a full disk is a temporary condition: 452, got {refusal:?} after {accepted_full} messages"
    );
    assert!(
        refusal.1.contains("4.3.1") && refusal.1.contains("nsufficient system storage"),
        "{refusal:?}"
    );
    let free_when_full = fs.free();
    // The session goes on, and a second try while full is refused the same way.
    let (code, text) = deliver(&mut c, &message(n, 64 << 10)).await;
    assert_eq!(code, 452, "{text}");
    n += 1;

    let (status, body) = healthz(&server).await;
    assert_eq!(status, 503, "/healthz while the disk is full: {body}");
    assert!(
        body.contains("storage"),
        "/healthz gives its reason: {body}"
    );
    let healthz_full = body.trim().to_string();

    // IMAP APPEND goes through the same delivery path: a temporary NO with the reason.
    let mut imap = crate::imap::connect(&server).await;
    imap.ok("LOGIN bob@localhost secret").await;
    let raw = message(n, 64 << 10);
    n += 1;
    imap.send(format!("ap APPEND INBOX {{{}+}}\r\n", raw.len()).as_bytes())
        .await;
    imap.send(&raw).await;
    imap.send(b"\r\n").await;
    let (_, appended) = imap.until("ap").await;
    assert_eq!(
        appended, "TAG NO [UNAVAILABLE] the server is short of storage; try again later",
        "APPEND on the full disk"
    );
    imap.ok("LOGOUT").await;

    if restart_while_full {
        // A stop and a start on the full disk: the shutdown's checkpoint and the start (WAL
        // recovery, shared-memory file, quick_check) fit in the reserve, and nothing is lost.
        c.expect("QUIT", 221, "").await;
        server.running.shutdown().await;
        server = start(data.clone(), reserve).await;
        let mut now = stored(&server).await;
        now.sort();
        let mut expected = acknowledged.clone();
        expected.sort();
        assert_eq!(
            now, expected,
            "everything acknowledged, after a restart on the full disk"
        );
        c = connect(&server, "smtp").await;
        c.expect("EHLO client.remote.example", 250, "").await;
        // The shutdown's checkpoint may have made a little room (the WAL kept older copies of
        // pages); the disk is full again within a few messages.
        let mut more = 0;
        loop {
            let (code, text) = deliver(&mut c, &message(n, 64 << 10)).await;
            n += 1;
            if code == 452 {
                break;
            }
            assert_eq!(code, 250, "{text}");
            acknowledged.push(format!("fill-{}", n - 1));
            more += 1;
            assert!(more < 20, "the disk is still nearly full after the restart");
        }
        let (status, body) = healthz(&server).await;
        assert_eq!(status, 503, "/healthz after the restart: {body}");
    }

    // Space returns: no restart, the same session, mail is taken again within seconds.
    let how = match free {
        Free::Filler => {
            std::fs::remove_file(&filler).expect("remove filler");
            "deleting a 4 MB file".to_string()
        }
        Free::Grow(size) => {
            fs.grow(size);
            format!("growing the disk to {size}")
        }
    };
    let freed = Instant::now();
    // A new session for each try: a session ends after ten errors.
    c.expect("QUIT", 221, "").await;
    loop {
        let mut retry = connect(&server, "smtp").await;
        retry.expect("EHLO client.remote.example", 250, "").await;
        let (code, text) = deliver(&mut retry, &message(n, 64 << 10)).await;
        n += 1;
        if code == 250 {
            acknowledged.push(format!("fill-{}", n - 1));
            c = retry;
            break;
        }
        assert_eq!(code, 452, "{text}");
        assert!(
            freed.elapsed() < Duration::from_secs(10),
            "still refused 10 s after space was freed: {text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let recovered_in = freed.elapsed();
    for _ in 0..5 {
        let (code, text) = deliver(&mut c, &message(n, 16 << 10)).await;
        assert_eq!(code, 250, "after recovery: {text}");
        acknowledged.push(format!("fill-{n}"));
        n += 1;
    }
    let (status, body) = healthz(&server).await;
    assert_eq!(status, 200, "/healthz once space is back: {body}");
    c.expect("QUIT", 221, "").await;

    let mut before = stored(&server).await;
    server.running.shutdown().await;

    // A restart on the same (still small) disk keeps everything acknowledged.
    let server = start(data, reserve).await;
    let mut after = stored(&server).await;
    server.running.shutdown().await;
    before.sort();
    after.sort();
    acknowledged.sort();
    assert_eq!(after, acknowledged, "every 250 is stored after the restart");
    assert_eq!(before, after);
    format!(
        "accepted {accepted_full} messages of 64 KB, then {} {:?} with {free_when_full} bytes \
         free, /healthz {healthz_full:?}; after {how}, mail was taken again in {recovered_in:?}; {} stored after the \
         restart",
        refusal.0,
        refusal.1,
        after.len()
    )
}

/// No reserve: SQLite itself runs out of space at COMMIT (`SQLITE_FULL`). This is the wedge of
/// the issue: the writer connection was left inside a transaction that SQLite had already
/// rolled back, and every later write failed until a restart.
#[tokio::test]
async fn sqlite_full_at_commit_is_452_and_recovers_without_restart() {
    let Some(fs) = Tmpfs::mount("20m") else {
        return;
    };
    // A completely full disk also stops SQLite's checkpoint, which then spends freed space
    // on a partial copy: give back more than that (the reserve of the next test prevents it).
    let figures = fill_and_recover(&fs, 0, Free::Grow("64m"), false).await;
    eprintln!("no reserve: {figures}");
}

/// With a reserve, mail is refused while free space is below it, before SQLite runs out.
#[tokio::test]
async fn below_the_reserve_mail_is_refused_with_452_and_taken_again_when_space_returns() {
    let Some(fs) = Tmpfs::mount("20m") else {
        return;
    };
    let figures = fill_and_recover(&fs, 3 << 20, Free::Filler, true).await;
    eprintln!("reserve of 3 MiB: {figures}");
}
