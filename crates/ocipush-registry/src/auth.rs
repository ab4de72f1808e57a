//! Registry authentication: what the registry asked for (learnt from `/v2/` or a 401), the
//! credentials we have, and bearer tokens cached per set of scopes. A request uses any fresh
//! token whose scopes cover the ones it needs: a token asked for many repositories of a run at
//! once ([`Auth::authorize_ahead`]) serves their requests, and mounts between two of them, for
//! as long as it lasts. Otherwise (none covers, it expired, or the registry refused it) a token
//! is fetched per repository, and per repository pair for a mount.
//!
//! The flow is the distribution token protocol: a 401 carries a `WWW-Authenticate` challenge;
//! for `Basic` we send the credentials; for `Bearer` we fetch a token from the realm (see
//! [`crate::token`]) for the scopes the request needs plus any the challenge names, and send
//! that until it is about to expire or the registry refuses it.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderValue, WWW_AUTHENTICATE};

use crate::challenge::Challenge;
use crate::error::RegistryError;
use crate::secret::{Credentials, Secret};
use crate::token::{self, basic_header, bearer_header, TokenQuery};

/// A cached token and until when it is used.
struct CachedToken {
    token: Secret,
    fresh_until: Instant,
}

/// Authentication state for one registry.
pub(crate) struct Auth {
    registry: String,
    credentials: Option<Credentials>,
    challenge: Mutex<Option<Challenge>>,
    /// Keyed by the sorted, space-joined scopes the token was asked for.
    tokens: Mutex<HashMap<String, CachedToken>>,
    /// The token server does not take OAuth2 POSTs.
    post_refused: AtomicBool,
    /// One fetch per scope set at a time: blobs uploading in parallel all need the same token,
    /// and a rate-limited token server should see one request, not one per blob.
    fetching: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// The scopes of a request: the space-separated ones it needs plus the challenge's.
fn scope_set(needed: Option<&str>, asked: Option<&str>) -> BTreeSet<String> {
    needed
        .into_iter()
        .chain(asked)
        .flat_map(str::split_whitespace)
        .map(str::to_string)
        .collect()
}

/// The cache key of a scope set: its scopes sorted (as a `BTreeSet` holds them), space-joined.
fn scope_key(scopes: &BTreeSet<String>) -> String {
    scopes
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether the scopes of `held` (space-separated, as a token was asked for) cover every one of
/// `needed`: the same resource type and name with at least the actions needed (`*` is all).
/// A scope that is not `type:name:actions` is covered only by itself.
fn covers(held: &str, needed: &BTreeSet<String>) -> bool {
    let held: Vec<&str> = held.split(' ').collect();
    needed.iter().all(|want| {
        held.iter().any(|have| {
            if have == want {
                return true;
            }
            match (split_scope(have), split_scope(want)) {
                (Some((have_resource, have_actions)), Some((want_resource, want_actions))) => {
                    have_resource == want_resource
                        && (have_actions.contains(&"*")
                            || want_actions.iter().all(|a| have_actions.contains(a)))
                }
                _ => false,
            }
        })
    })
}

/// `repository:team/app:pull,push` as (`repository:team/app`, [`pull`, `push`]).
fn split_scope(scope: &str) -> Option<(&str, Vec<&str>)> {
    let (resource, actions) = scope.rsplit_once(':')?;
    resource
        .contains(':')
        .then(|| (resource, actions.split(',').collect()))
}

/// Refresh a little before the server's deadline: a tenth of the lifetime, at most 30 s.
fn fresh_until(lifetime: Duration) -> Instant {
    Instant::now() + lifetime - (lifetime / 10).min(Duration::from_secs(30))
}

impl Auth {
    pub(crate) fn new(registry: &str, credentials: Option<Credentials>) -> Self {
        Auth {
            registry: registry.to_string(),
            credentials,
            challenge: Mutex::new(None),
            tokens: Mutex::new(HashMap::new()),
            post_refused: AtomicBool::new(false),
            fetching: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn challenge(&self) -> Option<Challenge> {
        self.challenge.lock().expect("challenge lock").clone()
    }

    pub(crate) fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// Records the challenge of a 401 response. Returns false when it carries none we can answer.
    pub(crate) fn learn(&self, headers: &reqwest::header::HeaderMap, scope: Option<&str>) -> bool {
        let values = headers.get_all(WWW_AUTHENTICATE);
        let Some(challenge) = Challenge::preferred(values.iter().filter_map(|v| v.to_str().ok()))
        else {
            return false;
        };
        // The tokens we sent for these scopes were not good enough for this request: a token
        // asked for many repositories may not have been granted all it asked for.
        let needed = scope_set(scope, None);
        self.tokens
            .lock()
            .expect("token cache lock")
            .retain(|key, _| !covers(key, &needed));
        *self.challenge.lock().expect("challenge lock") = Some(challenge);
        true
    }

    /// The `Authorization` header for a request needing `scope` (space-separated scopes),
    /// fetching a token if needed.
    pub(crate) async fn header(
        &self,
        http: &reqwest::Client,
        scope: Option<&str>,
    ) -> Result<Option<HeaderValue>, RegistryError> {
        Ok(self.authorize(http, scope, false).await?.0)
    }

    /// Drops the cached tokens that were used for `scope` by covering it without being asked
    /// for exactly it (a run's token): the registry refused a request they were sent with
    /// (403 where a 401 would have said "insufficient scope"), and a token server may grant a
    /// request for many scopes less than it grants each alone. Returns whether any was dropped,
    /// so that the request is tried once more with a token of its own.
    pub(crate) fn drop_covering(&self, scope: Option<&str>) -> bool {
        let needed = scope_set(scope, None);
        if needed.is_empty() {
            return false;
        }
        let exact = scope_key(&needed);
        let mut tokens = self.tokens.lock().expect("token cache lock");
        let before = tokens.len();
        tokens.retain(|key, _| *key == exact || !covers(key, &needed));
        tokens.len() < before
    }

    /// Fetches one token for all `scopes` (space-separated) ahead of the requests that will
    /// need them, where the registry answers with a token server; best effort: when the token
    /// server refuses, each request fetches its own as before.
    pub(crate) async fn authorize_ahead(&self, http: &reqwest::Client, scopes: String) {
        if !matches!(self.challenge(), Some(Challenge::Bearer { .. }))
            || matches!(self.credentials, Some(Credentials::RegistryToken(_)))
        {
            return;
        }
        if let Err(e) = self.authorize(http, Some(&scopes), false).await {
            tracing::debug!(registry = %self.registry, error = %e, "no token for the run's repositories at once");
        }
    }

    /// As [`Auth::header`] for `login`: asks a token server for a refresh token as well, and
    /// never uses the cache. Returns the header and the refresh token, if one was handed out.
    pub(crate) async fn login_header(
        &self,
        http: &reqwest::Client,
    ) -> Result<(Option<HeaderValue>, Option<Secret>), RegistryError> {
        self.authorize(http, None, true).await
    }

    async fn authorize(
        &self,
        http: &reqwest::Client,
        scope: Option<&str>,
        login: bool,
    ) -> Result<(Option<HeaderValue>, Option<Secret>), RegistryError> {
        let challenge = self.challenge();
        let header = match (challenge, &self.credentials) {
            (None, _) => None,
            (Some(_), Some(Credentials::RegistryToken(token))) => Some(self.valid_bearer(token)?),
            (Some(Challenge::Basic), credentials) => credentials.as_ref().and_then(basic_header),
            (
                Some(Challenge::Bearer {
                    realm,
                    service,
                    scope: asked,
                }),
                _,
            ) => {
                let scopes = scope_set(scope, asked.as_deref());
                let key = scope_key(&scopes);
                if !login {
                    if let Some(header) = self.cached_bearer(&key, &scopes)? {
                        return Ok((Some(header), None));
                    }
                }
                let gate = self
                    .fetching
                    .lock()
                    .expect("fetch gate lock")
                    .entry(key.clone())
                    .or_default()
                    .clone();
                let _turn = gate.lock().await;
                // Whoever held the gate before may have fetched the token meanwhile.
                if !login {
                    if let Some(header) = self.cached_bearer(&key, &scopes)? {
                        return Ok((Some(header), None));
                    }
                }
                let scopes: Vec<String> = scopes.into_iter().collect();
                let query = TokenQuery {
                    realm: &realm,
                    service: service.as_deref(),
                    scopes: &scopes,
                    offline: login,
                };
                let issued = token::fetch(
                    http,
                    &self.registry,
                    self.credentials.as_ref(),
                    &query,
                    &self.post_refused,
                )
                .await?;
                tracing::debug!(
                    registry = %self.registry,
                    scopes = %key,
                    lifetime_s = issued.lifetime.as_secs(),
                    "got a bearer token"
                );
                let header = self.valid_bearer(&issued.token)?;
                self.tokens.lock().expect("token cache lock").insert(
                    key,
                    CachedToken {
                        token: issued.token,
                        fresh_until: fresh_until(issued.lifetime),
                    },
                );
                return Ok((Some(header), issued.refresh_token));
            }
        };
        Ok((header, None))
    }

    /// A fresh cached token for `scopes` (whose cache key is `key`) as a header: the one asked
    /// for exactly these, else any whose scopes cover them.
    fn cached_bearer(
        &self,
        key: &str,
        scopes: &BTreeSet<String>,
    ) -> Result<Option<HeaderValue>, RegistryError> {
        let cache = self.tokens.lock().expect("token cache lock");
        let now = Instant::now();
        let exact = cache.get(key).filter(|c| c.fresh_until > now);
        let found = exact.or_else(|| {
            cache
                .iter()
                .find(|(held, c)| c.fresh_until > now && covers(held, scopes))
                .map(|(_, c)| c)
        });
        found.map(|c| self.valid_bearer(&c.token)).transpose()
    }

    fn valid_bearer(&self, token: &Secret) -> Result<HeaderValue, RegistryError> {
        bearer_header(token).ok_or_else(|| RegistryError::Unauthorized {
            registry: self.registry.clone(),
            detail: "the token holds characters an HTTP header cannot carry".into(),
        })
    }

    /// Explains a 401 that persisted after answering the challenge.
    pub(crate) fn refused(&self) -> RegistryError {
        RegistryError::Unauthorized {
            registry: self.registry.clone(),
            detail: match &self.credentials {
                Some(c) => format!("the registry rejected {}", c.describe()),
                None => "the registry requires credentials".into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_merge_and_sort() {
        let set = scope_set(
            Some("repository:b:pull,push repository:a:pull"),
            Some("repository:b:pull,push"),
        );
        assert_eq!(
            set.into_iter().collect::<Vec<_>>(),
            ["repository:a:pull", "repository:b:pull,push"]
        );
        assert!(scope_set(None, None).is_empty());
    }

    #[test]
    fn a_token_covers_the_scopes_it_holds_with_at_least_their_actions() {
        let set = |s: &str| scope_set(Some(s), None);
        let run = "repository:a:pull,push repository:b:pull,push repository:src:pull";
        assert!(covers(run, &set("repository:a:pull,push")));
        // A mount's pair: push here, pull there.
        assert!(covers(
            run,
            &set("repository:a:pull,push repository:b:pull")
        ));
        assert!(covers(run, &set("repository:src:pull")));
        assert!(!covers(run, &set("repository:src:pull,push")));
        assert!(!covers(run, &set("repository:c:pull")));
        // Names are compared whole, not as prefixes.
        assert!(!covers("repository:a/b:pull", &set("repository:a:pull")));
        assert!(covers("repository:a:*", &set("repository:a:pull,push")));
        assert!(covers("odd", &set("odd")));
        assert!(!covers("odd", &set("other")));
    }

    #[test]
    fn a_refused_request_drops_the_run_token_that_covered_it_not_its_own() {
        let auth = Auth::new("registry.test", None);
        let fresh = |token: &str| CachedToken {
            token: Secret::new(token.to_string()),
            fresh_until: Instant::now() + Duration::from_secs(60),
        };
        let run = "repository:a:pull,push repository:b:pull,push";
        let own = "repository:a:pull,push";
        auth.tokens.lock().unwrap().extend([
            (run.to_string(), fresh("run")),
            (own.to_string(), fresh("own")),
        ]);
        assert!(auth.drop_covering(Some(own)));
        let left: Vec<String> = auth.tokens.lock().unwrap().keys().cloned().collect();
        assert_eq!(left, [own]);
        // Nothing more to drop: the request's own token was refused, which the caller reports.
        assert!(!auth.drop_covering(Some(own)));
        assert!(!auth.drop_covering(None));
    }

    #[test]
    fn tokens_are_refreshed_before_they_expire() {
        let soon = fresh_until(Duration::from_secs(60));
        assert!(soon > Instant::now() + Duration::from_secs(50));
        assert!(soon < Instant::now() + Duration::from_secs(60));
        let long = fresh_until(Duration::from_secs(3600));
        assert!(long < Instant::now() + Duration::from_secs(3571));
    }
}
