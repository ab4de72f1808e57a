//! The token server against its own client calls (the registry side is tested in
//! the crates that use it).

use super::http::percent_decode;
use super::jwt::base32;
use super::*;
use ring::signature::{KeyPair as _, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};
use std::io::Read;

fn server() -> TokenServer {
    TokenServer::start(TokenServerOptions {
        users: vec![("alice".into(), "secret".into())],
        issuer: "test-issuer".into(),
        service: "test-service".into(),
        ..Default::default()
    })
}

/// A raw HTTP/1.0 GET; returns (status, body).
fn get(server: &TokenServer, target: &str, basic: Option<(&str, &str)>) -> (u16, String) {
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    let mut request = format!("GET {target} HTTP/1.1\r\nHost: {}\r\n", server.addr());
    if let Some((u, p)) = basic {
        request.push_str(&format!(
            "Authorization: Basic {}\r\n",
            STANDARD.encode(format!("{u}:{p}"))
        ));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response.split_once("\r\n\r\n").unwrap().1.to_string();
    (status, body)
}

const PUSH_SCOPE: &str = "/token?service=test-service&scope=repository%3Ateam%2Fapp%3Apull%2Cpush";

#[test]
fn authenticated_user_gets_a_verifiable_push_token() {
    let server = server();
    let (status, body) = get(&server, PUSH_SCOPE, Some(("alice", "secret")));
    assert_eq!(status, 200, "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    let token = doc["token"].as_str().unwrap();
    assert_eq!(doc["access_token"].as_str(), Some(token));
    assert_eq!(doc["expires_in"], DEFAULT_EXPIRES_IN);
    assert!(doc["issued_at"].as_str().unwrap().ends_with('Z'));

    let (header, claims) = decode_jwt(token).unwrap();
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["kid"], server.key_id());
    let cert_der = STANDARD.decode(header["x5c"][0].as_str().unwrap()).unwrap();
    let pem_der = {
        let body: String = server
            .cert_pem()
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        STANDARD.decode(body).unwrap()
    };
    assert_eq!(cert_der, pem_der);
    assert_eq!(claims["iss"], "test-issuer");
    assert_eq!(claims["aud"], "test-service");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(
        claims["access"],
        json!([{"type": "repository", "name": "team/app", "actions": ["pull", "push"]}])
    );
    assert_eq!(
        claims["exp"].as_u64().unwrap(),
        claims["iat"].as_u64().unwrap() + DEFAULT_EXPIRES_IN
    );

    // The signature is raw r||s over `header.claims`, by the certified key.
    let (input, sig) = token.rsplit_once('.').unwrap();
    let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    assert_eq!(sig.len(), 64);
    let public = server.shared.signer.public_key();
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public.as_ref())
        .verify(input.as_bytes(), &sig)
        .unwrap();

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert!(r.asked_for("repository:team/app:pull,push"));
    assert!(r.basic_auth && r.authenticated);
    assert_eq!(r.username.as_deref(), Some("alice"));
    assert_eq!(r.granted, ["repository:team/app:pull,push"]);
    assert_eq!(server.tokens_issued(), 1);
    assert!(!format!("{r:?}").contains("secret"));
}

#[test]
fn wrong_credentials_are_refused_and_anonymous_gets_pull_only() {
    let server = server();
    let (status, _) = get(&server, PUSH_SCOPE, Some(("alice", "nope")));
    assert_eq!(status, 401);
    let (status, _) = get(&server, PUSH_SCOPE, Some(("mallory", "secret")));
    assert_eq!(status, 401);
    assert_eq!(server.tokens_issued(), 0);

    let (status, body) = get(&server, PUSH_SCOPE, None);
    assert_eq!(status, 200);
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    let claims = decode_claims(doc["token"].as_str().unwrap()).unwrap();
    assert_eq!(claims["sub"], "");
    assert_eq!(claims["access"][0]["actions"], json!(["pull"]));

    let requests = server.requests();
    assert_eq!(
        requests
            .iter()
            .map(|r| (r.status, r.username.clone(), r.authenticated))
            .collect::<Vec<_>>(),
        [
            (401, Some("alice".to_string()), false),
            (401, Some("mallory".to_string()), false),
            (200, None, false),
        ]
    );
    assert_eq!(server.tokens_issued(), 1);
}

#[test]
fn several_scopes_short_expiry_and_other_paths() {
    let server = server();
    server.set_expires_in(2);
    let (status, body) = get(
        &server,
        "/token?scope=repository%3Aa%3Apull&scope=repository:b:pull,push&scope=repository:a:push",
        Some(("alice", "secret")),
    );
    assert_eq!(status, 200);
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["expires_in"], 2);
    let claims = decode_claims(doc["token"].as_str().unwrap()).unwrap();
    assert_eq!(claims["aud"], "test-service", "default service");
    assert_eq!(
        claims["access"],
        json!([
            {"type": "repository", "name": "a", "actions": ["pull", "push"]},
            {"type": "repository", "name": "b", "actions": ["pull", "push"]},
        ])
    );
    assert_eq!(get(&server, "/other", None).0, 404);
    assert_eq!(server.requests().len(), 2);
    server.clear_requests();
    assert!(server.requests().is_empty());
    assert_eq!(server.tokens_issued(), 1);
}

#[test]
fn stops_on_drop() {
    let server = server();
    let addr = server.addr();
    drop(server);
    assert!(TcpStream::connect(addr).is_err());
}

#[test]
fn helpers() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
    assert_eq!(percent_decode("a%3Ab+c%2x"), "a:b c%2x");
    assert_eq!(
        parse_scope("repository:localhost:5000/x:pull,push"),
        Some((
            "repository".into(),
            "localhost:5000/x".into(),
            vec!["pull".into(), "push".into()]
        ))
    );
    assert_eq!(parse_scope("nonsense"), None);
    let id = libtrust_key_id(b"x");
    assert_eq!(id.len(), 48 + 11);
    assert_eq!(id.split(':').count(), 12);
}
