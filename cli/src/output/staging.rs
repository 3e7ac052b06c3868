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
/// complete: the old folder is renamed aside, the new one renamed in, the old one removed.
pub(crate) fn replace_dir(staging: &Path, target: &Path) -> WriteResult<()> {
    if !target.exists() {
        return at(target, std::fs::rename(staging, target));
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
