//! A project on disk: its config, the generated cargo workspace and the cargo runs over it.

pub mod cargo_build;
pub mod codegen;
pub mod config;
pub mod config_limits;
pub mod config_observability;
pub mod config_pubsub;
pub mod config_rules;
pub mod config_runtime;
pub mod config_storage;
pub mod config_tasks;
#[cfg(test)]
mod config_tests;
pub(crate) mod embedded;
pub(crate) mod ide;
pub(crate) mod toml_text;
