//! The Debian package: `cargo deb` builds it from the binary this test run built, `dpkg-deb`
//! lists and describes it, and its maintainer scripts run against stub commands that record
//! what they would do to a real machine (user, directories, systemd units) on install, upgrade,
//! removal and purge. Installing for real needs root and systemd; the stubs are the scratch
//! root this machine allows.
//!
//! Needs `cargo-deb` (`.ci/run` installs it): skipped where it is missing unless
//! `MAILROOM_PACKAGE_TEST=required`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn cargo_deb_available() -> bool {
    let found = Command::new("cargo")
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found && std::env::var("MAILROOM_PACKAGE_TEST").as_deref() == Ok("required") {
        panic!("cargo-deb is missing and MAILROOM_PACKAGE_TEST=required");
    }
    found
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Builds the package from the debug binary of this test run.
fn build(dir: &Path) -> PathBuf {
    let deb = dir.join("mailroom.deb");
    let mut cmd = Command::new("cargo");
    cmd.args([
        "deb",
        "--no-build",
        "--profile",
        "dev",
        "--fast",
        "--output",
    ])
    .arg(&deb)
    .current_dir(env!("CARGO_MANIFEST_DIR"));
    // The binary is the one cargo built for these tests, wherever its target directory is.
    let exe = Path::new(env!("CARGO_BIN_EXE_mailroom"));
    if let Some(target) = exe.parent().and_then(Path::parent) {
        cmd.env("CARGO_TARGET_DIR", target);
    }
    run(&mut cmd);
    deb
}

/// A directory of stub commands that append their name and arguments to `log`; `getent`
/// and `deb-systemd-helper` answer as on a machine that had the package (`user_exists`: an
/// upgrade) or not.
fn stubs(dir: &Path, log: &Path, user_exists: bool) -> PathBuf {
    let bin = dir.join(format!("stubs-{user_exists}"));
    std::fs::create_dir_all(&bin).unwrap();
    let record = format!(
        "#!/bin/sh\necho \"$(basename \"$0\") $*\" >> {}\n",
        log.display()
    );
    for name in [
        "adduser",
        "install",
        "deb-systemd-invoke",
        "systemctl",
        "rm",
        "deluser",
        "userdel",
    ] {
        write_exe(&bin.join(name), &record);
    }
    let getent = format!("{record}exit {}\n", if user_exists { 0 } else { 2 });
    write_exe(&bin.join("getent"), &getent);
    // deb-systemd-helper as on a machine where the package was (`installed`) or was not there
    // before: `debian-installed` says so; `was-enabled` defaults to yes, as the real one does.
    let helper = format!(
        "{record}[ \"$1\" = debian-installed ] && exit {}\nexit 0\n",
        if user_exists { 0 } else { 1 }
    );
    write_exe(&bin.join("deb-systemd-helper"), &helper);
    bin
}

fn write_exe(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Runs a maintainer script with the stubs first on PATH, as if systemd were running
/// (`/run/systemd/system` replaced by a directory that exists); returns what it did.
fn maintainer(script: &Path, args: &[&str], dir: &Path, user_exists: bool) -> String {
    let log = dir.join("log");
    let _ = std::fs::remove_file(&log);
    let text = std::fs::read_to_string(script).unwrap();
    let systemd = dir.join("run-systemd");
    std::fs::create_dir_all(&systemd).unwrap();
    let patched = dir.join("script");
    write_exe(
        &patched,
        &text.replace("/run/systemd/system", systemd.to_str().unwrap()),
    );
    let bin = stubs(dir, &log, user_exists);
    let out = Command::new("/bin/sh")
        .arg(&patched)
        .args(args)
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{script:?} {args:?}: {out:?}");
    std::fs::read_to_string(&log).unwrap_or_default()
}

#[test]
fn the_debian_package_installs_upgrades_and_keeps_the_data() {
    if !cargo_deb_available() {
        eprintln!("skipped: cargo-deb is not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let deb = build(tmp.path());

    let contents = run(Command::new("dpkg-deb").arg("-c").arg(&deb));
    for (mode, path) in [
        ("-rwxr-xr-x", "./usr/bin/mailroom"),
        ("-rw-r--r--", "./usr/lib/systemd/system/mailroom.service"),
        (
            "-rw-r--r--",
            "./usr/lib/systemd/system/mailroom-backup.service",
        ),
        (
            "-rw-r--r--",
            "./usr/lib/systemd/system/mailroom-backup.timer",
        ),
        ("-rw-r--r--", "./etc/mailroom/mailroom.toml.example"),
        ("-rw-r--r--", "./usr/share/doc/mailroom/copyright"),
    ] {
        assert!(
            contents
                .lines()
                .any(|l| l.starts_with(mode) && l.ends_with(path)),
            "{mode} {path} in\n{contents}"
        );
    }
    // The real configuration is `mailroom init`'s to write; the data is not in the package.
    assert!(
        !contents.contains("./etc/mailroom/mailroom.toml\n"),
        "{contents}"
    );
    assert!(!contents.contains("./var/"), "{contents}");
    let info = run(Command::new("dpkg-deb").arg("-I").arg(&deb));
    assert!(
        info.contains("Package: mailroom") && info.contains("Depends: adduser"),
        "{info}"
    );

    // The packaged binary runs, and its units name it.
    let root = tmp.path().join("root");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    let version = run(Command::new(root.join("usr/bin/mailroom")).arg("--version"));
    assert!(version.starts_with("mailroom "), "{version}");
    let unit =
        std::fs::read_to_string(root.join("usr/lib/systemd/system/mailroom.service")).unwrap();
    assert!(
        unit.contains("ExecStart=/usr/bin/mailroom serve --config /etc/mailroom/mailroom.toml")
    );
    assert!(unit.contains("User=mailroom") && unit.contains("UMask=0077"));
    let backup =
        std::fs::read_to_string(root.join("usr/lib/systemd/system/mailroom-backup.service"))
            .unwrap();
    assert!(
        backup.contains("backup /var/backups/mailroom --keep 7"),
        "{backup}"
    );
    let example = std::fs::read_to_string(root.join("etc/mailroom/mailroom.toml.example")).unwrap();
    assert_eq!(example, mailroom::config::DEFAULT_TOML);

    let control = tmp.path().join("control");
    run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control));
    let conffiles = std::fs::read_to_string(control.join("conffiles")).unwrap();
    assert_eq!(conffiles.trim(), "/etc/mailroom/mailroom.toml.example");

    // First installation: the user, its directories, the backup timer; the server itself
    // waits for `mailroom init` and `systemctl enable --now mailroom`.
    let did = maintainer(&control.join("postinst"), &["configure"], tmp.path(), false);
    assert!(
        did.contains("adduser --system --group --home /var/lib/mailroom"),
        "{did}"
    );
    assert!(
        did.contains(
            "install -d -o mailroom -g mailroom -m 0700 /var/lib/mailroom /var/backups/mailroom"
        ),
        "{did}"
    );
    assert!(
        did.contains("deb-systemd-helper enable mailroom-backup.timer"),
        "{did}"
    );
    assert!(
        did.contains("deb-systemd-invoke start mailroom-backup.service mailroom-backup.timer"),
        "{did}"
    );
    assert!(!did.contains("enable mailroom.service"), "{did}");
    assert!(!did.contains("start mailroom.service"), "{did}");
    // An upgrade restarts a running server and leaves the user alone.
    let did = maintainer(
        &control.join("postinst"),
        &["configure", "0.0.9"],
        tmp.path(),
        true,
    );
    assert!(!did.contains("adduser"), "{did}");
    assert!(
        did.contains("deb-systemd-invoke try-restart mailroom.service"),
        "{did}"
    );
    // Removal stops the server; neither removal nor purge deletes data, user or configuration.
    let did = maintainer(&control.join("prerm"), &["remove"], tmp.path(), true);
    assert!(
        did.contains("deb-systemd-invoke stop mailroom.service"),
        "{did}"
    );
    for action in ["remove", "purge"] {
        let did = maintainer(&control.join("postrm"), &[action], tmp.path(), true);
        for line in did.lines() {
            assert!(
                !(line.starts_with("rm ")
                    || line.starts_with("deluser")
                    || line.starts_with("userdel")),
                "{action}: {did}"
            );
        }
    }
}
