//! Maildir trees, read for import.
//!
//! - A folder is a directory with `cur/` or `new/`. The top directory of the tree is INBOX.
//! - Maildir++ folders are the top's subdirectories named `.Sub.Folder` (mailbox
//!   `Sub/Folder`); their names are decoded from IMAP's modified UTF-7 when they are valid
//!   modified UTF-7, as Dovecot and Courier write them.
//! - Other subdirectories are plain nested folders (`Work/2026/cur` is mailbox `Work/2026`), as
//!   Dovecot's `LAYOUT=fs` and hand-made trees have them.
//! - Messages are the files of `cur/` and `new/`; `tmp/` holds deliveries in progress and is
//!   skipped, as are hidden files.
//! - Flags come from the `:2,` suffix of a name in `cur/`: S seen, R answered, F flagged,
//!   T deleted, D draft (lower-case letters are Dovecot keywords and are ignored: their
//!   names live in a `dovecot-keywords` file this importer does not read).
//! - The internal date is the file's modification time, as Dovecot keeps it (it sets the mtime
//!   to the date a message was received or appended); the time at the start of the file name
//!   is the fallback.

use std::path::{Path, PathBuf};

use crate::store::Flags;

/// Subdirectories of one folder deeper than this are not followed (a symlink loop ends here).
const MAX_DEPTH: usize = 32;

/// One Maildir folder of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    /// The mailbox name, levels separated by `/`; `INBOX` for the top.
    pub mailbox: String,
    pub path: PathBuf,
}

/// One message file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: PathBuf,
    pub flags: Flags,
    /// The delivery time at the start of the file name, Unix seconds.
    pub name_time: Option<i64>,
}

pub fn is_maildir(dir: &Path) -> bool {
    dir.join("cur").is_dir() || dir.join("new").is_dir()
}

/// Every folder of the tree at `root`, parents before children.
pub fn folders(root: &Path) -> std::io::Result<Vec<Folder>> {
    let mut out = Vec::new();
    walk(root, None, 0, &mut out)?;
    Ok(out)
}

fn walk(
    dir: &Path,
    name: Option<String>,
    depth: usize,
    out: &mut Vec<Folder>,
) -> std::io::Result<()> {
    if is_maildir(dir) {
        out.push(Folder {
            mailbox: name.clone().unwrap_or_else(|| "INBOX".into()),
            path: dir.to_path_buf(),
        });
    }
    if depth >= MAX_DEPTH {
        return Ok(());
    }
    let mut children: Vec<(String, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if matches!(file_name.as_str(), "cur" | "new" | "tmp") {
            continue;
        }
        children.push((file_name, path));
    }
    children.sort();
    for (file_name, path) in children {
        let levels: Vec<String> = match file_name.strip_prefix('.') {
            // Maildir++: dots separate the levels; empty levels mean nothing.
            Some(dotted) => dotted
                .split('.')
                .filter(|l| !l.is_empty())
                .map(decode_level)
                .collect(),
            None => vec![decode_level(&file_name)],
        };
        if levels.is_empty() {
            continue;
        }
        let child = match &name {
            Some(parent) => format!("{parent}/{}", levels.join("/")),
            None => levels.join("/"),
        };
        walk(&path, Some(child), depth + 1, out)?;
    }
    Ok(())
}

/// A folder level as written on disk: modified UTF-7 when it is that, else as it is.
fn decode_level(level: &str) -> String {
    crate::imap::utf7::decode_lenient(level.as_bytes()).unwrap_or_else(|| level.to_string())
}

/// The messages of one folder, in delivery order (by the time in their names, then by name).
pub fn entries(folder: &Path) -> std::io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    for sub in ["cur", "new"] {
        let dir = folder.join(sub);
        if !dir.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !entry.file_type()?.is_file() {
                continue;
            }
            out.push(Entry {
                flags: if sub == "cur" {
                    flags_of(&name)
                } else {
                    Flags::default()
                },
                name_time: name_time(&name),
                path: entry.path(),
            });
        }
    }
    out.sort_by(|a, b| (a.name_time, &a.path).cmp(&(b.name_time, &b.path)));
    Ok(out)
}

/// The flags of a file name's info part (`…:2,FRS`; `!` or `;` for `:` where a file system
/// forbids colons).
pub fn flags_of(name: &str) -> Flags {
    let Some(info) = [":2,", "!2,", ";2,"]
        .iter()
        .find_map(|sep| name.rsplit_once(sep).map(|(_, info)| info))
    else {
        return Flags::default();
    };
    let mut flags = Flags::default();
    for c in info.chars() {
        let flag = match c {
            'S' => Flags::SEEN,
            'R' => Flags::ANSWERED,
            'F' => Flags::FLAGGED,
            'T' => Flags::DELETED,
            'D' => Flags::DRAFT,
            _ => continue,
        };
        flags = flags.union(flag);
    }
    flags
}

/// The Unix time a Maildir file name starts with (`1795687200.M1P2.host:2,S`).
pub fn name_time(name: &str) -> Option<i64> {
    let digits: &str = name.split('.').next()?;
    if digits.is_empty() || digits.len() > 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_from_names() {
        assert_eq!(flags_of("1795687200.M1P2.host"), Flags::default());
        assert_eq!(flags_of("1795687200.M1P2.host:2,"), Flags::default());
        assert_eq!(
            flags_of("1795687200.M1P2.host,S=120:2,FRSab"),
            Flags::FLAGGED.union(Flags::ANSWERED).union(Flags::SEEN)
        );
        assert_eq!(
            flags_of("1795687200.x!2,DT"),
            Flags::DRAFT.union(Flags::DELETED)
        );
    }

    #[test]
    fn times_from_names() {
        assert_eq!(name_time("1795687200.M1P2.host:2,S"), Some(1795687200));
        assert_eq!(name_time("msg.1"), None);
        assert_eq!(name_time("99999999999999999999.x"), None);
    }

    #[test]
    fn trees() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for d in [
            "cur",
            "new",
            "tmp",
            ".Sent/cur",
            ".Work.2026/new",
            ".Entw&APw-rfe/cur",
            "Lists/rust/cur",
            "Lists/notes.txt.d",
            ".git/objects",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        let names: Vec<String> = folders(root)
            .unwrap()
            .into_iter()
            .map(|f| f.mailbox)
            .collect();
        assert_eq!(
            names,
            ["INBOX", "Entwürfe", "Sent", "Work/2026", "Lists/rust"]
        );
    }
}
