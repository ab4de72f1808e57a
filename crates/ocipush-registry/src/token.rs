//! Fetching bearer tokens from a registry's token server (the `realm` of its challenge).
//!
//! - A user name and password go as Basic auth on `GET realm?service=…&scope=…` (the request
//!   every token server supports, and what docker sends).
//! - An identity token (an OAuth2 refresh token, docker's `identitytoken`) goes in an OAuth2
//!   `POST` with `grant_type=refresh_token`. A token server that does not take POSTs (answers
//!   400, 401, 404 or 405, as GCR, Artifactory and ACR have) is asked again with `GET` and the
//!   token as Basic password, and not POSTed to again.
//! - No credentials: an anonymous `GET`.
//!
//! `login` also asks for a refresh token (`offline_token=true`), which docker then keeps instead
//! of the password. A token's `expires_in` (60 s when absent or shorter, as the spec says)
//! decides how long it is reused.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::header::AUTHORIZATION;
use reqwest::StatusCode;

use crate::error::{parse_error_body, RegistryError};
use crate::secret::{Credentials, Secret};

/// The `client_id` we name ourselves with in token requests.
const CLIENT_ID: &str = "ocipush";
/// Shortest lifetime to assume (distribution's token spec).
const MIN_LIFETIME: Duration = Duration::from_secs(60);

/// What to ask the token server for.
pub(crate) struct TokenQuery<'a> {
    pub realm: &'a str,
    pub service: Option<&'a str>,
    pub scopes: &'a [String],
    /// Ask for a refresh token too (`login`).
    pub offline: bool,
}

/// A token the server handed out.
pub(crate) struct Issued {
    pub token: Secret,
    pub lifetime: Duration,
    pub refresh_token: Option<Secret>,
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
    refresh_token: Option<String>,
}

/// Fetches a token for `query`. `post_refused` remembers, per registry, that its token server
/// does not take OAuth2 POSTs.
pub(crate) async fn fetch(
    http: &reqwest::Client,
    registry: &str,
    credentials: Option<&Credentials>,
    query: &TokenQuery<'_>,
    post_refused: &AtomicBool,
) -> Result<Issued, RegistryError> {
    let url = reqwest::Url::parse(query.realm).map_err(|e| RegistryError::Unauthorized {
        registry: registry.to_string(),
        detail: format!("token realm `{}` is not a URL: {e}", query.realm),
    })?;
    if let Some(Credentials::IdentityToken { token, .. }) = credentials {
        if !post_refused.load(Ordering::Relaxed) {
            // The serializer is not `Send`: it must be gone before the first await.
            let body = {
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                form.append_pair("grant_type", "refresh_token")
                    .append_pair("refresh_token", token.expose())
                    .append_pair("client_id", CLIENT_ID);
                if let Some(service) = query.service {
                    form.append_pair("service", service);
                }
                if !query.scopes.is_empty() {
                    form.append_pair("scope", &query.scopes.join(" "));
                }
                if query.offline {
                    form.append_pair("access_type", "offline");
                }
                form.finish()
            };
            let request = http
                .post(url.clone())
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(body);
            let response = send(request, registry).await?;
            match response.status() {
                StatusCode::BAD_REQUEST
                | StatusCode::UNAUTHORIZED
                | StatusCode::NOT_FOUND
                | StatusCode::METHOD_NOT_ALLOWED => {
                    tracing::debug!(
                        registry,
                        status = %response.status(),
                        "token server refused an OAuth2 POST; using GET"
                    );
                    post_refused.store(true, Ordering::Relaxed);
                }
                _ => return read(response, registry, credentials).await,
            }
        }
    }
    let mut url = url;
    {
        let mut pairs = url.query_pairs_mut();
        if let Some(service) = query.service {
            pairs.append_pair("service", service);
        }
        for scope in query.scopes {
            pairs.append_pair("scope", scope);
        }
        if query.offline {
            pairs
                .append_pair("offline_token", "true")
                .append_pair("client_id", CLIENT_ID);
        }
    }
    let mut request = http.get(url);
    if let Some(header) = credentials.and_then(basic_header) {
        request = request.header(AUTHORIZATION, header);
    }
    let response = send(request, registry).await?;
    read(response, registry, credentials).await
}

async fn send(
    request: reqwest::RequestBuilder,
    registry: &str,
) -> Result<reqwest::Response, RegistryError> {
    request.send().await.map_err(|e| RegistryError::Connect {
        registry: format!("the token server of {registry}"),
        detail: crate::error::describe(&e),
        // The realm's own URL says how it is reached; --plain-http does not change it.
        plain_http: true,
    })
}

/// A token answer is a small JSON document (tokens run to a few KiB); a server sending more is not
/// read any further.
const TOKEN_BODY_LIMIT: usize = 1 << 20;
/// Of an error answer, only the start is read: enough for the spec's error document.
const ERROR_BODY_LIMIT: usize = 16 * 1024;

/// The body's first `limit` bytes and whether that was all of it; never reads more than `limit`
/// bytes plus one chunk.
async fn read_at_most(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        body.extend_from_slice(&chunk);
        if body.len() > limit {
            body.truncate(limit);
            return Ok((body, false));
        }
    }
    Ok((body, true))
}

async fn read(
    response: reqwest::Response,
    registry: &str,
    credentials: Option<&Credentials>,
) -> Result<Issued, RegistryError> {
    let unauthorized = |detail: String| RegistryError::Unauthorized {
        registry: registry.to_string(),
        detail,
    };
    let status = response.status();
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return Err(unauthorized(match credentials {
            Some(c) => format!("the token server rejected {}", c.describe()),
            None => "the token server requires credentials".into(),
        }));
    }
    if !status.is_success() {
        let (body, _whole) = read_at_most(response, ERROR_BODY_LIMIT)
            .await
            .unwrap_or_default();
        let (code, message) = parse_error_body(&body);
        let said = match (code, message) {
            (Some(c), Some(m)) => format!(": {c}: {m}"),
            (Some(x), None) | (None, Some(x)) => format!(": {x}"),
            (None, None) => String::new(),
        };
        return Err(unauthorized(format!(
            "the token server answered {status}{said}"
        )));
    }
    let (body, whole) = read_at_most(response, TOKEN_BODY_LIMIT)
        .await
        .map_err(|e| unauthorized(format!("unreadable token response: {}", e.without_url())))?;
    if !whole {
        return Err(unauthorized(format!(
            "the token response is larger than {} KiB",
            TOKEN_BODY_LIMIT / 1024
        )));
    }
    let body: TokenResponse = serde_json::from_slice(&body)
        .map_err(|e| unauthorized(format!("unreadable token response: {e}")))?;
    let token = body
        .token
        .filter(|t| !t.is_empty())
        .or(body.access_token)
        .filter(|t| !t.is_empty())
        .map(Secret::new)
        .ok_or_else(|| unauthorized("the token response holds no token".into()))?;
    Ok(Issued {
        token,
        lifetime: Duration::from_secs(body.expires_in.unwrap_or(0)).max(MIN_LIFETIME),
        refresh_token: body
            .refresh_token
            .filter(|t| !t.is_empty())
            .map(Secret::new),
    })
}

/// Basic auth for a token GET or a `Basic` registry.
pub(crate) fn basic_header(credentials: &Credentials) -> Option<reqwest::header::HeaderValue> {
    use base64::Engine as _;
    let raw = match credentials {
        Credentials::Basic { username, password } => {
            format!("{username}:{}", password.expose())
        }
        Credentials::IdentityToken { username, token } => {
            format!("{}:{}", username.as_deref().unwrap_or(""), token.expose())
        }
        Credentials::RegistryToken(_) => return None,
    };
    let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
    let mut value = reqwest::header::HeaderValue::from_str(&format!("Basic {encoded}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// `Authorization: Bearer …`.
pub(crate) fn bearer_header(token: &Secret) -> Option<reqwest::header::HeaderValue> {
    let mut value =
        reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.expose())).ok()?;
    value.set_sensitive(true);
    Some(value)
}
