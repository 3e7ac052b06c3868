//! One storage operation as data, as it comes across the ABI, and what it answers.

use std::time::Duration;

use super::{Mount, StorageError};

/// An operation on a mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Get(String),
    Set(String, Vec<u8>, Option<Duration>),
    Has(String),
    Remove(String),
    /// The keys under a prefix.
    Keys(String),
    /// Removes the keys under a prefix.
    Clear(String),
}

/// What an operation answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Value(Option<Vec<u8>>),
    Bool(bool),
    Keys(Vec<String>),
    Done,
}

impl Reply {
    /// The reply as the byte strings the ABI hands the route (see `HostApi::storage`).
    pub fn into_items(self) -> Vec<Vec<u8>> {
        match self {
            Reply::Value(value) => value.into_iter().collect(),
            Reply::Bool(true) => vec![b"1".to_vec()],
            Reply::Bool(false) | Reply::Done => Vec::new(),
            Reply::Keys(keys) => keys.into_iter().map(String::into_bytes).collect(),
        }
    }
}

impl Mount {
    /// Runs `op`.
    pub async fn run(&self, op: Op) -> Result<Reply, StorageError> {
        Ok(match op {
            Op::Get(key) => Reply::Value(self.get(&key).await?),
            Op::Set(key, value, ttl) => {
                self.set(&key, &value, ttl).await?;
                Reply::Done
            }
            Op::Has(key) => Reply::Bool(self.has(&key).await?),
            Op::Remove(key) => {
                self.remove(&key).await?;
                Reply::Done
            }
            Op::Keys(prefix) => Reply::Keys(self.keys(&prefix).await?),
            Op::Clear(prefix) => {
                self.clear(&prefix).await?;
                Reply::Done
            }
        })
    }
}
