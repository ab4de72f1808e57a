//! Registry keys as docker and podman write them into their credential files, and how a
//! registry (plus, for containers' `auth.json`, a repository) is matched against them.
//!
//! Docker keys its `auths` by `https://index.docker.io/v1/` for Docker Hub and by `host[:port]`
//! for everything else, but older clients wrote `https://host/v1/`, `http://host` and the like;
//! docker compares only the host part of a key, so we do too. Containers' `auth.json` keys may
//! also name a namespace or repository (`quay.io/team`), the most specific match winning —
//! unless they carry a scheme, which marks a legacy docker-style, host-only key.

use crate::reference::DOCKER_HUB;

/// The key `docker login` writes for Docker Hub.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// Host names that all mean Docker Hub.
const HUB_ALIASES: &[&str] = &[
    "docker.io",
    "index.docker.io",
    "registry-1.docker.io",
    "registry.hub.docker.com",
];

/// The canonical registry name: lowercase, Docker Hub's aliases folded into `docker.io`.
pub fn canonical_registry(host: &str) -> String {
    let host = host.trim().trim_end_matches('/').to_ascii_lowercase();
    if HUB_ALIASES.contains(&host.as_str()) {
        DOCKER_HUB.to_string()
    } else {
        host
    }
}

/// The key docker writes for `registry` (and passes to credential helpers).
pub fn docker_key(registry: &str) -> String {
    let registry = canonical_registry(registry);
    if registry == DOCKER_HUB {
        DOCKER_HUB_KEY.to_string()
    } else {
        registry
    }
}

/// A credential file key split into the registry it names and, for repository-scoped
/// `auth.json` keys, the path under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyScope {
    /// The canonical registry name (see [`canonical_registry`]).
    pub registry: String,
    /// The namespace or repository under it, e.g. `team`; only scheme-less `auth.json` keys
    /// have one.
    pub path: Option<String>,
}

/// Parses a key. With `allow_paths` (containers' `auth.json`) a scheme-less key keeps its path;
/// otherwise (docker's config, or any key with a scheme) only the host counts.
pub fn parse_key(key: &str, allow_paths: bool) -> KeyScope {
    let key = key.trim();
    let (had_scheme, rest) = match key.split_once("://") {
        Some((_, rest)) => (true, rest),
        None => (false, key),
    };
    let (host, path) = match rest.split_once('/') {
        Some((host, path)) => (host, path.trim_matches('/')),
        None => (rest, ""),
    };
    let path = (allow_paths && !had_scheme && !path.is_empty()).then(|| path.to_string());
    KeyScope {
        registry: canonical_registry(host),
        path,
    }
}

/// How well `key` matches `registry` and `repository`: `None` when it does not, otherwise the
/// number of repository path components it names (0 for a registry-wide key), so the most
/// specific match can win.
pub fn match_key(
    key: &str,
    registry: &str,
    repository: Option<&str>,
    allow_paths: bool,
) -> Option<usize> {
    let scope = parse_key(key, allow_paths);
    if scope.registry != canonical_registry(registry) {
        return None;
    }
    let Some(path) = scope.path else {
        return Some(0);
    };
    let repository = repository?;
    let repository = if canonical_registry(registry) == DOCKER_HUB && !repository.contains('/') {
        format!("library/{repository}")
    } else {
        repository.to_string()
    };
    let named: Vec<&str> = path.split('/').collect();
    let wanted: Vec<&str> = repository.split('/').collect();
    (named.len() <= wanted.len() && named.iter().zip(&wanted).all(|(a, b)| a == b))
        .then_some(named.len())
}

/// The best key among `keys` for `registry`/`repository` (first one on ties, so an exact
/// `host[:port]` key listed before an equivalent legacy one wins, as with docker).
pub fn best_key<'a>(
    keys: impl IntoIterator<Item = &'a String>,
    registry: &str,
    repository: Option<&str>,
    allow_paths: bool,
) -> Option<&'a String> {
    let mut best: Option<(&String, usize)> = None;
    for key in keys {
        if let Some(score) = match_key(key, registry, repository, allow_paths) {
            if best.is_none_or(|(_, s)| score > s) {
                best = Some((key, score));
            }
        }
    }
    best.map(|(k, _)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_keys() {
        assert_eq!(docker_key("docker.io"), DOCKER_HUB_KEY);
        assert_eq!(docker_key("index.docker.io"), DOCKER_HUB_KEY);
        assert_eq!(docker_key("localhost:5000"), "localhost:5000");
        for key in [
            "https://index.docker.io/v1/",
            "index.docker.io",
            "docker.io",
            "https://registry-1.docker.io/v2/",
        ] {
            assert_eq!(match_key(key, "docker.io", None, false), Some(0), "{key}");
        }
        assert_eq!(
            match_key("https://index.docker.io/v1/", "quay.io", None, false),
            None
        );
    }

    #[test]
    fn host_and_port_with_or_without_scheme() {
        for key in [
            "localhost:5000",
            "http://localhost:5000",
            "https://localhost:5000/",
            "https://LocalHost:5000/v1/",
            "localhost:5000/v2/",
        ] {
            assert_eq!(
                match_key(key, "localhost:5000", None, false),
                Some(0),
                "{key}"
            );
        }
        assert_eq!(
            match_key("localhost:5001", "localhost:5000", None, false),
            None
        );
        assert_eq!(match_key("localhost", "localhost:5000", None, false), None);
        assert_eq!(match_key("localhost:5000", "localhost", None, false), None);
    }

    #[test]
    fn auth_json_repository_scopes() {
        let repo = Some("team/app");
        assert_eq!(
            match_key("quay.io/team/app", "quay.io", repo, true),
            Some(2)
        );
        assert_eq!(match_key("quay.io/team", "quay.io", repo, true), Some(1));
        assert_eq!(match_key("quay.io", "quay.io", repo, true), Some(0));
        assert_eq!(match_key("quay.io/other", "quay.io", repo, true), None);
        assert_eq!(match_key("quay.io/team/app/x", "quay.io", repo, true), None);
        assert_eq!(match_key("quay.io/team/ap", "quay.io", repo, true), None);
        // Scoped keys need a repository to match against.
        assert_eq!(match_key("quay.io/team", "quay.io", None, true), None);
        // Legacy keys with a scheme are host-only, as are all keys in docker's config.
        assert_eq!(
            match_key("https://quay.io/other", "quay.io", repo, true),
            Some(0)
        );
        assert_eq!(match_key("quay.io/other", "quay.io", repo, false), Some(0));
        assert_eq!(
            match_key("docker.io/library", "docker.io", Some("nginx"), true),
            Some(1)
        );

        let keys: Vec<String> = ["quay.io", "quay.io/team", "quay.io/team/app", "quay.io/x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            best_key(&keys, "quay.io", repo, true).map(String::as_str),
            Some("quay.io/team/app")
        );
        assert_eq!(
            best_key(&keys, "quay.io", Some("team/web"), true).map(String::as_str),
            Some("quay.io/team")
        );
        assert_eq!(best_key(&keys, "ghcr.io", repo, true), None);
    }
}
