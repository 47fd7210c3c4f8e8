//! The Sender Rewriting Scheme, for mail an alias forwards to another server: the envelope
//! sender becomes an address of ours (`SRS0=HHHH=TT=orig-domain=orig-local@our-domain`), so
//! the destination's SPF check sees our domain; a bounce sent back to it is recognised by its
//! keyed hash and day stamp and forwarded to the original sender.
//!
//! A valid address relays to anyone for three weeks, so it must not be guessable: the hash is
//! [`HASH_LEN`] base32 characters of an HMAC-SHA256 (50 bits; the SRS paper's 4 characters,
//! about 21 bits once case-folded, were found by brute force in two minutes), and the MX accepts
//! these addresses only from the null sender (only bounces use them) and limits refused
//! recipients per client ([`crate::smtp::anvil`]).

use ring::hmac;

/// How long a rewritten address keeps working for bounces (as in the SRS paper and Postfix).
const MAX_AGE_DAYS: u64 = 21;
/// The day stamp is base32 over 10 bits: it wraps every 1024 days.
const STAMP_PERIOD: u64 = 1024;
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// Characters of hash: 5 bits each, case-insensitive (local parts may not keep their case).
const HASH_LEN: usize = 10;

#[derive(Clone)]
pub struct Srs {
    key: hmac::Key,
}

impl Srs {
    /// `secret` is kept in the database, so rewritten addresses survive restarts.
    pub fn new(secret: &[u8]) -> Srs {
        Srs {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// The rewritten sender for forwarding mail from `sender` through `our_domain`. The null
    /// sender stays null (nothing may bounce to it).
    pub fn forward(&self, sender: &str, our_domain: &str) -> String {
        let Some((local, domain)) = sender.rsplit_once('@') else {
            return sender.to_string();
        };
        let stamp = stamp(today());
        let hash = self.hash(&stamp, domain, local);
        format!("SRS0={hash}={stamp}={domain}={local}@{our_domain}")
    }

    /// The original sender behind `address` (a local part of ours), when it is a valid SRS0
    /// address made here within the last 21 days.
    pub fn reverse(&self, local_part: &str) -> Option<String> {
        let rest = local_part
            .get(..5)
            .filter(|p| p.eq_ignore_ascii_case("SRS0="))
            .and_then(|_| local_part.get(5..))?;
        let mut fields = rest.splitn(4, '=');
        let (hash, stamp_text, domain, local) = (
            fields.next()?,
            fields.next()?,
            fields.next()?,
            fields.next()?,
        );
        if domain.is_empty() || local.is_empty() {
            return None;
        }
        // Some MTAs lower-case local parts: compare case-insensitively, and in constant time.
        let expected = self.hash(&stamp_text.to_ascii_uppercase(), domain, local);
        let differs = expected.len() != hash.len()
            || expected
                .bytes()
                .zip(hash.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b.to_ascii_uppercase()))
                != 0;
        if differs {
            return None;
        }
        let made = unstamp(stamp_text)?;
        let age = (today() % STAMP_PERIOD + STAMP_PERIOD - made) % STAMP_PERIOD;
        (age <= MAX_AGE_DAYS).then(|| format!("{local}@{domain}"))
    }

    fn hash(&self, stamp: &str, domain: &str, local: &str) -> String {
        let input = format!("{stamp}={}={local}", domain.to_ascii_lowercase());
        let tag = hmac::sign(&self.key, input.as_bytes());
        // Base32, 5 bits a character, from the first bytes of the tag.
        let mut bits: u64 = 0;
        for byte in tag.as_ref().iter().take(8) {
            bits = bits << 8 | u64::from(*byte);
        }
        (0..HASH_LEN)
            .map(|i| {
                let index = (bits >> (59 - 5 * i)) & 31;
                base32(index)
            })
            .collect()
    }
}

/// The base32 character for the low five bits of `v`.
fn base32(v: u64) -> char {
    let i = usize::try_from(v & 31).unwrap_or(0);
    BASE32.get(i).copied().map_or('a', char::from)
}

fn today() -> u64 {
    u64::try_from(crate::store::now()).unwrap_or(0) / 86400
}

fn stamp(day: u64) -> String {
    let d = day % STAMP_PERIOD;
    [d >> 5, d & 31].iter().map(|i| base32(*i)).collect()
}

fn unstamp(s: &str) -> Option<u64> {
    let bytes = s.as_bytes();
    if bytes.len() != 2 {
        return None;
    }
    let value = |b: u8| {
        BASE32
            .iter()
            .position(|c| *c == b.to_ascii_uppercase())
            .map(|p| p as u64)
    };
    Some(value(*bytes.first()?)? << 5 | value(*bytes.get(1)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_and_reverse_round_trip() {
        let srs = Srs::new(b"secret");
        let rewritten = srs.forward("alice@origin.test", "example.org");
        let (local, domain) = rewritten.rsplit_once('@').unwrap();
        assert_eq!(domain, "example.org");
        assert!(local.starts_with("SRS0="), "{local}");
        assert!(local.ends_with("=origin.test=alice"), "{local}");
        assert_eq!(srs.reverse(local).as_deref(), Some("alice@origin.test"));
        assert_eq!(
            srs.reverse(&local.to_ascii_lowercase()).as_deref(),
            Some("alice@origin.test"),
            "case folding on the way back is harmless"
        );
    }

    #[test]
    fn hashes_are_ten_base32_characters() {
        let srs = Srs::new(b"secret");
        let hash = srs.hash("AB", "origin.test", "alice");
        assert_eq!(hash.len(), HASH_LEN);
        assert!(hash.bytes().all(|b| BASE32.contains(&b)), "{hash}");
        assert_ne!(hash, srs.hash("AB", "origin.test", "bob"));
    }

    #[test]
    fn forged_or_stale_addresses_are_refused() {
        let srs = Srs::new(b"secret");
        let other = Srs::new(b"another secret");
        let rewritten = srs.forward("alice@origin.test", "example.org");
        let local = rewritten.rsplit_once('@').unwrap().0;
        assert_eq!(other.reverse(local), None, "another key");
        assert_eq!(srs.reverse(&local.replace("alice", "mallory")), None);
        assert_eq!(srs.reverse("SRS0=abcd=AA=x.test=y"), None);
        // The short hashes of before: refused, whatever their value.
        let short = &srs.hash(&stamp(today()), "origin.test", "alice")[..4];
        let stamp_now = stamp(today());
        assert_eq!(
            srs.reverse(&format!("SRS0={short}={stamp_now}=origin.test=alice")),
            None
        );
        assert_eq!(srs.reverse("alice"), None);
        // A stamp from 30 days ago, correctly hashed, is too old.
        let old = stamp(today() - 30);
        let hash = srs.hash(&old, "origin.test", "alice");
        assert_eq!(
            srs.reverse(&format!("SRS0={hash}={old}=origin.test=alice")),
            None
        );
        let recent = stamp(today() - 20);
        let hash = srs.hash(&recent, "origin.test", "alice");
        assert!(
            srs.reverse(&format!("SRS0={hash}={recent}=origin.test=alice"))
                .is_some()
        );
        assert_eq!(srs.forward("", "example.org"), "");
    }
}
