//! SEARCH (every RFC 3501 key, plus MODSEQ from RFC 7162) and SORT (RFC 5256).
//!
//! A search reads one row per message with what was kept at delivery (flags, dates, size,
//! decoded subject and address fields; the parsed envelope only when BCC or an address sort
//! needs it), asks the trigram index for BODY and TEXT (see `store/search.rs`: exact
//! substrings; TEXT covers every header field and the body), and reads raw header blocks
//! only for HEADER keys. No message is parsed again.
//!
//! Choices: string keys are substrings matched case-insensitively (any charset: the search
//! text is UTF-8);
//! FROM/TO/CC/SUBJECT match the decoded display forms ("Alice <a@x.org>"), so encoded words
//! are found by their text; BEFORE/ON/SINCE compare the internal date's day in UTC (the zone
//! it is stored in); SENTBEFORE/SENTON/SENTSINCE compare the Date header's date as written,
//! ignoring its time and zone (RFC 3501 §6.4.4), and skip messages without a valid Date
//! header. `CHARSET` may be UTF-8 or US-ASCII; others get `NO [BADCHARSET]`.
//!
//! The store keeps the Date header only as a UTC instant (`header_date`), whose day differs
//! from the written one only when the zone offset (less than a day either way) carries it
//! across midnight. So the UTC day decides every message at least a day away from the dates
//! the SENTxx keys name, and only the few near them have their Date header read again (from
//! the envelope parsed at delivery, through its covering index): exact without a migration
//! and backfill of every stored body, and no cost for searches without SENTxx keys.
//!
//! SORT (RFC 5256) compares base subjects (§2.1) and addresses with i;ascii-casemap (RFC
//! 4790): octets, with only a-z folded to A-Z.

use std::collections::HashMap;

use imap_codec::imap_types::core::{Charset, Vec1};
use imap_codec::imap_types::datetime::NaiveDate;
use imap_codec::imap_types::extensions::sort::{SortCriterion, SortKey};
use imap_codec::imap_types::search::SearchKey;

use super::extended::{SavedSets, SearchReturn};
use super::selected::Selected;
use super::seqset::{self};
use super::session::{CmdResult, Reply, Session};
use crate::mime::{Address, Envelope};
use crate::net::Transport;
use crate::store::{Flags, HeaderField, SearchRow, TextField, ViewParts};
use crate::thread::base_subject;

/// Most different BODY/TEXT strings one SEARCH, SORT or THREAD may hold.
const MAX_TEXT_KEYS: usize = 32;

const DAY: i64 = 86_400;

/// What a search needs loaded.
#[derive(Default)]
struct Needs {
    headers: bool,
    envelope: bool,
    raw_headers: bool,
    modseq: bool,
    texts: Vec<(TextField, String)>,
    /// Midnight (UTC seconds) of each date a SENTBEFORE/SENTON/SENTSINCE key names.
    sent: Vec<i64>,
}

fn needs(key: &SearchKey<'_>, n: &mut Needs) {
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().for_each(|k| needs(k, n)),
        SearchKey::Or(a, b) => {
            needs(a, n);
            needs(b, n);
        }
        SearchKey::Not(k) => needs(k, n),
        SearchKey::From(_) | SearchKey::To(_) | SearchKey::Cc(_) | SearchKey::Subject(_) => {
            n.headers = true
        }
        SearchKey::Bcc(_) => n.envelope = true,
        SearchKey::Header(..) => n.raw_headers = true,
        SearchKey::Body(s) => n.texts.push((TextField::Body, text(s.as_ref()))),
        SearchKey::Text(s) => n.texts.push((TextField::All, text(s.as_ref()))),
        SearchKey::ModSequence { .. } => n.modseq = true,
        SearchKey::SentBefore(d) | SearchKey::SentOn(d) | SearchKey::SentSince(d) => {
            n.sent.push(day_start(d))
        }
        _ => {}
    }
}

/// Whether the day a Date header was written on, for a header whose UTC instant is
/// `header_date`, can compare differently with the SENTxx dates `days` than its UTC day: the
/// written day is the UTC day of `header_date + offset`, |offset| < one day (RFC 5322 zones
/// are +-HHMM; the parser refuses hours over 23), so only instants within a day of a
/// compared day (before its start or after its end) are in doubt.
fn sent_day_in_doubt(header_date: i64, days: &[i64]) -> bool {
    days.iter()
        .any(|&d| header_date > d.saturating_sub(DAY) && header_date < d.saturating_add(2 * DAY))
}

/// The date a `Date:` header value was written on, as Unix seconds of that day's midnight,
/// time and zone disregarded (RFC 3501 §6.4.4); `None` when it does not parse to the valid
/// dates `header_date` is kept for (see `mime::text::parse_date`).
fn written_day(raw: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(raw).ok()?;
    let date = mail_parser::DateTime::parse_rfc822(text)?;
    date.is_valid().then(|| day_of(date.to_timestamp_local()))
}

/// What every match of `key` must contain, from the keys reached through ANDs only (an OR or
/// a NOT says nothing about each message on its own): full-text needles (BODY, TEXT), whose
/// candidates are the only rows read, and header substrings (SUBJECT, FROM, TO, CC), which let
/// the store skip rows that cannot match.
#[derive(Default)]
struct Required {
    texts: Vec<(TextField, String)>,
    fields: Vec<(HeaderField, String)>,
}

fn required(key: &SearchKey<'_>, out: &mut Required) {
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().for_each(|k| required(k, out)),
        SearchKey::Body(s) => out.texts.push((TextField::Body, text(s.as_ref()))),
        SearchKey::Text(s) => out.texts.push((TextField::All, text(s.as_ref()))),
        SearchKey::Subject(s) => out.fields.push((HeaderField::Subject, text(s.as_ref()))),
        SearchKey::From(s) => out.fields.push((HeaderField::From, text(s.as_ref()))),
        SearchKey::To(s) => out.fields.push((HeaderField::To, text(s.as_ref()))),
        SearchKey::Cc(s) => out.fields.push((HeaderField::Cc, text(s.as_ref()))),
        _ => {}
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

fn contains_ci(haystack: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    if haystack.is_ascii() && needle.is_ascii() {
        let (h, n) = (haystack.as_bytes(), needle.as_bytes());
        return h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n));
    }
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

fn day_start(date: &NaiveDate) -> i64 {
    date.as_ref()
        .and_hms_opt(0, 0, 0)
        .map_or(0, |t| t.and_utc().timestamp())
}

fn day_of(unix: i64) -> i64 {
    unix.div_euclid(DAY) * DAY
}

fn address_text(list: &[Address]) -> String {
    let mut s = String::new();
    for a in list {
        if let Some(n) = &a.name {
            s.push_str(n);
            s.push(' ');
        }
        s.push('<');
        s.push_str(a.mailbox.as_deref().unwrap_or_default());
        s.push('@');
        s.push_str(a.host.as_deref().unwrap_or_default());
        s.push_str("> ");
    }
    s
}

/// Whether a header block has a field `name` whose (unfolded) value contains `value`.
fn header_matches(header: &[u8], name: &str, value: &str) -> bool {
    let text = String::from_utf8_lossy(header);
    let mut current: Option<String> = None;
    let check = |field: &Option<String>| {
        field.as_ref().is_some_and(|f| {
            f.split_once(':').is_some_and(|(n, v)| {
                n.trim().eq_ignore_ascii_case(name) && contains_ci(v.trim(), value)
            })
        })
    };
    for line in text.split('\n') {
        let line = line.trim_end_matches('\r');
        if line.starts_with([' ', '\t']) {
            if let Some(f) = &mut current {
                f.push(' ');
                f.push_str(line.trim());
            }
            continue;
        }
        if check(&current) {
            return true;
        }
        if line.is_empty() {
            return false;
        }
        current = Some(line.to_string());
    }
    check(&current)
}

struct Ctx<'a> {
    selected: &'a Selected,
    texts: HashMap<(TextField, String), Vec<u32>>,
    headers: HashMap<u32, Vec<u8>>,
    /// The written day of the Date header (see [`written_day`]) of the messages whose UTC day
    /// could compare differently (see [`sent_day_in_doubt`]); the others use their UTC day.
    sent_days: HashMap<u32, Option<i64>>,
}

/// The day the message's Date header was written on, `None` without a valid one.
fn sent_day(row: &SearchRow, ctx: &Ctx<'_>) -> Option<i64> {
    match ctx.sent_days.get(&row.uid) {
        Some(day) => *day,
        None => row.header_date.map(day_of),
    }
}

fn eval(key: &SearchKey<'_>, row: &SearchRow, seq: u32, ctx: &Ctx<'_>) -> bool {
    let flags = Flags::from_bits(row.flags);
    let recent = ctx.selected.is_recent(row.uid);
    let has_keyword = |k: &str| {
        row.keywords
            .split_whitespace()
            .any(|x| x.eq_ignore_ascii_case(k))
    };
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().all(|k| eval(k, row, seq, ctx)),
        SearchKey::Or(a, b) => eval(a, row, seq, ctx) || eval(b, row, seq, ctx),
        SearchKey::Not(k) => !eval(k, row, seq, ctx),
        SearchKey::SequenceSet(set) => {
            seqset::contains(&seqset::ranges(set, ctx.selected.exists()), seq)
        }
        SearchKey::Uid(set) => {
            seqset::contains(&seqset::ranges(set, ctx.selected.max_uid()), row.uid)
        }
        SearchKey::All => true,
        SearchKey::Answered => flags.contains(Flags::ANSWERED),
        SearchKey::Unanswered => !flags.contains(Flags::ANSWERED),
        SearchKey::Deleted => flags.contains(Flags::DELETED),
        SearchKey::Undeleted => !flags.contains(Flags::DELETED),
        SearchKey::Draft => flags.contains(Flags::DRAFT),
        SearchKey::Undraft => !flags.contains(Flags::DRAFT),
        SearchKey::Flagged => flags.contains(Flags::FLAGGED),
        SearchKey::Unflagged => !flags.contains(Flags::FLAGGED),
        SearchKey::Seen => flags.contains(Flags::SEEN),
        SearchKey::Unseen => !flags.contains(Flags::SEEN),
        SearchKey::Recent => recent,
        SearchKey::New => recent && !flags.contains(Flags::SEEN),
        SearchKey::Old => !recent,
        SearchKey::Keyword(k) => has_keyword(k.as_ref()),
        SearchKey::Unkeyword(k) => !has_keyword(k.as_ref()),
        SearchKey::Larger(n) => row.size > u64::from(*n),
        SearchKey::Smaller(n) => row.size < u64::from(*n),
        SearchKey::Before(d) => day_of(row.internal_date) < day_start(d),
        SearchKey::On(d) => day_of(row.internal_date) == day_start(d),
        SearchKey::Since(d) => day_of(row.internal_date) >= day_start(d),
        SearchKey::SentBefore(d) => sent_day(row, ctx).is_some_and(|t| t < day_start(d)),
        SearchKey::SentOn(d) => sent_day(row, ctx).is_some_and(|t| t == day_start(d)),
        SearchKey::SentSince(d) => sent_day(row, ctx).is_some_and(|t| t >= day_start(d)),
        SearchKey::Subject(s) => contains_ci(&row.subject, &text(s.as_ref())),
        SearchKey::From(s) => contains_ci(&row.from, &text(s.as_ref())),
        SearchKey::To(s) => contains_ci(&row.to, &text(s.as_ref())),
        SearchKey::Cc(s) => contains_ci(&row.cc, &text(s.as_ref())),
        SearchKey::Bcc(s) => row
            .envelope
            .as_ref()
            .is_some_and(|e| contains_ci(&address_text(&e.bcc), &text(s.as_ref()))),
        SearchKey::Header(name, value) => ctx
            .headers
            .get(&row.uid)
            .is_some_and(|h| header_matches(h, &text(name.as_ref()), &text(value.as_ref()))),
        SearchKey::Body(s) => ctx
            .texts
            .get(&(TextField::Body, text(s.as_ref())))
            .is_some_and(|uids| uids.binary_search(&row.uid).is_ok()),
        SearchKey::Text(s) => ctx
            .texts
            .get(&(TextField::All, text(s.as_ref())))
            .is_some_and(|uids| uids.binary_search(&row.uid).is_ok()),
        SearchKey::ModSequence { modseq, .. } => row.modseq >= *modseq,
    }
}

pub(super) fn charset_ok(charset: Option<&Charset<'_>>) -> bool {
    charset.is_none_or(|c| {
        let name: &str = c.as_ref();
        name.eq_ignore_ascii_case("UTF-8") || name.eq_ignore_ascii_case("US-ASCII")
    })
}

/// The sort key of an address list for SORT FROM, TO and CC (RFC 5256 §3): the first
/// address's mailbox part, ASCII upper-cased (i;ascii-casemap).
fn first_mailbox(list: &[Address]) -> String {
    list.first()
        .and_then(|a| a.mailbox.as_deref())
        .unwrap_or_default()
        .to_ascii_uppercase()
}

impl<T: Transport> Session<T> {
    /// Runs a search: the matching rows with their sequence numbers, by ascending sequence.
    /// `only` (ascending UIDs) limits it to those messages: a kept result (`context.rs`)
    /// looks again only at what changed.
    pub(super) async fn matches(
        &mut self,
        criteria: Vec1<SearchKey<'static>>,
        envelope: bool,
        subject: bool,
        only: Option<&[u32]>,
    ) -> Result<(Vec<(u32, SearchRow)>, bool), crate::store::StoreError> {
        let key = match criteria.as_ref() {
            [one] => one.clone(),
            _ => SearchKey::And(criteria),
        };
        let mut n = Needs::default();
        needs(&key, &mut n);
        let Some(selected) = &self.selected else {
            return Ok((Vec::new(), false));
        };
        let mailbox = &selected.mailbox;
        let store = &self.imap.store;
        // Each different BODY/TEXT string is one pass over the index (a short one over every
        // text of the mailbox): a bounded number of them per command.
        let distinct: std::collections::HashSet<_> = n.texts.iter().collect();
        if distinct.len() > MAX_TEXT_KEYS {
            return Err(crate::store::StoreError::Invalid(format!(
                "at most {MAX_TEXT_KEYS} different BODY or TEXT strings in one search"
            )));
        }
        let mut texts = HashMap::new();
        for (field, needle) in n.texts {
            if !texts.contains_key(&(field, needle.clone())) {
                let uids = store.search_text_substring(mailbox, field, &needle).await?;
                texts.insert((field, needle), uids);
            }
        }
        let headers: HashMap<u32, Vec<u8>> = if n.raw_headers {
            store.raw_headers(mailbox).await?.into_iter().collect()
        } else {
            HashMap::new()
        };
        let mut req = Required::default();
        required(&key, &mut req);
        let start = only.map(<[u32]>::to_vec);
        let candidates: Option<Vec<u32>> = req.texts.iter().fold(start, |acc, k| {
            let uids = texts.get(k).cloned().unwrap_or_default();
            Some(match acc {
                None => uids,
                // Both lists ascend (the store returns UIDs in order).
                Some(prev) => prev
                    .into_iter()
                    .filter(|u| uids.binary_search(u).is_ok())
                    .collect(),
            })
        });
        let rows = store
            .search_rows(
                mailbox,
                n.headers || subject,
                n.envelope || envelope,
                candidates.as_deref(),
                &req.fields,
            )
            .await?;
        let mut sent_days = HashMap::new();
        if !n.sent.is_empty() {
            let doubtful: Vec<u32> = rows
                .iter()
                .filter(|r| r.header_date.is_some_and(|t| sent_day_in_doubt(t, &n.sent)))
                .map(|r| r.uid)
                .collect();
            if !doubtful.is_empty() {
                let parts = ViewParts {
                    envelope: true,
                    ..ViewParts::default()
                };
                for view in store.message_views(mailbox, &doubtful, parts).await? {
                    let day = view
                        .envelope
                        .as_ref()
                        .and_then(|e| e.get().date.and_then(written_day));
                    sent_days.insert(view.meta.uid, day);
                }
            }
        }
        let ctx = Ctx {
            selected,
            texts,
            headers,
            sent_days,
        };
        let found = rows
            .into_iter()
            .filter_map(|row| {
                let seq = selected.seq(row.uid)?;
                // The store may drop a long `only` list and scan (see `search_rows`).
                let wanted = only.is_none_or(|o| o.binary_search(&row.uid).is_ok());
                (wanted && !selected.is_expunged(row.uid) && eval(&key, &row, seq, &ctx))
                    .then_some((seq, row))
            })
            .collect();
        Ok((found, n.modseq))
    }

    pub(super) async fn search(
        &mut self,
        charset: Option<Charset<'static>>,
        criteria: Vec1<SearchKey<'static>>,
        uid: bool,
    ) -> CmdResult {
        let esearch = self.esearch.take();
        let save = esearch.as_ref().is_some_and(|(_, o)| o.save);
        if !charset_ok(charset.as_ref()) {
            if save {
                self.clear_saved();
            }
            return Ok(Reply::no(
                "[BADCHARSET (UTF-8 US-ASCII)] unsupported charset",
            ));
        }
        if let Some(reply) = self.refuse_update(esearch.as_ref()) {
            return Ok(reply);
        }
        let criteria_kept = esearch
            .as_ref()
            .is_some_and(|(_, o)| o.update)
            .then(|| criteria.clone());
        let (found, modseq) = match self.matches(criteria, false, false, None).await {
            Ok(m) => m,
            Err(e) => {
                if save {
                    self.clear_saved();
                }
                return Err(e.into());
            }
        };
        if modseq {
            self.condstore = true;
        }
        if let Some((tag, options)) = esearch {
            if options.save {
                self.save_result(options, &found);
            }
            if options.answers() {
                self.write_esearch(&tag, options, uid, &found, modseq);
            }
            if options.update {
                self.keep_context(tag, uid, None, criteria_kept, &found);
            }
            return Ok(Reply::ok("SEARCH completed"));
        }
        let mut line = String::from("SEARCH");
        for (seq, row) in &found {
            line.push(' ');
            line.push_str(&(if uid { row.uid } else { *seq }).to_string());
        }
        if modseq && let Some(max) = found.iter().map(|(_, r)| r.modseq).max() {
            line.push_str(&format!(" (MODSEQ {max})"));
        }
        self.out.untagged(&line);
        Ok(Reply::ok("SEARCH completed"))
    }

    /// Keeps a result for `$` (RFC 5182 §2.1): with MIN and/or MAX but neither ALL nor COUNT,
    /// only the messages those name (the first and last of `found`, which is in result
    /// order: by UID for SEARCH, sort order for SORT); otherwise every match.
    fn save_result(&mut self, options: SearchReturn, found: &[(u32, SearchRow)]) {
        let ends_only = (options.min || options.max)
            && !(options.all || options.count || options.partial.is_some() || options.update);
        let uids: Vec<u32> = if ends_only {
            let mut ends = Vec::new();
            if options.min
                && let Some((_, first)) = found.first()
            {
                ends.push(first.uid);
            }
            if options.max
                && let Some((_, last)) = found.last()
            {
                ends.push(last.uid);
            }
            ends
        } else {
            found.iter().map(|(_, row)| row.uid).collect()
        };
        let mut uids = uids;
        uids.sort_unstable();
        uids.dedup();
        if let Some(selected) = self.selected.as_mut() {
            selected.saved = uids;
        }
    }

    /// Empties the saved result: a SEARCH with SAVE failed (RFC 5182 §2.1).
    pub(super) fn clear_saved(&mut self) {
        if let Some(selected) = self.selected.as_mut() {
            selected.saved.clear();
        }
    }

    /// What `$` stands for now (see `extended::substitute_saved`): the saved messages the
    /// session still shows, expunged ones left out.
    pub(super) fn saved_sets(&self) -> SavedSets {
        let Some(selected) = self.selected.as_ref() else {
            return SavedSets::default();
        };
        let (mut uids, mut seqs) = (Vec::new(), Vec::new());
        for &uid in &selected.saved {
            if let Some(seq) = selected.seq(uid)
                && !selected.is_expunged(uid)
            {
                uids.push(uid);
                seqs.push(seq);
            }
        }
        SavedSets {
            uids: seqset::compact(&uids),
            seqs: seqset::compact(&seqs),
        }
    }

    /// `* ESEARCH (TAG "t") [UID] [MIN n] [MAX n] [COUNT n] [ALL set] [MODSEQ m]` (RFC 4731
    /// §3.1: MIN, MAX and ALL are left out when nothing matched; COUNT 0 is not). `found` is
    /// in result order: ascending for SEARCH, so MIN and MAX are the lowest and highest; in
    /// sort order for SORT (ESORT), whose MIN and MAX are the first and last. MODSEQ
    /// (RFC 7162 §3.1.5) is the highest of the messages returned: all matches for ALL or
    /// COUNT, otherwise those MIN and MAX name.
    fn write_esearch(
        &mut self,
        tag: &str,
        options: SearchReturn,
        uid: bool,
        found: &[(u32, SearchRow)],
        modseq: bool,
    ) {
        let number = |(seq, row): &(u32, SearchRow)| if uid { row.uid } else { *seq };
        let out = &mut self.out;
        out.text("* ESEARCH (TAG ").string(tag.as_bytes()).text(")");
        if uid {
            out.text(" UID");
        }
        if let (Some(first), Some(last)) = (found.first(), found.last()) {
            if options.min {
                out.text(" MIN ").num(number(first));
            }
            if options.max {
                out.text(" MAX ").num(number(last));
            }
        }
        if options.count {
            out.text(" COUNT ").num(found.len());
        }
        if options.all && !found.is_empty() {
            let numbers: Vec<u32> = found.iter().map(number).collect();
            out.text(" ALL ").text(&seqset::compact(&numbers));
        }
        let part = options.partial.map(|range| (range, partial(found, range)));
        if let Some(((first, last), part)) = &part {
            out.text(" PARTIAL (")
                .num(*first)
                .text(":")
                .num(*last)
                .text(" ");
            if part.is_empty() {
                out.text("NIL)");
            } else {
                let numbers: Vec<u32> = part.iter().map(number).collect();
                out.text(&seqset::compact(&numbers)).text(")");
            }
        }
        if modseq {
            let highest = if options.all || options.count {
                found.iter().map(|(_, r)| r.modseq).max()
            } else {
                let ends = [
                    options.min.then(|| found.first()).flatten(),
                    options.max.then(|| found.last()).flatten(),
                ];
                let part = part.as_ref().map(|(_, p)| *p).unwrap_or_default();
                ends.into_iter()
                    .flatten()
                    .chain(part)
                    .map(|(_, r)| r.modseq)
                    .max()
            };
            if let Some(m) = highest {
                out.text(" MODSEQ ").num(m);
            }
        }
        out.crlf();
    }

    pub(super) async fn sort(
        &mut self,
        criteria: Vec1<SortCriterion>,
        charset: Charset<'static>,
        search: Vec1<SearchKey<'static>>,
        uid: bool,
    ) -> CmdResult {
        let esearch = self.esearch.take();
        let save = esearch.as_ref().is_some_and(|(_, o)| o.save);
        if !charset_ok(Some(&charset)) {
            if save {
                self.clear_saved();
            }
            return Ok(Reply::no(
                "[BADCHARSET (UTF-8 US-ASCII)] unsupported charset",
            ));
        }
        if let Some(reply) = self.refuse_update(esearch.as_ref()) {
            return Ok(reply);
        }
        let criteria = criteria.into_inner();
        let kept = esearch
            .as_ref()
            .is_some_and(|(_, o)| o.update)
            .then(|| (criteria.clone(), search.clone()));
        let (addresses, subject) = sort_needs(&criteria);
        let (found, modseq) = match self.matches(search, addresses, subject, None).await {
            Ok(m) => m,
            Err(e) => {
                if save {
                    self.clear_saved();
                }
                return Err(e.into());
            }
        };
        if modseq {
            self.condstore = true;
        }
        let found = sorted(&criteria, found);
        // ESORT (RFC 5267 §3): the ESEARCH response, MIN and MAX the first and last in sort
        // order and ALL the sorted numbers, ranges only where they ascend one by one.
        if let Some((tag, options)) = esearch {
            if options.save {
                // Saved as a set of messages (RFC 5182 §2.1); MIN and MAX alone name the
                // first and last in sort order, so that is what they save.
                self.save_result(options, &found);
            }
            if options.answers() {
                self.write_esearch(&tag, options, uid, &found, modseq);
            }
            if let Some((criteria, search)) = kept {
                self.keep_context(tag, uid, Some(criteria), Some(search), &found);
            }
            return Ok(Reply::ok("SORT completed"));
        }
        let mut line = String::from("SORT");
        for (seq, row) in &found {
            line.push(' ');
            line.push_str(&(if uid { row.uid } else { *seq }).to_string());
        }
        self.out.untagged(&line);
        Ok(Reply::ok("SORT completed"))
    }
}

/// The matches at positions `first` to `last` (1-based, inclusive) of `found`, for PARTIAL
/// (RFC 5267 §4.4): empty when the range starts past the end.
fn partial(found: &[(u32, SearchRow)], (first, last): (u32, u32)) -> &[(u32, SearchRow)] {
    let start = (first as usize).saturating_sub(1).min(found.len());
    let end = (last as usize).min(found.len()).max(start);
    found.get(start..end).unwrap_or_default()
}

/// What a sort needs loaded beside the search row: (the parsed envelope's addresses, the
/// decoded subject).
pub(super) fn sort_needs(criteria: &[SortCriterion]) -> (bool, bool) {
    let addresses = criteria.iter().any(|c| {
        matches!(
            c.key,
            SortKey::From | SortKey::To | SortKey::Cc | SortKey::DisplayFrom | SortKey::DisplayTo
        )
    });
    let subject = criteria.iter().any(|c| matches!(c.key, SortKey::Subject));
    (addresses, subject)
}

/// `found` in the order of the sort criteria (RFC 5256), ties by sequence number.
pub(super) fn sorted(
    criteria: &[SortCriterion],
    found: Vec<(u32, SearchRow)>,
) -> Vec<(u32, SearchRow)> {
    let subject = sort_needs(criteria).1;
    let empty = Envelope::default();
    // Base subjects (RFC 5256 §2.1) once per message, not once per comparison.
    let mut keyed: Vec<_> = found
        .into_iter()
        .map(|item| (subject.then(|| base_subject(&item.1.subject)), item))
        .collect();
    keyed.sort_by(|(base_a, (sa, a)), (base_b, (sb, b))| {
        let (ea, eb) = (
            a.envelope.as_ref().unwrap_or(&empty),
            b.envelope.as_ref().unwrap_or(&empty),
        );
        for c in criteria {
            let ord = match c.key {
                SortKey::Arrival => a.internal_date.cmp(&b.internal_date),
                SortKey::Date => a
                    .header_date
                    .unwrap_or(a.internal_date)
                    .cmp(&b.header_date.unwrap_or(b.internal_date)),
                SortKey::Size => a.size.cmp(&b.size),
                SortKey::Subject => base_a.cmp(base_b),
                SortKey::From | SortKey::DisplayFrom => {
                    first_mailbox(&ea.from).cmp(&first_mailbox(&eb.from))
                }
                SortKey::To | SortKey::DisplayTo => {
                    first_mailbox(&ea.to).cmp(&first_mailbox(&eb.to))
                }
                SortKey::Cc => first_mailbox(&ea.cc).cmp(&first_mailbox(&eb.cc)),
            };
            let ord = if c.reverse { ord.reverse() } else { ord };
            if ord.is_ne() {
                return ord;
            }
        }
        sa.cmp(sb)
    });
    keyed.into_iter().map(|(_, item)| item).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_subjects() {
        for (subject, base) in [
            ("Re: Fwd: [list] Hello \t World (fwd)", "HELLO WORLD"),
            ("RE: re: x", "X"),
            ("[only]", "[ONLY]"),
            ("[only]  ", "[ONLY]"),
            // subj-refwd: white space and a blob between the word and the colon.
            ("Re [PATCH]: x", "X"),
            ("re : x", "X"),
            ("Fw:x", "X"),
            ("[a][b] Re: c", "C"),
            ("[a] [b] c", "C"),
            ("Reply to you", "REPLY TO YOU"),
            ("Re: ", ""),
            // Trailers repeatedly, white space included.
            ("x (fwd) (FWD)  (Fwd)", "X"),
            // [fwd: ...] wrappers, then everything again inside.
            ("[fwd: Re: hello]", "HELLO"),
            ("Re: [Fwd: [list] x (fwd)]", "X"),
            ("[fwd: [fwd: y]]", "Y"),
            ("[fwd: x", "[FWD: X"),
            // Unclosed or nested brackets are no blobs.
            ("[unclosed", "[UNCLOSED"),
            ("[a[b] c", "[A[B] C"),
            // Only ASCII letters are folded (i;ascii-casemap).
            ("ébène", "éBèNE"),
        ] {
            assert_eq!(base_subject(subject), base, "{subject:?}");
        }
        // i;ascii-casemap: '[' and '_' after the letters, lower case or not.
        let mut keys: Vec<String> = ["_a", "b", "A", "[c", "Z"]
            .into_iter()
            .map(base_subject)
            .collect();
        keys.sort();
        assert_eq!(keys, ["A", "B", "Z", "[C", "_A"]);
    }

    #[test]
    fn written_days() {
        // Midnights UTC of 2007-03-24 and 2007-03-25.
        // The UTC midnight that starts a civil date (days from 1970-01-01, proleptic
        // Gregorian), computed here rather than written down.
        let day = |y: i64, m: i64, d: i64| {
            let y = if m <= 2 { y - 1 } else { y };
            let era = y.div_euclid(400);
            let yoe = y - era * 400;
            let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
            let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
            Some((era * 146_097 + doe - 719_468) * DAY)
        };
        // RFC 3501 §6.4.4's example: the 25th, although 24 Mar 22:30 UTC.
        assert_eq!(
            written_day(b"Sun, 25 Mar 2007 00:30 +0200"),
            day(2007, 3, 25)
        );
        assert_eq!(
            written_day(b"Sat, 24 Mar 2007 23:30 -0500"),
            day(2007, 3, 24)
        );
        assert_eq!(written_day(b"24 Mar 2007 23:59:59 -2359"), day(2007, 3, 24));
        assert_eq!(written_day(b"nonsense"), None);
        assert_eq!(written_day(b"\xff"), None);
    }

    #[test]
    fn doubt_only_near_the_compared_days() {
        let d = 100 * DAY;
        // Every zone moves an instant by less than a day: more than a day before the day's
        // start or after its end, the UTC day decides.
        assert!(!sent_day_in_doubt(d - DAY, &[d]));
        assert!(sent_day_in_doubt(d - DAY + 1, &[d]));
        assert!(sent_day_in_doubt(d + 2 * DAY - 1, &[d]));
        assert!(!sent_day_in_doubt(d + 2 * DAY, &[d]));
        assert!(sent_day_in_doubt(d + 10 * DAY, &[d, d + 10 * DAY]));
        assert!(!sent_day_in_doubt(i64::MIN, &[i64::MIN / 2]));
        assert!(!sent_day_in_doubt(0, &[]));
    }

    #[test]
    fn headers() {
        let h = b"From: a@b\r\nX-Spam: yes\r\n  really\r\nSubject: s\r\n\r\n";
        assert!(header_matches(h, "x-spam", "YES REALLY"));
        assert!(header_matches(h, "subject", ""));
        assert!(!header_matches(h, "to", ""));
        assert!(!header_matches(h, "from", "c@d"));
    }

    #[test]
    fn days() {
        assert_eq!(day_of(DAY + 5), DAY);
        assert_eq!(day_of(-5), -DAY);
    }
}
