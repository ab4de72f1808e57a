//! The bearer-token flows a real token server cannot show us, against a small scripted
//! registry + OAuth2 token endpoint on loopback: an identity token exchanged with an OAuth2
//! `POST grant_type=refresh_token` (scopes space-separated in the form), the token reused from
//! the cache for the same repository, fetched anew for another repository and after the
//! registry stops accepting it, and the `GET` fallback (remembered) where `POST` is refused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ocipush_oci::parse_sha256;
use ocipush_registry::{ClientOptions, Credentials, RegistryClient, Repository, Secret};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const IDENTITY: &str = "refresh-Secret-123";

/// One request the token endpoint saw.
#[derive(Debug, Clone)]
struct TokenCall {
    method: String,
    form: HashMap<String, String>,
    query: String,
    authorization: Option<String>,
}

#[derive(Default)]
struct State {
    accept_post: bool,
    calls: Vec<TokenCall>,
    /// Tokens the registry accepts.
    valid: Vec<String>,
    issued: usize,
    /// Tokens stop being accepted once an upload has started (they expire mid-upload).
    expire_during_uploads: bool,
    /// Digests committed by `PUT …?digest=`.
    committed: Vec<String>,
    /// How the 401 states its challenges.
    challenges: ChallengeForm,
    /// The `Authorization` schemes the registry (not the token endpoint) was sent.
    registry_auth_schemes: Vec<String>,
}

/// How the registry's 401 answers state their challenges.
#[derive(Default, Clone, Copy)]
enum ChallengeForm {
    /// `Bearer realm=…,service=…[,scope=…]` alone.
    #[default]
    BearerOnly,
    /// `Bearer realm=…,service=…, Basic realm=…` in one header (RFC 7235 allows a list).
    BearerThenBasicInOneHeader,
    /// A `Basic realm=…` header first, then a `Bearer …` header.
    BasicHeaderThenBearerHeader,
}

struct Mock {
    addr: String,
    state: Arc<Mutex<State>>,
}

fn decode_form(text: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(text.as_bytes())
        .into_owned()
        .collect()
}

impl State {
    fn answer(
        &mut self,
        method: &str,
        target: &str,
        auth: Option<String>,
        body: &str,
        addr: &str,
    ) -> (u16, Vec<(String, String)>, String) {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        if path == "/token" {
            let form = if method == "POST" {
                decode_form(body)
            } else {
                decode_form(query)
            };
            self.calls.push(TokenCall {
                method: method.into(),
                form: form.clone(),
                query: query.into(),
                authorization: auth.clone(),
            });
            let ok = match method {
                "POST" if !self.accept_post => return (405, vec![], String::new()),
                "POST" => {
                    form.get("grant_type").map(String::as_str) == Some("refresh_token")
                        && form.get("refresh_token").map(String::as_str) == Some(IDENTITY)
                }
                _ => auth.is_some(),
            };
            if !ok {
                return (401, vec![], String::new());
            }
            self.issued += 1;
            let token = format!("access-{}", self.issued);
            self.valid.push(token.clone());
            return (
                200,
                vec![],
                format!(
                    r#"{{"access_token":"{token}","expires_in":300,"refresh_token":"{IDENTITY}"}}"#
                ),
            );
        }
        if let Some((scheme, _)) = auth.as_deref().and_then(|a| a.split_once(' ')) {
            self.registry_auth_schemes.push(scheme.to_string());
        }
        let bearer = auth.as_deref().and_then(|a| a.strip_prefix("Bearer "));
        if bearer.is_some_and(|t| self.valid.iter().any(|v| v == t)) {
            if method == "POST" && path.ends_with("/blobs/uploads/") {
                if self.expire_during_uploads {
                    self.valid.clear();
                }
                let location = format!("{path}session-1");
                return (202, vec![("Location".into(), location)], String::new());
            }
            if method == "PUT" && path.contains("/blobs/uploads/") {
                let digest = query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("digest="))
                    .unwrap_or_default()
                    .replace("%3A", ":");
                self.committed.push(digest);
                return (201, vec![], String::new());
            }
            return if path == "/v2/" {
                (200, vec![], "{}".into())
            } else {
                (404, vec![], String::new())
            };
        }
        let scope = path
            .strip_prefix("/v2/")
            .and_then(|p| p.split_once("/blobs/"))
            .map(|(repo, _)| format!(",scope=\"repository:{repo}:pull,push\""))
            .unwrap_or_default();
        let challenge = format!("Bearer realm=\"http://{addr}/token\",service=\"mock\"{scope}");
        let basic = "Basic realm=\"mock, a realm with a comma\"".to_string();
        let headers = match self.challenges {
            ChallengeForm::BearerOnly => vec![challenge],
            ChallengeForm::BearerThenBasicInOneHeader => vec![format!("{challenge}, {basic}")],
            ChallengeForm::BasicHeaderThenBearerHeader => vec![basic, challenge],
        };
        let headers = headers
            .into_iter()
            .map(|value| ("WWW-Authenticate".to_string(), value))
            .collect();
        (401, headers, String::new())
    }
}

async fn start(accept_post: bool) -> Mock {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let state = Arc::new(Mutex::new(State {
        accept_post,
        ..State::default()
    }));
    let (s, a) = (state.clone(), addr.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (s, a) = (s.clone(), a.clone());
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut read = BufReader::new(read);
                loop {
                    let mut line = String::new();
                    if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let mut parts = line.split_whitespace();
                    let method = parts.next().unwrap_or("").to_string();
                    let target = parts.next().unwrap_or("").to_string();
                    let (mut length, mut auth) = (0usize, None);
                    loop {
                        let mut header = String::new();
                        if read.read_line(&mut header).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let header = header.trim_end();
                        if header.is_empty() {
                            break;
                        }
                        let (name, value) = header.split_once(':').unwrap_or((header, ""));
                        match name.to_ascii_lowercase().as_str() {
                            "content-length" => length = value.trim().parse().unwrap_or(0),
                            "authorization" => auth = Some(value.trim().to_string()),
                            _ => {}
                        }
                    }
                    let mut body = vec![0u8; length];
                    if read.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let body = String::from_utf8_lossy(&body).into_owned();
                    let (status, headers, text) =
                        s.lock().unwrap().answer(&method, &target, auth, &body, &a);
                    let mut out = format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n",
                        if method == "HEAD" { 0 } else { text.len() }
                    );
                    for (k, v) in headers {
                        out.push_str(&format!("{k}: {v}\r\n"));
                    }
                    out.push_str("\r\n");
                    if method != "HEAD" {
                        out.push_str(&text);
                    }
                    if write.write_all(out.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Mock { addr, state }
}

fn options(credentials: Credentials) -> ClientOptions {
    ClientOptions {
        plain_http: true,
        credentials: Some(credentials),
        ..ClientOptions::default()
    }
}

fn identity(username: Option<&str>) -> Credentials {
    Credentials::IdentityToken {
        username: username.map(str::to_string),
        token: Secret::new(IDENTITY),
    }
}

const DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000001";

#[tokio::test]
async fn identity_token_is_exchanged_by_oauth2_post_and_cached_per_repository() {
    let mock = start(true).await;
    let client = RegistryClient::connect(&mock.addr, &options(identity(None)))
        .await
        .unwrap();
    let digest = parse_sha256(DIGEST).unwrap();
    let app = Repository::new(client.clone(), "team/app");
    assert_eq!(app.blob_exists(&digest).await.unwrap(), None);
    assert_eq!(app.blob_exists(&digest).await.unwrap(), None);
    let calls = mock.state.lock().unwrap().calls.clone();
    assert_eq!(
        calls.len(),
        1,
        "the second HEAD reuses the token: {calls:#?}"
    );
    let post = &calls[0];
    assert_eq!(post.method, "POST");
    assert_eq!(post.form["grant_type"], "refresh_token");
    assert_eq!(post.form["refresh_token"], IDENTITY);
    assert_eq!(post.form["client_id"], "ocipush");
    assert_eq!(post.form["service"], "mock");
    assert_eq!(post.form["scope"], "repository:team/app:pull,push");
    assert!(post.authorization.is_none());

    // Another repository: a token of its own.
    let web = Repository::new(client.clone(), "team/web");
    assert_eq!(web.blob_exists(&digest).await.unwrap(), None);
    let calls = mock.state.lock().unwrap().calls.clone();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].form["scope"], "repository:team/web:pull,push");

    // The registry stops accepting the tokens (expired, revoked): fetched again, once.
    mock.state.lock().unwrap().valid.clear();
    assert_eq!(app.blob_exists(&digest).await.unwrap(), None);
    let calls = mock.state.lock().unwrap().calls.clone();
    assert_eq!(calls.len(), 3, "{calls:#?}");
    assert_eq!(calls[2].form["scope"], "repository:team/app:pull,push");
}

#[tokio::test]
async fn a_token_that_expires_during_an_upload_is_renewed_and_the_upload_completes() {
    let mock = start(true).await;
    mock.state.lock().unwrap().expire_during_uploads = true;
    let client = RegistryClient::connect(&mock.addr, &options(identity(None)))
        .await
        .unwrap();
    let app = Repository::new(client.clone(), "team/app");
    let body = bytes::Bytes::from_static(b"layer bytes");
    let digest = ocipush_oci::sha256_of(&body);
    // The session starts with the first token; the registry then stops accepting it, so the
    // commit is refused once, a new token is fetched, and the commit goes through with it.
    app.upload_bytes(&digest, body).await.unwrap();
    let state = mock.state.lock().unwrap();
    assert_eq!(state.committed, [digest.to_string()]);
    assert_eq!(
        state.calls.len(),
        2,
        "one token, then its renewal: {:#?}",
        state.calls
    );
    assert_eq!(
        state.calls[1].form["scope"],
        "repository:team/app:pull,push"
    );
}

#[tokio::test]
async fn post_refused_falls_back_to_get_and_remembers() {
    let mock = start(false).await;
    let client = RegistryClient::connect(&mock.addr, &options(identity(Some("svc"))))
        .await
        .unwrap();
    let digest = parse_sha256(DIGEST).unwrap();
    Repository::new(client.clone(), "a/one")
        .blob_exists(&digest)
        .await
        .unwrap();
    Repository::new(client.clone(), "a/two")
        .blob_exists(&digest)
        .await
        .unwrap();
    let calls = mock.state.lock().unwrap().calls.clone();
    let methods: Vec<&str> = calls.iter().map(|c| c.method.as_str()).collect();
    assert_eq!(methods, ["POST", "GET", "GET"], "{calls:#?}");
    // The GET carries the identity token as the Basic password of its user, and the scope.
    use base64::Engine as _;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("svc:{IDENTITY}"))
    );
    assert_eq!(calls[1].authorization.as_deref(), Some(basic.as_str()));
    assert!(
        calls[2]
            .query
            .contains("scope=repository%3Aa%2Ftwo%3Apull%2Cpush"),
        "{}",
        calls[2].query
    );
}

#[tokio::test]
async fn login_check_returns_the_refresh_token() {
    let mock = start(false).await;
    let client = RegistryClient::connect(&mock.addr, &options(Credentials::new("u", "p")))
        .await
        .unwrap();
    let check = client.verify_login().await.unwrap();
    assert!(!check.open);
    assert_eq!(
        check
            .identity_token
            .map(|t| t.expose().to_string())
            .as_deref(),
        Some(IDENTITY)
    );
    let calls = mock.state.lock().unwrap().calls.clone();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].method, "GET");
    assert!(
        calls[0].query.contains("offline_token=true"),
        "{}",
        calls[0].query
    );
    assert!(!calls[0].query.contains("scope="), "{}", calls[0].query);
}

/// A registry that offers Bearer and Basic in one 401 (or in two headers) gets a token request
/// and a Bearer-authorized retry; the password is never sent to the registry itself.
#[tokio::test]
async fn bearer_is_chosen_among_several_challenges_in_one_header_or_several() {
    for form in [
        ChallengeForm::BearerThenBasicInOneHeader,
        ChallengeForm::BasicHeaderThenBearerHeader,
    ] {
        let mock = start(false).await;
        mock.state.lock().unwrap().challenges = form;
        let client = RegistryClient::connect(&mock.addr, &options(Credentials::new("u", "p")))
            .await
            .unwrap();
        let digest = parse_sha256(DIGEST).unwrap();
        // Answered 404 only to a valid bearer token: anything else would be a 401 error.
        assert_eq!(
            Repository::new(client.clone(), "team/app")
                .blob_exists(&digest)
                .await
                .unwrap(),
            None
        );
        let state = mock.state.lock().unwrap();
        assert!(!state.calls.is_empty(), "a token was asked for");
        assert!(
            state.calls.iter().all(|c| c.method == "GET"),
            "{:#?}",
            state.calls
        );
        assert!(
            state
                .calls
                .iter()
                .any(|c| c.form.get("scope").map(String::as_str)
                    == Some("repository:team/app:pull,push")),
            "{:#?}",
            state.calls
        );
        assert!(
            state.registry_auth_schemes.iter().all(|s| s == "Bearer"),
            "the registry saw {:?}",
            state.registry_auth_schemes
        );
        assert!(!state.registry_auth_schemes.is_empty());
    }
}
