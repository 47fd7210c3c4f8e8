//! The differential cases: `tests/sieve/cases/*.cases`, a few data files grouped by what they
//! exercise rather than one file per case, because a case is a handful of lines (300 of them
//! would be 300 files nobody reads side by side) and related cases read best next to each other.
//! The messages they run against are shared: `tests/sieve/messages/*.eml`.
//!
//! A file is comment lines (`#`) and cases. A case:
//!
//! ```text
//! == subaddress-tag-to-folder            (unique name across all files)
//! why: mail to bob+family@ goes to the folder Family   (what a user relies on; required)
//! message: family.eml                    (a file in tests/sieve/messages/; required)
//! from: mum@family.example               (envelope sender; default alice@example.org)
//! to: bob+family@example.com             (envelope recipient; default bob@example.com)
//! spam: 37                               (spam score in percent, optional: not judged when absent)
//! mailboxes: Family, Lists/School        (folders that exist besides INBOX, optional)
//! invalid: fileinto used without require (the script is meant to be refused; optional)
//! deviation: Pigeonhole ignores :index in date (where `sieve-test` is wrong per the RFC: the
//!            case still runs on both sides and is listed, but not required to agree)
//! ---
//! require ["envelope", "subaddress", "fileinto"];
//! ...the script, up to the next line starting with "== "
//! ```
//!
//! Nothing here says what the result should be: `sieve-test` decides that, live.

use std::path::{Path, PathBuf};

pub const DEFAULT_FROM: &str = "alice@example.org";
pub const DEFAULT_TO: &str = "bob@example.com";

#[derive(Debug, Clone)]
pub struct Case {
    /// The file it is in, for messages.
    pub file: String,
    pub name: String,
    pub why: String,
    pub message: String,
    pub from: String,
    pub to: String,
    pub spam: Option<u8>,
    pub mailboxes: Vec<String>,
    /// Why the script must be refused at compile time, when that is the point of the case.
    pub invalid: Option<String>,
    /// How `sieve-test` departs from the RFC in this case, when it does.
    pub deviation: Option<String>,
    pub script: String,
}

pub fn sieve_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sieve")
}

/// Every case of every file, in file then case order.
pub fn load() -> Result<Vec<Case>, String> {
    let dir = sieve_dir().join("cases");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "cases"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for path in files {
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        cases.extend(parse(&file, &text)?);
    }
    Ok(cases)
}

/// One file's cases; errors name the file and line.
pub fn parse(file: &str, text: &str) -> Result<Vec<Case>, String> {
    let mut cases = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    // The file's heading: comments and blank lines only.
    while let Some((n, line)) = lines.peek() {
        if line.starts_with("== ") {
            break;
        }
        if !line.trim().is_empty() && !line.starts_with('#') {
            return Err(format!("{file}:{}: expected a comment or '== name'", n + 1));
        }
        lines.next();
    }
    while let Some((n, line)) = lines.next() {
        let at = |n: usize| format!("{file}:{}", n + 1);
        let name = line
            .strip_prefix("== ")
            .map(str::trim)
            .filter(|name| !name.is_empty() && !name.contains(char::is_whitespace))
            .ok_or_else(|| format!("{}: expected '== name'", at(n)))?;
        let mut case = Case {
            file: file.to_string(),
            name: name.to_string(),
            why: String::new(),
            message: String::new(),
            from: DEFAULT_FROM.to_string(),
            to: DEFAULT_TO.to_string(),
            spam: None,
            mailboxes: Vec::new(),
            invalid: None,
            deviation: None,
            script: String::new(),
        };
        // Fields up to the "---" line.
        loop {
            let (n, line) = lines
                .next()
                .ok_or_else(|| format!("{file}: case {name} has no '---' line"))?;
            if line == "---" {
                break;
            }
            let (key, value) = line
                .split_once(':')
                .map(|(k, v)| (k.trim(), v.trim().to_string()))
                .ok_or_else(|| format!("{}: expected 'field: value' or '---'", at(n)))?;
            match key {
                "why" => case.why = value,
                "message" => case.message = value,
                "from" => case.from = value,
                "to" => case.to = value,
                "spam" => {
                    let percent: u8 = value
                        .parse()
                        .ok()
                        .filter(|p| *p <= 100)
                        .ok_or_else(|| format!("{}: spam is a percent, 0 to 100", at(n)))?;
                    case.spam = Some(percent);
                }
                "mailboxes" => {
                    case.mailboxes = value
                        .split(',')
                        .map(|m| m.trim().to_string())
                        .filter(|m| !m.is_empty())
                        .collect();
                }
                "invalid" => case.invalid = Some(value),
                "deviation" => case.deviation = Some(value),
                other => return Err(format!("{}: unknown field {other:?}", at(n))),
            }
        }
        if case.why.is_empty() || case.message.is_empty() {
            return Err(format!("{file}: case {name} needs 'why' and 'message'"));
        }
        // The script: up to the next case.
        let mut script = Vec::new();
        while let Some((_, line)) = lines.peek() {
            if line.starts_with("== ") {
                break;
            }
            script.push(*line);
            lines.next();
        }
        while script.last().is_some_and(|l| l.trim().is_empty()) {
            script.pop();
        }
        if script.is_empty() {
            return Err(format!("{file}: case {name} has an empty script"));
        }
        case.script = script.join("\n") + "\n";
        cases.push(case);
    }
    Ok(cases)
}

/// The message both interpreters see: the shared file with CRLF line ends (as stored and as
/// `sieve-test` counts `size`), and, when the case has a spam score, an `X-Spam-Percent`
/// header first, which is how `sieve-test` learns the score (see `pigeonhole`).
pub fn raw_message(case: &Case) -> Result<Vec<u8>, String> {
    let path = sieve_dir().join("messages").join(&case.message);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut raw = String::new();
    if let Some(percent) = case.spam {
        raw.push_str(&format!("X-Spam-Percent: {percent}\r\n"));
    }
    for line in text.lines() {
        raw.push_str(line);
        raw.push_str("\r\n");
    }
    Ok(raw.into_bytes())
}

/// The capabilities a script requires (the strings of its `require` commands), for the
/// per-extension count. A small scan is enough here: both interpreters parse the script for
/// real.
pub fn required(script: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut in_require = false;
    let mut chars = script.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                let mut s = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => s.extend(chars.next()),
                        '"' => break,
                        other => s.push(other),
                    }
                }
                if in_require {
                    found.push(s);
                }
            }
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            ';' => in_require = false,
            c if c.is_ascii_alphabetic() => {
                let mut word = String::from(c);
                while let Some(c) = chars.next_if(|c| c.is_ascii_alphanumeric() || *c == '_') {
                    word.push(c);
                }
                if word == "require" {
                    in_require = true;
                }
            }
            _ => {}
        }
    }
    found.sort();
    found.dedup();
    found
}

/// The script with its strings and comments blanked, so that a word search finds commands
/// and tests rather than text that mentions them.
pub fn code_only(script: &str) -> String {
    let mut out = String::with_capacity(script.len());
    let mut chars = script.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                while let Some(c) = chars.next() {
                    if c == '\\' {
                        chars.next();
                    } else if c == '"' {
                        break;
                    }
                }
                out.push_str("\"\"");
            }
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            't' if script_text_starts(&mut chars) => {
                // text: ... "." multi-line string
                let mut line = String::new();
                for c in chars.by_ref() {
                    if c == '\n' {
                        if line.trim_end() == "." {
                            break;
                        }
                        line.clear();
                    } else {
                        line.push(c);
                    }
                }
                out.push_str("\"\"");
            }
            other => out.push(other),
        }
    }
    out
}

/// After a `t`: whether this is a `text:` multi-line string (consumes "ext:" when it is).
fn script_text_starts(chars: &mut std::iter::Peekable<std::str::Chars>) -> bool {
    let ahead: String = chars.clone().take(4).collect();
    if ahead == "ext:" {
        for _ in 0..4 {
            chars.next();
        }
        true
    } else {
        false
    }
}

/// Whether `word` occurs in `code` as a whole identifier.
pub fn has_word(code: &str, word: &str) -> bool {
    code.match_indices(word).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = code[at + word.len()..].chars().next();
        let ident = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        !ident(before) && !ident(after) && before != Some(':')
    })
}
