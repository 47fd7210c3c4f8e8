//! Processes: memory of a process tree (VmRSS and Pss from /proc), the effective uid, the
//! open-file limit, free ports, and the tail of a log file for error messages.

use std::collections::HashMap;
use std::path::Path;

/// Summed memory of a set of processes, in KiB.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mem {
    pub rss_kib: u64,
    pub pss_kib: u64,
    /// RssAnon: the private memory (heap, stacks, buffers), without mapped files. What an idle
    /// session adds is this; code pages it maps back in are the program's, not the session's.
    pub anon_kib: u64,
    pub procs: usize,
}

impl std::ops::Add for Mem {
    type Output = Mem;
    fn add(self, o: Mem) -> Mem {
        Mem {
            rss_kib: self.rss_kib + o.rss_kib,
            pss_kib: self.pss_kib + o.pss_kib,
            anon_kib: self.anon_kib + o.anon_kib,
            procs: self.procs + o.procs,
        }
    }
}

/// The value of `key:` (in kB) in a /proc file such as status or smaps_rollup.
fn kib(path: &Path, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find(|l| l.starts_with(key) && l[key.len()..].starts_with(':'))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Every process's parent, from /proc/PID/stat.
fn parents() -> HashMap<u32, u32> {
    let mut map = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return map;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
            map.insert(pid, ppid);
        }
    }
    map
}

/// `root` and all its descendants.
pub fn tree(root: u32) -> Vec<u32> {
    let parents = parents();
    let mut out = vec![root];
    let mut k = 0;
    while k < out.len() {
        let p = out[k];
        out.extend(parents.iter().filter(|&(_, pp)| *pp == p).map(|(c, _)| *c));
        k += 1;
    }
    out
}

/// The summed VmRSS and Pss of these processes (those that vanished in between count zero).
pub fn mem(pids: &[u32]) -> Mem {
    let mut m = Mem::default();
    for pid in pids {
        let dir = Path::new("/proc").join(pid.to_string());
        if let Some(rss) = kib(&dir.join("status"), "VmRSS") {
            m.rss_kib += rss;
            m.pss_kib += kib(&dir.join("smaps_rollup"), "Pss").unwrap_or(0);
            m.anon_kib += kib(&dir.join("status"), "RssAnon").unwrap_or(0);
            m.procs += 1;
        }
    }
    m
}

/// The command name of a process.
pub fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Pids of every process whose executable is `exe`.
pub fn pids_of(exe: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse::<u32>().ok()?;
            let link = std::fs::read_link(e.path().join("exe")).ok()?;
            (link == Path::new(exe)).then_some(pid)
        })
        .collect()
}

pub fn euid() -> Option<u32> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find(|l| l.starts_with("Uid:"))?
        .split_whitespace()
        .nth(2)?
        .parse()
        .ok()
}

#[repr(C)]
struct RLimit {
    cur: u64,
    max: u64,
}

unsafe extern "C" {
    fn getrlimit(resource: i32, rlim: *mut RLimit) -> i32;
    fn setrlimit(resource: i32, rlim: *const RLimit) -> i32;
}

const RLIMIT_NOFILE: i32 = 7;

/// Raises this process's open-file limit towards `want` (the hard limit too when root);
/// children (the servers) inherit it. Returns the soft limit now in force.
pub fn raise_nofile(want: u64) -> u64 {
    let mut r = RLimit { cur: 0, max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a struct of the C layout
    // (two rlim_t, 64-bit on Linux).
    unsafe {
        if getrlimit(RLIMIT_NOFILE, &mut r) != 0 {
            return 0;
        }
        if r.cur >= want {
            return r.cur;
        }
        let raised = RLimit {
            cur: want,
            max: r.max.max(want),
        };
        if setrlimit(RLIMIT_NOFILE, &raised) == 0 {
            return want;
        }
        let soft = RLimit {
            cur: r.max,
            max: r.max,
        };
        if setrlimit(RLIMIT_NOFILE, &soft) == 0 {
            return r.max;
        }
        r.cur
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// The last `lines` lines of a file, indented, for an error message.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| format!("(cannot read: {e})"));
    let all: Vec<&str> = text.lines().collect();
    let from = all.len().saturating_sub(lines);
    format!(
        "--- last lines of {} ---\n{}",
        path.display(),
        all[from..].join("\n")
    )
}
