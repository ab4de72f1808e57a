//! A connection to one registry: which scheme and host it answers on, its authentication state,
//! and the request loop that adds credentials, answers challenges and retries transient failures.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use reqwest::header::AUTHORIZATION;
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};

use crate::auth::Auth;
use crate::error::{describe, is_transient_status, parse_error_body, RegistryError};
use crate::reference::{DOCKER_HUB, DOCKER_HUB_API};
use crate::repository::Access;
use crate::retry::RetryPolicy;
use crate::secret::{Credentials, Secret};
use crate::single_post::SinglePost;
use crate::tls::{build_http_client, TlsOptions};

/// At most this many repositories are asked for in one token request by
/// [`RegistryClient::authorize_ahead`]: the token lists what it grants, and travels in a header
/// of every request; 16 entries keep a JWT around 2 KiB, far from the 8 KiB header line that
/// nginx's defaults refuse.
const SCOPES_PER_TOKEN: usize = 16;

/// Everything that decides how ocipush talks to a registry, resolved before the client exists.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Trusted CAs, client certificates, or `--insecure`.
    pub tls: TlsOptions,
    /// Use `http://` (`--plain-http`). Loopback registries fall back to it on their own.
    pub plain_http: bool,
    /// What to authenticate with when the registry asks; `None` for anonymous access.
    pub credentials: Option<Credentials>,
    /// When and how often transient failures are retried.
    pub retry: RetryPolicy,
    /// The `User-Agent` of every request, `ocipush/VERSION` by default.
    pub user_agent: String,
    /// Upload blobs in PATCH chunks of at most this many bytes (`--chunk-size`); `None` sends
    /// each blob in one streamed PATCH until a proxy refuses that (413).
    pub chunk_size: Option<u64>,
    /// Connections to open while the first `GET /v2/` is answered, that one included: as many
    /// as the caller will send requests at once, so that its first burst of requests does not
    /// wait for a TCP (and TLS) set-up each. 1 opens only the ping's.
    pub connections: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            tls: TlsOptions::default(),
            plain_http: false,
            credentials: None,
            retry: RetryPolicy::default(),
            user_agent: concat!("ocipush/", env!("CARGO_PKG_VERSION")).to_string(),
            chunk_size: None,
            connections: 1,
        }
    }
}

/// What [`RegistryClient::verify_login`] found out.
#[derive(Debug)]
pub struct LoginCheck {
    /// The registry asked for no credentials at all.
    pub open: bool,
    /// A refresh token the token server handed out, to keep instead of the password.
    pub identity_token: Option<Secret>,
}

/// A live connection to one registry.
///
/// Credentials go only to the registry's own host and port: `Authorization` is never sent to
/// another host, such as the storage service a registry points blob traffic to. `Debug` shows
/// the registry and its address, never credentials or tokens.
pub struct RegistryClient {
    pub(crate) http: reqwest::Client,
    registry: String,
    base: Url,
    pub(crate) auth: Auth,
    retry: RetryPolicy,
    /// Chunk size of uploads, 0 for one streamed PATCH; shrinks when a proxy answers 413, for
    /// every later upload to this registry.
    chunk_size: AtomicU64,
    /// The registry runs on this machine (see [`RegistryClient::runs_on_this_machine`]).
    on_this_machine: bool,
    /// Whether the registry stores a blob sent whole with the POST of its upload.
    pub(crate) single_post: SinglePost,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("registry", &self.registry)
            .field("base", &self.base.as_str())
            .finish()
    }
}

impl RegistryClient {
    /// Connects to a registry: builds the client, then `GET /v2/` to learn the scheme that
    /// answers and the authentication it wants.
    pub async fn connect(
        registry: &str,
        options: &ClientOptions,
    ) -> Result<Arc<RegistryClient>, RegistryError> {
        let host = if registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            registry
        };
        let http = build_http_client(
            &options.tls,
            registry,
            is_loopback(host),
            &options.user_agent,
        )?;
        let schemes: &[&str] = if options.plain_http {
            &["http"]
        } else if is_loopback(host) {
            // As docker does for localhost: TLS first, plain HTTP if nothing speaks TLS there.
            &["https", "http"]
        } else {
            &["https"]
        };
        let mut failure = None;
        for (i, scheme) in schemes.iter().enumerate() {
            // Probing a scheme that has a fallback gets one try: a TLS handshake with a plain
            // HTTP server fails the same way every time.
            let probing = i + 1 < schemes.len();
            let base = Url::parse(&format!("{scheme}://{host}/")).map_err(|e| {
                RegistryError::Settings(format!("bad registry address `{registry}`: {e}"))
            })?;
            let client = RegistryClient {
                http: http.clone(),
                registry: registry.to_string(),
                base,
                auth: Auth::new(registry, options.credentials.clone()),
                retry: options.retry.clone(),
                chunk_size: AtomicU64::new(options.chunk_size.unwrap_or(0)),
                on_this_machine: false,
                single_post: SinglePost::default(),
            };
            // The scheme is settled once no other is left to try: open the other connections
            // alongside the ping.
            let spare = if probing {
                0
            } else {
                options.connections.saturating_sub(1)
            };
            let (pinged, ()) = tokio::join!(client.ping(probing), client.open_connections(spare));
            match pinged {
                Ok(from_loopback) => {
                    // A loopback name never goes through a proxy; any other name might, and
                    // a proxy on this machine answers from loopback for a registry anywhere.
                    let on_this_machine = from_loopback
                        && (is_loopback(host) || resolves_to_loopback(&client.base).await);
                    return Ok(Arc::new(RegistryClient {
                        on_this_machine,
                        ..client
                    }));
                }
                // A TLS failure says the most (something speaks TLS there); else the last
                // scheme's failure, so a hint does not suggest the plain HTTP just tried.
                Err(e @ (RegistryError::Tls { .. } | RegistryError::Connect { .. })) => {
                    if !matches!(failure, Some(RegistryError::Tls { .. })) {
                        failure = Some(e);
                    }
                }
                // Something answered: what it said, unless a TLS failure said more.
                Err(e) => {
                    if options.plain_http
                        && matches!(e, RegistryError::NotARegistry { .. })
                        && client.speaks_tls().await
                    {
                        return Err(RegistryError::PlainHttpToTls {
                            registry: registry.to_string(),
                        });
                    }
                    return Err(match failure {
                        Some(tls @ RegistryError::Tls { .. }) => tls,
                        _ => e,
                    });
                }
            }
        }
        Err(failure.expect("at least one scheme was tried"))
    }

    /// Whether the registry's port speaks TLS: a `GET /v2/` over HTTPS there got an answer, or
    /// failed in the TLS handshake on the certificate (which only a TLS server presents).
    async fn speaks_tls(&self) -> bool {
        let mut url = self.url("/v2/");
        if url.set_scheme("https").is_err() {
            return false;
        }
        match self.http.get(url).send().await {
            Ok(_) => true,
            Err(e) => matches!(
                rustls_error(&e),
                Some(
                    rustls::Error::InvalidCertificate(_)
                        | rustls::Error::AlertReceived(_)
                        | rustls::Error::NoCertificatesPresented
                )
            ),
        }
    }

    /// Opens `count` more connections to the registry with a `HEAD /v2/` each (the version
    /// check without a body, so each connection goes straight back to the pool), all at once.
    /// Failures are of no consequence: a later request opens its own.
    async fn open_connections(&self, count: usize) {
        let url = self.url("/v2/");
        let opened = (0..count).map(|_| async {
            if let Err(e) = self.http.head(url.clone()).send().await {
                tracing::debug!(error = %e, "opening a spare connection failed");
            }
        });
        futures_util::future::join_all(opened).await;
    }

    /// `GET /v2/`: whether the registry answers, and its challenge. `Ok(true)` when the answer
    /// came over a connection to a loopback address.
    async fn ping(&self, probing: bool) -> Result<bool, RegistryError> {
        let url = self.url("/v2/");
        let started = std::time::Instant::now();
        let response = if probing {
            self.http
                .get(url.clone())
                .send()
                .await
                .map_err(|e| self.transfer_error("GET /v2/", &e))?
        } else {
            self.send_with_retry("GET /v2/", || self.http.get(url.clone()))
                .await?
        };
        log_response(&Method::GET, &url, response.status(), started);
        let from_loopback = response
            .remote_addr()
            .is_some_and(|a| a.ip().to_canonical().is_loopback());
        match response.status() {
            s if s.is_success() => Ok(from_loopback),
            StatusCode::UNAUTHORIZED => {
                self.auth.learn(response.headers(), None);
                Ok(from_loopback)
            }
            status => Err(RegistryError::NotARegistry {
                registry: self.registry.clone(),
                status,
            }),
        }
    }

    /// Checks the credentials as `docker login` does: answers the challenge `/v2/` gave (for a
    /// token server, fetching a token with no repository scope, asking for a refresh token)
    /// and expects `GET /v2/` to succeed with it.
    pub async fn verify_login(&self) -> Result<LoginCheck, RegistryError> {
        if self.auth.challenge().is_none() {
            return Ok(LoginCheck {
                open: true,
                identity_token: None,
            });
        }
        if self.auth.credentials().is_none() {
            return Err(self.auth.refused());
        }
        let (header, identity_token) = self.auth.login_header(&self.http).await?;
        let url = self.url("/v2/");
        let response = self
            .send_with_retry("GET /v2/", || {
                let request = self.http.get(url.clone());
                match &header {
                    Some(value) => request.header(AUTHORIZATION, value.clone()),
                    None => request,
                }
            })
            .await?;
        match response.status() {
            s if s.is_success() => Ok(LoginCheck {
                open: false,
                identity_token,
            }),
            StatusCode::UNAUTHORIZED => Err(self.auth.refused()),
            status => Err(RegistryError::NotARegistry {
                registry: self.registry.clone(),
                status,
            }),
        }
    }

    /// Asks the registry's token server, where it has one, for a token covering all of
    /// `repositories` at once, ahead of the requests that need it: a run pushing into many
    /// repositories then fetches one token, not one per repository. Best effort — where the
    /// token server refuses, or grants less than asked, each request gets its own token as
    /// without this call. Asks for at most 16 repositories per token, so the token stays of a
    /// size every proxy takes in a header.
    pub async fn authorize_ahead<'a>(
        &self,
        repositories: impl IntoIterator<Item = (&'a str, Access)>,
    ) {
        let mut scopes: Vec<String> = repositories
            .into_iter()
            .map(|(name, access)| access.scope(name))
            .collect();
        scopes.sort();
        scopes.dedup();
        let asks = scopes
            .chunks(SCOPES_PER_TOKEN)
            .map(|chunk| self.auth.authorize_ahead(&self.http, chunk.join(" ")));
        futures_util::future::join_all(asks).await;
    }

    /// The registry as the user named it (`docker.io`, `localhost:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// Where the registry answered: `https://host:port/` or `http://…`.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// Whether the registry runs on this machine, its work on the same cores as ocipush's:
    /// it answered over a connection to a loopback address, and its name is a loopback one
    /// (`localhost:5000`) or resolves to loopback addresses only (`gitea.cnoe.localtest.me`),
    /// so that a proxy on this machine in front of a registry elsewhere does not count.
    pub fn runs_on_this_machine(&self) -> bool {
        self.on_this_machine
    }

    /// How this client retries transient failures.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// The chunk size uploads use: `--chunk-size`, or what a 413 taught; `None` streams each
    /// blob in one PATCH.
    pub fn chunk_size(&self) -> Option<u64> {
        Some(self.chunk_size.load(Ordering::Relaxed)).filter(|n| *n > 0)
    }

    /// Lowers the chunk size to `size` (never raises it); from streaming, switches to chunks.
    pub fn limit_chunk_size(&self, size: u64) {
        let size = size.max(1);
        let _ = self
            .chunk_size
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |current| {
                (current == 0 || current > size).then_some(size)
            });
    }

    pub(crate) fn url(&self, path: &str) -> Url {
        self.base
            .join(path.trim_start_matches('/'))
            .expect("registry paths are valid URL paths")
    }

    /// Resolves a `Location` header against the registry's address.
    pub(crate) fn resolve_location(
        &self,
        action: &str,
        response: &Response,
    ) -> Result<Url, RegistryError> {
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| self.protocol(action, "response has no Location header"))?;
        self.base
            .join(location)
            .map_err(|e| self.protocol(action, &format!("bad Location `{location}`: {e}")))
    }

    pub(crate) fn protocol(&self, action: &str, detail: &str) -> RegistryError {
        RegistryError::Protocol {
            registry: self.registry.clone(),
            action: action.to_string(),
            detail: detail.to_string(),
        }
    }

    /// Sends a request that can be rebuilt, answering auth challenges and retrying transient
    /// failures. Any status other than 401 and transient ones is returned for the caller to judge.
    pub(crate) async fn send(
        &self,
        action: &str,
        scope: Option<&str>,
        method: Method,
        url: &Url,
        decorate: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let mut answered_challenge = false;
        let mut dropped_covering = false;
        loop {
            let started = std::time::Instant::now();
            let auth = self.auth_for(url, scope).await?;
            let response = self
                .send_with_retry(action, || {
                    let request = decorate(self.http.request(method.clone(), url.clone()));
                    match &auth {
                        Some(value) => request.header(AUTHORIZATION, value.clone()),
                        None => request,
                    }
                })
                .await?;
            log_response(&method, url, response.status(), started);
            if response.status() == StatusCode::FORBIDDEN
                && !dropped_covering
                && self.auth.drop_covering(scope)
            {
                dropped_covering = true;
                continue;
            }
            if response.status() != StatusCode::UNAUTHORIZED {
                return Ok(response);
            }
            if answered_challenge || !self.auth.learn(response.headers(), scope) {
                return Err(self.auth.refused());
            }
            answered_challenge = true;
        }
    }

    /// Sends a request once: its body is a stream that cannot be replayed. Callers make a cheap
    /// authenticated request first (starting the upload), so the token is cached by now.
    pub(crate) async fn send_once(
        &self,
        action: &str,
        scope: Option<&str>,
        method: Method,
        url: &Url,
        decorate: impl FnOnce(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let started = std::time::Instant::now();
        let auth = self.auth_for(url, scope).await?;
        let mut request = decorate(self.http.request(method.clone(), url.clone()));
        if let Some(value) = auth {
            request = request.header(AUTHORIZATION, value);
        }
        let response = request
            .send()
            .await
            .map_err(|e| self.transfer_error(action, &e))?;
        log_response(&method, url, response.status(), started);
        if response.status() == StatusCode::UNAUTHORIZED {
            self.auth.learn(response.headers(), scope);
            return Err(self.auth.refused());
        }
        Ok(response)
    }

    /// The `Authorization` header for `url`: none for other hosts, since registries redirect or
    /// point blob traffic to storage services that must never see the registry's credentials.
    async fn auth_for(
        &self,
        url: &Url,
        scope: Option<&str>,
    ) -> Result<Option<reqwest::header::HeaderValue>, RegistryError> {
        let same_origin = url.host_str() == self.base.host_str()
            && url.port_or_known_default() == self.base.port_or_known_default();
        if !same_origin {
            return Ok(None);
        }
        self.auth.header(&self.http, scope).await
    }

    async fn send_with_retry(
        &self,
        action: &str,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let mut attempt = 0u32;
        loop {
            let result = build().send().await;
            let (retry_after, reason) = match &result {
                Ok(r) if is_transient_status(r.status()) => (
                    crate::retry::retry_after(r.headers()),
                    r.status().to_string(),
                ),
                Ok(_) => return Ok(result.expect("matched Ok")),
                Err(e) => {
                    if e.is_connect() && tls_failure(e) == Some(TlsFailure::Permanent) {
                        return Err(self.transfer_error(action, e));
                    }
                    (None, describe(e))
                }
            };
            if attempt >= self.retry.retries {
                return match result {
                    Ok(r) => Err(self.status_error(action, r).await),
                    Err(e) => Err(self.transfer_error(action, &e)),
                };
            }
            attempt += 1;
            crate::retry_count::note_retry();
            let delay = self.retry.delay(attempt, retry_after);
            // Said, not just counted: a registry that keeps failing should not look like a hang.
            tracing::warn!(
                "{action} to {}: {reason}; retry {attempt} of {} in {:.1}s",
                self.registry,
                self.retry.retries,
                delay.as_secs_f64()
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// Turns an unexpected response into an error carrying the registry's own code and message.
    pub(crate) async fn status_error(&self, action: &str, response: Response) -> RegistryError {
        let status = response.status();
        let body = read_limited(response, 16 * 1024).await;
        let (code, message) = parse_error_body(&body);
        if status == StatusCode::FORBIDDEN {
            return RegistryError::Denied {
                registry: self.registry.clone(),
                repository: action.to_string(),
                detail: message.unwrap_or_else(|| "403 Forbidden".into()),
            };
        }
        RegistryError::Status {
            registry: self.registry.clone(),
            action: action.to_string(),
            status,
            code,
            message,
        }
    }

    pub(crate) fn transfer_error(&self, action: &str, e: &reqwest::Error) -> RegistryError {
        let detail = describe(e);
        if e.is_connect() {
            if tls_failure(e).is_some() {
                RegistryError::Tls {
                    registry: self.registry.clone(),
                    detail,
                }
            } else {
                RegistryError::Connect {
                    registry: self.registry.clone(),
                    detail,
                    plain_http: self.base.scheme() == "http",
                }
            }
        } else {
            RegistryError::Transfer {
                registry: self.registry.clone(),
                action: action.to_string(),
                detail,
            }
        }
    }
}

/// One line per answered request at `-v`: method, host and path (never the query, which can
/// carry a storage service's signature), status and time to the response head (for a body
/// streamed up, that includes sending it).
fn log_response(method: &Method, url: &Url, status: StatusCode, started: std::time::Instant) {
    // From the host on (after any userinfo) to the end of the path.
    let place = &url[url::Position::BeforeHost..url::Position::AfterPath];
    tracing::debug!(
        "{method} {place} -> {} in {} ms",
        status.as_u16(),
        started.elapsed().as_millis()
    );
}

async fn read_limited(response: Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    let mut response = response;
    while let Ok(Some(chunk)) = response.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() >= limit {
            body.truncate(limit);
            break;
        }
    }
    body
}

/// How a connection failed in its TLS handshake, read off the types in its causes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsFailure {
    /// Trying again cannot change it: rustls refused the certificate, or what answers does
    /// not speak TLS (or not a TLS rustls accepts).
    Permanent,
    /// The peer hung up during the handshake: it may be restarting.
    HungUp,
}

/// A request error's causes, outermost first. An io::Error's `source` skips the error it
/// wraps, so the walk steps into that instead.
fn causes(e: &reqwest::Error) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
    std::iter::successors(std::error::Error::source(e), |cause| {
        match cause.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => cause.source(),
        }
    })
}

/// The rustls error somewhere in a request error's causes.
fn rustls_error(e: &reqwest::Error) -> Option<&rustls::Error> {
    causes(e).find_map(|cause| cause.downcast_ref::<rustls::Error>())
}

/// The TLS failure among a transport error's causes, if any.
fn tls_failure(e: &reqwest::Error) -> Option<TlsFailure> {
    if let Some(tls) = rustls_error(e) {
        return Some(tls_failure_of(tls));
    }
    // A TCP connect cannot end early: an end of stream while connecting is the peer closing
    // in the middle of the handshake.
    let hung_up = causes(e).any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::UnexpectedEof)
    });
    hung_up.then_some(TlsFailure::HungUp)
}

fn tls_failure_of(error: &rustls::Error) -> TlsFailure {
    match error {
        rustls::Error::InvalidCertificate(_)
        | rustls::Error::InvalidMessage(_)
        | rustls::Error::NoCertificatesPresented
        | rustls::Error::PeerIncompatible(_)
        | rustls::Error::PeerMisbehaved(_)
        | rustls::Error::AlertReceived(_)
        | rustls::Error::InappropriateMessage { .. }
        | rustls::Error::InappropriateHandshakeMessage { .. } => TlsFailure::Permanent,
        _ => TlsFailure::HungUp,
    }
}

/// Whether the registry's host name resolves here to loopback addresses only
/// (`gitea.cnoe.localtest.me`: 127.0.0.1).
async fn resolves_to_loopback(base: &Url) -> bool {
    let (Some(host), Some(port)) = (base.host_str(), base.port_or_known_default()) else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match tokio::net::lookup_host((host, port)).await {
        Ok(addresses) => {
            let addresses: Vec<_> = addresses.collect();
            !addresses.is_empty()
                && addresses
                    .iter()
                    .all(|a| a.ip().to_canonical().is_loopback())
        }
        Err(_) => false,
    }
}

fn is_loopback(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_refusals_are_permanent_and_hang_ups_are_not() {
        use rustls::{CertificateError, InvalidMessage};
        for permanent in [
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
            rustls::Error::InvalidMessage(InvalidMessage::InvalidContentType),
            rustls::Error::NoCertificatesPresented,
        ] {
            assert_eq!(
                tls_failure_of(&permanent),
                TlsFailure::Permanent,
                "{permanent}"
            );
        }
        assert_eq!(
            tls_failure_of(&rustls::Error::General("eof".into())),
            TlsFailure::HungUp
        );
    }

    /// Against real sockets: a plain HTTP port answering a TLS client is a permanent TLS
    /// failure, found by type; a refused connection and a reset are no TLS failure at all.
    #[tokio::test]
    async fn tls_failures_are_told_by_their_types() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let plain = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = socket.read(&mut buf).await;
                let _ = socket
                    .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                    .await;
            }
        });
        let client =
            crate::tls::build_http_client(&Default::default(), "127.0.0.1", true, "t").unwrap();
        let error = client
            .get(format!("https://{plain}/v2/"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            tls_failure(&error),
            Some(TlsFailure::Permanent),
            "{error:?}"
        );

        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let refused = closed.local_addr().unwrap();
        drop(closed);
        let error = client
            .get(format!("https://{refused}/v2/"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(tls_failure(&error), None, "{error:?}");
    }

    #[test]
    fn loopback_detection() {
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("[::1]:5000"));
        assert!(is_loopback("registry.localhost"));
        assert!(!is_loopback("gitea.cnoe.localtest.me:8443"));
        assert!(!is_loopback("10.0.0.1:5000"));
    }
}
