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
use sha2::{Digest as _, Sha256};
use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
            kid: libtrust_key_id(&key.public_key_der()),
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

/// The parts of an HTTP request the server looks at.
#[derive(Debug)]
struct Request {
    method: String,
    target: String,
    authorization: Option<String>,
}

/// Reads one request head (and drains a `Content-Length` body). `Ok(None)` when the peer
/// closed before sending anything; `Err(status)` for a malformed one.
fn read_request(stream: &mut TcpStream) -> Result<Option<Request>, u16> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(pos) = find(&buf, b"\r\n\r\n") {
            break pos;
        }
        if buf.len() > MAX_HEAD {
            return Err(431);
        }
        match stream.read(&mut chunk) {
            Ok(0) if buf.is_empty() => return Ok(None),
            Ok(0) => return Err(400),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) if buf.is_empty() => return Ok(None),
            Err(_) => return Err(400),
        }
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| 400u16)?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or("").split(' ');
    let (Some(method), Some(target), Some(_version)) = (
        request_line.next(),
        request_line.next(),
        request_line.next(),
    ) else {
        return Err(400);
    };
    let mut authorization = None;
    let mut content_length = 0usize;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(400);
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("authorization") {
            authorization = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("content-length") {
            content_length = value.parse().map_err(|_| 400u16)?;
        }
    }
    let mut body_left = content_length.saturating_sub(buf.len() - head_end - 4);
    while body_left > 0 {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => body_left = body_left.saturating_sub(n),
        }
    }
    Ok(Some(Request {
        method: method.to_string(),
        target: target.to_string(),
        authorization,
    }))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

struct Response {
    status: u16,
    extra_headers: Vec<(&'static str, String)>,
    body: String,
}

impl Response {
    fn json(status: u16, body: serde_json::Value) -> Self {
        Self {
            status,
            extra_headers: Vec::new(),
            body: body.to_string(),
        }
    }

    fn error(status: u16, message: &str) -> Self {
        let code = match status {
            401 => "UNAUTHORIZED",
            404 => "NOT_FOUND",
            405 => "UNSUPPORTED",
            _ => "INVALID_REQUEST",
        };
        Self::json(
            status,
            json!({"errors": [{"code": code, "message": message}]}),
        )
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Cache-Control: no-store\r\nConnection: close\r\n",
            self.status,
            reason(self.status),
            self.body.len()
        );
        for (name, value) in &self.extra_headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str("\r\n");
        out.push_str(&self.body);
        out.into_bytes()
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    }
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

/// `application/x-www-form-urlencoded` query pairs, decoded.
fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `user:password` from the base64 part of a Basic header.
fn decode_basic(encoded: &str) -> Option<(String, String)> {
    let raw = STANDARD.decode(encoded).ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (user, password) = raw.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// libtrust's key ID: the first 240 bits of SHA-256 over the SPKI DER, base32, in 12 groups
/// of 4 joined by `:`.
fn libtrust_key_id(spki_der: &[u8]) -> String {
    let digest = Sha256::digest(spki_der);
    let encoded = base32(&digest[..30]);
    encoded
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).expect("ASCII"))
        .collect::<Vec<_>>()
        .join(":")
}

/// RFC 4648 base32 without padding.
fn base32(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let mut buffer = 0u64;
    let mut bits = 0;
    for &byte in data {
        buffer = (buffer << 8) | u64::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// `YYYY-MM-DDTHH:MM:SSZ` for unix seconds.
fn rfc3339(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Splits a JWT and decodes its header and claims, without verifying anything.
pub fn decode_jwt(token: &str) -> Option<(serde_json::Value, Claims)> {
    let mut parts = token.split('.');
    let (header, claims, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    let claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).ok()?).ok()?;
    Some((header, claims))
}

/// The claims of a JWT, without verification.
pub fn decode_claims(token: &str) -> Option<Claims> {
    decode_jwt(token).map(|(_, claims)| claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{KeyPair as _, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};

    fn server() -> TokenServer {
        TokenServer::start(TokenServerOptions {
            users: vec![("alice".into(), "secret".into())],
            issuer: "test-issuer".into(),
            service: "test-service".into(),
            ..Default::default()
        })
    }

    /// A raw HTTP/1.0 GET; returns (status, body).
    fn get(server: &TokenServer, target: &str, basic: Option<(&str, &str)>) -> (u16, String) {
        let mut stream = TcpStream::connect(server.addr()).unwrap();
        let mut request = format!("GET {target} HTTP/1.1\r\nHost: {}\r\n", server.addr());
        if let Some((u, p)) = basic {
            request.push_str(&format!(
                "Authorization: Basic {}\r\n",
                STANDARD.encode(format!("{u}:{p}"))
            ));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response[9..12].parse().unwrap();
        let body = response.split_once("\r\n\r\n").unwrap().1.to_string();
        (status, body)
    }

    const PUSH_SCOPE: &str =
        "/token?service=test-service&scope=repository%3Ateam%2Fapp%3Apull%2Cpush";

    #[test]
    fn authenticated_user_gets_a_verifiable_push_token() {
        let server = server();
        let (status, body) = get(&server, PUSH_SCOPE, Some(("alice", "secret")));
        assert_eq!(status, 200, "{body}");
        let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
        let token = doc["token"].as_str().unwrap();
        assert_eq!(doc["access_token"].as_str(), Some(token));
        assert_eq!(doc["expires_in"], DEFAULT_EXPIRES_IN);
        assert!(doc["issued_at"].as_str().unwrap().ends_with('Z'));

        let (header, claims) = decode_jwt(token).unwrap();
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"], server.key_id());
        let cert_der = STANDARD.decode(header["x5c"][0].as_str().unwrap()).unwrap();
        let pem_der = {
            let body: String = server
                .cert_pem()
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect();
            STANDARD.decode(body).unwrap()
        };
        assert_eq!(cert_der, pem_der);
        assert_eq!(claims["iss"], "test-issuer");
        assert_eq!(claims["aud"], "test-service");
        assert_eq!(claims["sub"], "alice");
        assert_eq!(
            claims["access"],
            json!([{"type": "repository", "name": "team/app", "actions": ["pull", "push"]}])
        );
        assert_eq!(
            claims["exp"].as_u64().unwrap(),
            claims["iat"].as_u64().unwrap() + DEFAULT_EXPIRES_IN
        );

        // The signature is raw r||s over `header.claims`, by the certified key.
        let (input, sig) = token.rsplit_once('.').unwrap();
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        assert_eq!(sig.len(), 64);
        let public = server.shared.signer.public_key();
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public.as_ref())
            .verify(input.as_bytes(), &sig)
            .unwrap();

        let requests = server.requests();
        assert_eq!(requests.len(), 1);
        let r = &requests[0];
        assert!(r.asked_for("repository:team/app:pull,push"));
        assert!(r.basic_auth && r.authenticated);
        assert_eq!(r.username.as_deref(), Some("alice"));
        assert_eq!(r.granted, ["repository:team/app:pull,push"]);
        assert_eq!(server.tokens_issued(), 1);
        assert!(!format!("{r:?}").contains("secret"));
    }

    #[test]
    fn wrong_credentials_are_refused_and_anonymous_gets_pull_only() {
        let server = server();
        let (status, _) = get(&server, PUSH_SCOPE, Some(("alice", "nope")));
        assert_eq!(status, 401);
        let (status, _) = get(&server, PUSH_SCOPE, Some(("mallory", "secret")));
        assert_eq!(status, 401);
        assert_eq!(server.tokens_issued(), 0);

        let (status, body) = get(&server, PUSH_SCOPE, None);
        assert_eq!(status, 200);
        let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
        let claims = decode_claims(doc["token"].as_str().unwrap()).unwrap();
        assert_eq!(claims["sub"], "");
        assert_eq!(claims["access"][0]["actions"], json!(["pull"]));

        let requests = server.requests();
        assert_eq!(
            requests
                .iter()
                .map(|r| (r.status, r.username.clone(), r.authenticated))
                .collect::<Vec<_>>(),
            [
                (401, Some("alice".to_string()), false),
                (401, Some("mallory".to_string()), false),
                (200, None, false),
            ]
        );
        assert_eq!(server.tokens_issued(), 1);
    }

    #[test]
    fn several_scopes_short_expiry_and_other_paths() {
        let server = server();
        server.set_expires_in(2);
        let (status, body) = get(
            &server,
            "/token?scope=repository%3Aa%3Apull&scope=repository:b:pull,push&scope=repository:a:push",
            Some(("alice", "secret")),
        );
        assert_eq!(status, 200);
        let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(doc["expires_in"], 2);
        let claims = decode_claims(doc["token"].as_str().unwrap()).unwrap();
        assert_eq!(claims["aud"], "test-service", "default service");
        assert_eq!(
            claims["access"],
            json!([
                {"type": "repository", "name": "a", "actions": ["pull", "push"]},
                {"type": "repository", "name": "b", "actions": ["pull", "push"]},
            ])
        );
        assert_eq!(get(&server, "/other", None).0, 404);
        assert_eq!(server.requests().len(), 2);
        server.clear_requests();
        assert!(server.requests().is_empty());
        assert_eq!(server.tokens_issued(), 1);
    }

    #[test]
    fn stops_on_drop() {
        let server = server();
        let addr = server.addr();
        drop(server);
        assert!(TcpStream::connect(addr).is_err());
    }

    #[test]
    fn helpers() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(percent_decode("a%3Ab+c%2x"), "a:b c%2x");
        assert_eq!(
            parse_scope("repository:localhost:5000/x:pull,push"),
            Some((
                "repository".into(),
                "localhost:5000/x".into(),
                vec!["pull".into(), "push".into()]
            ))
        );
        assert_eq!(parse_scope("nonsense"), None);
        let id = libtrust_key_id(b"x");
        assert_eq!(id.len(), 48 + 11);
        assert_eq!(id.split(':').count(), 12);
    }
}
