//! One module per subcommand.

pub mod demo;
pub mod events;
pub mod export;
pub mod holds;
pub mod keys;
pub mod master_key;
pub mod serve;
pub mod sync;
