//! One module per subcommand.

pub mod list;
pub mod push;
pub mod serve;
