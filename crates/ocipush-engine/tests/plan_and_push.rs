//! The plan is the push: for each set of sources, what `dry_run` decides per blob is what
//! `push` then reports (uploaded, existing, mounted), image by image — against the embedded
//! registry and against CNCF distribution (docker-registry), on shared layers, cold and warm
//! digest caches, OCI layouts next to docker archives, several repositories, faults on the
//! way (through the test kit's fault proxy). Also: a damaged
//! copy of an image never hides or replaces its intact twin, and what the run says it
//! uploaded is what the registry stores.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ocipush_engine::{
    dry_run, plan, push, BlobCounts, Destination, DigestCache, ImagePlan, ImageStatus, PushOptions,
    PushReport, SilentReporter,
};
use ocipush_registry::{ClientOptions, RegistryTarget};
use ocipush_server::{Server, ServerConfig};
use ocipush_source::{open_source, DaemonSettings, Source};
use ocipush_testkit::fault_proxy::{Fault, FaultPlan, FaultProxy, RequestKind, Rule};
use ocipush_testkit::fixtures::{
    flip_byte, read_archive_entries, tar_entry_range, write_docker_archive, write_oci_layout,
    DockerArchiveOptions, ImageSpec, LayerCompression, LayerSpec,
};
use ocipush_testkit::registry::{DockerRegistry, RegistryOptions};

/// A registry the tests push into: the embedded one in-process, or docker-registry.
enum Registry {
    Embedded {
        host: String,
        _dir: tempfile::TempDir,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
    },
    Distribution(DockerRegistry),
}

impl Registry {
    async fn embedded() -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::bind(ServerConfig::new(
            dir.path().join("store"),
            "127.0.0.1:0".parse().unwrap(),
        ))
        .await
        .unwrap();
        let host = server.local_addr().to_string();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.run_until(async move {
            let _ = stopped.await;
        }));
        Registry::Embedded {
            host,
            _dir: dir,
            stop: Some(stop),
        }
    }

    fn distribution() -> Registry {
        Registry::Distribution(DockerRegistry::start(RegistryOptions::default()))
    }

    fn host(&self) -> String {
        match self {
            Registry::Embedded { host, .. } => host.clone(),
            Registry::Distribution(registry) => registry.host_port(),
        }
    }

    /// Every blob distribution stores, manifests included (its own files, not our client's
    /// view): hex digest and size.
    fn stored_blobs(&self) -> Option<Vec<(String, u64)>> {
        let Registry::Distribution(registry) = self else {
            return None;
        };
        let root = registry
            .storage_dir()
            .join("docker/registry/v2/blobs/sha256");
        let mut sizes = Vec::new();
        for prefix in std::fs::read_dir(&root).unwrap() {
            for blob in std::fs::read_dir(prefix.unwrap().path()).unwrap() {
                let blob = blob.unwrap();
                let size = std::fs::metadata(blob.path().join("data")).unwrap().len();
                sizes.push((blob.file_name().to_string_lossy().into_owned(), size));
            }
        }
        Some(sizes)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Registry::Embedded { stop, .. } = self {
            if let Some(stop) = stop.take() {
                let _ = stop.send(());
            }
        }
    }
}

async fn open(paths: &[PathBuf]) -> Vec<Arc<Source>> {
    let mut sources = Vec::new();
    for path in paths {
        let opened = open_source(&path.display().to_string(), &DaemonSettings::default())
            .await
            .unwrap();
        assert!(opened.broken.is_empty(), "{:?}", opened.broken.len());
        sources.extend(opened.sources.into_iter().map(Arc::new));
    }
    sources
}

fn options(cache: &Path) -> PushOptions {
    let client = ClientOptions {
        plain_http: true,
        ..ClientOptions::default()
    };
    PushOptions::default()
        .with_client(client)
        .with_cache(DigestCache::at(cache.to_path_buf()))
}

fn destination(registry: &Registry, namespace: &str) -> Destination {
    Destination::Registry(
        RegistryTarget::parse(&format!("{}/{namespace}", registry.host())).unwrap(),
    )
}

/// The counts a dry run promises for one image.
fn promised(plan: &ImagePlan) -> (u64, u64, u64) {
    let count = |word: &str| plan.blobs.iter().filter(|b| b.action == word).count() as u64;
    (count("upload"), count("exists"), count("mount"))
}

fn counts(blobs: &BlobCounts) -> (u64, u64, u64) {
    (blobs.uploaded, blobs.existing, blobs.mounted)
}

/// Dry run, then push, of the same sources; asserts per image that the push did what the dry
/// run said, and returns both.
async fn dry_run_then_push(
    paths: &[PathBuf],
    destination: &Destination,
    options: &PushOptions,
) -> (Vec<ImagePlan>, PushReport) {
    let sources = open(paths).await;
    let settings = options.plan_settings();
    let planned = plan(&sources, destination, &[], &settings).unwrap();
    let plans = dry_run(planned, options).await;
    let planned = plan(&sources, destination, &[], &settings).unwrap();
    let report = push(planned, options, Arc::new(SilentReporter)).await;
    assert_eq!(plans.len(), report.images.len());
    for (plan, image) in plans.iter().zip(&report.images) {
        assert_eq!(plan.source, image.source);
        assert!(plan.error.is_none(), "{:?}", plan.error);
        assert_eq!(image.status, ImageStatus::Pushed, "{:?}", image.error);
        assert_eq!(
            promised(plan),
            counts(&image.blobs),
            "{}: the dry run's (upload, exists, mount) against the push's; plan: {:#?}",
            image.source,
            plan.blobs
        );
    }
    (plans, report)
}

/// Three docker archives whose first layer is one shared base.
fn three_archives_sharing_a_base(dir: &Path) -> Vec<PathBuf> {
    (1..=3u64)
        .map(|n| {
            let path = dir.join(format!("app{n}.tar"));
            write_docker_archive(
                &path,
                &[(
                    ImageSpec::new(vec![
                        LayerSpec::text(20_000, 1),
                        LayerSpec::random(3000, 10 + n),
                    ]),
                    vec![&format!("app{n}:1")],
                )],
                DockerArchiveOptions::default(),
            );
            path
        })
        .collect()
}

async fn shared_layers_cold_then_warm(registry: Registry) {
    let work = tempfile::tempdir().unwrap();
    let archives = three_archives_sharing_a_base(work.path());
    let destination = destination(&registry, "team");

    // Fresh registry, empty cache: the base is compressed and uploaded once, mounted twice.
    let cold = options(&work.path().join("cache-1"));
    let (_, report) = dry_run_then_push(&archives, &destination, &cold).await;
    assert_eq!(
        counts(&report.summary.blobs),
        (7, 0, 2),
        "{:?}",
        report.summary
    );
    if let Some(stored) = registry.stored_blobs() {
        // Each distinct blob went over the wire once: what the run says it uploaded is what
        // the registry stores, less the three manifests.
        let manifests: Vec<String> = report
            .images
            .iter()
            .map(|i| {
                i.digest
                    .clone()
                    .unwrap()
                    .trim_start_matches("sha256:")
                    .to_string()
            })
            .collect();
        let blobs: Vec<u64> = stored
            .iter()
            .filter(|(hex, _)| !manifests.contains(hex))
            .map(|(_, size)| *size)
            .collect();
        assert_eq!((stored.len(), blobs.len()), (10, 7), "{stored:?}");
        assert_eq!(report.summary.bytes_uploaded, blobs.iter().sum::<u64>());
    }

    // Blobs in the registry, another cold cache: layers are compressed again (their digests
    // cannot be known), the configs are found.
    let (_, report) = dry_run_then_push(
        &archives,
        &destination,
        &options(&work.path().join("cache-2")),
    )
    .await;
    assert_eq!(
        counts(&report.summary.blobs),
        (4, 3, 2),
        "{:?}",
        report.summary
    );

    // Warm cache: everything is known and found; nothing is sent.
    let (plans, report) = dry_run_then_push(&archives, &destination, &cold).await;
    assert_eq!(
        counts(&report.summary.blobs),
        (0, 9, 0),
        "{:?}",
        report.summary
    );
    assert_eq!(report.summary.bytes_uploaded, 0);
    // Every layer is called by its registry digest, never by its diffID.
    for plan in &plans {
        for blob in &plan.blobs {
            let hex = blob
                .digest
                .as_deref()
                .unwrap()
                .trim_start_matches("sha256:");
            assert!(blob.label.ends_with(&hex[..12]), "{}", blob.label);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_layers_cold_and_warm_into_the_embedded_registry() {
    shared_layers_cold_then_warm(Registry::embedded().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_layers_cold_and_warm_into_distribution() {
    shared_layers_cold_then_warm(Registry::distribution()).await;
}

async fn layouts_and_archives_into_several_repositories(registry: Registry) {
    let work = tempfile::tempdir().unwrap();
    // Two layouts (other names, so other repositories) that share a stored base blob, and a
    // docker archive whose base is the same content compressed by ocipush.
    let base = LayerSpec::text(9000, 21);
    let mut paths = Vec::new();
    for (n, name) in ["web:1", "api:1"].iter().enumerate() {
        let layout = work.path().join(format!("layout{n}"));
        write_oci_layout(
            &layout,
            &[(
                ImageSpec::new(vec![base.clone(), LayerSpec::random(2000, 30 + n as u64)]),
                Some(name),
            )],
            LayerCompression::Gzip,
        );
        paths.push(layout);
    }
    let archive = work.path().join("worker.tar");
    write_docker_archive(
        &archive,
        &[(
            ImageSpec::new(vec![base.clone(), LayerSpec::text(4000, 40)]),
            vec!["worker:1"],
        )],
        DockerArchiveOptions::default(),
    );
    paths.push(archive);
    let destination = destination(&registry, "several");
    let options = options(&work.path().join("cache"));
    let (plans, report) = dry_run_then_push(&paths, &destination, &options).await;
    let mounts: u64 = plans.iter().map(|p| promised(p).2).sum();
    assert!(mounts >= 1, "the shared stored base is mounted: {plans:#?}");
    assert_eq!(report.summary.failed, 0);
    // Again: every blob of every repository is there.
    let (_, report) = dry_run_then_push(&paths, &destination, &options).await;
    assert_eq!(
        report.summary.blobs.uploaded + report.summary.blobs.mounted,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layouts_and_archives_into_several_repositories_of_the_embedded_registry() {
    layouts_and_archives_into_several_repositories(Registry::embedded().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layouts_and_archives_into_several_repositories_of_distribution() {
    layouts_and_archives_into_several_repositories(Registry::distribution()).await;
}

/// A docker archive and a copy of it whose layer has one byte flipped.
fn good_and_damaged_copy(dir: &Path, good: &str, bad: &str) -> (PathBuf, PathBuf) {
    let good = dir.join(good);
    write_docker_archive(
        &good,
        &[(
            ImageSpec::new(vec![LayerSpec::text(20_000, 50)]),
            vec!["twin:1"],
        )],
        DockerArchiveOptions::default(),
    );
    let bad = dir.join(bad);
    std::fs::copy(&good, &bad).unwrap();
    let layer = read_archive_entries(&bad)
        .into_keys()
        .find(|k| k.ends_with("layer.tar"))
        .expect("a layer entry");
    let range = tar_entry_range(&bad, &layer).unwrap();
    flip_byte(&bad, range.start + 1000);
    (good, bad)
}

async fn damaged_copy(first_is_damaged: bool) {
    let registry = Registry::embedded().await;
    let work = tempfile::tempdir().unwrap();
    let (good, bad) = match first_is_damaged {
        false => good_and_damaged_copy(work.path(), "a-good.tar", "b-bad.tar"),
        true => {
            let (good, bad) = good_and_damaged_copy(work.path(), "b-good.tar", "a-bad.tar");
            (good, bad)
        }
    };
    let mut paths = vec![good.clone(), bad.clone()];
    paths.sort();
    let sources = open(&paths).await;
    let options = options(&work.path().join("cache"));
    let destination = destination(&registry, "twins");
    let planned = plan(&sources, &destination, &[], &options.plan_settings()).unwrap();
    assert_eq!(planned.images.len(), 1, "one of the two is a repeat");
    let report = push(planned, &options, Arc::new(SilentReporter)).await;
    let pushed: Vec<_> = report
        .images
        .iter()
        .filter(|i| i.status == ImageStatus::Pushed)
        .collect();
    assert_eq!(pushed.len(), 1, "{report:#?}");
    assert!(pushed[0].source.contains("good"), "{report:#?}");
    let damaged: Vec<_> = report.images.iter().filter(|i| i.error.is_some()).collect();
    assert_eq!(damaged.len(), 1, "{report:#?}");
    assert!(damaged[0].source.contains("bad"), "{report:#?}");
    let message = &damaged[0].error.as_ref().unwrap().message;
    assert!(
        message.contains("damaged copy") && message.contains("digest mismatch"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_copy_after_the_intact_one_is_reported() {
    damaged_copy(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intact_copy_after_a_damaged_one_is_pushed_in_its_place() {
    damaged_copy(true).await;
}

/// Reads each pushed image back from the registry itself (past any proxy) with skopeo: it must
/// be there under the digest the report gives.
fn assert_read_back(registry: &DockerRegistry, report: &ocipush_engine::PushReport) {
    for image in &report.images {
        assert_eq!(image.status, ImageStatus::Pushed, "{:?}", image.error);
        let name = image.references[0].split_once('/').unwrap().1;
        let reference = format!("docker://{}/{name}", registry.host_port());
        let inspected = ocipush_testkit::skopeo::inspect(&reference, &registry.skopeo_auth());
        assert_eq!(inspected["Digest"].as_str(), image.digest.as_deref());
    }
}

/// The three archives sharing a base, bound for `namespace` on a registry behind a fault proxy.
async fn archives_through_a_fault_proxy(
    work: &Path,
    namespace: &str,
) -> (DockerRegistry, FaultProxy, Vec<Arc<Source>>, Destination) {
    let registry = DockerRegistry::start(RegistryOptions::default());
    let proxy = FaultProxy::start(format!("127.0.0.1:{}", registry.port()).parse().unwrap());
    let sources = open(&three_archives_sharing_a_base(work)).await;
    let destination = Destination::Registry(
        RegistryTarget::parse(&format!("{}/{namespace}", proxy.host_port())).unwrap(),
    );
    (registry, proxy, sources, destination)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_on_the_way_change_nothing_the_push_decided() {
    let work = tempfile::tempdir().unwrap();
    let (registry, proxy, sources, destination) =
        archives_through_a_fault_proxy(work.path(), "faults").await;
    // Small blobs streamed like big ones, so the PATCH meets its fault.
    let options = options(&work.path().join("cache")).with_small_blob(0);
    let settings = options.plan_settings();
    let plans = dry_run(
        plan(&sources, &destination, &[], &settings).unwrap(),
        &options,
    )
    .await;

    // A HEAD answered 503, a blob body cut off, a commit whose answer is lost.
    proxy.set_plan(FaultPlan::rules(vec![
        Rule::nth(
            RequestKind::BlobHead,
            2,
            Fault::Status {
                status: 503,
                retry_after: None,
            },
        ),
        Rule::nth(
            RequestKind::UploadPatch,
            1,
            Fault::ResetRequest {
                after_body_bytes: 1000,
            },
        ),
        Rule::nth(RequestKind::UploadCommit, 2, Fault::ResetResponse),
    ]));
    let report = push(
        plan(&sources, &destination, &[], &settings).unwrap(),
        &options,
        Arc::new(SilentReporter),
    )
    .await;
    let injected = proxy.injected();
    assert_eq!(injected.len(), 3, "{injected:?}");
    assert!(report.summary.retries >= 3, "{:?}", report.summary);
    for (plan, image) in plans.iter().zip(&report.images) {
        assert_eq!(promised(plan), counts(&image.blobs), "{}", image.source);
    }
    assert_read_back(&registry, &report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_blobs_go_as_post_and_put_with_their_body_even_through_faults() {
    let work = tempfile::tempdir().unwrap();
    let (registry, proxy, sources, destination) =
        archives_through_a_fault_proxy(work.path(), "small").await;
    let options = options(&work.path().join("cache"));
    // The first body cut off mid-request, the second commit's answer lost.
    proxy.set_plan(FaultPlan::rules(vec![
        Rule::nth(
            RequestKind::UploadCommit,
            1,
            Fault::ResetRequest {
                after_body_bytes: 100,
            },
        ),
        Rule::nth(RequestKind::UploadCommit, 3, Fault::ResetResponse),
    ]));
    let report = push(
        plan(&sources, &destination, &[], &options.plan_settings()).unwrap(),
        &options,
        Arc::new(SilentReporter),
    )
    .await;
    assert_eq!(proxy.injected().len(), 2, "{:?}", proxy.injected());
    assert_eq!(
        proxy.requests(RequestKind::UploadPatch),
        0,
        "no blob was streamed"
    );
    assert_read_back(&registry, &report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_image_costs_one_manifest_head_per_tag() {
    let registry = DockerRegistry::start(RegistryOptions::default());
    let proxy = FaultProxy::start(format!("127.0.0.1:{}", registry.port()).parse().unwrap());
    let work = tempfile::tempdir().unwrap();
    // A layout and two docker archives (their manifest is known once the cache knows their
    // layers), two tags each.
    let layout = work.path().join("layout");
    write_oci_layout(
        &layout,
        &[(
            ImageSpec::new(vec![LayerSpec::text(9000, 61), LayerSpec::random(2000, 62)]),
            Some("web:1"),
        )],
        LayerCompression::Gzip,
    );
    let mut paths = three_archives_sharing_a_base(work.path());
    paths.truncate(2);
    paths.push(layout);
    let sources = open(&paths).await;
    let destination = Destination::Registry(
        RegistryTarget::parse(&format!("{}/warm", proxy.host_port())).unwrap(),
    );
    let tags = ["1".to_string(), "stable".to_string()];
    let options = options(&work.path().join("cache"));
    let settings = options.plan_settings();
    let cold = push(
        plan(&sources, &destination, &tags, &settings).unwrap(),
        &options,
        Arc::new(SilentReporter),
    )
    .await;
    assert_eq!(cold.summary.pushed, 3, "{cold:#?}");

    // Again: every tag already points at its manifest.
    proxy.set_plan(FaultPlan::rules(Vec::new()));
    let plans = dry_run(
        plan(&sources, &destination, &tags, &settings).unwrap(),
        &options,
    )
    .await;
    for plan in &plans {
        assert_eq!(plan.current.len(), 2, "{plan:#?}");
        assert!(plan.blobs.iter().all(|b| b.action == "exists"), "{plan:#?}");
    }
    let warm = push(
        plan(&sources, &destination, &tags, &settings).unwrap(),
        &options,
        Arc::new(SilentReporter),
    )
    .await;
    assert_eq!(warm.summary.pushed, 3, "{warm:#?}");
    assert_eq!(counts(&warm.summary.blobs), (0, 9, 0), "{:?}", warm.summary);
    for (cold, warm) in cold.images.iter().zip(&warm.images) {
        assert_eq!(cold.digest, warm.digest);
    }
    // Dry run and push: 6 tags asked about twice; not a blob asked about, nothing written.
    let asked = |kind| proxy.requests(kind);
    assert_eq!(asked(RequestKind::ManifestGet), 12);
    for kind in [
        RequestKind::BlobHead,
        RequestKind::UploadStart,
        RequestKind::ManifestPut,
    ] {
        assert_eq!(asked(kind), 0, "{kind:?}");
    }

    // A new tag on the same image: its manifest goes up under it, still no blob is asked.
    proxy.set_plan(FaultPlan::rules(Vec::new()));
    let tags = ["1".to_string(), "next".to_string()];
    let retag = push(
        plan(&sources, &destination, &tags, &settings).unwrap(),
        &options,
        Arc::new(SilentReporter),
    )
    .await;
    assert_eq!(retag.summary.pushed, 3, "{retag:#?}");
    assert_eq!(asked(RequestKind::BlobHead), 0);
    assert_eq!(asked(RequestKind::ManifestPut), 3);
    let reference = format!("docker://{}/warm/web:next", registry.host_port());
    let inspected = ocipush_testkit::skopeo::inspect(&reference, &registry.skopeo_auth());
    assert_eq!(
        inspected["Digest"].as_str(),
        retag.images[2].digest.as_deref()
    );
}
