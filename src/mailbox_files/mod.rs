//! `mailroom import` and `mailroom export`: an account's mail from and to files.
//!
//! Import reads an mbox file, a directory of mbox files (what export writes; also Thunderbird's
//! `Folder.sbd/` layout), or a Maildir tree (see [`maildir`]), and stores every message through
//! the one delivery path (`Store::deliver_atomic`) into the mailbox of the same name, created
//! when missing, with its flags and internal date. Choices:
//!
//! - **Idempotent.** A message already in its mailbox (same Message-ID, internal date and
//!   size; see `store::Fingerprint`) is skipped, so an interrupted or repeated import only adds
//!   what is missing. The check is per mailbox: a message the user has since moved elsewhere
//!   is imported again.
//! - **Internal dates** come from the mbox `From ` line or the Maildir file (see the modules),
//!   then the `Date:` field, then the file's modification time: always something stable, so a
//!   second run computes the same fingerprint.
//! - **Quota** applies as to any delivery: the import stops at the first message that does
//!   not fit and says how far it got.
//! - A message file that cannot be read (a live Maildir moves files from `new/` to `cur/`) is
//!   counted as failed and the import goes on; running it again picks the file up.
//! - Messages are stored one at a time, in file order, so UIDs follow that order. Files are read
//!   with blocking I/O: this is a command-line task, alone in its process.
//!
//! Export writes one mbox file per mailbox (see [`mbox`]) under a directory: `INBOX.mbox`,
//! `Work/2026.mbox`, … Each file is written as `NAME.mbox.partial` and renamed when complete,
//! and an existing file is never overwritten. The account's address book goes along as
//! `contacts.vcf` (vCard 3.0, [`crate::vcard`]), and an import of a directory reads it back.

pub mod maildir;
pub mod mbox;

use std::collections::{HashMap, HashSet};
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

use crate::store::{Delivery, Fingerprint, Flags, Mailbox, Store, StoreError, Target};

#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("account {0} not found")]
    NoAccount(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("after {imported} messages: {source}")]
    Stopped { imported: u64, source: StoreError },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> FilesError + '_ {
    move |source| FilesError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where an import is, for a progress line.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    pub mailbox: &'a str,
    pub imported: u64,
    pub skipped: u64,
}

/// The address book's file in an export directory.
pub const CONTACTS_FILE: &str = "contacts.vcf";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Contacts added or updated from `contacts.vcf`.
    pub contacts: u64,
    pub imported: u64,
    /// Already there (same Message-ID, date and size).
    pub skipped: u64,
    /// Files that could not be read, with why.
    pub failed: Vec<String>,
    pub bytes: u64,
    /// Mailboxes that did not exist before.
    pub created: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportSummary {
    /// Contacts written to `contacts.vcf`.
    pub contacts: u64,
    pub mailboxes: u64,
    pub messages: u64,
    pub bytes: u64,
}

/// One source of messages and the mailbox it goes to.
enum Source {
    Mbox(PathBuf),
    Maildir(PathBuf),
}

/// Imports `path` into the account `address`. `into`: for one mbox file, the mailbox to fill
/// (INBOX by default); for a directory, the mailbox under which its tree goes (its INBOX
/// becomes `into` itself).
pub async fn import(
    store: &Store,
    address: &str,
    path: &Path,
    into: Option<&str>,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<ImportSummary, FilesError> {
    let account = store
        .account_by_address(address)
        .await?
        .ok_or_else(|| FilesError::NoAccount(address.trim().to_string()))?;
    let plan = plan(path, into)?;
    let mut summary = ImportSummary::default();
    let mut importer = Importer {
        store,
        account_id: account.id,
        summary: &mut summary,
        progress,
    };
    for (mailbox, source) in plan {
        importer.source(&mailbox, source).await?;
    }
    let contacts = path.join(CONTACTS_FILE);
    if path.is_dir() && contacts.is_file() {
        import_contacts(store, account.id, &contacts, &mut summary).await?;
    }
    Ok(summary)
}

/// Reads an exported address book back: the cards that can be used are added (or update the
/// contact with the same address); the others are counted as failed, with why.
async fn import_contacts(
    store: &Store,
    account_id: i64,
    path: &Path,
    summary: &mut ImportSummary,
) -> Result<(), FilesError> {
    let size = std::fs::metadata(path).map_err(io_error(path))?.len();
    if size > crate::vcard::MAX_FILE as u64 {
        summary.failed.push(format!(
            "{}: larger than {} bytes",
            path.display(),
            crate::vcard::MAX_FILE
        ));
        return Ok(());
    }
    let bytes = std::fs::read(path).map_err(io_error(path))?;
    let text = String::from_utf8_lossy(&bytes);
    let parsed = crate::vcard::parse(&text);
    for e in parsed.errors {
        summary.failed.push(format!("{}: {e}", path.display()));
    }
    let mut good = Vec::new();
    for (n, card) in parsed.cards {
        let fields = crate::store::ContactFields {
            name: card.name,
            emails: card.emails,
            phones: card.phones,
            org: card.org,
            note: card.note,
        };
        match fields.checked() {
            Ok(f) => good.push(f),
            Err(e) => summary
                .failed
                .push(format!("{}: card {n}: {e}", path.display())),
        }
    }
    let (added, updated) = store.import_contacts(account_id, &good).await?;
    summary.contacts = (added + updated) as u64;
    Ok(())
}

/// What to import from where, in order.
fn plan(path: &Path, into: Option<&str>) -> Result<Vec<(String, Source)>, FilesError> {
    let meta = std::fs::metadata(path).map_err(io_error(path))?;
    if meta.is_file() {
        let mailbox = into.map_or("INBOX".to_string(), normalize);
        return Ok(vec![(mailbox, Source::Mbox(path.to_path_buf()))]);
    }
    let under = |name: String| match into {
        None => name,
        Some(parent) if name == "INBOX" => normalize(parent),
        Some(parent) => format!("{}/{name}", normalize(parent)),
    };
    let folders = maildir::folders(path).map_err(io_error(path))?;
    if !folders.is_empty() {
        return Ok(folders
            .into_iter()
            .map(|f| (under(f.mailbox), Source::Maildir(f.path)))
            .collect());
    }
    let mut files = Vec::new();
    mbox_files(path, &[], 0, &mut files).map_err(io_error(path))?;
    if files.is_empty() {
        return Err(FilesError::Invalid(format!(
            "{} holds no Maildir folder (cur/, new/) and no mbox file",
            path.display()
        )));
    }
    Ok(files
        .into_iter()
        .map(|(name, file)| (under(name), Source::Mbox(file)))
        .collect())
}

/// INBOX whatever its case, as IMAP has it; other names as given.
fn normalize(name: &str) -> String {
    if name.eq_ignore_ascii_case("INBOX") {
        "INBOX".into()
    } else {
        name.to_string()
    }
}

/// The mbox files under `dir`: files named `*.mbox`, or any file that starts with `From `.
/// The mailbox name is the path below `dir` without `.mbox` (and without Thunderbird's `.sbd`
/// on directories), each level decoded (see [`encode_level`]).
fn mbox_files(
    dir: &Path,
    parents: &[String],
    depth: usize,
    out: &mut Vec<(String, PathBuf)>,
) -> std::io::Result<()> {
    let mut entries: Vec<(String, PathBuf, bool)> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name.ends_with(".partial") {
            continue;
        }
        entries.push((name, path.clone(), path.is_dir()));
    }
    entries.sort();
    for (name, path, is_dir) in entries {
        if is_dir {
            if depth < 32 {
                let level = decode_level(name.strip_suffix(".sbd").unwrap_or(&name));
                let mut levels = parents.to_vec();
                levels.push(level);
                mbox_files(&path, &levels, depth + 1, out)?;
            }
            continue;
        }
        let stem = match name.strip_suffix(".mbox") {
            Some(stem) => stem,
            None if starts_with_from(&path) => &name,
            None => continue,
        };
        let mut levels = parents.to_vec();
        levels.push(decode_level(stem));
        out.push((normalize(&levels.join("/")), path));
    }
    Ok(())
}

fn starts_with_from(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 5];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head == b"From "
}

/// A mailbox level as a file name: `%` and a leading `.` are %-encoded so that no level is
/// hidden, `.` or `..`.
pub fn encode_level(level: &str) -> String {
    let mut out = String::with_capacity(level.len());
    for (i, c) in level.chars().enumerate() {
        match c {
            '%' => out.push_str("%25"),
            '.' if i == 0 => out.push_str("%2E"),
            c => out.push(c),
        }
    }
    out
}

/// The reverse of [`encode_level`]; a `%` not followed by two hex digits stays as it is.
pub fn decode_level(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| name.to_string())
}

/// Lines ending in LF become CRLF; CRLF stays; a last line without an end gets CRLF.
pub fn to_crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 40 + 2);
    let mut rest = raw;
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let (line, tail) = rest.split_at(end);
        rest = tail;
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn mtime(path: &Path) -> Option<i64> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    let secs = match modified.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).ok()?,
        Err(before) => -i64::try_from(before.duration().as_secs()).ok()?,
    };
    Some(secs)
}

struct Importer<'a> {
    store: &'a Store,
    account_id: i64,
    summary: &'a mut ImportSummary,
    progress: &'a mut dyn FnMut(Progress<'_>),
}

/// A message ready to store.
struct Incoming {
    raw: Vec<u8>,
    internal_date: i64,
    flags: Flags,
    keywords: Vec<String>,
}

impl Importer<'_> {
    async fn source(&mut self, mailbox: &str, source: Source) -> Result<(), FilesError> {
        let target = self.mailbox(mailbox).await?;
        let mut known = self.store.fingerprints(&target).await?;
        match source {
            Source::Mbox(path) => {
                let file = std::fs::File::open(&path).map_err(io_error(&path))?;
                let file_time = mtime(&path).unwrap_or_else(crate::store::now);
                let mut reader = mbox::Reader::new(BufReader::new(file));
                while let Some(m) = reader.next_message().map_err(io_error(&path))? {
                    let internal_date = m
                        .from_date
                        .or_else(|| crate::mime::identity(&m.raw).1)
                        .unwrap_or(file_time);
                    let incoming = Incoming {
                        raw: m.raw,
                        internal_date,
                        flags: m.flags,
                        keywords: m.keywords,
                    };
                    self.store_one(mailbox, &target, &mut known, incoming)
                        .await?;
                }
            }
            Source::Maildir(path) => {
                for entry in maildir::entries(&path).map_err(io_error(&path))? {
                    let raw = match std::fs::read(&entry.path) {
                        Ok(raw) => to_crlf(&raw),
                        Err(e) => {
                            self.summary
                                .failed
                                .push(format!("{}: {e}", entry.path.display()));
                            continue;
                        }
                    };
                    let internal_date = mtime(&entry.path)
                        .or(entry.name_time)
                        .or_else(|| crate::mime::identity(&raw).1)
                        .unwrap_or_else(crate::store::now);
                    let incoming = Incoming {
                        raw,
                        internal_date,
                        flags: entry.flags,
                        keywords: Vec::new(),
                    };
                    self.store_one(mailbox, &target, &mut known, incoming)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// The mailbox, creating it (and its parents) when missing.
    async fn mailbox(&mut self, name: &str) -> Result<Mailbox, FilesError> {
        if let Some(m) = self.store.mailbox(self.account_id, name).await? {
            return Ok(m);
        }
        // The parents that creating it will create too, to report them.
        let mut missing = Vec::new();
        for (i, _) in name.match_indices('/') {
            let parent = name.get(..i).unwrap_or_default();
            if self.store.mailbox(self.account_id, parent).await?.is_none() {
                missing.push(parent.to_string());
            }
        }
        let created = self
            .store
            .create_mailbox_path(self.account_id, name)
            .await
            .map_err(|e| match e {
                StoreError::Invalid(why) => {
                    FilesError::Invalid(format!("cannot create mailbox {name:?}: {why}"))
                }
                e => FilesError::Store(e),
            })?;
        // Imported folders are subscribed, as a client copying them in would, so clients
        // showing only subscribed folders show them (CREATE itself subscribes nothing).
        for made in missing.iter().chain(std::iter::once(&created.name)) {
            self.store.subscribe_name(self.account_id, made).await?;
        }
        self.summary.created.extend(missing);
        self.summary.created.push(created.name.clone());
        Ok(created)
    }

    async fn store_one(
        &mut self,
        mailbox: &str,
        target: &Mailbox,
        known: &mut HashSet<Fingerprint>,
        m: Incoming,
    ) -> Result<(), FilesError> {
        let fingerprint = Fingerprint::of(&m.raw, m.internal_date);
        if known.contains(&fingerprint) {
            self.summary.skipped += 1;
        } else {
            let target = Target::mailbox(target).with_flags(m.flags, m.keywords);
            let delivery = Delivery {
                raw: &m.raw,
                internal_date: Some(m.internal_date),
            };
            if let Err(source) = self.store.deliver_atomic(delivery, &[target]).await {
                return Err(FilesError::Stopped {
                    imported: self.summary.imported,
                    source,
                });
            }
            known.insert(fingerprint);
            self.summary.imported += 1;
            self.summary.bytes += m.raw.len() as u64;
        }
        (self.progress)(Progress {
            mailbox,
            imported: self.summary.imported,
            skipped: self.summary.skipped,
        });
        Ok(())
    }
}

/// Writes every mailbox of `address` as an mbox file under `dir` (created if needed).
pub async fn export(store: &Store, address: &str, dir: &Path) -> Result<ExportSummary, FilesError> {
    let account = store
        .account_by_address(address)
        .await?
        .ok_or_else(|| FilesError::NoAccount(address.trim().to_string()))?;
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    let mut summary = ExportSummary::default();
    for mailbox in store.mailboxes(account.id).await? {
        let levels: Vec<String> = mailbox.name.split('/').map(encode_level).collect();
        let mut path = dir.to_path_buf();
        for level in &levels {
            path.push(level);
        }
        let path = path.with_file_name(format!(
            "{}.mbox",
            levels.last().map_or("INBOX", String::as_str)
        ));
        if path.exists() {
            return Err(FilesError::Invalid(format!(
                "{} exists; export into a new or empty directory",
                path.display()
            )));
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io_error(parent))?;
        }
        let partial = PathBuf::from(format!("{}.partial", path.display()));
        let file = std::fs::File::create(&partial).map_err(io_error(&partial))?;
        let mut out = BufWriter::new(file);
        // The metadata first, then the bodies: a message delivered in between has no
        // metadata here and waits for the next export.
        let metas: HashMap<u32, _> = store
            .messages(&mailbox)
            .await?
            .into_iter()
            .map(|m| (m.uid, m))
            .collect();
        let mut bodies = store.message_bodies(&mailbox);
        use futures::StreamExt;
        while let Some(row) = bodies.next().await {
            let (uid, raw) = row?;
            let Some(meta) = metas.get(&uid) else {
                continue;
            };
            mbox::write_message(
                &mut out,
                &raw,
                meta.internal_date,
                meta.flags,
                &meta.keywords,
            )
            .map_err(io_error(&partial))?;
            summary.messages += 1;
            summary.bytes += raw.len() as u64;
        }
        let file = out.into_inner().map_err(|e| FilesError::Io {
            path: partial.clone(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(io_error(&partial))?;
        drop(file);
        std::fs::rename(&partial, &path).map_err(io_error(&path))?;
        summary.mailboxes += 1;
    }
    let contacts = store.all_contacts(account.id).await?;
    if !contacts.is_empty() {
        let path = dir.join(CONTACTS_FILE);
        if path.exists() {
            return Err(FilesError::Invalid(format!(
                "{} exists; export into a new or empty directory",
                path.display()
            )));
        }
        let cards: Vec<crate::vcard::Card> = contacts
            .iter()
            .map(|c| crate::vcard::Card {
                name: c.fields.name.clone(),
                emails: c.fields.emails.clone(),
                phones: c.fields.phones.clone(),
                org: c.fields.org.clone(),
                note: c.fields.note.clone(),
            })
            .collect();
        let partial = dir.join(format!("{CONTACTS_FILE}.partial"));
        std::fs::write(&partial, crate::vcard::write(&cards)).map_err(io_error(&partial))?;
        std::fs::File::open(&partial)
            .and_then(|f| f.sync_all())
            .map_err(io_error(&partial))?;
        std::fs::rename(&partial, &path).map_err(io_error(&path))?;
        summary.contacts = contacts.len() as u64;
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_ends() {
        assert_eq!(to_crlf(b"a\nb\r\n\nc"), b"a\r\nb\r\n\r\nc\r\n");
        assert_eq!(to_crlf(b""), b"");
        assert_eq!(to_crlf(b"lone\rcr\n"), b"lone\rcr\r\n");
    }

    #[test]
    fn levels() {
        for (name, file) in [
            ("Work", "Work"),
            (".hidden", "%2Ehidden"),
            ("..", "%2E."),
            ("100%", "100%25"),
            ("a.b", "a.b"),
        ] {
            assert_eq!(encode_level(name), file);
            assert_eq!(decode_level(file), name);
        }
        assert_eq!(decode_level("50%off"), "50%off");
        assert_eq!(decode_level("%zz%"), "%zz%");
    }
}
