//! The redis driver (feature `redis`): each key is `<base>:<key>` in one Redis database, a TTL
//! is Redis's own (`SET … PX`), so expired values are Redis's to drop. Keys are listed with
//! `SCAN` (never `KEYS`, which blocks the server), the prefix escaped for `MATCH`.
//!
//! A driver made by [`RedisDriver::lazy`] (as `nitro.toml`'s mounts are) connects on its first
//! operation and tries again on the next one if Redis was unreachable, so a server starts while
//! Redis is down and its routes get an error naming Redis until it is up.

use redis::AsyncCommands as _;
use redis::aio::ConnectionManager;

use super::StorageError;

pub struct RedisDriver {
    client: redis::Client,
    /// Made on the first operation.
    manager: tokio::sync::OnceCell<ConnectionManager>,
    /// Prepended to every key, with a `:`.
    base: String,
}

impl std::fmt::Debug for RedisDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisDriver")
            .field("base", &self.base)
            .finish()
    }
}

fn redis_error(e: redis::RedisError) -> StorageError {
    StorageError::Redis(e.to_string())
}

/// `text` with Redis glob characters escaped.
fn escape_glob(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl RedisDriver {
    /// Connects to `url` (`redis://…`); keys live under `base` (e.g. the app's name).
    pub async fn connect(url: &str, base: &str) -> Result<RedisDriver, StorageError> {
        let driver = RedisDriver::lazy(url, base)?;
        driver.connection().await?;
        Ok(driver)
    }

    /// A driver for `url` that connects on its first operation (the URL is checked now).
    pub fn lazy(url: &str, base: &str) -> Result<RedisDriver, StorageError> {
        let client = redis::Client::open(url).map_err(redis_error)?;
        Ok(RedisDriver {
            client,
            manager: tokio::sync::OnceCell::new(),
            base: base.to_owned(),
        })
    }

    /// The connection manager, connecting first when there is none yet.
    async fn connection(&self) -> Result<ConnectionManager, StorageError> {
        self.manager
            .get_or_try_init(|| ConnectionManager::new(self.client.clone()))
            .await
            .cloned()
            .map_err(redis_error)
    }

    fn full(&self, key: &str) -> String {
        format!("{}:{key}", self.base)
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let mut con = self.connection().await?;
        con.get(self.full(key)).await.map_err(redis_error)
    }

    pub(crate) async fn set(
        &self,
        key: &str,
        value: &[u8],
        ttl_ms: Option<u64>,
    ) -> Result<(), StorageError> {
        let mut con = self.connection().await?;
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.full(key)).arg(value);
        if let Some(ms) = ttl_ms {
            cmd.arg("PX").arg(ms.max(1));
        }
        cmd.query_async::<()>(&mut con).await.map_err(redis_error)
    }

    pub(crate) async fn remove(&self, key: &str) -> Result<(), StorageError> {
        let mut con = self.connection().await?;
        con.del::<_, ()>(self.full(key)).await.map_err(redis_error)
    }

    pub(crate) async fn keys(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let mut con = self.connection().await?;
        let base = format!("{}:", self.base);
        let pattern = if prefix.is_empty() {
            format!("{}*", escape_glob(&base))
        } else {
            format!("{}{}*", escape_glob(&base), escape_glob(prefix))
        };
        let mut out = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(500)
                .query_async(&mut con)
                .await
                .map_err(redis_error)?;
            out.extend(
                batch
                    .into_iter()
                    .filter_map(|k| k.strip_prefix(&base).map(str::to_owned))
                    .filter(|k| super::under(k, prefix)),
            );
            if next == 0 {
                break;
            }
            cursor = next;
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}
