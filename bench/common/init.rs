//! The database a bench's server starts on: admin commands never create one (only `serve`
//! and `init` do), so `init`, into a throwaway configuration beside the real one, makes it
//! (with the domain and an admin) in the schema of the binary under test.

use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `bin init` for `domain` with its data in `dir/data`; panics if it fails.
pub fn make_database(bin: &str, dir: &Path, domain: &str) {
    let status = Command::new(bin)
        .args(["--config", &dir.join("init.toml").display().to_string()])
        .args([
            "init",
            "--hostname",
            domain,
            "--domain",
            domain,
            "--data-dir",
        ])
        .arg(dir.join("data"))
        .stdout(Stdio::null())
        .status()
        .expect("init");
    assert!(status.success(), "mailroom init");
}
