//! `[scheduled_tasks]`: which tasks (`tasks/*.rs`) the server runs on which cron schedule
//! (`docs/config.md`).
//!
//! ```toml
//! [scheduled_tasks]
//! "*/5 * * * * *" = ["cleanup"]      # every 5 seconds (six fields: seconds first)
//! "0 3 * * *" = ["backup", "report"] # at 03:00 every day (five fields)
//! ```
//!
//! Each key is a cron expression (croner's syntax, checked here so that a typo stops the
//! command before any build), each value the names of the tasks it starts (`cleanup` is
//! `tasks/cleanup.rs`; checked against the route table by [`check_names`]). `nitro build`
//! records the table in `nitro.json`; `nitro dev` and `nitro start` run it. Pure.

use std::collections::BTreeMap;

use nitro_router::RouteTable;
use nitro_runtime::tasks::Schedule;

/// `[scheduled_tasks]` as written: cron expression → task names.
pub type ScheduledTasks = BTreeMap<String, Vec<String>>;

/// What is wrong with `[scheduled_tasks]`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScheduledTasksError {
    /// A key is not a cron expression.
    #[error("`{expression}` in `[scheduled_tasks]` of `{file}` is not a cron expression: {reason}")]
    Expression {
        file: String,
        expression: String,
        reason: String,
    },
    /// A name without a `tasks/<name>.rs`.
    #[error(
        "`[scheduled_tasks]` of `{file}` runs task `{name}` at `{expression}`, but there is no `tasks/{name}.rs`"
    )]
    UnknownTask {
        file: String,
        expression: String,
        name: String,
    },
}

impl ScheduledTasksError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            ScheduledTasksError::Expression { .. } => "write five fields (`minute hour day month weekday`, as `0 3 * * *`) or six with seconds first (`*/5 * * * * *`)".to_owned(),
            ScheduledTasksError::UnknownTask { name, .. } => {
                format!("add `tasks/{name}.rs` with `pub async fn run(payload: nitro::Value) -> nitro::Result<nitro::Value>`, or remove the name")
            }
        })
    }
}

/// The schedules of `table`; `file` names `nitro.toml` in errors.
pub fn schedules(table: &ScheduledTasks, file: &str) -> Result<Vec<Schedule>, ScheduledTasksError> {
    table
        .iter()
        .map(|(expression, names)| {
            Schedule::parse(expression, names.clone()).map_err(|reason| {
                ScheduledTasksError::Expression {
                    file: file.to_owned(),
                    expression: expression.clone(),
                    reason,
                }
            })
        })
        .collect()
}

/// Checks that every name of `table` is a task of `routes`.
pub fn check_names(
    table: &ScheduledTasks,
    routes: &RouteTable,
    file: &str,
) -> Result<(), ScheduledTasksError> {
    for (expression, names) in table {
        for name in names {
            if routes.task(name).is_none() {
                return Err(ScheduledTasksError::UnknownTask {
                    file: file.to_owned(),
                    expression: expression.clone(),
                    name: name.clone(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nitro_router::{ProjectFolders, ScanOptions};

    #[test]
    fn expressions_are_checked_and_names_must_be_tasks() {
        let table: ScheduledTasks = toml::from_str(
            "\"*/5 * * * * *\" = [\"cleanup\"]\n\"0 3 * * *\" = [\"cleanup\", \"report\"]\n",
        )
        .unwrap();
        assert_eq!(schedules(&table, "nitro.toml").unwrap().len(), 2);

        let bad: ScheduledTasks = toml::from_str("\"*/5 * *\" = [\"cleanup\"]\n").unwrap();
        let error = schedules(&bad, "app/nitro.toml").unwrap_err();
        assert!(
            error.to_string().starts_with(
                "`*/5 * *` in `[scheduled_tasks]` of `app/nitro.toml` is not a cron expression: "
            ),
            "{error}"
        );

        let routes = RouteTable::from_project(
            ["index.rs"],
            &ProjectFolders {
                tasks: vec!["cleanup.rs".into()],
                ..ProjectFolders::default()
            },
            &ScanOptions::default(),
        )
        .unwrap();
        assert_eq!(
            check_names(&table, &routes, "nitro.toml")
                .unwrap_err()
                .to_string(),
            "`[scheduled_tasks]` of `nitro.toml` runs task `report` at `0 3 * * *`, but there is no `tasks/report.rs`"
        );
    }
}
