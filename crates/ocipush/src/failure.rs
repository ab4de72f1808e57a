//! Errors as the user sees them — `error: …`, `  caused by: …`, `hint: …` — and the exit codes
//! scripts depend on (idpbuilder's scheme, see DESIGN.md).

use std::fmt::Write as _;

use ocipush_engine::{FailureKind, PushError};

pub const EXIT_OK: u8 = 0;
pub const EXIT_GENERAL: u8 = 1;
pub const EXIT_AUTH: u8 = 2;
pub const EXIT_NETWORK: u8 = 3;
pub const EXIT_IMAGE: u8 = 4;
pub const EXIT_REGISTRY: u8 = 5;
pub const EXIT_TIMEOUT: u8 = 6;
pub const EXIT_USAGE: u8 = 64;
pub const EXIT_INTERRUPTED: u8 = 130;

pub fn exit_code(kind: FailureKind) -> u8 {
    match kind {
        FailureKind::General => EXIT_GENERAL,
        FailureKind::Auth => EXIT_AUTH,
        FailureKind::Network => EXIT_NETWORK,
        FailureKind::InvalidImage => EXIT_IMAGE,
        FailureKind::Registry => EXIT_REGISTRY,
        FailureKind::Timeout => EXIT_TIMEOUT,
        FailureKind::Usage => EXIT_USAGE,
        FailureKind::Interrupted => EXIT_INTERRUPTED,
    }
}

/// A failure of the command as a whole.
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub causes: Vec<String>,
    pub hint: Option<String>,
    pub code: u8,
}

/// An engine error as the user sees it: its message and causes, its hint, its exit code.
impl From<PushError> for CliError {
    fn from(error: PushError) -> Self {
        CliError::new(error.kind(), &error, error.hint())
    }
}

impl CliError {
    pub fn new(
        kind: FailureKind,
        error: &(dyn std::error::Error + 'static),
        hint: Option<String>,
    ) -> Self {
        let mut causes = Vec::new();
        let mut source = error.source();
        let message = error.to_string();
        while let Some(s) = source {
            let text = s.to_string();
            if !message.contains(&text) && !causes.contains(&text) {
                causes.push(text);
            }
            source = s.source();
        }
        CliError {
            message,
            causes,
            hint,
            code: exit_code(kind),
        }
    }

    pub fn usage(message: impl Into<String>, hint: Option<String>) -> Self {
        CliError {
            message: message.into(),
            causes: Vec::new(),
            hint,
            code: EXIT_USAGE,
        }
    }

    pub fn with_code(message: impl Into<String>, hint: Option<String>, code: u8) -> Self {
        CliError {
            message: message.into(),
            causes: Vec::new(),
            hint,
            code,
        }
    }

    pub fn render(&self) -> String {
        let mut out = format!("error: {}\n", self.message);
        for cause in &self.causes {
            let _ = writeln!(out, "  caused by: {cause}");
        }
        if let Some(hint) = &self.hint {
            let _ = writeln!(out, "hint: {hint}");
        }
        out
    }
}

/// The subcommand a command line names (`push`, `list`, …): its first word that is one.
pub fn subcommand_in(args: &[std::ffi::OsString]) -> Option<String> {
    let cli = <crate::cli::Cli as clap::CommandFactory>::command();
    args.iter().skip(1).find_map(|arg| {
        cli.get_subcommands()
            .find(|c| arg == c.get_name())
            .map(|c| c.get_name().to_string())
    })
}

/// clap's own errors (an unknown flag, a bad value, a missing SOURCE) in the tool's form: the
/// error on one line, then a hint — clap's suggestion when it has a useful one, else the usage
/// and where the options are listed. Exit code 64, like every usage error.
pub fn from_clap(error: &clap::Error, subcommand: Option<&str>) -> CliError {
    let text = error.render().to_string();
    let mut message = String::new();
    let mut tips = Vec::new();
    let mut usage = None;
    for paragraph in text.split("\n\n") {
        if let Some(rest) = paragraph.trim().strip_prefix("error:") {
            // Continuation lines (`  <SOURCE>...`, `[possible values: …]`) join the message.
            message = rest
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
        } else if let Some(line) = paragraph.trim().strip_prefix("Usage:") {
            usage = line.lines().next().map(|l| l.trim().to_string());
        } else {
            for line in paragraph.lines() {
                let Some(tip) = line.trim().strip_prefix("tip:") else {
                    continue;
                };
                // "to pass '--x' as a value, use '-- --x'" would make the flag a SOURCE.
                if !tip.contains("use '-- ") {
                    tips.push(tip.trim().to_string());
                }
            }
        }
    }
    if message.is_empty() {
        message = "the command line could not be read".to_string();
    }
    let command = match subcommand {
        Some(name) => format!("ocipush {name}"),
        None => "ocipush".to_string(),
    };
    let hint = if !tips.is_empty() {
        tips.join("; ")
    } else {
        let listing = format!("`{command} --help` lists the options");
        match usage {
            Some(usage) => format!("usage: {usage}; {listing}"),
            None => listing,
        }
    };
    CliError::usage(message, Some(hint))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::Cli;

    fn rendered(args: &[&str]) -> String {
        let error = Cli::try_parse_from(args).expect_err("a usage error");
        let argv: Vec<std::ffi::OsString> = args.iter().map(Into::into).collect();
        let cli_error = from_clap(&error, subcommand_in(&argv).as_deref());
        assert_eq!(cli_error.code, EXIT_USAGE);
        cli_error.render()
    }

    #[test]
    fn clap_errors_read_as_error_and_hint() {
        assert_eq!(
            rendered(&["ocipush", "push", "--compression-level", "x", "app.tar"]),
            "error: invalid value 'x' for '--compression-level <N>': `x` is not a level (gzip takes 1 to 9, zstd 1 to 19)\n\
             hint: `ocipush push --help` lists the options\n"
        );
        // A negative number is the option's (bad) value, not an unknown flag to pass after `--`.
        let negative = rendered(&["ocipush", "push", "--compression-level", "-1", "app.tar"]);
        assert!(
            negative.starts_with("error: invalid value '-1' for '--compression-level <N>'"),
            "{negative}"
        );
        assert!(!negative.contains("'-- -1'"), "{negative}");
        let retries = rendered(&["ocipush", "push", "--retries", "-2", "app.tar"]);
        assert!(retries.contains("`-2` is not a count"), "{retries}");
        assert_eq!(
            rendered(&["ocipush", "push", "--jsn", "app.tar"]),
            "error: unexpected argument '--jsn' found\nhint: a similar argument exists: '--json'\n"
        );
        assert_eq!(
            rendered(&["ocipush", "push"]),
            "error: the following required arguments were not provided: <SOURCE>...\n\
             hint: usage: ocipush push [OPTIONS] SOURCE [DEST]; `ocipush push --help` lists the options\n"
        );
        assert_eq!(
            rendered(&["ocipush", "pish"]),
            "error: unrecognized subcommand 'pish'\nhint: a similar subcommand exists: 'push'\n"
        );
        // Every numeric flag clap parses takes a negative number as its (bad) value
        // (--chunk-size and --timeout take it too; settings rejects it, with its own hint).
        for flag in [
            "--limit-rate",
            "--min-size",
            "--max-size",
            "--retries",
            "-j",
        ] {
            let negative = rendered(&["ocipush", "push", flag, "-5", "app.tar"]);
            assert!(
                negative.contains("'-5'") || negative.contains("`-5`"),
                "{flag}: {negative}"
            );
            assert!(
                !negative.contains("unexpected argument"),
                "{flag}: {negative}"
            );
        }
        let unknown = rendered(&["ocipush", "push", "--bogus", "app.tar"]);
        assert!(!unknown.contains("'-- --bogus'"), "{unknown}");
        assert!(unknown.contains("hint: usage: ocipush push"), "{unknown}");
    }
}
