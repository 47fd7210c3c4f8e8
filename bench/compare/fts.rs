//! The fair column for SEARCH BODY and TEXT: Dovecot with a full-text index, Debian's
//! `dovecot-fts-xapian` (Xapian, n-grams of 3 to 20 characters, indexed as messages arrive).
//! Mailroom's search always runs on its index, so comparing it only with a Dovecot that reads
//! every message (the pair as Debian ships it) flatters Mailroom; these rows compare like
//! with like, and the no-plugin rows stay for information.
//!
//! Dovecot's side is a second Dovecot instance next to the pair's, not a second user of it:
//! the same configuration (`pair::dovecot_conf`, the same argon2id passwd-file, Maildir,
//! mail_fsync=always) plus the plugin, started after the pair has been measured and stopped,
//! so the pair serves its users exactly as before, and neither the plugin's indexer processes
//! nor a Xapian database sit in the pair's process tree when its memory rows are read.
//! Its one user's INBOX gets the same `COMPARE_N` messages as the IMAP rows' (`loads::fill`
//! with `loads::imap_message`), the index is completed, and then the same UID SEARCH BODY and
//! TEXT are timed the same way (one warm-up run, `COMPARE_REPS` runs on fresh connections,
//! medians), each checked to find the same number of messages as the no-plugin user's.
//!
//! Mailroom needs no second mailbox: its figures in these rows are its SEARCH BODY and TEXT of
//! the IMAP rows, not measured again.

use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use crate::client::{Endpoints, Imap, search_hits};
use crate::loads::{self, RARE, Sizes, Timings};
use crate::pair;
use crate::procs;
use crate::server::wait_listening;

/// The one user of the fts instance.
pub const FTS_USER: &str = "fts@example.org";

const PACKAGE: &str = "dovecot-fts-xapian";
/// Dovecot's fts plugin (in dovecot-core) and the Xapian backend (in the package).
const MODULES: [&str; 2] = [
    "/usr/lib/dovecot/modules/lib20_fts_plugin.so",
    "/usr/lib/dovecot/modules/lib21_fts_xapian_plugin.so",
];

/// The backend's settings as its README (1.5.5) gives them: n-grams of 3 to 20 characters
/// (plus the whole words) for the header fields, words for the body; quiet logs.
const FTS_XAPIAN: &str = "partial=3 full=20 verbose=0";

/// The timed steps: the IMAP rows' BODY and TEXT searches (`loads::imap_timings`), labels
/// as theirs.
const STEPS: [(&str, &str); 2] = [
    ("IMAP UID SEARCH BODY (1% match)", "UID SEARCH BODY"),
    ("IMAP UID SEARCH TEXT (1% match)", "UID SEARCH TEXT"),
];

/// One server's figures for the fts rows.
pub struct Fts {
    /// Medians, in ms, of UID SEARCH BODY and TEXT, in that order (empty: not measured).
    pub timings: Timings,
    /// For the table: how Dovecot with fts-xapian was set up and filled, or why it was not
    /// run (empty for Mailroom).
    pub note: String,
}

impl Fts {
    /// Mailroom's side: its search is always indexed, so its figures are the SEARCH BODY and
    /// TEXT timings of the IMAP rows (found by label), not measured again.
    pub fn mailroom(imap: &Timings) -> Fts {
        Fts {
            timings: STEPS
                .iter()
                .filter_map(|(label, _)| imap.iter().find(|(l, _)| l == label).cloned())
                .collect(),
            note: String::new(),
        }
    }

    fn not_run(why: String) -> Fts {
        Fts {
            timings: Vec::new(),
            note: format!("Dovecot with fts-xapian not run, its rows say \"-\": {why}."),
        }
    }
}

/// Makes sure the plugin is installed: apt-get when missing and running as root (the pair's
/// packages are already there). Separate from `pair::ensure_installed` so that without it
/// the rest of the comparison still runs. Err says why not, in one line.
fn ensure_installed() -> Result<(), String> {
    let missing = || MODULES.iter().any(|m| !Path::new(m).exists());
    if !missing() {
        return Ok(());
    }
    if procs::euid() != Some(0) {
        return Err(format!(
            "the plugin is not installed and not root to install it (apt-get install {PACKAGE})"
        ));
    }
    eprintln!("installing {PACKAGE} with apt-get ...");
    let installed = Command::new("apt-get")
        .args(["install", "-y", "-q", PACKAGE])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .status();
    // Installing may restart a system Dovecot; it must not run beside the measured one.
    if !procs::pids_of("/usr/sbin/dovecot").is_empty() {
        let _ = Command::new("doveadm").arg("stop").status();
    }
    if !installed.is_ok_and(|s| s.success()) || missing() {
        return Err(format!("apt-get install {PACKAGE} failed"));
    }
    Ok(())
}

/// The installed package's version.
fn version() -> String {
    pair::run("dpkg-query", &["-W", "-f", "${Version}", PACKAGE]).unwrap_or_else(|_| "?".into())
}

/// The plugin's part of the configuration, appended to the pair's: every user of this
/// instance (there is one) gets it.
fn fts_conf() -> String {
    format!(
        "# The fts-xapian instance: the plugin as its README configures it.
mail_plugins = $mail_plugins fts fts_xapian
plugin {{
  fts = xapian
  fts_xapian = {FTS_XAPIAN}
  # Indexed as messages arrive (the indexer service, in the background).
  fts_autoindex = yes
  # SEARCH BODY/TEXT from the index only, never by reading the messages.
  fts_enforced = yes
}}
service indexer-worker {{
  # The README asks for 2G or more.
  vsz_limit = 2G
}}
"
    )
}

/// The running instance; stopped when dropped.
struct Instance {
    ep: Endpoints,
    conf: PathBuf,
    base: PathBuf,
    log: PathBuf,
    started: bool,
}

impl Instance {
    async fn start(
        dir: &Path,
        password: &str,
        password_hash: &str,
        connections: usize,
        sizes: &Sizes,
    ) -> Result<Instance> {
        let (uid, gid) = pair::vmail().context("the vmail user")?;
        let (imap, pop3, lmtp) = (procs::free_port(), procs::free_port(), procs::free_port());
        pair::mkdir(dir)?;
        let home = dir.join("home");
        pair::mkdir(&home)?;
        chown(&home, Some(uid), Some(gid))?;
        let mut me = Instance {
            ep: Endpoints {
                // Filled over IMAP only: no SMTP here.
                smtp: ([127, 0, 0, 1], 0).into(),
                imap: ([127, 0, 0, 1], imap).into(),
                pop3: ([127, 0, 0, 1], pop3).into(),
                submission: None,
                password: password.to_string(),
            },
            conf: dir.join("dovecot.conf"),
            base: dir.join("run"),
            log: dir.join("dovecot.log"),
            started: false,
        };
        pair::write(
            &dir.join("passwd"),
            &format!("{FTS_USER}:{{ARGON2ID}}{password_hash}\n"),
            0o644,
        )?;
        let conf = pair::dovecot_conf(
            dir,
            (imap, pop3, lmtp),
            uid,
            gid,
            connections,
            sizes.auth_cache_secs,
        ) + &fts_conf();
        pair::write(&me.conf, &conf, 0o644)?;
        let conf = me.conf.display().to_string();
        pair::start_daemon("dovecot", &["-c", &conf], &dir.join("start.log"))
            .map_err(|e| anyhow!("{e}\n{}", procs::tail(&me.log, 30)))?;
        me.started = true;
        if let Err(e) = wait_listening(me.ep.imap, || None).await {
            bail!("{e}\n{}", procs::tail(&me.log, 30));
        }
        if let Err(e) = Imap::login(me.ep.imap, FTS_USER, password).await {
            bail!("login: {e:#}\n{}", procs::tail(&me.log, 30));
        }
        Ok(me)
    }

    fn master(&self) -> Option<u32> {
        std::fs::read_to_string(self.base.join("master.pid"))
            .ok()
            .and_then(|p| p.trim().parse().ok())
    }

    /// CPU time (clock ticks) used so far by the instance's indexer-worker processes.
    fn indexer_ticks(&self) -> u64 {
        let Some(master) = self.master() else {
            return 0;
        };
        procs::tree(master)
            .into_iter()
            .filter(|p| procs::comm(*p) == "indexer-worker")
            .filter_map(|p| {
                let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
                // After "pid (comm) ": state is field 0, utime 11, stime 12.
                let rest = &stat[stat.rfind(')')? + 1..];
                let f: Vec<u64> = rest
                    .split_whitespace()
                    .skip(11)
                    .take(2)
                    .filter_map(|v| v.parse().ok())
                    .collect();
                Some(f.iter().sum::<u64>())
            })
            .sum()
    }

    fn doveadm(&self, args: &[&str]) -> Result<String> {
        let conf = self.conf.display().to_string();
        let mut all = vec!["-c", conf.as_str()];
        all.extend_from_slice(args);
        pair::run("doveadm", &all)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if !self.started {
            return;
        }
        pair::stop_dovecot(&self.conf, self.master(), "the fts-xapian Dovecot");
    }
}

/// Dovecot with fts-xapian: installed if need be, set up in `dir`, filled, indexed, timed.
/// Ok with a note and no timings when the plugin cannot be had; Err when the run fails
/// (including a search that finds other than the no-plugin user's number of messages).
pub async fn run(
    dir: &Path,
    password: &str,
    password_hash: &str,
    connections: usize,
    sizes: &Sizes,
) -> Result<Fts> {
    const NAME: &str = "Dovecot+fts-xapian";
    if let Err(why) = ensure_installed() {
        eprintln!("[{NAME}] not run: {why}");
        return Ok(Fts::not_run(why));
    }
    let version = version();
    eprintln!("[{NAME}] starting a second Dovecot with fts-xapian {version} ...");
    let d = Instance::start(dir, password, password_hash, connections, sizes)
        .await
        .context("starting Dovecot with fts-xapian")?;
    let result = measure(&d, sizes, &version).await;
    result.map_err(|e| anyhow!("{NAME}: {e:#}\n{}", procs::tail(&d.log, 30)))
}

async fn measure(d: &Instance, sizes: &Sizes, version: &str) -> Result<Fts> {
    const NAME: &str = "Dovecot+fts-xapian";
    let n = sizes.imap;
    eprintln!("[{NAME}] IMAP APPEND of {n} messages (indexed as they arrive) ...");
    let fill = loads::fill(&d.ep, FTS_USER, n, loads::imap_message)
        .await
        .context("IMAP fill")?;
    eprintln!("[{NAME}]   {:.1} s", fill.as_secs_f64());

    // The indexer may still be behind the fill: `doveadm index` indexes whatever is not yet
    // in the index, in its own process, and returns once all of it is. Then the indexer's
    // workers must be done too (no CPU used for a second), so that they do not share the
    // machine with the timed searches.
    let t = Instant::now();
    d.doveadm(&["index", "-u", FTS_USER, "INBOX"])
        .context("doveadm index")?;
    let index = t.elapsed();
    loop {
        let before = d.indexer_ticks();
        tokio::time::sleep(Duration::from_secs(1)).await;
        if d.indexer_ticks() == before {
            break;
        }
        if t.elapsed() > Duration::from_secs(1800) {
            bail!("the indexer was still busy 30 minutes after the fill");
        }
    }
    eprintln!(
        "[{NAME}]   index complete {:.1} s after the fill (doveadm index); the indexer's \
         workers idle {:.1} s after it (a second without CPU time counted)",
        index.as_secs_f64(),
        t.elapsed().as_secs_f64()
    );

    eprintln!(
        "[{NAME}] UID SEARCH BODY/TEXT: 1 warm-up + {} runs on fresh connections ...",
        sizes.reps
    );
    // The no-plugin user's searches are checked against the same count in
    // `loads::imap_timings`: an index that found nothing (or everything) would fail here.
    let want = (0..n).filter(|i| i % 100 == 7).count();
    let mut runs: Vec<Vec<f64>> = vec![Vec::new(); STEPS.len()];
    for run in 0..=sizes.reps {
        let mut c = Imap::login(d.ep.imap, FTS_USER, &d.ep.password).await?;
        c.cmd("SELECT INBOX").await?;
        for (k, (label, command)) in STEPS.iter().enumerate() {
            let command = format!("{command} {RARE}");
            let t = Instant::now();
            let (_, kept) = c
                .cmd_keep(&command, "* SEARCH")
                .await
                .with_context(|| label.to_string())?;
            let took = t.elapsed().as_secs_f64() * 1000.0;
            let hits = search_hits(&kept);
            if hits != want {
                bail!("{command} found {hits} messages, expected {want} (as without the plugin)");
            }
            if run > 0 {
                runs[k].push(took);
            }
        }
        c.cmd("LOGOUT").await?;
    }
    let timings: Timings = STEPS
        .iter()
        .zip(runs)
        .map(|((label, _), v)| (label.to_string(), loads::median(v)))
        .collect();
    for (label, ms) in &timings {
        eprintln!("[{NAME}]   {label:<50} {ms:>10.1} ms");
    }
    Ok(Fts {
        timings,
        note: format!(
            "Dovecot with fts-xapian ({version}): a second Dovecot instance, configured as the \
             pair's plus mail_plugins fts fts_xapian, fts = xapian, fts_xapian = {FTS_XAPIAN}, \
             fts_autoindex = yes (indexed as messages arrive), fts_enforced = yes (searches \
             answered from the index only); its INBOX got the same {n} messages by IMAP \
             APPEND in {:.1} s ({:.0} msg/s, indexing included), and `doveadm index` found it \
             complete {:.1} s after that (the indexer's workers idle before the searches); each search checked to find {want} \
             messages, as without the plugin. Mailroom's figures in these rows are its SEARCH \
             BODY/TEXT above (its search is always indexed).",
            fill.as_secs_f64(),
            n as f64 / fill.as_secs_f64(),
            index.as_secs_f64()
        ),
    })
}
