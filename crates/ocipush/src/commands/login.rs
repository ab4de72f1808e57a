//! `ocipush login`: take a user name and password (flags, environment, idpbuilder, or a prompt
//! on a terminal), check them against the registry as docker does (`/v2/`, and a token from
//! its token server), then keep them in docker's config — through the credential helper it
//! names, or base64-encoded in `auths` — so docker, podman and ocipush all find them.

use std::io::IsTerminal as _;

use ocipush_engine::PushError;
use ocipush_registry::credentials::{CredentialError, StoredIn};
use ocipush_registry::{
    ClientOptions, Credentials, RegistryClient, RegistryError, RegistryTarget, DOCKER_HUB,
};

use crate::cli::LoginArgs;
use crate::connection;
use crate::failure::{CliError, EXIT_GENERAL, EXIT_OK};
use crate::idpbuilder::{self, GiteaSecret};

/// The registry a `login`/`logout` argument names: Docker Hub when absent, the idpbuilder Gitea
/// for `idpbuilder`, else `HOST[:PORT]` (a scheme and path, as in docker's keys, are dropped).
pub fn registry_name(arg: Option<&str>) -> Result<String, CliError> {
    let Some(arg) = arg else {
        return Ok(DOCKER_HUB.to_string());
    };
    if arg == "idpbuilder" {
        return Ok(idpbuilder::GITEA_REGISTRY.to_string());
    }
    let host = arg
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = host.split('/').next().unwrap_or(host);
    let bad = |why: String| {
        CliError::usage(
            format!("`{arg}` is not a registry: {why}"),
            Some("name a registry as HOST[:PORT], e.g. ghcr.io or localhost:5000".into()),
        )
    };
    let mut target = RegistryTarget::parse(host).map_err(|e| bad(e.to_string()))?;
    if target.namespace.is_some() {
        return Err(bad("it looks like a repository name, not a host".into()));
    }
    target.namespace = Some(String::new());
    idpbuilder::complete_target(&mut target);
    Ok(target.registry)
}

pub fn registry_error(e: RegistryError) -> CliError {
    CliError::from(PushError::Registry(e))
}

pub fn credential_error(e: CredentialError) -> CliError {
    CliError::with_code(e.to_string(), e.hint(), EXIT_GENERAL)
}

pub async fn run(args: LoginArgs, quiet: bool) -> Result<u8, CliError> {
    let registry = registry_name(args.registry.as_deref())?;
    let mut warnings = Vec::new();
    let mut conn = args.connection;
    let interactive = !conn.password_stdin && std::io::stdin().is_terminal();
    let flags = conn.credential_flags();
    let (mut username, mut password) =
        connection::explicit(flags, &mut std::io::stdin().lock(), &mut warnings)?;
    let mut gitea = None;
    if username.is_none() && password.is_none() && idpbuilder::is_gitea(&registry) {
        match idpbuilder::gitea_credentials() {
            GiteaSecret::Found(Credentials::Basic {
                username: u,
                password: p,
            }) => {
                username = Some(u);
                password = Some(p.expose().to_string());
            }
            other => gitea = Some(other),
        }
    }
    // A password alone for idpbuilder's Gitea goes with the admin idpbuilder creates.
    if username.is_none() && password.is_some() && idpbuilder::is_gitea(&registry) {
        username = Some(idpbuilder::DEFAULT_USER.to_owned());
    }
    if interactive {
        if username.is_none() {
            username = Some(prompt_username()?);
        }
        if password.is_none() {
            password =
                Some(rpassword::prompt_password("Password: ").map_err(|e| {
                    CliError::usage(format!("cannot read the password: {e}"), None)
                })?);
        }
    }
    let credentials = match (username, password) {
        (Some(u), Some(p)) if !u.is_empty() && !p.is_empty() => Credentials::new(u, p),
        _ => {
            return Err(CliError::usage(
                "login needs a user name and a password",
                Some(match gitea {
                    Some(why) => idpbuilder::login_hint(&why),
                    None => format!(
                        "pass them with -u USER --password-stdin (or OCIPUSH_USERNAME/OCIPUSH_PASSWORD): echo \"$TOKEN\" | ocipush login -u USER --password-stdin {registry}"
                    ),
                }),
            ))
        }
    };
    if !quiet {
        for warning in &warnings {
            eprintln!("warning: {warning}");
        }
    }

    let tls = conn.tls_options();
    if tls.insecure && !quiet {
        eprintln!("warning: {}", connection::INSECURE_WARNING);
    }
    let options = ClientOptions {
        tls,
        plain_http: conn.plain_http,
        credentials: Some(credentials.clone()),
        ..ClientOptions::default()
    };
    let client = RegistryClient::connect(&registry, &options)
        .await
        .map_err(registry_error)?;
    let check = client.verify_login().await.map_err(registry_error)?;
    if check.open && !quiet {
        eprintln!("warning: {registry} asks for no credentials; keeping them anyway");
    }
    // A refresh token the token server handed out replaces the password, as with docker.
    let keep = match (check.identity_token, &credentials) {
        (Some(token), Credentials::Basic { username, .. }) => Credentials::IdentityToken {
            username: Some(username.clone()),
            token,
        },
        _ => credentials,
    };
    let location = connection::credential_store()
        .store(&registry, &keep)
        .map_err(credential_error)?;
    if !quiet {
        eprintln!("credentials for {registry} stored in {location}");
        if matches!(location, StoredIn::ConfigFile(_)) {
            // As docker warns: base64 is an encoding, not a protection.
            eprintln!(
                "warning: the password is stored unencrypted (base64) in {location}; configure a credential helper (credsStore in that file) to keep it encrypted"
            );
        }
    }
    println!("Login Succeeded");
    Ok(EXIT_OK)
}

fn prompt_username() -> Result<String, CliError> {
    use std::io::Write as _;
    eprint!("Username: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| CliError::usage(format!("cannot read the user name: {e}"), None))?;
    Ok(line.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names() {
        assert_eq!(registry_name(None).unwrap(), "docker.io");
        assert_eq!(
            registry_name(Some("https://index.docker.io/v1/")).unwrap(),
            "docker.io"
        );
        assert_eq!(
            registry_name(Some("localhost:5000")).unwrap(),
            "localhost:5000"
        );
        assert_eq!(
            registry_name(Some("http://localhost:5000/v2/")).unwrap(),
            "localhost:5000"
        );
        assert_eq!(
            registry_name(Some("idpbuilder")).unwrap(),
            "gitea.cnoe.localtest.me:8443"
        );
        assert_eq!(
            registry_name(Some("gitea.cnoe.localtest.me")).unwrap(),
            "gitea.cnoe.localtest.me:8443"
        );
        assert!(registry_name(Some("myuser")).is_err());
    }
}
