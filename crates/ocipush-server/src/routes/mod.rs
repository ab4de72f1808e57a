//! HTTP layer: one fallback handler parses the path (repository names contain slashes, which axum's route
//! patterns cannot express), checks the method, and hands over to the endpoint modules. Two middlewares
//! wrap it: basic auth (when configured) and the access log, which also stamps every answer with the
//! `Docker-Distribution-API-Version` header clients look for.

mod blobs;
mod manifests;
mod path;
mod tags;
mod uploads;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Query, Request, State};
use axum::http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::api_error::{ApiError, ApiResult, ErrorCode};
use crate::auth::{require_auth, Htpasswd};
use crate::names::{Digest, DigestError};
use crate::store::Store;
use path::Route;

/// What every handler gets.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    /// Whether `DELETE` is answered (`ServerConfig::allow_delete`).
    pub allow_delete: bool,
    /// How long an upload body may go without a byte (`ConnectionLimits::stall_timeout`).
    pub stall_timeout: Duration,
}

pub fn router(state: AppState, htpasswd: Option<Arc<Htpasswd>>) -> Router {
    Router::new()
        .fallback(dispatch)
        .with_state(state)
        .layer(middleware::from_fn_with_state(htpasswd, require_auth))
        .layer(middleware::from_fn(access_log))
}

async fn dispatch(State(state): State<AppState>, request: Request) -> Response {
    let result = match path::parse(request.uri().path()) {
        Ok(route) => route_request(&state, route, request).await,
        Err(err) => Err(err),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn route_request(state: &AppState, route: Route, request: Request) -> ApiResult {
    let method = request.method().clone();
    let is = |m: &Method| method == *m;
    let head = is(&Method::HEAD);
    match route {
        Route::Base if is(&Method::GET) || head => Ok(base()),
        Route::Catalog if is(&Method::GET) => tags::catalog(state, request.uri()).await,
        Route::Tags { name } if is(&Method::GET) => tags::list(state, &name, request.uri()).await,
        Route::Manifest { name, reference } if is(&Method::GET) || head => {
            manifests::get(state, &name, &reference, head).await
        }
        Route::Manifest { name, reference } if is(&Method::PUT) => {
            manifests::put(state, &name, &reference, request).await
        }
        Route::Manifest { .. } | Route::Blob { .. }
            if is(&Method::DELETE) && !state.allow_delete =>
        {
            Err(deletes_disabled())
        }
        Route::Manifest { name, reference } if is(&Method::DELETE) => {
            manifests::delete(state, &name, &reference).await
        }
        Route::Referrers { name, digest } if is(&Method::GET) => {
            manifests::referrers(state, &name, &digest, request.uri()).await
        }
        Route::Blob { name, digest } if is(&Method::GET) || head => {
            blobs::get(state, &name, &digest, request.headers(), head).await
        }
        Route::Blob { name, digest } if is(&Method::DELETE) => {
            blobs::delete(state, &name, &digest).await
        }
        Route::UploadStart { name } if is(&Method::POST) => {
            uploads::start(state, &name, request).await
        }
        Route::Upload { name, uuid } if is(&Method::PATCH) => {
            uploads::patch(state, &name, &uuid, request).await
        }
        Route::Upload { name, uuid } if is(&Method::PUT) => {
            uploads::put(state, &name, &uuid, request).await
        }
        Route::Upload { name, uuid } if is(&Method::GET) => {
            uploads::status(state, &name, &uuid).await
        }
        Route::Upload { name, uuid } if is(&Method::DELETE) => {
            uploads::cancel(state, &name, &uuid).await
        }
        _ => Err(ApiError::new(
            ErrorCode::Unsupported,
            format!("{method} is not supported on this endpoint"),
        )),
    }
}

/// What a `DELETE` of a manifest, tag or blob gets unless the registry allows deletes: the spec's answer
/// for a registry that does not support them.
fn deletes_disabled() -> ApiError {
    ApiError::new(
        ErrorCode::Unsupported,
        "deleting is disabled on this registry (ocipush serve --delete enables it)",
    )
}

/// `GET /v2/`: the version check every client starts with (and where it discovers auth).
fn base() -> Response {
    (
        StatusCode::OK,
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        "{}",
    )
        .into_response()
}

async fn access_log(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = Instant::now();
    let mut response = next.run(request).await;
    response.headers_mut().insert(
        HeaderName::from_static("docker-distribution-api-version"),
        HeaderValue::from_static("registry/2.0"),
    );
    tracing::debug!(
        %method,
        path,
        status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "request"
    );
    response
}

/// Parses a digest from the URL or query, answering DIGEST_INVALID for anything this store can't address.
fn parse_digest(raw: &str) -> Result<Digest, ApiError> {
    Digest::parse(raw).map_err(|err| {
        let message = match err {
            DigestError::Malformed => format!("invalid digest {raw:?}"),
            DigestError::UnsupportedAlgorithm => {
                format!("unsupported digest algorithm in {raw:?}: only sha256 is supported")
            }
        };
        ApiError::new(ErrorCode::DigestInvalid, message)
    })
}

/// Query parameters in order, repeated keys kept (`?tag=a&tag=b`). A malformed query reads as empty.
fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map(|q| q.0)
        .unwrap_or_default()
}

fn query_value<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// A header value from text we built ourselves (validated names, digests, numbers), which is always
/// visible ASCII; the fallback only guards against a bug turning into a panic.
fn header_value(text: String) -> HeaderValue {
    HeaderValue::try_from(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn docker_content_digest() -> HeaderName {
    HeaderName::from_static("docker-content-digest")
}
