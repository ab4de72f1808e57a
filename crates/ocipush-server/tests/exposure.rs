//! A registry exposed to peers that may be hostile: upload sessions are bounded and purged, stalled
//! bodies and silent connections are cut off, the connection limit makes room for new clients, and
//! basic auth over plain HTTP is refused off loopback.

mod common;

use std::time::{Duration, Instant};

use common::{data, digest, error_code, files_in, header, start, start_with, Options};
use ocipush_server::{Server, ServerConfig, ServerError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn configured(configure: impl FnOnce(&mut ServerConfig) + 'static) -> Options {
    Options {
        configure: Some(Box::new(configure)),
        ..Options::default()
    }
}

async fn open_session(server: &common::TestServer, repo: &str) -> reqwest::Response {
    server
        .client
        .post(server.url(&format!("/v2/{repo}/blobs/uploads/")))
        .send()
        .await
        .expect("POST")
}

#[tokio::test]
async fn open_sessions_are_capped_per_repository() {
    // The default cap: 3,000 POSTs leave at most 256 sessions of one repository on disk.
    let server = start().await;
    let mut refused = 0;
    for _ in 0..300 {
        let response = open_session(&server, "flood").await;
        match response.status().as_u16() {
            202 => {}
            429 => {
                assert_eq!(error_code(response).await, "TOOMANYREQUESTS");
                refused += 1;
            }
            other => panic!("POST answered {other}"),
        }
    }
    assert_eq!(refused, 300 - 256);
    assert_eq!(files_in(&server.store().join("uploads")).len(), 256);
    // Another repository is not locked out, and finishing a session frees a place.
    assert_eq!(open_session(&server, "other").await.status(), 202);
    server.stop().await;

    let server = start_with(configured(|config| {
        config.uploads.max_sessions_per_repository = 2;
    }))
    .await;
    let first = open_session(&server, "app").await;
    assert_eq!(open_session(&server, "app").await.status(), 202);
    assert_eq!(open_session(&server, "app").await.status(), 429);
    let cancelled = server
        .client
        .delete(server.location(&first))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(cancelled.status(), 204);
    assert_eq!(open_session(&server, "app").await.status(), 202);
    server.stop().await;
}

#[tokio::test]
async fn upload_sizes_are_capped_and_a_refused_chunk_leaves_the_session_resumable() {
    let server = start_with(configured(|config| {
        config.uploads.max_blob_bytes = 1000;
        config.uploads.max_total_bytes = 1500;
    }))
    .await;
    let c = &server.client;
    let location = server.location(&open_session(&server, "app").await);
    let patch = |range: &str, body: Vec<u8>| {
        c.patch(&location)
            .header("content-range", range.to_owned())
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()
    };
    let too_big = patch("0-1499", data(1500, 1)).await.expect("PATCH");
    assert_eq!(too_big.status(), 413);
    assert_eq!(error_code(too_big).await, "SIZE_INVALID");
    assert_eq!(
        patch("0-799", data(800, 1)).await.expect("PATCH").status(),
        202
    );
    assert_eq!(
        patch("800-1099", data(300, 2))
            .await
            .expect("PATCH")
            .status(),
        413
    );
    let status = c.get(&location).send().await.expect("status");
    assert_eq!(header(&status, "range"), "0-799");

    // All sessions together: 800 held here, 701 more elsewhere passes 1500.
    let other = server.location(&open_session(&server, "app").await);
    let refused = c
        .patch(&other)
        .header("content-type", "application/octet-stream")
        .body(data(701, 3))
        .send()
        .await
        .expect("PATCH");
    assert_eq!(refused.status(), 413);
    let done = server.finish_upload(&other, data(700, 3)).await;
    assert_eq!(done.status(), 201);
    // A monolithic POST over the per-blob limit is refused and leaves no session behind.
    let big = data(1001, 4);
    let monolithic = c
        .post(server.url(&format!("/v2/app/blobs/uploads/?digest={}", digest(&big))))
        .header("content-type", "application/octet-stream")
        .body(big)
        .send()
        .await
        .expect("POST");
    assert_eq!(monolithic.status(), 413);
    assert_eq!(files_in(&server.store().join("uploads")).len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn abandoned_sessions_are_purged_at_start_and_while_serving() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("store");
    // A session left by an earlier run, last written to long ago.
    let old = root
        .join("uploads")
        .join("0b7ea7e1-3a3c-4c6f-9d1e-5a4c2e1f0a11");
    std::fs::create_dir_all(&old).expect("mkdir");
    std::fs::write(old.join("repo"), "app").expect("repo");
    let file = std::fs::File::create(old.join("data")).expect("data");
    file.set_modified(std::time::SystemTime::now() - Duration::from_secs(8 * 24 * 3600))
        .expect("mtime");
    drop(file);
    let fresh = root
        .join("uploads")
        .join("1c8fb8f2-4b4d-4d7a-8e2f-6b5d3f2a1b22");
    std::fs::create_dir_all(&fresh).expect("mkdir");
    std::fs::write(fresh.join("repo"), "app").expect("repo");
    std::fs::write(fresh.join("data"), "recent").expect("data");

    let mut config = ServerConfig::new(&root, "127.0.0.1:0".parse().expect("addr"));
    config.uploads.purge_after = Duration::from_secs(3600);
    let server = Server::bind(config).await.expect("bind");
    assert!(!old.exists(), "purged at start");
    assert!(fresh.exists(), "a recent session stays");
    drop(server);

    // While serving: a session older than `purge_after` goes; one in use stays.
    let server = start_with(configured(|config| {
        config.uploads.purge_after = Duration::from_secs(1);
    }))
    .await;
    let abandoned = server.location(&open_session(&server, "app").await);
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let status = server.client.get(&abandoned).send().await.expect("status");
    assert_eq!(status.status(), 404);
    assert_eq!(error_code(status).await, "BLOB_UPLOAD_UNKNOWN");
    assert!(files_in(&server.store().join("uploads")).is_empty());
    server.stop().await;
}

#[tokio::test]
async fn a_stalled_body_releases_its_session_and_the_upload_resumes() {
    let server = start_with(configured(|config| {
        config.connections.stall_timeout = Duration::from_secs(1);
    }))
    .await;
    let location = server.location(&open_session(&server, "app").await);
    // A PATCH that sends 100 bytes and then nothing, holding its connection open.
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    sender.send(Ok(data(100, 5))).await.expect("send");
    let body = reqwest::Body::wrap_stream(tokio_stream(receiver));
    let stalled_client = common::client_builder().build().expect("client");
    let stalled = tokio::spawn(
        stalled_client
            .patch(location.clone())
            .header("content-type", "application/octet-stream")
            .body(body)
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let asked = Instant::now();
    let status = server.client.get(&location).send().await.expect("status");
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "the status waited {:?} for the stalled PATCH",
        asked.elapsed()
    );
    assert_eq!(status.status(), 204);
    // The stalled chunk was cut off: the upload resumes from where it was.
    assert_eq!(header(&status, "range"), "0-0");
    let done = server.finish_upload(&location, data(64, 6)).await;
    assert_eq!(done.status(), 201);
    drop(sender);
    let _ = stalled.await;
    server.stop().await;
}

fn tokio_stream<T: Send + 'static>(
    mut receiver: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> {
    futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

#[tokio::test]
async fn silent_connections_are_closed_after_the_idle_timeout() {
    let server = start_with(configured(|config| {
        config.connections.idle_timeout = Duration::from_secs(1);
    }))
    .await;
    // One that never sends a byte, one that sent a request and then kept the connection idle.
    let mut silent = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let mut kept_alive = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    kept_alive
        .write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let started = Instant::now();
    for (name, socket) in [("silent", &mut silent), ("kept alive", &mut kept_alive)] {
        let mut seen = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut seen)).await;
        assert!(closed.is_ok(), "{name} connection still open after 5 s");
        if name == "kept alive" {
            assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"));
        }
    }
    assert!(started.elapsed() >= Duration::from_millis(900));
    server.stop().await;
}

#[tokio::test]
async fn at_the_connection_limit_idle_connections_make_room() {
    let server = start_with(configured(|config| {
        config.connections.max_connections = Some(4);
        config.connections.idle_timeout = Duration::from_secs(60);
    }))
    .await;
    let mut silent = Vec::new();
    for _ in 0..10 {
        silent.push(
            tokio::net::TcpStream::connect(server.addr)
                .await
                .expect("connect"),
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let asked = Instant::now();
    let client = common::client_builder().build().expect("client");
    let answer = tokio::time::timeout(
        Duration::from_secs(5),
        client.get(server.url("/v2/")).send(),
    )
    .await
    .expect("a new client is served although 10 silent connections hold a limit of 4")
    .expect("GET /v2/");
    assert_eq!(answer.status(), 200);
    assert!(asked.elapsed() < Duration::from_secs(5));
    server.stop().await;
}

#[tokio::test]
async fn basic_auth_over_plain_http_is_refused_off_loopback() {
    let dir = tempfile::tempdir().expect("temp dir");
    let htpasswd = dir.path().join("htpasswd");
    let hash = bcrypt::hash("secret", 4).expect("hash");
    std::fs::write(&htpasswd, format!("alice:{hash}\n")).expect("write");
    let mut config =
        ServerConfig::new(dir.path().join("store"), "0.0.0.0:0".parse().expect("addr"));
    config.htpasswd = Some(htpasswd.clone());
    let err = Server::bind(config)
        .await
        .expect_err("plain auth on 0.0.0.0");
    assert!(matches!(err, ServerError::PlainHttpAuth { .. }), "{err}");
    assert!(err.to_string().contains("in the clear"), "{err}");
    assert!(
        !dir.path().join("store").exists(),
        "refused before anything is created"
    );
    // Loopback is fine.
    let mut config = ServerConfig::new(
        dir.path().join("store"),
        "127.0.0.1:0".parse().expect("addr"),
    );
    config.htpasswd = Some(htpasswd);
    Server::bind(config).await.expect("plain auth on loopback");
}
