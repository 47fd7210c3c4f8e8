//! Postfix + Dovecot, configured like Mailroom: one virtual domain, virtual users in a
//! passwd-file (argon2id hashes with Mailroom's parameters), Maildir, Postfix delivering to
//! Dovecot over LMTP, fsync on both sides, everything on loopback on free ports, every file
//! in the temporary directory. Both are stopped when this is dropped.

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use crate::client::{Endpoints, Imap};
use crate::loads::{DOMAIN, Group, IMAP_USER, Sizes, all_users};
use crate::procs::{self, Mem};
use crate::server::{Memory, wait_listening};

const PACKAGES: [&str; 4] = ["postfix", "dovecot-imapd", "dovecot-pop3d", "dovecot-lmtpd"];
const BINARIES: [&str; 5] = [
    "/usr/sbin/postfix",
    "/usr/sbin/dovecot",
    "/usr/lib/dovecot/imap",
    "/usr/lib/dovecot/pop3",
    "/usr/lib/dovecot/lmtp",
];
const POSTFIX_MASTER: &str = "/usr/lib/postfix/sbin/master";
const DOVECOT_MASTER: &str = "/usr/sbin/dovecot";

pub fn run(cmd: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {cmd}"))?;
    if !out.status.success() {
        bail!(
            "{cmd} {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Runs a command that leaves a daemon behind: its output goes to `log` (a pipe would stay
/// open in the daemon), and the error shows the tail of `log`.
pub fn start_daemon(cmd: &str, args: &[&str], log: &Path) -> Result<()> {
    let out = std::fs::File::create(log)?;
    let status = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .status()
        .with_context(|| format!("running {cmd}"))?;
    if !status.success() {
        bail!(
            "{cmd} {}: {status}\n{}",
            args.join(" "),
            procs::tail(log, 20)
        );
    }
    Ok(())
}

/// Makes sure Postfix and Dovecot are installed: installs them with apt-get when missing and
/// running as root (Postfix preseeded to "No configuration"), then stops any system instance
/// the install started. Err says, in one line, why the comparison cannot run.
pub fn ensure_installed() -> Result<(), String> {
    let missing = || BINARIES.iter().any(|b| !Path::new(b).exists());
    let root = procs::euid() == Some(0);
    if !missing() {
        return if root {
            Ok(())
        } else {
            Err("Postfix+Dovecot not run: starting them (they switch users) needs root".into())
        };
    }
    if !root {
        return Err(format!(
            "Postfix/Dovecot not installed and not root to install them (apt-get install {})",
            PACKAGES.join(" ")
        ));
    }
    eprintln!("installing {} with apt-get ...", PACKAGES.join(" "));
    let preseed = Command::new("debconf-set-selections")
        .stdin(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            if let Some(mut i) = c.stdin.take() {
                i.write_all(b"postfix postfix/main_mailer_type select No configuration\n")?;
            }
            c.wait()
        });
    if !preseed.is_ok_and(|s| s.success()) {
        return Err("debconf-set-selections failed; Postfix/Dovecot not installed".into());
    }
    let installed = Command::new("apt-get")
        .args(["install", "-y", "-q"])
        .args(PACKAGES)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .status();
    if !installed.is_ok_and(|s| s.success()) || missing() {
        return Err(format!(
            "apt-get install {} failed; Postfix/Dovecot not available",
            PACKAGES.join(" ")
        ));
    }
    // The packages' own instances (if the install started any) must not skew the figures.
    if !procs::pids_of(POSTFIX_MASTER).is_empty() {
        let _ = Command::new("postfix").arg("stop").status();
    }
    if !procs::pids_of(DOVECOT_MASTER).is_empty() {
        let _ = Command::new("doveadm").arg("stop").status();
    }
    Ok(())
}

/// `postconf -d mail_version` and `dovecot --version`.
pub fn versions() -> String {
    let postfix = run("postconf", &["-d", "-h", "mail_version"]).unwrap_or_else(|e| e.to_string());
    let dovecot = run("dovecot", &["--version"]).unwrap_or_else(|e| e.to_string());
    format!("Postfix {postfix}, Dovecot {dovecot}")
}

/// The uid and gid Dovecot stores mail as: the `vmail` user, created when missing.
pub fn vmail() -> Result<(u32, u32)> {
    if run("id", &["-u", "vmail"]).is_err() {
        run(
            "useradd",
            &[
                "--system",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                "vmail",
            ],
        )?;
    }
    let uid = run("id", &["-u", "vmail"])?.parse()?;
    let gid = run("id", &["-g", "vmail"])?.parse()?;
    Ok((uid, gid))
}

pub struct Pair {
    pub ep: Endpoints,
    postfix_dir: PathBuf,
    postfix_log: PathBuf,
    postfix_started: bool,
    pub dovecot_conf: PathBuf,
    dovecot_base: PathBuf,
    dovecot_log: PathBuf,
    dovecot_started: bool,
    lmtp: u16,
    /// Dovecot's homes: `home/USER/Maildir`.
    pub home: PathBuf,
    /// vmail's uid and gid, who owns the mail.
    pub uid: (u32, u32),
    /// The outbound rows' OpenDKIM milters and configuration; stopped after Postfix.
    outbound: Option<crate::outbound::PairSide>,
}

pub fn write(path: &Path, text: &str, mode: u32) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

pub fn mkdir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// Processes with at most `connections` IMAP sessions in mind.
pub fn dovecot_conf(
    dir: &Path,
    (imap, pop3, lmtp): (u16, u16, u16),
    uid: u32,
    gid: u32,
    connections: usize,
    auth_cache_secs: u64,
) -> String {
    let d = dir.display();
    let clients = connections * 2 + 1000;
    // The auth cache as Mailroom's (`[auth] cache_secs`): the same lifetime, room for far
    // more users than the bench has, no caching of failures. For a passwd-file, Dovecot caches
    // the passdb entry (the argon2id hash) and verifies each cached login against it;
    // `auth_cache_verify_password_with_worker` spreads those checks over the auth-worker
    // processes (both cores) instead of the one auth process.
    let cache = if auth_cache_secs == 0 {
        "auth_cache_size = 0".to_string()
    } else {
        format!(
            "auth_cache_size = 10M\nauth_cache_ttl = {auth_cache_secs} secs\n\
             auth_cache_negative_ttl = 0\nauth_cache_verify_password_with_worker = yes"
        )
    };
    format!(
        "# Written by bench/compare: Dovecot as Debian ships it, in a temporary directory.
instance_name = mailroom-compare-{imap}
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap pop3 lmtp
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
{cache}
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = {uid}
mail_location = maildir:~/Maildir
mail_fsync = always
default_process_limit = {connections}
default_client_limit = {clients}
passdb {{
  driver = passwd-file
  args = {d}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp}
  }}
  unix_listener lmtp {{
    mode = 0
  }}
}}
service imap {{
  process_limit = {connections}
}}
protocol imap {{
  mail_max_userip_connections = {connections}
}}
protocol pop3 {{
  mail_max_userip_connections = {connections}
}}
"
    )
}

fn postfix_main_cf(dir: &Path, lmtp: u16) -> String {
    let d = dir.display();
    format!(
        "# Written by bench/compare: a Postfix instance for one virtual domain, delivering over
# LMTP to Dovecot. Queue fsync as by default.
compatibility_level = 3.6
queue_directory = {d}-queue
data_directory = {d}-data
maillog_file = {d}/postfix.log
maillog_file_prefixes = {d}
myhostname = mx.{DOMAIN}
mydomain = {DOMAIN}
myorigin = $mydomain
mydestination =
local_recipient_maps =
local_transport = error:no local delivery
alias_maps =
alias_database =
relay_domains =
relayhost =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_peername_lookup = no
biff = no
append_dot_mydomain = no
virtual_mailbox_domains = {DOMAIN}
virtual_transport = lmtp:inet:127.0.0.1:{lmtp}
default_process_limit = 200
lmtp_destination_concurrency_limit = 20
"
    )
}

/// master.cf as Debian's, without chroot and with smtpd on `smtp_port` only.
fn postfix_master_cf(smtp_port: u16) -> String {
    let mut m = String::from("# Written by bench/compare (Debian's master.cf, chroot off).\n");
    let services = [
        ("127.0.0.1:SMTP", "inet", "n", "-", "-", "-", "smtpd"),
        ("pickup", "unix", "n", "-", "60", "1", "pickup"),
        ("cleanup", "unix", "n", "-", "-", "0", "cleanup"),
        ("qmgr", "unix", "n", "-", "300", "1", "qmgr"),
        ("tlsmgr", "unix", "-", "-", "1000?", "1", "tlsmgr"),
        ("rewrite", "unix", "-", "-", "-", "-", "trivial-rewrite"),
        ("bounce", "unix", "-", "-", "-", "0", "bounce"),
        ("defer", "unix", "-", "-", "-", "0", "bounce"),
        ("trace", "unix", "-", "-", "-", "0", "bounce"),
        ("verify", "unix", "-", "-", "-", "1", "verify"),
        ("flush", "unix", "n", "-", "1000?", "0", "flush"),
        ("proxymap", "unix", "-", "-", "-", "-", "proxymap"),
        ("proxywrite", "unix", "-", "-", "-", "1", "proxymap"),
        ("smtp", "unix", "-", "-", "-", "-", "smtp"),
        ("relay", "unix", "-", "-", "-", "-", "smtp"),
        ("showq", "unix", "n", "-", "-", "-", "showq"),
        ("error", "unix", "-", "-", "-", "-", "error"),
        ("retry", "unix", "-", "-", "-", "-", "error"),
        ("discard", "unix", "-", "-", "-", "-", "discard"),
        ("local", "unix", "-", "n", "-", "-", "local"),
        ("virtual", "unix", "-", "n", "-", "-", "virtual"),
        ("lmtp", "unix", "-", "-", "-", "-", "lmtp"),
        ("anvil", "unix", "-", "-", "-", "1", "anvil"),
        ("scache", "unix", "-", "-", "-", "1", "scache"),
        ("postlog", "unix-dgram", "n", "-", "-", "1", "postlogd"),
    ];
    for (name, kind, private, unpriv, wakeup, limit, cmd) in services {
        let name = name.replace("SMTP", &smtp_port.to_string());
        // The chroot column is always "n".
        let _ = writeln!(
            m,
            "{name:<16} {kind:<10} {private} {unpriv} n {wakeup:<5} {limit:<3} {cmd}"
        );
    }
    m
}

impl Pair {
    /// `extra_users` get accounts too (the scale rows' many accounts).
    pub async fn start(
        dir: &Path,
        password: &str,
        password_hash: &str,
        connections: usize,
        sizes: &Sizes,
        extra_users: &[String],
    ) -> Result<Pair> {
        for exe in [POSTFIX_MASTER, DOVECOT_MASTER] {
            if !procs::pids_of(exe).is_empty() {
                eprintln!("warning: another {exe} is running; it may skew the figures");
            }
        }
        let (uid, gid) = vmail().context("the vmail user")?;
        let (smtp, imap, pop3, lmtp) = (
            procs::free_port(),
            procs::free_port(),
            procs::free_port(),
            procs::free_port(),
        );
        let postfix_dir = dir.join("postfix");
        let dovecot_dir = dir.join("dovecot");
        mkdir(&postfix_dir)?;
        mkdir(&dovecot_dir)?;
        let home = dovecot_dir.join("home");
        mkdir(&home)?;
        std::os::unix::fs::chown(&home, Some(uid), Some(gid))?;
        let outbound = if sizes.groups.has(Group::Outbound) {
            let (keys, run) = (dir.join("opendkim"), dovecot_dir.join("run"));
            let side = crate::outbound::PairSide::start(&keys, &run).await;
            Some(side.context("OpenDKIM")?)
        } else {
            None
        };
        let mut pair = Pair {
            ep: Endpoints {
                smtp: ([127, 0, 0, 1], smtp).into(),
                imap: ([127, 0, 0, 1], imap).into(),
                pop3: ([127, 0, 0, 1], pop3).into(),
                submission: outbound.as_ref().map(|o| o.submission),
                password: password.to_string(),
            },
            postfix_log: postfix_dir.join("postfix.log"),
            postfix_dir,
            postfix_started: false,
            dovecot_conf: dovecot_dir.join("dovecot.conf"),
            dovecot_base: dovecot_dir.join("run"),
            dovecot_log: dovecot_dir.join("dovecot.log"),
            dovecot_started: false,
            lmtp,
            home: home.clone(),
            uid: (uid, gid),
            outbound,
        };

        // Dovecot.
        let passwd: String = all_users(sizes)
            .iter()
            .chain(extra_users)
            .map(|u| format!("{u}:{{ARGON2ID}}{password_hash}\n"))
            .collect();
        write(&dovecot_dir.join("passwd"), &passwd, 0o644)?;
        write(
            &pair.dovecot_conf,
            &dovecot_conf(
                &dovecot_dir,
                (imap, pop3, lmtp),
                uid,
                gid,
                connections,
                sizes.auth_cache_secs,
            ),
            0o644,
        )?;
        if let Some(o) = &pair.outbound {
            o.configure_dovecot(&pair.dovecot_conf)?;
        }
        let conf = pair.dovecot_conf.display().to_string();
        start_daemon("dovecot", &["-c", &conf], &dovecot_dir.join("start.log"))
            .map_err(|e| anyhow!("{e}\n{}", procs::tail(&pair.dovecot_log, 30)))?;
        pair.dovecot_started = true;
        for addr in [pair.ep.imap, pair.ep.pop3, ([127, 0, 0, 1], lmtp).into()] {
            if let Err(e) = wait_listening(addr, || None).await {
                bail!("Dovecot: {e}\n{}", procs::tail(&pair.dovecot_log, 30));
            }
        }
        // The argon2id hash must work for Dovecot (libsodium) too.
        if let Err(e) = Imap::login(pair.ep.imap, IMAP_USER, password).await {
            bail!(
                "Dovecot login: {e:#}\n{}",
                procs::tail(&pair.dovecot_log, 30)
            );
        }

        // Postfix.
        write(
            &pair.postfix_dir.join("main.cf"),
            &postfix_main_cf(&pair.postfix_dir, lmtp),
            0o644,
        )?;
        write(
            &pair.postfix_dir.join("master.cf"),
            &postfix_master_cf(smtp),
            0o644,
        )?;
        if let Some(o) = &pair.outbound {
            o.configure_postfix(&pair.postfix_dir, sizes)?;
        }
        // Postfix creates what it needs inside these at `check`; they must exist, owned by root.
        let pdir = pair.postfix_dir.display().to_string();
        mkdir(Path::new(&format!("{pdir}-queue")))?;
        let data = PathBuf::from(format!("{pdir}-data"));
        mkdir(&data)?;
        let postfix_uid = run("id", &["-u", "postfix"])?.parse()?;
        std::os::unix::fs::chown(&data, Some(postfix_uid), None)?;
        run("postfix", &["-c", &pdir, "check"])
            .map_err(|e| anyhow!("Postfix: {e}\n{}", procs::tail(&pair.postfix_log, 30)))?;
        let started = start_daemon(
            "postfix",
            &["-c", &pdir, "start"],
            &pair.postfix_dir.join("start.log"),
        );
        pair.postfix_started = true;
        if let Err(e) = started {
            bail!("Postfix: {e}\n{}", procs::tail(&pair.postfix_log, 30));
        }
        for addr in [pair.ep.smtp].into_iter().chain(pair.ep.submission) {
            if let Err(e) = wait_listening(addr, || None).await {
                bail!("Postfix: {e}\n{}", procs::tail(&pair.postfix_log, 30));
            }
        }
        Ok(pair)
    }

    /// Stops both (with SIGKILL to every process of theirs when `kill`, as a crash would;
    /// otherwise `postfix stop` and `doveadm stop`), waits until every process is gone, then
    /// starts both again as `start` does and returns the time from the start commands until
    /// SMTP, IMAP, POP3 and LMTP all accept connections.
    pub async fn restart(&mut self, kill: bool) -> Result<Duration> {
        let pids = self.pids();
        if kill {
            for p in &pids {
                let _ = Command::new("kill")
                    .args(["-KILL", &p.to_string()])
                    .status();
            }
        } else {
            let pdir = self.postfix_dir.display().to_string();
            run("postfix", &["-c", &pdir, "stop"])?;
            run(
                "doveadm",
                &["-c", &self.dovecot_conf.display().to_string(), "stop"],
            )?;
        }
        let t = std::time::Instant::now();
        while pids
            .iter()
            .any(|p| Path::new(&format!("/proc/{p}")).exists())
        {
            if t.elapsed() > Duration::from_secs(60) {
                bail!("Postfix+Dovecot processes still there 60 s after stopping them");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let t = std::time::Instant::now();
        let conf = self.dovecot_conf.display().to_string();
        let dovecot_dir = self
            .dovecot_conf
            .parent()
            .unwrap_or(Path::new("/"))
            .to_path_buf();
        start_daemon("dovecot", &["-c", &conf], &dovecot_dir.join("start.log"))
            .map_err(|e| anyhow!("{e}\n{}", procs::tail(&self.dovecot_log, 30)))?;
        let pdir = self.postfix_dir.display().to_string();
        start_daemon(
            "postfix",
            &["-c", &pdir, "start"],
            &self.postfix_dir.join("start.log"),
        )
        .map_err(|e| anyhow!("{e}\n{}", procs::tail(&self.postfix_log, 30)))?;
        let lmtp = ([127, 0, 0, 1], self.lmtp).into();
        for addr in [self.ep.smtp, self.ep.imap, self.ep.pop3, lmtp] {
            crate::server::wait_listening(addr, || None).await?;
        }
        Ok(t.elapsed())
    }

    fn postfix_pid_file(&self) -> PathBuf {
        PathBuf::from(format!(
            "{}-queue/pid/master.pid",
            self.postfix_dir.display()
        ))
    }

    fn pid(path: &Path) -> Option<u32> {
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    }

    pub fn memory(&self) -> Memory {
        let dovecot = Pair::pid(&self.dovecot_base.join("master.pid"))
            .map(|p| procs::mem(&procs::tree(p)))
            .unwrap_or_default();
        let postfix: Mem = Pair::pid(&self.postfix_pid_file())
            .map(|p| procs::mem(&procs::tree(p)))
            .unwrap_or_default();
        // OpenDKIM, when the outbound rows run, is part of the pair as Mailroom's signer is
        // part of Mailroom.
        let opendkim: Mem = self
            .outbound
            .as_ref()
            .map(|o| o.memory())
            .unwrap_or_default();
        Memory {
            all: dovecot + postfix + opendkim,
            imap: dovecot,
        }
    }

    /// The per-connection processes still around (they exit on idle timeouts). Not
    /// trivial-rewrite: qmgr stays connected to one.
    pub fn transient(&self) -> Vec<String> {
        const TRANSIENT: [&str; 8] = [
            "smtpd",
            "smtp",
            "cleanup",
            "lmtp",
            "imap",
            "imap-login",
            "pop3",
            "pop3-login",
        ];
        self.pids()
            .into_iter()
            .map(procs::comm)
            .filter(|c| TRANSIENT.contains(&c.as_str()))
            .collect()
    }

    fn pids(&self) -> Vec<u32> {
        [
            Pair::pid(&self.dovecot_base.join("master.pid")),
            Pair::pid(&self.postfix_pid_file()),
        ]
        .into_iter()
        .flatten()
        .flat_map(procs::tree)
        .collect()
    }

    /// Process counts by name, for the progress lines.
    pub fn processes(&self) -> String {
        let mut counts = std::collections::BTreeMap::new();
        for p in self.pids() {
            *counts.entry(procs::comm(p)).or_insert(0) += 1;
        }
        counts
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn logs(&self) -> String {
        format!(
            "{}\n{}\n{}",
            procs::tail(&self.postfix_log, 20),
            procs::tail(&self.dovecot_log, 20),
            self.outbound.as_ref().map(|o| o.logs()).unwrap_or_default()
        )
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        if self.postfix_started {
            let pdir = self.postfix_dir.display().to_string();
            if let Err(e) = run("postfix", &["-c", &pdir, "stop"]) {
                eprintln!("stopping Postfix: {e}");
            }
        }
        if self.dovecot_started {
            let master = Pair::pid(&self.dovecot_base.join("master.pid"));
            stop_dovecot(&self.dovecot_conf, master, "Dovecot");
        }
    }
}

/// Stops the Dovecot of `conf` (`doveadm stop`, or SIGTERM to `master` when that fails) and
/// waits up to 10 s for its master to go, so that what runs next does not share the machine
/// with it.
pub fn stop_dovecot(conf: &Path, master: Option<u32>, name: &str) {
    let conf = conf.display().to_string();
    if let Err(e) = run("doveadm", &["-c", &conf, "stop"]) {
        eprintln!("stopping {name}: {e}");
        if let Some(pid) = master {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
    if let Some(pid) = master {
        for _ in 0..100 {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
