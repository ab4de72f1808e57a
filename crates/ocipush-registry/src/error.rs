//! Registry client errors, carrying what was asked of which registry and what it answered, so a
//! one-line message plus a hint can tell the user what to do.

use reqwest::StatusCode;

/// What kind of failure, for exit codes and retry decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Credentials missing or refused, or lacking the rights asked for.
    Auth,
    /// The registry could not be reached (TLS included), or a request to it failed in transit.
    Network,
    /// The registry answered 404.
    NotFound,
    /// The registry answered something unexpected or broke the protocol.
    Registry,
    /// The user's settings cannot work: certificate files, client options.
    Usage,
}

/// A failed registry operation: which registry, what was asked of it and what it answered.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No connection could be made to the registry.
    ///
    /// `plain_http`: what failed was already plain HTTP (so `--plain-http` is no remedy).
    #[error("cannot reach registry {registry}: {detail}")]
    Connect {
        /// The registry as the user named it.
        registry: String,
        /// The innermost cause, in words.
        detail: String,
        /// The connection tried was plain HTTP.
        plain_http: bool,
    },
    /// The TLS handshake failed: the certificate was refused, or TLS is not spoken there.
    #[error("TLS handshake with {registry} failed: {detail}")]
    Tls {
        /// The registry as the user named it.
        registry: String,
        /// The innermost cause, in words.
        detail: String,
    },
    /// Something answered `GET /v2/`, but not as a registry does.
    #[error("{registry} is not an OCI registry: GET /v2/ answered {status}")]
    NotARegistry {
        /// The registry as the user named it.
        registry: String,
        /// What `GET /v2/` answered.
        status: StatusCode,
    },
    /// `--plain-http` was asked for, but the port speaks TLS (its plain-HTTP answer was an
    /// error, and a TLS handshake there got an answer or a certificate).
    #[error("{registry} speaks TLS (HTTPS), but --plain-http sent it plain HTTP")]
    PlainHttpToTls {
        /// The registry as the user named it.
        registry: String,
    },
    /// The registry or its token server refused the credentials or wanted some we lack, or no
    /// usable token could be had.
    #[error("authentication to {registry} failed: {detail}")]
    Unauthorized {
        /// The registry as the user named it.
        registry: String,
        /// What went wrong; credentials appear by user name only, never by value.
        detail: String,
    },
    /// The registry refused the request for lack of rights (403).
    #[error("access to {repository} on {registry} denied: {detail}")]
    Denied {
        /// The registry as the user named it.
        registry: String,
        /// The refused request, which names the repository, e.g. `PUT manifest team/app:1.0`.
        repository: String,
        /// The registry's message, or the status.
        detail: String,
    },
    /// The registry answered a status the operation does not accept.
    #[error("{registry} answered {status} to {action}{}", code_suffix(.code, .message))]
    Status {
        /// The registry as the user named it.
        registry: String,
        /// The request, e.g. `PUT manifest team/app:1.0`.
        action: String,
        /// The status it answered.
        status: StatusCode,
        /// The distribution error code of the body (`DIGEST_INVALID`), if any.
        code: Option<String>,
        /// The error message of the body, or its first line when it is not JSON.
        message: Option<String>,
    },
    /// The registry's answer broke the protocol: no `Location`, another digest than sent.
    #[error("{registry}: {detail} (during {action})")]
    Protocol {
        /// The registry as the user named it.
        registry: String,
        /// The request, e.g. `PUT manifest team/app:1.0`.
        action: String,
        /// What was wrong with the answer.
        detail: String,
    },
    /// A request failed after connecting: timed out, cut off, or its body stream failed.
    #[error("request to {registry} failed during {action}: {detail}")]
    Transfer {
        /// The registry as the user named it.
        registry: String,
        /// The request, e.g. `PATCH upload to team/app`.
        action: String,
        /// The innermost cause, in words.
        detail: String,
    },
    /// A CA certificate file could not be read or trusted.
    #[error("cannot load CA certificates from {path}: {detail}")]
    CaFile {
        /// The file.
        path: String,
        /// Why it is unusable.
        detail: String,
    },
    /// A client certificate or key, or the `certs.d` folder holding them, could not be used.
    #[error("cannot load the client certificate {path}: {detail}")]
    CertFile {
        /// The file or folder.
        path: String,
        /// Why it is unusable.
        detail: String,
    },
    /// Client settings that cannot work: a bad registry address, a failed TLS setup.
    #[error("invalid client settings: {0}")]
    Settings(String),
}

fn code_suffix(code: &Option<String>, message: &Option<String>) -> String {
    match (code, message) {
        (Some(c), Some(m)) => format!(": {c}: {m}"),
        (Some(c), None) => format!(": {c}"),
        (None, Some(m)) => format!(": {m}"),
        (None, None) => String::new(),
    }
}

impl RegistryError {
    /// The kind of failure, for exit codes and retry decisions.
    pub fn class(&self) -> ErrorClass {
        match self {
            RegistryError::Connect { .. } | RegistryError::Tls { .. } => ErrorClass::Network,
            RegistryError::Transfer { .. } => ErrorClass::Network,
            RegistryError::Unauthorized { .. } | RegistryError::Denied { .. } => ErrorClass::Auth,
            RegistryError::Status { status, .. } if *status == StatusCode::NOT_FOUND => {
                ErrorClass::NotFound
            }
            RegistryError::CaFile { .. }
            | RegistryError::CertFile { .. }
            | RegistryError::PlainHttpToTls { .. }
            | RegistryError::Settings(_) => ErrorClass::Usage,
            _ => ErrorClass::Registry,
        }
    }

    /// Is trying again likely to help?
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Connect { .. } | RegistryError::Transfer { .. } => true,
            RegistryError::Status { status, .. } => is_transient_status(*status),
            _ => false,
        }
    }

    /// The registry lost the upload session, or holds it in another state than the client
    /// assumed — typically after a request of it was cut off or its answer lost (CNCF
    /// distribution then drops the session: 404 `BLOB_UPLOAD_INVALID`). The session is beyond
    /// repair, but the blob can start over in a new one.
    pub fn is_lost_upload(&self) -> bool {
        match self {
            RegistryError::Status { status, code, .. } => {
                *status == StatusCode::RANGE_NOT_SATISFIABLE
                    || matches!(
                        code.as_deref(),
                        Some("BLOB_UPLOAD_UNKNOWN" | "BLOB_UPLOAD_INVALID")
                    )
            }
            _ => false,
        }
    }

    /// What the user can do about it, to print after the message; `None` where there is no
    /// general advice.
    pub fn hint(&self) -> Option<String> {
        match self {
            RegistryError::Connect {
                registry,
                plain_http: true,
                ..
            } => Some(format!(
                "check that {registry} is running and reachable at that address and port"
            )),
            // Docker Hub speaks only HTTPS: the way out is the network, or naming the
            // registry that was meant.
            RegistryError::Connect { registry, .. } if registry == crate::DOCKER_HUB => Some(
                "check the network to Docker Hub; a destination without a registry host means Docker Hub, so name yours: HOST[:PORT]/REPOSITORY[:TAG]".into(),
            ),
            RegistryError::Connect { registry, .. } => Some(format!(
                "check that {registry} is running and reachable; for a plain-HTTP registry add --plain-http"
            )),
            RegistryError::Tls { registry, .. } => Some(format!(
                "trust the registry's CA with --ca-file FILE (or put it in /etc/docker/certs.d/{registry}/ca.crt), or skip verification with --insecure"
            )),
            RegistryError::Unauthorized { registry, .. } => Some(format!(
                "log in with `ocipush login {registry}` (or `docker login`), or pass -u USER --password-stdin (or OCIPUSH_USERNAME/OCIPUSH_PASSWORD)"
            )),
            RegistryError::CertFile { .. } => Some(
                "docker's certs.d folders hold NAME.cert with its NAME.key (PEM) for client authentication".into(),
            ),
            RegistryError::Denied { .. } => {
                Some("the account lacks push rights to that repository or namespace".into())
            }
            RegistryError::NotARegistry { .. } => {
                Some("check the registry host and port; the address answers but is no OCI registry".into())
            }
            RegistryError::PlainHttpToTls { .. } => Some(
                "drop --plain-http; for a self-signed certificate add --ca-file CERT (or --insecure)".into(),
            ),
            RegistryError::Status { code: Some(c), .. } if c == "DIGEST_INVALID" => Some(
                "the registry computed another digest for the uploaded bytes; the source or a proxy changed them".into(),
            ),
            RegistryError::Status { code: Some(c), .. } if c == "MANIFEST_BLOB_UNKNOWN" => {
                Some("the registry lost a blob the manifest needs; push again".into())
            }
            _ => None,
        }
    }
}

/// Statuses worth retrying: timeouts, rate limits and passing server failures.
pub fn is_transient_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// The `errors` body of a distribution-spec error response.
#[derive(serde::Deserialize)]
struct ErrorBody {
    errors: Vec<ErrorEntry>,
}

#[derive(serde::Deserialize)]
struct ErrorEntry {
    code: Option<String>,
    message: Option<String>,
}

/// Extracts the first error code and message from a registry's error body, if it has one.
pub fn parse_error_body(body: &[u8]) -> (Option<String>, Option<String>) {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(b) => match b.errors.into_iter().next() {
            Some(e) => (e.code, e.message.filter(|m| !m.is_empty())),
            None => (None, None),
        },
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let line = text.lines().next().unwrap_or("").trim();
            let line: String = line.chars().take(200).collect();
            (None, Some(line).filter(|l| !l.is_empty()))
        }
    }
}

/// The innermost causes of a transport error, without URLs (which may carry signed queries).
pub(crate) fn describe(e: &reqwest::Error) -> String {
    let mut messages = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !text.is_empty() && !messages.contains(&text) {
            messages.push(text);
        }
        source = s.source();
    }
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() {
        "request body failed"
    } else {
        "request failed"
    };
    match messages.last() {
        Some(last) => format!("{kind}: {}", readable(last)),
        None => kind.to_string(),
    }
}

/// rustls names some certificate failures by their enum: said in words instead.
fn readable(message: &str) -> String {
    if message.contains("CaUsedAsEndEntity") {
        return "the server's certificate is a CA certificate (basicConstraints CA:TRUE) \
                presented as the server's own, which is only accepted when that very \
                certificate is given with --ca-file"
            .to_string();
    }
    message.to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_ca_certificate_served_as_the_server_s_own_is_said_in_words() {
        let text = readable("invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))");
        assert!(!text.contains("CaUsedAsEndEntity"), "{text}");
        assert!(
            text.contains("CA:TRUE") && text.contains("--ca-file"),
            "{text}"
        );
        assert_eq!(readable("Connection refused"), "Connection refused");
    }

    use super::*;

    #[test]
    fn docker_hub_out_of_reach_is_not_told_to_use_plain_http() {
        let connect = |registry: &str| RegistryError::Connect {
            registry: registry.into(),
            detail: "dns error".into(),
            plain_http: false,
        };
        let hub = connect(crate::DOCKER_HUB).hint().unwrap();
        assert!(!hub.contains("--plain-http"), "{hub}");
        assert!(hub.contains("HOST[:PORT]/REPOSITORY"), "{hub}");
        let other = connect("registry.example:5000").hint().unwrap();
        assert!(other.contains("--plain-http"), "{other}");
    }

    #[test]
    fn reads_registry_error_bodies() {
        let (code, msg) = parse_error_body(
            br#"{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match"}]}"#,
        );
        assert_eq!(code.as_deref(), Some("DIGEST_INVALID"));
        assert_eq!(msg.as_deref(), Some("provided digest did not match"));
        let (code, msg) = parse_error_body(b"<html>bad gateway</html>\nmore");
        assert_eq!(code, None);
        assert_eq!(msg.as_deref(), Some("<html>bad gateway</html>"));
        let err = RegistryError::Status {
            registry: "r".into(),
            action: "PUT manifest".into(),
            status: StatusCode::BAD_REQUEST,
            code,
            message: msg,
        };
        assert_eq!(
            err.to_string(),
            "r answered 400 Bad Request to PUT manifest: <html>bad gateway</html>"
        );
        assert!(!err.is_lost_upload());
        let lost = RegistryError::Status {
            registry: "r".into(),
            action: "PATCH upload".into(),
            status: StatusCode::NOT_FOUND,
            code: Some("BLOB_UPLOAD_INVALID".into()),
            message: None,
        };
        assert!(lost.is_lost_upload() && !lost.is_transient());
    }
}
