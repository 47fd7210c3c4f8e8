//! The one table: both figures per row, the ratio (how many times better Mailroom is), the
//! target and whether it is met; then how it was measured, the versions and the machine.

use crate::Figures;
use crate::loads::{Group, Sizes};
use crate::procs::Mem;

#[derive(Clone, Copy)]
enum Unit {
    /// Messages per second: more is better.
    Rate,
    /// Milliseconds: less is better.
    Ms,
    /// MiB: less is better.
    Mib,
    /// Cycles per second: more is better.
    Cycles,
    /// KiB: less is better.
    Kib,
}

/// A row's figure from one server's measurements.
type Value = fn(&Figures, &Sizes) -> Option<f64>;

struct Row {
    group: Group,
    label: String,
    unit: Unit,
    /// How many times better than Postfix+Dovecot Mailroom must be.
    target: Option<f64>,
    /// The most Mailroom's figure may be, in the row's unit, whatever the pair does (the
    /// issue's absolute targets: idle memory, a session's memory, SEARCH and SELECT at scale).
    limit: Option<f64>,
    value: Value,
}

fn format(unit: Unit, v: Option<f64>) -> String {
    let Some(v) = v.filter(|v| v.is_finite()) else {
        return "-".into();
    };
    let n = if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    match unit {
        Unit::Rate => format!("{n} msg/s"),
        Unit::Ms => format!("{n} ms"),
        Unit::Mib => format!("{n} MiB"),
        Unit::Cycles => format!("{n} cyc/s"),
        Unit::Kib => format!("{n} KiB"),
    }
}

fn timing(t: &[(String, f64)], k: usize) -> Option<f64> {
    t.get(k).map(|(_, v)| *v)
}

fn mib(m: Mem) -> f64 {
    m.rss_kib as f64 / 1024.0
}

fn pss(m: Mem) -> f64 {
    m.pss_kib as f64 / 1024.0
}

fn rows(s: &Sizes) -> Vec<Row> {
    let mut rows = vec![
        Row {
            group: Group::Ingest,
            label: format!(
                "SMTP ingest {} x 4 KB, {} clients, into the mailbox{}",
                s.ingest,
                s.clients,
                match s.ingest_runs {
                    1 => String::new(),
                    n => format!(" (median of {n})"),
                }
            ),
            unit: Unit::Rate,
            target: Some(10.0),
            limit: None,
            value: |f, s| {
                f.ingest
                    .as_ref()
                    .map(|i| s.ingest as f64 / i.in_mailbox.as_secs_f64())
            },
        },
        Row {
            group: Group::Ingest,
            label: "  (until the last 250, for information)".into(),
            unit: Unit::Rate,
            target: None,
            limit: None,
            value: |f, s| {
                f.ingest
                    .as_ref()
                    .map(|i| s.ingest as f64 / i.accepted.as_secs_f64())
            },
        },
        Row {
            group: Group::Imap,
            label: format!("IMAP APPEND {} x 4 KB, 8 clients (the fill)", s.imap),
            unit: Unit::Rate,
            target: None,
            limit: None,
            value: |f, s| f.fill_imap.map(|d| s.imap as f64 / d.as_secs_f64()),
        },
    ];
    // The IMAP and POP3 steps, in loads.rs's order.
    let imap: [(String, Option<f64>, Value); 7] = [
        (
            format!("IMAP SELECT ({} msgs)", s.imap),
            Some(1.0),
            |f, _| timing(&f.imap, 0),
        ),
        (
            "IMAP UID FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE)".into(),
            Some(1.0),
            |f, _| timing(&f.imap, 1),
        ),
        (
            format!("IMAP FETCH {} full bodies", s.imap.min(1000)),
            Some(1.0),
            |f, _| timing(&f.imap, 2),
        ),
        (
            "IMAP UID SEARCH SUBJECT (1% match)".into(),
            Some(1.0),
            |f, _| timing(&f.imap, 3),
        ),
        // Full-text search against a Dovecot that reads every message: for information, the
        // fair comparison is the fts-xapian rows below.
        (
            "IMAP UID SEARCH BODY (1% match), Dovecot without an FTS plugin, for information"
                .into(),
            None,
            |f, _| timing(&f.imap, 4),
        ),
        (
            "IMAP UID SEARCH TEXT (1% match), Dovecot without an FTS plugin, for information"
                .into(),
            None,
            |f, _| timing(&f.imap, 5),
        ),
        (
            "IMAP STORE 1:* +/-FLAGS (\\Flagged)".into(),
            Some(1.0),
            |f, _| timing(&f.imap, 6),
        ),
    ];
    let pop3: [(String, f64, Value); 4] = [
        (format!("POP3 STAT ({} msgs)", s.pop3), 1.0, |f, _| {
            timing(&f.pop3, 0)
        }),
        ("POP3 LIST".into(), 1.0, |f, _| timing(&f.pop3, 1)),
        ("POP3 UIDL".into(), 1.0, |f, _| timing(&f.pop3, 2)),
        (format!("POP3 RETR x {}", s.pop3), 1.5, |f, _| {
            timing(&f.pop3, 3)
        }),
    ];
    for (label, target, value) in imap {
        rows.push(Row {
            group: Group::Imap,
            label,
            unit: Unit::Ms,
            target,
            limit: None,
            value,
        });
    }
    // The same searches against Dovecot with fts-xapian (compare/fts.rs); Mailroom's figures
    // are the two rows above.
    rows.extend([
        Row {
            group: Group::Imap,
            label: "IMAP UID SEARCH BODY (1% match), Dovecot with fts-xapian".into(),
            unit: Unit::Ms,
            target: Some(2.0),
            limit: None,
            value: |f, _| f.fts.as_ref().and_then(|x| timing(&x.timings, 0)),
        },
        Row {
            group: Group::Imap,
            label: "IMAP UID SEARCH TEXT (1% match), Dovecot with fts-xapian".into(),
            unit: Unit::Ms,
            target: Some(2.0),
            limit: None,
            value: |f, _| f.fts.as_ref().and_then(|x| timing(&x.timings, 1)),
        },
    ]);
    for (label, target, value) in pop3 {
        rows.push(Row {
            group: Group::Pop3,
            label,
            unit: Unit::Ms,
            target: Some(target),
            limit: None,
            value,
        });
    }
    rows.extend([
        Row {
            group: Group::Memory,
            label: "memory idle, mailboxes full, RSS (all processes)".into(),
            unit: Unit::Mib,
            target: Some(1.0),
            limit: None,
            value: |f, _| f.idle.map(|m| mib(m.all)),
        },
        Row {
            group: Group::Memory,
            label: "memory idle, mailboxes full, PSS (all processes)".into(),
            unit: Unit::Mib,
            target: None,
            limit: Some(20.0),
            value: |f, _| f.idle.map(|m| pss(m.all)),
        },
        Row {
            group: Group::Memory,
            label: format!(
                "memory, {} IMAP sessions in IDLE, RSS (IMAP server)",
                s.idle
            ),
            unit: Unit::Mib,
            target: Some(10.0),
            limit: None,
            value: |f, _| f.sessions.map(|m| mib(m.imap)),
        },
        Row {
            group: Group::Memory,
            label: format!(
                "memory, {} IMAP sessions in IDLE, PSS (IMAP server)",
                s.idle
            ),
            unit: Unit::Mib,
            target: Some(20.0),
            limit: None,
            value: |f, _| f.sessions.map(|m| pss(m.imap)),
        },
        Row {
            group: Group::Memory,
            label: "  per IDLE session, anonymous memory added (IMAP server)".into(),
            unit: Unit::Kib,
            target: None,
            limit: Some(8.0),
            value: |f, s| {
                let (before, after) = (f.before_sessions?, f.sessions?);
                Some(
                    after.imap.anon_kib.saturating_sub(before.imap.anon_kib) as f64
                        / s.idle.max(1) as f64,
                )
            },
        },
        Row {
            group: Group::Churn,
            label: format!(
                "IMAP churn, {} clients x {} s: LOGIN .. LOGOUT cycles",
                s.churn_clients, s.churn_secs
            ),
            unit: Unit::Cycles,
            target: Some(2.0),
            limit: None,
            value: |f, _| {
                f.churn
                    .as_ref()
                    .map(|c| c.cycles as f64 / c.took.as_secs_f64())
            },
        },
    ]);
    // The scale rows: each step on the big mailbox and on one of the many accounts.
    let steps: [(Value, Value, Option<f64>); 8] = [
        (large::<0>, account::<0>, Some(100.0)),
        (large::<1>, account::<1>, None),
        (large::<2>, account::<2>, None),
        (large::<3>, account::<3>, None),
        (large::<4>, account::<4>, Some(50.0)),
        (large::<5>, account::<5>, None),
        (large::<6>, account::<6>, None),
        (large::<7>, account::<7>, None),
    ];
    for (k, (value, _, limit)) in steps.iter().enumerate() {
        rows.push(Row {
            group: Group::Scale,
            label: format!("{} msgs: {}", s.scale.large, crate::scale::STEPS[k]),
            unit: Unit::Ms,
            target: Some(1.0),
            limit: *limit,
            value: *value,
        });
    }
    for (k, (_, value, _)) in steps.iter().enumerate() {
        rows.push(Row {
            group: Group::Scale,
            label: format!(
                "1 of {} accounts ({} msgs): {}",
                s.scale.accounts,
                s.scale.account_msgs,
                crate::scale::STEPS[k]
            ),
            unit: Unit::Ms,
            target: Some(1.0),
            limit: None,
            value: *value,
        });
    }
    rows.extend([
        Row {
            group: Group::Scale,
            label: format!(
                "start-up, {} msgs stored, to every listener",
                s.scale.total_messages()
            ),
            unit: Unit::Ms,
            target: None,
            limit: None,
            value: |f, _| f.scale.as_ref().map(|x| x.start.as_secs_f64() * 1000.0),
        },
        Row {
            group: Group::Scale,
            label: "  the same after SIGKILL (recovery)".into(),
            unit: Unit::Ms,
            target: None,
            limit: None,
            value: |f, _| f.scale.as_ref().map(|x| x.recover.as_secs_f64() * 1000.0),
        },
    ]);
    rows.extend([
        Row {
            group: Group::Outbound,
            label: format!(
                "outbound {} x 4 KB, {} clients, AUTH, 2 DKIM sigs, all at the sink MX{}",
                s.outbound,
                s.clients,
                match s.outbound_runs {
                    1 => String::new(),
                    n => format!(" (median of {n})"),
                }
            ),
            unit: Unit::Rate,
            target: Some(2.0),
            limit: None,
            value: |f, s| {
                f.outbound
                    .as_ref()
                    .map(|o| s.outbound as f64 / o.delivered.as_secs_f64())
            },
        },
        Row {
            group: Group::Outbound,
            label: "  (submission alone, until the last 250, for information)".into(),
            unit: Unit::Rate,
            target: None,
            limit: None,
            value: |f, s| {
                f.outbound
                    .as_ref()
                    .map(|o| s.outbound as f64 / o.submitted.as_secs_f64())
            },
        },
    ]);
    rows.retain(|r| s.groups.has(r.group));
    rows
}

fn large<const K: usize>(f: &Figures, _: &Sizes) -> Option<f64> {
    f.scale.as_ref().and_then(|x| timing(&x.large, K))
}

fn account<const K: usize>(f: &Figures, _: &Sizes) -> Option<f64> {
    f.scale.as_ref().and_then(|x| timing(&x.account, K))
}

/// How each scale step grows from the small mailbox to the big one, on each side.
fn growth(s: &Sizes, ours: Option<&Figures>, theirs: Option<&Figures>) {
    let sides: Vec<(&str, &crate::scale::Scale)> =
        [("Mailroom", ours), ("Postfix+Dovecot", theirs)]
            .into_iter()
            .filter_map(|(name, f)| Some((name, f?.scale.as_ref()?)))
            .collect();
    if sides.is_empty() {
        return;
    }
    println!();
    println!(
        "How the scale steps grow from {} to {} messages (ms, and the factor):",
        s.scale.small, s.scale.large
    );
    let width = crate::scale::STEPS
        .iter()
        .map(|l| l.len())
        .max()
        .unwrap_or(30)
        + 2;
    for (k, step) in crate::scale::STEPS.iter().enumerate() {
        let mut line = format!("  {step:<width$}");
        for (name, x) in &sides {
            let (a, b) = (timing(&x.small, k), timing(&x.large, k));
            let factor = match (a, b) {
                (Some(a), Some(b)) if a > 0.0 => format!("{:.1}x", b / a),
                _ => "-".into(),
            };
            line.push_str(&format!(
                "  {name}: {} -> {} ({factor})",
                format(Unit::Ms, a),
                format(Unit::Ms, b)
            ));
        }
        println!("{line}");
    }
}

pub fn print(
    s: &Sizes,
    ours: Option<&Figures>,
    theirs: Option<&Figures>,
    why_not: Option<&str>,
    machine: &str,
) {
    let rows = rows(s);
    let width = rows.iter().map(|r| r.label.len()).max().unwrap_or(40) + 2;
    println!();
    println!(
        "{:<width$}{:>12}{:>18}{:>8}{:>18}{:>6}",
        "", "Mailroom", "Postfix+Dovecot", "ratio", "target", "met"
    );
    let (mut met, mut missed) = (0, 0);
    for r in &rows {
        let a = ours.and_then(|f| (r.value)(f, s));
        let b = theirs.and_then(|f| (r.value)(f, s));
        let ratio = match (a, b) {
            (Some(a), Some(b)) if a > 0.0 && b > 0.0 => Some(match r.unit {
                Unit::Rate | Unit::Cycles => a / b,
                Unit::Ms | Unit::Mib | Unit::Kib => b / a,
            }),
            _ => None,
        };
        let ratio_text = ratio.map_or("-".into(), |x| {
            // Two decimals below 10 so that 0.96x does not read as 1.0x next to "no".
            if x >= 100.0 {
                format!("{x:.0}x")
            } else if x >= 10.0 {
                format!("{x:.1}x")
            } else {
                format!("{x:.2}x")
            }
        });
        let target_text = [
            r.target.map(|t| format!("{t}x")),
            r.limit.map(|l| format!("<={}", format(r.unit, Some(l)))),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ");
        // Met when every target the row has is met; undecided (blank) when a figure it needs
        // is missing. An absolute limit needs only Mailroom's figure.
        let by_ratio = r.target.map(|t| ratio.map(|x| x >= t));
        let by_limit = r.limit.map(|l| a.map(|a| a <= l));
        let verdicts: Vec<Option<bool>> = [by_ratio, by_limit].into_iter().flatten().collect();
        let met_text = if verdicts.is_empty() || verdicts.contains(&None) {
            ""
        } else if verdicts.iter().all(|v| *v == Some(true)) {
            met += 1;
            "yes"
        } else {
            missed += 1;
            "no"
        };
        println!(
            "{:<width$}{:>12}{:>18}{:>8}{:>18}{:>6}",
            r.label,
            format(r.unit, a),
            format(r.unit, b),
            ratio_text,
            target_text,
            met_text
        );
    }
    growth(s, ours, theirs);
    println!();
    if let Some(why) = why_not {
        println!("Mailroom alone: {why}.");
    }
    if met + missed > 0 {
        println!("targets met: {met} of {}", met + missed);
    }
    println!(
        "ratio = how many times better Mailroom is (their time / ours, our rate / theirs, their \
         memory / ours)."
    );
    println!(
        "IMAP and POP3 rows: median of {} runs after one warm-up run, each run on a fresh \
         connection; STORE alternates +FLAGS and -FLAGS so each run changes every message.",
        s.reps
    );
    println!(
        "SMTP ingest is timed until STATUS INBOX (MESSAGES), polled every 50 ms over IMAP, \
         counts every message; messages are pipelined (MAIL, RCPT, DATA in one write)."
    );
    println!(
        "Memory: VmRSS and Pss (smaps_rollup) summed over processes; RSS counts shared pages \
         once per process; a session's memory is RssAnon (heap, stacks, buffers) added, as the \
         code pages sessions map back in are the program's. \"all processes\": Mailroom's one, or Postfix's and Dovecot's; \
         \"IMAP server\": Mailroom's one, or Dovecot's. Idle: after all the loads above, no \
         connection open, once the pair's per-connection processes (smtpd, cleanup, lmtp, \
         imap, ...) exited on their idle timeouts."
    );
    if s.groups.has(Group::Churn) {
        println!(
            "IMAP churn: each client on its own account (a 20-message INBOX), a new connection \
             per cycle: LOGIN, SELECT INBOX, FETCH 1:* FLAGS, STORE 1 +FLAGS (\\Deleted), APPEND \
             of ~4 KB, EXPUNGE, LOGOUT; completed cycles of all clients over the time until \
             the last one ends. Auth cache on both, {}.",
            if s.auth_cache_secs == 0 {
                "off (COMPARE_AUTH_CACHE_SECS=0)".to_string()
            } else {
                format!(
                    "{} s: Mailroom's [auth] cache_secs (verified passwords as keyed hashes), \
                     Dovecot's auth_cache_ttl with auth_cache_size 10M, negative TTL 0, \
                     auth_cache_verify_password_with_worker (for a passwd-file it caches the \
                     entry, so each login still verifies the argon2id hash)",
                    s.auth_cache_secs
                )
            }
        );
    }
    if s.groups.has(Group::Scale) {
        println!(
            "Scale rows: each side on a server of its own holding {} messages ({} and {} in \
             two INBOXes, {} accounts of {}), stored with the clock stopped (Mailroom: the \
             library's delivery path, server down; Dovecot: Maildir files, then doveadm \
             force-resync); STORE is on the last 1,000 messages (or all of a smaller INBOX). \
             Start-up: from the start command (Mailroom's serve; dovecot and postfix start) to \
             SMTP, IMAP and POP3 (and Dovecot's LMTP) all accepting, after a clean stop, and \
             after SIGKILL of every process.",
            s.scale.total_messages(),
            s.scale.small,
            s.scale.large,
            s.scale.accounts,
            s.scale.account_msgs
        );
    }
    if s.groups.has(Group::Outbound) {
        println!(
            "Outbound (against Postfix with OpenDKIM): submission with AUTH PLAIN (plaintext allowed on both), each client logged \
             in (untimed) as its own account, each message to one recipient in one of 20 domains; both sign with an \
             RSA-2048 (rsa-sha256) and an Ed25519 (ed25519-sha256) key, relaxed/relaxed, the \
             same header fields; the sink MX on loopback (PIPELINING) checks both signatures on \
             every message. Mailroom resolves MX through the bench's DNS server; Postfix routes \
             the 20 domains with transport_maps to smtp:[127.0.0.1]:<sink> (no lookups: in its \
             favour), SASL through Dovecot's auth socket, two OpenDKIM milters (one per \
             algorithm: OpenDKIM signs with one algorithm per process; their memory counts in \
             the pair's), queue fsync as by default."
        );
    }
    println!(
        "Mailroom: release build, one process, SQLite with synchronous=FULL (fsync before every \
         250 and OK), argon2id passwords (m=19456,t=2,p=1)."
    );
    if theirs.is_some() || why_not.is_none() {
        println!(
            "Postfix+Dovecot ({}): Postfix with its queue fsync (default), chroot off, \
             lmtp_destination_concurrency_limit 20, delivering over LMTP to Dovecot; Dovecot \
             with Maildir, mail_fsync=always, passwd-file of the same argon2id hashes ({{ARGON2ID}}), \
             no FTS plugin (as Debian ships it: SEARCH BODY/TEXT read the messages), login \
             processes in the default high-security mode and one imap process per connection.",
            crate::pair::versions()
        );
    }
    if let Some(fts) = theirs.and_then(|f| f.fts.as_ref())
        && s.groups.has(Group::Imap)
    {
        println!("{}", fts.note);
    }
    println!("Machine: {machine}.");
}
