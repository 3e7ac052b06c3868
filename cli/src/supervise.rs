//! `nitro start --supervise` and `nitro dev`: the server runs in a child process that is
//! started again when a fault no thread can catch ends it.
//!
//! Panics in route code and calls past `handler_timeout` are contained inside the server (a
//! `500`, a `504`, a `1011`). A stack overflow, an abort (`std::process::abort`, a failed
//! allocation), a segfault in `unsafe` code or `std::process::exit` end the whole process:
//! Rust cannot stop them. The supervisor (this process) then says what ended the server (the
//! signal or exit status) and which route was running (each route call writes its route file
//! to a record file as it starts: [`nitro_runtime::ServerConfig::call_record`]), and starts it
//! again at once. Open connections drop with the process; clients reconnect.
//!
//! Restarts are budgeted ([`Budget`]): the first crash restarts at once, each further crash
//! within a minute waits twice as long (from 250 ms, at most 30 s), and the tenth within a
//! minute ends the supervisor with status 1, so that a crash loop is seen (by systemd, by the
//! operator) instead of hidden. A server that fails before it serves (a port in use, a broken
//! output) is not restarted: its error and exit status are the supervisor's.
//!
//! SIGINT and SIGTERM are passed to the server, which shuts down gracefully; the supervisor
//! exits with its status. The server runs in a process group of its own, so a Ctrl-C in the
//! terminal reaches it once, through the supervisor (twice would make it exit at once). If the
//! supervisor itself is killed, the kernel sends the server SIGTERM (`PR_SET_PDEATHSIG`).
//!
//! `nitro dev` is supervised the same way, with [`Budget::dev`] (it never gives up: a crash
//! needs a request or an edit to happen again), and tells the restarted server what ended the
//! last one ([`Child::crash_env`]) so that its page overlay shows it.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, ExitStatus};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};
use tokio::signal::unix::{SignalKind, signal};

use crate::ui::Ui;

/// The environment variable through which the supervisor tells the server where to record
/// its route calls; its presence also makes the server die with its supervisor.
pub(crate) const CALL_RECORD_ENV: &str = "NITRO_CALL_RECORD";

/// How many crashes are restarted, and how soon.
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    /// Crashes older than this are forgotten.
    window: Duration,
    /// One more crash within the window ends the supervisor.
    max_crashes: usize,
    /// The wait before the restart after a second crash within the window; doubled for each
    /// further one.
    first_delay: Duration,
    max_delay: Duration,
    crashes: VecDeque<Instant>,
}

impl Budget {
    /// For `nitro dev`: restarts at once, then waits from 250 ms to 2 s while crashes repeat
    /// within a minute; never gives up.
    pub(crate) fn dev() -> Budget {
        Budget {
            window: Duration::from_secs(60),
            max_crashes: usize::MAX,
            first_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(2),
            crashes: VecDeque::new(),
        }
    }

    /// Ten crashes a minute; waits from 250 ms to 30 s after the first.
    pub(crate) fn production() -> Budget {
        Budget {
            window: Duration::from_secs(60),
            max_crashes: 10,
            first_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(30),
            crashes: VecDeque::new(),
        }
    }

    /// Records a crash at `now`: the wait before restarting, or `None` when the budget is
    /// spent. Pure.
    pub(crate) fn crashed(&mut self, now: Instant) -> Option<Duration> {
        while self
            .crashes
            .front()
            .is_some_and(|&at| now.duration_since(at) > self.window)
        {
            self.crashes.pop_front();
        }
        self.crashes.push_back(now);
        let recent = self.crashes.len();
        if recent >= self.max_crashes {
            return None;
        }
        if recent == 1 {
            return Some(Duration::ZERO);
        }
        let doublings = u32::try_from(recent - 2).unwrap_or(u32::MAX).min(16);
        Some(
            self.first_delay
                .saturating_mul(1 << doublings)
                .min(self.max_delay),
        )
    }

    /// The crashes within the window.
    pub(crate) fn recent(&self) -> usize {
        self.crashes.len()
    }
}

/// What ended the server, in words. Pure.
pub(crate) fn describe_exit(status: ExitStatus) -> String {
    if let Some(signal) = status.signal() {
        let what = match signal {
            4 => "SIGILL: an illegal instruction",
            6 => {
                "SIGABRT: an abort (a stack overflow, a failed allocation, `std::process::abort`, a panic while panicking)"
            }
            7 => "SIGBUS: a bus error in unsafe code",
            8 => "SIGFPE: an arithmetic fault",
            9 => "SIGKILL: killed (by the kernel's out-of-memory killer?)",
            11 => "SIGSEGV: a segmentation fault (a bad pointer in unsafe code)",
            _ => "a signal",
        };
        return format!("signal {signal} ({what})");
    }
    match status.code() {
        Some(0) => {
            "exit status 0 without being asked to stop (a route called `std::process::exit`?)"
                .to_owned()
        }
        Some(code) => format!("exit status {code} (a route called `std::process::exit({code})`?)"),
        None => "an unknown status".to_owned(),
    }
}

/// The route file of the last route call that started, from the record file.
pub(crate) fn last_route(record: &Path) -> Option<String> {
    let bytes = std::fs::read(record).ok()?;
    let end = bytes.iter().position(|&b| b == b'\n')?;
    let name = String::from_utf8_lossy(&bytes[..end]).into_owned();
    (!name.is_empty()).then_some(name)
}

/// The message for a crash. Pure.
pub(crate) fn crash_message(status: ExitStatus, route: Option<&str>) -> String {
    let running = match route {
        Some(route) => format!("the last route call that started was `{route}`"),
        None => "no route call had started".to_owned(),
    };
    format!(
        "the server died: {}; {running}. Its open connections were dropped",
        describe_exit(status)
    )
}

/// The exit code that reports `status` (a signal as 128 + its number, as shells do).
fn exit_code(status: ExitStatus) -> ExitCode {
    let code = status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(1);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// The server process to supervise.
#[derive(Debug, Clone)]
pub(crate) struct Child {
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<OsString>,
    /// More environment for the server.
    pub(crate) env: Vec<(OsString, OsString)>,
    /// The variable that tells a restarted server what ended the one before (its value is
    /// [`crash_message`]); `None`: not told.
    pub(crate) crash_env: Option<&'static str>,
}

impl Child {
    /// `program args`, nothing more.
    pub(crate) fn new(program: &Path, args: Vec<OsString>) -> Child {
        Child {
            program: program.to_owned(),
            args,
            env: Vec::new(),
            crash_env: None,
        }
    }
}

/// Runs `child` as the server and restarts it after each crash, within `budget`.
pub(crate) fn run(ui: &Ui, child: &Child, budget: Budget) -> anyhow::Result<ExitCode> {
    // One file per supervisor (tests run several in one process).
    static SUPERVISORS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = SUPERVISORS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let record = std::env::temp_dir().join(format!("nitro-{}-{n}-calls", std::process::id()));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(supervise(ui, child, &record, budget));
    let _ = std::fs::remove_file(&record);
    result
}

async fn supervise(
    ui: &Ui,
    server: &Child,
    record: &PathBuf,
    mut budget: Budget,
) -> anyhow::Result<ExitCode> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut last_crash: Option<String> = None;
    loop {
        let _ = std::fs::remove_file(record);
        let mut command = tokio::process::Command::new(&server.program);
        command
            .args(&server.args)
            .envs(server.env.iter().map(|(k, v)| (k, v)))
            .env(CALL_RECORD_ENV, record)
            // Its own group: the terminal's Ctrl-C reaches it once, through `stop`.
            .process_group(0)
            .kill_on_drop(true);
        if let (Some(name), Some(crash)) = (server.crash_env, &last_crash) {
            command.env(name, crash);
        }
        let mut child = command.spawn()?;
        let pid = child.id().and_then(|id| Pid::from_raw(id as i32));
        let status = tokio::select! {
            status = child.wait() => status?,
            _ = interrupt.recv() => return stop(&mut child, pid, Signal::INT, &mut interrupt, &mut terminate).await,
            _ = terminate.recv() => return stop(&mut child, pid, Signal::TERM, &mut interrupt, &mut terminate).await,
        };
        // The server creates the record file once it is bound: before that, its failure is
        // a startup error (reported by the server itself), not a crash.
        if !record.exists() {
            return Ok(exit_code(status));
        }
        let crash = crash_message(status, last_route(record).as_deref());
        ui.error(&crash);
        last_crash = Some(crash);
        let Some(delay) = budget.crashed(Instant::now()) else {
            ui.error(&format!(
                "the server crashed {} times within a minute: giving up (fix the route, then start again)",
                budget.recent()
            ));
            return Ok(ExitCode::FAILURE);
        };
        ui.status(&format!(
            "  restarting the server{}",
            if delay.is_zero() {
                String::new()
            } else {
                format!(
                    " in {:.2} s ({} crashes within a minute)",
                    delay.as_secs_f64(),
                    budget.recent()
                )
            }
        ));
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = interrupt.recv() => return Ok(ExitCode::from(130)),
            _ = terminate.recv() => return Ok(ExitCode::from(143)),
        }
    }
}

/// Passes `first` to the server and waits for it to stop (a further signal is passed on too:
/// the second one makes it exit at once); returns its status.
async fn stop(
    child: &mut tokio::process::Child,
    pid: Option<Pid>,
    first: Signal,
    interrupt: &mut tokio::signal::unix::Signal,
    terminate: &mut tokio::signal::unix::Signal,
) -> anyhow::Result<ExitCode> {
    let send = |signal: Signal| {
        if let Some(pid) = pid {
            let _ = kill_process(pid, signal);
        }
    };
    send(first);
    loop {
        tokio::select! {
            status = child.wait() => return Ok(exit_code(status?)),
            _ = interrupt.recv() => send(Signal::INT),
            _ = terminate.recv() => send(Signal::TERM),
        }
    }
}

/// In the server, when started by a supervisor: die with it (SIGTERM, a graceful shutdown),
/// and the record file to write route calls to.
pub(crate) fn supervised_server() -> Option<PathBuf> {
    let record = std::env::var_os(CALL_RECORD_ENV)?;
    if let Err(err) = rustix::process::set_parent_process_death_signal(Some(Signal::TERM)) {
        tracing::warn!(target: "nitro::start", "cannot ask to stop with the supervisor: {err}");
    }
    Some(PathBuf::from(record))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_restarts_at_once_then_backs_off_then_gives_up() {
        let mut budget = Budget::production();
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        assert_eq!(budget.crashed(at(0)), Some(Duration::ZERO));
        assert_eq!(budget.crashed(at(1)), Some(Duration::from_millis(250)));
        assert_eq!(budget.crashed(at(2)), Some(Duration::from_millis(500)));
        // A quiet minute forgets them.
        assert_eq!(budget.crashed(at(100)), Some(Duration::ZERO));
        for s in 101..109 {
            assert!(budget.crashed(at(s)).is_some(), "crash at {s} s");
        }
        assert_eq!(budget.crashed(at(109)), None, "the tenth within a minute");
    }

    #[test]
    fn exits_are_described() {
        let signal = |n: i32| ExitStatus::from_raw(n);
        let code = |n: i32| ExitStatus::from_raw(n << 8);
        assert!(describe_exit(signal(11)).starts_with("signal 11 (SIGSEGV"));
        assert!(describe_exit(signal(6)).contains("stack overflow"));
        assert!(describe_exit(code(0)).contains("`std::process::exit`"));
        assert!(describe_exit(code(3)).starts_with("exit status 3"));
        assert_eq!(
            crash_message(signal(6), Some("routes/deep.rs")),
            format!(
                "the server died: {}; the last route call that started was `routes/deep.rs`. Its open connections were dropped",
                describe_exit(signal(6))
            )
        );
        assert_eq!(exit_code(signal(15)), ExitCode::from(143));
    }

    /// A stand-in server: `sh -c SCRIPT`, counting its starts in `starts`.
    fn sh(script: &str, starts: &Path) -> Vec<OsString> {
        vec![
            "-c".into(),
            format!("echo start >> '{}'; {script}", starts.display()).into(),
        ]
    }

    fn quick(max_crashes: usize) -> Budget {
        Budget {
            max_crashes,
            first_delay: Duration::from_millis(1),
            ..Budget::production()
        }
    }

    #[test]
    fn a_crashing_server_is_restarted_within_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let starts = dir.path().join("starts");
        // Serves (the record exists), a route starts, and the process dies of SIGSEGV.
        let args = sh(
            "printf 'routes/boom.rs\\n' > \"$NITRO_CALL_RECORD\"; kill -SEGV $$",
            &starts,
        );
        let code = run(
            &Ui::new(true),
            &Child::new(Path::new("/bin/sh"), args),
            quick(3),
        )
        .unwrap();
        assert_eq!(code, ExitCode::FAILURE);
        let count = std::fs::read_to_string(&starts).unwrap().lines().count();
        assert_eq!(
            count, 3,
            "started, restarted twice, then the budget was spent"
        );
    }

    #[test]
    fn a_restarted_server_is_told_what_ended_the_last_one() {
        let dir = tempfile::tempdir().unwrap();
        let starts = dir.path().join("starts");
        let seen = dir.path().join("seen");
        // Each start notes what it was told, then crashes in `routes/boom.rs`.
        let script = format!(
            "printf '%s|' \"$NITRO_TEST_CRASH\" >> '{}'; printf 'routes/boom.rs\\n' > \"$NITRO_CALL_RECORD\"; kill -SEGV $$",
            seen.display()
        );
        let mut child = Child::new(Path::new("/bin/sh"), sh(&script, &starts));
        child.crash_env = Some("NITRO_TEST_CRASH");
        let code = run(&Ui::new(true), &child, quick(2)).unwrap();
        assert_eq!(code, ExitCode::FAILURE);
        let seen = std::fs::read_to_string(&seen).unwrap();
        let told: Vec<&str> = seen.split('|').collect();
        assert_eq!(told[0], "", "the first start was told nothing");
        assert!(
            told[1].starts_with("the server died: signal 11 (SIGSEGV")
                && told[1].contains("`routes/boom.rs`"),
            "{told:?}"
        );
    }

    #[test]
    fn the_dev_budget_never_gives_up_and_waits_at_most_2_s() {
        let mut budget = Budget::dev();
        let start = Instant::now();
        assert_eq!(budget.crashed(start), Some(Duration::ZERO));
        for i in 1..1000 {
            let delay = budget.crashed(start + Duration::from_millis(i)).unwrap();
            assert!(delay <= Duration::from_secs(2));
        }
    }

    #[test]
    fn a_server_that_fails_to_start_is_not_restarted() {
        let dir = tempfile::tempdir().unwrap();
        let starts = dir.path().join("starts");
        let code = run(
            &Ui::new(true),
            &Child::new(Path::new("/bin/sh"), sh("exit 3", &starts)),
            quick(3),
        )
        .unwrap();
        assert_eq!(code, ExitCode::from(3));
        assert_eq!(std::fs::read_to_string(&starts).unwrap().lines().count(), 1);
    }
}
