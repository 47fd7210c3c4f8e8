//! When to try again: about 5 minutes, doubling, capped at 4 hours, given up after 5 days
//! (all from `[queue]`).

use crate::config::QueueConfig;

/// Seconds to wait after the `failures`-th failed attempt (1 for the first).
pub fn delay(config: &QueueConfig, failures: i64) -> u64 {
    let doublings = u32::try_from(failures.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    config
        .retry_first_secs
        .saturating_mul(1u64 << doublings)
        .min(config.retry_max_secs)
        .max(1)
}

/// True when a message queued at `created_at` has waited long enough to be given up.
pub fn expired(config: &QueueConfig, created_at: i64, now: i64) -> bool {
    now.saturating_sub(created_at) >= i64::try_from(config.give_up_secs).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap() {
        let c = QueueConfig::default();
        let delays: Vec<u64> = (1..=8).map(|n| delay(&c, n)).collect();
        assert_eq!(delays, [300, 600, 1200, 2400, 4800, 9600, 14400, 14400]);
        assert_eq!(delay(&c, 1000), 14400);
        assert!(!expired(&c, 0, 5 * 86400 - 1));
        assert!(expired(&c, 0, 5 * 86400));
    }
}
