//! Docker's `config.json` and containers' `auth.json`: the same `auths` map (`auth` as
//! base64 `user:password`, or `identitytoken` / `registrytoken`), plus `credHelpers` and
//! (docker only) `credsStore`. Reading parses only those parts; writing edits the document as
//! JSON so every other setting the user keeps there survives, and replaces the file atomically
//! with owner-only permissions.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Map, Value};

use super::hostkey::best_key;
use super::CredentialError;
use crate::secret::{Credentials, Secret};

/// One `auths` entry. Values stay private: `Debug` shows which fields are set, never them.
#[derive(Clone, Default, serde::Deserialize)]
pub struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
}

impl std::fmt::Debug for AuthEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthEntry")
            .field("auth", &self.auth.as_ref().map(|_| "<redacted>"))
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field(
                "identitytoken",
                &self.identitytoken.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "registrytoken",
                &self.registrytoken.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// The credential parts of a docker `config.json` or a containers `auth.json`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct CredentialFile {
    /// Stored credentials by registry key: `host[:port]`, `https://index.docker.io/v1/` for
    /// Docker Hub, legacy URLs, or (in `auth.json`) a namespace or repository path.
    #[serde(default)]
    pub auths: BTreeMap<String, AuthEntry>,
    /// The helper that keeps every registry's credentials (docker only), named without its
    /// `docker-credential-` prefix.
    #[serde(rename = "credsStore", default)]
    pub creds_store: Option<String>,
    /// Helpers for single registries: registry key to helper name.
    #[serde(rename = "credHelpers", default)]
    pub cred_helpers: BTreeMap<String, String>,
}

impl CredentialFile {
    /// Reads `path`; `Ok(None)` when there is no such file.
    pub fn load(path: &Path) -> Result<Option<CredentialFile>, CredentialError> {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(CredentialError::read(path, &e)),
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Some(CredentialFile::default()));
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| CredentialError::Parse {
                path: path.to_path_buf(),
                detail: super::json_error(&e),
            })
    }

    /// The helper configured for `registry` in `credHelpers` (host keys compared like `auths`).
    pub fn helper_for(&self, registry: &str) -> Option<&str> {
        best_key(self.cred_helpers.keys(), registry, None, false)
            .and_then(|k| self.cred_helpers.get(k))
            .map(String::as_str)
            .filter(|h| !h.is_empty())
    }

    /// The credentials stored for `registry` (and `repository`, where keys may name one).
    /// `Ok(None)` when no entry matches or the matching one holds nothing usable.
    pub fn credentials_for(
        &self,
        path: &Path,
        registry: &str,
        repository: Option<&str>,
        allow_paths: bool,
    ) -> Result<Option<(String, Credentials)>, CredentialError> {
        let Some(key) = best_key(self.auths.keys(), registry, repository, allow_paths) else {
            return Ok(None);
        };
        let entry = &self.auths[key];
        Ok(entry
            .credentials(path, key)?
            .map(|creds| (key.clone(), creds)))
    }
}

impl AuthEntry {
    fn credentials(&self, path: &Path, key: &str) -> Result<Option<Credentials>, CredentialError> {
        let (mut username, mut password) = (self.username.clone(), self.password.clone());
        if let Some(auth) = self.auth.as_deref().filter(|a| !a.is_empty()) {
            let invalid = |why: &str| CredentialError::Parse {
                path: path.to_path_buf(),
                detail: format!("the `auth` of `{key}` is not base64 `user:password` ({why})"),
            };
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| invalid("not base64"))?;
            let decoded = String::from_utf8(decoded).map_err(|_| invalid("not UTF-8"))?;
            let (user, pass) = decoded.split_once(':').ok_or_else(|| invalid("no colon"))?;
            username = Some(user.to_string());
            password = Some(pass.to_string());
        }
        let username = username.filter(|u| !u.is_empty());
        if let Some(token) = self.identitytoken.as_deref().filter(|t| !t.is_empty()) {
            return Ok(Some(Credentials::IdentityToken {
                username,
                token: Secret::new(token),
            }));
        }
        if let Some(token) = self.registrytoken.as_deref().filter(|t| !t.is_empty()) {
            return Ok(Some(Credentials::RegistryToken(Secret::new(token))));
        }
        Ok(match (username, password.filter(|p| !p.is_empty())) {
            (Some(username), Some(password)) => Some(Credentials::Basic {
                username,
                password: Secret::new(password),
            }),
            _ => None,
        })
    }
}

/// What to write under a key of `auths`.
pub enum NewEntry<'a> {
    /// `{"auth": base64(user:password)}` (plus `identitytoken` for identity tokens).
    Credentials(&'a Credentials),
    /// `{}`: what docker writes when a credential store holds the secret.
    Empty,
}

/// Sets `auths[key]` in the file at `path`, creating the file (and its directory) if needed.
pub fn write_entry(path: &Path, key: &str, entry: NewEntry<'_>) -> Result<(), CredentialError> {
    let mut doc = read_document(path)?;
    let auths = doc
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    if !auths.is_object() {
        *auths = Value::Object(Map::new());
    }
    let auths = auths.as_object_mut().expect("made an object above");
    let encode = |user: &str, pass: &str| {
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    };
    let mut value = Map::new();
    if let NewEntry::Credentials(creds) = entry {
        match creds {
            Credentials::Basic { username, password } => {
                value.insert("auth".into(), encode(username, password.expose()).into());
            }
            Credentials::IdentityToken { username, token } => {
                value.insert(
                    "auth".into(),
                    encode(username.as_deref().unwrap_or(""), "").into(),
                );
                value.insert("identitytoken".into(), token.expose().into());
            }
            Credentials::RegistryToken(token) => {
                value.insert("registrytoken".into(), token.expose().into());
            }
        }
    }
    auths.insert(key.to_string(), Value::Object(value));
    write_document(path, &doc)
}

/// Removes every `auths` key that names `registry` (however it is spelt). Returns the keys
/// removed; the file is left untouched when there were none.
pub fn remove_entries(path: &Path, registry: &str) -> Result<Vec<String>, CredentialError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let mut doc = read_document(path)?;
    let Some(auths) = doc.get_mut("auths").and_then(Value::as_object_mut) else {
        return Ok(Vec::new());
    };
    let keys: Vec<String> = auths
        .keys()
        .filter(|k| super::hostkey::match_key(k, registry, None, false).is_some())
        .cloned()
        .collect();
    for key in &keys {
        auths.remove(key);
    }
    if !keys.is_empty() {
        write_document(path, &doc)?;
    }
    Ok(keys)
}

fn read_document(path: &Path) -> Result<Map<String, Value>, CredentialError> {
    match fs::read(path) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(Map::new()),
        Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(CredentialError::Parse {
                path: path.to_path_buf(),
                detail: "the document is not a JSON object".into(),
            }),
            Err(e) => Err(CredentialError::Parse {
                path: path.to_path_buf(),
                detail: super::json_error(&e),
            }),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
        Err(e) => Err(CredentialError::read(path, &e)),
    }
}

/// Writes through a temporary file in the same directory and renames it into place, so a
/// crash never leaves half a config; the file is readable by its owner only. A `config.json`
/// that is a symlink (dotfiles kept in a repository) is written where it points, as docker
/// does, and stays a link.
fn write_document(path: &Path, doc: &Map<String, Value>) -> Result<(), CredentialError> {
    let is_link = fs::symlink_metadata(path).is_ok_and(|meta| meta.file_type().is_symlink());
    let resolved = is_link.then(|| fs::canonicalize(path).ok()).flatten();
    let path = resolved.as_deref().unwrap_or(path);
    let write_err = |e: std::io::Error| CredentialError::Write {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    create_private_dir(&dir).map_err(write_err)?;
    let mut text = serde_json::to_string_pretty(doc).map_err(|e| CredentialError::Write {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    text.push('\n');
    let mut tmp = tempfile::Builder::new()
        .prefix(".ocipush-config")
        .tempfile_in(&dir)
        .map_err(write_err)?;
    tmp.write_all(text.as_bytes()).map_err(write_err)?;
    tmp.as_file().sync_all().map_err(write_err)?;
    set_private(tmp.path()).map_err(write_err)?;
    tmp.persist(path).map_err(|e| write_err(e.error))?;
    Ok(())
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
    }
    #[cfg(not(unix))]
    fs::create_dir_all(dir)
}

fn set_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> CredentialFile {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn reads_auth_identity_and_registry_tokens() {
        let file = parse(
            r#"{"auths":{
                "https://index.docker.io/v1/":{"auth":"YWxpY2U6cHc6d2l0aDpjb2xvbnM="},
                "ghcr.io":{"auth":"Ym9iOg==","identitytoken":"refresh-tok"},
                "quay.io":{"registrytoken":"bearer-tok"},
                "empty.io":{},
                "split.io":{"username":"carol","password":"pw"}
            },"credsStore":"desktop","credHelpers":{"gcr.io":"gcloud","https://eu.gcr.io/":"eu"},"other":{"kept":true}}"#,
        );
        let p = Path::new("config.json");
        let (key, hub) = file
            .credentials_for(p, "docker.io", None, false)
            .unwrap()
            .unwrap();
        assert_eq!(key, "https://index.docker.io/v1/");
        assert_eq!(hub, Credentials::new("alice", "pw:with:colons"));
        let (_, ghcr) = file
            .credentials_for(p, "ghcr.io", None, false)
            .unwrap()
            .unwrap();
        assert!(
            matches!(ghcr, Credentials::IdentityToken { ref username, ref token }
            if username.as_deref() == Some("bob") && token.expose() == "refresh-tok")
        );
        let (_, quay) = file
            .credentials_for(p, "quay.io", None, false)
            .unwrap()
            .unwrap();
        assert!(matches!(quay, Credentials::RegistryToken(ref t) if t.expose() == "bearer-tok"));
        assert!(file
            .credentials_for(p, "empty.io", None, false)
            .unwrap()
            .is_none());
        assert!(file
            .credentials_for(p, "nowhere.io", None, false)
            .unwrap()
            .is_none());
        let (_, split) = file
            .credentials_for(p, "split.io", None, false)
            .unwrap()
            .unwrap();
        assert_eq!(split, Credentials::new("carol", "pw"));
        assert_eq!(file.creds_store.as_deref(), Some("desktop"));
        assert_eq!(file.helper_for("gcr.io"), Some("gcloud"));
        assert_eq!(file.helper_for("eu.gcr.io"), Some("eu"));
        assert_eq!(file.helper_for("ghcr.io"), None);
        assert!(!format!("{file:?}").contains("refresh-tok"));
        assert!(!format!("{file:?}").contains("YWxp"));
    }

    #[test]
    fn bad_auth_is_an_error_naming_the_key_not_the_value() {
        let file = parse(r#"{"auths":{"r.io":{"auth":"!!!not-base64-secret"}}}"#);
        let err = file
            .credentials_for(Path::new("c.json"), "r.io", None, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`r.io`"), "{err}");
        assert!(!err.contains("not-base64-secret"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_symlinked_config_is_written_through_the_link() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("dotfiles").join("docker.json");
        fs::create_dir_all(real.parent().unwrap()).unwrap();
        fs::write(&real, r#"{"psFormat":"table"}"#).unwrap();
        let link = dir.path().join("config.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_entry(
            &link,
            "r.io",
            NewEntry::Credentials(&Credentials::new("u", "p")),
        )
        .unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        let doc: Value = serde_json::from_slice(&fs::read(&real).unwrap()).unwrap();
        assert_eq!(doc["auths"]["r.io"]["auth"], "dTpw");
        assert_eq!(doc["psFormat"], "table");
    }

    #[test]
    fn write_and_remove_keep_other_settings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("config.json");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(
            &path,
            r#"{"auths":{"http://r.io:5000/v1/":{"auth":"eDp5"}},"psFormat":"table"}"#,
        )
        .unwrap();
        write_entry(
            &path,
            "r.io:5000",
            NewEntry::Credentials(&Credentials::new("u", "p")),
        )
        .unwrap();
        let file = CredentialFile::load(&path).unwrap().unwrap();
        assert_eq!(file.auths.len(), 2);
        let doc: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(doc["psFormat"], "table");
        assert_eq!(doc["auths"]["r.io:5000"]["auth"], "dTpw");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let removed = remove_entries(&path, "r.io:5000").unwrap();
        assert_eq!(removed.len(), 2);
        let doc: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(doc["auths"], serde_json::json!({}));
        assert_eq!(doc["psFormat"], "table");
        assert!(remove_entries(&path, "r.io:5000").unwrap().is_empty());
        assert!(remove_entries(&dir.path().join("none.json"), "x")
            .unwrap()
            .is_empty());
    }
}
