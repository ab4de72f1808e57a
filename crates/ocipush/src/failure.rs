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
