//! Small blobs in one request: the client asks a registry once whether it stores a blob sent
//! whole with its upload POST, with a small upload, and remembers the answer. Distribution
//! (docker-registry 2.8) opens a session and ignores the body: every upload then goes as a
//! POST and a PUT. The embedded registry stores it: later uploads, big ones too, go as one
//! POST. Both behind the test kit's proxy, which says what each request carried.

use std::net::SocketAddr;

use bytes::Bytes;
use ocipush_oci::parse_sha256;
use ocipush_registry::{ClientOptions, RegistryClient, Repository};
use ocipush_testkit::fault_proxy::{Fault, FaultPlan, FaultProxy, RequestKind, Rule};
use ocipush_testkit::registry::{DockerRegistry, RegistryOptions};
use ocipush_testkit::sha256_digest;

/// Uploads a 100 KiB blob (too big to ask with), a 1 KiB one (asks), another 100 KiB one, and
/// checks each is in the repository, whole.
async fn three_uploads(proxy: &FaultProxy) {
    let repository = repository_through(proxy, "small/blobs").await;
    for (size, fill) in [(100 * 1024, b'a'), (1024, b'b'), (100 * 1024, b'c')] {
        upload_and_find(&repository, size, fill).await;
    }
}

/// Uploads `size` bytes of `fill` with `upload_bytes`, then finds the blob there, whole.
async fn upload_and_find(repository: &Repository, size: usize, fill: u8) {
    let content = Bytes::from(vec![fill; size]);
    let digest = parse_sha256(&sha256_digest(&content)).unwrap();
    repository.upload_bytes(&digest, content).await.unwrap();
    assert_eq!(
        repository.blob_exists(&digest).await.unwrap(),
        Some(size as u64)
    );
}

/// The repository `name` of the registry behind `proxy`, plain HTTP.
async fn repository_through(proxy: &FaultProxy, name: &str) -> Repository {
    let options = ClientOptions {
        plain_http: true,
        ..ClientOptions::default()
    };
    let client = RegistryClient::connect(&proxy.host_port(), &options)
        .await
        .unwrap();
    Repository::new(client, name)
}

/// The POSTs that carried bytes.
fn posts_with_body(proxy: &FaultProxy) -> Vec<u64> {
    proxy
        .bodies()
        .iter()
        .filter(|b| b.kind == RequestKind::UploadStart)
        .filter_map(|b| b.length.filter(|n| *n > 0))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn distribution_ignores_the_body_so_it_is_asked_once_then_post_and_put() {
    let registry = DockerRegistry::start(RegistryOptions::default());
    let proxy = FaultProxy::start(([127, 0, 0, 1], registry.port()).into());
    three_uploads(&proxy).await;
    // Only the small one asked; the answer (202) sent every upload through a PUT.
    assert_eq!(posts_with_body(&proxy), [1024]);
    assert_eq!(proxy.requests(RequestKind::UploadStart), 3);
    assert_eq!(proxy.requests(RequestKind::UploadCommit), 3);
}

/// The embedded registry on a free port, stopped when the returned sender is dropped or used.
async fn embedded_registry(
    root: &std::path::Path,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), ocipush_server::ServerError>>,
) {
    let config = ocipush_server::ServerConfig::new(root, SocketAddr::from(([127, 0, 0, 1], 0)));
    let server = ocipush_server::Server::bind(config).await.unwrap();
    let addr = server.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run_until(async {
        let _ = stopped.await;
    }));
    (addr, stop, running)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registry_that_stores_it_gets_one_post_per_blob_once_asked() {
    let root = tempfile::tempdir().unwrap();
    let (addr, stop, running) = embedded_registry(root.path()).await;
    let proxy = FaultProxy::start(addr);
    three_uploads(&proxy).await;
    // The first went as POST + PUT (too big to ask); the second asked, and its 201 was
    // checked with a HEAD; the third went as one POST.
    assert_eq!(posts_with_body(&proxy), [1024, 100 * 1024]);
    assert_eq!(proxy.requests(RequestKind::UploadStart), 3);
    assert_eq!(proxy.requests(RequestKind::UploadCommit), 1);
    // Three checks by the test, one by the client.
    assert_eq!(proxy.requests(RequestKind::BlobHead), 4);
    let _ = stop.send(());
    running.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_single_post_goes_as_post_and_put_and_the_next_small_upload_asks_again() {
    // A proxy in front refuses every request with a body in the POST (413, as a size-limited
    // one does): each small upload asks, is refused, and is sent as POST + PUT instead.
    let root = tempfile::tempdir().unwrap();
    let (addr, stop, running) = embedded_registry(root.path()).await;
    let proxy = FaultProxy::start(addr);
    proxy.set_plan(FaultPlan::rules(vec![Rule::every(
        RequestKind::UploadStart,
        1,
        Fault::RejectLarge { limit: 0 },
    )]));
    let repository = repository_through(&proxy, "small/refused").await;
    for (size, fill) in [(1024, b'x'), (2048, b'y')] {
        upload_and_find(&repository, size, fill).await;
    }
    // Both asked (the refusal said nothing about single POSTs: a POST with the body, then an
    // empty one), both went through a PUT.
    assert_eq!(proxy.requests(RequestKind::UploadStart), 4);
    assert_eq!(proxy.requests(RequestKind::UploadCommit), 2);
    let _ = stop.send(());
    running.await.unwrap().unwrap();
}
