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
                 imaps = []\npop3 = []\npop3s = []\nhttp = [\"127.0.0.1:0\"]\nhttps = [\"127.0.0.1:0\"]\n",
                data.display()
            ),
        )
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
        assert!(err.starts_with("error: "), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        err
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
        "hunter22\n",
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
        "pw with spaces\n",
    );
    assert!(out.status.success());
    let config = mailroom::config::Config::load(&cli.config).unwrap();
    for _ in 0..2 {
        let running = mailroom::app::start(config.clone()).await.unwrap();
        let ip = "127.0.0.1".parse().unwrap();
        let a = running
            .auth
            .login("test", ip, "a@example.org", "pw with spaces")
            .await
            .unwrap();
        assert_eq!(a.account.address, "a@example.org");
        running.shutdown().await;
    }
    let out = cli.run_with_stdin(
        &["user", "passwd", "a@example.org", "--password-stdin"],
        "new one\n",
    );
    assert!(out.status.success());
    let running = mailroom::app::start(config).await.unwrap();
    let ip = "127.0.0.1".parse().unwrap();
    assert!(
        running
            .auth
            .login("test", ip, "a@example.org", "new one")
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
        (child, bound)
    };

    let (child, bound) = start();
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

    let (child, _) = start();
    let out = stop(child);
    assert!(out.status.success());
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("password"),
        "printed only once"
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
    let cli = Cli::new();
    cli.ok(&["domain", "add", "example.org"]);
    cli.ok(&["user", "add", "bob@example.org"]);
    let dest = cli.dir.path().join("bk/one.db");
    let dest = dest.to_str().unwrap();
    let out = cli.ok(&["backup", dest]);
    assert!(
        out.contains("backed up 0 messages") && out.contains("integrity check ok"),
        "{out}"
    );
    assert!(cli.fails(&["backup", dest], "").contains("exists"));
    cli.ok(&["user", "remove", "bob@example.org"]);
    let out = cli.ok(&["restore", dest]);
    assert!(out.contains("restored 0 messages"), "{out}");
    assert!(
        cli.ok(&["user", "list"]).contains("bob@example.org"),
        "bob is back"
    );
    let missing = cli.dir.path().join("nope.db");
    cli.fails(&["restore", missing.to_str().unwrap()], "");
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
