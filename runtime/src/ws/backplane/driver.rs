//! The Redis driver of the backplane (feature `redis`).
//!
//! One redis-rs `ConnectionManager` on RESP3 carries both directions: `SUBSCRIBE` pushes come
//! in on it (RESP3 lets a subscribed connection run other commands), and the publishing task
//! sends its `PUBLISH` pipelines on it. The manager reconnects by itself and, with automatic
//! resubscription, subscribes again after a reconnect. Around it, a supervisor task owns the
//! connection state: it subscribes (which also makes the first connection), and when the
//! connection is lost or an attempt fails it retries with backoff (100 ms doubling to 5 s),
//! on a fresh manager each time, since a manager whose connection failed for a reason other
//! than I/O (a wrong password) would not retry by itself.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ConnectionInfo, IntoConnectionInfo, Msg, ProtocolVersion, PushInfo, PushKind};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::envelope::decode_envelope;
use super::relay::{BackplaneStats, ConnectionState, Counters, DEFAULT_QUEUE, Outgoing, Relay};
use crate::ws::Hub;
use crate::ws::peer::frame;

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long Redis may take to answer a command (a `PUBLISH` pipeline, `SUBSCRIBE`).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Backoff between attempts while Redis cannot be reached.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The most messages sent in one pipeline.
const BATCH: usize = 512;
/// How often the counters are logged by default (when they changed).
pub const DEFAULT_STATS_INTERVAL: Duration = Duration::from_secs(60);

/// Where and how to relay: `[websocket] pubsub` of `nitro.toml`.
#[derive(Clone)]
pub struct PubSubConfig {
    url: String,
    info: ConnectionInfo,
    channel: String,
    /// How many publishes may wait for Redis; more are dropped (and counted). Default 10 000.
    pub queue: usize,
    /// How often the counters are logged (only when they changed since the last line);
    /// `None`: never, only at shutdown. Default 60 s.
    pub stats_interval: Option<Duration>,
}

impl PubSubConfig {
    /// Checks `url` (`redis://[user:password@]host[:port][/db]`, `rediss://…` for TLS,
    /// `redis+unix:///path`; `#insecure` after a `rediss://` URL skips certificate
    /// verification) and `channel` (not empty). Nothing is connected yet.
    pub fn new(url: &str, channel: &str) -> Result<PubSubConfig, PubSubError> {
        let bad = |reason: String| PubSubError::Url {
            url: redact(url),
            reason,
        };
        let trimmed = url.trim();
        let scheme_ok = ["redis://", "rediss://", "redis+unix://", "unix://"]
            .iter()
            .any(|scheme| trimmed.starts_with(scheme));
        if !scheme_ok {
            return Err(bad(
                "it must start with `redis://`, `rediss://` (TLS) or `redis+unix://`".into(),
            ));
        }
        let info = trimmed
            .into_connection_info()
            .map_err(|error| bad(error.to_string()))?;
        if !info.addr().is_supported() {
            return Err(bad("this kind of address is not supported".into()));
        }
        if channel.trim().is_empty() {
            return Err(PubSubError::EmptyChannel);
        }
        // RESP3: the subscription's messages arrive as pushes on a connection that can still
        // publish, and the connection manager can resubscribe after a reconnect.
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        Ok(PubSubConfig {
            url: trimmed.to_owned(),
            info: info.set_redis_settings(settings),
            channel: channel.to_owned(),
            queue: DEFAULT_QUEUE,
            stats_interval: Some(DEFAULT_STATS_INTERVAL),
        })
    }

    /// The URL as given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL with its password replaced by `***`, for logs and messages.
    pub fn display_url(&self) -> String {
        redact(&self.url)
    }

    /// The Redis channel every instance of the cluster publishes on.
    pub fn channel(&self) -> &str {
        &self.channel
    }
}

impl fmt::Debug for PubSubConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PubSubConfig")
            .field("url", &self.display_url())
            .field("channel", &self.channel)
            .field("queue", &self.queue)
            .field("stats_interval", &self.stats_interval)
            .finish()
    }
}

/// Why a backplane cannot be configured or started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PubSubError {
    /// The URL is not a Redis URL (its password, if any, is replaced by `***`).
    #[error("`{url}` is not a Redis URL: {reason}")]
    Url { url: String, reason: String },
    #[error("the pub/sub channel is empty")]
    EmptyChannel,
    #[error("this hub already relays through a backplane")]
    AlreadyAttached,
    #[error("cannot create a Redis client for `{url}`: {reason}")]
    Client { url: String, reason: String },
}

/// `redis://user:secret@host` → `redis://user:***@host`, also in a malformed URL: the user
/// info runs from `://` (else from the last `/`) to the last `@`, and only the part after its
/// first `:` is secret. Errs on the side of hiding too much.
pub(crate) fn redact(url: &str) -> String {
    let Some(at) = url.rfind('@') else {
        return url.to_owned();
    };
    let start = match url.find("://") {
        Some(i) if i + 3 <= at => i + 3,
        _ => url[..at].rfind('/').map_or(0, |i| i + 1),
    };
    match url[start..at].find(':') {
        Some(colon) => format!("{}:***{}", &url[..start + colon], &url[at..]),
        None => url.to_owned(),
    }
}

/// A running backplane: the hub's publishes go to Redis, and the channel's messages from
/// other instances reach the hub's subscribers.
///
/// Start it with [`Backplane::start`] inside a tokio runtime, next to the [`Server`] that
/// serves the same [`Hub`]. Dropping it stops the relay (publishes stay local); call
/// [`Backplane::shutdown`] to stop and log the final counts.
///
/// [`Server`]: crate::Server
pub struct Backplane {
    shared: Arc<Shared>,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

/// What the tasks and the push handler share.
struct Shared {
    /// This instance's id in envelopes (a random UUID v4).
    id: String,
    channel: String,
    display_url: String,
    info: ConnectionInfo,
    hub: Weak<Hub>,
    counters: Arc<Counters>,
    /// Woken when the connection is lost (a disconnection push, a failed publish).
    lost: Notify,
    /// The manager in use; pushes from an older one are ignored.
    generation: AtomicU64,
}

impl Backplane {
    /// Attaches a backplane to `hub` and starts connecting in the background: this returns at
    /// once, whether Redis is reachable or not (publishes stay local until it is).
    ///
    /// Must be called from a tokio runtime. Fails if the hub already has a backplane.
    pub fn start(hub: &Arc<Hub>, config: PubSubConfig) -> Result<Backplane, PubSubError> {
        // `rediss://`: rustls needs a process-wide crypto provider; another part of the process
        // may have installed one already, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();

        let counters = Arc::new(Counters::default());
        let shared = Arc::new(Shared {
            id: uuid::Uuid::new_v4().to_string(),
            channel: config.channel.clone(),
            display_url: config.display_url(),
            info: config.info.clone(),
            hub: Arc::downgrade(hub),
            counters: counters.clone(),
            lost: Notify::new(),
            generation: AtomicU64::new(0),
        });
        let manager = shared.manager(0).map_err(|error| PubSubError::Client {
            url: shared.display_url.clone(),
            reason: error.to_string(),
        })?;
        let (relay, queue) = Relay::new(config.queue, counters);
        if !hub.set_relay(relay) {
            return Err(PubSubError::AlreadyAttached);
        }
        let (managers, current) = watch::channel(manager);
        let stop = CancellationToken::new();
        let mut tasks = vec![
            tokio::spawn(supervise(shared.clone(), managers, stop.clone())),
            tokio::spawn(publish(shared.clone(), queue, current, stop.clone())),
        ];
        if let Some(every) = config.stats_interval {
            tasks.push(tokio::spawn(report(shared.clone(), every, stop.clone())));
        }
        tracing::debug!(
            target: "nitro::pubsub",
            "instance {} relays on channel `{}` of `{}`",
            shared.id,
            shared.channel,
            shared.display_url
        );
        Ok(Backplane {
            shared,
            stop,
            tasks,
        })
    }

    /// This instance's id in the envelopes it publishes.
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// The counters and the connection state, now.
    pub fn stats(&self) -> BackplaneStats {
        self.shared.counters.snapshot()
    }

    /// Stops relaying and logs the final counts. Publishes stay local from now on.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        for task in self.tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
        tracing::info!(
            target: "nitro::pubsub",
            "pub/sub channel `{}` stopped: {}",
            self.shared.channel,
            self.stats()
        );
    }
}

impl Drop for Backplane {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl fmt::Debug for Backplane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backplane")
            .field("id", &self.shared.id)
            .field("channel", &self.shared.channel)
            .field("url", &self.shared.display_url)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Shared {
    /// A connection manager that connects on first use; its pushes are tagged `generation`.
    fn manager(self: &Arc<Self>, generation: u64) -> redis::RedisResult<ConnectionManager> {
        let shared = Arc::downgrade(self);
        let on_push = move |push: PushInfo| -> Result<(), ()> {
            if let Some(shared) = shared.upgrade() {
                shared.on_push(generation, push);
            }
            Ok(())
        };
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1))
            .set_push_sender(on_push)
            .set_automatic_resubscription();
        let client = redis::Client::open(self.info.clone())?;
        ConnectionManager::new_lazy_with_config(client, config)
    }

    /// Runs on the connection's task for each push: it must not block.
    fn on_push(&self, generation: u64, push: PushInfo) {
        if generation != self.generation.load(Ordering::Acquire) {
            return;
        }
        match push.kind {
            PushKind::Message => {
                if let Some(message) = Msg::from_push_info(push)
                    && message.get_channel_name() == self.channel
                {
                    self.deliver(message.get_payload_bytes());
                }
            }
            PushKind::Disconnection => self.connection_lost(&"the connection closed"),
            _ => {}
        }
    }

    /// An envelope from the channel: another instance's publish goes to the local subscribers
    /// (not relayed again); this instance's own echo is ignored.
    fn deliver(&self, raw: &[u8]) {
        match decode_envelope(raw) {
            None => self.counters.malformed(raw),
            Some((id, _)) if id == self.id => self.counters.own(),
            Some((_, message)) => {
                self.counters.received();
                if let Some(hub) = self.hub.upgrade() {
                    let namespace =
                        (!message.namespace.is_empty()).then_some(message.namespace.as_str());
                    let frame = frame(Bytes::from(message.data), message.binary);
                    hub.publish_in(namespace, &message.topic, frame, None);
                }
            }
        }
    }

    fn connection_lost(&self, why: &dyn fmt::Display) {
        if self.counters.set_state(ConnectionState::Disconnected) == ConnectionState::Connected {
            tracing::warn!(
                target: "nitro::pubsub",
                "lost the connection to Redis `{}` ({why}): reconnecting; until then publishes reach this instance's peers only",
                self.display_url
            );
        }
        self.lost.notify_one();
    }
}

/// Keeps the subscription: connects and subscribes, and again after every loss.
async fn supervise(
    shared: Arc<Shared>,
    managers: watch::Sender<ConnectionManager>,
    stop: CancellationToken,
) {
    let mut delay = MIN_BACKOFF;
    let mut failures = 0u64;
    loop {
        if shared.counters.state() == ConnectionState::Connected {
            tokio::select! {
                _ = shared.lost.notified() => continue,
                _ = stop.cancelled() => return,
            }
        }
        let mut manager = managers.borrow().clone();
        let attempt = tokio::select! {
            attempt = tokio::time::timeout(
                CONNECT_TIMEOUT + RESPONSE_TIMEOUT * 2,
                manager.subscribe(&shared.channel),
            ) => attempt,
            _ = stop.cancelled() => return,
        };
        let error = match attempt {
            Ok(Ok(())) => {
                let before = shared.counters.set_state(ConnectionState::Connected);
                if before == ConnectionState::Connecting && failures == 0 {
                    tracing::info!(
                        target: "nitro::pubsub",
                        "connected to Redis `{}`: relaying WebSocket publishes on channel `{}`",
                        shared.display_url,
                        shared.channel
                    );
                } else if failures == 0 {
                    tracing::info!(
                        target: "nitro::pubsub",
                        "connected to Redis `{}` again: relaying on channel `{}`",
                        shared.display_url,
                        shared.channel
                    );
                } else {
                    tracing::info!(
                        target: "nitro::pubsub",
                        "connected to Redis `{}` again (after {failures} failed attempt(s)): relaying on channel `{}`",
                        shared.display_url,
                        shared.channel
                    );
                }
                failures = 0;
                delay = MIN_BACKOFF;
                continue;
            }
            Ok(Err(error)) => error.to_string(),
            Err(_) => "no answer in time".to_owned(),
        };
        let before = shared.counters.set_state(ConnectionState::Disconnected);
        failures += 1;
        if failures == 1 && before == ConnectionState::Connecting {
            tracing::warn!(
                target: "nitro::pubsub",
                "cannot reach Redis `{}` ({error}): serving WebSocket pub/sub on this instance only, and retrying in the background",
                shared.display_url
            );
        } else {
            tracing::debug!(
                target: "nitro::pubsub",
                "attempt {failures} to reach Redis `{}` failed: {error}",
                shared.display_url
            );
        }
        // A fresh manager for the next attempt; pushes of the old one are ignored from now on.
        let generation = shared.generation.fetch_add(1, Ordering::AcqRel) + 1;
        match shared.manager(generation) {
            Ok(fresh) => {
                managers.send_replace(fresh);
            }
            Err(error) => {
                tracing::debug!(target: "nitro::pubsub", "cannot create a Redis client: {error}");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.cancelled() => return,
        }
        delay = (delay * 2).min(MAX_BACKOFF);
    }
}

/// Publishes what the hub queued, in order, a pipeline at a time.
async fn publish(
    shared: Arc<Shared>,
    mut queue: mpsc::Receiver<Outgoing>,
    managers: watch::Receiver<ConnectionManager>,
    stop: CancellationToken,
) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let n = tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            n = queue.recv_many(&mut batch, BATCH) => n,
        };
        if n == 0 {
            return;
        }
        if shared.counters.state() != ConnectionState::Connected {
            // No buffering while disconnected: at most once, no replay (as crossws).
            shared.counters.dropped(n, &"Redis is not connected");
            batch.clear();
            continue;
        }
        let mut pipe = redis::pipe();
        for outgoing in batch.drain(..) {
            pipe.cmd("PUBLISH")
                .arg(&shared.channel)
                .arg(outgoing.envelope(&shared.id))
                .ignore();
        }
        let mut manager = managers.borrow().clone();
        match pipe.query_async::<()>(&mut manager).await {
            Ok(()) => shared.counters.relayed(n),
            Err(error) => {
                shared
                    .counters
                    .dropped(n, &format!("`PUBLISH` failed: {error}"));
                shared.connection_lost(&error);
            }
        }
    }
}

/// Logs the counters every `every` when they changed.
async fn report(shared: Arc<Shared>, every: Duration, stop: CancellationToken) {
    let mut last = shared.counters.snapshot();
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.cancelled() => return,
        }
        let now = shared.counters.snapshot();
        if now != last {
            tracing::info!(target: "nitro::pubsub", "pub/sub channel `{}`: {now}", shared.channel);
            last = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("redis://:s3cret@db:6379/0"),
            "redis://:***@db:6379/0"
        );
        assert_eq!(
            redact("rediss://app:p@ss@db.example:6380"),
            "rediss://app:***@db.example:6380"
        );
        assert_eq!(redact("redis://app@db"), "redis://app@db");
        assert_eq!(redact("redis://db:6379/1"), "redis://db:6379/1");
        assert_eq!(redact("not a url"), "not a url");
        assert_eq!(
            redact("redis//:secret@127.0.0.1:6379"),
            "redis//:***@127.0.0.1:6379"
        );
        assert_eq!(redact("redis://:a/b@host"), "redis://:***@host");
        assert_eq!(redact(":pw@host"), ":***@host");
    }

    #[test]
    fn urls_are_checked() {
        let ok = PubSubConfig::new("redis://127.0.0.1:6379", "chat").unwrap();
        assert_eq!(ok.channel(), "chat");
        assert_eq!(ok.queue, DEFAULT_QUEUE);
        assert!(PubSubConfig::new("rediss://:pw@cache.example:6380/2", "chat").is_ok());
        assert!(PubSubConfig::new("redis://user:pw@127.0.0.1/3", "chat").is_ok());
        for bad in [
            "127.0.0.1:6379",
            "http://127.0.0.1:6379",
            "redis//127.0.0.1",
            "redis://",
            "redis://127.0.0.1:port",
        ] {
            let error = PubSubConfig::new(bad, "chat").unwrap_err();
            assert!(matches!(error, PubSubError::Url { .. }), "{bad}: {error}");
        }
        let error = PubSubConfig::new("http://:hunter2@x", "chat").unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
        assert!(matches!(
            PubSubConfig::new("redis://127.0.0.1", " "),
            Err(PubSubError::EmptyChannel)
        ));
    }
}
