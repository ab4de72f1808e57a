//! `--limit-rate`: every upload body of the run shares one byte budget per second. A push of
//! 3 MiB at 1 MiB/s cannot take less than about 2.9 s (3 s less the allowed 100 ms burst), and
//! what lands in docker-registry is still exactly the image (read back with skopeo).

mod common;

use std::time::{Duration, Instant};

use common::*;
use ocipush_testkit::fixtures::{write_oci_layout, ImageSpec, LayerCompression, LayerSpec};
use ocipush_testkit::registry::{DockerRegistry, RegistryOptions};
use ocipush_testkit::skopeo::{self, SkopeoAuth};

#[test]
fn the_limit_holds_across_parallel_blobs() {
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    // Two random layers of 1.5 MiB: uploaded side by side, they share the one budget.
    let expected = write_oci_layout(
        &layout,
        &[(
            ImageSpec::new(vec![
                LayerSpec::random(1536 * 1024, 1),
                LayerSpec::random(1536 * 1024, 2),
            ]),
            Some("slow:1"),
        )],
        LayerCompression::Gzip,
    );
    let registry = DockerRegistry::start(RegistryOptions::default());
    let dest = registry.reference("rate/slow:1");
    let started = Instant::now();
    let out = ocipush(
        &[
            "push",
            "--plain-http",
            "--limit-rate",
            "1M",
            &layout.display().to_string(),
            &dest,
        ],
        None,
    );
    let elapsed = started.elapsed();
    let digest = pushed_digest(&out);
    let sent = expected[0].total_layer_size();
    assert!(sent > 3 * 1024 * 1024, "the layers are {sent} bytes");
    assert!(
        elapsed >= Duration::from_millis(2800),
        "3 MiB at 1 MiB/s took only {elapsed:?}"
    );
    assert_eq!(
        Some(digest.as_str()),
        expected[0].manifest_digest.as_deref()
    );
    let raw = skopeo::inspect_raw(&registry.docker_ref("rate/slow:1"), &SkopeoAuth::insecure());
    assert_eq!(sha256_hex(&raw), digest);

    let out = ocipush(
        &[
            "push",
            "--limit-rate",
            "fast",
            &layout.display().to_string(),
            &dest,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
}
