//! The server's one stop signal: [`channel`] gives a [`ShutdownTrigger`] (held by `app`) and a
//! [`Shutdown`] that every listener, session and background task clones and waits on.
//!
//! A thin wrapper over a `watch` channel of one bool, so the waiting code is written once:
//! dropping the trigger counts as a stop too (nobody is left to keep the server running), and
//! [`Shutdown::wait`] never holds the channel's read guard across an await.

use tokio::sync::watch;

/// Creates a stop signal, not yet given.
pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), Shutdown(rx))
}

/// The receiving side: cheap to clone, one per task.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Resolves once the server is stopping (or the trigger is gone). Takes `&self` so it can
    /// sit in a `select!` beside other borrows of the owner; each call waits on its own clone.
    pub async fn wait(&self) {
        let mut rx = self.0.clone();
        // The guard `wait_for` returns is not Send; drop it before anything else is awaited.
        let _ = rx.wait_for(|stop| *stop).await.map(|_| ());
    }

    /// True once the server has begun stopping (or the trigger is gone).
    pub fn is_set(&self) -> bool {
        *self.0.borrow() || self.0.has_changed().is_err()
    }
}

/// The sending side, kept by whoever may stop the server.
#[derive(Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

impl ShutdownTrigger {
    /// Tells every [`Shutdown`] to stop. Idempotent.
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }

    /// Resolves once every [`Shutdown`] clone is dropped: everything that waited has ended.
    pub async fn closed(&self) {
        self.0.closed().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn wait_ends_on_trigger_and_on_drop() {
        let (trigger, shutdown) = channel();
        assert!(!shutdown.is_set());
        let waiting = tokio::spawn({
            let s = shutdown.clone();
            async move { s.wait().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        trigger.trigger();
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap();
        assert!(shutdown.is_set());
        // Already set: returns at once, every time.
        shutdown.wait().await;
        shutdown.wait().await;

        let (trigger, shutdown) = channel();
        drop(trigger);
        assert!(shutdown.is_set());
        tokio::time::timeout(Duration::from_secs(5), shutdown.wait())
            .await
            .unwrap();
    }
}
