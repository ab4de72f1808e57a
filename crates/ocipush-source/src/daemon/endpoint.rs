//! Where a container engine's API is: the endpoint the user named (`DOCKER_HOST`,
//! `CONTAINER_HOST`) — a unix socket or plain `tcp://HOST:PORT` — else the usual sockets of
//! Docker (rootful, rootless, Docker Desktop) and Podman (rootful, rootless), tried in that order.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::SourceError;

/// The port `docker` assumes for a `tcp://` host without one (2376 is its TLS port).
const DEFAULT_TCP_PORT: u16 = 2375;

/// What the caller resolved from flags and the environment before asking for a daemon.
#[derive(Debug, Clone, Default)]
pub struct DaemonSettings {
    /// `unix:///path`, a bare socket path or `tcp://host[:port]`; overrides every default.
    pub host: Option<String>,
    /// The user asked for TLS to the daemon (`DOCKER_TLS_VERIFY` or `DOCKER_TLS` set).
    pub tls: bool,
    /// `$XDG_RUNTIME_DIR`, where rootless Docker and Podman keep their sockets.
    pub runtime_dir: Option<PathBuf>,
    /// `$HOME`, for Docker Desktop's `~/.docker/run/docker.sock`.
    pub home: Option<PathBuf>,
}

/// How an engine's API is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A unix socket: every local engine's default.
    Unix(PathBuf),
    /// Plain HTTP over TCP, as docker-in-docker and `dockerd -H tcp://…` serve it;
    /// `authority` is `host:port` (`[::1]:2375` for IPv6).
    Tcp {
        /// `host:port`, the port always present.
        authority: String,
    },
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "unix://{}", path.display()),
            Endpoint::Tcp { authority } => write!(f, "tcp://{authority}"),
        }
    }
}

/// The endpoints to try, most specific first.
pub(crate) fn candidates(settings: &DaemonSettings) -> Result<Vec<Endpoint>, SourceError> {
    if let Some(host) = settings.host.as_deref().filter(|h| !h.is_empty()) {
        return Ok(vec![parse_host(host, settings.tls)?]);
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
    Ok(paths.into_iter().map(Endpoint::Unix).collect())
}

/// `unix:///run/x.sock`, `/run/x.sock`, `tcp://host[:port]` or, as the docker CLI reads it, a
/// bare `host[:port]`; other schemes, and TLS, are refused by name.
fn parse_host(host: &str, tls: bool) -> Result<Endpoint, SourceError> {
    let host = host.trim();
    let refuse = |reason: &str| SourceError::DaemonHost {
        host: redacted(host),
        reason: reason.to_string(),
    };
    if let Some(path) = host.strip_prefix("unix://") {
        if !path.starts_with('/') {
            return Err(refuse("expected unix:///absolute/path"));
        }
        return Ok(Endpoint::Unix(PathBuf::from(path)));
    }
    if Path::new(host).is_absolute() {
        return Ok(Endpoint::Unix(PathBuf::from(host)));
    }
    let (scheme, rest) = host.split_once("://").unwrap_or(("tcp", host));
    if scheme != "tcp" {
        return Err(refuse(&format!(
            "`{scheme}://` is not spoken; unix:// and tcp:// are"
        )));
    }
    if tls {
        return Err(refuse(
            "TLS to the daemon (DOCKER_TLS_VERIFY / DOCKER_TLS) is not spoken; plain tcp:// is",
        ));
    }
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
        return Err(refuse("expected tcp://HOST[:PORT]"));
    }
    Ok(Endpoint::Tcp {
        authority: with_port(authority).ok_or_else(|| refuse("expected tcp://HOST[:PORT]"))?,
    })
}

/// The host as it may be shown: a `user:password@` in it (refused anyway) becomes `***@`.
fn redacted(host: &str) -> String {
    let (scheme, rest) = match host.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), host),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}***{}", &rest[at..]),
        None => host.to_string(),
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port` -> `host:port`, the port defaulted to 2375.
fn with_port(authority: &str) -> Option<String> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (address, after) = v6.split_once(']')?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        (format!("[{address}]"), port)
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host.to_string(), Some(port)),
            None => (authority.to_string(), None),
        }
    };
    if host.is_empty() || host == "[]" {
        return None;
    }
    let port = match port {
        Some(port) if port.bytes().all(|b| b.is_ascii_digit()) => {
            port.parse::<u16>().ok().filter(|p| *p != 0)?
        }
        Some(_) => return None,
        None => DEFAULT_TCP_PORT,
    };
    Some(format!("{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(host: &str) -> Result<Vec<Endpoint>, SourceError> {
        candidates(&DaemonSettings {
            host: Some(host.into()),
            runtime_dir: Some("/run/user/1000".into()),
            ..DaemonSettings::default()
        })
    }

    fn tcp(authority: &str) -> Vec<Endpoint> {
        vec![Endpoint::Tcp {
            authority: authority.into(),
        }]
    }

    #[test]
    fn named_host_wins() {
        assert_eq!(
            named("unix:///tmp/d.sock").unwrap(),
            vec![Endpoint::Unix("/tmp/d.sock".into())]
        );
        assert_eq!(
            named("/tmp/d.sock").unwrap(),
            vec![Endpoint::Unix("/tmp/d.sock".into())]
        );
        assert_eq!(named("tcp://10.0.0.1:2375").unwrap(), tcp("10.0.0.1:2375"));
        assert_eq!(named("tcp://docker:2375/").unwrap(), tcp("docker:2375"));
        assert_eq!(named("tcp://docker").unwrap(), tcp("docker:2375"));
        assert_eq!(named("tcp://[::1]:2380").unwrap(), tcp("[::1]:2380"));
        assert_eq!(named("tcp://[::1]").unwrap(), tcp("[::1]:2375"));
        // As the docker CLI reads them: no scheme is tcp, surrounding blanks do not count.
        assert_eq!(named("build-box:2375").unwrap(), tcp("build-box:2375"));
        assert_eq!(named(" tcp://docker:2375\n").unwrap(), tcp("docker:2375"));
        assert_eq!(
            named("tcp://10.0.0.1:2375").unwrap()[0].to_string(),
            "tcp://10.0.0.1:2375"
        );
    }

    #[test]
    fn other_schemes_bad_tcp_and_tls_are_refused_by_name() {
        for (host, says) in [
            ("ssh://build-box", "`ssh://` is not spoken"),
            ("npipe:////./pipe/docker_engine", "`npipe://` is not spoken"),
            ("unix://", "expected unix:///absolute/path"),
            ("tcp://", "expected tcp://HOST[:PORT]"),
            ("tcp://host:+2375", "expected tcp://HOST[:PORT]"),
            ("tcp://host:http", "expected tcp://HOST[:PORT]"),
            ("tcp://host:0", "expected tcp://HOST[:PORT]"),
            ("tcp://host:2375/v1.41", "expected tcp://HOST[:PORT]"),
            ("tcp://[::1", "expected tcp://HOST[:PORT]"),
        ] {
            let err = named(host).unwrap_err().to_string();
            assert!(err.contains(says), "{host}: {err}");
            assert!(err.contains(host), "{host}: {err}");
        }
        let with_tls = |host: &str| {
            candidates(&DaemonSettings {
                host: Some(host.into()),
                tls: true,
                ..DaemonSettings::default()
            })
        };
        let tls = with_tls("tcp://10.0.0.1:2376");
        assert!(tls.unwrap_err().to_string().contains("TLS"));
        // DOCKER_TLS_VERIFY set for some other tool does not stop a unix socket.
        assert_eq!(
            with_tls("unix:///run/d.sock").unwrap(),
            vec![Endpoint::Unix("/run/d.sock".into())]
        );
    }

    #[test]
    fn credentials_in_a_refused_host_are_not_shown() {
        let err = named("tcp://admin:s3cret@10.0.0.1:2375")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cret") && !err.contains("admin"), "{err}");
        assert!(err.contains("tcp://***@10.0.0.1:2375"), "{err}");
        let err = named("ssh://me:pw@box/x").unwrap_err().to_string();
        assert!(!err.contains("pw"), "{err}");
        assert_eq!(redacted("tcp://docker:2375"), "tcp://docker:2375");
    }

    #[test]
    fn defaults_cover_docker_and_podman_rootful_and_rootless() {
        let settings = DaemonSettings {
            host: None,
            tls: false,
            runtime_dir: Some("/run/user/1000".into()),
            home: Some("/home/dev".into()),
        };
        let paths = candidates(&settings).unwrap();
        let unix = |p: &str| Endpoint::Unix(p.into());
        assert_eq!(paths[0], unix("/var/run/docker.sock"));
        assert!(paths.contains(&unix("/run/user/1000/docker.sock")));
        assert!(paths.contains(&unix("/home/dev/.docker/run/docker.sock")));
        assert!(paths.contains(&unix("/run/podman/podman.sock")));
        assert!(paths.contains(&unix("/run/user/1000/podman/podman.sock")));
    }
}
