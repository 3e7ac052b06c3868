//! The behaviour every storage driver must have: one list, run against each driver by the
//! unit tests (memory, fs) and by `runtime/tests/storage_redis.rs` (a real `redis-server`).
//! The includer brings `Mount`, `StorageError`, `MAX_KEY_LEN` and `Duration` into scope.

#![allow(dead_code)]

use super::*;

/// Runs the list on an empty mount whose size limit is 64 bytes.
pub(crate) async fn conformance(mount: &Mount) {
    // Absent keys.
    assert_eq!(mount.get("todos:1").await.unwrap(), None);
    assert!(!mount.has("todos:1").await.unwrap());
    mount.remove("todos:1").await.unwrap();

    // Set, get, overwrite; `/` and `:` are one key.
    mount.set("todos:1", b"milk", None).await.unwrap();
    assert_eq!(
        mount.get("todos/1").await.unwrap().as_deref(),
        Some(&b"milk"[..])
    );
    mount.set("todos/1", b"bread", None).await.unwrap();
    assert_eq!(
        mount.get("todos:1").await.unwrap().as_deref(),
        Some(&b"bread"[..])
    );
    assert!(mount.has("todos:1").await.unwrap());
    mount.set("empty", b"", None).await.unwrap();
    assert_eq!(mount.get("empty").await.unwrap().as_deref(), Some(&b""[..]));

    // Keys by whole-segment prefix, sorted.
    mount.set("todos:2", b"eggs", None).await.unwrap();
    mount.set("todosx", b"not under todos", None).await.unwrap();
    mount.set("a:b:c", b"deep", None).await.unwrap();
    assert_eq!(mount.keys("todos").await.unwrap(), ["todos:1", "todos:2"]);
    assert_eq!(mount.keys("todos:").await.unwrap(), ["todos:1", "todos:2"]);
    assert_eq!(
        mount.keys("").await.unwrap(),
        ["a:b:c", "empty", "todos:1", "todos:2", "todosx"]
    );

    // Remove and clear by prefix.
    mount.remove("todos:1").await.unwrap();
    assert_eq!(mount.keys("todos").await.unwrap(), ["todos:2"]);
    mount.clear("todos").await.unwrap();
    assert_eq!(mount.keys("").await.unwrap(), ["a:b:c", "empty", "todosx"]);
    mount.clear("").await.unwrap();
    assert!(mount.keys("").await.unwrap().is_empty());

    // A value with a TTL reads until it expires, then is absent everywhere.
    mount
        .set("session", b"s", Some(Duration::from_millis(200)))
        .await
        .unwrap();
    mount
        .set("kept", b"k", Some(Duration::from_secs(3600)))
        .await
        .unwrap();
    assert!(mount.has("session").await.unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(mount.get("session").await.unwrap(), None);
    assert_eq!(mount.keys("").await.unwrap(), ["kept"]);
    // Setting again without a TTL keeps the value for good.
    mount.set("kept", b"k2", None).await.unwrap();
    assert_eq!(
        mount.get("kept").await.unwrap().as_deref(),
        Some(&b"k2"[..])
    );

    // Traversal and odd keys are refused before the driver sees them.
    for key in [
        "",
        "..",
        "../etc/passwd",
        "a/../../b",
        "a:..:b",
        ".hidden",
        "a::b",
        "/abs",
        "a/",
        "a\\b",
        "nul\0",
        &"k".repeat(MAX_KEY_LEN + 1),
    ] {
        assert!(
            matches!(
                mount.set(key, b"x", None).await,
                Err(StorageError::InvalidKey { .. })
            ),
            "{key:?} was accepted"
        );
        assert!(matches!(
            mount.get(key).await,
            Err(StorageError::InvalidKey { .. })
        ));
    }
    assert!(mount.keys("../").await.is_err());

    // The size limit.
    mount.set("big", &[0; 64], None).await.unwrap();
    let error = mount.set("big", &[0; 65], None).await.unwrap_err();
    assert!(matches!(
        error,
        StorageError::TooLarge {
            size: 65,
            limit: 64,
            ..
        }
    ));
    assert_eq!(mount.get("big").await.unwrap().map(|v| v.len()), Some(64));
}
