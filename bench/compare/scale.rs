//! The scale rows: the same commands on a 10,000- and a 100,000-message INBOX (how each figure
//! grows with the mailbox), on one account of a server with 10,000 accounts of 100 messages
//! each, and the start-up time with all that stored, after a clean stop and after a SIGKILL.
//!
//! Each side gets a server of its own for these rows, filled without the clock running and
//! without going through SMTP or IMAP (at Dovecot's ~270 APPENDs a second, 1.1 million
//! messages would take over an hour): Mailroom's database through the library's one delivery
//! path (`Store::deliver_all`, batches of [`BATCH`] in one transaction each, the path IMAP
//! MULTIAPPEND takes: body structure, threading references and the search index all written
//! as at delivery), Dovecot's Maildirs as files written directly (what its LDA would write,
//! LF line ends, `S=` and `W=` sizes in the names) and then synced with `doveadm
//! force-resync`, so its index exists before the clock starts, as it would after delivery.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::client::{Endpoints, Imap, Pop3, search_hits};
use crate::loads::{DOMAIN, RARE, Timings, median};

/// Messages per transaction when filling Mailroom's database.
const BATCH: usize = 500;

/// The INBOX of `n` messages (10,000 and 100,000).
pub fn mailbox_user(n: usize) -> String {
    format!("scale{n}@{DOMAIN}")
}

/// Account `i` of the many-accounts server.
pub fn account_user(i: usize) -> String {
    format!("acct{i}@{DOMAIN}")
}

/// Message `i` of a scale mailbox: the IMAP rows' report (1% mention [`RARE`]).
fn message(i: usize, to: &str) -> Vec<u8> {
    crate::corpus::report(i, to)
}

/// How big the scale rows are (`COMPARE_SCALE`, `COMPARE_SCALE_SMALL`, `COMPARE_ACCOUNTS`,
/// `COMPARE_ACCOUNT_MSGS`).
#[derive(Clone, Copy, Debug)]
pub struct Size {
    pub large: usize,
    pub small: usize,
    pub accounts: usize,
    pub account_msgs: usize,
}

impl Size {
    /// Every account of the scale server, the two big mailboxes first.
    pub fn users(&self) -> Vec<String> {
        [mailbox_user(self.small), mailbox_user(self.large)]
            .into_iter()
            .chain((0..self.accounts).map(account_user))
            .collect()
    }

    /// The account whose figures are taken: the one in the middle.
    pub fn measured_account(&self) -> String {
        account_user(self.accounts / 2)
    }

    /// Every mailbox: its user and how many messages it holds.
    fn mailboxes(&self) -> Vec<(String, usize)> {
        [
            (mailbox_user(self.small), self.small),
            (mailbox_user(self.large), self.large),
        ]
        .into_iter()
        .chain((0..self.accounts).map(|i| (account_user(i), self.account_msgs)))
        .collect()
    }

    pub fn total_messages(&self) -> usize {
        self.small + self.large + self.accounts * self.account_msgs
    }
}

/// Everything the scale rows measured on one server.
pub struct Scale {
    pub small: Timings,
    pub large: Timings,
    pub account: Timings,
    /// From the start command to every listener accepting, after a clean stop.
    pub start: Duration,
    /// The same after SIGKILL.
    pub recover: Duration,
}

/// Fills Mailroom's database at `db` (the server not running) with every scale account and
/// mailbox; `password_hash` for every account.
pub async fn fill_mailroom(db: &Path, size: Size, password_hash: &str) -> Result<Duration> {
    use mailroom::store::{Delivery, NewAccount, Store, Target};
    let started = Instant::now();
    let store = Store::open(db).await?;
    let mut done = 0usize;
    let mut said = Instant::now();
    for (user, n) in size.mailboxes() {
        let account = store
            .create_account(NewAccount {
                address: &user,
                password_hash,
                quota_bytes: 0,
                is_admin: false,
            })
            .await
            .with_context(|| format!("creating {user}"))?;
        let mut i = 0;
        while i < n {
            let raws: Vec<Vec<u8>> = (i..n.min(i + BATCH)).map(|k| message(k, &user)).collect();
            let batch: Vec<(Delivery<'_>, Vec<Target>)> = raws
                .iter()
                .map(|raw| {
                    (
                        Delivery {
                            raw,
                            internal_date: None,
                        },
                        vec![Target::inbox(account.id)],
                    )
                })
                .collect();
            store.deliver_all(&batch).await?;
            i += raws.len();
            done += raws.len();
        }
        if said.elapsed() > Duration::from_secs(30) {
            said = Instant::now();
            eprintln!(
                "  {done} of {} messages stored ({:.0} s)",
                size.total_messages(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    store.close().await;
    Ok(started.elapsed())
}

/// Writes every scale mailbox as Maildir files under Dovecot's `home` (owned by vmail
/// `uid`/`gid`), then has Dovecot sync the mailboxes the rows read.
pub fn fill_dovecot(
    home: &Path,
    (uid, gid): (u32, u32),
    dovecot_conf: &Path,
    size: Size,
) -> Result<Duration> {
    use std::os::unix::fs::chown;
    let started = Instant::now();
    let mut said = Instant::now();
    let mut done = 0usize;
    for (user, n) in size.mailboxes() {
        let user_home = home.join(&user);
        let maildir = user_home.join("Maildir");
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(maildir.join(sub))?;
        }
        for d in [
            user_home.clone(),
            maildir.clone(),
            maildir.join("cur"),
            maildir.join("new"),
            maildir.join("tmp"),
        ] {
            chown(&d, Some(uid), Some(gid))?;
        }
        for i in 0..n {
            let crlf = message(i, &user);
            // Stored as Dovecot stores delivered mail: LF line ends; W= is the size with CRLF.
            let lf: Vec<u8> = crlf.iter().copied().filter(|&b| b != b'\r').collect();
            let name = format!(
                "{}.M{i}P1.bench,S={},W={}:2,",
                1_764_150_000 + i,
                lf.len(),
                crlf.len()
            );
            let path = maildir.join("cur").join(name);
            std::fs::write(&path, &lf)?;
            chown(&path, Some(uid), Some(gid))?;
        }
        done += n;
        if said.elapsed() > Duration::from_secs(30) {
            said = Instant::now();
            eprintln!(
                "  {done} of {} messages written ({:.0} s)",
                size.total_messages(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    let conf = dovecot_conf.display().to_string();
    for user in [
        mailbox_user(size.small),
        mailbox_user(size.large),
        size.measured_account(),
    ] {
        let out = std::process::Command::new("doveadm")
            .args(["-c", &conf, "force-resync", "-u", &user, "INBOX"])
            .output()?;
        if !out.status.success() {
            bail!(
                "doveadm force-resync -u {user}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    Ok(started.elapsed())
}

/// The labels of [`timings`]' steps, in order.
pub const STEPS: [&str; 8] = [
    "SELECT INBOX",
    "UID FETCH 1:* (FLAGS)",
    "UID FETCH of the last 50 (ENVELOPE)",
    "UID SEARCH SUBJECT (1% match)",
    "UID SEARCH BODY (1% match)",
    "UID STORE of 1,000 +/-FLAGS",
    "POP3 STAT",
    "POP3 UIDL",
];

/// The scale steps on `user`'s INBOX of `n` messages: one warm-up run and then `reps` runs,
/// each on fresh IMAP and POP3 connections; medians, in ms, in [`STEPS`]' order. Checks what
/// each answer says (hits, FETCH count, the POP3 count).
pub async fn timings(ep: &Endpoints, user: &str, n: usize, reps: usize) -> Result<Timings> {
    let hits = (0..n).filter(|i| i % 100 == 7).count();
    let mut runs: Vec<Vec<f64>> = vec![Vec::new(); STEPS.len()];
    for run in 0..=reps {
        let mut took = Vec::new();
        let mut c = Imap::login(ep.imap, user, &ep.password).await?;
        let t = Instant::now();
        let (_, exists) = c.cmd_keep("SELECT INBOX", "* ").await?;
        took.push(ms(t));
        if !exists.iter().any(|l| *l == format!("* {n} EXISTS")) {
            bail!("{user}: SELECT did not say {n} EXISTS: {exists:?}");
        }
        let t = Instant::now();
        let (_, flags) = c.cmd_keep("UID FETCH 1:* (FLAGS)", "* ").await?;
        took.push(ms(t));
        let fetched = |lines: &[String]| lines.iter().filter(|l| l.contains(" FETCH ")).count();
        if fetched(&flags) != n {
            bail!(
                "{user}: UID FETCH 1:* (FLAGS) gave {} answers",
                fetched(&flags)
            );
        }
        // The newest 50 by sequence number, asked by UID as a client that knows UIDNEXT does.
        let (_, uids) = c
            .cmd_keep(
                &format!("FETCH {}:{n} (UID)", n.saturating_sub(49).max(1)),
                "* ",
            )
            .await?;
        let first_uid = uids
            .iter()
            .find(|l| l.contains(" FETCH "))
            .and_then(|l| l.split("UID ").nth(1))
            .and_then(|u| u.trim_end_matches(')').trim().parse::<u64>().ok())
            .with_context(|| format!("{user}: no UID in {:?}", uids.first()))?;
        let t = Instant::now();
        let (_, envelopes) = c
            .cmd_keep(&format!("UID FETCH {first_uid}:* (ENVELOPE)"), "* ")
            .await?;
        took.push(ms(t));
        if fetched(&envelopes) != 50.min(n) {
            bail!(
                "{user}: the last 50 envelopes came as {}",
                fetched(&envelopes)
            );
        }
        for key in ["SUBJECT", "BODY"] {
            let t = Instant::now();
            let (_, kept) = c
                .cmd_keep(&format!("UID SEARCH {key} {RARE}"), "* SEARCH")
                .await?;
            took.push(ms(t));
            if search_hits(&kept) != hits {
                bail!(
                    "{user}: SEARCH {key} found {}, expected {hits}",
                    search_hits(&kept)
                );
            }
        }
        let sign = if run % 2 == 0 { '+' } else { '-' };
        let from = n.saturating_sub(999).max(1);
        let t = Instant::now();
        c.cmd(&format!("STORE {from}:{n} {sign}FLAGS.SILENT (\\Flagged)"))
            .await?;
        took.push(ms(t));
        c.cmd("LOGOUT").await?;

        let mut p = Pop3::login(ep.pop3, user, &ep.password).await?;
        let t = Instant::now();
        let stat = p.cmd("STAT").await?;
        took.push(ms(t));
        if stat.split_whitespace().nth(1) != Some(&n.to_string()) {
            bail!("{user}: POP3 STAT says {stat:?}, expected {n} messages");
        }
        let t = Instant::now();
        p.cmd("UIDL").await?;
        p.body("UIDL").await?;
        took.push(ms(t));
        p.cmd("QUIT").await?;
        if run > 0 {
            for (k, v) in took.into_iter().enumerate() {
                runs[k].push(v);
            }
        }
    }
    Ok(STEPS
        .iter()
        .zip(runs)
        .map(|(label, v)| (label.to_string(), median(v)))
        .collect())
}

/// The three sets of timings of one server.
pub async fn measure(
    name: &str,
    ep: &Endpoints,
    size: Size,
    reps: usize,
) -> Result<(Timings, Timings, Timings)> {
    let mut sets = Vec::new();
    for (user, n) in [
        (mailbox_user(size.small), size.small),
        (mailbox_user(size.large), size.large),
        (size.measured_account(), size.account_msgs),
    ] {
        eprintln!("[{name}] scale: {user} ({n} messages), 1 warm-up + {reps} runs ...");
        let t = timings(ep, &user, n, reps)
            .await
            .with_context(|| format!("scale rows on {user}"))?;
        for (label, ms) in &t {
            eprintln!("[{name}]   {label:<50} {ms:>10.1} ms");
        }
        sets.push(t);
    }
    let account = sets.pop().unwrap_or_default();
    let large = sets.pop().unwrap_or_default();
    let small = sets.pop().unwrap_or_default();
    Ok((small, large, account))
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}
