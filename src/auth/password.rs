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

/// Passwords people choose (CLI, admin panel, webmail) are at least this long; generated ones
/// are 20.
pub const MIN_NEW_PASSWORD: usize = 10;

/// The least zxcvbn score a chosen password needs: 3 is "safely unguessable" (about 10^10
/// guesses), enough against an offline attack on a leaked hash with argon2id's cost.
const MIN_SCORE: zxcvbn::Score = zxcvbn::Score::Three;

/// The one rule for a password someone chooses, used by every human entry point (`mailroom
/// user add/passwd`, the admin panel's create and reset, the webmail's password change) but
/// not by `Store::create_account`, which takes a hash. At least [`MIN_NEW_PASSWORD`]
/// characters, at most [`MAX_PASSWORD_LEN`] bytes, and zxcvbn's estimate at least
/// [`MIN_SCORE`], counting `user_inputs` (the address, its parts, the display name) as known
/// to an attacker. The error says why and what to do, for the form or the terminal.
pub fn check_strength(password: &str, user_inputs: &[&str]) -> Result<(), String> {
    let length = password.chars().count();
    if length < MIN_NEW_PASSWORD {
        return Err(format!(
            "The password has {length} characters; use at least {MIN_NEW_PASSWORD}. \
             A few unrelated words make a long password that is easy to remember."
        ));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(format!(
            "The password is longer than {MAX_PASSWORD_LEN} bytes; use a shorter one."
        ));
    }
    // The address's parts on their own too: zxcvbn matches whole inputs as dictionary words.
    let mut inputs: Vec<&str> = Vec::new();
    for input in user_inputs
        .iter()
        .map(|i| i.trim())
        .filter(|i| !i.is_empty())
    {
        inputs.push(input);
        inputs.extend(
            input
                .split(|c: char| !c.is_alphanumeric())
                .filter(|part| part.chars().count() >= 3),
        );
    }
    let estimate = zxcvbn::zxcvbn(password, &inputs);
    if estimate.score() >= MIN_SCORE {
        return Ok(());
    }
    let mut why = String::from("The password is too easy to guess");
    match estimate.feedback().and_then(|f| f.warning()) {
        Some(warning) => {
            why.push_str(": ");
            why.push_str(warning.to_string().trim_end_matches('.'));
            why.push('.');
        }
        None => why.push('.'),
    }
    let suggestions: Vec<String> = estimate
        .feedback()
        .map(|f| f.suggestions().iter().map(ToString::to_string).collect())
        .unwrap_or_default();
    if suggestions.is_empty() {
        why.push_str(" Add another word or two that are not about you.");
    } else {
        why.push(' ');
        why.push_str(&suggestions.join(" "));
    }
    Err(why)
}

/// [`check_strength`] on the hashing threads, for the server: zxcvbn takes milliseconds on a
/// long password (it reads the first 100 characters), which must not hold a runtime thread, and
/// the pool bounds how many run at once.
pub async fn check_strength_off_thread(password: &str, user_inputs: &[&str]) -> Result<(), String> {
    let password = password.to_owned();
    let inputs: Vec<String> = user_inputs.iter().map(|i| i.to_string()).collect();
    on_hasher(move || {
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        check_strength(&password, &inputs)
    })
    .await
    .unwrap_or_else(|| Err("The password cannot be checked now; try again.".into()))
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
    fn the_password_rule() {
        let me = ["alice@example.org", "Alice Liddell"];
        // Too short, whatever it is made of.
        let e = check_strength("x", &me).unwrap_err();
        assert!(e.contains("at least 10"), "{e}");
        assert!(check_strength("Zq8#p!Lw2", &me).is_err(), "9 characters");
        // Long enough but guessable: a keyboard row, a common password, the user's own name.
        for weak in [
            "qwertyuiop",
            "password123",
            "aaaaaaaaaaaa",
            "alice@example.org",
        ] {
            let e = check_strength(weak, &me).unwrap_err();
            assert!(
                e.starts_with("The password is too easy to guess"),
                "{weak}: {e}"
            );
        }
        // The user inputs count, the address's parts too: this one passes for someone else.
        assert!(check_strength("quixotebramble", &me).is_ok());
        assert!(check_strength("quixotebramble", &["quixote@bramble.org"]).is_err());
        // Unrelated words, or random characters, pass.
        assert!(check_strength("staple orbit lantern cactus", &me).is_ok());
        assert!(
            check_strength(&generate(), &me).is_ok(),
            "generated passwords pass"
        );
        assert!(
            check_strength(&"x9".repeat(600), &me).is_err(),
            "over 1024 bytes"
        );
    }

    #[test]
    fn generated_passwords_differ() {
        let a = generate();
        assert_eq!(a.len(), 20);
        assert_ne!(a, generate());
    }
}
