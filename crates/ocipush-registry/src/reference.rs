//! Image references (`host[:port]/repo/name[:tag][@digest]`) parsed once into a [`Reference`],
//! following the distribution grammar and docker's normalisation (`docker.io`, `library/`).

use std::fmt;

use ocipush_oci::{parse_sha256, Digest};

/// The registry name Docker Hub references are normalised to, from short names such as `nginx`
/// and from `index.docker.io`.
pub const DOCKER_HUB: &str = "docker.io";
/// Where Docker Hub's API actually lives.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// Why a reference was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid reference `{input}`: {reason}")]
pub struct ReferenceError {
    /// The text refused: as given, or as built from its parts (a target plus a tag).
    pub input: String,
    /// What is wrong with it, in words for the user.
    pub reason: String,
}

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// `host[:port]`, normalised (`docker.io` for Docker Hub).
    pub registry: String,
    /// Repository path inside the registry, e.g. `team/app` (`library/app` on Docker Hub).
    pub repository: String,
    /// The tag, if the reference names one; never defaulted to `latest`.
    pub tag: Option<String>,
    /// The digest after `@`, if any; it wins over the tag when addressing the registry.
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parses a full reference. Without a registry part, Docker Hub is meant (as docker does).
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        let err = |reason: &str| ReferenceError {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        if input.is_empty() {
            return Err(err("empty"));
        }
        if let Some((scheme, _)) = input.split_once("://") {
            let remedy = if scheme.eq_ignore_ascii_case("http") {
                "drop it and add --plain-http"
            } else {
                "drop it (HTTPS is the default)"
            };
            return Err(err(&format!(
                "a reference takes no `{scheme}://`: {remedy}"
            )));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, digest)) => (
                rest,
                Some(parse_sha256(digest).map_err(|e| err(&e.to_string()))?),
            ),
            None => (input, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            validate_tag(tag).map_err(|r| err(&r))?;
        }
        let (registry, repository) = split_registry(name);
        validate_registry(&registry).map_err(|r| err(&r))?;
        let repository = normalize_repository(&registry, repository);
        validate_repository(&repository).map_err(|r| err(&r))?;
        Ok(Reference {
            registry,
            repository,
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// This repository under `tag`, which must be a valid tag (a `-t` value is user input).
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        validate_tag(tag).map_err(|reason| ReferenceError {
            input: format!("{}/{}:{tag}", self.registry, self.repository),
            reason,
        })?;
        Ok(Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        })
    }

    /// The reference the registry API is addressed with: the digest if any, else the tag.
    pub fn api_reference(&self) -> Option<String> {
        self.digest
            .as_ref()
            .map(|d| d.to_string())
            .or_else(|| self.tag.clone())
    }

    /// `host/repo` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// A registry plus an optional namespace, as `-r REGISTRY[/NAMESPACE]` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryTarget {
    /// `host[:port]`, normalised (`docker.io` for Docker Hub).
    pub registry: String,
    /// The path every image goes under, e.g. `team`; `None` for the registry's top level.
    pub namespace: Option<String>,
}

impl RegistryTarget {
    /// Parses `REGISTRY[/NAMESPACE]`. A leading `https://` or `http://` and trailing `/` are
    /// tolerated and dropped; a first component that is no host makes the whole a Docker Hub
    /// namespace.
    pub fn parse(input: &str) -> Result<RegistryTarget, ReferenceError> {
        let err = |reason: &str| ReferenceError {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let trimmed = input
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/');
        if trimmed.is_empty() {
            return Err(err("empty"));
        }
        let (registry, namespace) = match trimmed.split_once('/') {
            Some((host, ns)) if looks_like_host(host) => (host.to_string(), Some(ns)),
            Some(_) => (DOCKER_HUB.to_string(), Some(trimmed)),
            None if looks_like_host(trimmed) => (trimmed.to_string(), None),
            None => (DOCKER_HUB.to_string(), Some(trimmed)),
        };
        let registry = if registry == "index.docker.io" {
            DOCKER_HUB.to_string()
        } else {
            registry
        };
        validate_registry(&registry).map_err(|r| err(&r))?;
        if let Some(ns) = namespace {
            validate_repository(ns).map_err(|r| err(&format!("namespace: {r}")))?;
        }
        Ok(RegistryTarget {
            registry,
            namespace: namespace.map(str::to_string),
        })
    }

    /// `{registry}/{namespace}/{image}:{tag}`.
    pub fn reference_for(
        &self,
        image: &str,
        tag: Option<&str>,
    ) -> Result<Reference, ReferenceError> {
        let repository = match &self.namespace {
            Some(ns) => format!("{ns}/{image}"),
            None => image.to_string(),
        };
        let repository = normalize_repository(&self.registry, &repository);
        validate_repository(&repository).map_err(|reason| ReferenceError {
            input: repository.clone(),
            reason,
        })?;
        let untagged = Reference {
            registry: self.registry.clone(),
            repository,
            tag: None,
            digest: None,
        };
        match tag {
            Some(tag) => untagged.with_tag(tag),
            None => Ok(untagged),
        }
    }
}

/// docker's rule: the first component is a registry if it has a `.` or `:`, or is `localhost`.
fn looks_like_host(component: &str) -> bool {
    component.contains('.') || component.contains(':') || component == "localhost"
}

fn split_registry(name: &str) -> (String, &str) {
    match name.split_once('/') {
        Some((first, rest)) if looks_like_host(first) => {
            let host = if first == "index.docker.io" {
                DOCKER_HUB
            } else {
                first
            };
            (host.to_string(), rest)
        }
        _ => (DOCKER_HUB.to_string(), name),
    }
}

fn normalize_repository(registry: &str, repository: &str) -> String {
    if registry == DOCKER_HUB && !repository.contains('/') {
        format!("library/{repository}")
    } else {
        repository.to_string()
    }
}

fn validate_registry(registry: &str) -> Result<(), String> {
    let (host, port) = match registry.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || registry.starts_with('[') => (h, Some(p)),
        _ => (registry, None),
    };
    if let Some(port) = port {
        if port.parse::<u16>().is_err() {
            return Err(format!("bad port `{port}`"));
        }
    }
    let host_ok = !host.is_empty()
        && (host.starts_with('[') && host.ends_with(']')
            || host.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }));
    if host_ok {
        Ok(())
    } else {
        Err(format!("bad registry host `{host}`"))
    }
}

/// The reference with its repository path in lower case, when that is what made `input`
/// invalid: `localhost:5000/Team/App:1` → `localhost:5000/team/app:1` (the host, tag and digest
/// keep their case). For a "did you mean" hint.
pub fn lowercased_repository(input: &str) -> Option<String> {
    let (host, rest) = input.split_once('/')?;
    let (path, suffix) = match rest.find('@') {
        Some(at) => rest.split_at(at),
        None => match rest.rfind(':') {
            Some(colon) if !rest[colon..].contains('/') => rest.split_at(colon),
            _ => (rest, ""),
        },
    };
    let candidate = format!("{host}/{}{suffix}", path.to_ascii_lowercase());
    (candidate != input && Reference::parse(&candidate).is_ok()).then_some(candidate)
}

/// Path components: lowercase alphanumerics separated by `.`, `_`, `__` or runs of `-`.
fn validate_repository(repository: &str) -> Result<(), String> {
    if repository.is_empty() {
        return Err("empty repository name".into());
    }
    if repository.len() > 255 {
        return Err("repository name longer than 255 characters".into());
    }
    for component in repository.split('/') {
        if !valid_component(component) {
            return Err(format!(
                "repository component `{component}` must be lowercase letters, digits and separators (. _ __ -)"
            ));
        }
    }
    Ok(())
}

fn valid_component(c: &str) -> bool {
    let bytes = c.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        // A separator run: `.`, `_`, `__`, or any number of `-`.
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn validate_tag(tag: &str) -> Result<(), String> {
    let bytes = tag.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let ok = !bytes.is_empty()
        && bytes.len() <= 128
        && word(bytes[0])
        && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "bad tag `{tag}` (up to 128 of letters, digits, _ . -, not starting with . or -)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_references() {
        let r = Reference::parse("localhost:5000/team/app:1.0").unwrap();
        assert_eq!(r.registry, "localhost:5000");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.tag.as_deref(), Some("1.0"));
        assert_eq!(r.to_string(), "localhost:5000/team/app:1.0");

        let r = Reference::parse("gitea.cnoe.localtest.me:8443/giteaadmin/app").unwrap();
        assert_eq!(r.registry, "gitea.cnoe.localtest.me:8443");
        assert_eq!(r.tag, None);
    }

    #[test]
    fn normalizes_docker_hub() {
        let r = Reference::parse("nginx").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/nginx");
        let r = Reference::parse("index.docker.io/user/app:x").unwrap();
        assert_eq!(r.to_string(), "docker.io/user/app:x");
    }

    #[test]
    fn parses_digests() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("127.0.0.1:5000/app@{d}")).unwrap();
        assert_eq!(r.digest.unwrap().to_string(), d);
        assert!(Reference::parse("127.0.0.1:5000/app@sha256:xyz").is_err());
    }

    #[test]
    fn refuses_bad_references() {
        for bad in [
            "",
            "localhost:5000/App",
            "localhost:5000/app:",
            "localhost:5000/app:-x",
            "localhost:99999/app",
            "localhost:5000/a//b",
            "localhost:5000/a..b",
            "host_name.com/app",
            "localhost:5000/../etc",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad} should be refused");
        }
        assert!(Reference::parse("localhost:5000/a__b/c-d/e.f---g:tag_1.2-3").is_ok());
        // A URL is named for what it is, not read as the registry `http:` with a bad port.
        let err = Reference::parse("http://127.0.0.1:5000/x/y:1").unwrap_err();
        assert!(err.reason.contains("`http://`"), "{}", err.reason);
        assert!(err.reason.contains("add --plain-http"), "{}", err.reason);
        // An https:// one is told to drop it, not to switch to plain HTTP.
        let err = Reference::parse("https://ghcr.io/org/app:1").unwrap_err();
        assert!(err.reason.contains("`https://`"), "{}", err.reason);
        assert!(!err.reason.contains("plain"), "{}", err.reason);
    }

    #[test]
    fn upper_case_repositories_get_their_lower_case_form() {
        assert_eq!(
            lowercased_repository("localhost:5000/Team/App:Dev").as_deref(),
            Some("localhost:5000/team/app:Dev")
        );
        assert_eq!(lowercased_repository("localhost:5000/team/app:1"), None);
        assert_eq!(lowercased_repository("localhost:5000/team app:1"), None);
    }

    #[test]
    fn registry_targets_build_destinations() {
        let t = RegistryTarget::parse("localhost:5000/team").unwrap();
        assert_eq!(t.registry, "localhost:5000");
        let r = t.reference_for("app", Some("dev")).unwrap();
        assert_eq!(r.to_string(), "localhost:5000/team/app:dev");

        let t = RegistryTarget::parse("https://gitea.cnoe.localtest.me:8443/giteaadmin/").unwrap();
        assert_eq!(t.namespace.as_deref(), Some("giteaadmin"));
        let t = RegistryTarget::parse("127.0.0.1:5000").unwrap();
        assert_eq!(
            t.reference_for("app", None).unwrap().to_string(),
            "127.0.0.1:5000/app"
        );
        assert!(RegistryTarget::parse("localhost:5000/Team").is_err());
    }
}
