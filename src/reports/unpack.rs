//! Bounded decompression of report attachments: gzip and zip, never more than a limit out,
//! whatever the archive claims. A gzip or zip bomb costs at most the limit (and the time to
//! inflate it); a zip with many entries is refused before any is read.

use std::io::{Cursor, Read};

/// Decompressed bytes taken from one attachment at most (RFC 7489 reports of large senders
/// are a few MiB; 20 MiB leaves room).
pub const MAX_UNPACKED: usize = 20 << 20;
/// Entries a zip attachment may have (a report zip holds one XML file).
pub const MAX_ZIP_ENTRIES: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnpackError {
    /// More than the limit would come out.
    TooLarge,
    /// Not a gzip or zip of what it says, or too many entries.
    Broken(String),
}

impl std::fmt::Display for UnpackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnpackError::TooLarge => write!(f, "more than {MAX_UNPACKED} bytes decompressed"),
            UnpackError::Broken(why) => f.write_str(why),
        }
    }
}

/// Reads at most `limit` bytes from `reader`; one more is an error.
fn capped(reader: impl Read, limit: usize) -> Result<Vec<u8>, UnpackError> {
    let mut out = Vec::new();
    let limit = u64::try_from(limit).unwrap_or(u64::MAX);
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| UnpackError::Broken(e.to_string()))?;
    if u64::try_from(out.len()).unwrap_or(u64::MAX) > limit {
        return Err(UnpackError::TooLarge);
    }
    Ok(out)
}

/// The content of a gzip file (several members read as one, as `gunzip` does).
pub fn gunzip(data: &[u8], limit: usize) -> Result<Vec<u8>, UnpackError> {
    capped(flate2::read::MultiGzDecoder::new(data), limit)
}

/// The first entry of a zip file whose name ends in `.xml` (or its first entry).
pub fn unzip(data: &[u8], limit: usize) -> Result<Vec<u8>, UnpackError> {
    let mut archive =
        zip::ZipArchive::new(Cursor::new(data)).map_err(|e| UnpackError::Broken(e.to_string()))?;
    if archive.len() > MAX_ZIP_ENTRIES {
        return Err(UnpackError::Broken(format!(
            "{} entries in the zip file",
            archive.len()
        )));
    }
    let names: Vec<String> = archive.file_names().map(str::to_string).collect();
    let index = names
        .iter()
        .position(|n| n.to_ascii_lowercase().ends_with(".xml"))
        .unwrap_or(0);
    let entry = archive
        .by_index(index)
        .map_err(|e| UnpackError::Broken(e.to_string()))?;
    capped(entry, limit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, data) in entries {
            w.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn gzip_comes_back() {
        assert_eq!(gunzip(&gzip(b"<feedback/>"), 100).unwrap(), b"<feedback/>");
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_limit() {
        // 64 MiB of zeros packs into about 64 KiB; reading stops one byte past the limit.
        let bomb = gzip(&vec![0u8; 64 << 20]);
        assert!(bomb.len() < 200_000, "{}", bomb.len());
        assert_eq!(gunzip(&bomb, MAX_UNPACKED), Err(UnpackError::TooLarge));
        assert_eq!(gunzip(&bomb, 1000), Err(UnpackError::TooLarge));
    }

    #[test]
    fn a_zip_bomb_stops_at_the_limit() {
        let zeros = vec![0u8; 32 << 20];
        let bomb = zip_of(&[("report.xml", &zeros)]);
        assert_eq!(unzip(&bomb, 1 << 20), Err(UnpackError::TooLarge));
    }

    #[test]
    fn the_xml_entry_of_a_zip_is_read_and_many_entries_are_refused() {
        let z = zip_of(&[("readme.txt", b"hi"), ("r.xml", b"<feedback/>")]);
        assert_eq!(unzip(&z, 100).unwrap(), b"<feedback/>");
        let many: Vec<(String, &[u8])> = (0..10).map(|i| (format!("{i}.xml"), &b"x"[..])).collect();
        let many: Vec<(&str, &[u8])> = many.iter().map(|(n, d)| (n.as_str(), *d)).collect();
        assert!(matches!(
            unzip(&zip_of(&many), 100),
            Err(UnpackError::Broken(_))
        ));
    }

    #[test]
    fn garbage_is_broken_not_a_crash() {
        assert!(matches!(
            gunzip(b"not gzip", 100),
            Err(UnpackError::Broken(_))
        ));
        assert!(matches!(
            unzip(b"not zip", 100),
            Err(UnpackError::Broken(_))
        ));
    }
}
