//! Docker credential helpers: `docker-credential-<name> get|store|erase`, run with the server
//! URL (or a JSON document for `store`) on stdin, answering JSON on stdout
//! (`{"ServerURL","Username","Secret"}`), or a message and a non-zero exit on failure. A
//! `<token>` user name marks the secret as an identity token.
//!
//! Helpers may prompt or unlock a keyring, so each run has a deadline; a helper that does not
//! answer in time is killed. Their stdout is never shown (it carries the secret); their error
//! message is, once cut short.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::CredentialError;
use crate::secret::{Credentials, Secret};

/// How long a helper may take.
const DEADLINE: Duration = Duration::from_secs(60);
/// The user name helpers use for identity tokens.
pub const TOKEN_USERNAME: &str = "<token>";

/// One credential helper, by the name after `docker-credential-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Helper {
    name: String,
}

#[derive(serde::Deserialize)]
struct HelperCredentials {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

impl Helper {
    /// The helper `docker-credential-NAME` for `name` (e.g. `pass`); nothing runs until asked.
    pub fn new(name: &str) -> Helper {
        Helper {
            name: name.to_string(),
        }
    }

    /// `docker-credential-NAME`.
    pub fn program(&self) -> String {
        format!("docker-credential-{}", self.name)
    }

    /// The credentials the helper keeps for `server_url`, `None` if it has none.
    pub fn get(&self, server_url: &str) -> Result<Option<Credentials>, CredentialError> {
        let output = self.run("get", server_url.as_bytes())?;
        if !output.success {
            if is_not_found(&output.stdout) {
                return Ok(None);
            }
            return Err(self.failed("get", &output));
        }
        let parsed: HelperCredentials =
            serde_json::from_slice(&output.stdout).map_err(|e| CredentialError::Helper {
                program: self.program(),
                action: "get",
                // Only the position and category: the output holds the secret.
                detail: format!("unreadable answer ({})", super::json_error(&e)),
            })?;
        if parsed.secret.is_empty() {
            return Ok(None);
        }
        Ok(Some(if parsed.username == TOKEN_USERNAME {
            Credentials::IdentityToken {
                username: None,
                token: Secret::new(parsed.secret),
            }
        } else {
            Credentials::Basic {
                username: parsed.username,
                password: Secret::new(parsed.secret),
            }
        }))
    }

    /// Stores `credentials` for `server_url`.
    pub fn store(
        &self,
        server_url: &str,
        credentials: &Credentials,
    ) -> Result<(), CredentialError> {
        let (username, secret) = match credentials {
            Credentials::Basic { username, password } => (username.as_str(), password),
            Credentials::IdentityToken { token, .. } => (TOKEN_USERNAME, token),
            Credentials::RegistryToken(_) => {
                return Err(CredentialError::Helper {
                    program: self.program(),
                    action: "store",
                    detail: "credential helpers cannot keep registry tokens".into(),
                })
            }
        };
        let input = serde_json::json!({
            "ServerURL": server_url,
            "Username": username,
            "Secret": secret.expose(),
        })
        .to_string();
        let output = self.run("store", input.as_bytes())?;
        if output.success {
            Ok(())
        } else {
            Err(self.failed("store", &output))
        }
    }

    /// Removes what the helper keeps for `server_url`; `false` if it kept nothing.
    pub fn erase(&self, server_url: &str) -> Result<bool, CredentialError> {
        let output = self.run("erase", server_url.as_bytes())?;
        if output.success {
            Ok(true)
        } else if is_not_found(&output.stdout) || is_not_found(&output.stderr) {
            Ok(false)
        } else {
            Err(self.failed("erase", &output))
        }
    }

    fn failed(&self, action: &'static str, output: &Output) -> CredentialError {
        // Helpers print their error message on stdout (where a `get` prints the secret when it
        // succeeds); only a short non-JSON line is shown.
        let message = short_message(&output.stdout).or_else(|| short_message(&output.stderr));
        CredentialError::Helper {
            program: self.program(),
            action,
            detail: message.unwrap_or_else(|| "failed without a message".into()),
        }
    }

    fn run(&self, action: &'static str, input: &[u8]) -> Result<Output, CredentialError> {
        let program = self.program();
        let mut child = Command::new(&program)
            .arg(action)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    CredentialError::HelperMissing {
                        program: program.clone(),
                    }
                } else {
                    CredentialError::Helper {
                        program: program.clone(),
                        action,
                        detail: format!("cannot start it: {e}"),
                    }
                }
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            // A helper that exits without reading its input closes the pipe: not our error.
            let _ = stdin.write_all(input);
        }
        wait_with_deadline(child, DEADLINE).map_err(|detail| CredentialError::Helper {
            program,
            action,
            detail,
        })
    }
}

struct Output {
    success: bool,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

fn wait_with_deadline(mut child: Child, deadline: Duration) -> Result<Output, String> {
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(pipe) = pipe {
                let _ = pipe.take(1 << 20).read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = read(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = read(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "did not answer within {}s (is it waiting for input?)",
                    deadline.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("cannot wait for it: {e}")),
        }
    };
    Ok(Output {
        success: status.success(),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// docker-credential-helpers' `credentials.ErrCredentialsNotFound` message.
fn is_not_found(output: &[u8]) -> bool {
    String::from_utf8_lossy(output)
        .to_ascii_lowercase()
        .contains("credentials not found")
}

/// The first line of a helper's message, if it is a short one.
fn short_message(output: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(output);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    if line.starts_with('{') {
        return None;
    }
    Some(line.chars().take(200).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        assert!(is_not_found(b"credentials not found in native keychain\n"));
        assert!(!is_not_found(b"boom"));
        assert_eq!(
            short_message(b"\n  error: locked  \nmore"),
            Some("error: locked".into())
        );
        assert_eq!(short_message(br#"{"Secret":"x"}"#), None);
        assert_eq!(short_message(b""), None);
    }

    #[test]
    fn a_missing_helper_is_named() {
        let err = Helper::new("ocipush-test-no-such-helper")
            .get("r.io")
            .unwrap_err();
        assert!(matches!(err, CredentialError::HelperMissing { .. }));
        assert!(err
            .to_string()
            .contains("docker-credential-ocipush-test-no-such-helper"));
    }
}
