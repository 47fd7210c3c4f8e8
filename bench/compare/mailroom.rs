//! Mailroom: the release binary cargo built, as a separate process with a config file in the
//! temporary directory (plain listeners on free loopback ports), the domain and the accounts
//! added with the CLI. Stopped with SIGTERM when dropped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::client::Endpoints;
use crate::loads::{DOMAIN, Sizes, all_users};
use crate::procs::{self, Mem};
use crate::server::{Memory, wait_listening};

pub struct Mailroom {
    child: Child,
    pub ep: Endpoints,
    pub log: PathBuf,
}

fn cli(bin: &str, config: &Path, args: &[&str], stdin: &str) -> Result<()> {
    let mut c = Command::new(bin)
        .args(["--config", &config.display().to_string()])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {bin}"))?;
    if let Some(mut input) = c.stdin.take() {
        input.write_all(stdin.as_bytes())?;
    }
    let out = c.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "mailroom {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    Ok(())
}

impl Mailroom {
    pub async fn start(
        dir: &Path,
        password: &str,
        connections: usize,
        sizes: &Sizes,
    ) -> Result<Mailroom> {
        Mailroom::configure(dir, password, connections, sizes)
            .await?
            .serve()
            .await
    }

    /// Writes the configuration, makes the database and the accounts; the server is not
    /// started ([`Configured::serve`] does), so a caller can fill the database first.
    pub async fn configure(
        dir: &Path,
        password: &str,
        connections: usize,
        sizes: &Sizes,
    ) -> Result<Configured> {
        // COMPARE_BIN runs another build (e.g. the previous commit's) under the same loads, so
        // a change can be compared with what it replaces in one sitting.
        let bin =
            std::env::var("COMPARE_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_mailroom").into());
        let bin = bin.as_str();
        std::fs::create_dir_all(dir)?;
        let (smtp, imap, pop3) = (procs::free_port(), procs::free_port(), procs::free_port());
        let config = dir.join("mailroom.toml");
        // The outbound rows: a submission listener, the bench's DNS server and sink MX.
        let outbound = crate::outbound::MailroomConfig::new(sizes).await;
        // Every listener keeps a few slots of `max_connections` for itself (the MX a tenth, each
        // other a fortieth), so IMAP alone can hold only about 88% of it: allow twice what the
        // loads open, so the idle-session row is never cut short by the reserves.
        let max = connections * 2;
        // Written only when it is not the default (300 s), so that COMPARE_BIN can still run
        // a binary from before `[auth] cache_secs` existed (unknown keys are errors).
        let cache = if sizes.auth_cache_secs == 300 {
            String::new()
        } else {
            format!("cache_secs = {}\n", sizes.auth_cache_secs)
        };
        std::fs::write(
            &config,
            format!(
                "hostname = \"mail.{DOMAIN}\"\ndomain = \"{DOMAIN}\"\ndata_dir = {:?}\n\
                 [listen]\nsmtp = [\"127.0.0.1:{smtp}\"]\nsubmission = {}\nsubmissions = []\n\
                 imap = [\"127.0.0.1:{imap}\"]\nimaps = []\npop3 = [\"127.0.0.1:{pop3}\"]\n\
                 pop3s = []\nmanagesieve = []\nhttp = []\nhttps = []\n\
                 [limits]\nmax_connections = {max}\nmax_connections_per_ip = {max}\n\
                 [auth]\nallow_plaintext = true\n{cache}\
                 [inbound]\nverify = false\n\
                 [dns]\nnameservers = {}\n{}",
                dir.join("data").display().to_string(),
                outbound.listen,
                outbound.nameservers,
                outbound.queue,
            ),
        )?;
        // Only `serve` and `init` make a database: `init`, into a throwaway configuration,
        // makes it (with the domain) in the schema of the binary under test, old or new.
        let data = dir.join("data").display().to_string();
        let hostname = format!("mail.{DOMAIN}");
        cli(
            bin,
            &dir.join("init.toml"),
            &[
                "init",
                "--hostname",
                &hostname,
                "--domain",
                DOMAIN,
                "--data-dir",
                &data,
            ],
            "",
        )?;
        for user in all_users(sizes) {
            cli(
                bin,
                &config,
                &["user", "add", &user, "--password-stdin"],
                &format!("{password}\n"),
            )?;
        }
        // The filter asks Bayes only for an account that has learned 10 spam and 10 ham:
        // teach the ingest accounts that much, so the ingest row pays for the whole decision
        // (tokens, counts, Bayes) as a trained account does; and give them 20 Sieve rules.
        // An older binary's schema has neither: then the row runs without, and says so.
        if let Err(e) = train_ingest(&dir.join("data").join("mailroom.db"), sizes).await {
            eprintln!("note: the ingest accounts have no trained filter or rules: {e}");
        }
        Ok(Configured {
            bin: bin.to_string(),
            config,
            log: dir.join("mailroom.log"),
            ep: Endpoints {
                smtp: ([127, 0, 0, 1], smtp).into(),
                imap: ([127, 0, 0, 1], imap).into(),
                pop3: ([127, 0, 0, 1], pop3).into(),
                submission: outbound.submission,
                password: password.to_string(),
            },
        })
    }
}

/// A configured server, not running: its database is `db()`.
#[derive(Clone)]
pub struct Configured {
    bin: String,
    config: PathBuf,
    log: PathBuf,
    pub ep: Endpoints,
}

impl Configured {
    pub fn db(&self) -> PathBuf {
        self.config.with_file_name("data").join("mailroom.db")
    }

    /// Starts `mailroom serve` and waits until SMTP, IMAP and POP3 accept connections. The
    /// log is appended to, so a restart keeps what the first run said.
    pub async fn serve(&self) -> Result<Mailroom> {
        let (bin, config, log) = (&self.bin, &self.config, self.log.clone());
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let child = Command::new(bin)
            .args(["--config", &config.display().to_string(), "serve"])
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting mailroom serve")?;
        let mut m = Mailroom {
            child,
            ep: self.ep.clone(),
            log,
        };
        for addr in [m.ep.smtp, m.ep.imap, m.ep.pop3]
            .into_iter()
            .chain(m.ep.submission)
        {
            if let Err(e) = wait_listening(addr, || m.exited()).await {
                bail!("{e}\n{}", procs::tail(&m.log, 30));
            }
        }
        Ok(m)
    }
}

impl Mailroom {
    /// SIGKILL, as a crash or the OOM killer would, and waits for the process to be gone.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("mailroom exited: {status}")),
            _ => None,
        }
    }

    pub fn memory(&self) -> Memory {
        let all: Mem = procs::mem(&procs::tree(self.child.id()));
        Memory { all, imap: all }
    }
}

impl Drop for Mailroom {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(20) {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Teaches each ingest account's filter 20 spam and 20 ham messages (the ham like the
/// messages the ingest row sends, so they stay in the INBOX it counts).
async fn train_ingest(db: &Path, sizes: &Sizes) -> Result<()> {
    let store = mailroom::store::Store::open(db).await?;
    for round in 0..sizes.ingest_runs {
        let user = crate::loads::ingest_user(round);
        let account = store
            .account_by_address(&user)
            .await?
            .with_context(|| format!("no account {user}"))?;
        train_one(&store, account.id, &user).await?;
        rules(&store, account.id).await?;
    }
    store.close().await;
    Ok(())
}

/// Makes the 20-rule script of `bench/common/twenty.sieve` (which `cargo bench --bench
/// sieve` times alone) the account's active rules: the ingest row pays for Sieve as a user
/// with filters does. None of its rules files the bench's messages away.
async fn rules(store: &mailroom::store::Store, account: i64) -> Result<()> {
    const SCRIPT: &str = include_str!("../common/twenty.sieve");
    let compiled = mailroom::sieve::compile(SCRIPT)
        .map_err(|e| anyhow::anyhow!("twenty.sieve: {e}"))?
        .to_stored();
    store
        .put_sieve(account, "rules", SCRIPT, &compiled)
        .await?
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    store
        .set_active_sieve(account, Some("rules"))
        .await?
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(())
}

async fn train_one(store: &mailroom::store::Store, account: i64, user: &str) -> Result<()> {
    use sha2::Digest;
    for i in 0..20 {
        let ham = crate::loads::smtp_message(user, 100 + i, i);
        let spam = format!(
            "From: Winner {i} <prize{i}@lottery.example>\r\nTo: {user}\r\nSubject: You won \
             the lottery {i}\r\n\r\nClaim your cash prize now, click here, casino bonus, \
             cheap pills, act now!\r\n"
        )
        .into_bytes();
        for (raw, as_spam) in [(ham, false), (spam, true)] {
            let sha: String = sha2::Sha256::digest(&raw)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let tokens = mailroom::spam::tokens::hashed(&raw);
            store.train_spam(account, &sha, &tokens, as_spam).await?;
        }
    }
    Ok(())
}
