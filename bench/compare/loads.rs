//! The loads, the same for both servers: SMTP ingest timed until the mailbox holds every
//! message, IMAP APPEND fills, the timed IMAP and POP3 commands, and idle IMAP sessions.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::client::{Endpoints, Imap, Pop3, Smtp, search_hits};

pub const DOMAIN: &str = "example.org";
pub const INGEST_USER: &str = "ingest@example.org";
pub const IMAP_USER: &str = "imap@example.org";
pub const POP3_USER: &str = "pop@example.org";
pub const USERS: [&str; 3] = [INGEST_USER, IMAP_USER, POP3_USER];

/// The churn row's account for client `c`: each client has its own small INBOX.
pub fn churn_user(c: usize) -> String {
    format!("churn{c}@{DOMAIN}")
}

/// The ingest row's account for round `round`: each round fills an empty INBOX (a growing
/// one slowed Dovecot's later rounds by half, which would flatter us).
pub fn ingest_user(round: usize) -> String {
    match round {
        0 => INGEST_USER.to_string(),
        r => format!("ingest{r}@{DOMAIN}"),
    }
}

/// Every account both servers get: [`USERS`], one per ingest round after the first, one
/// per churn client, and the outbound rows' senders (one per client).
pub fn all_users(sizes: &Sizes) -> Vec<String> {
    let outbound_senders = match sizes.groups.has(Group::Outbound) {
        true => sizes.clients,
        false => 0,
    };
    USERS
        .iter()
        .map(|u| u.to_string())
        .chain((1..sizes.ingest_runs).map(ingest_user))
        .chain((0..sizes.churn_clients).map(churn_user))
        .chain((0..outbound_senders).map(crate::outbound::sender))
        .collect()
}

/// The word 1% of the IMAP messages mention, in the subject and the body.
pub use crate::corpus::RARE;

/// How big each load is (environment variables shrink it for a quick run).
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    pub ingest: usize,
    /// Rounds of the ingest load; the median counts.
    pub ingest_runs: usize,
    pub clients: usize,
    pub imap: usize,
    pub pop3: usize,
    pub idle: usize,
    pub reps: usize,
    /// Which groups of rows run (`COMPARE_ROWS`).
    pub groups: Groups,
    /// The churn row: concurrent clients and how long they loop.
    pub churn_clients: usize,
    pub churn_secs: u64,
    /// Both servers' auth cache lifetime (0: both off), so the churn row can be taken with
    /// and without it.
    pub auth_cache_secs: u64,
    /// The scale rows' mailboxes and accounts.
    pub scale: crate::scale::Size,
    /// The outbound rows: messages submitted per round, and rounds (the median counts).
    pub outbound: usize,
    pub outbound_runs: usize,
}

/// The groups of rows `COMPARE_ROWS` selects from, each with the loads it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// SMTP ingest.
    Ingest,
    /// The IMAP fill and the timed IMAP commands.
    Imap,
    /// The POP3 fill and the timed POP3 commands.
    Pop3,
    /// Idle memory and the idle IMAP sessions.
    Memory,
    /// Connection churn: LOGIN ... LOGOUT in a loop.
    Churn,
    /// Submission, DKIM signing, the queue and delivery to other servers (compare/outbound.rs).
    Outbound,
    /// Big mailboxes, many accounts and start-up, on servers of their own.
    Scale,
}

pub const GROUPS: [(Group, &str); 7] = [
    (Group::Ingest, "ingest"),
    (Group::Imap, "imap"),
    (Group::Pop3, "pop3"),
    (Group::Memory, "memory"),
    (Group::Churn, "churn"),
    (Group::Outbound, "outbound"),
    (Group::Scale, "scale"),
];

/// A set of [`Group`]s.
#[derive(Clone, Copy, Debug)]
pub struct Groups(u8);

impl Groups {
    pub const ALL: Groups = Groups(0b111_1111);

    /// `COMPARE_ROWS`: comma-separated group names; empty means all.
    pub fn parse(text: &str) -> Result<Groups, String> {
        let mut bits = 0u8;
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let i = GROUPS.iter().position(|(_, n)| *n == name).ok_or_else(|| {
                let names: Vec<&str> = GROUPS.iter().map(|(_, n)| *n).collect();
                format!(
                    "COMPARE_ROWS: unknown group {name:?} (known: {})",
                    names.join(",")
                )
            })?;
            bits |= 1 << i;
        }
        Ok(if bits == 0 { Groups::ALL } else { Groups(bits) })
    }

    /// Whether a group other than `group` is in the set.
    pub fn any_but(self, group: Group) -> bool {
        GROUPS.iter().any(|(g, _)| *g != group && self.has(*g))
    }

    pub fn has(self, group: Group) -> bool {
        GROUPS
            .iter()
            .position(|(g, _)| *g == group)
            .is_some_and(|i| self.0 & (1 << i) != 0)
    }

    pub fn names(self) -> String {
        GROUPS
            .iter()
            .filter(|(g, _)| self.has(*g))
            .map(|(_, n)| *n)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The IMAP message `i` (bench/imap.rs's: 1% mention RARE).
pub fn imap_message(i: usize) -> Vec<u8> {
    crate::corpus::report(i, IMAP_USER)
}

/// The POP3 message `i` (bench/pop3.rs's).
pub fn pop3_message(i: usize) -> Vec<u8> {
    crate::corpus::plain(i, POP3_USER)
}

/// The SMTP message `i` of `client` (~4 KB, as bench/smtp.rs sends them).
pub fn smtp_message(to: &str, client: usize, i: usize) -> Vec<u8> {
    let mut m = format!(
        "From: Sender {client} <s{client}@remote.example>\r\nTo: {to}\r\n\
         Subject: bench message {client}-{i}\r\nMessage-ID: <{client}.{i}@remote.example>\r\n\
         Date: Thu, 26 Nov 2026 10:00:00 +0000\r\n\r\n"
    );
    let mut n = 0;
    while m.len() < 4096 - 70 {
        m.push_str(&format!(
            "Line {n} of the message: lorem ipsum dolor sit amet, consectetur.\r\n"
        ));
        n += 1;
    }
    m.into_bytes()
}

pub struct Ingest {
    /// Until the last 250.
    pub accepted: Duration,
    /// Until STATUS INBOX (MESSAGES) counted every message.
    pub in_mailbox: Duration,
}

/// `sizes.ingest` messages from `sizes.clients` concurrent SMTP clients to the round's
/// account ([`ingest_user`]), timed until an IMAP client polling STATUS every 50 ms sees them
/// all in its INBOX.
pub async fn ingest(ep: &Endpoints, sizes: Sizes, round: usize) -> Result<Ingest> {
    let user = ingest_user(round);
    let mut poll = Imap::login(ep.imap, &user, &ep.password).await?;
    let before = poll.messages().await?;
    if before != 0 {
        bail!("{user}'s INBOX already holds {before} messages");
    }
    let total = sizes.ingest;
    let started = Instant::now();
    let mut clients = Vec::new();
    for c in 0..sizes.clients {
        let count = total / sizes.clients + usize::from(c < total % sizes.clients);
        let addr = ep.smtp;
        let user = user.clone();
        clients.push(tokio::spawn(async move {
            let mut s = Smtp::connect(addr).await?;
            for i in 0..count {
                s.send(
                    &format!("s{c}@remote.example"),
                    &user,
                    &smtp_message(&user, c, i),
                )
                .await
                .with_context(|| format!("SMTP client {c}, message {i}"))?;
            }
            s.quit().await;
            anyhow::Ok(())
        }));
    }
    let poller = tokio::spawn(async move {
        let (mut last, mut progress) = (0, Instant::now());
        loop {
            let n = poll.messages().await?;
            if n >= total {
                return anyhow::Ok(started.elapsed());
            }
            if n != last {
                (last, progress) = (n, Instant::now());
            } else if progress.elapsed() > Duration::from_secs(120) {
                bail!("the INBOX stayed at {n} of {total} messages for 2 minutes");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    for c in clients {
        if let Err(e) = c.await.context("SMTP client task")? {
            poller.abort();
            return Err(e);
        }
    }
    let accepted = started.elapsed();
    let in_mailbox = poller.await.context("poller task")??;
    Ok(Ingest {
        accepted,
        in_mailbox,
    })
}

/// Fills `user`'s INBOX with messages 0..n of `message` by IMAP APPEND from 8 connections.
pub async fn fill(
    ep: &Endpoints,
    user: &'static str,
    n: usize,
    message: fn(usize) -> Vec<u8>,
) -> Result<Duration> {
    let workers = 8;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let ep = ep.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = Imap::login(ep.imap, user, &ep.password).await?;
            for i in (w..n).step_by(workers) {
                c.append(&message(i))
                    .await
                    .with_context(|| format!("APPEND of message {i} for {user}"))?;
            }
            c.cmd("LOGOUT").await?;
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await.context("APPEND task")??;
    }
    let took = started.elapsed();
    let mut c = Imap::login(ep.imap, user, &ep.password).await?;
    let stored = c.messages().await?;
    if stored != n {
        bail!("{user}'s INBOX holds {stored} messages after appending {n}");
    }
    c.cmd("LOGOUT").await?;
    Ok(took)
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// Medians, in ms, of the timed steps, in a fixed order (labels are the table's).
pub type Timings = Vec<(String, f64)>;

/// The IMAP commands on IMAP_USER's INBOX of `n` messages: one warm-up run, then
/// `reps` runs, each on a fresh connection; the median of each step over the runs.
pub async fn imap_timings(ep: &Endpoints, n: usize, reps: usize) -> Result<Timings> {
    let bodies = 1000.min(n);
    let steps: Vec<(String, String)> = vec![
        (format!("IMAP SELECT ({n} msgs)"), "SELECT INBOX".into()),
        (
            "IMAP UID FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE)".into(),
            "UID FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE)".into(),
        ),
        (
            format!("IMAP FETCH {bodies} full bodies"),
            format!("FETCH 1:{bodies} BODY.PEEK[]"),
        ),
        (
            "IMAP UID SEARCH SUBJECT (1% match)".into(),
            format!("UID SEARCH SUBJECT {RARE}"),
        ),
        (
            "IMAP UID SEARCH BODY (1% match)".into(),
            format!("UID SEARCH BODY {RARE}"),
        ),
        (
            "IMAP UID SEARCH TEXT (1% match)".into(),
            format!("UID SEARCH TEXT {RARE}"),
        ),
        ("IMAP STORE 1:* +/-FLAGS (all)".into(), String::new()),
    ];
    let want_hits = (0..n).filter(|i| i % 100 == 7).count();
    let mut runs: Vec<Vec<f64>> = vec![Vec::new(); steps.len()];
    for run in 0..=reps {
        let mut c = Imap::login(ep.imap, IMAP_USER, &ep.password).await?;
        for (k, (label, command)) in steps.iter().enumerate() {
            let command = if command.is_empty() {
                // Alternate so that every run changes every message.
                let sign = if run % 2 == 0 { '+' } else { '-' };
                format!("STORE 1:* {sign}FLAGS (\\Flagged)")
            } else {
                command.clone()
            };
            let t = Instant::now();
            let (_, kept) = c
                .cmd_keep(&command, "* SEARCH")
                .await
                .with_context(|| label.clone())?;
            let took = ms(t);
            if command.contains("SEARCH") && search_hits(&kept) != want_hits {
                bail!(
                    "{command} found {} messages, expected {want_hits}",
                    search_hits(&kept)
                );
            }
            if run > 0 {
                runs[k].push(took);
            }
        }
        c.cmd("LOGOUT").await?;
    }
    Ok(steps
        .into_iter()
        .zip(runs)
        .map(|((label, _), v)| (label, median(v)))
        .collect())
}

/// POP3 on POP3_USER's maildrop of `n` messages: STAT, LIST, UIDL, RETR of every message;
/// one warm-up session, then `reps` sessions; medians.
pub async fn pop3_timings(ep: &Endpoints, n: usize, reps: usize) -> Result<Timings> {
    let labels = [
        format!("POP3 STAT ({n} msgs)"),
        "POP3 LIST".to_string(),
        "POP3 UIDL".to_string(),
        format!("POP3 RETR all {n}"),
    ];
    let mut runs: Vec<Vec<f64>> = vec![Vec::new(); labels.len()];
    for run in 0..=reps {
        let mut c = Pop3::login(ep.pop3, POP3_USER, &ep.password).await?;
        let mut took = Vec::new();
        let t = Instant::now();
        let stat = c.cmd("STAT").await?;
        took.push(ms(t));
        if stat.split_whitespace().nth(1) != Some(&n.to_string()) {
            bail!("POP3 STAT says {stat:?}, expected {n} messages");
        }
        for command in ["LIST", "UIDL"] {
            let t = Instant::now();
            c.cmd(command).await?;
            c.body(command).await?;
            took.push(ms(t));
        }
        let t = Instant::now();
        for i in 1..=n {
            c.cmd(&format!("RETR {i}")).await?;
            c.body("RETR").await?;
        }
        took.push(ms(t));
        c.cmd("QUIT").await?;
        if run > 0 {
            for (k, v) in took.into_iter().enumerate() {
                runs[k].push(v);
            }
        }
    }
    Ok(labels
        .into_iter()
        .zip(runs)
        .map(|(label, v)| (label, median(v)))
        .collect())
}

/// Opens `count` IMAP sessions that log in as IMAP_USER, select INBOX and IDLE, 8 logging in
/// at a time. Returns them (to keep them open) and how long opening them took.
pub async fn idle_sessions(ep: &Endpoints, count: usize) -> Result<(Vec<Imap>, Duration)> {
    let started = Instant::now();
    let mut sessions = Vec::with_capacity(count);
    let mut pending = Vec::new();
    for i in 0..count {
        let ep = ep.clone();
        pending.push(tokio::spawn(async move {
            let mut c = Imap::login(ep.imap, IMAP_USER, &ep.password).await?;
            c.idle().await?;
            anyhow::Ok(c)
        }));
        if pending.len() == 8 || i + 1 == count {
            for p in pending.drain(..) {
                let c = p
                    .await
                    .context("idle session task")?
                    .with_context(|| format!("idle session {} of {count}", sessions.len() + 1))?;
                sessions.push(c);
            }
        }
        if (i + 1) % 250 == 0 {
            eprintln!("  {} idle sessions open", i + 1);
        }
    }
    Ok((sessions, started.elapsed()))
}

/// Messages each churn client's INBOX holds while it loops (each cycle appends one and
/// expunges one).
pub const CHURN_MESSAGES: usize = 20;

pub struct Churn {
    /// Completed cycles, all clients together.
    pub cycles: usize,
    /// From the start until the last client finished its last cycle.
    pub took: Duration,
    /// Median and 99th percentile of one whole cycle, ms.
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Connection churn, as mail clients that poll do it: `sizes.churn_clients` clients, each on
/// its own account, loop for `sizes.churn_secs` over a fresh connection that does LOGIN,
/// SELECT INBOX, FETCH 1:* FLAGS, STORE 1 +FLAGS (\Deleted), APPEND of one ~4 KB message,
/// EXPUNGE and LOGOUT (the INBOX stays at [`CHURN_MESSAGES`]). Returns the cycles done.
pub async fn churn(ep: &Endpoints, sizes: Sizes) -> Result<Churn> {
    // Each INBOX filled first, untimed.
    for c in 0..sizes.churn_clients {
        let user = churn_user(c);
        let mut imap = Imap::login(ep.imap, &user, &ep.password).await?;
        let have = imap.messages().await?;
        for i in have..CHURN_MESSAGES {
            imap.append(&crate::corpus::plain(i, &user)).await?;
        }
        imap.cmd("LOGOUT").await?;
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs(sizes.churn_secs);
    let mut tasks = Vec::new();
    for c in 0..sizes.churn_clients {
        let ep = ep.clone();
        tasks.push(tokio::spawn(async move {
            let user = churn_user(c);
            let mut cycle_ms = Vec::new();
            let mut i = CHURN_MESSAGES;
            while Instant::now() < deadline {
                let t = Instant::now();
                let mut imap = Imap::login(ep.imap, &user, &ep.password).await?;
                imap.cmd("SELECT INBOX").await?;
                imap.cmd("FETCH 1:* FLAGS").await?;
                imap.cmd("STORE 1 +FLAGS (\\Deleted)").await?;
                imap.append(&crate::corpus::plain(i, &user))
                    .await
                    .with_context(|| format!("churn APPEND for {user}"))?;
                imap.cmd("EXPUNGE").await?;
                imap.cmd("LOGOUT").await?;
                cycle_ms.push(ms(t));
                i += 1;
            }
            anyhow::Ok(cycle_ms)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.context("churn task")??);
    }
    let took = started.elapsed();
    let cycles = all.len();
    all.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    let (p50_ms, p99_ms) = (pct(0.5), pct(0.99));
    // The mailboxes must still hold what they held: nothing lost, nothing left behind.
    for c in 0..sizes.churn_clients {
        let user = churn_user(c);
        let mut imap = Imap::login(ep.imap, &user, &ep.password).await?;
        let n = imap.messages().await?;
        if n != CHURN_MESSAGES {
            bail!("{user}'s INBOX holds {n} messages after the churn, expected {CHURN_MESSAGES}");
        }
        imap.cmd("LOGOUT").await?;
    }
    Ok(Churn {
        cycles,
        took,
        p50_ms,
        p99_ms,
    })
}
