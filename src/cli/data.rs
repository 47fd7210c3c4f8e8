//! `mailroom backup`, `restore`, `import` and `export`.

use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::bail;

use mailroom::config;
use mailroom::store::Store;

use super::open;

/// Writes a dated, checked backup into `dir` and keeps the newest `keep`.
pub async fn backup(path: Option<&Path>, dir: &Path, keep: usize) -> anyhow::Result<()> {
    let store = open(path).await?;
    let written = mailroom::backup::backup_into(&store, dir, keep).await;
    store.close().await;
    let written = written?;
    println!(
        "backed up {} messages of {} accounts ({}) to {}; integrity check ok",
        written.summary.messages,
        written.summary.accounts.len(),
        config::format_size(written.summary.bytes),
        written.path.display()
    );
    for old in &written.removed {
        println!("removed the older backup {}", old.display());
    }
    Ok(())
}

/// Replaces the database with the backup `src` (refused while the server runs), after
/// showing what the backup holds and, unless `yes`, asking.
pub async fn restore(path: Option<&Path>, src: &Path, yes: bool) -> anyhow::Result<()> {
    let located = super::locate(path, false)?;
    let config = &located.config;
    let db = config.database_path();
    eprintln!(
        "mailroom: configuration {}, database {}",
        located.source,
        db.display()
    );
    super::owner::act_as_owner(&config.data_dir)?;
    let confirm = |summary: &mailroom::backup::Summary| {
        println!(
            "{} holds {} messages ({}) in {} accounts:",
            src.display(),
            summary.messages,
            config::format_size(summary.bytes),
            summary.accounts.len()
        );
        for (address, messages) in &summary.accounts {
            println!("  {address}: {messages} messages");
        }
        if yes {
            return Ok(true);
        }
        if !std::io::stdin().is_terminal() {
            bail!("add --yes to replace {} without being asked", db.display());
        }
        print!("Replace {} with it? [y/N] ", db.display());
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
    };
    let summary = mailroom::backup::restore(config, src, confirm).await?;
    println!(
        "restored {} messages from {} into {}",
        summary.messages,
        src.display(),
        db.display()
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
        "exported {} messages ({}) from {} mailboxes and {} contacts of {} to {}",
        summary.messages,
        config::format_size(summary.bytes),
        summary.mailboxes,
        summary.contacts,
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
    if summary.contacts > 0 {
        println!("imported {} contacts", summary.contacts);
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
