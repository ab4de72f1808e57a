//! Basic auth against an htpasswd file, TLS with a test CA, and configuration errors reported by `bind`.

mod common;

use common::{client_builder, digest, error_code, header, start_with, Options};
use ocipush_server::{Server, ServerConfig, TlsFiles};

#[tokio::test]
async fn htpasswd_basic_auth() {
    let dir = tempfile::tempdir().expect("temp dir");
    // `htpasswd -Bbn` writes `$2y$`; the bcrypt crate writes `$2b$` with the same algorithm.
    let hash = bcrypt::hash("hunter2", 4)
        .expect("bcrypt")
        .replacen("$2b$", "$2y$", 1);
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, format!("# users\nalice:{hash}\n")).expect("write htpasswd");
    let server = start_with(Options {
        htpasswd: Some(htpasswd),
        ..Options::default()
    })
    .await;
    let c = &server.client;

    let anonymous = c.get(server.url("/v2/")).send().await.expect("GET");
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        header(&anonymous, "www-authenticate"),
        "Basic realm=\"ocipush\""
    );
    assert_eq!(
        header(&anonymous, "docker-distribution-api-version"),
        "registry/2.0"
    );
    assert_eq!(error_code(anonymous).await, "UNAUTHORIZED");

    let wrong = c
        .get(server.url("/v2/"))
        .basic_auth("alice", Some("wrong"))
        .send()
        .await
        .expect("GET");
    assert_eq!(wrong.status(), 401);
    let unknown_user = c
        .get(server.url("/v2/"))
        .basic_auth("mallory", Some("hunter2"))
        .send()
        .await
        .expect("GET");
    assert_eq!(unknown_user.status(), 401);

    // Every endpoint is protected, not just the version check.
    let upload = c
        .post(server.url("/v2/private/blobs/uploads/"))
        .send()
        .await
        .expect("POST");
    assert_eq!(upload.status(), 401);

    let ok = c
        .get(server.url("/v2/"))
        .basic_auth("alice", Some("hunter2"))
        .send()
        .await
        .expect("GET");
    assert_eq!(ok.status(), 200);
    let blob = b"authenticated content";
    let pushed = c
        .post(server.url(&format!(
            "/v2/private/blobs/uploads/?digest={}",
            digest(blob)
        )))
        .basic_auth("alice", Some("hunter2"))
        .body(blob.to_vec())
        .send()
        .await
        .expect("POST");
    assert_eq!(pushed.status(), 201);
    server.stop().await;
}

/// A CA and a leaf for `registry.test` and 127.0.0.1, signed by it; returns (CA PEM, leaf PEM, key PEM).
fn test_pki() -> (String, String, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "ocipush test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA cert");
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf_params =
        CertificateParams::new(vec!["registry.test".to_owned(), "127.0.0.1".to_owned()])
            .expect("leaf params");
    let leaf = leaf_params
        .signed_by(&leaf_key, &issuer)
        .expect("leaf cert");
    (ca_cert.pem(), leaf.pem(), leaf_key.serialize_pem())
}

#[tokio::test]
async fn serves_https_with_a_pem_certificate() {
    let (ca, leaf, key) = test_pki();
    let dir = tempfile::tempdir().expect("temp dir");
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, &leaf).expect("write cert");
    std::fs::write(&key_path, &key).expect("write key");

    let ca = reqwest::Certificate::from_pem(ca.as_bytes()).expect("CA");
    // The certificate names `registry.test`; reqwest resolves it to the listener (the port comes from the URL).
    let client = client_builder()
        .add_root_certificate(ca)
        .resolve("registry.test", ([127, 0, 0, 1], 0).into())
        .build()
        .expect("client");
    let server = start_with(Options {
        tls: Some(TlsFiles {
            cert: cert_path,
            key: key_path,
        }),
        client: Some(client),
        base: Some(Box::new(|addr| {
            format!("https://registry.test:{}", addr.port())
        })),
        ..Options::default()
    })
    .await;

    let response = server
        .client
        .get(server.url("/v2/"))
        .send()
        .await
        .expect("GET over TLS");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.version(),
        reqwest::Version::HTTP_2,
        "ALPN offers h2"
    );
    assert_eq!(
        header(&response, "docker-distribution-api-version"),
        "registry/2.0"
    );

    let blob = b"over tls";
    let pushed = server
        .client
        .post(server.url(&format!(
            "/v2/secure/blobs/uploads/?digest={}",
            digest(blob)
        )))
        .body(blob.to_vec())
        .send()
        .await
        .expect("POST");
    assert_eq!(pushed.status(), 201);

    // A client that does not trust the CA must fail the handshake.
    let untrusting = client_builder()
        .tls_certs_only([])
        .resolve("registry.test", ([127, 0, 0, 1], 0).into())
        .build()
        .expect("client");
    assert!(untrusting.get(server.url("/v2/")).send().await.is_err());
    // Plain HTTP on the TLS port is not answered as HTTP.
    let plain = client_builder()
        .build()
        .expect("client")
        .get(format!("http://{}/v2/", server.addr))
        .send()
        .await;
    assert!(plain.map(|r| r.status() != 200).unwrap_or(true));
    server.stop().await;
}

#[tokio::test]
async fn bind_reports_configuration_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = |tls: Option<TlsFiles>, htpasswd| {
        let mut config = ServerConfig::new(
            dir.path().join("store"),
            "127.0.0.1:0".parse().expect("addr"),
        );
        config.tls = tls;
        config.htpasswd = htpasswd;
        config
    };

    let missing = dir.path().join("missing.pem");
    let err = Server::bind(config(
        Some(TlsFiles {
            cert: missing.clone(),
            key: missing.clone(),
        }),
        None,
    ))
    .await
    .expect_err("missing cert");
    assert_eq!(
        err.to_string(),
        format!("cannot read TLS certificate file {}", missing.display())
    );

    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").expect("write");
    let err = Server::bind(config(
        Some(TlsFiles {
            cert: garbage.clone(),
            key: garbage.clone(),
        }),
        None,
    ))
    .await
    .expect_err("bad cert");
    assert!(
        err.to_string().starts_with("invalid TLS certificate in"),
        "{err}"
    );

    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, "bob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n").expect("write");
    let err = Server::bind(config(None, Some(htpasswd.clone())))
        .await
        .expect_err("sha1 htpasswd");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "invalid htpasswd file {}, line 1:",
            htpasswd.display()
        )),
        "{message}"
    );

    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let addr = taken.local_addr().expect("addr");
    let err = Server::bind(ServerConfig::new(dir.path().join("store"), addr))
        .await
        .expect_err("address in use");
    assert_eq!(err.to_string(), format!("cannot listen on {addr}"));
    assert!(
        std::error::Error::source(&err).is_some(),
        "the OS error is kept as the cause"
    );

    let file = dir.path().join("a-file");
    std::fs::write(&file, "").expect("write");
    let err = Server::bind(ServerConfig::new(
        file.join("store"),
        "127.0.0.1:0".parse().expect("addr"),
    ))
    .await
    .expect_err("root under a file");
    assert!(
        err.to_string()
            .starts_with("cannot prepare registry storage at"),
        "{err}"
    );
}
