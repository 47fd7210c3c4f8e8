//! The `mailroom` command: admin commands, their errors and exit codes, config checks, init,
//! and `serve` as a process (bound addresses logged, admin login printed once, SIGTERM).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use tempfile::TempDir;

struct Cli {
    dir: TempDir,
    config: PathBuf,
}

impl Cli {
    fn new() -> Cli {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("mailroom.toml");
        let data = dir.path().join("data");
        std::fs::write(
            &config,
            format!(
                "hostname = \"mail.example.org\"\ndomain = \"example.org\"\ndata_dir = \"{}\"\n\
                 [listen]\nsmtp = []\nsubmission = []\nsubmissions = []\nimap = [\"127.0.0.1:0\"]\n\
                 imaps = []\npop3 = []\npop3s = []\nmanagesieve = []\nhttp = [\"127.0.0.1:0\"]\nhttps = [\"127.0.0.1:0\"]\n",
                data.display()
            ),
        )
        .unwrap();
        // Admin commands never create a database (only `serve` and `init` do): make it the
        // way a first start does. On a thread of its own: some tests are async.
        let db = data.join("mailroom.db");
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async {
                mailroom::store::Store::open(&db)
                    .await
                    .unwrap()
                    .close()
                    .await;
            });
        })
        .join()
        .unwrap();
        Cli { dir, config }
    }

    fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mailroom"));
        c.arg("--config").arg(&self.config);
        c.env_remove("RUST_LOG");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, "")
    }

    fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command that must fail with status 1 and returns its stderr.
    fn fails(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run_with_stdin(args, stdin);
        assert_eq!(out.status.code(), Some(1), "{args:?} should fail: {out:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(!err.contains("panicked"), "{err}");
        // The one error line (after the line naming the configuration and database).
        err.lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or_else(|| panic!("no error line in {err}"))
            .to_string()
    }
}

#[test]
fn domains_users_and_aliases() {
    let cli = Cli::new();
    assert!(
        cli.ok(&["domain", "add", "Example.ORG"])
            .contains("added domain example.org")
    );
    assert!(
        cli.fails(&["domain", "add", "example.org"], "")
            .contains("already exists")
    );
    assert!(
        cli.fails(&["domain", "add", "not a domain"], "")
            .contains("is not a valid domain")
    );

    let out = cli.run_with_stdin(
        &[
            "user",
            "add",
            "alice@example.org",
            "--password-stdin",
            "--quota",
            "1G",
        ],
        "staple orbit lantern\n",
    );
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("added alice@example.org (quota 1G)"));
    let generated = cli.ok(&["user", "add", "bob@example.org", "--admin"]);
    assert!(generated.contains("as admin"), "{generated}");
    assert!(
        generated.contains("password: "),
        "a generated password is shown"
    );

    assert!(
        cli.fails(
            &["user", "add", "alice@example.org", "--password-stdin"],
            "x\n"
        )
        .contains("already exists")
    );
    assert!(
        cli.fails(
            &["user", "add", "carol@unknown.org", "--password-stdin"],
            "x\n"
        )
        .contains("unknown domain unknown.org")
    );
    assert!(
        cli.fails(
            &["user", "add", "not-an-address", "--password-stdin"],
            "x\n"
        )
        .contains("not an address")
    );
    assert!(
        cli.fails(&["user", "add", "dave@example.org", "--quota", "lots"], "")
            .contains("--quota")
    );
    assert!(
        cli.fails(
            &["user", "add", "erin@example.org", "--password-stdin"],
            "\n"
        )
        .contains("empty")
    );
    assert!(
        cli.fails(
            &["user", "passwd", "nobody@example.org", "--password-stdin"],
            "x\n"
        )
        .contains("not found")
    );
    assert!(
        cli.fails(&["user", "remove", "nobody@example.org"], "")
            .contains("not found")
    );
    assert!(
        cli.fails(&["user", "frobnicate"], "")
            .contains("unrecognized subcommand")
    );

    let list = cli.ok(&["user", "list"]);
    assert!(list.contains("alice@example.org"), "{list}");
    assert!(list.contains("bob@example.org"), "{list}");
    assert!(list.contains("admin"), "{list}");
    assert!(
        !list.contains("dave@"),
        "a failed add leaves nothing behind: {list}"
    );
    assert!(!list.contains("erin@"), "{list}");

    assert!(
        cli.ok(&[
            "alias",
            "add",
            "info@example.org",
            "alice@example.org",
            "bob@example.org"
        ])
        .contains("info@example.org -> alice@example.org, bob@example.org")
    );
    assert!(
        cli.ok(&["alias", "add", "@example.org", "alice@example.org"])
            .contains("@example.org -> alice@example.org")
    );
    assert!(
        cli.fails(
            &["alias", "add", "alice@example.org", "bob@example.org"],
            ""
        )
        .contains("is an account")
    );
    assert!(
        cli.fails(&["alias", "add", "x@nowhere.org", "bob@example.org"], "")
            .contains("domain nowhere.org")
    );
    let aliases = cli.ok(&["alias", "list"]);
    assert!(aliases.contains("info@example.org"), "{aliases}");
    cli.ok(&["alias", "remove", "info@example.org", "bob@example.org"]);
    assert!(
        cli.ok(&["alias", "list"])
            .contains("info@example.org                         -> alice@example.org\n")
    );
    cli.ok(&["alias", "remove", "info@example.org"]);
    assert!(
        cli.fails(&["alias", "remove", "info@example.org"], "")
            .contains("not found")
    );

    assert!(
        cli.fails(&["domain", "remove", "example.org"], "")
            .contains("remove them first")
    );
    cli.ok(&["user", "remove", "alice@example.org"]);
    cli.ok(&["user", "remove", "bob@example.org"]);
    cli.ok(&["domain", "remove", "example.org"]);
    assert!(cli.ok(&["domain", "list"]).contains("no domains"));
}

#[tokio::test]
async fn a_user_added_by_the_cli_can_log_in_after_a_restart() {
    let cli = Cli::new();
    cli.ok(&["domain", "add", "example.org"]);
    let out = cli.run_with_stdin(
        &["user", "add", "a@example.org", "--password-stdin"],
        "pw with many spaces\n",
    );
    assert!(out.status.success());
    let config = mailroom::config::Config::load(&cli.config).unwrap();
    for _ in 0..2 {
        let running = mailroom::app::start(config.clone()).await.unwrap();
        let ip = "127.0.0.1".parse().unwrap();
        let a = running
            .auth
            .login("test", ip, "a@example.org", "pw with many spaces")
            .await
            .unwrap();
        assert_eq!(a.account.address, "a@example.org");
        running.shutdown().await;
    }
    let out = cli.run_with_stdin(
        &["user", "passwd", "a@example.org", "--password-stdin"],
        "a new one, longer\n",
    );
    assert!(out.status.success());
    let running = mailroom::app::start(config).await.unwrap();
    let ip = "127.0.0.1".parse().unwrap();
    assert!(
        running
            .auth
            .login("test", ip, "a@example.org", "a new one, longer")
            .await
            .is_ok()
    );
    running.shutdown().await;
}

#[test]
fn config_errors_name_the_key_and_line() {
    let cli = Cli::new();
    assert!(cli.ok(&["check-config"]).contains("ok"));
    std::fs::write(&cli.config, "hostname = \"h\"\ndomain = \"example.org\"\ndata_dir = \"d\"\n[limits]\nmax_conections = 5\n").unwrap();
    let err = cli.fails(&["check-config"], "");
    assert!(
        err.contains("max_conections") && err.contains("line 5"),
        "{err}"
    );
    std::fs::write(&cli.config, "hostname = \n").unwrap();
    assert!(cli.fails(&["check-config"], "").contains("line 1"));
    let missing = cli.dir.path().join("absent.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_mailroom"))
        .args(["--config", missing.to_str().unwrap(), "check-config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("absent.toml"));
}

#[test]
fn print_config_is_the_embedded_default_and_parses() {
    let out = Command::new(env!("CARGO_BIN_EXE_mailroom"))
        .arg("print-config")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text, mailroom::config::DEFAULT_TOML);
    mailroom::config::Config::parse(&text, Path::new("printed")).unwrap();
}

#[test]
fn init_writes_a_production_config_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("etc/mailroom.toml");
    let data = dir.path().join("var");
    let init = |force: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mailroom"));
        c.args([
            "--config",
            config.to_str().unwrap(),
            "init",
            "--hostname",
            "mail.example.org",
            "--domain",
            "example.org",
            "--data-dir",
            data.to_str().unwrap(),
        ]);
        if force {
            c.arg("--force");
        }
        c.output().unwrap()
    };
    let out = init(false);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Admin login: admin@example.org  password: "),
        "{stdout}"
    );
    assert!(
        stdout.contains(" IN MX    10 mail.example.org."),
        "{stdout}"
    );
    assert!(stdout.contains("_domainkey.example.org."), "{stdout}");
    assert!(stdout.contains("\"v=DKIM1; k=ed25519; p="), "{stdout}");
    let written = mailroom::config::Config::load(&config).unwrap();
    assert_eq!(written.listen.smtp, vec!["[::]:25".parse().unwrap()]);
    assert_eq!(written.tls.mode, mailroom::config::TlsMode::Acme);
    assert_eq!(written.data_dir, data);

    let again = init(false);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    let forced = init(true);
    assert!(forced.status.success());
    assert!(String::from_utf8_lossy(&forced.stdout).contains("already existed"));
}

/// `serve` as users run it: logs each bound address, prints the admin login once, answers
/// HTTP, exits 0 on SIGTERM, and does not print the login again on the next start.
#[test]
fn serve_prints_the_admin_login_once_and_stops_on_sigterm() {
    let cli = Cli::new();
    let start = || {
        let mut child = cli
            .command()
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let rx = crate::harness::stderr_lines(&mut child);
        let mut bound: Vec<String> = Vec::new();
        let logged = |bound: &[String], kind: &str| bound.iter().any(|b| b.starts_with(kind));
        while !(logged(&bound, "http on") && logged(&bound, "https on")) {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("server logs its addresses");
            if let Some(rest) = line.split("listening: ").nth(1) {
                bound.push(rest.to_string());
            }
        }
        (child, bound, rx)
    };

    let (child, bound, _) = start();
    assert!(
        bound.iter().any(|b| b.starts_with("https on 127.0.0.1:")),
        "{bound:?}"
    );
    let http = bound
        .iter()
        .find_map(|b| b.strip_prefix("http on "))
        .unwrap()
        .to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (status, _, _) = rt.block_on(async {
        let mut s = tokio::net::TcpStream::connect(http.as_str()).await.unwrap();
        crate::harness::http_get(&mut s, "/healthz").await
    });
    assert_eq!(status, 200);
    let out = stop(child);
    assert!(out.status.success(), "exit 0 on SIGTERM: {:?}", out.status);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("login:    admin@example.org"), "{stdout}");
    assert!(stdout.contains("password: "), "{stdout}");

    // Data at rest is for the service user only (the process's umask is 077).
    use std::os::unix::fs::PermissionsExt;
    let data = cli.dir.path().join("data");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("mailroom.db")), 0o600);
    assert_eq!(mode(&data.join("tls")), 0o700);
    // A data directory opened up by hand is warned about at the next start.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (child, _, rx) = start();
    let out = stop(child);
    assert!(out.status.success());
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("password"),
        "printed only once"
    );
    let logged: Vec<String> = rx.iter().collect();
    assert!(
        logged
            .iter()
            .any(|l| l.contains("can be read by other users") && l.contains("/data")),
        "{logged:?}"
    );
}

fn stop(child: std::process::Child) -> Output {
    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn queue_list_retry_and_drop() {
    let cli = Cli::new();
    cli.ok(&["domain", "add", "example.org"]);
    assert!(cli.ok(&["queue", "list"]).contains("the queue is empty"));
    // Something waiting for another server, put there the way submission does.
    let store = mailroom::store::Store::open(&cli.dir.path().join("data/mailroom.db"))
        .await
        .unwrap();
    let id = store
        .queue_add(
            "bob@example.org",
            &["x@remote.test".into()],
            b"Subject: x\r\n\r\nx\r\n",
        )
        .await
        .unwrap();
    store
        .queue_defer(1, mailroom::store::now() + 3600, "451 4.7.1 greylisted")
        .await
        .unwrap();
    store.close().await;
    let list = cli.ok(&["queue", "list"]);
    assert!(
        list.contains(&format!("{id:>6}  from bob@example.org")),
        "{list}"
    );
    assert!(
        list.contains("to x@remote.test (1 attempts, next try in"),
        "{list}"
    );
    assert!(list.contains("last error: 451 4.7.1 greylisted"), "{list}");
    assert!(
        cli.ok(&["queue", "retry", &id.to_string()])
            .contains("retried now")
    );
    assert!(cli.ok(&["queue", "list"]).contains("due now"));
    assert!(
        cli.fails(&["queue", "drop", "999"], "")
            .contains("no queued message 999")
    );
    assert!(
        cli.ok(&["queue", "drop", &id.to_string()])
            .contains("removed")
    );
    assert!(cli.ok(&["queue", "list"]).contains("the queue is empty"));
}

#[test]
fn backup_and_restore() {
    use std::os::unix::fs::PermissionsExt;
    let cli = Cli::new();
    cli.ok(&["domain", "add", "example.org"]);
    cli.ok(&["user", "add", "bob@example.org"]);
    let dir = cli.dir.path().join("bk");
    let dir_arg = dir.to_str().unwrap();
    let out = cli.ok(&["backup", dir_arg]);
    assert!(
        out.contains("backed up 0 messages of 1 accounts") && out.contains("integrity check ok"),
        "{out}"
    );
    let made = mailroom::backup::dated_backups(&dir).unwrap();
    assert_eq!(made.len(), 1, "{made:?}");
    let mode = std::fs::metadata(&made[0]).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "a backup is for its owner only");
    // --keep: the newest N dated backups stay; other files are never touched.
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    for _ in 0..3 {
        cli.ok(&["backup", dir_arg, "--keep", "2"]);
    }
    assert_eq!(mailroom::backup::dated_backups(&dir).unwrap().len(), 2);
    assert!(dir.join("notes.txt").exists());
    let dest = mailroom::backup::dated_backups(&dir).unwrap().remove(0);
    let dest = dest.to_str().unwrap();

    cli.ok(&["user", "remove", "bob@example.org"]);
    // Without a terminal to ask on, restore says what the backup holds and wants --yes.
    let err = cli.fails(&["restore", dest], "");
    assert!(err.contains("--yes"), "{err}");
    let out = cli.run(&["restore", dest]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("bob@example.org: 0 messages"),
        "{out:?}"
    );
    assert!(
        !cli.ok(&["user", "list"]).contains("bob@example.org"),
        "nothing replaced"
    );
    let out = cli.ok(&["restore", dest, "--yes"]);
    assert!(
        out.contains("holds 0 messages") && out.contains("restored 0 messages"),
        "{out}"
    );
    assert!(
        cli.ok(&["user", "list"]).contains("bob@example.org"),
        "bob is back"
    );
    let missing = cli.dir.path().join("nope.db");
    cli.fails(&["restore", missing.to_str().unwrap(), "--yes"], "");
    // A file that is not a database: one line, its cause said once.
    let junk = cli.dir.path().join("junk.db");
    std::fs::write(&junk, vec![b'x'; 4096]).unwrap();
    let err = cli.fails(&["restore", junk.to_str().unwrap(), "--yes"], "");
    assert_eq!(err.matches("not a database").count(), 1, "{err}");
}

/// Commands other than `serve` and `init` act on the production data or refuse: without a
/// configuration (no --config, no /etc/mailroom/mailroom.toml) they work only where a trial's
/// ./data exists, and never create a database.
#[test]
fn admin_commands_refuse_to_act_on_nothing() {
    if Path::new("/etc/mailroom/mailroom.toml").exists() {
        eprintln!("skipped: this machine has a production configuration");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_mailroom"))
            .args(args)
            .current_dir(dir.path())
            .env_remove("MAILROOM_CONFIG")
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    };
    for args in [
        &["user", "list"][..],
        &["import", "a@localhost", "x.mbox"],
        &["restore", "x.db", "--yes"],
        &["status"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("no configuration found"), "{args:?}: {err}");
    }
    // A trial directory without a database: named, and not created.
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let out = run(&["user", "list"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the embedded trial configuration, database ./data/mailroom.db")
            && err.contains("there is no database at ./data/mailroom.db"),
        "{err}"
    );
    assert!(!dir.path().join("data/mailroom.db").exists());
}

#[test]
fn check_config_reports_every_problem_with_its_key() {
    let cli = Cli::new();
    std::fs::write(
        &cli.config,
        "hostname = \"mail.example.org\"\ndata_dir = \"/proc/mailroom-data\"\n\
         [listen]\nsmtp = [\"0.0.0.0:2525\"]\nimap = [\"127.0.0.1:2525\"]\n\
         [tls]\nmode = \"files\"\ncert = \"/nonexistent/cert.pem\"\nkey = \"/nonexistent/key.pem\"\n",
    )
    .unwrap();
    let out = cli.run(&["check-config"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].contains("data_dir /proc/mailroom-data"),
        "{stdout}"
    );
    assert!(
        lines[1].contains("[listen] imap = 127.0.0.1:2525 shares its address with smtp"),
        "{stdout}"
    );
    assert!(
        lines[2].contains("[tls] cert/key") && lines[2].contains("/nonexistent/cert.pem"),
        "{stdout}"
    );
    // Only some keys: the rest are the documented defaults (domain from the hostname).
    std::fs::write(
        &cli.config,
        "hostname = \"mail.example.org\"\n[listen]\nsmtp = []\n",
    )
    .unwrap();
    let out = cli.ok(&["check-config"]);
    assert!(out.contains("domain example.org, data in ./data"), "{out}");
    // ACME needs a public name, an https directory, a contact and port 443.
    let data = cli.dir.path().join("data");
    std::fs::write(
        &cli.config,
        format!(
            "hostname = \"localhost\"\ndata_dir = \"{}\"\n[listen]\nhttps = [\"127.0.0.1:8443\"]\n\
             [tls]\nmode = \"acme\"\nacme_directory = \"http://ca.example/dir\"\n",
            data.display()
        ),
    )
    .unwrap();
    let out = cli.run(&["check-config"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for problem in [
        "[tls] acme_directory \"http://ca.example/dir\" must be an https:// URL",
        "[tls] acme_contact is not set",
        "[tls] acme_domains: \"localhost\" is not a public name",
        "[listen] https has no address on port 443",
    ] {
        assert!(stdout.contains(problem), "{problem} in {stdout}");
    }
    assert_eq!(stdout.lines().count(), 4, "{stdout}");
}

#[test]
fn status_says_what_needs_attention() {
    let cli = Cli::new();
    let out = cli.run(&["status"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for fact in [
        "server:      not running",
        "queue:       empty",
        "certificate: self-signed",
        "last backup: never",
        "database:    ",
        "needs attention:",
        "the server is not running",
        "no backup was ever made",
    ] {
        assert!(stdout.contains(fact), "{fact} in {stdout}");
    }
}

#[test]
fn serve_tells_systemd_when_it_is_ready_and_when_it_stops() {
    let cli = Cli::new();
    let socket_path = cli.dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let child = cli
        .command()
        .arg("serve")
        .env("NOTIFY_SOCKET", &socket_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 256];
    let n = socket.recv(&mut buf).expect("READY=1 from the server");
    let ready = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(ready.starts_with("READY=1\n"), "{ready:?}");
    let out = stop(child);
    assert!(out.status.success());
    let n = socket.recv(&mut buf).expect("STOPPING=1 from the server");
    assert_eq!(&buf[..n], b"STOPPING=1");
}

/// Signals are handled in one place (`serve`): SIGHUP reloads the certificate files (a bad
/// file keeps the old one) and never ends the server; SIGTERM then stops it cleanly.
#[test]
fn serve_reloads_tls_files_on_sighup() {
    let cli = Cli::new();
    let cert = cli.dir.path().join("cert.pem");
    let key = cli.dir.path().join("key.pem");
    let write_pair = |name: &str| {
        let pair = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
        std::fs::write(&cert, pair.cert.pem()).unwrap();
        std::fs::write(&key, pair.signing_key.serialize_pem()).unwrap();
    };
    write_pair("first.example.test");
    let mut config = std::fs::OpenOptions::new()
        .append(true)
        .open(&cli.config)
        .unwrap();
    write!(
        config,
        "[tls]\nmode = \"files\"\ncert = \"{}\"\nkey = \"{}\"\n",
        cert.display(),
        key.display()
    )
    .unwrap();
    drop(config);

    let mut child = cli
        .command()
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = crate::harness::stderr_lines(&mut child);
    let wait_for = |what: &str| loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no log line with {what:?}"));
        if line.contains(what) {
            return line;
        }
    };
    wait_for("listening: https on");
    let hangup = || {
        let sent = Command::new("kill")
            .args(["-HUP", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    };

    write_pair("second.example.test");
    hangup();
    let line = wait_for("SIGHUP: TLS");
    assert!(
        line.contains("reloaded") && line.contains("second.example.test"),
        "{line}"
    );

    std::fs::write(&cert, "not a certificate\n").unwrap();
    hangup();
    let line = wait_for("SIGHUP: TLS");
    assert!(
        line.contains("reload failed") && line.contains(cert.to_str().unwrap()),
        "{line}"
    );

    let out = stop(child);
    assert!(out.status.success(), "exit 0 on SIGTERM: {:?}", out.status);
}

/// The password rule (`auth::password::check_strength`) holds for passwords typed at the CLI:
/// too short, or long but guessable (the user's own address), is refused with the reason, and
/// nothing is created or changed.
#[test]
fn the_cli_refuses_weak_passwords() {
    let cli = Cli::new();
    cli.ok(&["domain", "add", "example.org"]);
    let err = cli.fails(
        &["user", "add", "quixote@example.org", "--password-stdin"],
        "x\n",
    );
    assert!(err.contains("use at least 10"), "{err}");
    let err = cli.fails(
        &["user", "add", "quixote@example.org", "--password-stdin"],
        "quixote@example.org\n",
    );
    assert!(err.contains("too easy to guess"), "{err}");
    assert!(cli.ok(&["user", "list"]).contains("no accounts"));
    cli.ok(&["user", "add", "quixote@example.org"]);
    let err = cli.fails(
        &["user", "passwd", "quixote@example.org", "--password-stdin"],
        "qwertyuiop\n",
    );
    assert!(err.contains("too easy to guess"), "{err}");
    let out = cli.run_with_stdin(
        &["user", "passwd", "quixote@example.org", "--password-stdin"],
        "staple orbit lantern cactus\n",
    );
    assert!(out.status.success(), "{out:?}");
}

/// Every change made at the command line is in the admin audit log, with the actor `cli` and
/// without the password.
#[tokio::test]
async fn cli_changes_are_audited() {
    let cli = Cli::new();
    cli.ok(&["domain", "add", "example.org"]);
    let out = cli.run_with_stdin(
        &[
            "user",
            "add",
            "quixote@example.org",
            "--password-stdin",
            "--quota",
            "1G",
        ],
        "staple orbit lantern\n",
    );
    assert!(out.status.success(), "{out:?}");
    cli.ok(&["user", "passwd", "quixote@example.org"]);
    cli.ok(&["alias", "add", "team@example.org", "quixote@example.org"]);
    cli.ok(&["alias", "remove", "team@example.org", "quixote@example.org"]);
    cli.ok(&["user", "remove", "quixote@example.org"]);
    cli.ok(&["domain", "remove", "example.org"]);
    // A refused command records nothing.
    cli.fails(&["domain", "remove", "example.org"], "");
    let config = mailroom::config::Config::load(&cli.config).unwrap();
    let store = mailroom::store::Store::open(&config.database_path())
        .await
        .unwrap();
    let log = store.audit_entries("", 0, 100).await.unwrap();
    let got: Vec<(&str, &str, &str, &str, &str)> = log
        .entries
        .iter()
        .rev()
        .map(|e| {
            (
                e.actor.as_str(),
                e.ip.as_str(),
                e.action.as_str(),
                e.target.as_str(),
                e.detail.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("cli", "", "domain.create", "example.org", ""),
            (
                "cli",
                "",
                "account.create",
                "quixote@example.org",
                "quota 1G, password chosen"
            ),
            (
                "cli",
                "",
                "account.password",
                "quixote@example.org",
                "generated"
            ),
            (
                "cli",
                "",
                "alias.create",
                "team@example.org",
                "quixote@example.org"
            ),
            (
                "cli",
                "",
                "alias.remove",
                "team@example.org",
                "quixote@example.org"
            ),
            ("cli", "", "account.remove", "quixote@example.org", ""),
            ("cli", "", "domain.remove", "example.org", ""),
        ]
    );
    store.close().await;
}
