//! Faults between ocipush and a registry it copies from: directed faults of every kind on
//! the source's pings, manifest and blob reads (each survivable: the copy must be exact), every
//! blob read cut short (the copy must fail cleanly, no tag written), and seeded schedules
//! (exact or cleanly failed). Each copy goes into a repository of its own, so every blob is
//! read from the source; each result is read back with skopeo.

use crate::common::*;
use crate::registry_sources::{raw, seed};
use ocipush_testkit::fault_proxy::{Fault, FaultPlan, FaultProxy, RequestKind, Rule};
use ocipush_testkit::fixtures::{write_oci_layout, ImageSpec, LayerCompression, LayerSpec};
use ocipush_testkit::registry::{DockerRegistry, RegistryOptions};
use ocipush_testkit::skopeo::{self, SkopeoAuth};

/// Retries a few milliseconds apart: the fault schedules below retry many times.
const FAST_RETRIES: (&str, &str) = ("OCIPUSH_RETRY_BASE_MS", "5");

/// One image of two big-enough layers, in the source behind a fault proxy.
struct FaultedSource {
    _layout: tempfile::TempDir,
    registry: DockerRegistry,
    proxy: FaultProxy,
    dest: DockerRegistry,
    diff_ids: Vec<String>,
}

impl FaultedSource {
    fn new() -> Self {
        let registry = DockerRegistry::start(RegistryOptions::default());
        let proxy = FaultProxy::start(([127, 0, 0, 1], registry.port()).into());
        let dest = DockerRegistry::start(RegistryOptions::default());
        let layout = tempfile::tempdir().unwrap();
        let image = ImageSpec::new(vec![
            LayerSpec::random(1024 * 1024, 61),
            LayerSpec::random(6 * 1024 * 1024, 62),
        ]);
        let expected = write_oci_layout(
            layout.path(),
            &[(image, Some("v1"))],
            LayerCompression::Gzip,
        )
        .remove(0);
        seed(layout.path(), "v1", &registry, "upstream/app:v1");
        FaultedSource {
            _layout: layout,
            registry,
            proxy,
            dest,
            diff_ids: expected.diff_ids,
        }
    }

    /// Copies through the proxy to `tag` of the destination; `Ok` when the copy is exact,
    /// `Err` with why when it is not (a failure that left a tag behind is not clean).
    fn copy(&self, plan: FaultPlan, tag: &str) -> (bool, Result<(), String>) {
        self.proxy.set_plan(plan.clone());
        let from = format!("docker://{}", self.proxy.reference("upstream/app:v1"));
        // A repository of its own: nothing is there yet, every blob is read from the source.
        let to = self.dest.reference(&format!("copy/{tag}:t"));
        let out = ocipush_env(
            // Through the proxy, plain HTTP only: a TLS probe it would pass on as garbage.
            &["push", "--src-plain-http", &from, &to],
            None,
            &[(FAST_RETRIES.0, FAST_RETRIES.1.as_ref())],
        );
        let auth = SkopeoAuth::insecure();
        let there = skopeo::try_inspect_raw(&self.dest.docker_ref(&format!("copy/{tag}:t")), &auth);
        if !out.status.success() {
            let clean = there.is_err() && stderr(&out).contains("error: ");
            return (
                false,
                if clean {
                    Ok(())
                } else {
                    Err(format!("{plan}: failed, not cleanly:\n{}", stderr(&out)))
                },
            );
        }
        let here = raw(&self.registry.docker_ref("upstream/app:v1"), &auth);
        if there.as_deref() != Ok(here.as_slice()) {
            return (true, Err(format!("{plan}: the manifest differs")));
        }
        let copied = diff_ids_via_skopeo(&self.dest.docker_ref(&format!("copy/{tag}:t")), &auth);
        if copied != self.diff_ids {
            return (true, Err(format!("{plan}: the layers differ")));
        }
        (true, Ok(()))
    }
}

#[test]
fn source_faults_are_survived_or_fail_cleanly() {
    let setup = FaultedSource::new();
    let mut broken = Vec::new();
    // Each of these is survivable: the copy must succeed, exactly.
    let survivable = [
        Rule::nth(RequestKind::BlobGet, 1, Fault::ResetResponse),
        Rule::nth(RequestKind::BlobGet, 2, Fault::TruncateResponse),
        Rule::nth(RequestKind::BlobGet, 1, Fault::TruncateResponse),
        Rule::nth(
            RequestKind::BlobGet,
            1,
            Fault::Status {
                status: 500,
                retry_after: None,
            },
        ),
        Rule::nth(
            RequestKind::BlobGet,
            2,
            Fault::Status {
                status: 429,
                retry_after: Some(0),
            },
        ),
        Rule::nth(RequestKind::ManifestGet, 1, Fault::TruncateResponse),
        Rule::nth(
            RequestKind::ManifestGet,
            1,
            Fault::Status {
                status: 503,
                retry_after: None,
            },
        ),
        Rule::nth(RequestKind::Ping, 1, Fault::ResetResponse),
    ];
    for (n, rule) in survivable.into_iter().enumerate() {
        let (pushed, verdict) = setup.copy(FaultPlan::rules(vec![rule]), &format!("r{n}"));
        if setup.proxy.injected().is_empty() {
            broken.push(format!("{rule}: never fired"));
        }
        if !pushed {
            broken.push(format!("{rule}: the copy failed"));
        }
        if let Err(e) = verdict {
            broken.push(e);
        }
    }
    // Every blob body cut short, every time: no copy can finish; it must fail cleanly.
    let (pushed, verdict) = setup.copy(
        FaultPlan::rules(vec![Rule::every(
            RequestKind::BlobGet,
            1,
            Fault::TruncateResponse,
        )]),
        "hopeless",
    );
    assert!(!pushed, "a copy whose every blob read is cut off succeeded");
    if let Err(e) = verdict {
        broken.push(e);
    }
    // Seeded schedules among the requests a source gets: exact or cleanly failed.
    let kinds = [
        RequestKind::Ping,
        RequestKind::ManifestGet,
        RequestKind::BlobGet,
        RequestKind::BlobGet,
        RequestKind::BlobGet,
    ];
    for seed in 7_000..7_012u64 {
        let plan = FaultPlan::from_seed_among(seed, &kinds);
        let (_, verdict) = setup.copy(plan, &format!("s{seed}"));
        if let Err(e) = verdict {
            broken.push(e);
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n\n"));
}
