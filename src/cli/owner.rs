//! Who owns the data: the service runs as the `mailroom` user (the package creates it and
//! hands it `/var/lib/mailroom`), while an admin types commands as root. A command run as root
//! acts as the data directory's owner, so every file it creates (the WAL, a backup) stays
//! readable by the service; `init`, which also writes `/etc/mailroom`, hands what it made in
//! the data directory to that owner and lets the service's group read the configuration.

use std::ffi::CString;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{Context, bail};

/// The group that may read the configuration (the service's; the package creates it).
pub const SERVICE_GROUP: &str = "mailroom";

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The owner of `path` when it is someone other than root.
fn other_owner(path: &Path) -> Option<(u32, u32)> {
    let md = std::fs::metadata(path).ok()?;
    (md.uid() != 0).then(|| (md.uid(), md.gid()))
}

/// Run as root on a data directory owned by another user: become that user (and group) for
/// the rest of the command.
pub fn act_as_owner(data_dir: &Path) -> anyhow::Result<()> {
    if !running_as_root() {
        return Ok(());
    }
    let Some((uid, gid)) = other_owner(data_dir) else {
        return Ok(());
    };
    // SAFETY: plain system calls on integers; glibc applies them to every thread. Groups
    // first, then the group, then the user (after which the others are no longer allowed).
    let failed = unsafe {
        libc::setgroups(0, std::ptr::null()) != 0
            || libc::setgid(gid) != 0
            || libc::setuid(uid) != 0
    };
    if failed {
        bail!(
            "cannot act as the owner (uid {uid}) of {}: {}",
            data_dir.display(),
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// After `init` as root: everything in `data_dir` goes to the directory's owner.
pub fn give_to_owner(data_dir: &Path) -> anyhow::Result<()> {
    if !running_as_root() {
        return Ok(());
    }
    let Some((uid, gid)) = other_owner(data_dir) else {
        return Ok(());
    };
    let mut stack = vec![data_dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?
        {
            let entry = entry?;
            let path = entry.path();
            std::os::unix::fs::lchown(&path, Some(uid), Some(gid))
                .with_context(|| format!("cannot hand {} to uid {uid}", path.display()))?;
            // The entry's own type, never a symlink's target: a link is handed over, not
            // followed out of the data directory.
            if entry.file_type()?.is_dir() {
                stack.push(path);
            }
        }
    }
    Ok(())
}

/// After `init` as root: the configuration readable by the service's group (0640), when that
/// group exists.
pub fn readable_by_service(config: &Path) -> anyhow::Result<()> {
    if !running_as_root() {
        return Ok(());
    }
    let name = CString::new(SERVICE_GROUP).context("group name")?;
    // SAFETY: getgrnam reads a static buffer we copy from at once; no other thread calls it.
    let gid = unsafe {
        let group = libc::getgrnam(name.as_ptr());
        if group.is_null() {
            return Ok(());
        }
        (*group).gr_gid
    };
    std::os::unix::fs::chown(config, Some(0), Some(gid))
        .with_context(|| format!("cannot give {} to group {SERVICE_GROUP}", config.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(config, std::fs::Permissions::from_mode(0o640)).with_context(
        || {
            format!(
                "cannot make {} readable by {SERVICE_GROUP}",
                config.display()
            )
        },
    )?;
    Ok(())
}
