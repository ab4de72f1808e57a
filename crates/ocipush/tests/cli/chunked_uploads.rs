//! Chunked uploads (issue 4, points 2 and 3) through the fault proxy in front of a real
//! docker-registry: `--chunk-size` sends each blob in several PATCH requests; a proxy answering
//! 413 to big bodies makes ocipush fall back to chunks (and smaller ones) on its own; a chunk
//! the registry never received is resumed from the offset the registry acknowledges (GET on
//! the session, `Range`) without restarting the blob. Every push is read back with skopeo.

use crate::common::*;
use ocipush_testkit::fault_proxy::{Fault, FaultPlan, FaultProxy, RequestKind, Rule};
use ocipush_testkit::fixtures::{
    write_docker_archive, write_oci_layout, DockerArchiveOptions, ExpectedImage, ImageSpec,
    LayerCompression, LayerSpec,
};
use ocipush_testkit::registry::{DockerRegistry, RegistryOptions};
use ocipush_testkit::skopeo::{self, ManifestView, SkopeoAuth};

struct Setup {
    registry: DockerRegistry,
    proxy: FaultProxy,
    _dir: tempfile::TempDir,
    layout: String,
    archive: String,
    layout_image: ExpectedImage,
    archive_image: ExpectedImage,
}

/// A registry behind a proxy, an OCI layout with a 600 KiB and a 300 KiB layer (random, so
/// gzip keeps them that big) and a docker archive of the same size (compressed by ocipush,
/// so its body has no length known in advance).
fn setup(seed: u64) -> Setup {
    let registry = DockerRegistry::start(RegistryOptions::default());
    let proxy = FaultProxy::start(([127, 0, 0, 1], registry.port()).into());
    let dir = tempfile::tempdir().unwrap();
    let spec = |s| {
        ImageSpec::new(vec![
            LayerSpec::random(600 * 1024, s),
            LayerSpec::random(300 * 1024, s + 1),
        ])
    };
    let layout = dir.path().join("layout");
    let layout_image =
        write_oci_layout(&layout, &[(spec(seed), Some("1"))], LayerCompression::Gzip).remove(0);
    let archive = dir.path().join("app.tar");
    let archive_image = write_docker_archive(
        &archive,
        &[(spec(seed + 10), vec!["app:1"])],
        DockerArchiveOptions::default(),
    )
    .remove(0);
    Setup {
        registry,
        proxy,
        layout: layout.display().to_string(),
        archive: archive.display().to_string(),
        _dir: dir,
        layout_image,
        archive_image,
    }
}

/// Pushes with every blob streamed (`OCIPUSH_SMALL_BLOB=0`): these tests are about streamed
/// uploads, their chunks and resumes, and the test images are small.
fn push(s: &Setup, source: &str, tag: &str, extra: &[&str]) -> std::process::Output {
    push_small_from(s, source, tag, extra, "0")
}

/// [`push`], with blobs up to `small_blob` sent from memory (POST + PUT with the body).
fn push_small_from(
    s: &Setup,
    source: &str,
    tag: &str,
    extra: &[&str],
    small_blob: &str,
) -> std::process::Output {
    let dest = s.proxy.reference(tag);
    let mut args = vec!["push", "--plain-http"];
    if !extra.contains(&"-j") {
        args.extend_from_slice(&["-j", "1"]);
    }
    args.extend_from_slice(extra);
    args.push(source);
    args.push(&dest);
    ocipush_env(
        &args,
        None,
        &[
            ("OCIPUSH_RETRY_BASE_MS", "5".as_ref()),
            ("OCIPUSH_SMALL_BLOB", small_blob.as_ref()),
        ],
    )
}

/// The registry holds exactly the image: printed digest, config, layers' diffIDs.
fn assert_pushed(s: &Setup, out: &std::process::Output, tag: &str, image: &ExpectedImage) {
    assert_holds(&s.registry.docker_ref(tag), out, image);
}

/// One POST per blob (config and layers): no blob was started over in a new session.
fn assert_no_blob_started_over(s: &Setup, tag: &str, image: &ExpectedImage) {
    let posts = s.proxy.requests(RequestKind::UploadStart);
    let blobs = 1 + image.layers.len() as u32;
    assert!(
        posts <= blobs,
        "{tag}: {posts} upload sessions for {blobs} blobs"
    );
}

/// `reference` (`docker://…`) is exactly the image `out` says it pushed.
fn assert_holds(reference: &str, out: &std::process::Output, image: &ExpectedImage) {
    let digest = pushed_digest(out);
    let raw = skopeo::inspect_raw(reference, &SkopeoAuth::insecure());
    assert_eq!(skopeo::manifest_digest(&raw), digest);
    if let Some(expected) = &image.manifest_digest {
        assert_eq!(&digest, expected);
    }
    let view = ManifestView::parse(&raw);
    assert_eq!(
        view.config_digest.as_deref(),
        Some(image.config_digest.as_str())
    );
    assert_eq!(
        diff_ids_via_skopeo(reference, &SkopeoAuth::insecure()),
        image.diff_ids
    );
}

#[test]
fn chunk_size_splits_every_blob() {
    let s = setup(200);
    for (source, image, tag) in [
        (&s.layout, &s.layout_image, "chunks/layout:1"),
        (&s.archive, &s.archive_image, "chunks/archive:1"),
    ] {
        s.proxy.set_plan(FaultPlan::none());
        let out = push(&s, source, tag, &["--chunk-size", "128k"]);
        assert_pushed(&s, &out, tag, image);
        // 600 KiB and 300 KiB of random data in 128 KiB chunks: 5 + 3 PATCHes at least.
        let patches = s.proxy.requests(RequestKind::UploadPatch);
        assert!(patches >= 8, "{tag}: only {patches} PATCH requests");
    }
}

#[test]
fn a_413_falls_back_to_chunks_small_enough() {
    let s = setup(300);
    // Streamed, and sent from memory as POST + PUT with the body.
    for (source, image, tag, small_blob) in [
        (&s.layout, &s.layout_image, "fallback/layout:1", "0"),
        (&s.archive, &s.archive_image, "fallback/archive:1", "0"),
        (&s.layout, &s.layout_image, "fallback/layout-put:1", "8MiB"),
        (
            &s.archive,
            &s.archive_image,
            "fallback/archive-put:1",
            "8MiB",
        ),
    ] {
        // Like nginx with client_max_body_size 200k: anything bigger (or of unknown length)
        // is refused before the registry sees it.
        let refuse_large = |kind| Rule::every(kind, 1, Fault::RejectLarge { limit: 200 * 1024 });
        s.proxy.set_plan(FaultPlan::rules(vec![
            refuse_large(RequestKind::UploadPatch),
            refuse_large(RequestKind::UploadCommit),
        ]));
        let out = push_small_from(&s, source, tag, &["--retries", "0"], small_blob);
        assert_pushed(&s, &out, tag, image);
        assert!(
            !s.proxy.injected().is_empty(),
            "{tag}: the proxy never refused anything"
        );
    }
}

/// Blobs streaming side by side all meet the 413; each falls back, whichever switched the
/// registry to chunks first.
#[test]
fn parallel_blobs_all_fall_back_on_413() {
    let s = setup(350);
    s.proxy.set_plan(FaultPlan::rules(vec![Rule::every(
        RequestKind::UploadPatch,
        1,
        Fault::RejectLarge { limit: 200 * 1024 },
    )]));
    let out = push(
        &s,
        &s.layout,
        "parallel/layout:1",
        &["-j", "4", "--retries", "0"],
    );
    assert_pushed(&s, &out, "parallel/layout:1", &s.layout_image);
}

#[test]
fn a_lost_chunk_resumes_from_the_registrys_offset() {
    let s = setup(400);
    for (source, image, tag) in [
        (&s.layout, &s.layout_image, "resume/layout:1"),
        (&s.archive, &s.archive_image, "resume/archive:1"),
    ] {
        // The 3rd chunk never reaches the registry. With no retries left, only a resume from
        // the acknowledged offset can save the push; a restart would need a retry.
        s.proxy.set_plan(FaultPlan::rules(vec![Rule::nth(
            RequestKind::UploadPatch,
            3,
            Fault::Status {
                status: 503,
                retry_after: None,
            },
        )]));
        let out = push(&s, source, tag, &["--retries", "0", "--chunk-size", "128k"]);
        assert_pushed(&s, &out, tag, image);
        assert_eq!(s.proxy.injected().len(), 1, "{:?}", s.proxy.injected());
        assert_no_blob_started_over(&s, tag, image);
    }
}

/// A chunk cut off mid-body makes distribution drop the session (404 BLOB_UPLOAD_INVALID to
/// the retried chunk): the blob starts over in a new session, as a streamed upload would.
#[test]
fn a_chunk_cut_off_mid_body_restarts_the_blob() {
    let s = setup(500);
    for (source, image, tag) in [
        (&s.layout, &s.layout_image, "cut/layout"),
        (&s.archive, &s.archive_image, "cut/archive"),
    ] {
        // A repository per fault: blobs already in one would be skipped, not uploaded.
        for (n, fault) in [
            Fault::ResetRequest {
                after_body_bytes: 10_000,
            },
            Fault::TruncateResponse,
        ]
        .into_iter()
        .enumerate()
        {
            let tag = &format!("{tag}{n}:1");
            s.proxy.set_plan(FaultPlan::rules(vec![Rule::nth(
                RequestKind::UploadPatch,
                2,
                fault,
            )]));
            let out = push(&s, source, tag, &["--retries", "1", "--chunk-size", "128k"]);
            assert_pushed(&s, &out, tag, image);
            assert_eq!(s.proxy.injected().len(), 1, "{:?}", s.proxy.injected());
        }
    }
}

/// A streamed PATCH whose answer is lost, against `ocipush serve`, which keeps what it got and
/// reports it in the upload's `Range`: with no retries allowed, the upload resumes at that
/// offset in the same session — here the blob was all there, so nothing is sent again — and
/// is committed.
#[test]
fn a_lost_answer_resumes_from_the_range_the_registry_reports() {
    let s = setup(600);
    let root = tempfile::tempdir().unwrap();
    let serve = crate::common::serve::Serve::start(root.path(), &[]);
    let proxy = FaultProxy::start(serve.addr.parse().unwrap());
    let push = |source: &str, repo: &str| {
        let dest = proxy.reference(&format!("{repo}:1"));
        let args = [
            "push",
            "--plain-http",
            "-j",
            "1",
            "--retries",
            "0",
            source,
            &dest,
        ];
        // Streamed: the resume from `Range` is what is tested.
        ocipush_env(
            &args,
            None,
            &[
                ("OCIPUSH_RETRY_BASE_MS", "5".as_ref()),
                ("OCIPUSH_SMALL_BLOB", "0".as_ref()),
            ],
        )
    };
    for (source, image, repo) in [
        (&s.layout, &s.layout_image, "lost/layout"),
        (&s.archive, &s.archive_image, "lost/archive"),
    ] {
        // What a push without faults sends, into a repository of its own.
        proxy.set_plan(FaultPlan::none());
        pushed_digest(&push(source, &format!("{repo}-clean")));
        let posts = proxy.requests(RequestKind::UploadStart);
        let patches = proxy.requests(RequestKind::UploadPatch);
        proxy.set_plan(FaultPlan::rules(vec![Rule::nth(
            RequestKind::UploadPatch,
            2,
            Fault::ResetResponse,
        )]));
        let out = push(source, repo);
        assert_holds(&format!("docker://{}/{repo}:1", serve.addr), &out, image);
        assert_eq!(proxy.injected().len(), 1, "{:?}", proxy.injected());
        let restarted = proxy.requests(RequestKind::UploadStart) != posts;
        assert!(!restarted, "a blob was started over");
        let resent = proxy.requests(RequestKind::UploadPatch) != patches;
        assert!(!resent, "bytes were sent again");
    }
}

/// A chunk that fails twice in a row exhausts the in-place resume; the next attempt goes on
/// from the offset the registry reports, in the same session: the source is read again but
/// only the rest is sent (with `--retries 0`, a restart is not even allowed).
#[test]
fn a_chunk_failing_twice_resumes_in_a_new_attempt() {
    let s = setup(700);
    for (source, image, tag) in [
        (&s.layout, &s.layout_image, "twice/layout:1"),
        (&s.archive, &s.archive_image, "twice/archive:1"),
    ] {
        let unavailable = Fault::Status {
            status: 503,
            retry_after: None,
        };
        s.proxy.set_plan(FaultPlan::rules(vec![
            Rule::nth(RequestKind::UploadPatch, 3, unavailable),
            Rule::nth(RequestKind::UploadPatch, 4, unavailable),
        ]));
        let out = push(&s, source, tag, &["--retries", "0", "--chunk-size", "128k"]);
        assert_pushed(&s, &out, tag, image);
        assert_eq!(s.proxy.injected().len(), 2, "{:?}", s.proxy.injected());
        assert_no_blob_started_over(&s, tag, image);
    }
}

/// A registry that refuses the resumed upload (as Gitea refuses a second PATCH): the blob
/// starts over in a new session, as it did before resuming existed.
#[test]
fn a_refused_resume_starts_the_blob_over() {
    let s = setup(800);
    let unavailable = Fault::Status {
        status: 503,
        retry_after: None,
    };
    let refused = Fault::Status {
        status: 400,
        retry_after: None,
    };
    // With --retries 1, the 3rd chunk fails twice in the request loop, twice more after its
    // in-place resume; the attempt that resumes from the registry's offset is refused.
    let mut rules: Vec<Rule> = (3..=6)
        .map(|n| Rule::nth(RequestKind::UploadPatch, n, unavailable))
        .collect();
    rules.push(Rule::nth(RequestKind::UploadPatch, 7, refused));
    s.proxy.set_plan(FaultPlan::rules(rules));
    let tag = "refused/layout:1";
    let out = push(
        &s,
        &s.layout,
        tag,
        &["--retries", "1", "--chunk-size", "128k"],
    );
    assert_pushed(&s, &out, tag, &s.layout_image);
    assert_eq!(s.proxy.injected().len(), 5, "{:?}", s.proxy.injected());
}
