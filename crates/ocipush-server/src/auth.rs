//! Optional HTTP basic auth against an htpasswd file with bcrypt entries (`htpasswd -Bbn user pass`).
//! bcrypt is deliberately slow (tens of milliseconds), and a push sends many requests with the same
//! credentials, so successful checks are remembered for a short while, keyed by a hash of the credentials
//! (never the password itself).
//!
//! What a hostile client must not learn or do: whether a user exists (an unknown user is checked against a
//! dummy hash of the same cost, so both answers take as long), and burn every core on bcrypt (checks run
//! a few at a time; the rest wait their turn).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::header::{HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::api_error::{ApiError, ErrorCode};
use crate::error::ServerError;

/// How long a successful verification is trusted without running bcrypt again.
const CACHE_TTL: Duration = Duration::from_secs(120);
/// Bound on remembered verifications, so a flood of distinct valid logins cannot grow memory.
const CACHE_MAX: usize = 1024;

/// Users and their bcrypt hashes, plus the verification cache.
pub struct Htpasswd {
    users: HashMap<String, String>,
    /// What an unknown user's password is checked against: a hash of the users' most common cost.
    dummy_hash: String,
    verified: Mutex<HashMap<[u8; 32], Instant>>,
    /// Bounds how many bcrypt checks run at once.
    checks: tokio::sync::Semaphore,
}

impl Htpasswd {
    /// Reads an htpasswd file. Non-bcrypt entries are refused rather than skipped: silently ignoring a user
    /// would surface later as a puzzling 401.
    pub fn load(path: &Path) -> Result<Htpasswd, ServerError> {
        let text = std::fs::read_to_string(path).map_err(|source| ServerError::ReadFile {
            what: "htpasswd",
            path: path.to_path_buf(),
            source,
        })?;
        Htpasswd::parse(&text).map_err(|(line, reason)| ServerError::Htpasswd {
            path: path.to_path_buf(),
            line,
            reason,
        })
    }

    fn parse(text: &str) -> Result<Htpasswd, (usize, String)> {
        let mut users = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((user, hash)) = line.split_once(':') else {
                return Err((index + 1, "expected `user:hash`".to_owned()));
            };
            let bcrypt = ["$2y$", "$2a$", "$2b$"]
                .iter()
                .any(|prefix| hash.starts_with(prefix));
            if !bcrypt {
                return Err((
                    index + 1,
                    format!(
                        "user {user:?} has a non-bcrypt hash; create entries with `htpasswd -B`"
                    ),
                ));
            }
            if bcrypt_cost(hash).is_none() {
                return Err((
                    index + 1,
                    format!(
                        "user {user:?} has a malformed bcrypt hash (expected $2y$NN$ and 53 characters); create entries with `htpasswd -B`"
                    ),
                ));
            }
            users.insert(user.to_owned(), hash.to_owned());
        }
        if users.is_empty() {
            return Err((0, "no users defined".to_owned()));
        }
        let dummy_hash = bcrypt::hash("no such user", most_common_cost(&users))
            .map_err(|err| (0, format!("cannot make a bcrypt hash: {err}")))?;
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Ok(Htpasswd {
            users,
            dummy_hash,
            verified: Mutex::new(HashMap::new()),
            checks: tokio::sync::Semaphore::new((cores / 2).max(1)),
        })
    }

    /// Checks an `Authorization` header value.
    pub async fn check(self: &Arc<Self>, header: Option<&HeaderValue>) -> bool {
        let Some((user, password)) = header.and_then(parse_basic) else {
            return false;
        };
        let (known, hash) = match self.users.get(&user) {
            Some(hash) => (true, hash.clone()),
            None => (false, self.dummy_hash.clone()),
        };
        let key = cache_key(&user, &password, &hash);
        if known && self.is_cached(&key) {
            return true;
        }
        let Ok(_turn) = self.checks.acquire().await else {
            return false;
        };
        let matches = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(false);
        let ok = known && matches;
        if ok {
            self.remember(key);
        }
        ok
    }

    fn is_cached(&self, key: &[u8; 32]) -> bool {
        let cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        cache.get(key).is_some_and(|at| at.elapsed() < CACHE_TTL)
    }

    fn remember(&self, key: [u8; 32]) {
        let mut cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        cache.retain(|_, at| at.elapsed() < CACHE_TTL);
        if cache.len() < CACHE_MAX {
            cache.insert(key, Instant::now());
        }
    }
}

/// Shows users only: hashes and cache keys stay out of logs and error reports.
impl std::fmt::Debug for Htpasswd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut users: Vec<&String> = self.users.keys().collect();
        users.sort();
        f.debug_struct("Htpasswd")
            .field("users", &users)
            .finish_non_exhaustive()
    }
}

/// The cost of a well-formed bcrypt hash (`$2y$NN$` then 22 characters of salt and 31 of hash, in
/// bcrypt's base64 alphabet), `None` for anything else.
fn bcrypt_cost(hash: &str) -> Option<u32> {
    let rest = hash.get(4..)?;
    let (cost, encoded) = rest.split_once('$')?;
    let cost: u32 = (cost.len() == 2).then(|| cost.parse().ok()).flatten()?;
    let alphabet = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '/';
    ((4..=31).contains(&cost) && encoded.len() == 53 && encoded.chars().all(alphabet))
        .then_some(cost)
}

/// The cost most users' hashes have (the highest among equally common ones).
fn most_common_cost(users: &HashMap<String, String>) -> u32 {
    let mut counts: HashMap<u32, usize> = HashMap::new();
    for hash in users.values() {
        if let Some(cost) = bcrypt_cost(hash) {
            *counts.entry(cost).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .max_by_key(|&(cost, count)| (count, cost))
        .map_or(bcrypt::DEFAULT_COST, |(cost, _)| cost)
}

/// Includes the stored hash so that a reloaded file with a changed password never hits an old entry.
fn cache_key(user: &str, password: &str, hash: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in [user, password, hash] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.finalize().into()
}

/// `Basic base64(user:password)` → (user, password).
fn parse_basic(value: &HeaderValue) -> Option<(String, String)> {
    let value = value.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Middleware: lets the request through only with valid credentials when auth is configured.
pub async fn require_auth(
    State(htpasswd): State<Option<Arc<Htpasswd>>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(htpasswd) = htpasswd {
        if !htpasswd.check(request.headers().get(AUTHORIZATION)).await {
            return ApiError::new(ErrorCode::Unauthorized, "authentication required")
                .with_header(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"ocipush\""),
                )
                .into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(user: &str, password: &str) -> HeaderValue {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {encoded}")).expect("valid header")
    }

    #[test]
    fn refuses_non_bcrypt_entries() {
        let err = Htpasswd::parse("alice:{SHA}abc=\n").expect_err("must refuse");
        assert_eq!(err.0, 1);
        assert!(err.1.contains("alice"), "{}", err.1);
        assert!(Htpasswd::parse("# only a comment\n").is_err());
        let good = bcrypt::hash("x", 4).expect("hash");
        for bad in ["$2y$", "$2y$10$short", "$2y$99$", "$2y$1$abc"] {
            let file = format!("ok:{good}\nmallory:{bad}\n");
            let err = Htpasswd::parse(&file).expect_err(bad);
            assert_eq!(err.0, 2, "{bad}");
            assert!(err.1.contains("malformed"), "{}", err.1);
        }
        let wrong_alphabet = format!("{}!", &good[..good.len() - 1]);
        assert!(Htpasswd::parse(&format!("a:{wrong_alphabet}\n")).is_err());
    }

    #[tokio::test]
    async fn unknown_users_cost_a_check_of_the_same_cost() {
        let hash = bcrypt::hash("s3cret", 6).expect("hash");
        let htpasswd = Arc::new(Htpasswd::parse(&format!("alice:{hash}\n")).expect("parse"));
        assert_eq!(bcrypt_cost(&htpasswd.dummy_hash), Some(6));
        // The dummy hash's password must not let an unknown user in.
        assert!(
            !htpasswd
                .check(Some(&header("nobody", "no such user")))
                .await
        );
        assert!(htpasswd.verified.lock().expect("lock").is_empty());
    }

    #[tokio::test]
    async fn verifies_htpasswd_style_hashes_and_caches() {
        // htpasswd writes `$2y$`; the bcrypt crate writes `$2b$`: both must verify.
        let hash = bcrypt::hash("s3cret", 4).expect("hash");
        let hash_2y = hash.replacen("$2b$", "$2y$", 1);
        let file = format!("alice:{hash_2y}\r\nbob:{hash}\n");
        let htpasswd = Arc::new(Htpasswd::parse(&file).expect("parse"));
        assert!(htpasswd.check(Some(&header("alice", "s3cret"))).await);
        assert!(htpasswd.check(Some(&header("alice", "s3cret"))).await);
        assert_eq!(htpasswd.verified.lock().expect("lock").len(), 1);
        assert!(htpasswd.check(Some(&header("bob", "s3cret"))).await);
        assert!(!htpasswd.check(Some(&header("alice", "wrong"))).await);
        assert!(!htpasswd.check(Some(&header("carol", "s3cret"))).await);
        assert!(!htpasswd.check(None).await);
        assert!(
            !htpasswd
                .check(Some(&HeaderValue::from_static("Bearer abc")))
                .await
        );
    }
}
