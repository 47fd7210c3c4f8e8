//! App passwords (issue 19): what one looks like, its keyed hash, and the protocols it may be
//! used on. The rows are `store::app_passwords`'; the check is in `Authenticator::login`.
//!
//! An app password is 28 characters of the RFC 4648 base32 alphabet (`a-z`, `2-7`): 140 bits
//! from the system's random source, shown once in seven groups of four (`abcd-efgh-…`) so a
//! person can type it. Case, spaces and dashes are ignored when it is checked, so a client
//! that kept the dashes or a person who typed capitals signs in all the same.
//!
//! Because it is random and long, guessing it is hopeless however fast a guess is checked, so
//! it is stored as an HMAC-SHA256 tag under the server's key (`Store::app_password_key`)
//! instead of an argon2id hash: a login with one costs a MAC and an indexed lookup, not 19 MiB
//! and tens of milliseconds.

use ring::hmac;

/// Characters in an app password, without the dashes (28 × 5 = 140 bits).
pub const LEN: usize = 28;
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// The protocols an app password may be used on (the bits of `app_passwords.scopes`).
pub const IMAP: i64 = 1;
pub const POP3: i64 = 2;
pub const SMTP: i64 = 4;
pub const MANAGESIEVE: i64 = 8;
pub const DAV: i64 = 16;
/// Every scope there is.
pub const ALL: i64 = IMAP | POP3 | SMTP | MANAGESIEVE | DAV;

/// Each scope bit with the name the pages show.
pub const SCOPES: [(i64, &str); 5] = [
    (IMAP, "IMAP"),
    (POP3, "POP3"),
    (SMTP, "SMTP (sending)"),
    (MANAGESIEVE, "ManageSieve"),
    (DAV, "Contacts and calendars (DAV)"),
];

/// The scope bit of a login's protocol, as `Authenticator::login` is called with it; `None`
/// for the web (and anything else), where an app password never signs in.
pub fn scope_of(protocol: &str) -> Option<i64> {
    match protocol {
        "imap" => Some(IMAP),
        "pop3" => Some(POP3),
        "smtp" => Some(SMTP),
        "managesieve" => Some(MANAGESIEVE),
        "dav" => Some(DAV),
        _ => None,
    }
}

/// The names of the scopes in `bits`, joined for a page.
pub fn describe(bits: i64) -> String {
    let names: Vec<&str> = SCOPES
        .iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|(_, name)| *name)
        .collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// A new app password as shown to its owner: seven dash-separated groups of four.
pub fn generate() -> String {
    let bytes: [u8; LEN] = rand::random();
    let mut out = String::with_capacity(LEN + LEN / 4);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        // 256 is a multiple of 32, so the low five bits of a uniform byte are uniform.
        let c = ALPHABET.get(usize::from(b & 31)).copied().unwrap_or(b'a');
        out.push(char::from(c));
    }
    out
}

/// The password in its canonical form (lower case, no spaces or dashes) when it has the shape
/// of an app password; `None` for anything else (an account password, usually), which is then
/// never looked up as one.
pub fn canonical(password: &str) -> Option<String> {
    let mut out = String::with_capacity(LEN);
    for c in password.chars() {
        match c {
            '-' | ' ' => continue,
            c if c.is_ascii_alphanumeric() => {
                let c = c.to_ascii_lowercase();
                if !ALPHABET.contains(&(c as u8)) || out.len() == LEN {
                    return None;
                }
                out.push(c);
            }
            _ => return None,
        }
    }
    (out.len() == LEN).then_some(out)
}

/// The stored tag of a canonical app password: HMAC-SHA256 under the server's key, in hex.
pub fn tag(key: &hmac::Key, canonical: &str) -> String {
    let mac = hmac::sign(key, canonical.as_bytes());
    mac.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_canonical_after_dashes_go() {
        let p = generate();
        assert_eq!(p.len(), LEN + 6);
        assert_eq!(p.matches('-').count(), 6);
        let c = canonical(&p).unwrap();
        assert_eq!(c.len(), LEN);
        assert_eq!(c, p.replace('-', ""));
        assert_ne!(generate(), generate());
        // Typed with capitals and spaces: the same password.
        assert_eq!(
            canonical(&p.to_uppercase().replace('-', " ")).as_deref(),
            Some(c.as_str())
        );
    }

    #[test]
    fn other_passwords_are_not_app_passwords() {
        assert_eq!(canonical("secret"), None);
        assert_eq!(canonical(&"a".repeat(LEN - 1)), None);
        assert_eq!(canonical(&"a".repeat(LEN + 1)), None);
        // 0, 1, 8 and 9 are not in the alphabet; nor is anything else.
        assert_eq!(canonical(&format!("{}0", "a".repeat(LEN - 1))), None);
        assert_eq!(canonical(&format!("{}!", "a".repeat(LEN - 1))), None);
        assert_eq!(
            canonical(&"a".repeat(LEN)).as_deref(),
            Some(&*"a".repeat(LEN))
        );
    }

    #[test]
    fn scopes_name_the_protocols() {
        assert_eq!(scope_of("imap"), Some(IMAP));
        assert_eq!(scope_of("web"), None);
        assert_eq!(describe(IMAP | SMTP), "IMAP, SMTP (sending)");
        assert_eq!(describe(0), "none");
    }

    #[test]
    fn tags_depend_on_the_key() {
        let a = hmac::Key::new(hmac::HMAC_SHA256, &[1; 32]);
        let b = hmac::Key::new(hmac::HMAC_SHA256, &[2; 32]);
        let p = "a".repeat(LEN);
        assert_eq!(tag(&a, &p).len(), 64);
        assert_eq!(tag(&a, &p), tag(&a, &p));
        assert_ne!(tag(&a, &p), tag(&b, &p));
    }
}
