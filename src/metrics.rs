//! Counters the listeners and the web router keep for `/metrics`: connections per protocol
//! (accepted, open, refused by the limits) and a histogram of HTTP request durations.
//!
//! They are process-wide atomics ([`METRICS`]) rather than a value passed around: counting a
//! connection costs one relaxed atomic add, and one server runs per process (tests that start
//! several in one process see their sums, and only check that the counters move). What the
//! store already knows (deliveries, queue, sizes) is read from the store when `/metrics` is
//! asked for; see `web::metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// The listener kinds, as `config::Listen::all` names them.
pub const PROTOCOLS: [&str; 9] = [
    "smtp",
    "submission",
    "submissions",
    "imap",
    "imaps",
    "pop3",
    "pop3s",
    "http",
    "https",
];

/// Upper bounds (seconds) of the HTTP duration buckets; `+Inf` follows.
const HTTP_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

pub struct Registry {
    accepted: [AtomicU64; PROTOCOLS.len()],
    open: [AtomicI64; PROTOCOLS.len()],
    refused: [AtomicU64; PROTOCOLS.len()],
    /// Requests per bucket (not cumulative; rendering adds them up), the last one `+Inf`.
    http_buckets: [AtomicU64; HTTP_BUCKETS.len() + 1],
    http_micros: AtomicU64,
}

pub static METRICS: Registry = Registry {
    accepted: [const { AtomicU64::new(0) }; PROTOCOLS.len()],
    open: [const { AtomicI64::new(0) }; PROTOCOLS.len()],
    refused: [const { AtomicU64::new(0) }; PROTOCOLS.len()],
    http_buckets: [const { AtomicU64::new(0) }; HTTP_BUCKETS.len() + 1],
    http_micros: AtomicU64::new(0),
};

fn slot(protocol: &str) -> Option<usize> {
    PROTOCOLS.iter().position(|p| *p == protocol)
}

/// Held while a connection is open; counts it closed when dropped.
pub struct OpenConnection {
    registry: &'static Registry,
    slot: Option<usize>,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        if let Some(open) = self.slot.and_then(|i| self.registry.open.get(i)) {
            open.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Registry {
    /// A connection was accepted; it counts as open until the guard is dropped.
    pub fn connection_opened(&'static self, protocol: &str) -> OpenConnection {
        let i = slot(protocol);
        if let Some(i) = i {
            if let Some(c) = self.accepted.get(i) {
                c.fetch_add(1, Ordering::Relaxed);
            }
            if let Some(c) = self.open.get(i) {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
        OpenConnection {
            registry: self,
            slot: i,
        }
    }

    /// A connection was refused by the connection limits.
    pub fn connection_refused(&self, protocol: &str) {
        if let Some(c) = slot(protocol).and_then(|i| self.refused.get(i)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One HTTP request took `took` (until its response head was ready).
    pub fn observe_http(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let bucket = HTTP_BUCKETS
            .iter()
            .position(|le| secs <= *le)
            .unwrap_or(HTTP_BUCKETS.len());
        if let Some(b) = self.http_buckets.get(bucket) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.http_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Appends these metrics in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let per_protocol =
            |out: &mut String, name: &str, kind: &str, help: &str, value: &dyn Fn(usize) -> i64| {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
                for (i, p) in PROTOCOLS.iter().enumerate() {
                    let _ = writeln!(out, "{name}{{protocol=\"{p}\"}} {}", value(i));
                }
            };
        let load = |c: &[AtomicU64], i: usize| {
            c.get(i).map_or(0, |c| {
                i64::try_from(c.load(Ordering::Relaxed)).unwrap_or(i64::MAX)
            })
        };
        per_protocol(
            out,
            "mailroom_connections_total",
            "counter",
            "Connections accepted, by listener kind.",
            &|i| load(&self.accepted, i),
        );
        per_protocol(
            out,
            "mailroom_connections_open",
            "gauge",
            "Connections open now, by listener kind.",
            &|i| self.open.get(i).map_or(0, |c| c.load(Ordering::Relaxed)),
        );
        per_protocol(
            out,
            "mailroom_connections_refused_total",
            "counter",
            "Connections refused by the connection limits, by listener kind.",
            &|i| load(&self.refused, i),
        );

        let name = "mailroom_http_request_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time until an HTTP response is ready.\n# TYPE {name} histogram"
        );
        let mut cumulative = 0u64;
        for (i, le) in HTTP_BUCKETS.iter().enumerate() {
            cumulative += self
                .http_buckets
                .get(i)
                .map_or(0, |b| b.load(Ordering::Relaxed));
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        cumulative += self
            .http_buckets
            .get(HTTP_BUCKETS.len())
            .map_or(0, |b| b.load(Ordering::Relaxed));
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let micros = self.http_micros.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_sum {}", micros as f64 / 1e6);
        // The count is the +Inf bucket, read once, so the two always agree.
        let _ = writeln!(out, "{name}_count {cumulative}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let r = Registry {
            accepted: [const { AtomicU64::new(0) }; PROTOCOLS.len()],
            open: [const { AtomicI64::new(0) }; PROTOCOLS.len()],
            refused: [const { AtomicU64::new(0) }; PROTOCOLS.len()],
            http_buckets: [const { AtomicU64::new(0) }; HTTP_BUCKETS.len() + 1],
            http_micros: AtomicU64::new(0),
        };
        r.observe_http(Duration::from_millis(1));
        r.observe_http(Duration::from_millis(30));
        r.observe_http(Duration::from_secs(60));
        r.connection_refused("imap");
        let mut out = String::new();
        r.render(&mut out);
        for line in [
            "mailroom_http_request_duration_seconds_bucket{le=\"0.005\"} 1\n",
            "mailroom_http_request_duration_seconds_bucket{le=\"0.025\"} 1\n",
            "mailroom_http_request_duration_seconds_bucket{le=\"0.05\"} 2\n",
            "mailroom_http_request_duration_seconds_bucket{le=\"10\"} 2\n",
            "mailroom_http_request_duration_seconds_bucket{le=\"+Inf\"} 3\n",
            "mailroom_http_request_duration_seconds_count 3\n",
            "mailroom_connections_refused_total{protocol=\"imap\"} 1\n",
        ] {
            assert!(out.contains(line), "{line} in\n{out}");
        }
    }
}
