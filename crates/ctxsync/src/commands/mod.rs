//! One module per subcommand.

pub mod completions;
pub mod demo;
pub mod events;
pub mod export;
pub mod healthcheck;
pub mod holds;
pub mod keys;
pub mod man;
pub mod master_key;
pub mod serve;
pub mod sync;
