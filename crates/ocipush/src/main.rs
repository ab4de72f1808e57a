//! `ocipush`: the thin binary over the push engine — parse the command line, resolve settings,
//! run the command, render errors, exit with the documented code.

mod cli;
mod commands;
mod connection;
mod docker_context;
mod failure;
mod filter;
mod idpbuilder;
mod local;
mod printer;
mod progress;
mod settings;
#[cfg(test)]
mod snapshots;
mod sources;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::failure::{CliError, EXIT_GENERAL, EXIT_INTERRUPTED};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version are clap's to print.
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::from(0);
        }
        // No command at all: the help is the answer (on stderr, as a usage error).
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return ExitCode::from(failure::EXIT_USAGE);
        }
        Err(e) => {
            let args: Vec<_> = std::env::args_os().collect();
            let subcommand = failure::subcommand_in(&args);
            let error = failure::from_clap(&e, subcommand.as_deref());
            // `push --json` promises one document on stdout whatever happens.
            if subcommand.as_deref() == Some("push") && args.iter().any(|a| a == "--json") {
                println!("{}", printer::json_failure(&error));
            }
            eprint!("{}", error.render());
            return ExitCode::from(error.code);
        }
    };
    // `serve` runs for days: its log lines keep tracing's wall-clock time.
    let run_stamps = !matches!(cli.command, Command::Serve(_));
    init_logging(cli.verbose, cli.quiet, run_stamps);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_GENERAL);
        }
    };
    let quiet = cli.quiet;
    // `push` and `serve` stop gracefully on their own signals (cancelling uploads, finishing
    // requests); the other commands just stop.
    let graceful = matches!(cli.command, Command::Push(_) | Command::Serve(_));
    let result = runtime.block_on(async move {
        if graceful {
            return run(cli).await;
        }
        tokio::select! {
            result = run(cli) => result,
            _ = tokio::signal::ctrl_c() => Err(CliError::with_code("interrupted", None, EXIT_INTERRUPTED)),
        }
    });
    // Blob producers run on blocking threads; do not wait for them after an interrupt.
    runtime.shutdown_background();
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            if !(quiet && error.code == EXIT_INTERRUPTED) {
                eprint!("{}", error.render());
            }
            ExitCode::from(error.code)
        }
    }
}

async fn run(cli: Cli) -> Result<u8, CliError> {
    match cli.command {
        Command::Push(args) => {
            let json = args.json;
            let result = match settings::resolve_push(args, &mut std::io::stdin().lock()) {
                Ok(settings) => commands::push::run(settings, cli.quiet).await,
                Err(error) => Err(error),
            };
            if let (true, Err(error)) = (json, &result) {
                println!("{}", printer::json_failure(error));
            }
            result
        }
        Command::List(args) => commands::list::run(args).await,
        Command::Serve(args) => commands::serve::run(args, cli.quiet).await,
        Command::Login(args) => commands::login::run(args, cli.quiet).await,
        Command::Logout(args) => commands::logout::run(args, cli.quiet),
        Command::Completions(args) => commands::completions::run(args.shell),
        Command::Man => commands::man::run(),
    }
}

/// Logs on stderr at the level `-q`/`-v` ask for; `run_stamps`: stamped with the run's time,
/// as progress lines are, rather than the date.
fn init_logging(verbose: u8, quiet: bool, run_stamps: bool) {
    // The run's clock starts here: log lines and progress lines are stamped from it.
    progress::run_start();
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => {
            "info,ocipush=debug,ocipush_engine=debug,ocipush_registry=debug,ocipush_source=debug"
        }
        _ => "debug,ocipush=trace,ocipush_engine=trace,ocipush_registry=trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("OCIPUSH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colours only for a person at a terminal: piped logs (CI, `2>file`) stay plain text, and
    // NO_COLOR (https://no-color.org) turns them off anywhere.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(progress::log_writer::LogWriter)
        .with_target(false)
        .with_ansi(ansi);
    let _ = if run_stamps {
        logs.with_timer(progress::log_writer::RunTime).try_init()
    } else {
        logs.try_init()
    };
}
