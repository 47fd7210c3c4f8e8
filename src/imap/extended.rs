//! A small pre-parser for the command extensions imap-codec 2.0.0-alpha.10 cannot parse:
//! `SEARCH RETURN (…)` (ESEARCH, RFC 4731; SAVE from SEARCHRES, RFC 5182), `SORT RETURN (…)`
//! (ESORT, RFC 5267), `$` (SEARCHRES) and the extended LIST (LIST-EXTENDED, RFC 5258;
//! the STATUS return option of LIST-STATUS, RFC 5819; the SPECIAL-USE options of RFC 6154).
//!
//! [`recognise`] looks at one complete command (the fragmentizer's message: lines and the
//! literals between them) before imap-codec does:
//! - `tag [UID] SEARCH|SORT RETURN (opts) rest`: the options are taken out and `tag [UID]
//!   SEARCH|SORT rest` is handed back for imap-codec to decode (literals in `rest` stay as
//!   they are).
//! - `LIST` with selection options, a pattern list, or `RETURN (…)`: parsed whole here
//!   (references and patterns may be atoms, quoted strings or literals).
//! - Everything else, including a plain `LIST ref pattern`, is [`Extended::Plain`] and goes
//!   to imap-codec unchanged, so the basic forms behave exactly as before.
//!
//! [`substitute_saved`] runs first, on the commands that may name the saved search result `$`
//! (SEARCHRES, RFC 5182): FETCH, STORE, COPY, MOVE, UID EXPUNGE and the search keys of SEARCH
//! and SORT. imap-codec does not know `$`, so it is replaced by the set it stands for.
//!
//! Strictness: once a command is recognised as one of these forms, anything unknown
//! (an option we do not implement, option values) is refused with a
//! BAD text saying what; RFC 5258 §3 makes an unknown selection option a BAD, and refusing
//! an unknown return option too is what lets a client tell we did not honour it.
//!
//! Bounds: a recognised LIST is at most [`MAX_INPUT`] bytes, with at most [`MAX_OPTIONS`]
//! options per list, [`MAX_PATTERNS`] patterns and literals of at most [`MAX_LITERAL`]
//! bytes. The grammar has a fixed depth (`RETURN (STATUS (…))` is the deepest), so there is
//! no recursion; SEARCH looks only at its return options before handing the rest on.

use imap_codec::imap_types::status::StatusDataItemName;

/// Largest extended LIST command, literals included.
pub const MAX_INPUT: usize = 64 * 1024;
/// Most options in one parenthesised option list (selection, return, STATUS items).
pub const MAX_OPTIONS: usize = 16;
/// Most patterns in one pattern list.
pub const MAX_PATTERNS: usize = 32;
/// Largest literal in a LIST reference or pattern.
pub const MAX_LITERAL: usize = 4096;

/// What the ESEARCH return options ask for. `RETURN ()` means ALL (RFC 4731 §3.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchReturn {
    pub min: bool,
    pub max: bool,
    pub count: bool,
    pub all: bool,
    /// `SAVE` (SEARCHRES, RFC 5182): keep the result for `$`.
    pub save: bool,
    /// `PARTIAL m:n` (CONTEXT=SEARCH, RFC 5267 §4.4): the matches at positions `m` to `n`
    /// (1-based, inclusive, `m <= n`) of the result in result order.
    pub partial: Option<(u32, u32)>,
    /// `UPDATE` (RFC 5267 §4.3): keep the result up to date with `ADDTO`/`REMOVEFROM` until
    /// CANCELUPDATE or the mailbox is closed.
    pub update: bool,
}

impl SearchReturn {
    /// Whether an ESEARCH response is due: `RETURN (SAVE)` alone asks for none (RFC 5182
    /// §2.1).
    pub fn answers(&self) -> bool {
        self.min || self.max || self.count || self.all || self.partial.is_some() || self.update
    }
}

/// `m:n` of `PARTIAL` (RFC 5267 §4.4): two non-zero numbers, taken in either order.
fn partial_range(word: &[u8]) -> Option<(u32, u32)> {
    let text = std::str::from_utf8(word).ok()?;
    let (a, b) = text.split_once(':')?;
    let number = |t: &str| {
        (!t.is_empty() && t.bytes().all(|c| c.is_ascii_digit()))
            .then(|| t.parse::<u32>().ok())
            .flatten()
            .filter(|&n| n > 0)
    };
    let (a, b) = (number(a)?, number(b)?);
    Some((a.min(b), a.max(b)))
}

/// An extended LIST, with the reference and patterns as sent (modified UTF-7 bytes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListCommand {
    pub reference: Vec<u8>,
    pub patterns: Vec<Vec<u8>>,
    /// Selection options were given (even an empty list).
    pub selection: bool,
    pub select_subscribed: bool,
    pub select_special_use: bool,
    pub recursive_match: bool,
    pub return_subscribed: bool,
    pub return_children: bool,
    pub return_special_use: bool,
    /// `RETURN (STATUS (…))`: the items to send in a STATUS response after each LIST line.
    pub return_status: Option<Vec<StatusDataItemName>>,
}

/// What [`recognise`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extended {
    /// Not one of the extended forms: imap-codec decodes the message as it is.
    Plain,
    /// `SEARCH RETURN (…)`: the options, and the command without them for imap-codec.
    Search {
        tag: String,
        options: SearchReturn,
        command: Vec<u8>,
    },
    /// An extended LIST, parsed whole.
    List { tag: String, list: ListCommand },
    /// `CANCELUPDATE "tag" …` (CONTEXT=SEARCH, RFC 5267 §4.3): the tags whose updates end.
    CancelUpdate { tag: String, tags: Vec<String> },
    /// An extended form with an error: answer BAD with this text.
    Bad { tag: String, text: String },
}

/// Recognises the extended forms in one complete command message (see the module doc).
pub fn recognise(message: &[u8]) -> Extended {
    let mut p = Parser {
        input: message,
        pos: 0,
    };
    let Some(tag) = p.tag() else {
        return Extended::Plain;
    };
    if !p.sp() {
        return Extended::Plain;
    }
    let Some(word) = p.atom() else {
        return Extended::Plain;
    };
    if word.eq_ignore_ascii_case(b"UID") {
        if !p.sp() {
            return Extended::Plain;
        }
        return match p.atom() {
            Some(w) if w.eq_ignore_ascii_case(b"SEARCH") => search(p, tag, "SEARCH"),
            Some(w) if w.eq_ignore_ascii_case(b"SORT") => search(p, tag, "SORT"),
            _ => Extended::Plain,
        };
    }
    if word.eq_ignore_ascii_case(b"SEARCH") {
        return search(p, tag, "SEARCH");
    }
    if word.eq_ignore_ascii_case(b"SORT") {
        return search(p, tag, "SORT");
    }
    if word.eq_ignore_ascii_case(b"LIST") {
        return list(p, tag);
    }
    if word.eq_ignore_ascii_case(b"CANCELUPDATE") {
        return cancel_update(p, tag);
    }
    Extended::Plain
}

/// `CANCELUPDATE 1*(SP quoted)` (RFC 5267 §6), at most [`MAX_OPTIONS`] tags.
fn cancel_update(mut p: Parser<'_>, tag: String) -> Extended {
    let bad = |text: &str| Extended::Bad {
        tag: tag.clone(),
        text: text.to_string(),
    };
    let mut tags = Vec::new();
    while p.sp() {
        if tags.len() >= MAX_OPTIONS {
            return bad(&format!("CANCELUPDATE takes at most {MAX_OPTIONS} tags"));
        }
        if p.peek() != Some(b'"') {
            return bad("CANCELUPDATE takes quoted tags");
        }
        match p.quoted() {
            Ok(t) => tags.push(String::from_utf8_lossy(&t).into_owned()),
            Err(text) => return bad(&format!("CANCELUPDATE: {text}")),
        }
    }
    if !p.at_end() || tags.is_empty() {
        return bad("CANCELUPDATE needs one or more quoted tags");
    }
    Extended::CancelUpdate { tag, tags }
}

/// `SEARCH RETURN (…)` (ESEARCH) or `SORT RETURN (…)` (ESORT, RFC 5267 §3: the same options,
/// answered the same way), `name` being the command.
fn search(mut p: Parser<'_>, tag: String, name: &str) -> Extended {
    let keep = p.pos;
    let bad = |text: &str| Extended::Bad {
        tag: tag.clone(),
        text: text.to_string(),
    };
    if !p.sp() {
        return Extended::Plain;
    }
    match p.atom() {
        Some(w) if w.eq_ignore_ascii_case(b"RETURN") => {}
        _ => return Extended::Plain,
    }
    if !p.sp() {
        return bad(&format!("{name} RETURN needs a parenthesised option list"));
    }
    let words = match p.atom_list() {
        Ok(words) => words,
        Err(text) => return bad(&format!("{name} RETURN: {text}")),
    };
    let mut options = SearchReturn::default();
    let mut named = false;
    let mut words = words.iter();
    while let Some(w) = words.next() {
        match w.to_ascii_uppercase().as_slice() {
            b"MIN" => options.min = true,
            b"MAX" => options.max = true,
            b"COUNT" => options.count = true,
            b"ALL" => options.all = true,
            b"SAVE" => options.save = true,
            // A hint that more commands will follow (RFC 5267 §4.2); nothing to do.
            b"CONTEXT" => continue,
            b"UPDATE" if options.update => return bad("UPDATE given twice"),
            b"UPDATE" => options.update = true,
            b"PARTIAL" if options.partial.is_some() => return bad("PARTIAL given twice"),
            b"PARTIAL" => match words.next().and_then(|r| partial_range(r)) {
                Some(range) => options.partial = Some(range),
                None => return bad("PARTIAL needs a range m:n of non-zero numbers"),
            },
            other => {
                return bad(&format!(
                    "unknown {name} return option {}",
                    String::from_utf8_lossy(other)
                ));
            }
        }
        named = true;
    }
    // `RETURN ()`, or only the CONTEXT hint, is ALL (RFC 4731 §3.1).
    if !named {
        options.all = true;
    }
    if options.all && options.partial.is_some() {
        return bad("PARTIAL and ALL cannot be combined");
    }
    // The search criteria follow after one space; imap-codec checks them.
    if p.peek() != Some(b' ') {
        let what = if name == "SORT" { "sort" } else { "search" };
        return bad(&format!(
            "{name} RETURN (...) must be followed by {what} criteria"
        ));
    }
    let mut command = Vec::with_capacity(p.input.len());
    command.extend_from_slice(p.input.get(..keep).unwrap_or_default());
    command.extend_from_slice(p.input.get(p.pos..).unwrap_or_default());
    Extended::Search {
        tag,
        options,
        command,
    }
}

/// What `$` stands for in the command being read: the saved search result's messages still
/// in the session's view, as a compact UID set and as a sequence set ("" when there is none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SavedSets {
    pub uids: String,
    pub seqs: String,
}

/// What [`substitute_saved`] made of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Substituted {
    /// No `$` where a sequence set goes: the command as it is.
    Unchanged,
    /// The command with every such `$` replaced by the set it stands for.
    Rewritten(Vec<u8>),
    /// `$` is the message set of a FETCH, STORE, COPY, MOVE or UID EXPUNGE and the saved result
    /// holds no message: the command acts on none, and is answered OK (RFC 5182 §2.1: an
    /// empty result is an empty set, not an error) unless it would be refused with messages
    /// too (a read-only mailbox, a missing target). `command` is its name, `uid` whether it
    /// was a UID command, `probe` the command with `$` replaced by `1`, for imap-codec to read
    /// its other arguments.
    Empty {
        tag: String,
        command: String,
        uid: bool,
        probe: Vec<u8>,
    },
    /// More than [`MAX_SAVED_REFS`] `$` in one command: refused with `NO [LIMIT]`.
    TooMany { tag: String },
}

/// Search keys followed by one argument (RFC 3501/9051 `search-key`).
const ONE_ARGUMENT: &[&[u8]] = &[
    b"BCC",
    b"BEFORE",
    b"BODY",
    b"CC",
    b"FROM",
    b"KEYWORD",
    b"LARGER",
    b"ON",
    b"SENTBEFORE",
    b"SENTON",
    b"SENTSINCE",
    b"SINCE",
    b"SMALLER",
    b"SUBJECT",
    b"TEXT",
    b"TO",
    b"UNKEYWORD",
    b"OLDER",
    b"YOUNGER",
];

/// Replaces `$` (SEARCHRES, RFC 5182 §2.1: `seq-last-command`, allowed wherever a sequence set
/// is) in one complete command by the set it stands for, which `sets` gives (called at most
/// once, only when there is a `$` to replace):
/// - `[UID] FETCH|STORE|COPY|MOVE $ …` and `UID EXPUNGE $`: the sequence set (or UID set);
/// - in the search keys of `[UID] SEARCH` and `[UID] SORT`: the key `$` becomes `UID set`,
///   and `UID $` too; with an empty saved result both become `NOT ALL`, which matches nothing.
///
/// A `$` anywhere else (inside a string, as a SUBJECT argument, within `1,$`) stays for
/// imap-codec to read or refuse. The walk is linear with no recursion; strings and literals
/// are skipped whole, so a `$` inside them is never taken for the marker.
pub fn substitute_saved(message: &[u8], sets: impl FnOnce() -> SavedSets) -> Substituted {
    if !message.contains(&b'$') {
        return Substituted::Unchanged;
    }
    let mut p = Parser {
        input: message,
        pos: 0,
    };
    let Some(tag) = p.tag() else {
        return Substituted::Unchanged;
    };
    if !p.sp() {
        return Substituted::Unchanged;
    }
    let Some(mut word) = p.atom() else {
        return Substituted::Unchanged;
    };
    let uid = word.eq_ignore_ascii_case(b"UID");
    if uid {
        if !p.sp() {
            return Substituted::Unchanged;
        }
        match p.atom() {
            Some(w) => word = w,
            None => return Substituted::Unchanged,
        }
    }
    let command = word.to_ascii_uppercase();
    // (start, end, what `$` stands for there): filled in once `sets` is known.
    let mut marks: Vec<(usize, usize, Mark)> = Vec::new();
    match command.as_slice() {
        b"FETCH" | b"STORE" | b"COPY" | b"MOVE" | b"EXPUNGE" => {
            if command == b"EXPUNGE" && !uid {
                return Substituted::Unchanged;
            }
            if !p.sp() {
                return Substituted::Unchanged;
            }
            let start = p.pos;
            let set = p.take_while(|b| !matches!(b, b' ' | b'\r' | b'\n'));
            if set != b"$" {
                return Substituted::Unchanged;
            }
            marks.push((start, p.pos, Mark::Set));
        }
        b"SEARCH" | b"SORT" => {
            if !p.sp() {
                return Substituted::Unchanged;
            }
            let mut q = Parser {
                input: p.input,
                pos: p.pos,
            };
            // RETURN (…) of ESEARCH/ESORT.
            if q.atom().is_some_and(|w| w.eq_ignore_ascii_case(b"RETURN")) && q.sp() {
                if q.skip_parens().is_err() || !q.sp() {
                    return Substituted::Unchanged;
                }
                p.pos = q.pos;
            }
            if command == b"SORT" {
                // Sort criteria, then the charset (required).
                if p.skip_parens().is_err() || !p.sp() || p.skip_argument().is_err() {
                    return Substituted::Unchanged;
                }
            } else {
                let mut q = Parser {
                    input: p.input,
                    pos: p.pos,
                };
                if q.atom().is_some_and(|w| w.eq_ignore_ascii_case(b"CHARSET")) {
                    if !q.sp() || q.skip_argument().is_err() {
                        return Substituted::Unchanged;
                    }
                    p.pos = q.pos;
                } else {
                    // No CHARSET: the first key follows the space already read.
                    p.pos -= 1;
                }
            }
            if search_keys(&mut p, &mut marks).is_err() {
                return Substituted::Unchanged;
            }
        }
        _ => return Substituted::Unchanged,
    }
    if marks.is_empty() {
        return Substituted::Unchanged;
    }
    // Each `$` becomes the whole saved set, which a client can make long (a fragmented result
    // of a big mailbox): a bounded number of them keeps the rewritten command a small
    // multiple of one set, not a line of them.
    if marks.len() > MAX_SAVED_REFS {
        return Substituted::TooMany { tag };
    }
    let sets = sets();
    let mut out = Vec::with_capacity(message.len() + sets.uids.len() * marks.len());
    let mut copied = 0;
    for (start, end, mark) in &marks {
        let text = match mark {
            Mark::Set => {
                let set = if uid { &sets.uids } else { &sets.seqs };
                if set.is_empty() {
                    let mut probe = message.get(..*start).unwrap_or_default().to_vec();
                    probe.push(b'1');
                    probe.extend_from_slice(message.get(*end..).unwrap_or_default());
                    return Substituted::Empty {
                        tag,
                        command: String::from_utf8_lossy(&command).into_owned(),
                        uid,
                        probe,
                    };
                }
                set.clone()
            }
            Mark::Key if sets.uids.is_empty() => "NOT ALL".to_string(),
            Mark::Key => format!("UID {}", sets.uids),
        };
        out.extend_from_slice(message.get(copied..*start).unwrap_or_default());
        out.extend_from_slice(text.as_bytes());
        copied = *end;
    }
    out.extend_from_slice(message.get(copied..).unwrap_or_default());
    Substituted::Rewritten(out)
}

/// Most `$` (SEARCHRES) one command may hold: each is replaced by the whole saved set.
pub const MAX_SAVED_REFS: usize = 8;

/// What a `$` found by [`substitute_saved`] is replaced with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    /// A command's message set.
    Set,
    /// A search key (`$` or `UID $`), replaced by a whole key.
    Key,
}

/// Walks search keys from a space before the first one to the end of the line, marking `$`
/// keys and `UID $`.
fn search_keys(p: &mut Parser<'_>, marks: &mut Vec<(usize, usize, Mark)>) -> Result<(), ()> {
    loop {
        if p.at_end() || p.peek().is_none() {
            return Ok(());
        }
        match p.peek() {
            Some(b' ' | b'(' | b')') => {
                p.pos += 1;
                continue;
            }
            Some(b'"' | b'{') => {
                // A string where a key goes: not ours to judge.
                p.skip_argument()?;
                continue;
            }
            _ => {}
        }
        let start = p.pos;
        let key = p.take_while(|b| !matches!(b, b' ' | b'(' | b')' | b'\r' | b'\n' | b'"'));
        if key.is_empty() {
            return Err(());
        }
        let upper = key.to_ascii_uppercase();
        if upper == b"$" {
            marks.push((start, p.pos, Mark::Key));
        } else if upper == b"UID" {
            if !p.sp() {
                return Err(());
            }
            let set = p.take_while(|b| !matches!(b, b' ' | b'(' | b')' | b'\r' | b'\n'));
            if set == b"$" {
                marks.push((start, p.pos, Mark::Key));
            }
        } else if upper == b"HEADER" {
            for _ in 0..2 {
                if !p.sp() {
                    return Err(());
                }
                p.skip_argument()?;
            }
        } else if upper == b"MODSEQ" {
            // `MODSEQ [entry-name entry-type-req] mod-sequence-valzer` (RFC 7162).
            if !p.sp() {
                return Err(());
            }
            if p.peek() == Some(b'"') {
                for _ in 0..2 {
                    p.skip_argument()?;
                    if !p.sp() {
                        return Err(());
                    }
                }
            }
            p.skip_argument()?;
        } else if ONE_ARGUMENT.contains(&upper.as_slice()) {
            if !p.sp() {
                return Err(());
            }
            p.skip_argument()?;
        }
    }
}

fn list(mut p: Parser<'_>, tag: String) -> Extended {
    let bad = |text: String| Extended::Bad {
        tag: tag.clone(),
        text,
    };
    if p.input.len() > MAX_INPUT {
        // A basic LIST this long is refused by imap-codec's own rules anyway.
        return Extended::Plain;
    }
    let mut list = ListCommand::default();
    let mut extended = false;
    if !p.sp() {
        return Extended::Plain;
    }
    if p.peek() == Some(b'(') {
        extended = true;
        list.selection = true;
        let words = match p.atom_list() {
            Ok(w) => w,
            Err(text) => return bad(format!("LIST selection options: {text}")),
        };
        for w in &words {
            match w.to_ascii_uppercase().as_slice() {
                b"SUBSCRIBED" => list.select_subscribed = true,
                b"SPECIAL-USE" => list.select_special_use = true,
                b"RECURSIVEMATCH" => list.recursive_match = true,
                // Referrals to other servers (RFC 2193): we have none, so it changes nothing.
                b"REMOTE" => {}
                other => {
                    return bad(format!(
                        "unknown LIST selection option {}",
                        String::from_utf8_lossy(other)
                    ));
                }
            }
        }
        // RFC 5258 §3: RECURSIVEMATCH only makes sense with an option it can recurse on.
        if list.recursive_match && !list.select_subscribed {
            return bad("RECURSIVEMATCH needs the SUBSCRIBED selection option".into());
        }
        if !p.sp() {
            return bad("LIST: missing reference name".into());
        }
    }
    list.reference = match p.astring() {
        Ok(r) => r,
        Err(_) if !extended => return Extended::Plain,
        Err(text) => return bad(format!("LIST reference: {text}")),
    };
    if !p.sp() {
        return if extended {
            bad("LIST: missing mailbox pattern".into())
        } else {
            Extended::Plain
        };
    }
    if p.peek() == Some(b'(') {
        extended = true;
        p.pos += 1;
        loop {
            if list.patterns.len() >= MAX_PATTERNS {
                return bad(format!("LIST: more than {MAX_PATTERNS} patterns"));
            }
            match p.list_mailbox() {
                Ok(pattern) => list.patterns.push(pattern),
                Err(text) => return bad(format!("LIST pattern: {text}")),
            }
            match p.peek() {
                Some(b')') => {
                    p.pos += 1;
                    break;
                }
                Some(b' ') => p.pos += 1,
                _ => return bad("LIST: pattern list not closed".into()),
            }
        }
    } else {
        match p.list_mailbox() {
            Ok(pattern) => list.patterns.push(pattern),
            Err(_) if !extended => return Extended::Plain,
            Err(text) => return bad(format!("LIST pattern: {text}")),
        }
    }
    if p.at_end() {
        return if extended {
            Extended::List { tag, list }
        } else {
            Extended::Plain
        };
    }
    let is_return = p.sp() && p.atom().is_some_and(|w| w.eq_ignore_ascii_case(b"RETURN"));
    if !is_return {
        if !extended {
            return Extended::Plain;
        }
        return bad("LIST: unexpected text after the patterns".into());
    }
    if !p.sp() || p.peek() != Some(b'(') {
        return bad("LIST RETURN needs a parenthesised option list".into());
    }
    if let Err(text) = return_options(&mut p, &mut list) {
        return bad(format!("LIST return options: {text}"));
    }
    if !p.at_end() {
        return bad("LIST: unexpected text after the return options".into());
    }
    Extended::List { tag, list }
}

/// `"(" [return-option *(SP return-option)] ")"` with SUBSCRIBED, CHILDREN, SPECIAL-USE and
/// `STATUS (items)`.
fn return_options(p: &mut Parser<'_>, list: &mut ListCommand) -> Result<(), String> {
    p.pos += 1; // "("
    let mut n = 0;
    if p.peek() == Some(b')') {
        p.pos += 1;
        return Ok(());
    }
    loop {
        n += 1;
        if n > MAX_OPTIONS {
            return Err(format!("more than {MAX_OPTIONS} options"));
        }
        let word = p.atom().ok_or("an option must be an atom")?;
        match word.to_ascii_uppercase().as_slice() {
            b"SUBSCRIBED" => list.return_subscribed = true,
            b"CHILDREN" => list.return_children = true,
            b"SPECIAL-USE" => list.return_special_use = true,
            b"STATUS" => {
                if list.return_status.is_some() {
                    return Err("STATUS given twice".into());
                }
                if !p.sp() {
                    return Err("STATUS needs a parenthesised item list".into());
                }
                let words = p.atom_list()?;
                if words.is_empty() {
                    return Err("STATUS needs at least one item".into());
                }
                let mut items = Vec::with_capacity(words.len());
                for w in &words {
                    items.push(status_item(w)?);
                }
                list.return_status = Some(items);
            }
            other => {
                return Err(format!("unknown option {}", String::from_utf8_lossy(other)));
            }
        }
        match p.peek() {
            Some(b')') => {
                p.pos += 1;
                return Ok(());
            }
            Some(b' ') => p.pos += 1,
            _ => return Err("option list not closed".into()),
        }
    }
}

fn status_item(word: &[u8]) -> Result<StatusDataItemName, String> {
    Ok(match word.to_ascii_uppercase().as_slice() {
        b"MESSAGES" => StatusDataItemName::Messages,
        b"RECENT" => StatusDataItemName::Recent,
        b"UIDNEXT" => StatusDataItemName::UidNext,
        b"UIDVALIDITY" => StatusDataItemName::UidValidity,
        b"UNSEEN" => StatusDataItemName::Unseen,
        b"DELETED" => StatusDataItemName::Deleted,
        b"DELETED-STORAGE" => StatusDataItemName::DeletedStorage,
        b"SIZE" => StatusDataItemName::Size,
        b"HIGHESTMODSEQ" => StatusDataItemName::HighestModSeq,
        other => {
            return Err(format!(
                "unknown STATUS item {}",
                String::from_utf8_lossy(other)
            ));
        }
    })
}

/// RFC 3501 ATOM-CHAR: any 7-bit CHAR but atom-specials.
fn is_atom_char(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && !b"(){%*\"\\]".contains(&b)
}

/// RFC 3501 list-char: ATOM-CHAR, list-wildcards and resp-specials.
fn is_list_char(b: u8) -> bool {
    is_atom_char(b) || b"%*]".contains(&b)
}

/// A cursor over the message. Every read is checked (`get`), so no input can panic it.
struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn sp(&mut self) -> bool {
        if self.peek() == Some(b' ') {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Only the line ending is left (CRLF, or the bare LF imap-codec also accepts).
    fn at_end(&self) -> bool {
        matches!(self.input.get(self.pos..), Some(b"\r\n" | b"\n"))
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        self.input.get(start..self.pos).unwrap_or_default()
    }

    /// A tag: ASTRING-CHARs except `+`.
    fn tag(&mut self) -> Option<String> {
        let t = self.take_while(|b| (is_atom_char(b) || b == b']') && b != b'+');
        (!t.is_empty()).then(|| String::from_utf8_lossy(t).into_owned())
    }

    fn atom(&mut self) -> Option<&'a [u8]> {
        let a = self.take_while(is_atom_char);
        (!a.is_empty()).then_some(a)
    }

    /// `"(" [atom *(SP atom)] ")"`, at most [`MAX_OPTIONS`] atoms.
    fn atom_list(&mut self) -> Result<Vec<&'a [u8]>, String> {
        if self.peek() != Some(b'(') {
            return Err("expected a parenthesised list".into());
        }
        self.pos += 1;
        let mut words = Vec::new();
        if self.peek() == Some(b')') {
            self.pos += 1;
            return Ok(words);
        }
        loop {
            if words.len() >= MAX_OPTIONS {
                return Err(format!("more than {MAX_OPTIONS} options"));
            }
            words.push(self.atom().ok_or("an option must be an atom")?);
            match self.peek() {
                Some(b')') => {
                    self.pos += 1;
                    return Ok(words);
                }
                Some(b' ') => self.pos += 1,
                _ => return Err("list not closed".into()),
            }
        }
    }

    /// Skips one argument: a quoted string, a literal (of any length: the message holding it
    /// is complete and bounded already) or a run of non-space characters.
    fn skip_argument(&mut self) -> Result<(), ()> {
        match self.peek() {
            Some(b'"') => {
                self.pos += 1;
                loop {
                    match self.peek() {
                        Some(b'"') => {
                            self.pos += 1;
                            return Ok(());
                        }
                        Some(b'\\') => self.pos += 2,
                        Some(b'\r' | b'\n') | None => return Err(()),
                        Some(_) => self.pos += 1,
                    }
                }
            }
            Some(b'{') => {
                self.pos += 1;
                let digits = self.take_while(|b| b.is_ascii_digit());
                let n: usize = std::str::from_utf8(digits)
                    .ok()
                    .filter(|d| !d.is_empty() && d.len() <= 10)
                    .and_then(|d| d.parse().ok())
                    .ok_or(())?;
                if self.peek() == Some(b'+') || self.peek() == Some(b'-') {
                    self.pos += 1;
                }
                let rest = self.input.get(self.pos..).ok_or(())?;
                let header = if rest.starts_with(b"}\r\n") {
                    3
                } else if rest.starts_with(b"}\n") {
                    2
                } else {
                    return Err(());
                };
                let end = self.pos.checked_add(header).and_then(|e| e.checked_add(n));
                match end {
                    Some(end) if end <= self.input.len() => {
                        self.pos = end;
                        Ok(())
                    }
                    _ => Err(()),
                }
            }
            _ => {
                let a = self.take_while(|b| !matches!(b, b' ' | b'(' | b')' | b'\r' | b'\n'));
                if a.is_empty() { Err(()) } else { Ok(()) }
            }
        }
    }

    /// Skips a parenthesised list of atoms and strings (no nesting: return options and sort
    /// criteria have none).
    fn skip_parens(&mut self) -> Result<(), ()> {
        if self.peek() != Some(b'(') {
            return Err(());
        }
        self.pos += 1;
        loop {
            match self.peek() {
                Some(b')') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b' ') => self.pos += 1,
                Some(b'(') | Some(b'\r' | b'\n') | None => return Err(()),
                Some(_) => self.skip_argument()?,
            }
        }
    }

    /// `astring`: 1*ASTRING-CHAR, a quoted string or a literal.
    fn astring(&mut self) -> Result<Vec<u8>, String> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal(),
            _ => {
                let a = self.take_while(|b| is_atom_char(b) || b == b']');
                if a.is_empty() {
                    Err("expected a mailbox name".into())
                } else {
                    Ok(a.to_vec())
                }
            }
        }
    }

    /// `list-mailbox`: 1*list-char, a quoted string or a literal.
    fn list_mailbox(&mut self) -> Result<Vec<u8>, String> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal(),
            _ => {
                let a = self.take_while(is_list_char);
                if a.is_empty() {
                    Err("expected a mailbox pattern".into())
                } else {
                    Ok(a.to_vec())
                }
            }
        }
    }

    /// A quoted string of 7-bit text with `\"` and `\\` escapes.
    fn quoted(&mut self) -> Result<Vec<u8>, String> {
        self.pos += 1; // the opening quote
        let mut out = Vec::new();
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c @ (b'"' | b'\\')) => out.push(c),
                        _ => return Err("invalid escape in a quoted string".into()),
                    }
                }
                Some(c) if (0x01..=0x7f).contains(&c) && c != b'\r' && c != b'\n' => out.push(c),
                Some(_) => return Err("invalid character in a quoted string".into()),
                None => return Err("unterminated quoted string".into()),
            }
            self.pos += 1;
        }
    }

    /// `{n}` or `{n+}`, CRLF, then n bytes (already in the message: the fragmentizer read
    /// the literal before the message was complete).
    fn literal(&mut self) -> Result<Vec<u8>, String> {
        self.pos += 1; // "{"
        let digits = self.take_while(|b| b.is_ascii_digit());
        if digits.is_empty() || digits.len() > 10 {
            return Err("invalid literal length".into());
        }
        let n: usize = std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse().ok())
            .ok_or("invalid literal length")?;
        if self.peek() == Some(b'+') {
            self.pos += 1;
        }
        let header_end = match self.input.get(self.pos..) {
            Some(rest) if rest.starts_with(b"}\r\n") => self.pos + 3,
            Some(rest) if rest.starts_with(b"}\n") => self.pos + 2,
            _ => return Err("invalid literal".into()),
        };
        if n > MAX_LITERAL {
            return Err(format!("literal longer than {MAX_LITERAL} octets"));
        }
        let end = header_end.checked_add(n).ok_or("invalid literal length")?;
        let data = self
            .input
            .get(header_end..end)
            .ok_or("literal shorter than announced")?;
        self.pos = end;
        Ok(data.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search_of(input: &str) -> (SearchReturn, String) {
        match recognise(input.as_bytes()) {
            Extended::Search {
                tag,
                options,
                command,
            } => {
                assert_eq!(tag, "a1");
                (options, String::from_utf8(command).expect("utf-8"))
            }
            other => panic!("{input:?}: {other:?}"),
        }
    }

    fn list_of(input: &[u8]) -> ListCommand {
        match recognise(input) {
            Extended::List { list, .. } => list,
            other => panic!("{input:?}: {other:?}"),
        }
    }

    fn bad_text(input: &[u8]) -> String {
        match recognise(input) {
            Extended::Bad { tag, text } => {
                assert_eq!(tag, "a1");
                text
            }
            other => panic!("{input:?}: {other:?}"),
        }
    }

    #[test]
    fn search_return_is_taken_out() {
        let (o, c) = search_of("a1 SEARCH RETURN (MIN MAX) UNSEEN\r\n");
        assert_eq!(
            o,
            SearchReturn {
                min: true,
                max: true,
                ..Default::default()
            }
        );
        assert_eq!(c, "a1 SEARCH UNSEEN\r\n");
        let (o, c) = search_of("a1 uid search return () charset UTF-8 ALL\r\n");
        assert!(o.all && !o.min && !o.max && !o.count);
        assert_eq!(c, "a1 uid search charset UTF-8 ALL\r\n");
        let (o, c) = search_of("a1 SEARCH RETURN (count ALL) BODY {3}\r\nabc\r\n");
        assert!(o.count && o.all);
        assert_eq!(c, "a1 SEARCH BODY {3}\r\nabc\r\n");
        let (o, _) = search_of("a1 SEARCH RETURN (SAVE) ALL\r\n");
        assert!(o.save && !o.answers());
        let (o, _) = search_of("a1 SEARCH RETURN (SAVE MIN) ALL\r\n");
        assert!(o.save && o.min && o.answers());
        let (o, c) = search_of("a1 UID SORT RETURN (MIN ALL) (SUBJECT) UTF-8 ALL\r\n");
        assert!(o.min && o.all && !o.max);
        assert_eq!(c, "a1 UID SORT (SUBJECT) UTF-8 ALL\r\n");
        let (o, _) = search_of("a1 SORT RETURN () (DATE) UTF-8 ALL\r\n");
        assert!(o.all);
        assert!(bad_text(b"a1 SORT RETURN (NOPE) (DATE) UTF-8 ALL\r\n").contains("SORT"));
        // CONTEXT=SEARCH/SORT (RFC 5267 §4).
        let (o, _) = search_of("a1 UID SORT RETURN (PARTIAL 7:3 update) (DATE) UTF-8 ALL\r\n");
        assert_eq!((o.partial, o.update, o.all), (Some((3, 7)), true, false));
        let (o, _) = search_of("a1 SEARCH RETURN (CONTEXT) ALL\r\n");
        assert!(o.all && !o.update && o.partial.is_none());
        let (o, _) = search_of("a1 SEARCH RETURN (UPDATE) ALL\r\n");
        assert!(o.update && !o.all && o.answers());
        assert_eq!(
            recognise(b"a1 CANCELUPDATE \"b1\" \"b\\\"2\"\r\n"),
            Extended::CancelUpdate {
                tag: "a1".into(),
                tags: vec!["b1".into(), "b\"2".into()]
            }
        );
    }

    fn substituted(input: &str, uids: &str, seqs: &str) -> String {
        let sets = || SavedSets {
            uids: uids.into(),
            seqs: seqs.into(),
        };
        match substitute_saved(input.as_bytes(), sets) {
            Substituted::Unchanged => "unchanged".into(),
            Substituted::Rewritten(b) => String::from_utf8(b).unwrap(),
            Substituted::Empty {
                tag, command, uid, ..
            } => format!("empty {tag} {command} {uid}"),
            Substituted::TooMany { tag } => format!("too many {tag}"),
        }
    }

    #[test]
    fn saved_result_marker_is_replaced() {
        let s = |i: &str| substituted(i, "4:5,9", "2:3,6");
        assert_eq!(s("a FETCH $ FLAGS\r\n"), "a FETCH 2:3,6 FLAGS\r\n");
        assert_eq!(
            s("a uid fetch $ (FLAGS)\r\n"),
            "a uid fetch 4:5,9 (FLAGS)\r\n"
        );
        assert_eq!(
            s("a STORE $ +FLAGS (x)\r\n"),
            "a STORE 2:3,6 +FLAGS (x)\r\n"
        );
        assert_eq!(s("a UID COPY $ Trash\r\n"), "a UID COPY 4:5,9 Trash\r\n");
        assert_eq!(s("a MOVE $ \"$\"\r\n"), "a MOVE 2:3,6 \"$\"\r\n");
        assert_eq!(s("a UID EXPUNGE $\r\n"), "a UID EXPUNGE 4:5,9\r\n");
        assert_eq!(s("a EXPUNGE $\r\n"), "unchanged");
        assert_eq!(s("a FETCH 1,$ FLAGS\r\n"), "unchanged");
        assert_eq!(s("a COPY 1 $\r\n"), "unchanged");
        // Search keys: `$` and `UID $`, not a string or argument that is `$`.
        assert_eq!(s("a SEARCH $\r\n"), "a SEARCH UID 4:5,9\r\n");
        assert_eq!(
            s("a UID SEARCH RETURN (SAVE) CHARSET UTF-8 OR $ (UID $ SUBJECT $) NOT $\r\n"),
            "a UID SEARCH RETURN (SAVE) CHARSET UTF-8 OR UID 4:5,9 (UID 4:5,9 SUBJECT $) NOT UID 4:5,9\r\n"
        );
        assert_eq!(
            s("a SEARCH HEADER $ $ BODY {1}\r\n$ MODSEQ \"/flags/$\" all 5 $\r\n"),
            "a SEARCH HEADER $ $ BODY {1}\r\n$ MODSEQ \"/flags/$\" all 5 UID 4:5,9\r\n"
        );
        assert_eq!(s("a SEARCH SUBJECT $\r\n"), "unchanged");
        assert_eq!(s("a SEARCH SUBJECT \"$\" TEXT {1+}\r\n$\r\n"), "unchanged");
        assert_eq!(
            s("a UID SORT RETURN (ALL) (SUBJECT) UTF-8 $ SEEN\r\n"),
            "a UID SORT RETURN (ALL) (SUBJECT) UTF-8 UID 4:5,9 SEEN\r\n"
        );
        assert_eq!(s("a SORT (DATE) UTF-8 FROM $\r\n"), "unchanged");
        assert_eq!(s("a NOOP $\r\n"), "unchanged");
        // An empty saved result.
        let e = |i: &str| substituted(i, "", "");
        assert_eq!(e("t FETCH $ FLAGS\r\n"), "empty t FETCH false");
        assert_eq!(e("t UID MOVE $ x\r\n"), "empty t MOVE true");
        assert_eq!(e("t SEARCH NOT $\r\n"), "t SEARCH NOT NOT ALL\r\n");
        assert_eq!(e("t SEARCH UID $ SEEN\r\n"), "t SEARCH NOT ALL SEEN\r\n");
    }

    #[test]
    fn plain_commands_pass_through() {
        for input in [
            "a1 SEARCH ALL\r\n",
            "a1 UID SEARCH UNSEEN\r\n",
            "a1 SEARCH\r\n",
            "a1 UID FETCH 1 FLAGS\r\n",
            "a1 LIST \"\" \"*\"\r\n",
            "a1 LIST \"\" %\r\n",
            "a1 LIST {0}\r\n \"*\"\r\n",
            "a1 LSUB \"\" (\"*\")\r\n",
            "a1 LIST\r\n",
            "a1 LIST \"\" \"*\" garbage\r\n",
            "",
            "+ LIST (SUBSCRIBED) \"\" *\r\n",
            " SEARCH RETURN () ALL\r\n",
            "a1 SEARCHRETURN\r\n",
        ] {
            assert_eq!(recognise(input.as_bytes()), Extended::Plain, "{input:?}");
        }
    }

    #[test]
    fn search_return_errors() {
        assert!(bad_text(b"a1 SEARCH RETURN (PARTIAL 0:5) ALL\r\n").contains("PARTIAL"));
        assert!(bad_text(b"a1 SEARCH RETURN (PARTIAL) ALL\r\n").contains("PARTIAL"));
        assert!(bad_text(b"a1 SEARCH RETURN (PARTIAL 1:x) ALL\r\n").contains("PARTIAL"));
        assert!(bad_text(b"a1 SEARCH RETURN (ALL PARTIAL 1:5) ALL\r\n").contains("ALL"));
        assert!(bad_text(b"a1 SEARCH RETURN (PARTIAL 1:5 PARTIAL 2:3) ALL\r\n").contains("twice"));
        assert!(bad_text(b"a1 SEARCH RETURN (UPDATE UPDATE) ALL\r\n").contains("twice"));
        bad_text(b"a1 CANCELUPDATE\r\n");
        bad_text(b"a1 CANCELUPDATE a1\r\n");
        bad_text(b"a1 CANCELUPDATE \"a1\r\n");
        bad_text(b"a1 CANCELUPDATE \"a1\" \r\n");
        bad_text(b"a1 SEARCH RETURN (MIN\r\n");
        bad_text(b"a1 SEARCH RETURN MIN ALL\r\n");
        bad_text(b"a1 SEARCH RETURN (MIN)\r\n");
        bad_text(b"a1 SEARCH RETURN (MIN)ALL\r\n");
        bad_text(b"a1 SEARCH RETURN ((MIN)) ALL\r\n");
        bad_text(b"a1 SEARCH RETURN\r\n");
        bad_text(format!("a1 SEARCH RETURN ({}) ALL\r\n", ["MIN"; 17].join(" ")).as_bytes());
    }

    #[test]
    fn list_extended_forms() {
        let l = list_of(b"a1 LIST (SUBSCRIBED RECURSIVEMATCH remote) \"\" \"*\"\r\n");
        assert!(l.selection && l.select_subscribed && l.recursive_match);
        assert_eq!(l.patterns, vec![b"*".to_vec()]);
        let l = list_of(b"a1 LIST \"\" (INBOX \"Sent\" %/x {3}\r\na\"b) RETURN (CHILDREN)\r\n");
        assert!(!l.selection && l.return_children);
        assert_eq!(
            l.patterns,
            vec![
                b"INBOX".to_vec(),
                b"Sent".to_vec(),
                b"%/x".to_vec(),
                b"a\"b".to_vec()
            ]
        );
        let l = list_of(
            b"a1 list () {4+}\r\nWork \"*\" return (status (messages unseen SIZE) SPECIAL-USE SUBSCRIBED)\n",
        );
        assert_eq!(l.reference, b"Work");
        assert!(l.selection && !l.select_subscribed);
        assert!(l.return_special_use && l.return_subscribed);
        assert_eq!(
            l.return_status,
            Some(vec![
                StatusDataItemName::Messages,
                StatusDataItemName::Unseen,
                StatusDataItemName::Size
            ])
        );
        let l = list_of(b"a1 LIST \"\" \"\" RETURN ()\r\n");
        assert_eq!(l.patterns, vec![Vec::<u8>::new()]);
        let l = list_of(b"a1 LIST (SPECIAL-USE) \"\" *\r\n");
        assert!(l.select_special_use);
    }

    #[test]
    fn list_errors() {
        assert!(bad_text(b"a1 LIST (FOO) \"\" *\r\n").contains("FOO"));
        assert!(bad_text(b"a1 LIST (RECURSIVEMATCH) \"\" *\r\n").contains("RECURSIVEMATCH"));
        assert!(bad_text(b"a1 LIST \"\" * RETURN (FOO)\r\n").contains("FOO"));
        bad_text(b"a1 LIST \"\" * RETURN (STATUS ())\r\n");
        bad_text(b"a1 LIST \"\" * RETURN (STATUS (MESSAGES) STATUS (UNSEEN))\r\n");
        bad_text(b"a1 LIST \"\" * RETURN (STATUS (BOGUS))\r\n");
        bad_text(b"a1 LIST \"\" * RETURN (STATUS MESSAGES)\r\n");
        bad_text(b"a1 LIST \"\" * RETURN (CHILDREN\r\n");
        bad_text(b"a1 LIST \"\" * RETURN CHILDREN\r\n");
        bad_text(b"a1 LIST \"\" * RETURN (CHILDREN) x\r\n");
        bad_text(b"a1 LIST () \"\"\r\n");
        bad_text(b"a1 LIST ()\r\n");
        bad_text(b"a1 LIST () \"unterminated *\r\n");
        bad_text(b"a1 LIST () \"\" (\r\n");
        bad_text(b"a1 LIST () \"\" ()\r\n");
        bad_text(b"a1 LIST () \"\" (a b\r\n");
        bad_text(b"a1 LIST () \"\" * extra\r\n");
        bad_text(b"a1 LIST () {5}\r\nab\r\n");
        bad_text(b"a1 LIST () {99999999999}\r\n");
        bad_text(b"a1 LIST () \"\\x\" *\r\n");
        bad_text(b"a1 LIST () \"\xc3\xa9\" *\r\n");
        bad_text(format!("a1 LIST () {{{}}}\r\n", MAX_LITERAL + 1).as_bytes());
        let many = vec!["x"; MAX_PATTERNS + 1].join(" ");
        assert!(bad_text(format!("a1 LIST \"\" ({many})\r\n").as_bytes()).contains("patterns"));
    }

    #[test]
    fn every_prefix_and_odd_bytes_are_safe() {
        let samples: [&[u8]; 5] = [
            b"a1 UID SEARCH RETURN (SAVE) CHARSET UTF-8 OR $ (UID $ HEADER {1}\r\n$ \"$\") MODSEQ \"/x\" all 3 $\r\n",
            b"a1 UID SORT RETURN (MIN) (SUBJECT) UTF-8 $ UID $\r\n",
            b"a1 LIST (SUBSCRIBED RECURSIVEMATCH) {3+}\r\nabc (\"x\" {2}\r\nyz) RETURN (STATUS (MESSAGES) CHILDREN)\r\n",
            b"a1 UID SEARCH RETURN (MIN MAX COUNT ALL) CHARSET UTF-8 TEXT {2}\r\nhi\r\n",
            b"a1 LIST \"\\\\\" \"\\\"\" RETURN ()\r\n",
        ];
        for s in samples {
            for end in 0..=s.len() {
                let _ = recognise(&s[..end]);
                let _ = substitute_saved(&s[..end], SavedSets::default);
            }
            let mut flipped = s.to_vec();
            for i in 0..flipped.len() {
                let keep = flipped[i];
                for b in [0u8, b'(', b')', b'{', b'"', b' ', 0xff] {
                    flipped[i] = b;
                    let _ = recognise(&flipped);
                    let _ = substitute_saved(&flipped, SavedSets::default);
                }
                flipped[i] = keep;
            }
        }
    }
}
