//! Writing `.output/` without ever leaving a half-written one: the build goes to a staging
//! folder beside it (same file system), which is renamed into place only when complete.

use std::path::Path;

use crate::output::write::{WriteResult, at};

/// Removes `.output.tmp-<pid>` and `.output.old-<pid>` folders left by builds that were
/// interrupted (Ctrl-C while writing), when no process `<pid>` runs any more. Only where
/// `/proc` tells (Linux); elsewhere they stay, and are safe to delete by hand.
pub(crate) fn remove_stale_staging(project_dir: &Path) {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(project_dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(".output.tmp-")
            .or_else(|| name.strip_prefix(".output.old-"))
        else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !proc.join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Moves `staging` to `target`, replacing an existing `target` only once `staging` is
/// complete. Where the system can (Linux: `renameat2` with `RENAME_EXCHANGE`), the two
/// folders swap places in one step, so there is always a complete `target`, even if the
/// build is killed at that moment; the old output, now at `staging`, is then removed.
/// Elsewhere, or where the file system refuses the exchange, the old folder is renamed
/// aside, the new one renamed in, the old one removed (a kill between the two renames leaves
/// the old output beside the project as `.output.old-<pid>`).
pub(crate) fn replace_dir(staging: &Path, target: &Path) -> WriteResult<()> {
    if !target.exists() {
        return at(target, std::fs::rename(staging, target));
    }
    if exchange(staging, target)? {
        let _ = std::fs::remove_dir_all(staging);
        return Ok(());
    }
    let old = target.with_file_name(format!(".output.old-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&old);
    at(target, std::fs::rename(target, &old))?;
    if let Err(e) = std::fs::rename(staging, target) {
        // Put the old one back: never leave the project without its output.
        let _ = std::fs::rename(&old, target);
        return Err((target.to_owned(), e));
    }
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// Swaps `a` and `b` atomically; `Ok(false)` when the system or file system cannot.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn exchange(a: &Path, b: &Path) -> WriteResult<bool> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    use rustix::io::Errno;
    match renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE) {
        Ok(()) => Ok(true),
        // No renameat2 (old kernels, some sandboxes), or a file system without exchange.
        Err(Errno::NOSYS | Errno::INVAL | Errno::OPNOTSUPP | Errno::PERM) => Ok(false),
        Err(errno) => Err((b.to_owned(), errno.into())),
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn exchange(_: &Path, _: &Path) -> WriteResult<bool> {
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_staging_folders_of_dead_builds_go() {
        let tmp = tempfile::tempdir().unwrap();
        // u32::MAX is never a pid; ours is alive.
        let dead = tmp.path().join(format!(".output.tmp-{}", u32::MAX));
        let alive = tmp
            .path()
            .join(format!(".output.tmp-{}", std::process::id()));
        let other = tmp.path().join(".output.tmp-notapid");
        for dir in [&dead, &alive, &other] {
            std::fs::create_dir_all(dir.join("server")).unwrap();
        }
        remove_stale_staging(tmp.path());
        if Path::new("/proc/self").exists() {
            assert!(!dead.exists());
        }
        assert!(alive.exists() && other.exists());
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn on_linux_the_new_output_is_swapped_in_one_step() {
        // Both folders exist before and after: at no moment is there no `.output`.
        let tmp = tempfile::tempdir().unwrap();
        let (target, staging) = (tmp.path().join(".output"), tmp.path().join(".output.tmp"));
        for (dir, build) in [(&target, "old"), (&staging, "new")] {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join("nitro.json"), build).unwrap();
        }
        assert!(
            exchange(&staging, &target).unwrap(),
            "renameat2 RENAME_EXCHANGE"
        );
        let read = |dir: &Path| std::fs::read_to_string(dir.join("nitro.json")).unwrap();
        assert_eq!(
            (read(&target), read(&staging)),
            ("new".into(), "old".into())
        );
    }

    #[test]
    fn replacing_keeps_the_old_folder_until_the_new_one_is_complete() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join(".output");
        let staging = tmp.path().join(".output.tmp");
        std::fs::create_dir_all(&target).unwrap();
        std::fs::write(target.join("old"), "").unwrap();
        std::fs::create_dir_all(&staging).unwrap();
        std::fs::write(staging.join("new"), "").unwrap();
        replace_dir(&staging, &target).unwrap();
        assert!(target.join("new").is_file() && !target.join("old").exists());
        assert!(!staging.exists());
        // A staging folder that is not there: the old output stays.
        assert!(replace_dir(&staging, &target).is_err());
        assert!(target.join("new").is_file());
        let leftovers: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1);
    }
}
