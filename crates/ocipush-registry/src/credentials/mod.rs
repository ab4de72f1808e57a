//! Credentials where docker and podman users already keep them: docker's `config.json`
//! (`credHelpers`, `credsStore`, `auths`) and containers' `auth.json`, looked up in that order
//! for one registry, and written or removed again by `login` / `logout`.
//!
//! The caller decides where the files are ([`CredentialStore`] takes paths, not environment
//! variables), so the lookup is the same in tests as for users. A source that fails — a helper
//! that is not installed, a file that does not parse — does not stop the lookup: it becomes a
//! warning and the next source is asked, as docker does with a broken config file.

mod file;
pub mod helper;
pub mod hostkey;

use std::path::{Path, PathBuf};

pub use file::CredentialFile;
pub use helper::Helper;
pub use hostkey::{docker_key, DOCKER_HUB_KEY};

use crate::secret::Credentials;

/// Why a credential file or helper could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// A credential file exists but could not be read.
    #[error("cannot read {}: {detail}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        detail: String,
    },
    /// A credential file is not JSON of the expected shape, or an `auth` in it is not base64
    /// `user:password`.
    #[error("cannot parse {}: {detail}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong and where; never quotes the file, which may hold secrets.
        detail: String,
    },
    /// A credential file could not be written.
    #[error("cannot write {}: {detail}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O or encoding error.
        detail: String,
    },
    /// The helper program is not on `PATH`.
    #[error("credential helper {program} is not installed (not found on PATH)")]
    HelperMissing {
        /// `docker-credential-NAME`.
        program: String,
    },
    /// A helper could not be run, failed, timed out or answered something unreadable.
    #[error("credential helper {program} failed to {action}: {detail}")]
    Helper {
        /// `docker-credential-NAME`.
        program: String,
        /// `get`, `store` or `erase`.
        action: &'static str,
        /// What went wrong: the helper's own message cut short, never an answer that may hold
        /// the secret.
        detail: String,
    },
    /// There is nowhere to store credentials: no docker config directory is known.
    #[error("no docker config directory: neither DOCKER_CONFIG nor HOME is set")]
    NoConfigDir,
}

impl CredentialError {
    fn read(path: &Path, e: &std::io::Error) -> Self {
        CredentialError::Read {
            path: path.to_path_buf(),
            detail: e.to_string(),
        }
    }

    /// What the user can do about it, to print after the message; `None` where there is no
    /// general advice.
    pub fn hint(&self) -> Option<String> {
        match self {
            CredentialError::HelperMissing { program } => Some(format!(
                "install {program}, or remove `credsStore`/`credHelpers` naming it from the docker config"
            )),
            CredentialError::Parse { path, .. } => Some(format!(
                "fix {} or move it away; it must be a JSON object like {{\"auths\":{{}}}}",
                path.display()
            )),
            CredentialError::NoConfigDir => {
                Some("set DOCKER_CONFIG to the directory holding config.json".into())
            }
            _ => None,
        }
    }
}

/// A JSON error without the text it quotes (serde's messages may quote a value, which in a
/// credential file may be a secret): its kind and position only.
fn json_error(e: &serde_json::Error) -> String {
    let kind = match e.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "invalid JSON",
        serde_json::error::Category::Data => "unexpected structure",
        serde_json::error::Category::Eof => "truncated JSON",
    };
    format!("{kind} at line {} column {}", e.line(), e.column())
}

/// Where [`CredentialStore::store`] kept credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoredIn {
    /// A credential helper (`docker-credential-NAME`), which keeps the secret its own way.
    Helper(String),
    /// docker's `config.json` itself, base64-encoded: readable by anyone who can read the file.
    ConfigFile(PathBuf),
}

impl std::fmt::Display for StoredIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoredIn::Helper(program) => f.write_str(program),
            StoredIn::ConfigFile(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Where credentials are kept: built by the caller, or found the way docker and podman find
/// them with [`CredentialStore::from_environment`].
#[derive(Debug, Clone, Default)]
pub struct CredentialStore {
    /// Docker's configuration directory (`$DOCKER_CONFIG`, else `~/.docker`).
    pub docker_config_dir: Option<PathBuf>,
    /// Containers' `auth.json` files in the order they are asked: `$REGISTRY_AUTH_FILE`, else
    /// `$XDG_RUNTIME_DIR/containers/auth.json` and `~/.config/containers/auth.json`.
    pub auth_files: Vec<PathBuf>,
}

impl CredentialStore {
    /// Where docker and containers keep credentials, from `DOCKER_CONFIG`,
    /// `REGISTRY_AUTH_FILE`, `XDG_RUNTIME_DIR`, `XDG_CONFIG_HOME` and `HOME` (unset or empty
    /// variables count as missing).
    pub fn from_environment() -> CredentialStore {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let home = var("HOME").map(PathBuf::from);
        let docker_config_dir = var("DOCKER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".docker")));
        let auth_files = match var("REGISTRY_AUTH_FILE") {
            Some(file) => vec![PathBuf::from(file)],
            None => {
                let mut files = Vec::new();
                if let Some(run) = var("XDG_RUNTIME_DIR") {
                    files.push(PathBuf::from(run).join("containers/auth.json"));
                }
                let config = var("XDG_CONFIG_HOME")
                    .map(PathBuf::from)
                    .or_else(|| home.as_ref().map(|h| h.join(".config")));
                if let Some(config) = config {
                    files.push(config.join("containers/auth.json"));
                }
                files
            }
        };
        CredentialStore {
            docker_config_dir,
            auth_files,
        }
    }
}

/// Credentials found for a registry, and where.
#[derive(Debug, Clone)]
pub struct Found {
    /// The credentials themselves.
    pub credentials: Credentials,
    /// E.g. `docker-credential-pass (credHelpers in /home/u/.docker/config.json)`.
    pub source: String,
}

/// The outcome of a lookup: what was found, and what went wrong on the way.
#[derive(Debug, Default)]
pub struct Lookup {
    /// The credentials of the first source that had some.
    pub found: Option<Found>,
    /// One message per source that failed and was skipped, for the user to see.
    pub warnings: Vec<String>,
}

impl CredentialStore {
    /// docker's configuration directory (`$DOCKER_CONFIG`, else `~/.docker`), which also holds
    /// its contexts.
    pub fn docker_config_dir(&self) -> Option<&Path> {
        self.docker_config_dir.as_deref()
    }

    /// `config.json` in the docker config directory.
    pub fn docker_config_path(&self) -> Option<PathBuf> {
        self.docker_config_dir().map(|d| d.join("config.json"))
    }

    /// Looks `registry` (and `repository`, for repository-scoped `auth.json` keys) up in docker's
    /// config (its helper for that registry, its `credsStore`, then `auths`), then in the
    /// first `auth.json` that exists (its `credHelpers`, then `auths`).
    pub fn lookup(&self, registry: &str, repository: Option<&str>) -> Lookup {
        let mut lookup = Lookup::default();
        if let Some(path) = self.docker_config_path() {
            lookup.found = self.lookup_in(&path, registry, repository, false, &mut lookup.warnings);
            if lookup.found.is_some() {
                return lookup;
            }
        }
        for path in &self.auth_files {
            if !path.exists() {
                continue;
            }
            lookup.found = self.lookup_in(path, registry, repository, true, &mut lookup.warnings);
            // containers use the first auth file that exists, found or not.
            break;
        }
        lookup
    }

    fn lookup_in(
        &self,
        path: &Path,
        registry: &str,
        repository: Option<&str>,
        is_auth_json: bool,
        warnings: &mut Vec<String>,
    ) -> Option<Found> {
        let file = match CredentialFile::load(path) {
            Ok(Some(file)) => file,
            Ok(None) => return None,
            Err(e) => {
                warnings.push(format!("ignoring credentials: {e}"));
                return None;
            }
        };
        let server_url = docker_key(registry);
        let mut helpers = Vec::new();
        if let Some(name) = file.helper_for(registry) {
            helpers.push((name.to_string(), "credHelpers"));
        }
        if !is_auth_json {
            if let Some(name) = file.creds_store.as_deref().filter(|s| !s.is_empty()) {
                helpers.push((name.to_string(), "credsStore"));
            }
        }
        for (name, setting) in helpers {
            let helper = Helper::new(&name);
            match helper.get(&server_url) {
                Ok(Some(credentials)) => {
                    return Some(Found {
                        credentials,
                        source: format!("{} ({setting} in {})", helper.program(), path.display()),
                    })
                }
                Ok(None) => {}
                Err(e) => warnings.push(format!("ignoring {setting} of {}: {e}", path.display())),
            }
        }
        match file.credentials_for(path, registry, repository, is_auth_json) {
            Ok(Some((key, credentials))) => Some(Found {
                credentials,
                source: format!("`{key}` in {}", path.display()),
            }),
            Ok(None) => None,
            Err(e) => {
                warnings.push(format!("ignoring credentials: {e}"));
                None
            }
        }
    }

    /// Stores `credentials` for `registry` as `docker login` does: through the helper the
    /// docker config names for it (or its `credsStore`), leaving an empty `auths` entry, or
    /// base64-encoded in `auths`. Returns where they went.
    pub fn store(
        &self,
        registry: &str,
        credentials: &Credentials,
    ) -> Result<StoredIn, CredentialError> {
        let path = self
            .docker_config_path()
            .ok_or(CredentialError::NoConfigDir)?;
        let file = CredentialFile::load(&path)?.unwrap_or_default();
        let key = docker_key(registry);
        match configured_helper(&file, registry) {
            Some(helper) => {
                helper.store(&key, credentials)?;
                file::write_entry(&path, &key, file::NewEntry::Empty)?;
                Ok(StoredIn::Helper(helper.program()))
            }
            None => {
                file::write_entry(&path, &key, file::NewEntry::Credentials(credentials))?;
                Ok(StoredIn::ConfigFile(path))
            }
        }
    }

    /// Removes what docker's config keeps for `registry`: from its helper and from `auths`.
    /// Returns where something was removed (empty when nothing was stored).
    pub fn erase(&self, registry: &str) -> Result<Vec<String>, CredentialError> {
        let path = self
            .docker_config_path()
            .ok_or(CredentialError::NoConfigDir)?;
        let file = CredentialFile::load(&path)?.unwrap_or_default();
        let mut removed = Vec::new();
        if let Some(helper) = configured_helper(&file, registry) {
            if helper.erase(&docker_key(registry))? {
                removed.push(helper.program());
            }
        }
        if !file::remove_entries(&path, registry)?.is_empty() {
            removed.push(path.display().to_string());
        }
        Ok(removed)
    }
}

fn configured_helper(file: &CredentialFile, registry: &str) -> Option<Helper> {
    file.helper_for(registry)
        .or(file.creds_store.as_deref().filter(|s| !s.is_empty()))
        .map(Helper::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_config_before_auth_json_and_first_auth_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let docker = dir.path().join("docker");
        std::fs::create_dir_all(&docker).unwrap();
        std::fs::write(
            docker.join("config.json"),
            r#"{"auths":{"a.io":{"auth":"ZG9ja2VyOnB3"}}}"#,
        )
        .unwrap();
        let auth_json = dir.path().join("auth.json");
        std::fs::write(
            &auth_json,
            r#"{"auths":{"a.io":{"auth":"cG9kbWFuOnB3"},"b.io/team":{"auth":"dGVhbTpwdw=="}}}"#,
        )
        .unwrap();
        let later = dir.path().join("later.json");
        std::fs::write(&later, r#"{"auths":{"c.io":{"auth":"bGF0ZXI6cHc="}}}"#).unwrap();
        let store = CredentialStore {
            docker_config_dir: Some(docker),
            auth_files: vec![dir.path().join("missing.json"), auth_json, later],
        };
        let user = |r: &str, repo: Option<&str>| {
            store
                .lookup(r, repo)
                .found
                .and_then(|f| f.credentials.username().map(str::to_string))
        };
        assert_eq!(user("a.io", None).as_deref(), Some("docker"));
        assert_eq!(user("b.io", Some("team/app")).as_deref(), Some("team"));
        assert_eq!(user("b.io", Some("other/app")), None);
        assert_eq!(user("c.io", None), None);
    }

    #[test]
    fn broken_sources_become_warnings() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"credsStore":"ocipush-test-absent","auths":{"a.io":{"auth":"dTpw"}}}"#,
        )
        .unwrap();
        let broken = dir.path().join("auth.json");
        std::fs::write(&broken, "{not json").unwrap();
        let store = CredentialStore {
            docker_config_dir: Some(dir.path().to_path_buf()),
            auth_files: vec![broken],
        };
        let lookup = store.lookup("a.io", None);
        assert_eq!(
            lookup.found.unwrap().credentials,
            Credentials::new("u", "p")
        );
        assert_eq!(lookup.warnings.len(), 1, "{:?}", lookup.warnings);
        assert!(lookup.warnings[0].contains("docker-credential-ocipush-test-absent"));
        let lookup = store.lookup("b.io", None);
        assert!(lookup.found.is_none());
        assert_eq!(lookup.warnings.len(), 2, "{:?}", lookup.warnings);
    }

    #[test]
    fn store_then_erase_in_auths() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore {
            docker_config_dir: Some(dir.path().join("new")),
            auth_files: vec![],
        };
        let creds = Credentials::new("alice", "pw");
        let at = store.store("docker.io", &creds).unwrap();
        assert_eq!(at, StoredIn::ConfigFile(dir.path().join("new/config.json")));
        let found = store.lookup("index.docker.io", None).found.unwrap();
        assert_eq!(found.credentials, creds);
        assert!(found.source.contains(DOCKER_HUB_KEY), "{}", found.source);
        assert_eq!(store.erase("docker.io").unwrap().len(), 1);
        assert!(store.lookup("docker.io", None).found.is_none());
        assert!(store.erase("docker.io").unwrap().is_empty());
    }
}
