//! Where a container engine's API socket is: the one the user named (`DOCKER_HOST`,
//! `CONTAINER_HOST`, `--daemon-host`), else the usual places of Docker (rootful, rootless,
//! Docker Desktop) and Podman (rootful, rootless), tried in that order.

use std::path::{Path, PathBuf};

use crate::error::SourceError;

/// What the caller resolved from flags and the environment before asking for a daemon.
#[derive(Debug, Clone, Default)]
pub struct DaemonSettings {
    /// `unix:///path` or a bare socket path; overrides every default.
    pub host: Option<String>,
    /// `$XDG_RUNTIME_DIR`, where rootless Docker and Podman keep their sockets.
    pub runtime_dir: Option<PathBuf>,
    /// `$HOME`, for Docker Desktop's `~/.docker/run/docker.sock`.
    pub home: Option<PathBuf>,
}

/// The sockets to try, most specific first.
pub(crate) fn candidates(settings: &DaemonSettings) -> Result<Vec<PathBuf>, SourceError> {
    if let Some(host) = settings.host.as_deref().filter(|h| !h.is_empty()) {
        return Ok(vec![socket_path(host)?]);
    }
    let mut paths = vec![PathBuf::from("/var/run/docker.sock")];
    if let Some(runtime) = &settings.runtime_dir {
        paths.push(runtime.join("docker.sock"));
    }
    if let Some(home) = &settings.home {
        paths.push(home.join(".docker/run/docker.sock"));
    }
    paths.push(PathBuf::from("/run/podman/podman.sock"));
    if let Some(runtime) = &settings.runtime_dir {
        paths.push(runtime.join("podman/podman.sock"));
    }
    Ok(paths)
}

/// `unix:///run/x.sock` or `/run/x.sock` -> the path; other schemes are refused by name.
fn socket_path(host: &str) -> Result<PathBuf, SourceError> {
    if let Some(path) = host.strip_prefix("unix://") {
        return Ok(PathBuf::from(path));
    }
    if Path::new(host).is_absolute() {
        return Ok(PathBuf::from(host));
    }
    let scheme = host.split_once("://").map_or(host, |(s, _)| s);
    Err(SourceError::Unsupported {
        what: format!("daemon host `{host}` ({scheme}: only unix sockets are spoken)"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_host_wins_and_other_schemes_are_refused() {
        let settings = DaemonSettings {
            host: Some("unix:///tmp/d.sock".into()),
            runtime_dir: Some("/run/user/1000".into()),
            home: None,
        };
        assert_eq!(
            candidates(&settings).unwrap(),
            vec![PathBuf::from("/tmp/d.sock")]
        );
        let tcp = DaemonSettings {
            host: Some("tcp://10.0.0.1:2375".into()),
            ..DaemonSettings::default()
        };
        assert!(candidates(&tcp).unwrap_err().to_string().contains("tcp"));
    }

    #[test]
    fn defaults_cover_docker_and_podman_rootful_and_rootless() {
        let settings = DaemonSettings {
            host: None,
            runtime_dir: Some("/run/user/1000".into()),
            home: Some("/home/dev".into()),
        };
        let paths = candidates(&settings).unwrap();
        assert_eq!(paths[0], PathBuf::from("/var/run/docker.sock"));
        assert!(paths.contains(&PathBuf::from("/run/user/1000/docker.sock")));
        assert!(paths.contains(&PathBuf::from("/home/dev/.docker/run/docker.sock")));
        assert!(paths.contains(&PathBuf::from("/run/podman/podman.sock")));
        assert!(paths.contains(&PathBuf::from("/run/user/1000/podman/podman.sock")));
    }
}
