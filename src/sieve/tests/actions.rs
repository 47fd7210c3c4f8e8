//! Actions and their interplay: implicit keep, duplicates, :copy, conflicts, limits.

use super::*;
use crate::sieve::{Action, Limits};

const FI: &str = "require [\"fileinto\", \"copy\", \"reject\", \"ereject\", \"imap4flags\", \"vacation\", \"mailbox\"];\n";

#[test]
fn implicit_keep_stands_without_actions() {
    assert_eq!(actions(""), [keep()]);
    assert_eq!(actions("if false { discard; }"), [keep()]);
}

#[test]
fn keep_and_fileinto_inbox_are_one_store() {
    assert_eq!(actions(&format!("{FI}keep; fileinto \"INBOX\";")), [keep()]);
    assert_eq!(
        actions(&format!("{FI}fileinto \"inbox\"; keep;")),
        [fileinto("inbox")]
    );
}

#[test]
fn duplicate_fileinto_merges_and_takes_later_flags() {
    let a = actions(&format!(
        "{FI}fileinto \"A\"; fileinto :flags \"x\" \"A\"; fileinto \"B\"; fileinto :create \"A\";"
    ));
    assert_eq!(
        a,
        [
            Action::FileInto {
                mailbox: "A".into(),
                flags: vec![],
                create: true
            },
            fileinto("B")
        ]
    );
}

#[test]
fn fileinto_cancels_implicit_keep_unless_copy() {
    assert_eq!(actions(&format!("{FI}fileinto \"A\";")), [fileinto("A")]);
    assert_eq!(
        actions(&format!("{FI}fileinto :copy \"A\";")),
        [fileinto("A"), keep()]
    );
    assert_eq!(
        actions(&format!("{FI}redirect :copy \"x@example.net\";")),
        [
            Action::Redirect {
                address: "x@example.net".into()
            },
            keep()
        ]
    );
    assert_eq!(
        actions(&format!(
            "{FI}redirect \"x@example.net\"; redirect \"X@example.net\";"
        )),
        [Action::Redirect {
            address: "x@example.net".into()
        }]
    );
}

#[test]
fn discard_only_when_nothing_else_delivers() {
    assert_eq!(actions("discard;"), [Action::Discard]);
    assert_eq!(actions("discard; keep;"), [keep()]);
    assert_eq!(
        actions(&format!("{FI}fileinto \"A\"; discard;")),
        [fileinto("A")]
    );
    assert_eq!(
        actions(&format!("{FI}redirect :copy \"x@example.net\"; discard;")),
        [Action::Redirect {
            address: "x@example.net".into()
        }]
    );
}

#[test]
fn stop_ends_the_script() {
    assert_eq!(
        actions(&format!("{FI}if true {{ stop; }} fileinto \"A\";")),
        [keep()]
    );
    assert_eq!(
        actions(&format!("{FI}fileinto \"A\"; stop; keep;")),
        [fileinto("A")]
    );
}

#[test]
fn if_elsif_else_takes_the_first_true_branch() {
    let src = format!(
        "{FI}if false {{ fileinto \"1\"; }} elsif true {{ fileinto \"2\"; }} elsif true {{ fileinto \"3\"; }} else {{ fileinto \"4\"; }}"
    );
    assert_eq!(actions(&src), [fileinto("2")]);
    let src = format!("{FI}if false {{ fileinto \"1\"; }} else {{ fileinto \"4\"; }}");
    assert_eq!(actions(&src), [fileinto("4")]);
}

#[test]
fn reject_and_ereject() {
    assert_eq!(
        actions(&format!("{FI}reject \"go away\";")),
        [Action::Reject {
            reason: "go away".into(),
            ereject: false
        }]
    );
    assert_eq!(
        actions(&format!("{FI}ereject \"no\"; discard;")),
        [
            Action::Reject {
                reason: "no".into(),
                ereject: true
            },
            Action::Discard
        ]
    );
}

/// The run fails: the message is kept and the error said.
fn fails(src: &str, env: &Env) -> String {
    let o = outcome_in(src, env);
    assert_eq!(o.actions, [keep()], "{src}");
    o.error.unwrap_or_else(|| panic!("no error: {src}"))
}

#[test]
fn reject_conflicts() {
    let env = Env::default();
    for src in [
        "fileinto \"A\"; reject \"x\";",
        "keep; reject \"x\";",
        "reject \"x\"; keep;",
        "reject \"x\"; fileinto :copy \"A\";",
        "redirect \"a@example.net\"; reject \"x\";",
        "reject \"x\"; redirect :copy \"a@example.net\";",
        "reject \"x\"; ereject \"y\";",
        "vacation \"away\"; reject \"x\";",
        "reject \"x\"; vacation \"away\";",
    ] {
        fails(&format!("{FI}{src}"), &env);
    }
    fails(&format!("{FI}vacation \"a\"; vacation \"b\";"), &env);
}

#[test]
fn runtime_limits_end_the_run_with_a_keep() {
    let env = |f: fn(&mut Limits)| {
        let mut e = Env::default();
        f(&mut e.limits);
        e
    };
    let e = fails(
        &format!("{FI}redirect \"a@x.org\"; redirect \"b@x.org\"; redirect \"c@x.org\";"),
        &env(|l| l.max_redirects = 2),
    );
    assert!(e.contains("redirects"), "{e}");
    let many: String = (0..40).map(|i| format!("fileinto \"f{i}\";")).collect();
    assert!(fails(&format!("{FI}{many}"), &Env::default()).contains("actions"));
    let e = fails(
        "require \"variables\"; set \"a\" \"1\"; set \"b\" \"2\"; set \"c\" \"3\";",
        &env(|l| l.max_variables = 2),
    );
    assert!(e.contains("variables"), "{e}");
    let tests: String = (0..100).map(|_| "if true { }").collect();
    let e = fails(&tests, &env(|l| l.max_instructions = 50));
    assert!(e.contains("instructions"), "{e}");
    // String matching work counts too.
    let e = fails(
        &format!(
            "if header :matches \"subject\" \"*{}b\" {{ }}",
            "a".repeat(60)
        ),
        &Env {
            raw: &format!("Subject: {}\r\n\r\n", "a".repeat(3500)),
            limits: Limits {
                max_instructions: 500,
                ..Limits::default()
            },
            ..Env::default()
        },
    );
    assert!(e.contains("instructions"), "{e}");
}

#[test]
fn invalid_runtime_values_are_errors() {
    fails(
        "require [\"variables\"]; set \"a\" \"no address\"; redirect \"${a}\";",
        &Env::default(),
    );
    fails(
        "require [\"variables\", \"fileinto\"]; fileinto \"${none}\";",
        &Env::default(),
    );
}

#[test]
fn stored_form_runs_the_same() {
    let src = format!("{FI}if header :contains \"subject\" \"hello\" {{ fileinto \"A\"; }}");
    let script = crate::sieve::compile(&src).unwrap();
    let again = crate::sieve::Script::from_stored(&script.to_stored()).unwrap();
    assert_eq!(again, script);
    assert_eq!(actions(&src), [fileinto("A")]);
}
