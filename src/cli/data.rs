//! `mailroom backup`, `restore`, `import` and `export`.

use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::bail;

use mailroom::config::{self, Config};
use mailroom::store::Store;

use super::open;

/// Copies the database to `dest` while the server runs, then checks the copy.
pub async fn backup(path: Option<&Path>, dest: &Path) -> anyhow::Result<()> {
    let store = open(path).await?;
    let summary = mailroom::backup::backup(&store, dest).await?;
    store.close().await;
    println!(
        "backed up {} messages ({}) to {}; integrity check ok",
        summary.messages,
        config::format_size(summary.bytes),
        dest.display()
    );
    Ok(())
}

/// Replaces the database with the backup `src` (refused while the server runs).
pub async fn restore(path: Option<&Path>, src: &Path) -> anyhow::Result<()> {
    let config = Config::load_or_default(path)?;
    let summary = mailroom::backup::restore(&config, src).await?;
    println!(
        "restored {} messages from {} into {}",
        summary.messages,
        src.display(),
        config.database_path().display()
    );
    Ok(())
}

/// Imports mail into `address` from an mbox file, a directory of them, or a Maildir tree.
pub async fn import(
    path: Option<&Path>,
    address: &str,
    from: &Path,
    into: Option<&str>,
) -> anyhow::Result<()> {
    let store = open(path).await?;
    let result = import_into(&store, address, from, into).await;
    store.close().await;
    result
}

/// Writes every mailbox of `address` as an mbox file under `dir`.
pub async fn export(path: Option<&Path>, address: &str, dir: &Path) -> anyhow::Result<()> {
    let store = open(path).await?;
    let result = mailroom::mailbox_files::export(&store, address, dir).await;
    store.close().await;
    let summary = result?;
    println!(
        "exported {} messages ({}) from {} mailboxes of {} to {}",
        summary.messages,
        config::format_size(summary.bytes),
        summary.mailboxes,
        address.trim(),
        dir.display()
    );
    Ok(())
}

/// `mailroom import`: a progress line rewritten in place on a terminal, a summary at the end.
async fn import_into(
    store: &Store,
    address: &str,
    path: &Path,
    into: Option<&str>,
) -> anyhow::Result<()> {
    use std::time::{Duration, Instant};
    let tty = std::io::stdout().is_terminal();
    let mut shown = false;
    let mut last: Option<Instant> = None;
    let mut progress = |p: mailroom::mailbox_files::Progress<'_>| {
        if !tty || last.is_some_and(|t| t.elapsed() < Duration::from_millis(100)) {
            return;
        }
        last = Some(Instant::now());
        shown = true;
        // \r and "erase to end of line": the line is rewritten, not appended.
        print!(
            "\r\x1b[K{}: {} imported, {} already there",
            p.mailbox, p.imported, p.skipped
        );
        let _ = std::io::stdout().flush();
    };
    let result = mailroom::mailbox_files::import(store, address, path, into, &mut progress).await;
    if shown {
        print!("\r\x1b[K");
    }
    let summary = result?;
    println!(
        "imported {} messages ({}) into {}; {} were already there",
        summary.imported,
        config::format_size(summary.bytes),
        address.trim(),
        summary.skipped
    );
    if !summary.created.is_empty() {
        println!("created mailboxes: {}", summary.created.join(", "));
    }
    for failed in &summary.failed {
        eprintln!("cannot read {failed}");
    }
    if !summary.failed.is_empty() {
        bail!(
            "{} files could not be read (run the import again to retry them)",
            summary.failed.len()
        );
    }
    Ok(())
}
