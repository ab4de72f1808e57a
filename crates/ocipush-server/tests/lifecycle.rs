//! Server lifecycle: graceful shutdown lets an in-flight upload finish, and upload sessions survive a restart.

mod common;

use std::time::Duration;

use common::{digest, header, start};
use futures_util::StreamExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let mut server = start().await;
    let started = server
        .client
        .post(server.url("/v2/slow/blobs/uploads/"))
        .send()
        .await
        .expect("POST");
    let location = server.location(&started);

    // A PATCH whose body arrives in parts, with the shutdown requested while it is in flight.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let body = reqwest::Body::wrap_stream(tokio_stream_from(rx));
    let patch = tokio::spawn(server.client.patch(&location).body(body).send());
    tx.send(Ok(vec![1u8; 1000])).await.expect("first part");
    // With a channel of one, this send returns only once the body stream took the first part, i.e. the
    // request is on the wire; the pause lets the server start reading it.
    tx.send(Ok(vec![2u8; 500])).await.expect("second part");
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.signal_stop();
    tokio::time::sleep(Duration::from_millis(200)).await;

    // No new connections once shutdown began.
    let fresh = common::client_builder()
        .build()
        .expect("client")
        .get(server.url("/v2/"))
        .send()
        .await;
    assert!(fresh.is_err(), "listener must be closed: {fresh:?}");

    tx.send(Ok(vec![3u8; 500])).await.expect("third part");
    drop(tx);
    let response = patch.await.expect("task").expect("PATCH completes");
    assert_eq!(response.status(), 202);
    assert_eq!(header(&response, "range"), "0-1999");
    server.wait().await;
}

#[tokio::test]
async fn upload_sessions_survive_a_restart() {
    let server = start().await;
    let blob: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    let started = server
        .client
        .post(server.url("/v2/resume/blobs/uploads/"))
        .send()
        .await
        .expect("POST");
    let patched = server
        .client
        .patch(server.location(&started))
        .header("content-range", "0-29999")
        .body(blob[..30_000].to_vec())
        .send()
        .await
        .expect("PATCH");
    let location = header(&patched, "location");

    let server = server.restart().await;
    let status = server
        .client
        .get(server.url(&location))
        .send()
        .await
        .expect("status");
    assert_eq!(status.status(), 204);
    assert_eq!(header(&status, "range"), "0-29999");
    // The running hash is gone with the old process: the commit must re-read the data to verify it.
    let put = server
        .client
        .put(server.url(&format!("{location}?digest={}", digest(&blob))))
        .header("content-range", "30000-49999")
        .body(blob[30_000..].to_vec())
        .send()
        .await
        .expect("PUT");
    assert_eq!(put.status(), 201);
    let got = server
        .client
        .get(server.url(&format!("/v2/resume/blobs/{}", digest(&blob))))
        .send()
        .await
        .expect("GET");
    assert_eq!(got.bytes().await.expect("body").as_ref(), blob.as_slice());
    server.stop().await;
}

/// An mpsc receiver as a stream, without pulling in tokio-stream.
fn tokio_stream_from<T: Send + 'static>(
    rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send + 'static {
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .boxed()
}
