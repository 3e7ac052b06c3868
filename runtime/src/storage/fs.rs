//! The fs driver: one file per key under a base folder (`.data/kv` by default), the key's
//! segments as folders. A file holds 8 bytes of expiry (ms since the Unix epoch, big-endian,
//! 0 for never) then the value. Writes go to a hidden temporary file in the same folder, then
//! are renamed over the old one, so a reader never sees half a value.
//!
//! A key cannot be both a value and a prefix of longer keys here (`a` and `a:b`: a file and a
//! folder of one name); setting the second is an `Io` error naming the file.

use std::io;
use std::path::{Path, PathBuf};

use super::StorageError;

#[derive(Debug)]
pub struct FsDriver {
    base: PathBuf,
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_owned(),
        source,
    }
}

impl FsDriver {
    /// A driver keeping its files under `base` (created when the first value is set).
    pub fn new(base: impl Into<PathBuf>) -> FsDriver {
        FsDriver { base: base.into() }
    }

    /// The file of a (normalized, checked) key.
    fn path(&self, key: &str) -> PathBuf {
        let mut path = self.base.clone();
        path.extend(key.split(':'));
        path
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let path = self.path(key);
        let bytes = match tokio::fs::read(&path).await {
            Ok(bytes) => bytes,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(None);
            }
            // A folder at the key's place (it holds longer keys): no value.
            Err(e) if e.kind() == io::ErrorKind::IsADirectory => return Ok(None),
            Err(e) => return Err(io_error(&path)(e)),
        };
        if bytes.len() < 8 {
            return Ok(None);
        }
        let expires = u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
        if expires != 0 && expires <= super::now_ms() {
            let _ = tokio::fs::remove_file(&path).await;
            return Ok(None);
        }
        Ok(Some(bytes[8..].to_vec()))
    }

    pub(crate) async fn set(
        &self,
        key: &str,
        value: &[u8],
        expires: Option<u64>,
    ) -> Result<(), StorageError> {
        let path = self.path(key);
        let dir = path.parent().expect("a key has a file name");
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(io_error(dir))?;
        let name = path.file_name().expect("a key has a file name");
        let tmp = dir.join(format!(
            ".{}.tmp-{}",
            name.to_string_lossy(),
            uuid::Uuid::new_v4().simple()
        ));
        let mut bytes = Vec::with_capacity(8 + value.len());
        bytes.extend_from_slice(&expires.unwrap_or(0).to_be_bytes());
        bytes.extend_from_slice(value);
        tokio::fs::write(&tmp, &bytes)
            .await
            .map_err(io_error(&tmp))?;
        if let Err(e) = tokio::fs::rename(&tmp, &path).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(io_error(&path)(e));
        }
        Ok(())
    }

    pub(crate) async fn remove(&self, key: &str) -> Result<(), StorageError> {
        let path = self.path(key);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound
                        | io::ErrorKind::NotADirectory
                        | io::ErrorKind::IsADirectory
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(io_error(&path)(e)),
        }
    }

    pub(crate) async fn keys(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let mut out = Vec::new();
        let mut stack = vec![(self.base.clone(), String::new())];
        while let Some((dir, key)) = stack.pop() {
            let mut entries = match tokio::fs::read_dir(&dir).await {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error(&dir)(e)),
            };
            while let Some(entry) = entries.next_entry().await.map_err(io_error(&dir))? {
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                // Temporary files of writes in progress, and anything else hidden.
                if name.starts_with('.') {
                    continue;
                }
                let child = if key.is_empty() {
                    name
                } else {
                    format!("{key}:{name}")
                };
                let kind = entry.file_type().await.map_err(io_error(&dir))?;
                if kind.is_dir() {
                    stack.push((entry.path(), child));
                } else if kind.is_file()
                    && super::under(&child, prefix)
                    && self.get(&child).await?.is_some()
                {
                    out.push(child);
                }
            }
        }
        Ok(out)
    }
}
