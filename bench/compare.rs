//! `cargo bench --bench compare`: Mailroom against Postfix + Dovecot, the same loads, one
//! table.
//!
//! Runs the release `mailroom` binary (a separate process, plain listeners on free loopback
//! ports, the domain and accounts added with the CLI), then a Postfix + Dovecot pair configured
//! the same way (one virtual domain, virtual users in a passwd-file with the same argon2id
//! hashes, Maildir, Postfix delivering to Dovecot over LMTP, fsync on both, loopback, free
//! ports, everything in a temporary directory; see `compare/pair.rs`). The servers run one
//! after the other, not at once, and each gets, from the same client code:
//!
//! - SMTP ingest: `COMPARE_INGEST` (5,000) messages of 4 KB from 20 concurrent pipelining
//!   clients to one user, timed until STATUS INBOX (MESSAGES), polled every 50 ms over IMAP,
//!   counts them all, not merely until the last 250; `COMPARE_INGEST_RUNS` (3) rounds into
//!   the same INBOX, the median reported (one round's rate varied by a fifth from run to run
//!   on either side);
//! - an IMAP APPEND fill (8 connections) of `COMPARE_N` (10,000) ~4 KB messages, 1% of them
//!   mentioning a rare word (as bench/imap.rs builds them), and of `COMPARE_POP3` (2,000) for
//!   a POP3 user;
//! - the memory of the idle server after the fills: VmRSS and Pss (smaps_rollup) summed over
//!   every process (Mailroom: its one process; the pair: Postfix's and Dovecot's), measured
//!   once both have been left alone for `COMPARE_QUIET_SECS` (25) seconds (an idle server is
//!   one nobody has used for a while; Mailroom gives its caches back 15 to 21 s after its last
//!   write: `app::QUIET`, looked at every 3 s from the first look that saw the write; 20 s
//!   raced with that, and the run of 2026-12-05 13:47 read the memory just before the
//!   release) or, for the pair, longer until its per-connection processes exit;
//! - on that mailbox, each run on a fresh connection, one warm-up run and then `COMPARE_REPS`
//!   (5) runs, reporting the median: SELECT, UID FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE), FETCH
//!   of 1,000 full bodies, UID SEARCH SUBJECT / BODY / TEXT for the rare word, STORE on all
//!   (+FLAGS and -FLAGS alternately, so every run changes every message);
//! - the same UID SEARCH BODY and TEXT against Dovecot with a full-text index (the fair
//!   comparison: Mailroom's search is always indexed, the pair's Dovecot has no FTS plugin and
//!   reads every message, so its rows above are for information): Debian's
//!   `dovecot-fts-xapian` (`fts_xapian = partial=3 full=20`, `fts_autoindex`, `fts_enforced`)
//!   in a second Dovecot instance configured as the pair's, started once the pair is stopped,
//!   its one user's INBOX filled with the same `COMPARE_N` messages by IMAP APPEND (indexed as
//!   they arrive), the index completed with `doveadm index`, then timed as above (warm-up,
//!   `COMPARE_REPS` runs, median); each search must find as many messages as without the
//!   plugin. Mailroom's figures in these rows are its BODY and TEXT above, not measured again
//!   (see `compare/fts.rs`). Part of the `imap` group; installed with apt-get like the pair when
//!   missing, and when it cannot be had its rows say "-" and the table says why;
//! - POP3, the same way: STAT, LIST, UIDL, RETR of every message;
//! - `COMPARE_IDLE` (1,000) IMAP connections logged in, INBOX selected, in IDLE, and the memory
//!   of the processes serving IMAP (Mailroom's one; Dovecot's, without Postfix's). The INBOX is
//!   the `imap` group's: with `COMPARE_ROWS=memory` alone it is empty, and a session's figure
//!   is lower (Mailroom: 5.4 KiB against 7.5-10.9 with the 10,000 messages, mostly heap the
//!   burst of SELECTs leaves free but mapped, not memory the sessions hold);
//! - connection churn: `COMPARE_CHURN_CLIENTS` (10) clients, each on its own account with a
//!   20-message INBOX, loop for `COMPARE_CHURN_SECS` (60) seconds over a fresh connection doing
//!   LOGIN, SELECT, FETCH 1:* FLAGS, STORE, APPEND, EXPUNGE, LOGOUT; cycles per second. Both
//!   servers keep verified logins in an auth cache for `COMPARE_AUTH_CACHE_SECS` (300; 0 turns
//!   both caches off, for the figure without one): Mailroom's `[auth] cache_secs`, Dovecot's
//!   `auth_cache_ttl` with `auth_cache_size = 10M`;
//! - scale (`compare/scale.rs`), on a server of its own per side: `COMPARE_SCALE_SMALL`
//!   (10,000) and `COMPARE_SCALE` (100,000) message INBOXes and `COMPARE_ACCOUNTS` (10,000)
//!   accounts of `COMPARE_ACCOUNT_MSGS` (100) messages, stored without the clock running
//!   (Mailroom's through the library's delivery path with the server down, Dovecot's as
//!   Maildir files then `doveadm force-resync`); on the big INBOX, on the small one (to show
//!   the growth) and on one of the accounts: SELECT, UID FETCH 1:* (FLAGS), UID FETCH of the
//!   last 50 envelopes, UID SEARCH SUBJECT / BODY, STORE of 1,000 and POP3 STAT / UIDL,
//!   medians as above; then the time from the start command to every listener accepting,
//!   after a clean stop and after SIGKILL of every process (recovery), and a check that the
//!   big INBOX still holds every message;
//! - outbound: `COMPARE_OUT` (5,000) messages of ~4 KB submitted from `COMPARE_CLIENTS` (20)
//!   concurrent clients with AUTH PLAIN on the submission listener, each to one recipient in
//!   one of 20 remote domains, DKIM-signed (RSA-2048 and Ed25519, two signatures per message),
//!   queued durably and delivered to a sink MX on loopback, timed until the sink has them all
//!   and failed unless every message arrived with both signatures; `COMPARE_OUT_RUNS` (3)
//!   rounds, the median reported. Against Postfix with OpenDKIM (installed with apt-get when
//!   missing): a submission service with SASL through the pair's Dovecot, two OpenDKIM milters
//!   run by the bench (one per algorithm: OpenDKIM signs with one algorithm per process), the
//!   20 domains routed to the sink by `transport_maps` (no MX lookups, in Postfix's favour;
//!   Mailroom resolves them through a DNS server the bench runs on loopback). See
//!   `compare/outbound.rs`.
//!
//! Progress goes to stderr; the table, the versions and the machine to stdout. When Postfix
//! and Dovecot are missing and cannot be installed (the bench installs them with apt-get when
//! run as root), the table has Mailroom's column alone and says why. `COMPARE_ONLY=mailroom`
//! (or `pair`) runs one side only; `COMPARE_DIR` picks the directory for the data (default
//! /var/tmp: a real disk, so fsync costs what it costs); `COMPARE_BIN` runs another `mailroom`
//! binary in place of the one cargo built (a previous commit's, to compare a change).
//! `COMPARE_ROWS` runs some groups of rows only, comma-separated from `ingest`, `imap`,
//! `pop3`, `memory`, `churn`, `outbound` and `scale` (default: all); e.g.
//! `COMPARE_ROWS=churn`.

// Test and bench code: a failed assumption is a failed run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};

#[path = "compare/client.rs"]
mod client;
#[path = "common/corpus.rs"]
mod corpus;
#[allow(dead_code)] // the test DNS server offers more record types than the bench needs
#[path = "../tests/it/dns_server.rs"]
mod dns_server;
#[path = "compare/fts.rs"]
mod fts;
#[path = "compare/loads.rs"]
mod loads;
#[path = "compare/mailroom.rs"]
mod mailroom_server;
#[path = "compare/outbound.rs"]
mod outbound;
#[path = "compare/pair.rs"]
mod pair;
#[path = "compare/procs.rs"]
mod procs;
#[path = "compare/scale.rs"]
mod scale;
#[path = "compare/server.rs"]
mod server;
#[path = "common/sink.rs"]
mod sink;
#[path = "compare/table.rs"]
mod table;

use client::Endpoints;
use loads::{Group, Groups, Sizes};
use server::Memory;

const PASSWORD: &str = "compare-bench-secret";

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Everything measured on one server (`None`, or empty, for the groups not run).
#[derive(Default)]
pub struct Figures {
    pub ingest: Option<loads::Ingest>,
    pub fill_imap: Option<Duration>,
    pub idle: Option<Memory>,
    pub imap: loads::Timings,
    pub pop3: loads::Timings,
    pub sessions: Option<Memory>,
    /// The IMAP server's memory just before the idle sessions were opened.
    pub before_sessions: Option<Memory>,
    pub churn: Option<loads::Churn>,
    pub scale: Option<scale::Scale>,
    pub outbound: Option<outbound::Outbound>,
    /// SEARCH BODY/TEXT against Dovecot with fts-xapian (`compare/fts.rs`).
    pub fts: Option<fts::Fts>,
}

fn mib(m: procs::Mem) -> String {
    format!(
        "RSS {:.1} MiB, PSS {:.1} MiB over {} process(es)",
        m.rss_kib as f64 / 1024.0,
        m.pss_kib as f64 / 1024.0,
        m.procs
    )
}

/// The loads of the groups `sizes.groups` selects, in order, against one server.
async fn measure(
    name: &str,
    ep: &Endpoints,
    memory: impl Fn() -> Memory,
    transient: impl Fn() -> Vec<String>,
    processes: impl Fn() -> String,
    sizes: Sizes,
) -> Result<Figures> {
    let groups = sizes.groups;
    let mut figures = Figures {
        ingest: None,
        fill_imap: None,
        idle: None,
        imap: Vec::new(),
        pop3: Vec::new(),
        sessions: None,
        before_sessions: None,
        churn: None,
        scale: None,
        outbound: None,
        fts: None,
    };
    if groups.has(Group::Ingest) {
        eprintln!(
            "[{name}] SMTP ingest: {} x 4 KB from {} clients to {} ...",
            sizes.ingest,
            sizes.clients,
            loads::INGEST_USER
        );
        let mut rounds = Vec::new();
        for round in 0..sizes.ingest_runs {
            let ingest = loads::ingest(ep, sizes, round)
                .await
                .context("SMTP ingest")?;
            eprintln!(
                "[{name}]   round {}: all accepted after {:.2} s, all in the mailbox after {:.2} s",
                round + 1,
                ingest.accepted.as_secs_f64(),
                ingest.in_mailbox.as_secs_f64()
            );
            rounds.push(ingest);
        }
        rounds.sort_by_key(|i| i.in_mailbox);
        figures.ingest = rounds.into_iter().nth(sizes.ingest_runs / 2);
    }
    if groups.has(Group::Outbound) {
        eprintln!(
            "[{name}] outbound: {} x 4 KB from {} clients with AUTH to {} domains, DKIM-signed, \
             to the sink MX ...",
            sizes.outbound,
            sizes.clients,
            outbound::DOMAINS
        );
        let out = outbound::run(name, ep, sizes).await.context("outbound")?;
        figures.outbound = Some(out);
    }
    if groups.has(Group::Imap) {
        eprintln!("[{name}] IMAP APPEND of {} messages ...", sizes.imap);
        let fill_imap = loads::fill(ep, loads::IMAP_USER, sizes.imap, loads::imap_message)
            .await
            .context("IMAP fill")?;
        eprintln!("[{name}]   {:.1} s", fill_imap.as_secs_f64());
        figures.fill_imap = Some(fill_imap);
    }
    if groups.has(Group::Pop3) {
        eprintln!(
            "[{name}] IMAP APPEND of {} messages for POP3 ...",
            sizes.pop3
        );
        let fill_pop3 = loads::fill(ep, loads::POP3_USER, sizes.pop3, loads::pop3_message)
            .await
            .context("POP3 fill")?;
        eprintln!("[{name}]   {:.1} s", fill_pop3.as_secs_f64());
    }
    eprintln!("[{name}] right after the fill: {}", mib(memory().all));

    if groups.has(Group::Imap) {
        eprintln!(
            "[{name}] IMAP commands: 1 warm-up + {} runs on fresh connections ...",
            sizes.reps
        );
        figures.imap = loads::imap_timings(ep, sizes.imap, sizes.reps)
            .await
            .context("IMAP commands")?;
        for (label, ms) in &figures.imap {
            eprintln!("[{name}]   {label:<50} {ms:>10.1} ms");
        }
    }
    if groups.has(Group::Pop3) {
        eprintln!("[{name}] POP3: 1 warm-up + {} sessions ...", sizes.reps);
        figures.pop3 = loads::pop3_timings(ep, sizes.pop3, sizes.reps)
            .await
            .context("POP3")?;
        for (label, ms) in &figures.pop3 {
            eprintln!("[{name}]   {label:<50} {ms:>10.1} ms");
        }
    }
    if groups.has(Group::Churn) {
        eprintln!(
            "[{name}] IMAP churn: {} clients, LOGIN ... LOGOUT in a loop for {} s (auth cache \
             {} s) ...",
            sizes.churn_clients, sizes.churn_secs, sizes.auth_cache_secs
        );
        let churn = loads::churn(ep, sizes).await.context("IMAP churn")?;
        eprintln!(
            "[{name}]   {} cycles in {:.1} s: {:.1} cycles/s; one cycle p50 {:.1} ms, p99 {:.1} ms",
            churn.cycles,
            churn.took.as_secs_f64(),
            churn.cycles as f64 / churn.took.as_secs_f64(),
            churn.p50_ms,
            churn.p99_ms
        );
        figures.churn = Some(churn);
    }
    if !groups.has(Group::Memory) {
        return Ok(figures);
    }

    // Idle: no connection open, and the pair's per-connection processes (smtpd, cleanup,
    // lmtp, ...) gone on their idle timeouts (Postfix's max_idle is 100 s).
    let settling = std::time::Instant::now();
    let mut said = 0;
    loop {
        let left = transient();
        if left.is_empty() {
            break;
        }
        let waited = settling.elapsed().as_secs();
        if waited >= 150 {
            eprintln!("[{name}]   still there after 150 s: {}", left.join(", "));
            break;
        }
        if waited >= said + 30 {
            said = waited;
            eprintln!("[{name}]   waiting for {}", left.join(", "));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let quiet = Duration::from_secs(env("COMPARE_QUIET_SECS", 25) as u64);
    tokio::time::sleep(
        quiet
            .saturating_sub(settling.elapsed())
            .max(Duration::from_secs(1)),
    )
    .await;
    let idle = memory();
    eprintln!(
        "[{name}] idle ({:.0} s after the last load; the pair's per-connection processes gone): {}",
        settling.elapsed().as_secs_f64(),
        mib(idle.all)
    );
    let before_sessions = memory();
    eprintln!(
        "[{name}] opening {} IMAP sessions (LOGIN, SELECT INBOX, IDLE), 8 at a time; IMAP \
         processes before: {}",
        sizes.idle,
        mib(before_sessions.imap)
    );
    let (open, took) = loads::idle_sessions(ep, sizes.idle)
        .await
        .context("idle IMAP sessions")?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sessions = memory();
    eprintln!(
        "[{name}]   opened in {:.1} s; IMAP processes now: {} ({:.1} KiB RSS more per session)",
        took.as_secs_f64(),
        mib(sessions.imap),
        sessions
            .imap
            .rss_kib
            .saturating_sub(before_sessions.imap.rss_kib) as f64
            / sizes.idle.max(1) as f64
    );
    let peak = processes();
    if !peak.is_empty() {
        eprintln!("[{name}]   processes now: {peak}");
    }
    drop(open);
    figures.idle = Some(idle);
    figures.sessions = Some(sessions);
    figures.before_sessions = Some(before_sessions);
    Ok(figures)
}

/// The scale rows on a Mailroom of their own: the database filled with the server down, then
/// started (the first start, which may still build what older data lacks, is not the figure),
/// measured, stopped with SIGTERM and started again (the start-up row), then killed with SIGKILL
/// and started again (the recovery row), and checked to still hold every message.
async fn scale_mailroom(
    dir: &std::path::Path,
    hash: &str,
    connections: usize,
    sizes: Sizes,
) -> Result<scale::Scale> {
    let size = sizes.scale;
    let configured = mailroom_server::Mailroom::configure(dir, PASSWORD, connections, &sizes)
        .await
        .context("configuring Mailroom")?;
    eprintln!(
        "[Mailroom] scale: storing {} messages in {} accounts (server down) ...",
        size.total_messages(),
        size.accounts + 2
    );
    let fill = scale::fill_mailroom(&configured.db(), size, hash).await?;
    eprintln!("[Mailroom]   {:.0} s", fill.as_secs_f64());
    let m = configured.serve().await?;
    let (small, large, account) = scale::measure("Mailroom", &m.ep, size, sizes.reps)
        .await
        .map_err(|e| anyhow!("{e:#}\n{}", procs::tail(&m.log, 30)))?;
    drop(m);
    let t = std::time::Instant::now();
    let mut m = configured.serve().await?;
    let start = t.elapsed();
    m.kill9();
    let t = std::time::Instant::now();
    let m = configured.serve().await?;
    let recover = t.elapsed();
    scale_finish(
        "Mailroom",
        &m.ep,
        size,
        (small, large, account),
        start,
        recover,
    )
    .await
}

/// The scale rows on a Postfix+Dovecot pair of their own, as [`scale_mailroom`].
async fn scale_pair(
    dir: &std::path::Path,
    hash: &str,
    connections: usize,
    sizes: Sizes,
) -> Result<scale::Scale> {
    let size = sizes.scale;
    let mut p = pair::Pair::start(dir, PASSWORD, hash, connections, &sizes, &size.users())
        .await
        .context("starting Postfix+Dovecot")?;
    eprintln!(
        "[Postfix+Dovecot] scale: writing {} messages as Maildir files ...",
        size.total_messages()
    );
    let fill = scale::fill_dovecot(&p.home, p.uid, &p.dovecot_conf, size)?;
    eprintln!("[Postfix+Dovecot]   {:.0} s", fill.as_secs_f64());
    let (small, large, account) = scale::measure("Postfix+Dovecot", &p.ep, size, sizes.reps)
        .await
        .map_err(|e| anyhow!("{e:#}\n{}", p.logs()))?;
    let start = p.restart(false).await?;
    let recover = p.restart(true).await?;
    let measured = (small, large, account);
    scale_finish("Postfix+Dovecot", &p.ep, size, measured, start, recover).await
}

/// The end of either side's scale rows: prints the start-up figures, checks that the big
/// mailbox still holds every message after the restarts, and gathers the figures.
async fn scale_finish(
    side: &str,
    ep: &Endpoints,
    size: scale::Size,
    (small, large, account): (loads::Timings, loads::Timings, loads::Timings),
    start: Duration,
    recover: Duration,
) -> Result<scale::Scale> {
    eprintln!(
        "[{side}]   start-up {:.0} ms, after SIGKILL {:.0} ms",
        start.as_secs_f64() * 1000.0,
        recover.as_secs_f64() * 1000.0
    );
    scale_still_there(ep, size).await?;
    Ok(scale::Scale {
        small,
        large,
        account,
        start,
        recover,
    })
}

/// After the restarts, the big mailbox holds every message.
async fn scale_still_there(ep: &Endpoints, size: scale::Size) -> Result<()> {
    let user = scale::mailbox_user(size.large);
    let mut c = client::Imap::login(ep.imap, &user, &ep.password).await?;
    let n = c.messages().await?;
    if n != size.large {
        anyhow::bail!(
            "{user} holds {n} messages after the restarts, not {}",
            size.large
        );
    }
    c.cmd("LOGOUT").await?;
    Ok(())
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map_or(String::new(), |k| {
            format!(", {:.1} GiB RAM", k as f64 / 1048576.0)
        });
    format!("{cores} cores (nproc), {model}{mem}")
}

async fn run() -> Result<()> {
    let sizes = Sizes {
        ingest: env("COMPARE_INGEST", 5_000),
        ingest_runs: env("COMPARE_INGEST_RUNS", 3).max(1),
        clients: env("COMPARE_CLIENTS", 20).max(1),
        imap: env("COMPARE_N", 10_000),
        pop3: env("COMPARE_POP3", 2_000),
        idle: env("COMPARE_IDLE", 1_000),
        reps: env("COMPARE_REPS", 5).max(1),
        groups: Groups::parse(&std::env::var("COMPARE_ROWS").unwrap_or_default())
            .map_err(|e| anyhow!(e))?,
        churn_clients: env("COMPARE_CHURN_CLIENTS", 10).max(1),
        churn_secs: env("COMPARE_CHURN_SECS", 60).max(1) as u64,
        auth_cache_secs: env("COMPARE_AUTH_CACHE_SECS", 300) as u64,
        scale: scale::Size {
            large: env("COMPARE_SCALE", 100_000).max(1_000),
            small: env("COMPARE_SCALE_SMALL", 10_000).max(1_000),
            accounts: env("COMPARE_ACCOUNTS", 10_000).max(1),
            account_msgs: env("COMPARE_ACCOUNT_MSGS", 100).max(1),
        },
        outbound: env("COMPARE_OUT", 5_000),
        outbound_runs: env("COMPARE_OUT_RUNS", 3).max(1),
    };
    eprintln!("row groups: {}", sizes.groups.names());
    let only = std::env::var("COMPARE_ONLY").unwrap_or_default();
    let connections = sizes.idle + sizes.clients + sizes.churn_clients + 100;
    let nofile = procs::raise_nofile((4 * connections as u64).max(65_536));
    eprintln!("open-file limit (inherited by the servers): {nofile}");
    let base = std::env::var("COMPARE_DIR").unwrap_or_else(|_| "/var/tmp".into());
    let tmp = tempfile::Builder::new()
        .prefix("mailroom-compare-")
        .tempdir_in(&base)
        .with_context(|| format!("a temporary directory in {base}"))?;
    // Postfix and Dovecot run their processes as other users: they need to get in.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))?;
    eprintln!("working in {}", tmp.path().display());
    // COMPARE_KEEP=1 keeps the directory (configurations, logs, data) for a look afterwards.
    let dir = tmp.path().to_path_buf();
    let _tmp = if std::env::var_os("COMPARE_KEEP").is_some() {
        let _ = tmp.keep();
        None
    } else {
        Some(tmp)
    };
    let hash = mailroom::auth::password::hash(PASSWORD)
        .await
        .map_err(|e| anyhow!("{e}"))?;

    // The scale rows run on servers of their own; the other groups share one per side.
    let main_rows = sizes.groups.any_but(Group::Scale);
    let mut ours = if only == "pair" {
        None
    } else if !main_rows {
        Some(Figures::default())
    } else {
        eprintln!("[Mailroom] starting the release build ...");
        let m =
            mailroom_server::Mailroom::start(&dir.join("mailroom"), PASSWORD, connections, &sizes)
                .await
                .context("starting Mailroom")?;
        let figures = measure(
            "Mailroom",
            &m.ep,
            || m.memory(),
            Vec::new,
            String::new,
            sizes,
        )
        .await;
        let mut figures =
            figures.map_err(|e| anyhow!("Mailroom: {e:#}\n{}", procs::tail(&m.log, 30)))?;
        drop(m);
        figures.fts = Some(fts::Fts::mailroom(&figures.imap));
        Some(figures)
    };
    if let (Some(figures), true) = (ours.as_mut(), sizes.groups.has(Group::Scale)) {
        figures.scale = Some(
            scale_mailroom(&dir.join("mailroom-scale"), &hash, connections, sizes)
                .await
                .context("Mailroom, scale rows")?,
        );
    }

    let pair_ok = if only == "mailroom" {
        Err("Postfix+Dovecot skipped (COMPARE_ONLY=mailroom)".to_string())
    } else {
        pair::ensure_installed()
    };
    let (mut theirs, why_not) = match pair_ok {
        Err(why) => (None, Some(why)),
        Ok(()) if !main_rows => (Some(Figures::default()), None),
        Ok(()) => {
            eprintln!("[Postfix+Dovecot] starting ({}) ...", pair::versions());
            let p = pair::Pair::start(&dir.join("pair"), PASSWORD, &hash, connections, &sizes, &[])
                .await
                .context("starting Postfix+Dovecot")?;
            let figures = measure(
                "Postfix+Dovecot",
                &p.ep,
                || p.memory(),
                || p.transient(),
                || p.processes(),
                sizes,
            )
            .await;
            match figures {
                Ok(f) => (Some(f), None),
                Err(e) => return Err(anyhow!("Postfix+Dovecot: {e:#}\n{}", p.logs())),
            }
        }
    };
    if let (Some(figures), true) = (theirs.as_mut(), sizes.groups.has(Group::Scale)) {
        figures.scale = Some(
            scale_pair(&dir.join("pair-scale"), &hash, connections, sizes)
                .await
                .context("Postfix+Dovecot, scale rows")?,
        );
    }
    // The fair column for SEARCH BODY/TEXT, once the pair is stopped: part of the IMAP group,
    // as Mailroom's figures for it are the IMAP rows' searches.
    if let Some(f) = theirs.as_mut()
        && sizes.groups.has(Group::Imap)
    {
        let fts = fts::run(&dir.join("fts"), PASSWORD, &hash, connections, &sizes).await?;
        f.fts = Some(fts);
    }

    table::print(
        &sizes,
        ours.as_ref(),
        theirs.as_ref(),
        why_not.as_deref(),
        &machine(),
    );
    Ok(())
}

fn main() -> ExitCode {
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("compare: no runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Ctrl-C or SIGTERM drops the run, and with it the servers' guards (which stop them).
    let result = rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = run() => r,
            _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
            _ = term.recv() => Err(anyhow!("terminated")),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("compare: {e:#}");
            ExitCode::FAILURE
        }
    }
}
