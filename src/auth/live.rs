//! The sessions signed in with each app password, so that revoking one ends them within a
//! second (issue 19) instead of letting them run until the client disconnects.
//!
//! A session gets a [`Revoked`] with its login: a `watch` receiver, registered under the app
//! password's tag *before* the login looks the tag up in the store. A revocation deletes the
//! row, then signals the tag: a login that found the row registered before the delete, so the
//! signal reaches it; a login that looked after the delete finds nothing. The IMAP, POP3 and
//! SMTP loops wait on [`Revoked::wait`] beside their reads (and IMAP IDLE beside its changes).
//!
//! Entries whose sessions have all ended are dropped when the map has grown (a failed lookup
//! leaves one behind too), so the map holds about as many entries as app passwords in use.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

/// Entries kept before the ones nobody listens to are swept.
const SWEEP_AT: usize = 1024;

#[derive(Default)]
pub struct Live {
    map: Mutex<HashMap<String, watch::Sender<bool>>>,
}

impl Live {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, watch::Sender<bool>>> {
        // Every mutation leaves the map whole; a panic elsewhere must not stop logins.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A handle that fires when the app password with this tag is revoked.
    pub fn watch(&self, tag: &str) -> Revoked {
        let mut map = self.lock();
        if map.len() >= SWEEP_AT && !map.contains_key(tag) {
            map.retain(|_, tx| tx.receiver_count() > 0);
        }
        let rx = match map.get(tag) {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = watch::channel(false);
                map.insert(tag.to_string(), tx);
                rx
            }
        };
        Revoked(Some(rx))
    }

    /// Ends every session signed in with the app password of this tag.
    pub fn revoke(&self, tag: &str) {
        if let Some(tx) = self.lock().remove(tag) {
            tx.send_replace(true);
        }
    }

    /// Entries held (for tests).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whether the credentials a session signed in with were revoked. A session signed in with
/// the account password holds one that never fires.
#[derive(Debug, Clone, Default)]
pub struct Revoked(Option<watch::Receiver<bool>>);

impl Revoked {
    /// A handle that never fires.
    pub fn never() -> Revoked {
        Revoked(None)
    }

    /// Resolves once the credentials are revoked; never for the account password. Takes
    /// `&self` (each call waits on its own clone) so it can sit in a `select!` beside reads.
    pub async fn wait(&self) {
        match &self.0 {
            Some(rx) => {
                let mut rx = rx.clone();
                // The registry dropping the sender without a signal does not happen (revoke
                // sends first); were it to, the session is left alone rather than ended.
                if rx.wait_for(|revoked| *revoked).await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending::<()>().await,
        }
    }

    /// True once revoked.
    pub fn is_set(&self) -> bool {
        self.0.as_ref().is_some_and(|rx| *rx.borrow())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn revoking_fires_every_watcher_of_the_tag_only() {
        let live = Live::default();
        let (a1, a2, b) = (live.watch("a"), live.watch("a"), live.watch("b"));
        assert_eq!(live.len(), 2);
        live.revoke("a");
        assert!(a1.is_set() && a2.is_set() && !b.is_set());
        tokio::time::timeout(Duration::from_secs(1), a2.wait())
            .await
            .unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(50), b.wait())
                .await
                .is_err()
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(50), Revoked::never().wait())
                .await
                .is_err()
        );
        // A later login with a new app password of the same tag is not born revoked.
        assert!(!live.watch("a").is_set());
    }

    #[test]
    fn entries_nobody_watches_are_swept() {
        let live = Live::default();
        let kept = live.watch("kept");
        for i in 0..SWEEP_AT * 2 {
            drop(live.watch(&format!("t{i}")));
        }
        assert!(live.len() <= SWEEP_AT + 1, "{}", live.len());
        live.revoke("kept");
        assert!(kept.is_set());
    }
}
