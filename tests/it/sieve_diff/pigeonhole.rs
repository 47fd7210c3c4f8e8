//! The reference: Pigeonhole's `sieve-test` (Debian `dovecot-sieve`, Pigeonhole 0.5.19 on
//! bookworm), run once per case, its printout turned into the canonical action list.
//!
//! What was learnt about `sieve-test` and how it is driven here:
//! - `sieve-test [opts] SCRIPT MESSAGE` compiles and runs the script and prints "Performed
//!   actions:" then "Implicit keep:", each a list of ` * ACTION` lines (or `  (none)`) with
//!   `        + MODIFIER` lines under them: `store message in folder: NAME` (keep and
//!   fileinto alike; `+ add IMAP flags: \seen work` with system flags lower-cased,
//!   `+ create mailbox if it does not exist` for `:create`, `+ preserve implicit keep` for
//!   `:copy`), `redirect message to: <addr>`, `reject message with reason: TEXT` (control
//!   characters such as line breaks printed as `?`), `discard`, and `send vacation message:`
//!   with `    => seconds : N`, `=> subject :`, `=> from :`, `=> handle :` lines and the reason
//!   between `START MESSAGE` and `END MESSAGE`. Duplicate stores into one folder and duplicate
//!   redirects to one address are already merged.
//! - Compile errors: exit status 1, "failed to compile" on stderr. Runtime errors (e.g. more
//!   than 4 redirects, reject together with fileinto): exit 1, no action list, and stderr
//!   "final result: failed; resolved with successful implicit keep".
//! - Envelope: `-f` the sender (`MAIL FROM`), `-a` the original recipient (what `envelope "to"`
//!   sees), `-r` the final recipient (the user's own address for vacation). Both are always
//!   given, else they come from the message headers. The null sender cannot be given (`-f ""`
//!   and `-f "<>"` are refused, a `Return-Path: <>` header is ignored), so no case has one.
//! - Extensions: `-x` with a plain list (no `+`/`-`) enables exactly those, here the ones
//!   Mailroom implements, so both refuse the others. `vacation-seconds`, `spamtest` and
//!   `spamtestplus` are off by default and need it. `ereject` is not in this build (Pigeonhole
//!   lists it as unfinished, behind `HAVE_SIEVE_UNFINISHED`): for a case that uses it, the
//!   script given to `sieve-test` says `reject` instead (RFC 5429 gives both the same meaning
//!   inside Sieve; they differ only in how the refusal is delivered), and a `reject` it prints
//!   is compared as `ereject`.
//! - Spamtest needs configuring: `plugin/sieve_spamtest_status_type=score`,
//!   `..._status_header=X-Spam-Percent`, `..._max_value=100` (as `-o` settings) read the score
//!   from that header; a case with `spam: N` gets `X-Spam-Percent: N` prepended to its message
//!   (Mailroom gets `spam_percent = N`). Pigeonhole maps percent p to the spamtest value
//!   `1 + floor(9p/100 + 0.001)`, and to "0" when the header is missing.
//! - Mailboxes: `mailboxexists` looks at a real mail store, so each run gets a fresh maildir
//!   (`-l maildir:DIR:LAYOUT=fs`, so "Lists/School" is a directory) holding the case's
//!   `mailboxes`. Without `-e`, fileinto of a missing folder is still listed as a store.
//! - Vacation's "should a reply be sent" rules (list headers, Auto-Submitted, Precedence,
//!   system senders, addressed to me, own address) run only when actions are executed (`-e`),
//!   so a case whose list has a vacation runs a second time with `-e`: stderr then says
//!   "vacation action: sent vacation response to <addr>" or why not, and stdout holds the
//!   reply (its Subject is compared; the default is "Auto: " + the original subject). The
//!   folders the first run stored into are created first, since a failing store aborts the
//!   whole execution. `sieve-test` remembers nothing between runs (its duplicate check always
//!   says "new"), so the once-per-period rule is the delivery path's, not compared here.
//! - Vacation periods: `:days`/`:seconds` below the minimum become the minimum (with a
//!   warning), above the maximum the maximum; `sieve_vacation_min_period`/`max_period` are set
//!   to Mailroom's bounds (see `VACATION_MIN_DAYS_PERIOD`).
//! - Root: `sieve-test` refuses to run mail access as root ("Mail access not allowed for
//!   root"), so as root it is told `-o mail_uid=65534 -o mail_gid=65534` (nobody) and the case
//!   directory is opened to all. It also writes the compiled `.svbin` beside the script; `-C`
//!   ignores any stale one.
//! - `currentdate` uses the process's time zone: `TZ=UTC`, the same clock as Mailroom's
//!   `Context.now`. Cases compare it with relations that stay true.
//! - Config: `-c` a small file of our own (one namespace, "/" separator), so a Dovecot
//!   configured on the machine changes nothing.
//! - Debugging a case by hand: add `-t - -Tlevel=matching` to see every test and match.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::cases::Case;

/// The extensions both sides enable (Mailroom's `sieve::EXTENSIONS` less `ereject`, which this
/// Pigeonhole build lacks; see above).
const EXTENSIONS: &str = "fileinto reject envelope encoded-character vacation vacation-seconds \
    subaddress comparator-i;ascii-numeric relational imap4flags copy body variables mailbox \
    date index spamtest spamtestplus";

/// The vacation period bounds handed to `sieve-test`: Mailroom's clamp (`sieve::Vacation`'s
/// `period_secs`), 1 day to 90 days for `:days` and 1 hour to 90 days for `:seconds`.
/// Pigeonhole has one minimum for both, so a script that requires vacation-seconds runs with
/// the hour, the others with the day.
const VACATION_MIN_DAYS_PERIOD: &str = "1d";
const VACATION_MIN_SECONDS_PERIOD: &str = "1h";
const VACATION_MAX_PERIOD: &str = "90d";

/// Why `sieve-test` cannot run here, if it cannot.
pub fn missing() -> Option<String> {
    let bin = binary();
    if bin.exists() {
        None
    } else {
        Some(format!(
            "no sieve-test at {} (apt install dovecot-sieve)",
            bin.display()
        ))
    }
}

fn binary() -> PathBuf {
    std::env::var_os("SIEVE_TEST")
        .map_or_else(|| PathBuf::from("/usr/bin/sieve-test"), PathBuf::from)
}

/// What `sieve-test` made of one case.
#[derive(Debug, Clone)]
pub struct Reference {
    /// Canonical actions (see `super::canonical`), sorted.
    pub actions: Vec<String>,
    /// Whether the implicit keep was the one storing the message.
    pub implicit_keep: bool,
}

/// Runs the case through `sieve-test` (twice when a vacation needs judging).
pub fn run(case: &Case, raw: &[u8]) -> Result<Reference, String> {
    let ereject = case.script.contains("ereject");
    let script = if ereject {
        case.script.replace("ereject", "reject")
    } else {
        case.script.clone()
    };
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let first = invoke(dir.path(), &script, raw, case, &case.mailboxes, false)?;
    let mut parsed = parse_listing(&first)?;
    if ereject {
        for action in &mut parsed.actions {
            if let Some(rest) = action.strip_prefix("reject ") {
                *action = format!("ereject {rest}");
            }
        }
    }
    if let Some(at) = parsed
        .actions
        .iter()
        .position(|a| a.starts_with("vacation "))
    {
        // The second run, with execution, decides whether the reply goes out.
        let mut folders = case.mailboxes.clone();
        folders.extend(parsed.stored.iter().cloned());
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let executed = invoke(dir.path(), &script, raw, case, &folders, true)?;
        match vacation_fate(&executed)? {
            Some((to, subject)) => {
                let partial = parsed.actions.remove(at);
                parsed.actions.push(format!(
                    "vacation to={to} subject={subject:?}{}",
                    partial.trim_start_matches("vacation")
                ));
            }
            None => {
                parsed.actions.remove(at);
            }
        }
    }
    Ok(Reference {
        actions: super::canonical(parsed.actions),
        implicit_keep: parsed.implicit_keep,
    })
}

/// One finished `sieve-test` run.
struct Output {
    status: Option<i32>,
    stdout: String,
    stderr: String,
}

fn invoke(
    dir: &Path,
    script: &str,
    raw: &[u8],
    case: &Case,
    folders: &[String],
    execute: bool,
) -> Result<Output, String> {
    let io = |e: std::io::Error| format!("{}: {e}", dir.display());
    let as_root = running_as_root();
    let mail = dir.join("mail");
    let mut dirs = vec![mail.clone()];
    for folder in folders.iter().filter(|f| !f.eq_ignore_ascii_case("INBOX")) {
        dirs.push(mail.join(folder));
    }
    for d in &dirs {
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(d.join(sub)).map_err(io)?;
        }
    }
    std::fs::write(dir.join("case.sieve"), script).map_err(io)?;
    std::fs::write(dir.join("message.eml"), raw).map_err(io)?;
    std::fs::write(
        dir.join("dovecot.conf"),
        "namespace inbox {\n  inbox = yes\n  separator = /\n}\n",
    )
    .map_err(io)?;
    if as_root {
        open_to_all(dir).map_err(io)?;
    }
    let mut cmd = Command::new(binary());
    cmd.arg("-c").arg(dir.join("dovecot.conf")).arg("-C");
    if as_root {
        cmd.args(["-o", "mail_uid=65534", "-o", "mail_gid=65534"]);
    }
    cmd.arg("-l")
        .arg(format!("maildir:{}:LAYOUT=fs", mail.display()))
        .args(["-x", EXTENSIONS])
        .args(["-o", "plugin/sieve_spamtest_status_type=score"])
        .args(["-o", "plugin/sieve_spamtest_status_header=X-Spam-Percent"])
        .args(["-o", "plugin/sieve_spamtest_max_value=100"])
        .arg("-o")
        .arg(format!(
            "plugin/sieve_vacation_min_period={}",
            if script.contains("vacation-seconds") {
                VACATION_MIN_SECONDS_PERIOD
            } else {
                VACATION_MIN_DAYS_PERIOD
            }
        ))
        .arg("-o")
        .arg(format!(
            "plugin/sieve_vacation_max_period={VACATION_MAX_PERIOD}"
        ))
        .args(["-f", &case.from, "-a", &case.to, "-r", &case.to]);
    if execute {
        cmd.arg("-e");
    }
    cmd.arg(dir.join("case.sieve"))
        .arg(dir.join("message.eml"))
        .env("HOME", dir)
        .env("TZ", "UTC")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().map_err(|e| format!("sieve-test: {e}"))?;
    wait_bounded(child, Duration::from_secs(30))
}

/// `sieve-test` is quick; one that hangs fails its case instead of the whole run.
fn wait_bounded(mut child: std::process::Child, limit: Duration) -> Result<Output, String> {
    use std::io::Read;
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    // Drain both pipes while waiting, so a large printout cannot block the child.
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(p) = stdout.as_mut() {
            let _ = p.read_to_string(&mut s);
        }
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(p) = stderr.as_mut() {
            let _ = p.read_to_string(&mut s);
        }
        s
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("sieve-test ran longer than {limit:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("sieve-test: {e}")),
        }
    };
    Ok(Output {
        status: status.code(),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Lets `nobody` (the user `sieve-test` drops to) read the case and write the mail store.
fn open_to_all(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(dir)?;
    let mode = if meta.is_dir() { 0o777 } else { 0o666 };
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(dir)? {
            open_to_all(&entry?.path())?;
        }
    }
    Ok(())
}

/// The first run's listing.
struct Listing {
    actions: Vec<String>,
    /// Folders stored into (for the second run).
    stored: Vec<String>,
    implicit_keep: bool,
}

/// One ` * ACTION` with what follows it, while being read.
enum Pending {
    Store {
        folder: String,
        flags: Vec<String>,
        create: bool,
    },
    Vacation {
        fields: Vec<(String, String)>,
        reason: Option<String>,
    },
    Done(String),
}

fn parse_listing(out: &Output) -> Result<Listing, String> {
    let failed = |what: &str| {
        format!(
            "{what} (exit {:?})\n--- stdout\n{}--- stderr\n{}",
            out.status, out.stdout, out.stderr
        )
    };
    if out.stderr.contains("failed to compile") {
        return Ok(Listing {
            actions: vec!["compile-error".into()],
            stored: Vec::new(),
            implicit_keep: false,
        });
    }
    if out
        .stderr
        .contains("final result: failed; resolved with successful implicit keep")
    {
        return Ok(Listing {
            actions: vec!["runtime-error".into(), "store \"INBOX\"".into()],
            stored: Vec::new(),
            implicit_keep: true,
        });
    }
    if out.status != Some(0) || !out.stderr.contains("final result: success") {
        return Err(failed("sieve-test did not succeed"));
    }
    let mut actions = Vec::new();
    let mut stored = Vec::new();
    let mut implicit_keep = false;
    let mut section = None::<bool>; // Some(true) in "Implicit keep:"
    let mut pending: Option<Pending> = None;
    let mut in_message: Option<String> = None;
    let mut finish = |p: Option<Pending>, actions: &mut Vec<String>| -> Result<(), String> {
        match p {
            None => {}
            Some(Pending::Done(a)) => actions.push(a),
            Some(Pending::Store {
                folder,
                flags,
                create,
            }) => {
                stored.push(folder.clone());
                let line = super::store(&folder, &flags, create);
                // The listing shows the implicit keep beside an explicit store into INBOX
                // (fileinto :copy "INBOX"), but executing stores the message once.
                if !actions.contains(&line) {
                    actions.push(line);
                }
            }
            Some(Pending::Vacation { fields, reason }) => {
                let get = |k: &str| {
                    fields
                        .iter()
                        .find(|(key, _)| key == k)
                        .map(|(_, v)| v.clone())
                };
                let seconds = get("seconds").ok_or("a vacation without seconds")?;
                // Completed with to= and subject= once the execution run has spoken.
                let mut line = format!("vacation period={seconds}");
                if let Some(from) = get("from") {
                    line.push_str(&format!(" from={from:?}"));
                }
                line.push_str(&format!(
                    " reason={:?}",
                    super::text(reason.as_deref().unwrap_or(""))
                ));
                actions.push(line);
            }
        }
        Ok(())
    };
    for line in out.stdout.lines() {
        if let Some(body) = in_message.as_mut() {
            if line == "END MESSAGE" {
                let reason = in_message.take();
                match pending.as_mut() {
                    Some(Pending::Vacation { reason: r, .. }) => *r = reason,
                    _ => return Err(failed("a message block outside a vacation")),
                }
            } else {
                body.push_str(line);
                body.push('\n');
            }
            continue;
        }
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        if line == "Performed actions:" || line == "Implicit keep:" {
            finish(pending.take(), &mut actions).map_err(|e| failed(&e))?;
            section = Some(line == "Implicit keep:");
            continue;
        }
        let Some(implicit) = section else {
            // Lines before the listing: the vnd.dovecot.debug output and the like.
            continue;
        };
        if trimmed == "(none)" {
            continue;
        }
        if trimmed == "START MESSAGE" {
            in_message = Some(String::new());
            continue;
        }
        if let Some(action) = line.strip_prefix(" * ") {
            finish(pending.take(), &mut actions).map_err(|e| failed(&e))?;
            if implicit {
                implicit_keep = true;
            }
            pending = Some(
                if let Some(folder) = action.strip_prefix("store message in folder: ") {
                    Pending::Store {
                        folder: folder.to_string(),
                        flags: Vec::new(),
                        create: false,
                    }
                } else if let Some(to) = action.strip_prefix("redirect message to: ") {
                    Pending::Done(format!(
                        "redirect {}",
                        to.trim_start_matches('<').trim_end_matches('>')
                    ))
                } else if let Some(reason) = action.strip_prefix("reject message with reason: ") {
                    Pending::Done(format!(
                        "reject {:?}",
                        super::text(&reason.replace("??", "\n"))
                    ))
                } else if action == "discard" {
                    Pending::Done("discard".into())
                } else if action == "send vacation message:" {
                    Pending::Vacation {
                        fields: Vec::new(),
                        reason: None,
                    }
                } else {
                    return Err(failed(&format!("unknown action line {line:?}")));
                },
            );
            continue;
        }
        if let Some(modifier) = trimmed.strip_prefix("+ ") {
            match pending.as_mut() {
                Some(Pending::Store { flags, create, .. }) => {
                    if let Some(list) = modifier.strip_prefix("add IMAP flags: ") {
                        flags.extend(list.split_whitespace().map(str::to_string));
                    } else if modifier == "create mailbox if it does not exist" {
                        *create = true;
                    } else if modifier != "preserve implicit keep" {
                        return Err(failed(&format!("unknown store modifier {line:?}")));
                    }
                }
                Some(Pending::Done(a)) if a.starts_with("redirect ") => {
                    if modifier != "preserve implicit keep" {
                        return Err(failed(&format!("unknown redirect modifier {line:?}")));
                    }
                }
                _ => return Err(failed(&format!("a modifier without its action {line:?}"))),
            }
            continue;
        }
        if let Some(field) = trimmed.strip_prefix("=> ") {
            let (key, value) = field
                .split_once(':')
                .ok_or_else(|| failed(&format!("a vacation field without ':' {line:?}")))?;
            match pending.as_mut() {
                Some(Pending::Vacation { fields, .. }) => {
                    fields.push((key.trim().to_string(), value.trim().to_string()))
                }
                _ => return Err(failed(&format!("a field outside a vacation {line:?}"))),
            }
            continue;
        }
        // A default :handle holds the reason, so it can run over several lines.
        if let Some(Pending::Vacation { fields, .. }) = pending.as_mut()
            && let Some((key, value)) = fields.last_mut()
            && key == "handle"
        {
            value.push('\n');
            value.push_str(line);
            continue;
        }
        return Err(failed(&format!("unknown line {line:?}")));
    }
    finish(pending.take(), &mut actions).map_err(|e| failed(&e))?;
    if section.is_none() {
        return Err(failed("no action listing"));
    }
    Ok(Listing {
        actions,
        stored,
        implicit_keep,
    })
}

/// From the executing run: `Some((recipient, subject))` when the reply was sent, `None` when
/// one of the rules held it back.
fn vacation_fate(out: &Output) -> Result<Option<(String, String)>, String> {
    let failed = |what: &str| {
        format!(
            "{what} (exit {:?})\n--- stdout\n{}--- stderr\n{}",
            out.status, out.stdout, out.stderr
        )
    };
    let verdict = out
        .stderr
        .lines()
        .filter(|l| l.contains("Info: sieve:"))
        .find_map(|l| {
            l.split_once("vacation action: ")
                .map(|(_, v)| v.to_string())
        })
        .ok_or_else(|| failed("the executing run said nothing about the vacation"))?;
    let Some(to) = verdict.strip_prefix("sent vacation response to ") else {
        return Ok(None);
    };
    let to = to.trim_start_matches('<').trim_end_matches('>').to_string();
    // The reply is one of the messages written to stdout, each starting with X-Sieve.
    let reply = out
        .stdout
        .split("X-Sieve: ")
        .map(|chunk| chunk.split("\nRECIPIENT: ").next().unwrap_or(chunk))
        .find(|chunk| {
            let head = chunk.split("\n\n").next().unwrap_or("");
            head.lines()
                .any(|l| l.starts_with("Auto-Submitted: auto-replied (vacation)"))
        })
        .ok_or_else(|| failed("no vacation reply on stdout"))?;
    let reply = format!("X-Sieve: {reply}");
    let subject = mail_parser::MessageParser::default()
        .parse(reply.as_bytes())
        .and_then(|m| m.subject().map(str::to_string))
        .ok_or_else(|| failed("the vacation reply has no Subject"))?;
    Ok(Some((to, subject)))
}

/// The printout parser on a captured `sieve-test` listing, so a change to the canonical form
/// shows here even where `sieve-test` is missing.
#[test]
fn a_sieve_test_listing_becomes_canonical_lines() {
    let stdout = "\nPerformed actions:\n\n \
        * store message in folder: Lists/School\n        + create mailbox if it does not exist\n \
               + add IMAP flags: \\seen $Later\n \
        * redirect message to: <x@example.net>\n        + preserve implicit keep\n \
        * reject message with reason: one??two\n \
        * discard\n \
        * send vacation message:\n    => seconds : 86400\n    => from    : bob@example.com\n \
           => handle  : Back\nsoon<default-subject>\n\nSTART MESSAGE\nBack\n\nsoon\nEND MESSAGE\n\n\
        Implicit keep:\n\n * store message in folder: INBOX\n\n";
    let out = Output {
        status: Some(0),
        stdout: stdout.to_string(),
        stderr: "sieve-test: Info: final result: success\n".to_string(),
    };
    let listing = parse_listing(&out).unwrap();
    assert_eq!(
        listing.actions,
        [
            "store \"Lists/School\" :create :flags [\"$later\", \"\\\\seen\"]",
            "redirect x@example.net",
            "reject \"one\\ntwo\"",
            "discard",
            "vacation period=86400 from=\"bob@example.com\" reason=\"Back\\n\\nsoon\"",
            "store \"INBOX\"",
        ]
    );
    assert!(listing.implicit_keep);
    assert_eq!(listing.stored, ["Lists/School", "INBOX"]);
    let failed = Output {
        status: Some(1),
        stdout: String::new(),
        stderr: "sieve-test: Info: final result: failed; resolved with successful implicit keep\n"
            .to_string(),
    };
    assert_eq!(
        parse_listing(&failed).unwrap().actions,
        ["runtime-error", "store \"INBOX\""]
    );
    let unknown = Output {
        status: Some(0),
        stdout: "\nPerformed actions:\n\n * notify someone\n".to_string(),
        stderr: "sieve-test: Info: final result: success\n".to_string(),
    };
    assert!(parse_listing(&unknown).is_err());
}
