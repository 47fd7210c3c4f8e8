//! The process's own memory, given back when the server is quiet (`app::release_when_quiet`;
//! the store's caches are `store::memory`).
//!
//! Two parts. The heap: glibc keeps freed memory in its per-thread arenas, `malloc_trim`
//! returns it. The code: the binary is large (about 24 MB of machine code, 10 MB of read-only
//! data), and once the start, a burst of mail and the protocols have run, most of it is mapped
//! into the process, because every page fault maps the 64 KiB around it from the page cache.
//! That was 25 of the 30 MiB an idle server's PSS counted (`bench/compare`'s memory rows).
//! An idle server runs a few timers, so those mappings are dropped (`MADV_DONTNEED`): the pages
//! stay in the page cache, which the kernel may reclaim like any cached file, and the next
//! request maps the ones it runs again (minor faults, no disk read while they are cached).
//!
//! Only mappings of our own executable that are not writable and hold no private page are
//! dropped: their content is exactly the file's, so dropping loses nothing. The relocated
//! read-only data (RELRO) holds private pages (the relocations written at start), and so does
//! code a debugger or a uprobe has put a breakpoint into; both are left alone.

use std::ops::Range;

/// Returns free heap to the system and unmaps the executable's clean code and read-only data.
/// Failures change nothing and are only logged: this is an economy, not a duty.
pub fn release() {
    trim_heap();
    if let Err(e) = drop_code_pages() {
        tracing::debug!("cannot release the code's pages: {e}");
    }
}

/// Returns the free memory of every malloc arena to the system (glibc).
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; glibc allows it at any time, from any
    // thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(target_os = "linux")]
fn drop_code_pages() -> std::io::Result<()> {
    let exe = std::fs::read_link("/proc/self/exe")?;
    let smaps = std::fs::read_to_string("/proc/self/smaps")?;
    let exe = exe.to_string_lossy();
    for range in droppable(&smaps, &exe) {
        let len = range.end.saturating_sub(range.start);
        // SAFETY: the range is a whole mapping of the executable, read-only and without a
        // private page (`droppable`), so every page of it is the file's content: after
        // MADV_DONTNEED the next access maps the same bytes from the page cache again. Code
        // running in it (this very function included) faults its page back in.
        let done =
            unsafe { libc::madvise(range.start as *mut libc::c_void, len, libc::MADV_DONTNEED) };
        if done != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn drop_code_pages() -> std::io::Result<()> {
    Ok(())
}

/// The address ranges of `/proc/self/smaps` (as `smaps`) that map the file `exe`, are not
/// writable and have no anonymous (private, written) page.
fn droppable(smaps: &str, exe: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    // The mapping being read: its range, if it is a candidate so far.
    let mut current: Option<Range<usize>> = None;
    for line in smaps.lines() {
        if let Some(mapping) = mapping_line(line) {
            current = (mapping.path == exe && !mapping.writable).then_some(mapping.range);
        } else if let Some(kib) = line.strip_prefix("Anonymous:") {
            let private = kib.trim().trim_end_matches("kB").trim() != "0";
            if let Some(range) = current.take()
                && !private
            {
                out.push(range);
            }
        }
    }
    out
}

struct Mapping<'a> {
    range: Range<usize>,
    writable: bool,
    path: &'a str,
}

/// A mapping's first line: `start-end perms offset dev inode path`, or `None` for the field
/// lines (`Rss:`, `Anonymous:`, …) that follow it.
fn mapping_line(line: &str) -> Option<Mapping<'_>> {
    let mut fields = line.splitn(6, ' ');
    let (start, end) = fields.next()?.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    let perms = fields.next()?;
    if perms.len() != 4 {
        return None;
    }
    let _offset = fields.next()?;
    let _device = fields.next()?;
    let _inode = fields.next()?;
    let path = fields.next().unwrap_or("").trim_start();
    Some(Mapping {
        range: start..end,
        writable: perms.contains('w'),
        path,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
5612cc9a6000-5612cd305000 r--p 00000000 fe:00 2162689                    /usr/bin/mailroom
Size:               9596 kB
Rss:                4224 kB
Anonymous:             0 kB
VmFlags: rd mr mw me dw sd
5612cd305000-5612cea15000 r-xp 0095e000 fe:00 2162689                    /usr/bin/mailroom
Size:              23616 kB
Anonymous:             0 kB
5612cea15000-5612ceb3a000 r--p 0206d000 fe:00 2162689                    /usr/bin/mailroom
Anonymous:          1172 kB
5612ceb3a000-5612ceb45000 rw-p 02191000 fe:00 2162689                    /usr/bin/mailroom
Anonymous:             0 kB
5612ceb45000-5612ceb48000 rw-p 00000000 00:00 0 
Anonymous:             8 kB
7f48a0e00000-7f48a0e28000 r-xp 00028000 fe:00 1234                       /usr/lib/x86_64-linux-gnu/libc.so.6
Anonymous:             0 kB
7f48a0f00000-7f48a0f28000 r-xp 00000000 fe:00 99                         /usr/bin/mailroom (deleted)
Anonymous:             0 kB
";

    /// The code and the plain read-only data go; the relocated data (private pages), the
    /// writable data, anonymous memory and other files stay.
    #[test]
    fn only_clean_read_only_mappings_of_the_executable() {
        let ranges = droppable(SMAPS, "/usr/bin/mailroom");
        assert_eq!(
            ranges,
            vec![
                0x5612cc9a6000..0x5612cd305000,
                0x5612cd305000..0x5612cea15000
            ]
        );
        // A binary replaced on disk while running is named so in both places.
        let ranges = droppable(SMAPS, "/usr/bin/mailroom (deleted)");
        assert_eq!(ranges, vec![0x7f48a0f00000..0x7f48a0f28000]);
        assert!(droppable(SMAPS, "/usr/bin/other").is_empty());
        assert!(droppable("", "/usr/bin/mailroom").is_empty());
    }

    /// A code breakpoint (a debugger's or a uprobe's) lives in a private copy of its page,
    /// which dropping would lose: such a mapping is kept whole.
    #[test]
    fn a_mapping_with_a_private_page_is_kept() {
        let smaps = "\
55d000000000-55d000100000 r-xp 00000000 fe:00 7 /srv/mailroom
Anonymous:             4 kB
";
        assert!(droppable(smaps, "/srv/mailroom").is_empty());
    }

    /// The test binary drops its own code and goes on running it.
    #[cfg(target_os = "linux")]
    #[test]
    fn code_runs_after_its_pages_are_dropped() {
        fn work(n: u64) -> u64 {
            (1..=n).map(|k| k * k % 7).sum()
        }
        let before = work(10_000);
        release();
        assert_eq!(work(10_000), before);
        let rendered = format!("{:?}", droppable(SMAPS, "/usr/bin/mailroom"));
        assert!(rendered.contains(".."));
    }
}
