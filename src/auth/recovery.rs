//! One-time recovery codes for the web's second step: ten per account, shown once.
//!
//! Each code is 80 random bits (16 base32 characters, typed as `xxxx-xxxx-xxxx-xxxx`), so it
//! is stored as a plain SHA-256 of the account id and the normalised code: guessing a code from
//! a stolen hash is 2^80 work, which a slow hash (argon2id) would not make meaningfully safer
//! and would make each sign-in with a code check ten argon2id hashes. The account id in the
//! hash keeps equal codes of two accounts (2^-80) apart.

use sha2::{Digest, Sha256};

/// Codes per account.
pub const COUNT: usize = 10;
/// RFC 4648 base32, lowercase (no 0/1/8/9 to confuse with letters).
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Ten new codes, as shown to the user.
pub fn new_codes() -> Vec<String> {
    (0..COUNT).map(|_| new_code()).collect()
}

fn new_code() -> String {
    let bytes: [u8; 16] = rand::random();
    let chars: String = bytes
        .iter()
        .map(|b| char::from(ALPHABET.get(usize::from(b & 31)).copied().unwrap_or(b'a')))
        .collect();
    let mut out = String::with_capacity(19);
    for (i, c) in chars.chars().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        out.push(c);
    }
    out
}

/// Whether `input` has the shape of a recovery code (as opposed to a six-digit TOTP code).
pub fn looks_like_code(input: &str) -> bool {
    normalise(input).len() == 16
}

fn normalise(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// What is stored for `code` of account `account_id` (hex SHA-256).
pub fn hash(account_id: i64, code: &str) -> String {
    let mut h = Sha256::new();
    h.update(account_id.to_be_bytes());
    h.update(normalise(code).as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_random_shaped_and_hashed_per_account() {
        let codes = new_codes();
        assert_eq!(codes.len(), COUNT);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), COUNT);
        for c in &codes {
            assert_eq!(c.len(), 19, "{c}");
            assert!(looks_like_code(c));
            // Typed in capitals, without dashes: the same code.
            assert_eq!(hash(1, c), hash(1, &c.replace('-', " ").to_uppercase()));
            assert_ne!(hash(1, c), hash(2, c));
        }
        assert!(!looks_like_code("123456"));
    }
}
