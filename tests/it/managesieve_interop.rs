//! Third-party ManageSieve clients against the server: Debian's python3-sievelib (the PyPI
//! `sievelib`, run with /usr/bin/python3 by `tests/interop/managesieve_sievelib.py`) and
//! Debian's `sieve-connect` (Perl), both over STARTTLS: upload, list, activate, download,
//! delete, and CHECKSCRIPT of a broken script showing the line of the error. `.ci/run`
//! installs both.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;

use crate::harness::{self, TestServer, account};

const GOOD: &str = "require [\"fileinto\"];\r\nif header :contains \"subject\" \"school\" {\r\n  fileinto \"School\";\r\n}\r\n";
const BROKEN: &str = "require [\"fileinto\"];\r\nif header :contains \"subject\" {\r\n  fileinto \"School\";\r\n}\r\n";

async fn server() -> (TestServer, i64) {
    let t = harness::start().await;
    let alice = account(&t.running.store, "alice@localhost", 0).await;
    (t, alice.id)
}

#[tokio::test]
async fn sievelib_uploads_lists_activates_downloads_and_deletes() {
    let (t, id) = server().await;
    let root = env!("CARGO_MANIFEST_DIR");
    let out = tokio::process::Command::new("/usr/bin/python3")
        .arg(format!("{root}/tests/interop/managesieve_sievelib.py"))
        .env("SIEVE_HOST", "localhost")
        .env(
            "SIEVE_PORT",
            t.running.addr("managesieve").unwrap().port().to_string(),
        )
        .env("SIEVE_USER", "alice@localhost")
        .env("SIEVE_PASSWORD", "secret")
        .stdin(Stdio::null())
        .output()
        .await
        .expect("/usr/bin/python3 runs (CI installs python3-sievelib: .ci/run)");
    println!("{}", String::from_utf8_lossy(&out.stdout));
    assert!(
        out.status.success(),
        "sievelib failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let scripts = t.running.store.sieve_scripts(id).await.unwrap();
    assert_eq!(
        scripts
            .iter()
            .map(|s| (s.name.as_str(), s.active))
            .collect::<Vec<_>>(),
        [("kept", true)]
    );
    let active = t.running.store.active_sieve(id).await.unwrap().unwrap();
    assert_eq!(active.source, GOOD);
}

/// Runs `sieve-connect` with `args` over STARTTLS as alice (password on stdin): its output
/// (stdout and stderr) and whether it succeeded.
async fn sieve_connect(t: &TestServer, args: &[&str]) -> (bool, String) {
    let port = t.running.addr("managesieve").unwrap().port().to_string();
    let cafile = t.dir.path().join("tls/self-signed.crt");
    let mut child = tokio::process::Command::new("sieve-connect")
        .args(["--server", "localhost", "--port", &port])
        .args(["--user", "alice@localhost", "--passwordfd", "0"])
        .args(["--authmech", "PLAIN", "--tlshostname", "localhost"])
        .arg("--tlscafile")
        .arg(&cafile)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sieve-connect runs (CI installs it: .ci/run)");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"secret\n").await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("sieve-connect ends")
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("sieve-connect {args:?}: {}\n{text}", out.status);
    (out.status.success(), text)
}

#[tokio::test]
async fn sieve_connect_uploads_lists_activates_downloads_and_deletes() {
    let found = std::process::Command::new("sh")
        .args(["-c", "command -v sieve-connect"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "sieve-connect is not installed: CI installs it (.ci/run); locally `apt-get install sieve-connect`"
    );
    let (t, id) = server().await;
    let work = tempfile::tempdir().unwrap();
    let good = work.path().join("good.sieve");
    let broken = work.path().join("broken.sieve");
    let fetched = work.path().join("fetched.sieve");
    std::fs::write(&good, GOOD).unwrap();
    std::fs::write(&broken, BROKEN).unwrap();
    let path = |p: &std::path::Path| p.to_str().unwrap().to_string();

    let (ok, out) = sieve_connect(
        &t,
        &[
            "--upload",
            "--localsieve",
            &path(&good),
            "--remotesieve",
            "school",
        ],
    )
    .await;
    assert!(ok, "{out}");
    let (ok, out) = sieve_connect(&t, &["--list"]).await;
    assert!(ok && out.contains("school"), "{out}");
    let (ok, out) = sieve_connect(&t, &["--activate", "--remotesieve", "school"]).await;
    assert!(ok, "{out}");
    assert_eq!(
        t.running
            .store
            .active_sieve(id)
            .await
            .unwrap()
            .unwrap()
            .name,
        "school"
    );
    let (ok, out) = sieve_connect(&t, &["--list"]).await;
    assert!(
        ok && out.contains("school") && out.contains("ACTIVE"),
        "{out}"
    );
    let (ok, out) = sieve_connect(
        &t,
        &[
            "--download",
            "--remotesieve",
            "school",
            "--localsieve",
            &path(&fetched),
        ],
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(std::fs::read_to_string(&fetched).unwrap(), GOOD);

    let (ok, out) = sieve_connect(&t, &["--checkscript", "--localsieve", &path(&broken)]).await;
    assert!(!ok, "the broken script is refused: {out}");
    assert!(out.contains("line 2"), "the error names its line: {out}");
    let (ok, out) = sieve_connect(&t, &["--checkscript", "--localsieve", &path(&good)]).await;
    assert!(ok, "{out}");

    let (ok, out) = sieve_connect(&t, &["--delete", "--remotesieve", "school"]).await;
    assert!(!ok, "the active script is not deleted: {out}");
    let (ok, out) = sieve_connect(&t, &["--deactivate"]).await;
    assert!(ok, "{out}");
    let (ok, out) = sieve_connect(&t, &["--delete", "--remotesieve", "school"]).await;
    assert!(ok, "{out}");
    assert!(t.running.store.sieve_scripts(id).await.unwrap().is_empty());
}
