//! A bearer-token server for docker-registry's `auth: token:` mode (the distribution token
//! protocol), for integration tests.
//!
//! [`TokenServer::start`] generates an ECDSA P-256 key and a self-signed certificate for it,
//! then serves plain HTTP on a free 127.0.0.1 port (a thread per connection, one request per
//! connection):
//!
//! `GET /token?service=SVC&scope=repository:NAME:pull,push[&scope=...]`, optionally with
//! `Authorization: Basic`, answers
//! - 401 when Basic credentials are present but wrong (unknown user or bad password);
//! - otherwise 200 with `{"token", "access_token", "expires_in", "issued_at"}`: a JWT signed
//!   ES256 (raw `r||s` signature) whose header carries the certificate in `x5c` (and its
//!   libtrust key ID in `kid`), with the claims `iss`, `sub`, `aud` (= the requested service),
//!   `exp`, `nbf`, `iat`, `jti` and `access`. Authenticated users get every `repository` action
//!   they ask for (`pull`, `push`, `delete`, `*`) and other resource types (`registry:catalog:*`);
//!   anonymous clients get only `pull`. Scopes nothing was granted for are left out of `access`
//!   (the registry then refuses with `insufficient_scope`), as distribution's reference
//!   servers do.
//!
//! The registry verifies tokens against [`TokenServer::cert_pem`] (its `rootcertbundle`), the
//! issuer and the service; [`crate::registry::DockerRegistry`] wires all of that up when given
//! [`crate::registry::TokenAuthOptions`].
//!
//! Every request is recorded ([`TokenServer::requests`]): method, raw path and query, decoded
//! scopes, whether Basic auth came along and for which user (never the password), the answer,
//! and what was granted. [`TokenServer::tokens_issued`] counts tokens, and
//! [`TokenServer::set_expires_in`] shortens their lifetime (note that distribution accepts a
//! token for 60 s of leeway past its `exp`).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use rcgen::{date_time_ymd, CertificateParams, DnType, KeyPair, KeyUsagePurpose};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::json;
use std::fs;
use std::io::Write;
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod http;
mod jwt;

use http::{decode_basic, parse_query, read_request, Request, Response};
pub use jwt::{decode_claims, decode_jwt};
use jwt::{libtrust_key_id, rfc3339};

/// Default token lifetime in seconds (what Docker Hub's token server hands out).
pub const DEFAULT_EXPIRES_IN: u64 = 300;
/// Upper bound of a request head; more is answered 431.
const MAX_HEAD: usize = 64 * 1024;
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// How to run a [`TokenServer`].
#[derive(Clone)]
pub struct TokenServerOptions {
    /// Valid `(username, password)` pairs for Basic auth.
    pub users: Vec<(String, String)>,
    /// The `iss` claim (the registry's `auth.token.issuer`).
    pub issuer: String,
    /// The service tokens are issued for when a request names none (the `aud` claim is the
    /// requested `service`, falling back to this).
    pub service: String,
    /// `expires_in` of the answers and the tokens' lifetime, in seconds.
    pub expires_in: u64,
    /// Whether anonymous clients get `pull` (true) or nothing.
    pub anonymous_pull: bool,
}

impl Default for TokenServerOptions {
    fn default() -> Self {
        Self {
            users: Vec::new(),
            issuer: "ocipush-testkit-token-issuer".into(),
            service: "ocipush-testkit-registry".into(),
            expires_in: DEFAULT_EXPIRES_IN,
            anonymous_pull: true,
        }
    }
}

impl std::fmt::Debug for TokenServerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenServerOptions")
            .field(
                "users",
                &self.users.iter().map(|(u, _)| u).collect::<Vec<_>>(),
            )
            .field("issuer", &self.issuer)
            .field("service", &self.service)
            .field("expires_in", &self.expires_in)
            .field("anonymous_pull", &self.anonymous_pull)
            .finish()
    }
}

/// One request the token server received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// `GET`, ...
    pub method: String,
    /// The raw request target, e.g. `/token?service=x&scope=repository%3Aa%3Apull`.
    pub path_and_query: String,
    /// The decoded `service` parameter.
    pub service: Option<String>,
    /// The decoded `scope` parameters, in order.
    pub scopes: Vec<String>,
    /// Whether an `Authorization: Basic` header came along.
    pub basic_auth: bool,
    /// The user named by that header (valid or not).
    pub username: Option<String>,
    /// Whether the credentials were valid.
    pub authenticated: bool,
    /// The HTTP status answered.
    pub status: u16,
    /// The scopes granted, as `type:name:action,action` (only those with actions).
    pub granted: Vec<String>,
}

impl TokenRequest {
    /// Whether this request asked for exactly `scope` (e.g. `repository:team/app:pull,push`).
    pub fn asked_for(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// Claims of a token, decoded without verification (see [`decode_claims`]).
pub type Claims = serde_json::Value;

struct Shared {
    options: TokenServerOptions,
    signer: EcdsaKeyPair,
    x5c: String,
    kid: String,
    rng: SystemRandom,
    expires_in: AtomicU64,
    issued: AtomicUsize,
    requests: Mutex<Vec<TokenRequest>>,
    stop: AtomicBool,
}

/// A running token server; stopped when dropped.
pub struct TokenServer {
    addr: SocketAddr,
    cert_pem: String,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for TokenServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenServer")
            .field("realm", &self.realm())
            .field("options", &self.shared.options)
            .field("tokens_issued", &self.tokens_issued())
            .finish()
    }
}

impl TokenServer {
    /// Generates the signing key and certificate and starts serving on a free 127.0.0.1 port.
    pub fn start(options: TokenServerOptions) -> Self {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .expect("generating the token signing key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("cert params");
        params
            .distinguished_name
            .push(DnType::CommonName, "ocipush testkit token signer");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.not_before = date_time_ymd(2000, 1, 1);
        params.not_after = date_time_ymd(2099, 12, 31);
        let cert = params
            .self_signed(&key)
            .expect("self-signing the token certificate");
        let rng = SystemRandom::new();
        let signer =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &key.serialize_der(), &rng)
                .expect("loading the token signing key into ring");
        let listener =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding the token server");
        let addr = listener.local_addr().expect("token server address");
        let shared = Arc::new(Shared {
            expires_in: AtomicU64::new(options.expires_in),
            options,
            signer,
            x5c: STANDARD.encode(cert.der()),
            kid: libtrust_key_id(&rcgen::PublicKeyData::subject_public_key_info(&key)),
            rng,
            issued: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("token-server".into())
                .spawn(move || accept_loop(listener, shared))
                .expect("spawning the token server thread")
        };
        TokenServer {
            addr,
            cert_pem: cert.pem(),
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/token`: the registry's `auth.token.realm`.
    pub fn realm(&self) -> String {
        format!("{}/token", self.url())
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The `iss` claim of its tokens.
    pub fn issuer(&self) -> &str {
        &self.shared.options.issuer
    }

    /// The default service (`aud`).
    pub fn service(&self) -> &str {
        &self.shared.options.service
    }

    /// The signing certificate (PEM): the registry's `auth.token.rootcertbundle`.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Writes [`Self::cert_pem`] to `path`.
    pub fn write_root_cert_bundle(&self, path: &Path) {
        fs::write(path, &self.cert_pem)
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }

    /// The libtrust key ID of the signing key (the `kid` header).
    pub fn key_id(&self) -> &str {
        &self.shared.kid
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.shared.requests.lock().expect("requests lock").clone()
    }

    /// Forgets the recorded requests (the token count stays).
    pub fn clear_requests(&self) {
        self.shared.requests.lock().expect("requests lock").clear();
    }

    /// How many tokens it has issued.
    pub fn tokens_issued(&self) -> usize {
        self.shared.issued.load(Ordering::SeqCst)
    }

    /// Lifetime (and `expires_in`) of tokens issued from now on, in seconds.
    pub fn set_expires_in(&self, seconds: u64) {
        self.shared.expires_in.store(seconds, Ordering::SeqCst);
    }

    /// The current token lifetime in seconds.
    pub fn expires_in(&self) -> u64 {
        self.shared.expires_in.load(Ordering::SeqCst)
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept().
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(handle) = self.acceptor.take() {
            let _ = handle.join();
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let shared = Arc::clone(&shared);
        let _ = std::thread::Builder::new()
            .name("token-conn".into())
            .spawn(move || handle_connection(stream, &shared));
    }
}

fn handle_connection(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let response = match read_request(&mut stream) {
        Ok(Some(request)) => shared.answer(&request),
        Ok(None) => return, // closed without a request (e.g. the shutdown wake-up)
        Err(status) => Response::error(status, "malformed request"),
    };
    let _ = stream.write_all(&response.to_bytes());
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Write);
}

/// What the credentials of a request amount to.
enum Caller {
    Anonymous,
    User(String),
    Rejected(Option<String>),
}

impl Shared {
    fn answer(&self, request: &Request) -> Response {
        let (path, query) = request
            .target
            .split_once('?')
            .unwrap_or((request.target.as_str(), ""));
        let params = parse_query(query);
        let service = params
            .iter()
            .find(|(k, _)| k == "service")
            .map(|(_, v)| v.clone());
        let scopes: Vec<String> = params
            .iter()
            .filter(|(k, _)| k == "scope")
            .flat_map(|(_, v)| v.split(' ').map(str::to_string).collect::<Vec<_>>())
            .filter(|s| !s.is_empty())
            .collect();
        let basic = request.authorization.as_deref().and_then(|value| {
            let (scheme, rest) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then(|| rest.trim())
        });
        let caller = match basic {
            None => Caller::Anonymous,
            Some(encoded) => match decode_basic(encoded) {
                None => Caller::Rejected(None),
                Some((user, password)) => {
                    let valid = self
                        .options
                        .users
                        .iter()
                        .any(|(u, p)| *u == user && *p == password);
                    if valid {
                        Caller::User(user)
                    } else {
                        Caller::Rejected(Some(user))
                    }
                }
            },
        };
        let mut record = TokenRequest {
            method: request.method.clone(),
            path_and_query: request.target.clone(),
            service: service.clone(),
            scopes: scopes.clone(),
            basic_auth: basic.is_some(),
            username: match &caller {
                Caller::Anonymous | Caller::Rejected(None) => None,
                Caller::User(u) | Caller::Rejected(Some(u)) => Some(u.clone()),
            },
            authenticated: matches!(caller, Caller::User(_)),
            status: 0,
            granted: Vec::new(),
        };
        let response = if path != "/token" {
            Response::error(404, "not found")
        } else if request.method != "GET" {
            Response::error(405, "only GET /token is supported")
        } else if let Caller::Rejected(_) = caller {
            let mut response = Response::error(401, "invalid username or password");
            response.extra_headers.push((
                "WWW-Authenticate",
                "Basic realm=\"ocipush-testkit token server\"".into(),
            ));
            response
        } else {
            let user = match &caller {
                Caller::User(u) => Some(u.as_str()),
                _ => None,
            };
            let access = self.grant(user, &scopes);
            record.granted = access
                .iter()
                .map(|(t, n, a)| format!("{t}:{n}:{}", a.join(",")))
                .collect();
            let audience = service.unwrap_or_else(|| self.options.service.clone());
            let (token, expires_in, issued_at) = self.issue(user.unwrap_or(""), &audience, &access);
            Response::json(
                200,
                json!({
                    "token": token,
                    "access_token": token,
                    "expires_in": expires_in,
                    "issued_at": rfc3339(issued_at),
                }),
            )
        };
        record.status = response.status;
        self.requests.lock().expect("requests lock").push(record);
        response
    }

    /// `(type, name, actions)` granted for each scope, merged per resource, those without
    /// actions left out.
    fn grant(&self, user: Option<&str>, scopes: &[String]) -> Vec<(String, String, Vec<String>)> {
        let mut granted: Vec<(String, String, Vec<String>)> = Vec::new();
        for scope in scopes {
            let Some((kind, name, actions)) = parse_scope(scope) else {
                continue;
            };
            let allowed: Vec<String> = actions
                .into_iter()
                .filter(|action| match (kind.as_str(), user) {
                    ("repository", Some(_)) => {
                        matches!(action.as_str(), "pull" | "push" | "delete" | "*")
                    }
                    ("repository", None) => self.options.anonymous_pull && action == "pull",
                    (_, Some(_)) => true,
                    (_, None) => false,
                })
                .collect();
            if allowed.is_empty() {
                continue;
            }
            match granted
                .iter_mut()
                .find(|(k, n, _)| *k == kind && *n == name)
            {
                Some((_, _, existing)) => {
                    for action in allowed {
                        if !existing.contains(&action) {
                            existing.push(action);
                        }
                    }
                }
                None => granted.push((kind, name, allowed)),
            }
        }
        granted
    }

    /// A signed token; returns it, its lifetime and its issue time (unix seconds).
    fn issue(
        &self,
        subject: &str,
        audience: &str,
        access: &[(String, String, Vec<String>)],
    ) -> (String, u64, u64) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        let expires_in = self.expires_in.load(Ordering::SeqCst);
        let mut jti = [0u8; 16];
        self.rng.fill(&mut jti).expect("random jti");
        let header = json!({
            "typ": "JWT",
            "alg": "ES256",
            "kid": self.kid,
            "x5c": [self.x5c],
        });
        let claims = json!({
            "iss": self.options.issuer,
            "sub": subject,
            "aud": audience,
            "exp": now + expires_in,
            "nbf": now.saturating_sub(1),
            "iat": now,
            "jti": hex::encode(jti),
            "access": access
                .iter()
                .map(|(t, n, a)| json!({"type": t, "name": n, "actions": a}))
                .collect::<Vec<_>>(),
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .signer
            .sign(&self.rng, signing_input.as_bytes())
            .expect("signing the token");
        self.issued.fetch_add(1, Ordering::SeqCst);
        (
            format!(
                "{signing_input}.{}",
                URL_SAFE_NO_PAD.encode(signature.as_ref())
            ),
            expires_in,
            now,
        )
    }
}

/// `type:name:actions` with the name possibly holding colons (e.g. a port); `None` if
/// malformed.
fn parse_scope(scope: &str) -> Option<(String, String, Vec<String>)> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    if kind.is_empty() || name.is_empty() {
        return None;
    }
    Some((
        kind.to_string(),
        name.to_string(),
        actions
            .split(',')
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect(),
    ))
}

#[cfg(test)]
mod tests;
