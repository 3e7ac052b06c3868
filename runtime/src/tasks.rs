//! The app's tasks (`tasks/*.rs`): running one by name, never twice at once, and the scheduler
//! of `[scheduled_tasks]`.
//!
//! A task is named by its file stem (`tasks/cleanup.rs` is `cleanup`,
//! [`nitro_router::task_name`]). [`Tasks::run`] looks it up in an [`App`] (the one current
//! when the run starts, so an edit in `nitro dev` applies from the next run), refuses a task
//! that is running already ([`TaskError::Busy`]), and awaits its `run` with a JSON payload.
//! [`spawn_scheduler`] starts one timer per cron expression ([`Schedule`]); at each tick it
//! starts every task of that expression on a thread of the blocking pool (a task may block,
//! as a plain `fn` route may), with no time limit: a tick that finds the task
//! still running is skipped and logged, a failure or a panic is logged with the file, and
//! neither stops the server or the schedule.
//!
//! Cron expressions are croner's (five fields, or six with seconds first), evaluated in the
//! server's local time zone (`TZ`).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Local};

use crate::module::CallError;
use crate::{App, RouteEntry};

/// Why a task did not give a result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// No file `tasks/<name>.rs`.
    #[error("no task `{name}`: {}", known_text(known))]
    Unknown { name: String, known: Vec<String> },
    /// The task's file did not build (`nitro dev`).
    #[error("task `{file}` did not build: {message}")]
    NotBuilt { file: String, message: String },
    /// The task is running already: a task never runs twice at once.
    #[error("task `{file}` is still running: this run is skipped")]
    Busy { file: String },
    /// Its `run` returned an error or panicked.
    #[error("task `{file}` failed: {message}")]
    Failed { file: String, message: String },
}

fn known_text(known: &[String]) -> String {
    if known.is_empty() {
        "the app has no `tasks/` files".to_owned()
    } else {
        format!(
            "the tasks are {}",
            known
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// The tasks running now, by file. Cloning gives another handle to the same set.
#[derive(Clone, Default, Debug)]
pub struct Tasks {
    running: Arc<Mutex<HashSet<String>>>,
}

/// Removes a task from the running set when its run ends (or is dropped).
struct Running {
    set: Arc<Mutex<HashSet<String>>>,
    file: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.file);
    }
}

impl Tasks {
    pub fn new() -> Tasks {
        Tasks::default()
    }

    /// Runs task `name` of `app` with `payload` (JSON text) and returns its result (JSON
    /// text). A run of the same task that has not finished makes this one
    /// [`TaskError::Busy`] at once.
    pub async fn run(&self, app: &App, name: &str, payload: &str) -> Result<String, TaskError> {
        let Some(route) = app.table.task(name) else {
            return Err(TaskError::Unknown {
                name: name.to_owned(),
                known: app
                    .table
                    .tasks()
                    .iter()
                    .filter_map(|t| nitro_router::task_name(&t.file))
                    .map(str::to_owned)
                    .collect(),
            });
        };
        let file = route.file.clone();
        let module = match app.routes.get(&file) {
            Some(RouteEntry::Loaded(module)) => module.clone(),
            Some(RouteEntry::Failed { message }) => {
                return Err(TaskError::NotBuilt {
                    file,
                    message: message.clone(),
                });
            }
            None => {
                return Err(TaskError::NotBuilt {
                    message: format!("task `{file}` is not loaded"),
                    file,
                });
            }
        };
        let _running = {
            let mut set = self.running.lock().unwrap_or_else(|e| e.into_inner());
            if !set.insert(file.clone()) {
                return Err(TaskError::Busy { file });
            }
            Running {
                set: self.running.clone(),
                file: file.clone(),
            }
        };
        let Some(call) = module.task_run(payload) else {
            return Err(TaskError::Failed {
                message: format!("`{file}` exports no `run`"),
                file,
            });
        };
        call.await.map_err(|error| TaskError::Failed {
            message: match error {
                CallError::Missing => "the task does not define `run`".to_owned(),
                other => other.to_string(),
            },
            file,
        })
    }
}

/// One entry of `[scheduled_tasks]`: a cron expression and the tasks it starts.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// As written (`*/5 * * * * *`).
    pub expression: String,
    pub tasks: Vec<String>,
    cron: croner::Cron,
}

impl Schedule {
    /// Parses `expression` (five fields, or six with seconds first; croner's syntax, with
    /// `@hourly` and friends). The error is croner's, for a message naming the key.
    pub fn parse(expression: &str, tasks: Vec<String>) -> Result<Schedule, String> {
        let cron = croner::Cron::new(expression)
            .with_seconds_optional()
            .parse()
            .map_err(|e| e.to_string())?;
        Ok(Schedule {
            expression: expression.to_owned(),
            tasks,
            cron,
        })
    }

    /// The first tick strictly after `after`.
    pub fn next_after(&self, after: &DateTime<Local>) -> Option<DateTime<Local>> {
        self.cron.find_next_occurrence(after, false).ok()
    }
}

/// Starts the schedules on the current tokio runtime: at each tick, every task of the
/// schedule runs on the `App` that `app` returns then (the server's current one), with the
/// payload `{"scheduled_time": "<RFC 3339>"}`. Stops when the returned handle is aborted.
pub fn spawn_scheduler(
    schedules: Vec<Schedule>,
    tasks: Tasks,
    app: impl Fn() -> Arc<App> + Send + Sync + 'static,
) -> tokio::task::JoinHandle<()> {
    let app = Arc::new(app);
    tokio::spawn(async move {
        let mut timers = tokio::task::JoinSet::new();
        for schedule in schedules {
            let tasks = tasks.clone();
            let app = app.clone();
            timers.spawn(async move {
                let mut after = Local::now();
                loop {
                    let Some(next) = schedule.next_after(&after) else {
                        tracing::warn!(target: "nitro::tasks", "the schedule `{}` has no next time: it stops", schedule.expression);
                        return;
                    };
                    let wait = (next - Local::now()).to_std().unwrap_or(Duration::ZERO);
                    tokio::time::sleep(wait).await;
                    after = next;
                    let payload = serde_json::json!({ "scheduled_time": next.to_rfc3339() })
                        .to_string();
                    for name in &schedule.tasks {
                        let app = app();
                        let tasks = tasks.clone();
                        let name = name.clone();
                        let payload = payload.clone();
                        // On a thread of the blocking pool: a task may block (a plain `fn run`,
                        // a slow query) without holding up a worker that serves requests.
                        let runtime = tokio::runtime::Handle::current();
                        tokio::task::spawn_blocking(move || runtime.block_on(async move {
                            match tasks.run(&app, &name, &payload).await {
                                Ok(_) => {
                                    tracing::debug!(target: "nitro::tasks", "task `{name}` ran");
                                }
                                Err(error @ TaskError::Busy { .. }) => {
                                    tracing::warn!(target: "nitro::tasks", "{error}");
                                }
                                Err(error) => {
                                    tracing::error!(target: "nitro::tasks", "{error}");
                                }
                            }
                        }));
                    }
                }
            });
        }
        while timers.join_next().await.is_some() {}
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn schedules_have_seconds_resolution() {
        let schedule = Schedule::parse("*/5 * * * * *", vec!["cleanup".into()]).unwrap();
        let at = Local.with_ymd_and_hms(2026, 1, 1, 12, 0, 1).unwrap();
        let next = schedule.next_after(&at).unwrap();
        assert_eq!(next, Local.with_ymd_and_hms(2026, 1, 1, 12, 0, 5).unwrap());
        assert_eq!(
            schedule.next_after(&next).unwrap(),
            Local.with_ymd_and_hms(2026, 1, 1, 12, 0, 10).unwrap()
        );
        // Five fields: minutes.
        let hourly = Schedule::parse("0 * * * *", vec![]).unwrap();
        assert_eq!(
            hourly.next_after(&at).unwrap(),
            Local.with_ymd_and_hms(2026, 1, 1, 13, 0, 0).unwrap()
        );
        assert!(Schedule::parse("*/5 * * *", vec![]).is_err());
        assert!(Schedule::parse("61 * * * * *", vec![]).is_err());
    }

    #[test]
    fn unknown_tasks_list_the_known_ones() {
        let e = TaskError::Unknown {
            name: "x".into(),
            known: vec!["a".into(), "b".into()],
        };
        assert_eq!(e.to_string(), "no task `x`: the tasks are `a`, `b`");
    }
}
