//! Maps a request path to an endpoint. Repository names contain slashes, so the path is read from its end:
//! the last segments (`tags/list`, `manifests/<ref>`, `blobs/<digest>`, `blobs/uploads/<uuid>`,
//! `referrers/<digest>`) say which endpoint it is and everything before them is the name.

use axum::http::StatusCode;

use crate::api_error::{ApiError, ErrorCode};
use crate::names::is_valid_name;

/// A recognised endpoint with its raw path parameters (name already validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Base,
    Catalog,
    Tags { name: String },
    Manifest { name: String, reference: String },
    Blob { name: String, digest: String },
    UploadStart { name: String },
    Upload { name: String, uuid: String },
    Referrers { name: String, digest: String },
}

pub fn parse(path: &str) -> Result<Route, ApiError> {
    let Some(rest) = path.strip_prefix("/v2") else {
        return Err(not_found());
    };
    if rest.is_empty() || rest == "/" {
        return Ok(Route::Base);
    }
    let Some(rest) = rest.strip_prefix('/') else {
        return Err(not_found());
    };
    if rest == "_catalog" {
        return Ok(Route::Catalog);
    }
    let segments = rest
        .split('/')
        .map(percent_decode)
        .collect::<Option<Vec<String>>>()
        .ok_or_else(not_found)?;
    let n = segments.len();
    let seg = |i: usize| segments[i].as_str();
    let name = |k: usize| -> Result<String, ApiError> {
        let name = segments[..k].join("/");
        if is_valid_name(&name) {
            Ok(name)
        } else {
            Err(ApiError::new(
                ErrorCode::NameInvalid,
                format!("invalid repository name {name:?}"),
            ))
        }
    };
    if n < 3 {
        return Err(not_found());
    }
    let last = segments[n - 1].clone();
    if seg(n - 2) == "tags" && last == "list" {
        return Ok(Route::Tags { name: name(n - 2)? });
    }
    if seg(n - 2) == "manifests" {
        return Ok(Route::Manifest {
            name: name(n - 2)?,
            reference: last,
        });
    }
    if seg(n - 2) == "referrers" {
        return Ok(Route::Referrers {
            name: name(n - 2)?,
            digest: last,
        });
    }
    if n >= 4 && seg(n - 3) == "blobs" && seg(n - 2) == "uploads" {
        let name = name(n - 3)?;
        return Ok(if last.is_empty() {
            Route::UploadStart { name }
        } else {
            Route::Upload { name, uuid: last }
        });
    }
    if seg(n - 2) == "blobs" {
        let name = name(n - 2)?;
        // `.../blobs/uploads` without the trailing slash: clients mean the upload endpoint, not a digest.
        return Ok(if last == "uploads" {
            Route::UploadStart { name }
        } else {
            Route::Blob { name, digest: last }
        });
    }
    Err(not_found())
}

fn not_found() -> ApiError {
    ApiError::new(ErrorCode::Unsupported, "no such endpoint").with_status(StatusCode::NOT_FOUND)
}

/// Decodes `%XX` escapes (clients may escape the `:` of a digest). `None` for broken escapes or non-UTF-8.
fn percent_decode(segment: &str) -> Option<String> {
    if !segment.contains('%') {
        return Some(segment.to_owned());
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(path: &str) -> Route {
        parse(path).unwrap_or_else(|e| panic!("{path}: {e:?}"))
    }

    #[test]
    fn reads_endpoints_from_the_end_of_the_path() {
        assert_eq!(route("/v2/"), Route::Base);
        assert_eq!(route("/v2"), Route::Base);
        assert_eq!(route("/v2/_catalog"), Route::Catalog);
        assert_eq!(
            route("/v2/a/b/c/tags/list"),
            Route::Tags {
                name: "a/b/c".into()
            }
        );
        assert_eq!(
            route("/v2/a/blobs/manifests/latest"),
            Route::Manifest {
                name: "a/blobs".into(),
                reference: "latest".into()
            }
        );
        assert_eq!(
            route("/v2/a/b/blobs/sha256%3Aabc"),
            Route::Blob {
                name: "a/b".into(),
                digest: "sha256:abc".into()
            }
        );
        assert_eq!(
            route("/v2/a/b/blobs/uploads/"),
            Route::UploadStart { name: "a/b".into() }
        );
        assert_eq!(
            route("/v2/a/blobs/uploads"),
            Route::UploadStart { name: "a".into() }
        );
        assert_eq!(
            route("/v2/x/blobs/uploads/1234"),
            Route::Upload {
                name: "x".into(),
                uuid: "1234".into()
            }
        );
        assert_eq!(
            route("/v2/x/referrers/sha256:ab"),
            Route::Referrers {
                name: "x".into(),
                digest: "sha256:ab".into()
            }
        );
    }

    #[test]
    fn rejects_bad_names_and_unknown_paths() {
        let err = parse("/v2/UPPER/manifests/latest").expect_err("invalid name");
        assert_eq!(err.code(), ErrorCode::NameInvalid);
        let err = parse("/v2/a//b/tags/list").expect_err("empty component");
        assert_eq!(err.code(), ErrorCode::NameInvalid);
        assert!(parse("/v3/a/tags/list").is_err());
        assert!(parse("/v2/a/something").is_err());
        assert!(parse("/v2/a/blobs/%zz").is_err());
    }
}
