//! variables, imap4flags, date, vacation, spamtest, mailbox, encoded-character.

use super::*;
use crate::sieve::{Action, Vacation};

#[test]
fn variables_set_and_expand() {
    let src = "require [\"variables\", \"fileinto\"];
        set \"Folder\" \"Lists\";
        set :upperfirst \"x\" \"abc\";
        set :length \"n\" \"${x}de\";
        fileinto \"${folder}/${X}/${n}/${unknown}\";";
    assert_eq!(actions(src), [fileinto("Lists/Abc/5/")]);
}

#[test]
fn match_variables_from_matches() {
    let src = "require [\"variables\", \"fileinto\"];
        if address :matches \"from\" \"*+*@*\" { fileinto \"${2}-${1}.${3}\"; }
        if header :contains \"subject\" \"Hello\" { fileinto \"[${0}]\"; }";
    assert_eq!(
        actions(src),
        [
            fileinto("lists-alice.example.org"),
            fileinto("[alice+lists@example.org]")
        ]
    );
}

#[test]
fn match_variables_past_nine() {
    let src = "require [\"variables\", \"fileinto\"];
        if string :matches \"a1b2c3d4e5f6g7h8i9j0k\" \"*1*2*3*4*5*6*7*8*9*0*\" { fileinto \"${9}|${10}|${11}\"; }";
    assert_eq!(actions(src), [fileinto("i|j|k")]);
}

#[test]
fn string_test_and_quotewildcard() {
    let src = "require [\"variables\", \"fileinto\", \"relational\"];
        set :quotewildcard \"p\" \"a*b\";
        if string :matches \"a*b\" \"${p}\" { fileinto \"1\"; }
        if string :matches \"axxb\" \"${p}\" { fileinto \"2\"; }
        if string :count \"eq\" [\"\", \"x\"] \"1\" { fileinto \"3\"; }";
    assert_eq!(actions(src), [fileinto("1"), fileinto("3")]);
}

#[test]
fn variables_without_require_are_literal() {
    let src = "require \"fileinto\"; fileinto \"${x}\";";
    assert_eq!(actions(src), [fileinto("${x}")]);
}

#[test]
fn imap4flags() {
    let src = "require [\"imap4flags\", \"fileinto\"];
        setflag \"\\\\seen a\";
        addflag [\"b\", \"A\"];
        removeflag \"b\";
        fileinto \"F\";
        fileinto :flags \"x y\" \"G\";
        if hasflag :is \"a\" { keep; }
        if hasflag :count \"eq\" \"2\" { fileinto \"H\"; }";
    let want = |m: &str, f: &[&str]| Action::FileInto {
        mailbox: m.into(),
        flags: f.iter().map(|s| s.to_string()).collect(),
        create: false,
    };
    assert_eq!(
        actions(
            &src.replace("count", "is")
                .replace("\"eq\" \"2\"", "\"none\"")
        ),
        [
            want("F", &["\\Seen", "a"]),
            want("G", &["x", "y"]),
            Action::Keep {
                flags: vec!["\\Seen".into(), "a".into()]
            },
        ]
    );
    let counted = "require [\"imap4flags\", \"relational\", \"comparator-i;ascii-numeric\"];
        addflag \"a b\"; if hasflag :count \"eq\" :comparator \"i;ascii-numeric\" \"2\" { discard; }";
    assert_eq!(actions(counted), [Action::Discard]);
    // The implicit keep carries the internal variable's flags.
    assert_eq!(
        actions("require \"imap4flags\"; addflag \"$Label\";"),
        [Action::Keep {
            flags: vec!["$Label".into()]
        }]
    );
}

#[test]
fn imap4flags_on_variables() {
    let src = "require [\"imap4flags\", \"variables\", \"fileinto\"];
        addflag \"v\" [\"a\", \"b\"]; removeflag \"v\" \"a\";
        if hasflag \"v\" \"b\" { fileinto \"${v}\"; }";
    assert_eq!(actions(src), [fileinto("b")]);
}

#[test]
fn date_and_currentdate() {
    let r = "require [\"date\", \"relational\", \"comparator-i;ascii-numeric\", \"index\"];";
    assert!(holds(r, "date :originalzone \"date\" \"hour\" \"23\""));
    assert!(
        holds(r, "date \"date\" \"hour\" \"22\""),
        "local zone is UTC here"
    );
    assert!(holds(
        r,
        "date :zone \"+0200\" \"date\" \"date\" \"2009-02-14\""
    ));
    assert!(holds(r, "date :originalzone \"date\" \"zone\" \"+0100\""));
    assert!(holds(
        r,
        "date :value \"ge\" :comparator \"i;ascii-numeric\" \"date\" \"year\" \"2009\""
    ));
    assert!(!holds(r, "date \"x-none\" \"year\" \"2009\""));
    assert!(!holds(r, "date \"subject\" \"year\" \"2009\""));
    assert!(holds(r, "currentdate \"date\" \"2026-12-04\""));
    assert!(holds(
        r,
        "currentdate :zone \"+0300\" \"date\" \"2026-12-05\""
    ));
    assert!(holds(r, "currentdate \"weekday\" \"5\""));
    assert!(holds(
        r,
        "currentdate :matches \"iso8601\" \"2026-12-04T21:48:02*\""
    ));
}

fn vacation_of(src: &str, env: &Env) -> Option<Vacation> {
    actions_in(src, env).into_iter().find_map(|a| match a {
        Action::Vacation(v) => Some(v),
        _ => None,
    })
}

#[test]
fn vacation_reply_fields() {
    let env = Env::default();
    let v = vacation_of(
        "require \"vacation\"; vacation :days 3 \"I am away.\";",
        &env,
    )
    .unwrap();
    assert_eq!(v.to, "alice+lists@example.org");
    assert_eq!(v.subject, "Auto: Hello wörld");
    assert_eq!(v.body, "I am away.");
    assert_eq!(v.period_secs, 3 * 86400);
    assert_eq!(
        v.handle,
        "I am away.<default-subject><default-from><NO-MIME>"
    );
    assert_eq!(v.in_reply_to.as_deref(), Some("<abc@example.org>"));
    assert_eq!(v.references.as_deref(), Some("<abc@example.org>"));
    // The implicit keep stays.
    assert_eq!(
        actions_in("require \"vacation\"; vacation \"x\";", &env).last(),
        Some(&keep())
    );

    let v = vacation_of(
        "require \"vacation-seconds\"; vacation :seconds 60 :subject \"Off\" :from \"b@example.com\" :mime :handle \"h\" \"x\";",
        &env,
    )
    .unwrap();
    assert_eq!(
        (v.subject.as_str(), v.handle.as_str(), v.mime),
        ("Off", "h", true)
    );
    assert_eq!(
        (v.from.as_deref(), v.period_secs),
        (Some("b@example.com"), 3600)
    );
    let v = vacation_of("require \"vacation\"; vacation :days 1000 \"x\";", &env).unwrap();
    assert_eq!(v.period_secs, 90 * 86400);
    let v = vacation_of("require \"vacation\"; vacation :days 0 \"x\";", &env).unwrap();
    assert_eq!(v.period_secs, 86400);
    assert_eq!(
        vacation_of("require \"vacation\"; vacation \"x\";", &env)
            .unwrap()
            .period_secs,
        7 * 86400
    );
}

#[test]
fn vacation_does_not_reply_to_automatic_or_unaddressed_mail() {
    let src = "require \"vacation\"; vacation \"away\";";
    let with = |extra: &str| format!("{extra}{MAIL}");
    for raw in [
        with("Auto-Submitted: auto-replied\r\n"),
        with("Precedence: bulk\r\n"),
        with("Precedence: List\r\n"),
        with("List-Id: <list.example.org>\r\n"),
        MAIL.replace("bob@example.com", "other@example.com"),
    ] {
        let env = Env {
            raw: &raw,
            ..Env::default()
        };
        assert_eq!(vacation_of(src, &env), None, "{raw}");
    }
    for from in [
        "",
        "MAILER-DAEMON@example.org",
        "owner-list@example.org",
        "list-request@example.org",
        "bob@example.com",
    ] {
        let env = Env {
            from,
            ..Env::default()
        };
        assert_eq!(vacation_of(src, &env), None, "{from}");
    }
    let raw = with("Auto-Submitted: no\r\n");
    assert!(
        vacation_of(
            src,
            &Env {
                raw: &raw,
                ..Env::default()
            }
        )
        .is_some()
    );
    // :addresses adds to the account's own addresses; the envelope recipient counts too.
    let raw = MAIL.replace("bob@example.com", "bobby@example.com");
    let env = Env {
        raw: &raw,
        ..Env::default()
    };
    assert!(vacation_of(src, &env).is_none());
    assert!(
        vacation_of(
            "require \"vacation\"; vacation :addresses \"bobby@example.com\" \"away\";",
            &env
        )
        .is_some()
    );
    let env = Env {
        raw: &raw,
        to: "bobby@example.com",
        ..Env::default()
    };
    assert!(vacation_of(src, &env).is_some());
}

#[test]
fn spamtest_and_spamtestplus() {
    let r = "require [\"spamtestplus\", \"relational\", \"comparator-i;ascii-numeric\"];";
    let none = Env::default();
    assert!(holds_in(r, "spamtest :is \"0\"", &none));
    assert!(holds_in(r, "spamtest :percent :is \"0\"", &none));
    let high = Env {
        spam: Some(95),
        ..Env::default()
    };
    assert!(holds_in(
        r,
        "spamtest :value \"ge\" :comparator \"i;ascii-numeric\" \"9\"",
        &high
    ));
    assert!(holds_in(
        r,
        "spamtest :percent :value \"gt\" :comparator \"i;ascii-numeric\" \"90\"",
        &high
    ));
    let low = Env {
        spam: Some(0),
        ..Env::default()
    };
    assert!(holds_in(r, "spamtest :is \"1\"", &low));
    let full = Env {
        spam: Some(100),
        ..Env::default()
    };
    assert!(holds_in(r, "spamtest :is \"10\"", &full));
}

#[test]
fn mailbox_extension() {
    let r = "require [\"mailbox\", \"fileinto\"];";
    assert!(holds(r, "mailboxexists \"Existing\""));
    assert!(holds(r, "mailboxexists [\"INBOX\", \"Existing\"]"));
    assert!(!holds(r, "mailboxexists [\"INBOX\", \"Missing\"]"));
    assert_eq!(
        actions("require [\"mailbox\", \"fileinto\"]; fileinto :create \"New\";"),
        [Action::FileInto {
            mailbox: "New".into(),
            flags: vec![],
            create: true
        }]
    );
}

#[test]
fn encoded_character() {
    let src =
        "require [\"encoded-character\", \"fileinto\"]; fileinto \"${hex:41 42}${unicode:e9}\";";
    assert_eq!(actions(src), [fileinto("AB\u{e9}")]);
    let src = "require \"fileinto\"; fileinto \"${hex:41}\";";
    assert_eq!(actions(src), [fileinto("${hex:41}")]);
}
