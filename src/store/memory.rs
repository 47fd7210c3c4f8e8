//! Giving memory back when the server is quiet. SQLite keeps each connection's page cache
//! (the writer's up to 16 MB, each reader's 2 MB) filled after a burst of mail; a small VPS
//! that received a day's mail at nine would hold it until the next restart. After a quiet
//! spell every connection's cache is emptied (`PRAGMA shrink_memory`, SQLite's
//! `sqlite3_db_release_memory`), and the readers opened for a burst are closed but one: each
//! holds its own parsed schema, prepared statements and worker thread. The next query reads its
//! pages from the OS page cache again, and a burst opens its readers again (a millisecond
//! each), which is cheap next to the mail it is serving. The process's heap and code are
//! `crate::memory`'s, released after this.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Result, Store};

/// Counts the store's writes (every change announced on the bus), so an idle task can tell a
/// quiet spell from a busy one without listening to the bus itself.
#[derive(Clone, Default)]
pub(super) struct Activity(Arc<AtomicU64>);

impl Activity {
    pub(super) fn touch(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Store {
    /// A number that changes whenever the store is written to.
    pub fn activity(&self) -> u64 {
        self.bus.activity.get()
    }

    /// Empties every idle connection's page cache and closes the idle readers but one.
    /// Connections in use are left alone (they are not idle, and will be asked next time).
    pub async fn release_memory(&self) -> Result<()> {
        for pool in [&self.writer, &self.reader] {
            // Take every idle connection at once, so each is asked exactly once.
            let mut held = Vec::new();
            while let Some(conn) = pool.try_acquire() {
                held.push(conn);
            }
            // The writer pool holds its one connection; of the readers one stays open, so a
            // lone query after the quiet spell opens nothing.
            let keep = 1;
            for conn in held.split_off(keep.min(held.len())) {
                // The pool opens another when it is short of connections.
                conn.close().await?;
            }
            for conn in &mut held {
                sqlx::query("PRAGMA shrink_memory")
                    .execute(&mut **conn)
                    .await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use crate::store::testing::{deliver_to_inbox, store_with_accounts};

    /// A delivery is activity; releasing asks every idle connection and leaves each usable.
    #[tokio::test]
    async fn release_leaves_every_connection_usable() {
        let (_dir, store, ids) = store_with_accounts(&["quiet@example.org"]).await;
        let account = ids[0];
        let before = store.activity();
        let raw = b"Subject: x\r\n\r\nhello\r\n";
        let uid = deliver_to_inbox(&store, account, raw).await;
        assert_ne!(store.activity(), before, "a delivery is activity");
        let inbox = store.mailbox(account, "INBOX").await.unwrap().unwrap();
        // Open several readers, so there are several to shrink.
        let reads = (0..4).map(|_| store.message_body(&inbox, uid));
        for body in futures::future::join_all(reads).await {
            assert_eq!(body.unwrap(), raw);
        }
        assert!(store.reader.size() > 1, "the reads opened several readers");
        // A connection goes back to its pool on a task of its own: wait until all are back.
        while store.reader.num_idle() < store.reader.size() as usize {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let quiet = store.activity();
        store.release_memory().await.unwrap();
        assert_eq!(store.activity(), quiet, "releasing is not activity");
        assert_eq!(
            store.reader.size(),
            1,
            "the idle readers are closed but one"
        );
        // The pool opens readers again for concurrent reads, and every one answers.
        let reads = (0..4).map(|_| store.message_body(&inbox, uid));
        for body in futures::future::join_all(reads).await {
            assert_eq!(body.unwrap(), raw);
        }
        deliver_to_inbox(&store, account, raw).await;
    }
}
