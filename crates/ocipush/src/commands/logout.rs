//! `ocipush logout`: remove what docker's config keeps for a registry — from the credential
//! helper it names and from `auths` — as `docker logout` does. Credentials in containers'
//! `auth.json` are podman's to remove; a note says when some are left there.

use ocipush_registry::credentials::CredentialStore;

use crate::cli::LogoutArgs;
use crate::commands::login::{credential_error, registry_name};
use crate::connection;
use crate::failure::{CliError, EXIT_OK};

pub fn run(args: LogoutArgs, quiet: bool) -> Result<u8, CliError> {
    let registry = registry_name(args.registry.as_deref())?;
    let store = connection::credential_store();
    let removed = store.erase(&registry).map_err(credential_error)?;
    if removed.is_empty() {
        if !quiet {
            eprintln!("Not logged in to {registry}");
        }
    } else {
        println!("Removing login credentials for {registry}");
        if !quiet {
            eprintln!("removed from {}", removed.join(" and "));
        }
    }
    let podman = CredentialStore {
        docker_config_dir: None,
        auth_files: store.auth_files,
    }
    .lookup(&registry, None);
    if let (Some(found), false) = (podman.found, quiet) {
        eprintln!(
            "note: {} still holds credentials for {registry}; `podman logout {registry}` removes them",
            found.source
        );
    }
    Ok(EXIT_OK)
}
