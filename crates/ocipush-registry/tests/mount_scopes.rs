//! A cross-repository mount against docker-registry in token mode: the token is asked for with
//! both scopes (push on the target, pull on the source repository), and the blob appears in
//! the target without being uploaded again.

use bytes::Bytes;
use ocipush_oci::parse_sha256;
use ocipush_registry::{ClientOptions, Credentials, MountOutcome, RegistryClient, Repository};
use ocipush_testkit::registry::{DockerRegistry, RegistryOptions, TokenAuthOptions};
use ocipush_testkit::sha256_digest;

#[tokio::test(flavor = "multi_thread")]
async fn mount_asks_for_the_source_repository_scope() {
    let registry = DockerRegistry::start(RegistryOptions {
        token_auth: Some(TokenAuthOptions::users(&[("alice", "m0unt-pw")])),
        ..Default::default()
    });
    let tokens = registry.token_server().unwrap();
    let options = ClientOptions {
        plain_http: true,
        credentials: Some(Credentials::new("alice", "m0unt-pw")),
        ..ClientOptions::default()
    };
    let client = RegistryClient::connect(&registry.host_port(), &options)
        .await
        .unwrap();
    let content = Bytes::from_static(b"a blob to mount between repositories");
    let digest = parse_sha256(&sha256_digest(&content)).unwrap();
    let source = Repository::new(client.clone(), "src/app");
    source.upload_bytes(&digest, content.clone()).await.unwrap();

    let target = Repository::new(client.clone(), "dst/app");
    assert_eq!(target.blob_exists(&digest).await.unwrap(), None);
    tokens.clear_requests();
    let outcome = target.mount_blob(&digest, "src/app").await.unwrap();
    assert!(matches!(outcome, MountOutcome::Mounted), "{outcome:?}");
    let requests = tokens.requests();
    let mount = requests
        .iter()
        .find(|r| r.asked_for("repository:src/app:pull"))
        .unwrap_or_else(|| panic!("no token asked for the source: {requests:#?}"));
    assert!(
        mount.asked_for("repository:dst/app:pull,push"),
        "{mount:#?}"
    );
    assert!(
        mount.granted.iter().any(|g| g == "repository:src/app:pull"),
        "{mount:#?}"
    );
    assert_eq!(
        target.blob_exists(&digest).await.unwrap(),
        Some(content.len() as u64)
    );
}
