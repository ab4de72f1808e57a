//! Registry authentication: what the registry asked for (learnt from `/v2/` or a 401), the
//! credentials we have, and bearer tokens cached per scope.
//!
//! The flow is the distribution token protocol: a 401 carries a `WWW-Authenticate` challenge;
//! for `Basic` we send the credentials; for `Bearer` we fetch a token from the realm for the
//! repository scope (with the credentials as basic auth, or anonymously) and send that.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use reqwest::header::{HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};

use crate::challenge::Challenge;
use crate::error::RegistryError;
use crate::secret::{Credentials, Secret};

/// Authentication state for one registry.
pub(crate) struct Auth {
    registry: String,
    credentials: Option<Credentials>,
    challenge: Mutex<Option<Challenge>>,
    tokens: Mutex<HashMap<String, Secret>>,
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
}

impl Auth {
    pub(crate) fn new(registry: &str, credentials: Option<Credentials>) -> Self {
        Auth {
            registry: registry.to_string(),
            credentials,
            challenge: Mutex::new(None),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// Records the challenge of a 401 response. Returns false when it carries none we can answer.
    pub(crate) fn learn(&self, headers: &reqwest::header::HeaderMap, scope: Option<&str>) -> bool {
        let Some(challenge) = headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(Challenge::parse)
        else {
            return false;
        };
        if let Some(scope) = scope {
            // The token we sent, if any, was not good enough for this request.
            self.tokens.lock().expect("token cache lock").remove(scope);
        }
        *self.challenge.lock().expect("challenge lock") = Some(challenge);
        true
    }

    /// The `Authorization` header for a request needing `scope`, fetching a token if needed.
    pub(crate) async fn header(
        &self,
        http: &reqwest::Client,
        scope: Option<&str>,
    ) -> Result<Option<HeaderValue>, RegistryError> {
        let challenge = self.challenge.lock().expect("challenge lock").clone();
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self.credentials.as_ref().map(basic_header)),
            Some(Challenge::Bearer {
                realm,
                service,
                scope: asked,
            }) => {
                let key = scope.or(asked.as_deref()).unwrap_or("").to_string();
                if let Some(token) = self.tokens.lock().expect("token cache lock").get(&key) {
                    return Ok(Some(bearer_header(token)));
                }
                let token = self
                    .fetch_token(http, &realm, service.as_deref(), scope, asked.as_deref())
                    .await?;
                let header = bearer_header(&token);
                self.tokens
                    .lock()
                    .expect("token cache lock")
                    .insert(key, token);
                Ok(Some(header))
            }
        }
    }

    async fn fetch_token(
        &self,
        http: &reqwest::Client,
        realm: &str,
        service: Option<&str>,
        scope: Option<&str>,
        asked: Option<&str>,
    ) -> Result<Secret, RegistryError> {
        let unauthorized = |detail: String| RegistryError::Unauthorized {
            registry: self.registry.clone(),
            detail,
        };
        let mut url = reqwest::Url::parse(realm)
            .map_err(|e| unauthorized(format!("token realm `{realm}` is not a URL: {e}")))?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            if let Some(scope) = scope {
                query.append_pair("scope", scope);
            }
            if let Some(asked) = asked.filter(|a| Some(*a) != scope) {
                query.append_pair("scope", asked);
            }
        }
        let mut request = http.get(url);
        if let Some(creds) = &self.credentials {
            request = request.header(AUTHORIZATION, basic_header(creds));
        }
        let response = request.send().await.map_err(|e| RegistryError::Connect {
            registry: format!("token server of {}", self.registry),
            detail: crate::client::describe(&e),
        })?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(unauthorized(match &self.credentials {
                Some(c) => format!(
                    "the token server rejected the credentials of `{}`",
                    c.username
                ),
                None => "the token server requires credentials".into(),
            }));
        }
        if !status.is_success() {
            return Err(unauthorized(format!("the token server answered {status}")));
        }
        let body: TokenResponse = response
            .json()
            .await
            .map_err(|e| unauthorized(format!("unreadable token response: {e}")))?;
        body.token
            .or(body.access_token)
            .filter(|t| !t.is_empty())
            .map(Secret::new)
            .ok_or_else(|| unauthorized("the token response holds no token".into()))
    }

    /// Explains a 401 that persisted after answering the challenge.
    pub(crate) fn refused(&self) -> RegistryError {
        RegistryError::Unauthorized {
            registry: self.registry.clone(),
            detail: match &self.credentials {
                Some(c) => format!("the registry rejected the credentials of `{}`", c.username),
                None => "the registry requires credentials".into(),
            },
        }
    }
}

fn basic_header(creds: &Credentials) -> HeaderValue {
    let raw = format!("{}:{}", creds.username, creds.password.expose());
    let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
    let mut value =
        HeaderValue::from_str(&format!("Basic {encoded}")).expect("base64 is a valid header value");
    value.set_sensitive(true);
    value
}

fn bearer_header(token: &Secret) -> HeaderValue {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
        .unwrap_or_else(|_| HeaderValue::from_static("Bearer invalid-token"));
    value.set_sensitive(true);
    value
}
