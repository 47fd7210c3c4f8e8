//! The differential suite of issue 22: every case in `tests/sieve/cases/` (see `cases` for the
//! format) runs through Pigeonhole's `sieve-test` and through `mailroom::sieve`, and both must
//! take the same actions. Nothing is stored as the expected result: `sieve-test` is run live
//! (see `pigeonhole` for what was learnt about it and how it is driven).
//!
//! Needs `sieve-test` (Debian `dovecot-sieve`; `.ci/run` installs it and sets
//! `MAILROOM_SIEVE_DIFF=required`): skipped with a message where it is missing, failed there.
//!
//! Both sides' results become a sorted list of canonical lines:
//! - `store "FOLDER"` for keep (FOLDER is INBOX), fileinto and the implicit keep, then
//!   ` :create` and ` :flags [..]` (lower-cased, sorted: flags are a case-insensitive set);
//! - `redirect ADDR`, `reject "REASON"`, `ereject "REASON"`;
//! - `discard`, only when nothing stores or redirects the message (`sieve-test` lists a discard
//!   that a later fileinto overrode; Mailroom leaves it out);
//! - `vacation to=ADDR subject="S" period=SECS [from="F"] reason="R"`, only when the reply is
//!   really to be sent (the message-based "do not reply" rules applied);
//! - `compile-error`, `runtime-error` (then the message is kept: `store "INBOX"`).
//!
//! A case marked `deviation:` is one where `sieve-test` itself departs from the RFC: it runs on
//! both sides and is printed, but not required to agree. A case marked `invalid:` must be
//! refused by `sieve-test` (and, being compared, by Mailroom).

mod cases;
mod mailroom;
mod pigeonhole;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use cases::Case;

/// The extensions the issue lists; each must be exercised by several cases.
const EXTENSIONS: &[&str] = &[
    "fileinto",
    "reject",
    "ereject",
    "envelope",
    "imap4flags",
    "vacation",
    "vacation-seconds",
    "body",
    "variables",
    "relational",
    "subaddress",
    "copy",
    "date",
    "index",
    "mailbox",
    "encoded-character",
    "spamtest",
    "spamtestplus",
    "comparator-i;ascii-numeric",
];

/// The core commands and tests, each exercised by several cases too.
const CORE: &[&str] = &[
    "header", "address", "exists", "size", "allof", "anyof", "not", "stop", "discard", "keep",
    "redirect",
];

/// Fewest cases per extension or core word.
const MIN_PER_FEATURE: usize = 5;

/// A `store` line (see the module doc).
fn store(folder: &str, flags: &[String], create: bool) -> String {
    let mut line = format!("store {folder:?}");
    if create {
        line.push_str(" :create");
    }
    let mut flags: Vec<String> = flags.iter().map(|f| f.to_lowercase()).collect();
    flags.sort();
    flags.dedup();
    if !flags.is_empty() {
        line.push_str(&format!(" :flags {flags:?}"));
    }
    line
}

/// Text as both sides are compared: line breaks as LF, no trailing white space.
fn text(s: &str) -> String {
    s.replace("\r\n", "\n").trim_end().to_string()
}

/// Sorts the lines and drops a `discard` that something else overrides.
fn canonical(mut actions: Vec<String>) -> Vec<String> {
    let delivers = actions
        .iter()
        .any(|a| a.starts_with("store ") || a.starts_with("redirect "));
    if delivers {
        actions.retain(|a| a != "discard");
    }
    actions.sort();
    actions
}

/// Whether the reference must be there: a missing `sieve-test` skips unless required.
fn reference_available(test: &str) -> bool {
    match pigeonhole::missing() {
        None => true,
        Some(why) => {
            if std::env::var("MAILROOM_SIEVE_DIFF").as_deref() == Ok("required") {
                panic!("the Sieve differential suite is required here, but {why}");
            }
            eprintln!("SKIPPED {test}: {why}");
            false
        }
    }
}

/// Runs `each` over all cases on a few threads (each case is one or two processes), returning
/// the results in case order.
fn over_cases<T: Send>(cases: &[Case], each: impl Fn(&Case) -> T + Sync) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<T>>> = Mutex::new((0..cases.len()).map(|_| None).collect());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()) * 2;
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(case) = cases.get(i) else { break };
                    let result = each(case);
                    results.lock().unwrap()[i] = Some(result);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.expect("every case ran"))
        .collect()
}

/// How many cases exercise each extension (by `require`) and each core command or test.
fn coverage(cases: &[Case]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for case in cases {
        for ext in cases::required(&case.script) {
            *counts.entry(ext).or_insert(0) += 1;
        }
        let code = cases::code_only(&case.script);
        for word in CORE {
            if cases::has_word(&code, word) {
                *counts.entry((*word).to_string()).or_insert(0) += 1;
            }
        }
    }
    counts
}

#[test]
fn sieve_cases_are_well_formed_and_cover_every_extension() {
    let cases = cases::load().unwrap();
    assert!(cases.len() >= 300, "only {} cases", cases.len());
    let mut names = std::collections::HashSet::new();
    for case in &cases {
        assert!(
            names.insert(case.name.as_str()),
            "{}: duplicate case name {}",
            case.file,
            case.name
        );
        cases::raw_message(case).unwrap_or_else(|e| panic!("{}: {e}", case.name));
    }
    let counts = coverage(&cases);
    let thin: Vec<String> = EXTENSIONS
        .iter()
        .chain(CORE)
        .filter(|f| counts.get(**f).copied().unwrap_or(0) < MIN_PER_FEATURE)
        .map(|f| format!("{f} ({})", counts.get(*f).copied().unwrap_or(0)))
        .collect();
    assert!(
        thin.is_empty(),
        "fewer than {MIN_PER_FEATURE} cases for: {}",
        thin.join(", ")
    );
}

#[test]
fn mailroom_takes_the_actions_sieve_test_takes() {
    if !reference_available("mailroom_takes_the_actions_sieve_test_takes") {
        return;
    }
    let cases = cases::load().unwrap();
    let started = std::time::Instant::now();
    let results = over_cases(&cases, |case| {
        let raw = cases::raw_message(case)?;
        let reference = pigeonhole::run(case, &raw)?;
        Ok::<_, String>((reference, mailroom::run(case, &raw)))
    });
    let mut differ = Vec::new();
    let mut broken = Vec::new();
    let mut deviations = Vec::new();
    let mut implicit = 0;
    for (case, result) in cases.iter().zip(&results) {
        let (reference, ours) = match result {
            Ok(r) => r,
            Err(e) => {
                broken.push(format!("{} ({}): {e}", case.name, case.file));
                continue;
            }
        };
        implicit += usize::from(reference.implicit_keep);
        let refused = reference.actions == ["compile-error"];
        if refused != case.invalid.is_some() {
            broken.push(format!(
                "{} ({}): sieve-test gives {:?}, but the case says invalid: {:?}",
                case.name, case.file, reference.actions, case.invalid
            ));
        }
        let report = format!(
            "{} ({}): {}\n    sieve-test: {:?}\n    mailroom:   {:?}",
            case.name, case.file, case.why, reference.actions, ours
        );
        if let Some(why) = &case.deviation {
            deviations.push(format!("{report}\n    (sieve-test deviates: {why})"));
        } else if reference.actions != *ours {
            differ.push(report);
        }
    }
    println!(
        "{} Sieve cases through sieve-test and mailroom in {:?}; {implicit} end in the implicit \
         keep; per extension or command:",
        cases.len(),
        started.elapsed()
    );
    for (feature, n) in coverage(&cases) {
        println!("  {feature:<28} {n}");
    }
    if !deviations.is_empty() {
        println!(
            "{} cases where sieve-test departs from the RFC (not compared):",
            deviations.len()
        );
        for d in &deviations {
            println!("{d}");
        }
    }
    assert!(
        broken.is_empty(),
        "cases sieve-test could not judge:\n{}",
        broken.join("\n\n")
    );
    assert!(
        differ.is_empty(),
        "{} of {} cases differ:\n{}",
        differ.len(),
        cases.len(),
        differ.join("\n")
    );
}
