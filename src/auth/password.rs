//! Password hashing: argon2id with the crate's defaults (m=19456 KiB, t=2, p=1, the OWASP
//! minimum), as PHC strings so the parameters travel with each hash and can be raised later
//! without invalidating old ones.
//!
//! Each hash costs tens of milliseconds of CPU and 19 MiB of memory, so hashing runs on a small
//! pool of dedicated threads (one per core, at most four), never on a runtime thread and never
//! on tokio's blocking pool: there, a burst of logins would run on up to 512 threads at once,
//! and the allocator keeps each thread's 19 MiB afterwards (1000 logins left the process at
//! over 1 GiB). A fixed pool bounds both the CPU a login storm can take and the memory, and
//! `app::return_big_allocations` makes each hash's 19 MiB go back to the system when it ends.

use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("the password is empty")]
    Empty,
    #[error("the password is longer than 1024 bytes")]
    TooLong,
}

pub const MAX_PASSWORD_LEN: usize = 1024;

/// Passwords chosen in the web (admin panel, webmail settings) are at least this long;
/// generated ones are 20.
pub const MIN_NEW_PASSWORD: usize = 10;

/// Whether `password` may be set as a new one, with the reason when not (for the form).
pub fn check_new(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_NEW_PASSWORD {
        Err(format!("At least {MIN_NEW_PASSWORD} characters."))
    } else if password.len() > MAX_PASSWORD_LEN {
        Err(format!("At most {MAX_PASSWORD_LEN} bytes."))
    } else {
        Ok(())
    }
}

/// Hashes `password` into a PHC string (`$argon2id$v=19$...`).
pub async fn hash(password: &str) -> Result<String, PasswordError> {
    if password.is_empty() {
        return Err(PasswordError::Empty);
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(PasswordError::TooLong);
    }
    let password = password.to_owned();
    on_hasher(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| PasswordError::Hash(e.to_string()))
    })
    .await
    .unwrap_or_else(|| Err(PasswordError::Hash("the hashing threads are gone".into())))
}

/// True when `password` matches the PHC string `hash`. A malformed hash never matches.
pub async fn verify(password: &str, hash: &str) -> bool {
    if password.len() > MAX_PASSWORD_LEN {
        return false;
    }
    let password = password.to_owned();
    let hash = hash.to_owned();
    on_hasher(move || verify_blocking(&password, &hash))
        .await
        .unwrap_or(false)
}

type Job = Box<dyn FnOnce() + Send>;

/// Runs `work` on the hashing threads; `None` if they are gone (they never exit on their own).
async fn on_hasher<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    static POOL: OnceLock<Option<Mutex<Sender<Job>>>> = OnceLock::new();
    let pool = POOL.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
        let mut started = 0;
        for i in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    loop {
                        // Hold the lock only to take a job, not while running it.
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            started += usize::from(spawned.is_ok());
        }
        (started > 0).then(|| Mutex::new(tx))
    });
    let (reply, answer) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = reply.send(work());
    });
    pool.as_ref()?.lock().ok()?.send(job).ok()?;
    answer.await.ok()
}

fn verify_blocking(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A random password for accounts created without one: 20 characters from an alphabet without
/// look-alikes (no 0/O, 1/l/I), about 113 bits.
pub fn generate() -> String {
    crate::mime::random_text(
        b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789",
        20,
    )
}

/// Verifying against this hash takes as long as a real check, so a login for an unknown
/// account costs the same time as one with a wrong password (no account enumeration by timing).
pub(crate) async fn burn_time(password: &str) {
    // A valid argon2id hash of a random string, made once per process.
    static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    let hash = DUMMY
        .get_or_init(|| async { hash(&generate()).await.unwrap_or_default() })
        .await;
    let _ = verify(password, hash).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() {
        let h = hash("correct horse").await.unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify("correct horse", &h).await);
        assert!(!verify("correct horse!", &h).await);
        assert!(!verify("correct horse", "not a hash").await);
        assert_ne!(h, hash("correct horse").await.unwrap(), "salted");
        assert!(matches!(hash("").await, Err(PasswordError::Empty)));
    }

    #[test]
    fn generated_passwords_differ() {
        let a = generate();
        assert_eq!(a.len(), 20);
        assert_ne!(a, generate());
    }
}
