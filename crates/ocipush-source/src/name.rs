//! The names a source gives its images (`RepoTags`, `ref.name` annotations), kept as the source
//! wrote them: `docker.io/library/app:1.0`, `app:1.0`, or a bare tag. Mapping them onto a
//! destination registry is the engine's job.

use std::fmt;

/// A repository path and optional tag, as a local source names an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageName {
    /// Repository path without registry host when the name had none (`library/app`, `team/app`),
    /// or including it when the source wrote one (`docker.io/library/app`).
    pub repository: String,
    /// The tag, if the name has one; never `Some` of an empty string.
    pub tag: Option<String>,
}

impl ImageName {
    /// Splits `repo[:tag]`, minding `host:port/repo` (a colon before a slash is a port).
    pub fn parse(name: &str) -> Option<ImageName> {
        let name = name.split('@').next().unwrap_or(name).trim();
        if name.is_empty() {
            return None;
        }
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match name[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                (&name[..at], Some(name[at + 1..].to_string()))
            }
            None => (name, None),
        };
        if repository.is_empty() {
            return None;
        }
        Some(ImageName {
            repository: repository.to_string(),
            tag: tag.filter(|t| !t.is_empty()),
        })
    }

    /// The last path component: the image's own short name (`app` for `team/app`).
    pub fn short_name(&self) -> &str {
        self.repository
            .rsplit('/')
            .next()
            .unwrap_or(&self.repository)
    }
}

impl fmt::Display for ImageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.tag {
            Some(tag) => write!(f, "{}:{}", self.repository, tag),
            None => f.write_str(&self.repository),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_with_ports_and_tags() {
        let n = ImageName::parse("localhost:5000/team/app:1.0").unwrap();
        assert_eq!(n.repository, "localhost:5000/team/app");
        assert_eq!(n.tag.as_deref(), Some("1.0"));
        let n = ImageName::parse("localhost:5000/team/app").unwrap();
        assert_eq!(n.repository, "localhost:5000/team/app");
        assert_eq!(n.tag, None);
        assert_eq!(n.short_name(), "app");
        let n = ImageName::parse("app@sha256:abc").unwrap();
        assert_eq!((n.repository.as_str(), n.tag), ("app", None));
        assert!(ImageName::parse("").is_none());
    }
}
