//! `mailroom queue list|retry|drop`.

use anyhow::bail;
use clap::Subcommand;

use mailroom::config;
use mailroom::store::Store;

#[derive(Subcommand)]
pub enum QueueCmd {
    /// List queued messages with their recipients, attempts and last errors.
    List,
    /// Try message ID again now (the running server picks it up within a minute).
    Retry { id: i64 },
    /// Remove message ID from the queue without delivering or bouncing it.
    Drop { id: i64 },
}

pub async fn queue(store: &Store, cmd: QueueCmd) -> anyhow::Result<()> {
    match cmd {
        QueueCmd::List => {
            let queued = store.queue_list().await?;
            if queued.is_empty() {
                println!("the queue is empty");
            }
            let now = mailroom::store::now();
            for m in queued {
                let sender = if m.sender.is_empty() { "<>" } else { &m.sender };
                println!(
                    "{:>6}  from {sender}, {}, queued {} ago",
                    m.id,
                    config::format_size(u64::try_from(m.size).unwrap_or(0)),
                    ago(now - m.created_at)
                );
                for r in m.recipients {
                    let next = if r.next_attempt <= now {
                        "due now".to_string()
                    } else {
                        format!("next try in {}", ago(r.next_attempt - now))
                    };
                    println!("        to {} ({} attempts, {next})", r.address, r.attempts);
                    if let Some(e) = r.last_error {
                        println!("          last error: {e}");
                    }
                }
            }
        }
        QueueCmd::Retry { id } => {
            if !store.queue_retry(id).await? {
                bail!("no queued message {id}");
            }
            println!("message {id} will be retried now");
        }
        QueueCmd::Drop { id } => {
            if !store.queue_drop(id).await? {
                bail!("no queued message {id}");
            }
            println!("message {id} removed from the queue");
        }
    }
    Ok(())
}

/// A duration in seconds, roughly, for people.
fn ago(secs: i64) -> String {
    let secs = secs.max(0);
    match secs {
        0..120 => format!("{secs} s"),
        120..7200 => format!("{} min", secs / 60),
        7200..172800 => format!("{} h", secs / 3600),
        _ => format!("{} days", secs / 86400),
    }
}
