//! `GET /v2/<name>/tags/list` and `GET /v2/_catalog`, both with the spec's `n`/`last` pagination and a
//! `Link: <...>; rel="next"` header when more entries remain.

use axum::http::header::{HeaderValue, CONTENT_TYPE, LINK};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{header_value, query_pairs, query_value, AppState};
use crate::api_error::{ApiError, ApiResult, ErrorCode};

pub async fn list(state: &AppState, name: &str, uri: &Uri) -> ApiResult {
    let tags = state
        .store
        .list_tags(name)
        .await
        .map_err(|e| ApiError::internal("listing tags", e))?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::NameUnknown,
                "repository name not known to registry",
            )
            .with_detail(json!({ "name": name }))
        })?;
    let page = Page::of(tags, uri);
    let body = json!({ "name": name, "tags": page.items });
    Ok(page.respond(&format!("/v2/{name}/tags/list"), body))
}

pub async fn catalog(state: &AppState, uri: &Uri) -> ApiResult {
    let repositories = state
        .store
        .list_repositories()
        .await
        .map_err(|e| ApiError::internal("listing repositories", e))?;
    let page = Page::of(repositories, uri);
    let body = json!({ "repositories": page.items });
    Ok(page.respond("/v2/_catalog", body))
}

/// One page of a sorted list: entries after `last`, at most `n` of them.
struct Page {
    items: Vec<String>,
    /// `(n, last item)` for the next page's link, if entries remain.
    next: Option<(usize, String)>,
}

impl Page {
    fn of(sorted: Vec<String>, uri: &Uri) -> Page {
        let query = query_pairs(uri);
        // A non-numeric `n` is ignored rather than refused: the full list is still a correct answer.
        let n = query_value(&query, "n").and_then(|n| n.parse::<usize>().ok());
        let last = query_value(&query, "last");
        let mut items: Vec<String> = sorted
            .into_iter()
            .filter(|item| last.is_none_or(|last| item.as_str() > last))
            .collect();
        let mut next = None;
        if let Some(n) = n {
            if items.len() > n {
                items.truncate(n);
                next = items.last().map(|last| (n, last.clone()));
            }
        }
        Page { items, next }
    }

    fn respond(&self, path: &str, body: serde_json::Value) -> Response {
        let mut response = (
            StatusCode::OK,
            [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            body.to_string(),
        )
            .into_response();
        if let Some((n, last)) = &self.next {
            response.headers_mut().insert(
                LINK,
                header_value(format!("<{path}?n={n}&last={last}>; rel=\"next\"")),
            );
        }
        response
    }
}
