//! `compile`: what it accepts, and where and why it rejects.

use crate::sieve::{CompileError, Limits, Script, compile, compile_with};

/// The error of compiling `src`, which must fail.
fn error(src: &str) -> CompileError {
    match compile(src) {
        Ok(s) => panic!("compiled: {src:?} → {s:?}"),
        Err(e) => e,
    }
}

fn at(src: &str) -> (u32, u32) {
    let e = error(src);
    (e.line, e.column)
}

#[test]
fn accepts_a_typical_script() {
    let src = r#"require ["fileinto", "imap4flags", "variables", "relational",
        "comparator-i;ascii-numeric", "envelope", "subaddress", "body", "date", "index",
        "vacation", "copy", "mailbox", "spamtestplus", "encoded-character"];
    # a comment
    /* a block
       comment */
    if header :contains "subject" "${hex:41}pple" { fileinto :create "Apples"; stop; }
    elsif address :domain :is ["from", "sender"] "example.org" { addflag "\\Seen"; keep; }
    elsif allof (exists "x-spam", not size :under 10K) { discard; }
    elsif envelope :user "to" "me" { redirect :copy "x@example.org"; }
    elsif header :value "ge" :comparator "i;ascii-numeric" "x-n" "5" { set :lower "v" "A"; }
    elsif body :content "text" :contains "hi" { vacation :days 3 :subject "Away" text:
I am away.
..dot
.
; }
    elsif date :index 1 :last :zone "+0200" "date" "year" "2024" { keep :flags ["a"]; }
    elsif spamtest :percent :value "gt" :comparator "i;ascii-numeric" "50" { fileinto "Junk"; }
    else { if mailboxexists "X" { fileinto :flags "b" "X"; } }
    "#;
    let s = compile(src).unwrap();
    assert_eq!(s.required().len(), 15);
    assert_eq!(s.required()[0], "fileinto");
    let stored = s.to_stored();
    assert_eq!(Script::from_stored(&stored), Some(s));
    assert_eq!(
        Script::from_stored("{\"form\":0,\"required\":[],\"commands\":[]}"),
        None
    );
    assert_eq!(Script::from_stored("nonsense"), None);
}

#[test]
fn empty_script_and_require_only() {
    assert!(compile("").unwrap().required().is_empty());
    assert_eq!(
        compile("require \"fileinto\";").unwrap().required(),
        ["fileinto"]
    );
}

#[test]
fn missing_semicolon() {
    let e = error("keep\nfileinto \"x\";");
    assert_eq!((e.line, e.column), (2, 1), "{e}");
    assert!(e.message.contains("expected ';'"), "{e}");
    assert_eq!(at("require \"fileinto\";\nfileinto \"a\"\n"), (3, 1));
    assert_eq!(at("keep"), (1, 5));
}

#[test]
fn unknown_command_and_test() {
    let e = error("keep;\n  frobnicate;");
    assert_eq!((e.line, e.column), (2, 3));
    assert!(e.message.contains("unknown command 'frobnicate'"), "{e}");
    let e = error("if frob { keep; }");
    assert_eq!((e.line, e.column), (1, 4));
    assert!(e.message.contains("unknown test"), "{e}");
}

#[test]
fn extension_without_require() {
    let e = error("if true {\n  fileinto \"x\";\n}");
    assert_eq!((e.line, e.column), (2, 3));
    assert!(e.message.contains("\"fileinto\""), "{e}");
    let e = error("require \"fileinto\";\nfileinto :copy \"x\";");
    assert_eq!((e.line, e.column), (2, 10));
    let e = error("if header :count \"ge\" \"to\" \"2\" { keep; }");
    assert!(e.message.contains("relational"), "{e}");
    assert_eq!(at("if address :user \"to\" \"a\" {}"), (1, 12));
    assert_eq!(at("require \"fileinto\"; require \"frob\";"), (1, 29));
}

#[test]
fn unterminated_strings_and_comments() {
    let e = error("if header \"subject\" \"abc { keep; }");
    assert_eq!((e.line, e.column), (1, 21));
    assert!(e.message.contains("unterminated string"), "{e}");
    assert_eq!(
        at("require \"vacation\";\nvacation text:\nhello\n"),
        (2, 10)
    );
    assert_eq!(at("keep; /* never closed"), (1, 7));
}

#[test]
fn bad_tags() {
    let e = error("if header :frob \"a\" \"b\" { keep; }");
    assert_eq!((e.line, e.column), (1, 11));
    assert!(e.message.contains("unknown tag ':frob'"), "{e}");
    assert_eq!(at("if header :is :contains \"a\" \"b\" {}"), (1, 15));
    assert_eq!(at("if header \"a\" :is \"b\" {}"), (1, 15));
    assert_eq!(
        at("if header :comparator \"i;frob\" \"a\" \"b\" {}"),
        (1, 11)
    );
    assert_eq!(at("if size 10 {}"), (1, 4));
    assert_eq!(at("if header :comparator \"a\" {}"), (1, 4));
    assert_eq!(at("if : {}"), (1, 4));
}

#[test]
fn argument_counts_and_types() {
    assert_eq!(at("if header \"a\" {}"), (1, 4));
    assert_eq!(at("if header \"a\" \"b\" \"c\" {}"), (1, 19));
    assert_eq!(at("if size :over \"10\" {}"), (1, 15));
    assert_eq!(
        at("require \"fileinto\"; fileinto [\"a\", \"b\"];"),
        (1, 30)
    );
    assert_eq!(at("keep \"x\";"), (1, 6));
    assert_eq!(at("if true keep;"), (1, 9));
    assert_eq!(at("stop { }"), (1, 1));
    assert_eq!(at("if not (true, false) {}"), (1, 4));
    assert_eq!(at("if anyof true {}"), (1, 4));
}

#[test]
fn structure_errors() {
    assert_eq!(at("elsif true { keep; }"), (1, 1));
    assert_eq!(at("keep; else { keep; }"), (1, 7));
    assert_eq!(at("keep; require \"fileinto\";"), (1, 7));
    assert_eq!(at("if true { keep; "), (1, 17));
    assert_eq!(at("keep; }"), (1, 7));
    assert_eq!(at("if true { keep; } elsif { }"), (1, 19));
    assert_eq!(at("if header [\"a\" \"b\"] {}"), (1, 16));
    assert_eq!(at("keep; 12;"), (1, 7));
    assert_eq!(at("keep;\r\n  $"), (2, 3));
}

#[test]
fn numbers_and_quantifiers() {
    assert!(compile("if size :over 1G { discard; }").is_ok());
    assert_eq!(at("if size :over 99999999999999999999 {}"), (1, 15));
    assert_eq!(at("if size :over 18446744073709551615K {}"), (1, 15));
    assert_eq!(at("if size :over 10X {}"), (1, 17));
}

#[test]
fn variables_and_modifiers() {
    assert!(compile("require \"variables\"; set :upper :lowerfirst \"a\" \"b\";").is_ok());
    assert_eq!(
        at("require \"variables\"; set :upper :lower \"a\" \"b\";"),
        (1, 33)
    );
    assert_eq!(at("require \"variables\"; set \"1a\" \"b\";"), (1, 26));
    assert_eq!(at("require \"variables\"; set \"a\";"), (1, 22));
}

#[test]
fn extension_specific_checks() {
    assert_eq!(
        at("require \"envelope\"; if envelope \"cc\" \"x\" {}"),
        (1, 33)
    );
    // An unknown date part compiles (and matches nothing), as in Pigeonhole.
    assert!(compile("require \"date\"; if date \"date\" \"century\" \"x\" {}").is_ok());
    assert_eq!(
        at("require \"date\"; if currentdate :zone \"CET\" \"year\" \"x\" {}"),
        (1, 32)
    );
    assert_eq!(
        at(
            "require \"comparator-i;ascii-numeric\"; if header :contains :comparator \"i;ascii-numeric\" \"a\" \"1\" {}"
        ),
        (1, 49)
    );
    assert_eq!(
        at("require \"index\"; if header :last \"a\" \"b\" {}"),
        (1, 28)
    );
    assert_eq!(
        at("require \"vacation\"; vacation :seconds 10 \"x\";"),
        (1, 30)
    );
    assert_eq!(at("redirect \"not an address\";"), (1, 10));
    assert!(compile("require \"spamtestplus\"; if spamtest \"5\" {}").is_ok());
    assert_eq!(at("if address \"subject\" \"x\" {}"), (1, 12));
    assert!(compile("if address [\"From\", \"reply-to\", \"X-Original-To\"] \"x\" {}").is_ok());
    assert_eq!(
        at("require \"spamtest\"; if spamtest :percent \"5\" {}"),
        (1, 33)
    );
}

#[test]
fn limits_at_compile_time() {
    let limits = Limits {
        max_script_bytes: 10,
        ..Limits::default()
    };
    assert!(compile_with("keep; keep; keep;", &limits).is_err());
    let deep = "if true {".repeat(33) + &"}".repeat(33);
    assert!(compile(&deep).is_err());
    let ok = "if true {".repeat(32) + &"}".repeat(32);
    assert!(compile(&ok).is_ok());
    let deep_test = "if ".to_string() + &"not ".repeat(40) + "true {}";
    assert!(compile(&deep_test).is_err());
}

#[test]
fn display_has_line_and_column() {
    let e = error("keep;\n\n   frob;");
    assert_eq!(e.to_string(), "line 3, column 4: unknown command 'frob'");
}
