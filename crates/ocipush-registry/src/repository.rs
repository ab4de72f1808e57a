//! One repository on a registry: the handle blob and manifest operations hang off, carrying the
//! token scope (`repository:NAME:pull,push`) every request of it authenticates for (plus
//! `repository:FROM:pull` for a mount from another repository).

use std::sync::Arc;

use reqwest::Url;

use crate::client::RegistryClient;

/// What a run does in a repository, so the rights its requests ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Read only (a source repository, or the `from` of a mount).
    Pull,
    /// Read and write (a destination).
    PullPush,
}

impl Access {
    /// The token scope for these rights on the repository `name`, as token servers take it.
    pub(crate) fn scope(self, name: &str) -> String {
        match self {
            Access::Pull => format!("repository:{name}:pull"),
            Access::PullPush => format!("repository:{name}:pull,push"),
        }
    }
}

/// A repository of a connected registry.
#[derive(Debug, Clone)]
pub struct Repository {
    pub(crate) client: Arc<RegistryClient>,
    pub(crate) name: String,
    pub(crate) scope: String,
}

impl Repository {
    /// The repository `name` (e.g. `team/app`) on `client`'s registry; its requests ask for
    /// pull and push rights on it.
    pub fn new(client: Arc<RegistryClient>, name: &str) -> Repository {
        Repository {
            client,
            name: name.to_string(),
            scope: Access::PullPush.scope(name),
        }
    }

    /// The repository `name` read from, never written: its requests ask for pull rights only
    /// (what anonymous access to a public repository grants).
    pub fn for_pull(client: Arc<RegistryClient>, name: &str) -> Repository {
        Repository {
            client,
            name: name.to_string(),
            scope: Access::Pull.scope(name),
        }
    }

    /// The repository's path on the registry, e.g. `team/app`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The connection every request of the repository goes through.
    pub fn client(&self) -> &Arc<RegistryClient> {
        &self.client
    }

    pub(crate) fn scope(&self) -> Option<&str> {
        Some(&self.scope)
    }

    /// The scopes a cross-repository mount from `from` needs, space-separated as token servers
    /// take them: push here, pull there. The token is cached for that pair.
    pub fn mount_scope(&self, from: &str) -> String {
        format!("{} {}", self.scope, Access::Pull.scope(from))
    }

    pub(crate) fn url(&self, tail: &str) -> Url {
        self.client.url(&format!("/v2/{}/{}", self.name, tail))
    }
}
