//! HTTP/1.1 to an engine's API over its unix socket or plain TCP, the way the Docker and Podman
//! engines are spoken to: one connection per request (cheap to a local engine, and an export
//! stream owns its connection for as long as it is read).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};

use super::endpoint::Endpoint;

/// JSON answers bigger than this are refused: an image list of thousands of images is a few MiB.
const JSON_LIMIT: usize = 64 * 1024 * 1024;
/// A TCP engine that does not accept the connection by then is reported, not waited on for the
/// system's minutes-long connect timeout.
const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a JSON call (version, list, inspect) may take in all: something that accepts the
/// connection and never answers (a dead port forward) is reported, not waited on forever. An
/// export has no such limit: Docker before 25 spends seconds per GiB before its first byte.
const JSON_CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a request to the daemon failed. `endpoint` is the endpoint as `DOCKER_HOST` names it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    #[error("cannot connect to {endpoint}: {source}")]
    Connect {
        endpoint: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{endpoint}: {detail}")]
    Protocol { endpoint: String, detail: String },
    #[error("{message}")]
    Status { status: StatusCode, message: String },
}

/// A connection to an engine, whichever way it is reached.
trait Connection: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Connection for T {}

async fn connect(endpoint: &Endpoint) -> std::io::Result<Box<dyn Connection>> {
    match endpoint {
        Endpoint::Unix(path) => Ok(Box::new(UnixStream::connect(path).await?)),
        Endpoint::Tcp { authority } => {
            let stream =
                tokio::time::timeout(TCP_CONNECT_TIMEOUT, TcpStream::connect(authority.as_str()))
                    .await
                    .map_err(|_| {
                        std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            format!("no answer in {}s", TCP_CONNECT_TIMEOUT.as_secs()),
                        )
                    })??;
            stream.set_nodelay(true)?;
            Ok(Box::new(stream))
        }
    }
}

/// What a request names as its host: the engines ignore it on a unix socket, but HTTP/1.1
/// requires one; over TCP it is the address dialled.
fn host_header(endpoint: &Endpoint) -> &str {
    match endpoint {
        Endpoint::Unix(_) => "localhost",
        Endpoint::Tcp { authority } => authority,
    }
}

/// Sends `GET path` and returns the response with its body unread.
pub(crate) async fn get(endpoint: &Endpoint, path: &str) -> Result<Response<Incoming>, HttpError> {
    let protocol = |detail: String| HttpError::Protocol {
        endpoint: endpoint.to_string(),
        detail,
    };
    let stream = connect(endpoint)
        .await
        .map_err(|source| HttpError::Connect {
            endpoint: endpoint.to_string(),
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
        .header(hyper::header::HOST, host_header(endpoint))
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
    let body = read_limited(endpoint, response, 64 * 1024)
        .await
        .unwrap_or_default();
    Err(HttpError::Status {
        status,
        message: error_message(status, &body),
    })
}

/// Sends `GET path` and parses the JSON answer.
pub(crate) async fn get_json<T: serde::de::DeserializeOwned>(
    endpoint: &Endpoint,
    path: &str,
) -> Result<T, HttpError> {
    let call = async {
        let response = get(endpoint, path).await?;
        read_limited(endpoint, response, JSON_LIMIT).await
    };
    let body = tokio::time::timeout(JSON_CALL_TIMEOUT, call)
        .await
        .map_err(|_| HttpError::Protocol {
            endpoint: endpoint.to_string(),
            detail: format!("no answer to {path} in {}s", JSON_CALL_TIMEOUT.as_secs()),
        })??;
    serde_json::from_slice(&body).map_err(|e| HttpError::Protocol {
        endpoint: endpoint.to_string(),
        detail: format!("unexpected answer to {path}: {e}"),
    })
}

async fn read_limited(
    endpoint: &Endpoint,
    response: Response<Incoming>,
    limit: usize,
) -> Result<Bytes, HttpError> {
    let collected = Limited::new(response.into_body(), limit)
        .collect()
        .await
        .map_err(|e| HttpError::Protocol {
            endpoint: endpoint.to_string(),
            detail: format!("reading the answer: {e}"),
        })?;
    Ok(collected.to_bytes())
}

/// The engines answer errors as `{"message": "..."}`; else the status line, with the first line
/// of a short plain-text body (what a TLS port says to plain HTTP: "Client sent an HTTP request
/// to an HTTPS server.").
fn error_message(status: StatusCode, body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct EngineError {
        message: String,
    }
    if let Ok(e) = serde_json::from_slice::<EngineError>(body) {
        if !e.message.is_empty() {
            return e.message;
        }
    }
    let text = std::str::from_utf8(body).unwrap_or("");
    let first_line = text.lines().next().unwrap_or("").trim();
    let plain = !first_line.is_empty()
        && !first_line.starts_with('<')
        && first_line.len() <= 200
        && !first_line.chars().any(char::is_control);
    if plain {
        format!("HTTP {status}: {first_line}")
    } else {
        format!("HTTP {status}")
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
        assert_eq!(
            error_message(
                StatusCode::BAD_REQUEST,
                b"Client sent an HTTP request to an HTTPS server.\n"
            ),
            "HTTP 400 Bad Request: Client sent an HTTP request to an HTTPS server."
        );
    }
}
