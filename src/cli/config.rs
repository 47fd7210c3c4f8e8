//! `check-config` and `print-config`.

use std::path::Path;

use mailroom::config::{self, Config};

/// Prints the fully documented default configuration.
pub fn print() -> anyhow::Result<()> {
    print!("{}", config::DEFAULT_TOML);
    Ok(())
}

/// Loads the configuration (the file, or the embedded default) and reports the first error.
pub fn check(path: Option<&Path>) -> anyhow::Result<()> {
    let config = Config::load_or_default(path)?;
    let source = path.map_or("the embedded default".to_string(), |p| {
        p.display().to_string()
    });
    println!(
        "{source}: ok (hostname {}, data in {})",
        config.hostname,
        config.data_dir.display()
    );
    Ok(())
}
