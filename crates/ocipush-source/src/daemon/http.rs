//! HTTP/1.1 over a unix socket, the way the Docker and Podman engines are spoken to: one
//! connection per request (cheap on a local socket, and an export stream owns its connection
//! for as long as it is read).

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

/// JSON answers bigger than this are refused: an image list of thousands of images is a few MiB.
const JSON_LIMIT: usize = 64 * 1024 * 1024;

/// Why a request to the daemon failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    #[error("cannot connect to {}: {source}", socket.display())]
    Connect {
        socket: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {detail}", socket.display())]
    Protocol { socket: PathBuf, detail: String },
    #[error("{message}")]
    Status { status: StatusCode, message: String },
}

/// Sends `GET path` and returns the response with its body unread.
pub(crate) async fn get(socket: &Path, path: &str) -> Result<Response<Incoming>, HttpError> {
    let protocol = |detail: String| HttpError::Protocol {
        socket: socket.to_path_buf(),
        detail,
    };
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|source| HttpError::Connect {
            socket: socket.to_path_buf(),
            source,
        })?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| protocol(e.to_string()))?;
    // The connection is driven on its own task until the body is read to the end or dropped.
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("daemon connection ended: {e}");
        }
    });
    let request = Request::get(path)
        // The engines ignore the host of a unix-socket request, but HTTP/1.1 requires one.
        .header(hyper::header::HOST, "localhost")
        .header(
            hyper::header::USER_AGENT,
            concat!("ocipush/", env!("CARGO_PKG_VERSION")),
        )
        .body(Empty::<Bytes>::new())
        .map_err(|e| protocol(e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| protocol(e.to_string()))?;
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status();
    let body = read_limited(socket, response, 64 * 1024)
        .await
        .unwrap_or_default();
    Err(HttpError::Status {
        status,
        message: error_message(status, &body),
    })
}

/// Sends `GET path` and parses the JSON answer.
pub(crate) async fn get_json<T: serde::de::DeserializeOwned>(
    socket: &Path,
    path: &str,
) -> Result<T, HttpError> {
    let response = get(socket, path).await?;
    let body = read_limited(socket, response, JSON_LIMIT).await?;
    serde_json::from_slice(&body).map_err(|e| HttpError::Protocol {
        socket: socket.to_path_buf(),
        detail: format!("unexpected answer to {path}: {e}"),
    })
}

async fn read_limited(
    socket: &Path,
    response: Response<Incoming>,
    limit: usize,
) -> Result<Bytes, HttpError> {
    let collected = Limited::new(response.into_body(), limit)
        .collect()
        .await
        .map_err(|e| HttpError::Protocol {
            socket: socket.to_path_buf(),
            detail: format!("reading the answer: {e}"),
        })?;
    Ok(collected.to_bytes())
}

/// The engines answer errors as `{"message": "..."}`; fall back to the status line.
fn error_message(status: StatusCode, body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct EngineError {
        message: String,
    }
    match serde_json::from_slice::<EngineError>(body) {
        Ok(e) if !e.message.is_empty() => e.message,
        _ => format!("HTTP {status}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_error_messages_are_read_from_json() {
        assert_eq!(
            error_message(
                StatusCode::NOT_FOUND,
                br#"{"message":"No such image: nope:latest"}"#
            ),
            "No such image: nope:latest"
        );
        assert_eq!(
            error_message(StatusCode::BAD_GATEWAY, b"<html>"),
            "HTTP 502 Bad Gateway"
        );
    }
}
