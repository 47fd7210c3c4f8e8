//! The one quota rule, for every path that adds to an account: the MX at RCPT (with the size
//! the client declared), delivery (with the stored size), and IMAP COPY. A message that fits
//! exactly is taken everywhere; one byte more is refused everywhere. (Before, RCPT refused an
//! exact fit that delivery would have stored.)

/// True when adding `adding` bytes to an account using `used` of `quota` stays within it:
/// `used + adding <= quota`. A quota of 0 (or below, which the store never writes) means
/// unlimited, as `[limits] default_quota = 0` and `--quota 0` of the CLI document.
pub fn fits(used: i64, adding: i64, quota: i64) -> bool {
    quota <= 0 || used.saturating_add(adding) <= quota
}

#[cfg(test)]
mod tests {
    use super::fits;

    #[test]
    fn exactly_full_fits_one_byte_more_does_not() {
        assert!(fits(0, 1000, 1000));
        assert!(fits(400, 600, 1000));
        assert!(!fits(400, 601, 1000));
        assert!(!fits(0, 1001, 1000));
        assert!(fits(1000, 0, 1000), "nothing added to a full account fits");
        assert!(!fits(1000, 1, 1000));
    }

    #[test]
    fn zero_is_unlimited_and_sums_do_not_wrap() {
        assert!(fits(i64::MAX, i64::MAX, 0));
        assert!(
            !fits(i64::MAX, 1, 1000),
            "saturates instead of wrapping negative"
        );
    }
}
