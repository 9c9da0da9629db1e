//! The `ctxsync` command: settings, start-up and the subcommands. A library as well as a binary
//! so the integration tests can build the real service in-process on port 0.

pub mod commands;
pub mod config_file;
pub mod connections;
pub mod demo_folder;
pub mod exposition;
mod hyper_errors;
mod private;
pub mod setting_errors;
pub mod settings;
pub mod startup;
mod stored;
pub mod telemetry;

pub use connections::ConnectionLimits;
pub use settings::{Cli, Command, KeysCommand, MasterKeyCommand, ServeSettings};
pub use startup::Application;
