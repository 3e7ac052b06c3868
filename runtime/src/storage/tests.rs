//! One conformance list, run against each driver.

use super::*;

fn memory() -> Mount {
    Mount::new(Driver::Memory(MemoryDriver::default()), 64)
}

fn fs(dir: &std::path::Path) -> Mount {
    Mount::new(Driver::Fs(FsDriver::new(dir.join("kv"))), 64)
}

#[path = "conformance.rs"]
mod conformance;
use conformance::conformance;

#[tokio::test]
async fn the_memory_driver_conforms() {
    conformance(&memory()).await;
}

#[tokio::test]
async fn the_fs_driver_conforms_and_keeps_its_files_under_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let mount = fs(dir.path());
    conformance(&mount).await;
    // Nothing was written outside `kv/`, and no temporary file is left behind.
    let top: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(top, ["kv"]);
    mount.set("x:y", b"1", None).await.unwrap();
    let names: Vec<_> = std::fs::read_dir(dir.path().join("kv/x"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["y"]);
}

#[tokio::test]
async fn fs_values_survive_a_new_driver_on_the_same_folder() {
    let dir = tempfile::tempdir().unwrap();
    fs(dir.path()).set("todos:1", b"milk", None).await.unwrap();
    assert_eq!(
        fs(dir.path()).get("todos:1").await.unwrap().as_deref(),
        Some(&b"milk"[..])
    );
}

#[test]
fn keys_are_normalized_and_prefixes_match_whole_segments() {
    assert_eq!(normalize_key("a/b:c").unwrap(), "a:b:c");
    assert_eq!(normalize_prefix("a/b/").unwrap(), "a:b");
    assert_eq!(normalize_prefix("").unwrap(), "");
    assert!(under("a:b", "a") && under("a", "a") && !under("ab", "a"));
}
