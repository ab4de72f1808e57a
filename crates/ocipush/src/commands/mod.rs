//! One module per subcommand.

pub mod completions;
pub mod list;
pub mod login;
pub mod logout;
pub mod man;
pub mod push;
pub mod serve;
