//! One module per subcommand.

pub mod demo;
pub mod keys;
pub mod serve;
