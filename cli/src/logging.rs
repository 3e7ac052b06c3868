//! The tracing subscriber: installed once, by the binary, writing to stderr.
//!
//! `-q`/`-v` pick the default filter; `RUST_LOG`, when set, wins over both. stdout is kept for
//! data (the server's URL), so logs never mix with what a script might read.
//!
//! The request log of `nitro start` (target `nitro::request`, one line per request) is not
//! written by the request's worker: its lines collect in a buffer that a background thread
//! writes to stderr in one piece every [`FLUSH_EVERY`] (sooner past [`FLUSH_AT`] bytes), so
//! a request costs an append, not a `write` system call and a wait on stderr. Every other
//! event goes straight to stderr as before. [`flush`] writes what is waiting (call it before
//! exiting); when stderr cannot keep up and [`MAX_BUFFERED`] bytes wait, the request's worker
//! writes them itself (back-pressure, no line is dropped).

use std::io::{self, Write};
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use tracing::Metadata;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::writer::EitherWriter;

/// The target of the request log's events.
const REQUEST_TARGET: &str = "nitro::request";
/// How long a request-log line may wait before it is written.
pub(crate) const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Past this many buffered bytes the writer thread is woken at once.
pub(crate) const FLUSH_AT: usize = 64 * 1024;
/// Past this many buffered bytes the logging thread writes them itself.
pub(crate) const MAX_BUFFERED: usize = 1024 * 1024;

/// The filter for a verbosity: `-q` → warnings and errors, default → info, `-v` → debug for
/// nitro's crates, `-vv` → debug everywhere, `-vvv` → trace.
pub(crate) fn default_directives(verbose: u8, quiet: bool) -> &'static str {
    if quiet {
        return "warn";
    }
    match verbose {
        0 => "info",
        1 => "info,nitro_cli=debug,nitro_runtime=debug,nitro_router=debug,nitro=debug",
        2 => "debug",
        _ => "trace",
    }
}

/// Installs the subscriber. Call once, from the binary; later calls are ignored (a test may
/// have installed one).
pub(crate) fn init(verbose: u8, quiet: bool) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(value) if !value.trim().is_empty() => EnvFilter::try_new(&value).unwrap_or_else(|e| {
            eprintln!("warning: ignoring `RUST_LOG={value}`: {e}");
            EnvFilter::new(default_directives(verbose, quiet))
        }),
        _ => EnvFilter::new(default_directives(verbose, quiet)),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Writers)
        .with_target(verbose > 0)
        // Colours only on a terminal: `nitro start`'s request log often goes to a file.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        )
        .without_time()
        .try_init();
}

/// Chooses the writer of an event: the request log's buffer, or stderr.
struct Writers;

impl<'a> MakeWriter<'a> for Writers {
    type Writer = EitherWriter<io::Stderr, RequestLogWriter>;

    fn make_writer(&'a self) -> Self::Writer {
        EitherWriter::A(io::stderr())
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        if meta.target() == REQUEST_TARGET {
            EitherWriter::B(RequestLogWriter)
        } else {
            EitherWriter::A(io::stderr())
        }
    }
}

/// Appends to the request log's buffer (the subscriber writes each event in one call).
struct RequestLogWriter;

impl Write for RequestLogWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        buffer().append(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Lines waiting for the writer thread.
struct Buffer {
    lines: Mutex<Vec<u8>>,
    wake: Condvar,
}

impl Buffer {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.lines.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn append(&self, bytes: &[u8]) {
        let mut lines = self.lock();
        lines.extend_from_slice(bytes);
        if lines.len() >= MAX_BUFFERED {
            // stderr is not keeping up: write here, in order, under the lock.
            let _ = io::stderr().lock().write_all(&lines);
            lines.clear();
        } else if lines.len() >= FLUSH_AT {
            self.wake.notify_one();
        }
    }

    /// Writes what is waiting to stderr.
    fn write_out(&self, spare: &mut Vec<u8>) {
        let stderr = io::stderr();
        self.write_to(spare, || stderr.lock());
    }

    /// Writes what is waiting to the output `lock` gives. The output is taken before the
    /// buffer is released (as [`append`](Buffer::append) does), so lines keep their order.
    fn write_to<W: Write>(&self, spare: &mut Vec<u8>, lock: impl FnOnce() -> W) {
        let mut lines = self.lock();
        if lines.is_empty() {
            return;
        }
        // Swap buffers so appends go on while the output is written.
        std::mem::swap(&mut *lines, spare);
        let mut out = lock();
        drop(lines);
        let _ = out.write_all(spare);
        let _ = out.flush();
        spare.clear();
    }
}

impl Buffer {
    fn new() -> Buffer {
        Buffer {
            lines: Mutex::new(Vec::new()),
            wake: Condvar::new(),
        }
    }
}

/// The buffer, and its writer thread on first use.
fn buffer() -> &'static Buffer {
    static BUFFER: OnceLock<Buffer> = OnceLock::new();
    static WRITER: OnceLock<()> = OnceLock::new();
    let buffer = BUFFER.get_or_init(Buffer::new);
    WRITER.get_or_init(|| {
        let spawned = std::thread::Builder::new()
            .name("nitro-log".into())
            .spawn(move || {
                let mut spare = Vec::new();
                loop {
                    let lines = buffer.lock();
                    let (lines, _) = buffer
                        .wake
                        .wait_timeout(lines, FLUSH_EVERY)
                        .unwrap_or_else(PoisonError::into_inner);
                    drop(lines);
                    buffer.write_out(&mut spare);
                }
            });
        if let Err(err) = spawned {
            eprintln!("warning: cannot start the log writer thread ({err}): request log lines are written when the process exits");
        }
    });
    buffer
}

/// Writes the request-log lines still waiting. Call before the process exits.
pub(crate) fn flush() {
    buffer().write_out(&mut Vec::new());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffered_lines_come_out_whole_and_in_order() {
        let buffer = std::sync::Arc::new(Buffer::new());
        let out = std::sync::Arc::new(Mutex::new(Vec::new()));
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let (buffer, out) = (buffer.clone(), out.clone());
                std::thread::spawn(move || {
                    let mut spare = Vec::new();
                    for i in 0..500 {
                        buffer.append(format!("{t} {i}\n").as_bytes());
                        if i % 50 == 0 {
                            buffer.write_to(&mut spare, || SharedVec(out.clone()));
                        }
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        buffer.write_to(&mut Vec::new(), || SharedVec(out.clone()));
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2000);
        for t in 0..4 {
            let mine: Vec<&str> = lines
                .iter()
                .copied()
                .filter(|l| l.starts_with(&format!("{t} ")))
                .collect();
            let want: Vec<String> = (0..500).map(|i| format!("{t} {i}")).collect();
            assert_eq!(mine, want, "thread {t}'s lines, whole and in order");
        }
        assert!(buffer.lock().is_empty());
    }

    struct SharedVec(std::sync::Arc<Mutex<Vec<u8>>>);

    impl Write for SharedVec {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn only_the_request_log_is_buffered() {
        let writers = Writers;
        // A subscriber that enables every span, so they have metadata.
        tracing::subscriber::with_default(tracing_subscriber::registry(), || {
            let log = tracing::info_span!(target: "nitro::request", "x");
            let other = tracing::info_span!(target: "nitro::server", "y");
            let log = log.metadata().expect("enabled");
            let other = other.metadata().expect("enabled");
            assert!(matches!(writers.make_writer_for(log), EitherWriter::B(_)));
            assert!(matches!(writers.make_writer_for(other), EitherWriter::A(_)));
        });
    }

    #[test]
    fn verbosity_maps_to_a_valid_filter() {
        assert_eq!(default_directives(3, true), "warn");
        assert_eq!(default_directives(0, false), "info");
        for v in 0..5 {
            EnvFilter::try_new(default_directives(v, false)).unwrap();
        }
    }
}
