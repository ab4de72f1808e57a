//! How to reach a registry, resolved from flags and the environment before anything runs:
//! the credentials (in the documented precedence) and where TLS material and credential files
//! live. The registry crate gets finished values and never reads the environment itself.
//!
//! Credential precedence, first match wins:
//! 1. `-u USER` with `--password-stdin` (or `-p`, with a warning);
//! 2. `OCIPUSH_USERNAME` / `OCIPUSH_PASSWORD` (`IDPBUILDER_REGISTRY_USER` / `_PASSWORD`), each
//!    filling in what the flags left open;
//! 3. for an idpbuilder Gitea, `idpbuilder get secrets -p gitea -o json`;
//! 4. docker's `$DOCKER_CONFIG/config.json` (`credHelpers`, `credsStore`, `auths`);
//! 5. containers' `auth.json` (`$REGISTRY_AUTH_FILE`, else `$XDG_RUNTIME_DIR/containers/auth.json`,
//!    else `~/.config/containers/auth.json`);
//! 6. none: anonymous.

use std::io::Read;
use std::path::PathBuf;

use ocipush_registry::credentials::CredentialStore;
use ocipush_registry::{Credentials, TlsOptions};

use crate::cli::ConnectionArgs;

use crate::failure::{CliError, EXIT_AUTH};
use crate::idpbuilder::{self, GiteaSecret};

/// The credential flags of `push` and `login`.
#[derive(Default)]
pub struct CredentialFlags {
    pub username: Option<String>,
    /// `-p`: visible to other users, so it earns a warning.
    pub password: Option<String>,
    pub password_stdin: bool,
}

impl std::fmt::Debug for CredentialFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialFlags")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("password_stdin", &self.password_stdin)
            .finish()
    }
}

impl ConnectionArgs {
    /// The credential flags, for [`resolve`] or [`explicit`].
    pub fn credential_flags(&mut self) -> CredentialFlags {
        CredentialFlags {
            username: self.username.take(),
            password: self.password.take().map(|p| p.0),
            password_stdin: self.password_stdin,
        }
    }

    /// TLS settings: `--insecure` (or `OCIPUSH_INSECURE`), `--ca-file`, and docker's certs.d.
    pub fn tls_options(&self) -> TlsOptions {
        TlsOptions {
            insecure: self.insecure
                || env_flag(&["OCIPUSH_INSECURE", "IDPBUILDER_REGISTRY_INSECURE"]),
            ca_files: self.ca_file.clone(),
            certs_dirs: certs_dirs(),
        }
    }
}

/// A secret given on the command line (`--src-creds`): `Debug` never shows it.
#[derive(Clone)]
pub struct Redacted(pub String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The warning `--insecure` earns.
pub const INSECURE_WARNING: &str = "TLS certificate verification is off (--insecure)";

/// Reads a variable from the first of `names` that is set and not empty.
pub fn env_first(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
}

/// Whether the first set variable of `names` says yes (`1`, `true`, `yes`, `on`).
pub fn env_flag(names: &[&str]) -> bool {
    env_first(names)
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
}

fn home() -> Option<PathBuf> {
    env_first(&["HOME"]).map(PathBuf::from)
}

/// Where docker and containers keep credentials (the library's own discovery, so a program
/// using it finds what `ocipush` finds).
pub fn credential_store() -> CredentialStore {
    CredentialStore::from_environment()
}

/// Roots of per-registry certificate folders: `$OCIPUSH_CERTS_D` (colon-separated), else
/// docker's `/etc/docker/certs.d` and `~/.docker/certs.d`, then containers'
/// `/etc/containers/certs.d` and `~/.config/containers/certs.d`.
pub fn certs_dirs() -> Vec<PathBuf> {
    if let Some(list) = env_first(&["OCIPUSH_CERTS_D"]) {
        return std::env::split_paths(&list).collect();
    }
    let mut dirs = vec![PathBuf::from("/etc/docker/certs.d")];
    if let Some(home) = home() {
        dirs.push(home.join(".docker/certs.d"));
    }
    dirs.push(PathBuf::from("/etc/containers/certs.d"));
    if let Some(home) = home() {
        dirs.push(home.join(".config/containers/certs.d"));
    }
    dirs
}

/// The user name and password the flags and environment give (levels 1 and 2), reading
/// standard input for `--password-stdin`.
pub fn explicit(
    flags: CredentialFlags,
    stdin: &mut dyn Read,
    warnings: &mut Vec<String>,
) -> Result<(Option<String>, Option<String>), CliError> {
    let password = if flags.password_stdin {
        if flags.password.is_some() {
            return Err(CliError::usage(
                "--password and --password-stdin are exclusive",
                None,
            ));
        }
        let mut raw = String::new();
        stdin.read_to_string(&mut raw).map_err(|e| {
            CliError::usage(format!("cannot read the password from stdin: {e}"), None)
        })?;
        let trimmed = raw.trim_end_matches(['\n', '\r']).to_string();
        if trimmed.is_empty() {
            return Err(CliError::usage(
                "--password-stdin read an empty password",
                Some(
                    "pipe the password in: echo \"$PASSWORD\" | ocipush … --password-stdin".into(),
                ),
            ));
        }
        Some(trimmed)
    } else if let Some(p) = flags.password {
        warnings.push(
            "a password on the command line is visible to other users; prefer --password-stdin"
                .into(),
        );
        Some(p)
    } else {
        env_first(&["OCIPUSH_PASSWORD", "IDPBUILDER_REGISTRY_PASSWORD"])
    };
    let username = flags
        .username
        .or_else(|| env_first(&["OCIPUSH_USERNAME", "IDPBUILDER_REGISTRY_USER"]));
    Ok((username, password))
}

/// Resolves the credentials for `registry` (and `repository`, which repository-scoped
/// `auth.json` entries match against) in the documented precedence.
pub fn resolve(
    flags: CredentialFlags,
    stdin: &mut dyn Read,
    registry: &str,
    repository: Option<&str>,
    warnings: &mut Vec<String>,
) -> Result<Option<Credentials>, CliError> {
    let (username, password) = explicit(flags, stdin, warnings)?;
    match (username, password) {
        (Some(u), Some(p)) => {
            tracing::info!(
                registry,
                "using the credentials given on the command line or in the environment"
            );
            Ok(Some(Credentials::new(u, p)))
        }
        (None, Some(password)) => match user_for(registry, repository) {
            Some(user) => {
                tracing::info!(
                    registry,
                    "using the password given with the user known for it"
                );
                Ok(Some(Credentials::new(user, password)))
            }
            None => Err(CliError::usage(
                "a password was given without a user name",
                Some("add -u USER, or set OCIPUSH_USERNAME".into()),
            )),
        },
        (user, None) => {
            let found = stored(registry, repository, warnings)?;
            match (user, found) {
                (None, found) => Ok(found),
                (Some(u), Some(found)) if same_user(registry, found.username(), &u) => {
                    Ok(Some(found))
                }
                (Some(u), _) => Err(CliError::usage(
                    format!("user `{u}` given without a password"),
                    Some(format!(
                        "add --password-stdin, set OCIPUSH_PASSWORD, or `ocipush login -u {u} {registry}` once"
                    )),
                )),
            }
        }
    }
}

/// The user a password given alone goes with: the one stored for the registry (by `login` or
/// docker), else, for an idpbuilder Gitea, the admin idpbuilder creates.
fn user_for(registry: &str, repository: Option<&str>) -> Option<String> {
    let stored = credential_store()
        .lookup(registry, repository)
        .found
        .and_then(|found| found.credentials.username().map(str::to_owned));
    stored.or_else(|| idpbuilder::is_gitea(registry).then(|| idpbuilder::DEFAULT_USER.to_owned()))
}

/// Whether stored credentials belong to the user named with `-u` (Gitea compares names
/// without case, and idpbuilder spells its admin `giteaAdmin`).
fn same_user(registry: &str, stored: Option<&str>, given: &str) -> bool {
    match stored {
        Some(s) if idpbuilder::is_gitea(registry) => s.eq_ignore_ascii_case(given),
        Some(s) => s == given,
        None => false,
    }
}

/// The credentials a registry that is a source (`docker://`) is read with: `--src-creds`, else
/// what is stored for it (levels 3 to 5). Never the flags and variables given for the
/// destination: they belong to another registry, which must not receive them.
pub fn source_credentials(
    src_creds: Option<&str>,
    registry: &str,
    repository: &str,
    warnings: &mut Vec<String>,
) -> Result<Option<Credentials>, CliError> {
    match src_creds {
        Some(given) => match given.split_once(':') {
            Some((user, password)) if !user.is_empty() && !password.is_empty() => {
                Ok(Some(Credentials::new(user.to_owned(), password.to_owned())))
            }
            _ => Err(CliError::usage(
                "--src-creds takes USER:PASSWORD",
                Some("e.g. --src-creds \"$SRC_USER:$SRC_TOKEN\"; leave it out to use the credentials stored for the source registry".into()),
            )),
        },
        None => stored(registry, Some(repository), warnings),
    }
}

/// Levels 3 to 5: idpbuilder's secret for its Gitea, then docker's and containers' files.
fn stored(
    registry: &str,
    repository: Option<&str>,
    warnings: &mut Vec<String>,
) -> Result<Option<Credentials>, CliError> {
    let gitea = idpbuilder::is_gitea(registry).then(idpbuilder::gitea_credentials);
    if let Some(GiteaSecret::Found(credentials)) = gitea {
        tracing::info!(
            registry,
            "using the Gitea credentials from `idpbuilder get secrets`"
        );
        return Ok(Some(credentials));
    }
    let lookup = credential_store().lookup(registry, repository);
    warnings.extend(lookup.warnings);
    match (lookup.found, gitea) {
        (Some(found), _) => {
            tracing::info!(registry, source = %found.source, "using stored credentials");
            Ok(Some(found.credentials))
        }
        (None, Some(why)) => Err(CliError::with_code(
            format!("no credentials for the idpbuilder registry {registry}"),
            Some(idpbuilder::missing_hint(&why)),
            EXIT_AUTH,
        )),
        (None, None) => {
            tracing::info!(registry, "no credentials found; going anonymous");
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;
    use ocipush_registry::credentials::{Found, Lookup};
    use ocipush_registry::{ClientOptions, LoginCheck, Secret};

    const SECRET: &str = "Debug-S3cret-value";

    /// `Debug` of every settings type that carries a secret shows none of it.
    #[test]
    fn debug_of_settings_types_shows_no_secret() {
        let cli = crate::cli::Cli::try_parse_from([
            "ocipush",
            "push",
            "-u",
            "alice",
            "-p",
            SECRET,
            "oci:./layout",
            "localhost:5000/team/app:1",
        ])
        .unwrap();
        let cli_debug = format!("{cli:?}");
        let crate::cli::Command::Push(args) = cli.command else {
            panic!("push")
        };
        let settings = crate::settings::resolve_push(args, &mut std::io::empty()).unwrap();
        let credentials = settings.client.credentials.clone().unwrap();
        assert_eq!(credentials, Credentials::new("alice", SECRET));
        let identity = Credentials::IdentityToken {
            username: Some("alice".into()),
            token: Secret::new(SECRET),
        };
        let shown = format!(
            "{settings:?} {:?} {:?} {:?} {:?} {:?} {:?}",
            ClientOptions {
                credentials: Some(identity.clone()),
                ..ClientOptions::default()
            },
            Credentials::RegistryToken(Secret::new(SECRET)),
            Lookup {
                found: Some(Found {
                    credentials: identity,
                    source: "config.json".into()
                }),
                warnings: vec![],
            },
            LoginCheck {
                open: false,
                identity_token: Some(Secret::new(SECRET)),
            },
            CredentialFlags {
                username: Some("alice".into()),
                password: Some(SECRET.into()),
                password_stdin: false,
            },
            credential_store(),
        );
        let shown = format!("{shown} {cli_debug}");
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(shown.contains("alice"), "{shown}");
    }
}
