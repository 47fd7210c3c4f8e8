//! What every message we write gets: the `Date:` of now and a unique id (for `Message-ID:`,
//! SMTP transaction ids and DSNs). Used by submission, the SMTP session, the webmail and the
//! queue's DSNs, so it lives here rather than in any one of them.

/// The current time as an RFC 5322 date.
pub fn rfc5322_now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_else(|_| "Thu, 01 Jan 1970 00:00:00 +0000".into())
}

/// A random identifier for Message-IDs and SMTP transaction ids: 16 base32 characters.
pub fn unique_id() -> String {
    random_text(b"abcdefghijklmnopqrstuvwxyz234567", 16)
}

/// `len` characters drawn uniformly from `alphabet` (ASCII) with the thread's CSPRNG: ids,
/// generated passwords.
pub fn random_text(alphabet: &[u8], len: usize) -> String {
    use rand::seq::IndexedRandom;
    let mut rng = rand::rng();
    (0..len)
        .filter_map(|_| alphabet.choose(&mut rng).copied().map(char::from))
        .collect()
}
