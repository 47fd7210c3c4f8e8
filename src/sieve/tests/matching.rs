//! Tests on the message: header, address, envelope, exists, size, body; comparators, match
//! types, relational, subaddress, index.

use super::*;

const R: &str = "require [\"envelope\", \"subaddress\", \"relational\", \"comparator-i;ascii-numeric\", \"index\", \"body\"];";

fn yes(test: &str) {
    assert!(holds(R, test), "should hold: {test}");
}

fn no(test: &str) {
    assert!(!holds(R, test), "should not hold: {test}");
}

#[test]
fn header_match_types_and_comparators() {
    yes("header :is \"subject\" \"hello wörld\"");
    yes("header :contains \"Subject\" \"WöRLD\" ");
    // i;ascii-casemap folds ASCII only.
    no("header :contains \"Subject\" \"WÖRLD\" ");
    no("header :contains :comparator \"i;octet\" \"subject\" \"HELLO\"");
    yes("header :contains :comparator \"i;octet\" \"subject\" \"Hello\"");
    yes("header :matches \"subject\" \"h?llo *\"");
    no("header :matches \"subject\" \"hello\"");
    yes("header :is [\"x-none\", \"subject\"] [\"x\", \"Hello wörld\"]");
    no("header :is \"x-none\" \"\"");
    yes("header :contains \"to\" \"carol@\"");
    yes("header :is \"x-count\" \"42\"");
}

#[test]
fn relational_value_and_count() {
    yes("header :value \"gt\" :comparator \"i;ascii-numeric\" \"x-count\" \"9\"");
    no("header :value \"lt\" :comparator \"i;ascii-numeric\" \"x-count\" \"9\"");
    yes("header :value \"lt\" \"x-count\" \"9\"");
    yes("header :count \"eq\" :comparator \"i;ascii-numeric\" \"received\" \"2\"");
    yes("address :count \"ge\" :comparator \"i;ascii-numeric\" [\"to\", \"cc\"] \"3\"");
    no("address :count \"gt\" :comparator \"i;ascii-numeric\" [\"to\", \"cc\"] \"3\"");
    yes("header :value \"ne\" :comparator \"i;ascii-numeric\" \"subject\" \"1\"");
    yes("header :value \"eq\" :comparator \"i;ascii-numeric\" \"subject\" \"x\"");
}

#[test]
fn address_parts_and_subaddress() {
    yes("address :is \"from\" \"alice+lists@example.org\"");
    yes("address :localpart :is \"from\" \"alice+lists\"");
    yes("address :domain :is \"cc\" \"example.com\"");
    no("address :domain :is :comparator \"i;octet\" \"cc\" \"example.com\"");
    yes("address :user :is \"from\" \"alice\"");
    yes("address :detail :is \"from\" \"lists\"");
    no("address :detail :matches \"to\" \"*\"");
    yes("address :all :is \"cc\" \"dave@example.com\"");
    no("address :is \"from\" \"Alice\"");
}

#[test]
fn envelope_parts() {
    yes("envelope :is \"from\" \"alice+lists@example.org\"");
    yes("envelope :domain :is \"to\" \"example.com\"");
    yes("envelope :detail \"from\" \"lists\"");
    yes("envelope :is \"auth\" \"alice@example.org\"");
    let null = Env {
        from: "",
        ..Env::default()
    };
    assert!(holds_in(R, "envelope :is \"from\" \"\"", &null));
    assert!(holds_in(R, "envelope :localpart :is \"from\" \"\"", &null));
}

#[test]
fn index_picks_one_occurrence() {
    yes("header :index 2 :contains \"received\" \"from c\"");
    no("header :index 1 :contains \"received\" \"from c\"");
    yes("header :index 1 :last :contains \"received\" \"from c\"");
    no("header :index 3 :contains \"received\" \"from\"");
}

#[test]
fn exists_and_size() {
    yes("exists [\"from\", \"to\"]");
    no("exists [\"from\", \"x-none\"]");
    yes("size :over 100");
    no("size :over 1K");
    yes("size :under 1K");
    no("size :under 10");
}

#[test]
fn logic() {
    yes("allof (true, not false)");
    no("allof (true, false)");
    yes("anyof (false, true)");
    no("anyof (false, not true)");
}

#[test]
fn body_transforms() {
    yes("body :contains \"meeting is at noon\"");
    yes("body :raw :contains \"Hi Bob\"");
    no("body :contains \"Subject\"");
    let mime = "Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nplain part\r\n--x\r\nContent-Type: text/html\r\n\r\n<p>rich <i>part</i></p>\r\n--x\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\naGlkZGVuIHdvcmQ=\r\n--x--\r\n";
    let env = Env {
        raw: mime,
        ..Env::default()
    };
    assert!(holds_in(R, "body :text :contains \"rich part\"", &env));
    assert!(!holds_in(R, "body :text :contains \"hidden\"", &env));
    assert!(holds_in(
        R,
        "body :content \"application\" :contains \"hidden word\"",
        &env
    ));
    assert!(holds_in(
        R,
        "body :content \"text/html\" :contains \"<i>\"",
        &env
    ));
    assert!(!holds_in(
        R,
        "body :content \"text/plain\" :contains \"<i>\"",
        &env
    ));
    assert!(holds_in(R, "body :raw :contains \"aGlkZGVu\"", &env));
}

#[test]
fn garbage_messages_do_not_fail() {
    for raw in [
        "",
        "\r\n",
        "no header at all",
        "From: <<<@@@>>>,,,;;;:::\r\n\r\n",
        "Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n",
    ] {
        let env = Env {
            raw,
            ..Env::default()
        };
        assert!(!holds_in(
            R,
            "address :all :is [\"from\", \"to\"] \"x\"",
            &env
        ));
        assert!(!holds_in(R, "body :contains \"zzz\"", &env));
    }
}
