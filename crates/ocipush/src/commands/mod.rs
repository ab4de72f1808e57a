//! One module per subcommand.

pub mod list;
pub mod login;
pub mod logout;
pub mod push;
pub mod serve;
