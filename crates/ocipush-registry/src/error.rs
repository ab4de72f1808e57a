//! Registry client errors, carrying what was asked of which registry and what it answered, so a
//! one-line message plus a hint can tell the user what to do.

use reqwest::StatusCode;

/// What kind of failure, for exit codes and retry decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Auth,
    Network,
    NotFound,
    Registry,
    Usage,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// `plain_http`: what failed was already plain HTTP (so `--plain-http` is no remedy).
    #[error("cannot reach registry {registry}: {detail}")]
    Connect {
        registry: String,
        detail: String,
        plain_http: bool,
    },
    #[error("TLS handshake with {registry} failed: {detail}")]
    Tls { registry: String, detail: String },
    #[error("{registry} is not an OCI registry: GET /v2/ answered {status}")]
    NotARegistry {
        registry: String,
        status: StatusCode,
    },
    #[error("authentication to {registry} failed: {detail}")]
    Unauthorized { registry: String, detail: String },
    #[error("access to {repository} on {registry} denied: {detail}")]
    Denied {
        registry: String,
        repository: String,
        detail: String,
    },
    #[error("{registry} answered {status} to {action}{}", code_suffix(.code, .message))]
    Status {
        registry: String,
        action: String,
        status: StatusCode,
        code: Option<String>,
        message: Option<String>,
    },
    #[error("{registry}: {detail} (during {action})")]
    Protocol {
        registry: String,
        action: String,
        detail: String,
    },
    #[error("request to {registry} failed during {action}: {detail}")]
    Transfer {
        registry: String,
        action: String,
        detail: String,
    },
    #[error("cannot load CA certificates from {path}: {detail}")]
    CaFile { path: String, detail: String },
    #[error("cannot load the client certificate {path}: {detail}")]
    CertFile { path: String, detail: String },
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

    pub fn hint(&self) -> Option<String> {
        match self {
            RegistryError::Connect {
                registry,
                plain_http: true,
                ..
            } => Some(format!(
                "check that {registry} is running and reachable at that address and port"
            )),
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

#[cfg(test)]
mod tests {
    use super::*;

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
