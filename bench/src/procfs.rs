//! What `/proc` says about a server process: resident memory, CPU time, threads.

use std::time::Instant;

/// A field of `/proc/PID/status` in kB (`VmRSS:`, `Threads:` counts too).
pub(crate) fn status(pid: u32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The resident set of `pid`, in kB.
pub(crate) fn rss_kb(pid: u32) -> Option<u64> {
    status(pid, "VmRSS:")
}

/// User plus system CPU time of `pid` (all its threads), in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields are counted after its closing parenthesis.
    let fields: Vec<&str> = text[text.rfind(')')? + 2..].split_whitespace().collect();
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(user + system)
}

/// Linux reports CPU time in `USER_HZ` ticks, 100 per second on every architecture it runs
/// on (the kernel's internal `HZ` does not show here).
const TICKS_PER_SECOND: f64 = 100.0;

/// The CPU a process used over a window.
#[derive(Debug)]
pub(crate) struct CpuWindow {
    pid: u32,
    at: Instant,
    ticks: Option<u64>,
}

impl CpuWindow {
    pub(crate) fn start(pid: u32) -> CpuWindow {
        CpuWindow {
            pid,
            at: Instant::now(),
            ticks: cpu_ticks(pid),
        }
    }

    /// CPU seconds used since [`start`](CpuWindow::start), and the wall seconds.
    pub(crate) fn finish(&self) -> (Option<f64>, f64) {
        let wall = self.at.elapsed().as_secs_f64();
        let used = match (self.ticks, cpu_ticks(self.pid)) {
            (Some(before), Some(after)) => {
                Some(after.saturating_sub(before) as f64 / TICKS_PER_SECOND)
            }
            _ => None,
        };
        (used, wall)
    }
}

/// Nice value of this process (inherited by the servers it starts).
pub(crate) fn own_nice() -> Option<i64> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = text[text.rfind(')')? + 2..].split_whitespace().collect();
    fields.get(16)?.parse().ok()
}
