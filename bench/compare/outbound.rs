//! The outbound rows: mail submitted with AUTH, DKIM-signed, queued durably and delivered to
//! other servers, timed until the receiving end has it all.
//!
//! Both servers get, from the same client code, `COMPARE_OUT` (5,000) messages of ~4 KB, each
//! to one recipient in one of [`DOMAINS`] invented domains, from `COMPARE_CLIENTS` (20)
//! concurrent clients on the submission listener, each logged in (AUTH PLAIN) as its own
//! account `sender<n>@example.org` before the clock starts, sending pipelined (MAIL, RCPT,
//! DATA in one write, as in the ingest row). One sink MX on loopback
//! (bench/common/sink.rs, also bench/outbound.rs's) takes them all and checks that each
//! carries an `rsa-sha256` and an `ed25519-sha256` DKIM signature; the run fails otherwise.
//!
//! - Mailroom: its submission listener (plaintext AUTH allowed, as for every listener in this
//!   bench), its own DKIM keys (RSA-2048 and Ed25519, made by `mailroom init`), its queue, MX
//!   lookups through the bench's DNS server on loopback (`[dns] nameservers`) and the sink's
//!   port as the MX port (`[queue] smtp_port`), as bench/outbound.rs does.
//! - Postfix: a submission service (smtpd with SASL through Dovecot's auth socket, the pair's
//!   Dovecot, `permit_sasl_authenticated` and `reject_sender_login_mismatch`) with OpenDKIM as
//!   its milters: two OpenDKIM processes on loopback, one signing `rsa-sha256` with a key from
//!   `opendkim-genkey -b 2048`, one `ed25519-sha256` with an Ed25519 key from `openssl
//!   genpkey` (opendkim-genkey makes RSA keys only). Two, because OpenDKIM 2.11 takes the
//!   signing algorithm from its configuration (`SignatureAlgorithm`), not from the key: one
//!   process with both keys in a KeyTable and `MultipleSignatures yes` signs the Ed25519 key
//!   as RSA and fails ("EVP_PKEY_get1_RSA() failed"). Both relaxed/relaxed, signing the same
//!   header fields as Mailroom (dkim::SIGNED_HEADERS), each oversigned once. Postfix cannot be
//!   pointed at a DNS server on another port: its 20 domains go by `transport_maps` to
//!   `smtp:[127.0.0.1]:<sink port>`, which saves it the MX lookups Mailroom makes, in
//!   Postfix's favour. Its queue fsyncs as by default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use tokio::sync::OnceCell;

use crate::client::{Endpoints, Smtp};
use crate::loads::{DOMAIN, Group, Sizes};
use crate::procs::{self, Mem};
use crate::server::wait_listening;
use crate::sink::{self, Sink};

/// The remote domains the messages go to (sink::domain's d0.test ...).
pub const DOMAINS: usize = 20;

/// The account client `c` sends as (both servers have one per client when the group runs):
/// 20 users sending at once. One account for all would trip Mailroom's login throttle, which
/// counts logins in flight against one account's limit (10) so that parallel guesses cannot
/// outrun it.
pub fn sender(c: usize) -> String {
    format!("sender{c}@{DOMAIN}")
}

/// The sink and the DNS server pointing at it, shared by both servers (started at the first
/// use; the sink is reset before each round).
struct Routes {
    sink: Sink,
    dns: SocketAddr,
}

static ROUTES: OnceCell<Routes> = OnceCell::const_new();

async fn routes() -> &'static Routes {
    ROUTES
        .get_or_init(|| async {
            let sink = Sink::start().await;
            let dns = sink::dns(DOMAINS).await;
            Routes { sink, dns }
        })
        .await
}

/// What Mailroom's configuration gets for the outbound rows: its submission listener, the
/// bench's DNS server, the sink's port as the MX port. Without the group: as before (no
/// submission listener, a resolver that answers nothing).
pub struct MailroomConfig {
    pub submission: Option<SocketAddr>,
    /// `[listen] submission`'s value.
    pub listen: String,
    /// `[dns] nameservers`'s value.
    pub nameservers: String,
    /// A `[queue]` section, or nothing.
    pub queue: String,
}

impl MailroomConfig {
    pub async fn new(sizes: &Sizes) -> MailroomConfig {
        if !sizes.groups.has(Group::Outbound) {
            return MailroomConfig {
                submission: None,
                listen: "[]".into(),
                nameservers: "[\"127.0.0.1:9\"]".into(),
                queue: String::new(),
            };
        }
        let routes = routes().await;
        let submission: SocketAddr = ([127, 0, 0, 1], procs::free_port()).into();
        MailroomConfig {
            submission: Some(submission),
            listen: format!("[\"{submission}\"]"),
            nameservers: format!("[\"{}\"]", routes.dns),
            queue: format!("[queue]\nsmtp_port = {}\n", routes.sink.addr.port()),
        }
    }
}

/// One server's figures: the median round by the time until the sink had everything.
pub struct Outbound {
    /// Until the last 250 of submission (queued durably, not yet delivered).
    pub submitted: Duration,
    /// Until the sink received the last message.
    pub delivered: Duration,
}

/// `sizes.outbound_runs` rounds of the load (see the module doc) on `ep.submission`; the
/// median round by delivery time.
pub async fn run(name: &str, ep: &Endpoints, sizes: Sizes) -> Result<Outbound> {
    let submission = ep
        .submission
        .ok_or_else(|| anyhow!("no submission listener configured"))?;
    let sink = &routes().await.sink;
    let mut rounds = Vec::new();
    for round in 0..sizes.outbound_runs {
        sink.reset();
        let r = one_round(submission, &ep.password, sink, sizes)
            .await
            .with_context(|| format!("outbound round {}", round + 1))?;
        eprintln!(
            "[{name}]   round {}: all submitted after {:.2} s, all at the sink after {:.2} s; \
             {} of {} with an RSA and an Ed25519 DKIM signature",
            round + 1,
            r.submitted.as_secs_f64(),
            r.delivered.as_secs_f64(),
            sink.signed(),
            sink.delivered()
        );
        if round == 0 {
            // The first line of each signature of one message, to see what was signed how.
            let sample = sink.sample().unwrap_or_default();
            for line in sample.lines().filter(|l| l.starts_with("DKIM-Signature:")) {
                eprintln!("[{name}]     {line}");
            }
        }
        rounds.push(r);
    }
    rounds.sort_by_key(|r| r.delivered);
    let mid = rounds.len() / 2;
    Ok(rounds.swap_remove(mid))
}

/// One round: every client connects and logs in first, untimed (the login is one argon2id
/// check per client on both servers, and a cache hit on later rounds for Mailroom only, since
/// Dovecot's cache of a passwd-file entry still verifies the hash); the clock starts when they
/// all have, and the messages go.
async fn one_round(
    addr: SocketAddr,
    password: &str,
    sink: &Sink,
    sizes: Sizes,
) -> Result<Outbound> {
    let total = sizes.outbound;
    let clients = sizes.clients;
    let ready = std::sync::Arc::new(tokio::sync::Barrier::new(clients + 1));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let password = password.to_string();
        let ready = ready.clone();
        tasks.push(tokio::spawn(async move {
            let from = sender(c);
            let login = async {
                let mut s = Smtp::connect(addr).await?;
                s.auth_plain(&from, &password).await?;
                anyhow::Ok(s)
            }
            .await;
            // Everyone waits, so that a failed login cannot leave the others stuck.
            ready.wait().await;
            let mut s = login.with_context(|| format!("submission client {c}: login"))?;
            for i in (c..total).step_by(clients) {
                let to = format!("user{i}@{}", sink::domain(i % DOMAINS));
                s.send(&from, &to, &sink::message(i, &from, &to))
                    .await
                    .with_context(|| format!("submission client {c}, message {i}"))?;
            }
            s.quit().await;
            anyhow::Ok(())
        }));
    }
    ready.wait().await;
    let started = Instant::now();
    for t in tasks {
        t.await.context("submission client task")??;
    }
    let submitted = started.elapsed();
    let (mut last, mut progress) = (0, Instant::now());
    loop {
        let n = sink.delivered();
        if n >= total {
            break;
        }
        if n != last {
            (last, progress) = (n, Instant::now());
        } else if progress.elapsed() > Duration::from_secs(120) {
            bail!("the sink stayed at {n} of {total} messages for 2 minutes");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let delivered = started.elapsed();
    let (n, signed) = (sink.delivered(), sink.signed());
    if n != total {
        bail!("the sink received {n} messages for {total} sent");
    }
    if signed != total {
        bail!(
            "only {signed} of {total} messages reached the sink with both an rsa-sha256 and an \
             ed25519-sha256 DKIM signature; the first one's DKIM-Signature fields:\n{}",
            sink.sample().unwrap_or_default()
        );
    }
    Ok(Outbound {
        submitted,
        delivered,
    })
}

/// The header fields OpenDKIM signs: Mailroom's (src/dkim.rs SIGNED_HEADERS, whose second
/// From oversigns it; mail-auth also oversigns each listed field absent from the message,
/// which OpenDKIM's OversignHeaders does for the fields it lists).
const SIGN_HEADERS: &str = "From,Reply-To,To,Cc,Subject,Date,Message-ID,In-Reply-To,References,\
                            MIME-Version,Content-Type,Content-Transfer-Encoding";

/// One OpenDKIM process, run in the foreground by the bench.
struct OpenDkim {
    child: Child,
    port: u16,
    log: PathBuf,
}

/// The Postfix side of the outbound rows: the two OpenDKIM milters (stopped when this is
/// dropped, i.e. with the pair) and what Postfix's and Dovecot's configurations get.
pub struct PairSide {
    pub submission: SocketAddr,
    auth_socket: PathBuf,
    sink_port: u16,
    milters: Vec<OpenDkim>,
}

fn append(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .with_context(|| format!("adding to {}", path.display()))
}

/// `pair::run`, saying where the tool comes from when it is missing or fails.
fn run_tool(cmd: &str, args: &[&str]) -> Result<()> {
    crate::pair::run(cmd, args)
        .map(|_| ())
        .context("(apt-get install -y opendkim opendkim-tools)")
}

/// Installs OpenDKIM (Debian's `opendkim` and `opendkim-tools`) when missing, as the pair's
/// packages are; the package's own instance is not started in a container, and is stopped
/// if it was.
fn ensure_opendkim() -> Result<()> {
    if Path::new("/usr/sbin/opendkim").exists() && Path::new("/usr/sbin/opendkim-genkey").exists() {
        return Ok(());
    }
    eprintln!("installing opendkim opendkim-tools with apt-get ...");
    let ok = Command::new("apt-get")
        .args(["install", "-y", "-q", "opendkim", "opendkim-tools"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok || !Path::new("/usr/sbin/opendkim").exists() {
        bail!("apt-get install opendkim opendkim-tools failed");
    }
    if !procs::pids_of("/usr/sbin/opendkim").is_empty() {
        let _ = Command::new("service").args(["opendkim", "stop"]).status();
    }
    Ok(())
}

impl PairSide {
    /// Makes the keys and starts the two OpenDKIM processes in `dir`; `dovecot_run` is
    /// Dovecot's base_dir, where its auth socket for Postfix will be.
    pub async fn start(dir: &Path, dovecot_run: &Path) -> Result<PairSide> {
        ensure_opendkim()?;
        std::fs::create_dir_all(dir)?;
        let d = dir.display().to_string();
        run_tool(
            "opendkim-genkey",
            &["-t", "-b", "2048", "-d", DOMAIN, "-s", "odkr", "-D", &d],
        )?;
        let ed = dir.join("odke.private");
        run_tool(
            "openssl",
            &[
                "genpkey",
                "-algorithm",
                "ed25519",
                "-out",
                &ed.display().to_string(),
            ],
        )?;
        let mut side = PairSide {
            submission: ([127, 0, 0, 1], procs::free_port()).into(),
            auth_socket: dovecot_run.join("auth-postfix"),
            sink_port: routes().await.sink.addr.port(),
            milters: Vec::new(),
        };
        for (selector, algorithm) in [("odkr", "rsa-sha256"), ("odke", "ed25519-sha256")] {
            let port = procs::free_port();
            let conf = dir.join(format!("{selector}.conf"));
            let key = dir.join(format!("{selector}.private"));
            std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
            // RequireSafeKeys off: the keys are in the bench's directory under /var/tmp, which
            // anyone may write to (sticky), and OpenDKIM refuses any such path; the check is
            // made once, at start.
            std::fs::write(
                &conf,
                format!(
                    "# Written by bench/compare: one OpenDKIM signer, one key, one algorithm.\n\
                     Mode s\nSocket inet:{port}@127.0.0.1\nDomain {DOMAIN}\nSelector {selector}\n\
                     KeyFile {}\nSignatureAlgorithm {algorithm}\n\
                     Canonicalization relaxed/relaxed\nSignHeaders {SIGN_HEADERS}\n\
                     OversignHeaders {SIGN_HEADERS}\nRequireSafeKeys no\nSyslog no\nLogWhy yes\n",
                    key.display()
                ),
            )?;
            let log = dir.join(format!("{selector}.log"));
            let out = std::fs::File::create(&log)?;
            let child = Command::new("opendkim")
                .args(["-f", "-x", &conf.display().to_string()])
                .stdin(Stdio::null())
                .stdout(out.try_clone()?)
                .stderr(out)
                .spawn()
                .context("starting opendkim")?;
            side.milters.push(OpenDkim { child, port, log });
        }
        for m in &mut side.milters {
            let addr = ([127, 0, 0, 1], m.port).into();
            let child = &mut m.child;
            if let Err(e) = wait_listening(addr, || {
                child
                    .try_wait()
                    .ok()
                    .flatten()
                    .map(|s| format!("opendkim exited: {s}"))
            })
            .await
            {
                bail!("OpenDKIM: {e}\n{}", procs::tail(&m.log, 20));
            }
        }
        Ok(side)
    }

    /// Adds to Dovecot's configuration (before it starts) what the outbound rows need.
    pub fn configure_dovecot(&self, conf: &Path) -> Result<()> {
        append(conf, &self.dovecot_conf())
    }

    /// Adds to Postfix's main.cf and master.cf (in `dir`, before it starts) what the
    /// outbound rows need.
    pub fn configure_postfix(&self, dir: &Path, sizes: &Sizes) -> Result<()> {
        append(&dir.join("main.cf"), &self.main_cf(sizes))?;
        append(&dir.join("master.cf"), &self.master_cf())
    }

    /// Appended to dovecot.conf: the auth socket Postfix's submission service asks.
    fn dovecot_conf(&self) -> String {
        "# The outbound rows: Postfix's submission service authenticates through this socket.
service auth {
  unix_listener auth-postfix {
    mode = 0660
    user = postfix
    group = postfix
  }
}
"
        .into()
    }

    /// Appended to main.cf.
    fn main_cf(&self, sizes: &Sizes) -> String {
        let routes: Vec<String> = (0..DOMAINS)
            .map(|d| format!("{}=smtp:[127.0.0.1]:{}", sink::domain(d), self.sink_port))
            .collect();
        // Each sender may send as itself only (Mailroom checks the same).
        let logins: Vec<String> = (0..sizes.clients)
            .map(|c| format!("{0}={0}", sender(c)))
            .collect();
        format!(
            "# The outbound rows (compare/outbound.rs): the bench's domains go straight to its sink
# MX (Postfix cannot use a DNS server on another port; this saves it the MX lookups, in
# its favour); SASL through Dovecot; the sender may send only as itself.
transport_maps = inline:{{ {} }}
smtpd_sasl_type = dovecot
smtpd_sasl_path = {}
smtpd_sender_login_maps = inline:{{ {} }}
milter_default_action = tempfail
",
            routes.join(", "),
            self.auth_socket.display(),
            logins.join(", ")
        )
    }

    /// Appended to master.cf: the submission service, with the two OpenDKIM milters.
    fn master_cf(&self) -> String {
        let milters: Vec<String> = self
            .milters
            .iter()
            .map(|m| format!("inet:127.0.0.1:{}", m.port))
            .collect();
        format!(
            "{:<16} inet       n - n -     -   smtpd
  -o syslog_name=postfix/submission
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_sender_restrictions=reject_sender_login_mismatch
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
  -o smtpd_recipient_restrictions=
  -o smtpd_milters={}
  -o milter_macro_daemon_name=ORIGINATING
",
            self.submission,
            milters.join(",")
        )
    }

    /// The OpenDKIM processes' memory (part of the pair's while they run).
    pub fn memory(&self) -> Mem {
        let pids: Vec<u32> = self
            .milters
            .iter()
            .flat_map(|m| procs::tree(m.child.id()))
            .collect();
        procs::mem(&pids)
    }

    pub fn logs(&self) -> String {
        self.milters
            .iter()
            .map(|m| procs::tail(&m.log, 10))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for PairSide {
    fn drop(&mut self) {
        for m in &mut self.milters {
            if m.child.try_wait().ok().flatten().is_some() {
                continue;
            }
            let _ = Command::new("kill")
                .args(["-TERM", &m.child.id().to_string()])
                .status();
        }
        for m in &mut self.milters {
            let t = Instant::now();
            while m.child.try_wait().ok().flatten().is_none() {
                if t.elapsed() > Duration::from_secs(10) {
                    let _ = m.child.kill();
                    let _ = m.child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}
