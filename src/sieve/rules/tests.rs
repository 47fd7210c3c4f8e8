use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

fn invoice_rule() -> Rules {
    Rules {
        filters: vec![Filter {
            enabled: true,
            field: Field::Subject,
            op: Op::Contains,
            value: "Invoice".into(),
            action: FilterAction::MoveTo("Invoices".into()),
            stop: true,
        }],
        vacation: None,
        forward: None,
    }
}

#[test]
fn a_simple_filter_reads_as_sieve() {
    let script = to_sieve(&invoice_rule());
    assert_eq!(
        script,
        format!(
            "{HEADER}require [\"fileinto\"];\n\n# Filter 1\nif header :contains \"subject\" \
             \"Invoice\" {{\n    fileinto \"Invoices\";\n    stop;\n}}\n"
        )
    );
    crate::sieve::compile(&script).unwrap();
    assert_eq!(from_sieve(&script), Some(invoice_rule()));
}

#[test]
fn no_rules_is_a_script_without_require() {
    let script = to_sieve(&Rules::default());
    assert_eq!(script, HEADER);
    crate::sieve::compile(&script).unwrap();
    assert_eq!(from_sieve(&script), Some(Rules::default()));
}

#[test]
fn values_are_escaped_and_patterns_kept() {
    let mut rules = invoice_rule();
    rules.filters[0].op = Op::Matches;
    rules.filters[0].value = r#"say "hi" \* to *C:\path?"#.into();
    let script = to_sieve(&rules);
    assert!(
        script.contains(r#""say \"hi\" \\* to *C:\\path?""#),
        "{script}"
    );
    crate::sieve::compile(&script).unwrap();
    assert_eq!(from_sieve(&script), Some(rules));
}

#[test]
fn a_disabled_filter_stays_in_the_script_behind_false() {
    let mut rules = invoice_rule();
    rules.filters[0].enabled = false;
    let script = to_sieve(&rules);
    assert!(
        script.contains("# Filter 1 (disabled)\nif allof (false, header :contains"),
        "{script}"
    );
    crate::sieve::compile(&script).unwrap();
    assert_eq!(from_sieve(&script), Some(rules));
}

#[test]
fn vacation_and_forwarding_read_as_sieve() {
    let rules = Rules {
        filters: Vec::new(),
        vacation: Some(VacationRule {
            enabled: true,
            first_day: Some("2026-12-20".into()),
            last_day: Some("2027-01-03".into()),
            subject: "Away".into(),
            message: "Back in January.\nRegards".into(),
            days: 7,
            addresses: vec!["me@example.org".into()],
        }),
        forward: Some(ForwardRule {
            address: "elsewhere@example.net".into(),
            keep: false,
        }),
    };
    let script = to_sieve(&rules);
    assert!(script.contains(
        "if allof (currentdate :value \"ge\" \"date\" \"2026-12-20\", currentdate :value \"le\" \
         \"date\" \"2027-01-03\") {\n    vacation :days 7 :subject \"Away\" :addresses \
         [\"me@example.org\"] \"Back in January.\nRegards\";\n}\n"
    ));
    assert!(script.contains("redirect \"elsewhere@example.net\";\nstop;\n"));
    assert!(script.contains("require [\"date\", \"relational\", \"vacation\"];"));
    crate::sieve::compile(&script).unwrap();
    assert_eq!(from_sieve(&script), Some(rules));
}

#[test]
fn scripts_not_written_here_give_none() {
    let ours = to_sieve(&invoice_rule());
    for other in [
        "keep;".to_string(),
        // Without our first line.
        ours.replacen(HEADER, "", 1),
        // Edited by hand: another spacing, another comment, another command.
        ours.replace("    stop;", "  stop;"),
        ours.replace("# Filter 1", "# my filter"),
        ours.replace("fileinto \"Invoices\";", "fileinto \"Invoices\"; keep;"),
        ours.replace(":contains", ":is :comparator \"i;octet\""),
        format!("{ours}discard;\n"),
        // A require we would not write.
        ours.replace("[\"fileinto\"]", "[\"fileinto\", \"body\"]"),
        // Not Sieve at all.
        format!("{HEADER}if {{"),
        format!("{HEADER}\"unterminated"),
    ] {
        assert_eq!(from_sieve(&other), None, "{other}");
    }
}

#[test]
fn sizes_are_written_in_their_shortest_form() {
    assert_eq!(parse_size("100k"), Some(100 << 10));
    assert_eq!(parse_size(" 2 M "), Some(2 << 20));
    assert_eq!(parse_size("5000"), Some(5000));
    assert_eq!(parse_size("1G"), Some(1 << 30));
    for bad in ["", "K", "1.5M", "-1", "1T", "12345678901234"] {
        assert_eq!(parse_size(bad), None, "{bad:?}");
    }
    assert_eq!(size_text(1024), "1K");
    assert_eq!(size_text(1025), "1025");
    assert_eq!(size_text(3 << 20), "3M");
    assert_eq!(size_text(0), "0");
}

#[test]
fn check_finds_what_cannot_be_written() {
    let with = |f: &dyn Fn(&mut Filter)| {
        let mut r = invoice_rule();
        f(&mut r.filters[0]);
        r.check()
    };
    assert_eq!(with(&|_| {}), Ok(()));
    assert!(with(&|f| f.value = String::new()).is_err());
    assert!(with(&|f| f.value = "a\nb".into()).is_err());
    assert!(with(&|f| f.op = Op::GreaterThan).is_err());
    assert!(
        with(&|f| {
            f.field = Field::Size;
            f.op = Op::GreaterThan;
            f.value = "1024".into();
        })
        .is_err(),
        "a size not in its shortest form would not read back"
    );
    assert!(
        with(&|f| {
            f.field = Field::SpamScore;
            f.op = Op::GreaterThan;
            f.value = "101".into();
        })
        .is_err()
    );
    assert!(with(&|f| f.field = Field::Header("Sub ject".into())).is_err());
    assert!(with(&|f| f.field = Field::Header("Subject".into())).is_err());
    assert!(with(&|f| f.action = FilterAction::MoveTo(String::new())).is_err());
    assert!(
        with(&|f| f.action = FilterAction::Forward {
            address: "not an address".into(),
            keep: true
        })
        .is_err()
    );
    let mut r = invoice_rule();
    r.vacation = Some(VacationRule {
        enabled: true,
        first_day: Some("2026-02-30".into()),
        last_day: None,
        subject: String::new(),
        message: "away".into(),
        days: 7,
        addresses: Vec::new(),
    });
    assert!(r.check().is_err());
    if let Some(v) = &mut r.vacation {
        v.first_day = Some("2026-03-02".into());
        v.last_day = Some("2026-03-01".into());
    }
    assert!(r.check().is_err());
    if let Some(v) = &mut r.vacation {
        v.last_day = None;
        v.days = 0;
    }
    assert!(r.check().is_err());

    // Reject cannot meet vacation or a redirect that keeps a copy (RFC 5429).
    let mut r = invoice_rule();
    r.filters[0].action = FilterAction::Reject("No invoices here.".into());
    assert_eq!(r.check(), Ok(()));
    r.vacation = Some(VacationRule {
        enabled: true,
        first_day: None,
        last_day: None,
        subject: String::new(),
        message: "away".into(),
        days: 7,
        addresses: Vec::new(),
    });
    assert!(r.check().unwrap_err().contains("vacation"));
    if let Some(v) = &mut r.vacation {
        v.enabled = false;
    }
    assert_eq!(r.check(), Ok(()));
    r.forward = Some(ForwardRule {
        address: "a@example.org".into(),
        keep: true,
    });
    assert!(r.check().unwrap_err().contains("forwarded"));
    // Forwarding without a copy ends the script before any filter.
    r.forward = Some(ForwardRule {
        address: "a@example.org".into(),
        keep: false,
    });
    assert_eq!(r.check(), Ok(()));
}

/// Text with what needs escaping or could confuse a reader: quotes, backslashes, wildcards,
/// braces, semicolons, `#`, comment openers, non-ASCII.
fn text(rng: &mut StdRng, lines: bool) -> String {
    const PIECES: &[&str] = &[
        "a", "Invoice", " ", "\"", "\\", "*", "?", "{", "}", ";", "#", "/*", "*/", "é", "日本",
        "text:", "\\\"", "[", "]", ",", "(", "false", "stop;", "${x}",
    ];
    let n = rng.random_range(1..8);
    // Never blank: every value the generator makes must pass `check`.
    let mut s = String::from("m");
    for _ in 0..n {
        if lines && rng.random_bool(0.15) {
            s.push('\n');
        }
        s.push_str(PIECES[rng.random_range(0..PIECES.len())]);
    }
    s
}

fn address(rng: &mut StdRng) -> String {
    let users = ["a", "bob", "x.y", "first+tag"];
    let domains = ["example.org", "example.net", "mail.example.com"];
    format!(
        "{}@{}",
        users[rng.random_range(0..users.len())],
        domains[rng.random_range(0..domains.len())]
    )
}

fn day(rng: &mut StdRng) -> String {
    format!(
        "{}-{:02}-{:02}",
        rng.random_range(2020..2040),
        rng.random_range(1..13),
        rng.random_range(1..29)
    )
}

fn filter(rng: &mut StdRng) -> Filter {
    let field = match rng.random_range(0..6) {
        0 => Field::From,
        1 => Field::ToOrCc,
        2 => Field::Subject,
        3 => Field::Header(
            ["X-Mailer", "List-Id", "reply-to", "X-Spam_Flag"][rng.random_range(0..4)].into(),
        ),
        4 => Field::Size,
        _ => Field::SpamScore,
    };
    let ops: Vec<Op> = [
        Op::Contains,
        Op::Is,
        Op::Matches,
        Op::GreaterThan,
        Op::LessThan,
    ]
    .into_iter()
    .filter(|o| o.allowed_for(&field))
    .collect();
    let op = ops[rng.random_range(0..ops.len())];
    let value = match field {
        Field::Size => size_text(rng.random_range(0..4000u64) << (10 * rng.random_range(0..4))),
        Field::SpamScore => rng.random_range(0..=100).to_string(),
        _ => text(rng, false),
    };
    let action = match rng.random_range(0..7) {
        0 => FilterAction::MoveTo(text(rng, false)),
        1 => FilterAction::CopyTo(text(rng, false)),
        2 => FilterAction::MarkRead,
        3 => FilterAction::Flag,
        4 => FilterAction::Forward {
            address: address(rng),
            keep: rng.random_bool(0.5),
        },
        5 => FilterAction::Reject(text(rng, true)),
        _ => FilterAction::Delete,
    };
    Filter {
        enabled: rng.random_bool(0.7),
        field,
        op,
        value,
        action,
        stop: rng.random_bool(0.5),
    }
}

fn rules(rng: &mut StdRng) -> Rules {
    let filters = (0..rng.random_range(0..6)).map(|_| filter(rng)).collect();
    let vacation = rng.random_bool(0.5).then(|| {
        let mut days = [day(rng), day(rng)];
        days.sort();
        let [first, last] = days;
        VacationRule {
            enabled: rng.random_bool(0.7),
            first_day: rng.random_bool(0.5).then_some(first),
            last_day: rng.random_bool(0.5).then_some(last),
            subject: if rng.random_bool(0.3) {
                String::new()
            } else {
                text(rng, false)
            },
            message: text(rng, true),
            days: rng.random_range(1..=MAX_VACATION_DAYS),
            addresses: (0..rng.random_range(0..3)).map(|_| address(rng)).collect(),
        }
    });
    let forward = rng.random_bool(0.4).then(|| ForwardRule {
        address: address(rng),
        keep: rng.random_bool(0.5),
    });
    let mut rules = Rules {
        filters,
        vacation,
        forward,
    };
    // Reject with vacation or forwarding is refused by `check`: such sets keep their reject
    // filters, disabled.
    if rules.check().is_err() {
        for f in &mut rules.filters {
            if matches!(f.action, FilterAction::Reject(_)) {
                f.enabled = false;
            }
        }
    }
    rules
}

#[test]
fn generated_rule_sets_round_trip_and_compile() {
    let mut rng = StdRng::seed_from_u64(22);
    for i in 0..2000 {
        let r = rules(&mut rng);
        assert_eq!(r.check(), Ok(()), "set {i}: {r:?}");
        let script = to_sieve(&r);
        if let Err(e) = crate::sieve::compile(&script) {
            panic!("set {i} does not compile: {e}\n{script}");
        }
        assert_eq!(from_sieve(&script).as_ref(), Some(&r), "set {i}:\n{script}");
        // Any one character more or less is not our form any longer (or reads as the same
        // rules only if it writes the same script, which it then is not).
        let cut = script.get(..script.len() - 1).unwrap_or_default();
        assert_eq!(from_sieve(cut), None, "set {i}");
    }
}

/// Runs `rules`' script on a message from Carol to Bob with `subject`.
fn run(rules: &Rules, subject: &str) -> crate::sieve::Outcome {
    let script = crate::sieve::compile(&to_sieve(rules)).unwrap();
    let limits = crate::sieve::Limits::default();
    let own = vec!["bob@localhost".to_string()];
    let ctx = crate::sieve::Context {
        now: time::macros::datetime!(2026-12-24 12:00 UTC),
        own_addresses: &own,
        mailbox_exists: &|_: &str| true,
        limits: &limits,
    };
    let raw = format!(
        "From: carol@sender.example\r\nTo: bob@localhost\r\nSubject: {subject}\r\n\
         Message-ID: <1@sender.example>\r\n\r\nHello\r\n"
    );
    let msg = crate::sieve::Message {
        raw: raw.as_bytes(),
        envelope_from: "carol@sender.example",
        envelope_to: "bob@localhost",
        auth: None,
        spam_percent: Some(10),
    };
    crate::sieve::run(&script, &msg, &ctx)
}

#[test]
fn the_written_script_files_and_answers_when_run() {
    use crate::sieve::Action;
    let mut rules = invoice_rule();
    rules.vacation = Some(VacationRule {
        enabled: true,
        first_day: Some("2026-12-20".into()),
        last_day: Some("2026-12-24".into()),
        subject: "Away".into(),
        message: "I am away.".into(),
        days: 7,
        addresses: Vec::new(),
    });
    let out = run(&rules, "Invoice 7");
    assert_eq!(out.error, None);
    let filed = |out: &crate::sieve::Outcome| {
        out.actions
            .iter()
            .any(|a| matches!(a, Action::FileInto { mailbox, .. } if mailbox == "Invoices"))
    };
    let answered = |out: &crate::sieve::Outcome| {
        out.actions.iter().any(|a| {
            matches!(a, Action::Vacation(v) if v.to == "carol@sender.example"
                && v.subject == "Away" && v.body == "I am away." && v.period_secs == 7 * 86_400)
        })
    };
    assert!(filed(&out), "{out:?}");
    assert!(answered(&out), "{out:?}");
    assert!(!out.actions.iter().any(|a| matches!(a, Action::Keep { .. })));
    // Other mail is kept and answered; outside the days, not answered.
    let out = run(&rules, "Lunch");
    assert!(!filed(&out) && answered(&out), "{out:?}");
    if let Some(v) = &mut rules.vacation {
        v.first_day = Some("2026-12-25".into());
        v.last_day = None;
    }
    assert!(!answered(&run(&rules, "Lunch")));
    // Disabled, neither the filter nor the reply acts.
    rules.filters[0].enabled = false;
    if let Some(v) = &mut rules.vacation {
        v.enabled = false;
        v.first_day = None;
    }
    let out = run(&rules, "Invoice 8");
    assert_eq!(out.actions, [Action::Keep { flags: Vec::new() }]);
}
