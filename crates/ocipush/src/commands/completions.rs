//! `ocipush completions SHELL`: a completion script generated from the clap definition itself,
//! so it always knows every subcommand, flag and value the binary accepts.

use std::io::Write;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;
use crate::failure::{CliError, EXIT_GENERAL, EXIT_OK};

pub fn run(shell: Shell) -> Result<u8, CliError> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "ocipush", &mut out);
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&out)
        .and_then(|()| stdout.flush())
        .map_err(|e| {
            CliError::with_code(format!("cannot write to stdout: {e}"), None, EXIT_GENERAL)
        })?;
    Ok(EXIT_OK)
}
