//! Message threading (RFC 5256): the base subject (§2.1), the REFERENCES algorithm (§3, every
//! step: links from References/In-Reply-To, dummy parents, loop avoidance, pruning, subject
//! merging, sorting by sent date) and ORDEREDSUBJECT. Pure: IMAP THREAD (`imap/thread.rs`)
//! gives it one [`Message`] per message and renders the [`Forest`] it returns; the webmail's
//! conversation view (`web/mail/conversations.rs`) uses it the same way, with the references
//! kept per body at delivery ([`stored_refs`], column `blobs.thread_refs`).
//!
//! Bounded for what a sender controls: a message contributes at most [`MAX_REFS`] references
//! (its first and its last ones, as truncating mail clients keep them) of at most
//! [`MAX_ID_LEN`] octets each, so memory is linear in the number of messages; nothing recurses
//! (a References chain may nest as deep as there are messages); the loop check walks at most
//! [`MAX_DEPTH`] ancestors, and a link it cannot prove loop-free is not made.

use std::collections::HashMap;

/// References kept per message: the first and the last `MAX_REFS - 1`.
pub const MAX_REFS: usize = 64;
/// Longest message ID taken into account (RFC 5322 lines are at most 998 octets).
pub const MAX_ID_LEN: usize = 998;
/// Ancestors walked when checking that a new link makes no loop.
pub const MAX_DEPTH: usize = 4096;
/// Ancestor steps of all loop checks of one threading: a crafted mailbox could make every
/// check walk [`MAX_DEPTH`] steps; past this (tens of milliseconds) links needing a check are
/// no longer made, and threads stay apart instead of the command taking seconds.
pub const WALK_BUDGET: u64 = 64_000_000;

/// One message to thread, in mailbox order (the order breaks ties between equal dates).
#[derive(Debug, Clone, Default)]
pub struct Message<'a> {
    /// What the caller wants back in the forest (a sequence number, a UID, a row id).
    pub id: u32,
    /// The Message-ID header field's value.
    pub message_id: Option<&'a str>,
    /// The References header field's value (unfolded or not).
    pub references: Option<&'a str>,
    /// The In-Reply-To header field's value.
    pub in_reply_to: Option<&'a str>,
    /// The decoded subject.
    pub subject: &'a str,
    /// RFC 5256 §2.2 sent date: the Date header as an instant (seconds), or the internal date
    /// when it has none that can be read.
    pub sent: i64,
}

/// The threading algorithms of RFC 5256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    References,
    OrderedSubject,
}

/// The threads: a forest in an arena (no recursive type, so dropping a deep thread cannot
/// overflow the stack).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forest {
    /// Each node's message id (`None`: a dummy, a message that is not in the set but that
    /// others have in common) and children, in order.
    pub nodes: Vec<Node>,
    /// The threads, in order.
    pub roots: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub id: Option<u32>,
    pub children: Vec<usize>,
}

/// Threads `messages` (given in mailbox order).
pub fn thread(messages: &[Message<'_>], algorithm: Algorithm) -> Forest {
    match algorithm {
        Algorithm::References => references(messages),
        Algorithm::OrderedSubject => ordered_subject(messages),
    }
}

/// RFC 5256 §2.1 base subject, upper-cased in ASCII only so that comparing it by octets is
/// i;ascii-casemap (the subject is already decoded from encoded words, step 1's first part).
pub fn base_subject(subject: &str) -> String {
    base_subject_and_reply(subject).0
}

/// The longest prefix of a subject that threading and sorting look at (bytes).
pub const MAX_SUBJECT: usize = 1024;

/// The base subject, and whether the subject is a reply or forward (§5: a `Re:`/`Fw:`/`Fwd:`
/// leader, a `(fwd)` trailer or a `[fwd: …]` wrapper was removed), which REFERENCES uses when
/// merging threads by subject.
pub fn base_subject_and_reply(subject: &str) -> (String, bool) {
    let mut reply = false;
    // A sender controls the subject's length, and each pass below copies what is left: only
    // the first MAX_SUBJECT bytes are compared, which keeps the work linear and small.
    let subject = subject
        .get(..subject.floor_char_boundary(MAX_SUBJECT))
        .unwrap_or(subject);
    // (1) White space runs (tabs, unfolded continuations) become one space.
    let mut s = subject
        .split([' ', '\t', '\r', '\n'])
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    loop {
        // (2) Trailers: "(fwd)" and white space, repeatedly.
        loop {
            if let Some(t) = s.strip_suffix(' ') {
                s.truncate(t.len());
            } else if s.len() >= 5
                && s.as_bytes()
                    .get(s.len() - 5..)
                    .is_some_and(|t| t.eq_ignore_ascii_case(b"(fwd)"))
            {
                s.truncate(s.len() - 5);
                reply = true;
            } else {
                break;
            }
        }
        // (3)-(5) Leaders (white space, or blobs followed by Re/Fw/Fwd and a colon), and a
        // leading blob when something is left after it, until neither is found.
        loop {
            let cut = if s.starts_with(' ') {
                Some(1)
            } else if let Some(n) = leader_len(&s) {
                reply = true;
                Some(n)
            } else {
                blob_len(&s).filter(|&n| n < s.len())
            };
            match cut.and_then(|n| s.get(n..)) {
                Some(rest) => s = rest.to_string(),
                None => break,
            }
        }
        // (6) A "[fwd: ...]" wrapper: unwrapped, and the steps again from (2).
        if starts_with_ci(&s, "[fwd:")
            && let Some(inner) = s.get(5..).and_then(|r| r.strip_suffix(']'))
        {
            s = inner.to_string();
            reply = true;
            continue;
        }
        break;
    }
    (s.to_ascii_uppercase(), reply)
}

/// Whether `s` starts with `prefix`, ASCII case-insensitively.
fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.as_bytes()
        .get(..prefix.len())
        .is_some_and(|b| b.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// The length of the `subj-blob` (`"[" *BLOBCHAR "]" *WSP`, BLOBCHAR any character but the
/// brackets) at the start of `s`, if there is one.
fn blob_len(s: &str) -> Option<usize> {
    let rest = s.strip_prefix('[')?;
    let close = rest.find(['[', ']'])?;
    let after = rest.get(close..)?.strip_prefix(']')?;
    Some(s.len() - after.trim_start_matches(' ').len())
}

/// The length of the `subj-leader` (`*subj-blob subj-refwd`, RFC 5256 §5) at the start of `s`,
/// where `subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"`.
fn leader_len(s: &str) -> Option<usize> {
    let mut rest = s;
    while let Some(n) = blob_len(rest) {
        rest = rest.get(n..)?;
    }
    let word = ["re", "fwd", "fw"]
        .into_iter()
        .find(|w| starts_with_ci(rest, w))?;
    rest = rest.get(word.len()..)?.trim_start_matches(' ');
    if let Some(n) = blob_len(rest) {
        rest = rest.get(n..)?;
    }
    let rest = rest.strip_prefix(':')?;
    Some(s.len() - rest.len())
}

/// The valid message IDs (`<left@right>`, brackets included, compared case-sensitively) in a
/// References, In-Reply-To or Message-ID field, in order. Comments, phrases and anything else
/// between them is skipped.
pub fn message_ids(field: &str) -> impl Iterator<Item = &str> {
    let mut rest = field;
    std::iter::from_fn(move || {
        loop {
            let start = rest.find('<')?;
            let after = rest.get(start + 1..)?;
            let Some(len) = after.find(['>', '<']) else {
                rest = "";
                return None;
            };
            let inner = after.get(..len)?;
            let closed = after.get(len..)?.starts_with('>');
            let candidate = rest.get(start..start + len + 2);
            rest = after.get(len..)?;
            if closed
                && let Some(id) = candidate
                && id.len() <= MAX_ID_LEN
                && valid_id(inner)
            {
                rest = rest.get(1..).unwrap_or_default();
                return Some(id);
            }
        }
    })
}

/// `id-left "@" id-right` without white space or control characters, both sides non-empty.
fn valid_id(inner: &str) -> bool {
    match inner.rsplit_once('@') {
        Some((left, right)) => {
            !left.is_empty() && !right.is_empty() && inner.bytes().all(|b| b > b' ' && b != 0x7f)
        }
        None => false,
    }
}

/// The references a message is threaded by (RFC 5256 §3 step 1): those of References, or when
/// it has none that are valid, the first valid one of In-Reply-To; at most [`MAX_REFS`].
fn refs_of<'a>(m: &Message<'a>) -> Vec<&'a str> {
    let mut refs = m.references.map(kept_ids).unwrap_or_default();
    if refs.is_empty()
        && let Some(id) = m.in_reply_to.and_then(|f| message_ids(f).next())
    {
        refs.push(id);
    }
    refs
}

/// The valid ids of a References field that threading uses: the first and the latest
/// [`MAX_REFS`]` - 1`.
fn kept_ids(field: &str) -> Vec<&str> {
    let mut refs: Vec<&str> = Vec::new();
    for id in message_ids(field) {
        if refs.len() == MAX_REFS {
            // Keep the first and the latest ones: drop the second oldest kept.
            refs.remove(1);
        }
        refs.push(id);
    }
    refs
}

/// What of a References field threading uses, as a field value of at most [`MAX_REFS`] ids:
/// a caller holding many messages' fields keeps this, not the field a sender made as long as
/// it liked.
pub fn kept_references(field: &str) -> String {
    kept_ids(field).join(" ")
}

/// A node while threading: the message (index into the input) or none for a dummy.
struct Container {
    msg: Option<usize>,
    parent: Option<usize>,
    children: Vec<usize>,
}

struct Tree {
    c: Vec<Container>,
    /// Ancestor steps left to loop checks ([`WALK_BUDGET`]).
    budget: u64,
}

impl Tree {
    fn add(&mut self, msg: Option<usize>) -> usize {
        self.c.push(Container {
            msg,
            parent: None,
            children: Vec::new(),
        });
        self.c.len() - 1
    }

    fn parent(&self, i: usize) -> Option<usize> {
        self.c.get(i).and_then(|c| c.parent)
    }

    fn msg(&self, i: usize) -> Option<usize> {
        self.c.get(i).and_then(|c| c.msg)
    }

    fn children(&self, i: usize) -> &[usize] {
        self.c
            .get(i)
            .map(|c| c.children.as_slice())
            .unwrap_or_default()
    }

    /// Whether `a` is `b` or below it, as far as [`MAX_DEPTH`] ancestors (and the walk
    /// budget) show; beyond that the answer is "yes", so that no link is made that could
    /// close a loop.
    fn descends(&mut self, a: usize, b: usize) -> bool {
        let mut at = Some(a);
        for _ in 0..MAX_DEPTH {
            if self.budget == 0 {
                return true;
            }
            self.budget -= 1;
            match at {
                None => return false,
                Some(x) if x == b => return true,
                Some(x) => at = self.parent(x),
            }
        }
        true
    }

    fn unlink(&mut self, child: usize) {
        if let Some(p) = self.parent(child) {
            if let Some(pc) = self.c.get_mut(p) {
                pc.children.retain(|&x| x != child);
            }
            if let Some(c) = self.c.get_mut(child) {
                c.parent = None;
            }
        }
    }

    fn link(&mut self, parent: usize, child: usize) {
        self.unlink(child);
        if let Some(c) = self.c.get_mut(child) {
            c.parent = Some(parent);
        }
        if let Some(p) = self.c.get_mut(parent) {
            p.children.push(child);
        }
    }

    /// Every container below `roots`, children before their parent.
    fn post_order(&self, roots: &[usize]) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.c.len());
        let mut stack: Vec<(usize, bool)> = roots.iter().rev().map(|&r| (r, false)).collect();
        while let Some((n, expanded)) = stack.pop() {
            if expanded {
                out.push(n);
            } else {
                stack.push((n, true));
                stack.extend(self.children(n).iter().rev().map(|&c| (c, false)));
            }
        }
        out
    }
}

/// The sort key of a message (§2.2): sent date, then mailbox order.
fn key(messages: &[Message<'_>], msg: usize) -> (i64, usize) {
    (messages.get(msg).map_or(0, |m| m.sent), msg)
}

/// The sort key of a node: its message's, or for a dummy its first child's.
fn node_key(tree: &Tree, messages: &[Message<'_>], node: usize) -> (i64, usize) {
    let mut at = node;
    for _ in 0..=tree.c.len() {
        match tree.msg(at) {
            Some(m) => return key(messages, m),
            None => match tree.children(at).first() {
                Some(&c) => at = c,
                None => break,
            },
        }
    }
    (i64::MAX, usize::MAX)
}

fn sort_siblings(tree: &Tree, messages: &[Message<'_>], list: &mut [usize]) {
    list.sort_by_cached_key(|&n| node_key(tree, messages, n));
}

/// RFC 5256 §3, REFERENCES.
fn references(messages: &[Message<'_>]) -> Forest {
    let mut tree = Tree {
        c: Vec::new(),
        budget: WALK_BUDGET,
    };
    let mut ids: HashMap<&str, usize> = HashMap::new();
    // (1) Links from each message's references.
    for (i, m) in messages.iter().enumerate() {
        // The message's own container: its ID's dummy when references made one; a new one
        // when it has no valid ID or a message before it had the same (a unique ID).
        let own = m.message_id.and_then(|f| message_ids(f).next());
        let me = match own.map(|id| (id, ids.get(id).copied())) {
            Some((_, Some(c))) if tree.msg(c).is_none() => {
                if let Some(x) = tree.c.get_mut(c) {
                    x.msg = Some(i);
                }
                c
            }
            Some((id, None)) => {
                let c = tree.add(Some(i));
                ids.insert(id, c);
                c
            }
            _ => tree.add(Some(i)),
        };
        let refs = refs_of(m);
        let mut prev: Option<usize> = None;
        for id in &refs {
            let c = match ids.get(id) {
                Some(&c) => c,
                None => {
                    let c = tree.add(None);
                    ids.insert(id, c);
                    c
                }
            };
            // (1A) Each reference the parent of the next: unless the next already has a
            // parent (the References field may have been truncated) or it would make a loop.
            if let Some(p) = prev
                && tree.parent(c).is_none()
                && !tree.descends(p, c)
            {
                tree.link(p, c);
            }
            prev = Some(c);
        }
        // (1B) The last reference is the message's parent, replacing any presumed one
        // (again not when that would make a loop); without references it has none.
        tree.unlink(me);
        if let Some(p) = prev
            && !tree.descends(p, me)
        {
            tree.link(p, me);
        }
    }
    drop(ids);
    // (2) The root set.
    let mut roots: Vec<usize> = (0..tree.c.len())
        .filter(|&n| tree.parent(n).is_none())
        .collect();
    // (3) Pruning dummies, children first: a dummy without children goes; one with children
    // gives them to its parent in its place (at the top only when it has one child).
    for n in tree.post_order(&roots) {
        let kids = tree
            .c
            .get_mut(n)
            .map(|c| std::mem::take(&mut c.children))
            .unwrap_or_default();
        let mut kept = Vec::with_capacity(kids.len());
        for k in kids {
            if tree.msg(k).is_none() {
                let grand = tree
                    .c
                    .get_mut(k)
                    .map(|c| std::mem::take(&mut c.children))
                    .unwrap_or_default();
                for &g in &grand {
                    if let Some(gc) = tree.c.get_mut(g) {
                        gc.parent = Some(n);
                    }
                }
                kept.extend(grand);
            } else {
                kept.push(k);
            }
        }
        if let Some(c) = tree.c.get_mut(n) {
            c.children = kept;
        }
    }
    let mut top = Vec::with_capacity(roots.len());
    for r in roots {
        if tree.msg(r).is_some() {
            top.push(r);
            continue;
        }
        match tree.children(r).len() {
            0 => {}
            1 => {
                let child = tree.children(r).first().copied();
                if let Some(child) = child {
                    tree.unlink(child);
                    top.push(child);
                }
            }
            _ => top.push(r),
        }
    }
    roots = top;
    // (4) The threads by sent date (a dummy by its first child's, once its children are).
    for &r in &roots {
        if tree.msg(r).is_none() {
            let mut kids = tree.children(r).to_vec();
            sort_siblings(&tree, messages, &mut kids);
            if let Some(c) = tree.c.get_mut(r) {
                c.children = kids;
            }
        }
    }
    sort_siblings(&tree, messages, &mut roots);
    // (5) Threads with the same base subject merged.
    let subject_of = |tree: &Tree, n: usize| -> Option<(String, bool)> {
        let m = tree
            .msg(n)
            .or_else(|| tree.children(n).first().and_then(|&c| tree.msg(c)))?;
        let (base, reply) = base_subject_and_reply(messages.get(m)?.subject);
        let reply = reply && tree.msg(n).is_some();
        (!base.is_empty()).then_some((base, reply))
    };
    let infos: Vec<Option<(String, bool)>> = roots.iter().map(|&r| subject_of(&tree, r)).collect();
    let mut table: HashMap<String, (usize, bool)> = HashMap::new();
    for (&r, info) in roots.iter().zip(&infos) {
        let Some((subject, reply)) = info else {
            continue;
        };
        let dummy = tree.msg(r).is_none();
        match table.get(subject) {
            None => {
                table.insert(subject.clone(), (r, *reply));
            }
            Some(&(t, t_reply)) => {
                if tree.msg(t).is_some() && (dummy || (t_reply && !reply)) {
                    table.insert(subject.clone(), (r, *reply));
                }
            }
        }
    }
    // Roots merged into another thread are dropped; a new dummy takes its first member's place.
    let mut replaced: HashMap<usize, usize> = HashMap::new();
    let mut gone = vec![false; tree.c.len()];
    for (&r, info) in roots.iter().zip(&infos) {
        let Some((subject, reply)) = info else {
            continue;
        };
        let Some(&(t, t_reply)) = table.get(subject) else {
            continue;
        };
        // Skipped: the thread the table names, and one already moved under a new dummy.
        if t == r || tree.parent(r).is_some() {
            continue;
        }
        let (t_dummy, r_dummy) = (tree.msg(t).is_none(), tree.msg(r).is_none());
        if t_dummy && r_dummy {
            let kids = tree.children(r).to_vec();
            for k in kids {
                tree.link(t, k);
            }
        } else if t_dummy || (*reply && !t_reply) {
            tree.link(t, r);
        } else {
            let d = tree.add(None);
            gone.push(false);
            tree.link(d, t);
            if r_dummy {
                let kids = tree.children(r).to_vec();
                for k in kids {
                    tree.link(d, k);
                }
            } else {
                tree.link(d, r);
            }
            replaced.insert(t, d);
            table.insert(subject.clone(), (d, false));
        }
        if let Some(g) = gone.get_mut(r) {
            *g = true;
        }
    }
    let mut roots: Vec<usize> = roots
        .into_iter()
        .filter(|&r| !gone.get(r).copied().unwrap_or(false))
        .map(|r| {
            // A dummy may itself have been replaced by a later one (not after step 5B, but
            // follow the chain anyway).
            let mut at = r;
            while let Some(&d) = replaced.get(&at) {
                at = d;
            }
            at
        })
        .collect();
    // (6) Every set of siblings by sent date, the deepest first.
    for n in tree.post_order(&roots) {
        let mut kids = tree.children(n).to_vec();
        if kids.len() > 1 {
            sort_siblings(&tree, messages, &mut kids);
            if let Some(c) = tree.c.get_mut(n) {
                c.children = kids;
            }
        }
    }
    sort_siblings(&tree, messages, &mut roots);
    forest(&tree, messages, &roots)
}

/// RFC 5256 §3, ORDEREDSUBJECT: messages grouped by base subject; the first by sent date
/// heads its thread, the others are its children; threads by their first message's date.
fn ordered_subject(messages: &[Message<'_>]) -> Forest {
    let mut order: Vec<(String, (i64, usize))> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| (base_subject(m.subject), key(messages, i)))
        .collect();
    order.sort();
    let mut tree = Tree {
        c: Vec::new(),
        budget: WALK_BUDGET,
    };
    let mut roots = Vec::new();
    let mut current: Option<(&str, usize)> = None;
    for (subject, (_, i)) in &order {
        let n = tree.add(Some(*i));
        match current {
            Some((s, head)) if s == subject.as_str() => tree.link(head, n),
            _ => {
                roots.push(n);
                current = Some((subject.as_str(), n));
            }
        }
    }
    sort_siblings(&tree, messages, &mut roots);
    forest(&tree, messages, &roots)
}

/// The public form of a finished tree.
fn forest(tree: &Tree, messages: &[Message<'_>], roots: &[usize]) -> Forest {
    let mut out = Forest::default();
    let mut index: HashMap<usize, usize> = HashMap::new();
    for n in tree.post_order(roots) {
        let children = tree
            .children(n)
            .iter()
            .filter_map(|c| index.get(c).copied())
            .collect();
        out.nodes.push(Node {
            id: tree.msg(n).and_then(|m| messages.get(m)).map(|m| m.id),
            children,
        });
        index.insert(n, out.nodes.len() - 1);
    }
    out.roots = roots.iter().filter_map(|r| index.get(r).copied()).collect();
    out
}

/// Longest header block read for [`stored_refs`] (as `Store::header_blocks` cuts it).
pub const MAX_HEADER_BLOCK: usize = 64 * 1024;

/// What the store keeps of a message for threading (computed at delivery, so a folder can be
/// threaded without reading its bodies): the ids of References as [`kept_references`] keeps
/// them, or when it has none that are valid, the first valid id of In-Reply-To (§3 step 1);
/// empty when neither gives one. Given to [`Message::references`], it threads the message as
/// its two fields would. `raw` is the message or its header block (only the first
/// [`MAX_HEADER_BLOCK`] octets are read).
pub fn stored_refs(raw: &[u8]) -> String {
    let block = raw.get(..MAX_HEADER_BLOCK).unwrap_or(raw);
    let refs = header_field(block, "References")
        .map(|v| kept_references(&v))
        .unwrap_or_default();
    if !refs.is_empty() {
        return refs;
    }
    header_field(block, "In-Reply-To")
        .and_then(|v| message_ids(&v).next().map(str::to_string))
        .unwrap_or_default()
}

/// The unfolded value of the first field `name` (ASCII case-insensitive) in a raw header
/// block, as text (invalid UTF-8 replaced): where References comes from when it is not kept.
pub fn header_field(block: &[u8], name: &str) -> Option<String> {
    let mut value: Option<Vec<u8>> = None;
    for line in block.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(v) = &mut value {
            if line.starts_with(b" ") || line.starts_with(b"\t") {
                v.push(b' ');
                v.extend_from_slice(line.trim_ascii());
                continue;
            }
            break;
        }
        if line.is_empty() {
            break;
        }
        if let Some(colon) = line.iter().position(|&b| b == b':')
            && line
                .get(..colon)
                .is_some_and(|n| n.trim_ascii().eq_ignore_ascii_case(name.as_bytes()))
        {
            value = Some(
                line.get(colon + 1..)
                    .unwrap_or_default()
                    .trim_ascii()
                    .to_vec(),
            );
        }
    }
    value.map(|v| String::from_utf8_lossy(&v).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_refs_prefer_references_then_in_reply_to() {
        let m = b"Subject: x\r\nIn-Reply-To: <b@x>\r\nReferences: <a@x>\r\n <b@x> junk\r\n\r\nReferences: <no@x>\r\n";
        assert_eq!(stored_refs(m), "<a@x> <b@x>");
        let m = b"In-Reply-To: Bob's note <c@x> <d@x>\r\nReferences: nothing valid\r\n\r\n";
        assert_eq!(stored_refs(m), "<c@x>");
        assert_eq!(
            stored_refs(b"Subject: none\r\n\r\nIn-Reply-To: <e@x>\r\n"),
            ""
        );
        assert_eq!(stored_refs(b""), "");
    }

    /// The forest in IMAP's nested-list form, for compact assertions.
    fn render(f: &Forest) -> String {
        fn one(f: &Forest, n: usize, out: &mut String) {
            let node = &f.nodes[n];
            let mut first = true;
            if let Some(id) = node.id {
                out.push_str(&id.to_string());
                first = false;
            }
            match node.children.as_slice() {
                [] => {}
                [c] => {
                    if !first {
                        out.push(' ');
                    }
                    one(f, *c, out);
                }
                cs => {
                    if !first {
                        out.push(' ');
                    }
                    for c in cs {
                        out.push('(');
                        one(f, *c, out);
                        out.push(')');
                    }
                }
            }
        }
        let mut out = String::new();
        for &r in &f.roots {
            out.push('(');
            one(f, r, &mut out);
            out.push(')');
        }
        out
    }

    fn msg<'a>(id: u32, mid: &'a str, refs: &'a str, subject: &'a str, sent: i64) -> Message<'a> {
        Message {
            id,
            message_id: (!mid.is_empty()).then_some(mid),
            references: (!refs.is_empty()).then_some(refs),
            in_reply_to: None,
            subject,
            sent,
        }
    }

    #[test]
    fn ids() {
        let found: Vec<&str> = message_ids(" <a@b> (comment <x>) <c@d>\r\n\t<bad> <e@f").collect();
        assert_eq!(found, ["<a@b>", "<c@d>"]);
        assert_eq!(message_ids("<<a@b>").collect::<Vec<_>>(), ["<a@b>"]);
        assert_eq!(message_ids("<a b@c> <@c> <a@>").count(), 0);
    }

    #[test]
    fn fields() {
        let block =
            b"Subject: x\r\nreferences: <a@b>\r\n <c@d>\r\nFrom: y\r\n\r\nReferences: <no@no>";
        assert_eq!(
            header_field(block, "References").as_deref(),
            Some("<a@b> <c@d>")
        );
        assert_eq!(header_field(block, "To"), None);
    }

    #[test]
    fn reply_flags() {
        assert_eq!(base_subject_and_reply("Re: x"), ("X".into(), true));
        assert_eq!(base_subject_and_reply("x (fwd)"), ("X".into(), true));
        assert_eq!(base_subject_and_reply("[fwd: x]"), ("X".into(), true));
        assert_eq!(base_subject_and_reply("[list] x"), ("X".into(), false));
    }

    #[test]
    fn chain_and_branches() {
        let m = [
            msg(1, "<1@x>", "", "a", 10),
            msg(2, "<2@x>", "<1@x>", "Re: a", 20),
            msg(3, "<3@x>", "<1@x> <2@x>", "Re: a", 30),
            msg(4, "<4@x>", "<1@x> <2@x>", "Re: a", 25),
            msg(5, "<5@x>", "", "other", 5),
        ];
        let f = thread(&m, Algorithm::References);
        assert_eq!(render(&f), "(5)(1 2 (4)(3))");
    }

    #[test]
    fn dummies_and_pruning() {
        // 2 and 3 reply to a message that is not there: a dummy parent with two children at
        // the top stays; one child alone is promoted.
        let m = [
            msg(1, "<1@x>", "<gone@x>", "a", 10),
            msg(2, "<2@x>", "<gone@x>", "b", 5),
            msg(3, "<3@x>", "<gone2@x> <gone3@x>", "c", 1),
        ];
        let f = thread(&m, Algorithm::References);
        assert_eq!(render(&f), "(3)((2)(1))");
        // A dummy in the middle of a chain disappears, its child moving up.
        let m = [
            msg(1, "<1@x>", "", "a", 10),
            msg(2, "<2@x>", "<1@x> <gone@x>", "a", 20),
        ];
        assert_eq!(render(&thread(&m, Algorithm::References)), "(1 2)");
    }

    #[test]
    fn last_reference_wins_and_loops_are_refused() {
        // 2 says its parent is 1, 1 says its parent is 2: the second link would close a loop.
        let m = [
            msg(1, "<1@x>", "<2@x>", "p", 10),
            msg(2, "<2@x>", "<1@x>", "q", 20),
        ];
        let f = thread(&m, Algorithm::References);
        assert_eq!(render(&f), "(2 1)");
        // A message naming itself is no loop either.
        let m = [msg(1, "<1@x>", "<1@x>", "p", 10)];
        assert_eq!(render(&thread(&m, Algorithm::References)), "(1)");
    }

    #[test]
    fn duplicate_and_missing_ids() {
        let m = [
            msg(1, "<d@x>", "", "a", 10),
            msg(2, "<d@x>", "", "b", 20),
            msg(3, "", "<d@x>", "c", 30),
        ];
        // The first message keeps the ID; the second gets a unique one.
        assert_eq!(render(&thread(&m, Algorithm::References)), "(1 3)(2)");
    }

    #[test]
    fn in_reply_to_without_references() {
        let mut reply = msg(2, "<2@x>", "", "x", 20);
        reply.in_reply_to = Some("<1@x> <other@x>");
        let m = [msg(1, "<1@x>", "", "y", 10), reply];
        assert_eq!(render(&thread(&m, Algorithm::References)), "(1 2)");
    }

    #[test]
    fn subject_merging() {
        // Same base subject, no references: the non-reply heads, the reply joins it.
        let m = [
            msg(1, "<1@x>", "", "Re: hello", 10),
            msg(2, "<2@x>", "", "hello", 20),
        ];
        assert_eq!(render(&thread(&m, Algorithm::References)), "(2 1)");
        // Two non-replies: a new dummy over both.
        let m = [
            msg(1, "<1@x>", "", "hello", 10),
            msg(2, "<2@x>", "", "HELLO", 20),
        ];
        assert_eq!(render(&thread(&m, Algorithm::References)), "((1)(2))");
        // Empty subjects are never merged.
        let m = [msg(1, "<1@x>", "", "", 10), msg(2, "<2@x>", "", "Re:", 20)];
        assert_eq!(render(&thread(&m, Algorithm::References)), "(1)(2)");
        // A dummy thread takes a message of the same subject as a child.
        let m = [
            msg(1, "<1@x>", "<gone@x>", "topic", 10),
            msg(2, "<2@x>", "<gone@x>", "Re: topic", 20),
            msg(3, "<3@x>", "", "Re: topic", 30),
        ];
        assert_eq!(render(&thread(&m, Algorithm::References)), "((1)(2)(3))");
    }

    #[test]
    fn ties_by_mailbox_order() {
        let m = [msg(7, "<1@x>", "", "b", 10), msg(3, "<2@x>", "", "a", 10)];
        assert_eq!(render(&thread(&m, Algorithm::References)), "(7)(3)");
    }

    #[test]
    fn ordered_subject() {
        let m = [
            msg(1, "", "", "b", 50),
            msg(2, "", "", "Re: a", 40),
            msg(3, "", "", "a", 30),
            msg(4, "", "", "re: b", 20),
            msg(5, "", "", "c", 10),
            msg(6, "", "", "A", 35),
        ];
        assert_eq!(
            render(&thread(&m, Algorithm::OrderedSubject)),
            "(5)(4 1)(3 (6)(2))"
        );
    }

    #[test]
    fn a_deep_chain_neither_recurses_nor_loops() {
        let n = 6_000;
        let ids: Vec<String> = (0..n).map(|i| format!("<{i}@x>")).collect();
        let refs: Vec<String> = (0..n)
            .map(|i| {
                if i == 0 {
                    String::new()
                } else {
                    ids[i - 1].clone()
                }
            })
            .collect();
        let m: Vec<Message<'_>> = (0..n)
            .map(|i| msg(i as u32 + 1, &ids[i], &refs[i], "s", i as i64))
            .collect();
        let f = thread(&m, Algorithm::References);
        assert_eq!(f.roots.len(), 1);
        let mut depth = 0;
        let mut at = f.roots[0];
        while let Some(&c) = f.nodes[at].children.first() {
            at = c;
            depth += 1;
        }
        // The loop check gives up past MAX_DEPTH ancestors: the chain is cut there, and the
        // pieces meet again by subject under one dummy.
        assert!(depth >= MAX_DEPTH - 1, "{depth}");
        drop(f);
    }

    #[test]
    fn many_references_are_capped() {
        let refs: String = (0..1000).map(|i| format!("<{i}@x> ")).collect();
        let m = Message {
            references: Some(&refs),
            ..Message::default()
        };
        let kept = refs_of(&m);
        assert_eq!(kept.len(), MAX_REFS);
        assert_eq!(kept[0], "<0@x>");
        assert_eq!(kept[MAX_REFS - 1], "<999@x>");
    }

    #[test]
    fn a_long_subject_costs_its_first_kilobyte_only() {
        // Only the first MAX_SUBJECT bytes are looked at (each pass over a subject of blobs
        // copies the rest: quadratic without the cut, minutes for this one).
        let (base, _) = base_subject_and_reply(&"a".repeat(200_000));
        assert_eq!(base.len(), MAX_SUBJECT);
        let (base, _) = base_subject_and_reply(&("[x]".repeat(200_000) + "Re: hello"));
        assert!(base.len() <= MAX_SUBJECT, "{}", base.len());
    }

    #[test]
    fn kept_references_are_what_threading_uses() {
        let field: String = (0..200).map(|i| format!("<m{i}@x> ")).collect();
        let kept = kept_references(&field);
        let ids: Vec<&str> = message_ids(&kept).collect();
        assert_eq!(ids.len(), MAX_REFS);
        assert_eq!(ids.first(), Some(&"<m0@x>"));
        assert_eq!(ids.last(), Some(&"<m199@x>"));
        assert_eq!(kept_ids(&kept), kept_ids(&field));
    }
}
