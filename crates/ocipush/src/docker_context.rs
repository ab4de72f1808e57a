//! Docker contexts, read as the docker CLI reads them, so the daemon is found where `docker`
//! finds it (Colima, Docker Desktop, rootless and remote contexts live there): `DOCKER_HOST`
//! wins (the caller checks it first), then `DOCKER_CONTEXT`, then `currentContext` in docker's
//! `config.json`. The context `default` means the usual sockets; any other names its endpoint
//! in `$DOCKER_CONFIG/contexts/meta/<sha256 of its name>/meta.json` (`Endpoints.docker.Host`),
//! and a context with TLS material under `contexts/tls/<same>/docker/` asks for TLS.

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

/// The endpoint a context names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextEndpoint {
    /// The context's name, for messages.
    pub name: String,
    /// `unix:///…`, `tcp://…` or `ssh://…`, as the context stores it.
    pub host: String,
    /// The context keeps TLS material for the daemon.
    pub tls: bool,
}

/// The current context's endpoint, `None` for the default context (or no docker config at
/// all). A named context that cannot be read is an error, as it is for the docker CLI.
pub fn current(
    config_dir: &Path,
    env_context: Option<&str>,
) -> Result<Option<ContextEndpoint>, String> {
    let name = match env_context.filter(|n| !n.is_empty()) {
        Some(name) => name.to_owned(),
        None => match current_in_config(&config_dir.join("config.json")) {
            Some(name) => name,
            None => return Ok(None),
        },
    };
    if name == "default" {
        return Ok(None);
    }
    let id = hex::encode(Sha256::digest(name.as_bytes()));
    let meta_path = config_dir.join("contexts/meta").join(&id).join("meta.json");
    let text = std::fs::read_to_string(&meta_path).map_err(|e| {
        format!(
            "docker context `{name}` cannot be read ({}: {e})",
            meta_path.display()
        )
    })?;
    let meta: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        format!(
            "docker context `{name}`: {} is not JSON: {e}",
            meta_path.display()
        )
    })?;
    let host = meta["Endpoints"]["docker"]["Host"]
        .as_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("docker context `{name}` names no docker endpoint"))?
        .to_owned();
    let tls_dir: PathBuf = config_dir.join("contexts/tls").join(&id).join("docker");
    Ok(Some(ContextEndpoint {
        name,
        host,
        tls: tls_dir.is_dir(),
    }))
}

/// `currentContext` of docker's config, if set.
fn current_in_config(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let config: serde_json::Value = serde_json::from_str(&text).ok()?;
    config["currentContext"]
        .as_str()
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_context(dir: &Path, name: &str, host: &str) {
        let id = hex::encode(Sha256::digest(name.as_bytes()));
        let meta = dir.join("contexts/meta").join(id);
        std::fs::create_dir_all(&meta).unwrap();
        let json = serde_json::json!({
            "Name": name,
            "Metadata": {},
            "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": false}},
        });
        std::fs::write(meta.join("meta.json"), json.to_string()).unwrap();
    }

    #[test]
    fn the_environment_then_the_config_name_the_context() {
        let dir = tempfile::tempdir().unwrap();
        write_context(
            dir.path(),
            "colima",
            "unix:///home/u/.colima/default/docker.sock",
        );
        write_context(dir.path(), "remote", "tcp://10.0.0.5:2375");
        assert_eq!(current(dir.path(), None), Ok(None), "no config: default");
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"currentContext":"colima"}"#,
        )
        .unwrap();
        let found = current(dir.path(), None).unwrap().unwrap();
        assert_eq!(found.host, "unix:///home/u/.colima/default/docker.sock");
        assert!(!found.tls);
        let found = current(dir.path(), Some("remote")).unwrap().unwrap();
        assert_eq!(found.host, "tcp://10.0.0.5:2375");
        assert_eq!(current(dir.path(), Some("default")), Ok(None));
        let err = current(dir.path(), Some("gone")).unwrap_err();
        assert!(err.contains("docker context `gone`"), "{err}");
    }

    #[test]
    fn tls_material_asks_for_tls() {
        let dir = tempfile::tempdir().unwrap();
        write_context(dir.path(), "secure", "tcp://10.0.0.5:2376");
        let id = hex::encode(Sha256::digest(b"secure"));
        std::fs::create_dir_all(dir.path().join("contexts/tls").join(id).join("docker")).unwrap();
        let found = current(dir.path(), Some("secure")).unwrap().unwrap();
        assert!(found.tls);
    }
}
