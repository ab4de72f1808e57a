//! A registry on this machine shares its cores with ocipush, so it is sent at most one big
//! stored blob per core at a time, the others waiting their turn; the image lands whole all
//! the same, as skopeo reads it back.

mod common;

use common::*;
use ocipush_testkit::fault_proxy::{FaultProxy, RequestKind};
use ocipush_testkit::fixtures::{write_oci_layout, ImageSpec, LayerCompression, LayerSpec};
use ocipush_testkit::registry::{DockerRegistry, RegistryOptions};
use ocipush_testkit::skopeo::{self, SkopeoAuth};

/// Layers of this size. A blob whose last byte ocipush handed over may still have what the
/// kernel buffers to come: the client's send buffer (at most 4 MiB, `tcp_wmem`) and the
/// proxy's receive buffer (512 KiB), under half a layer.
const LAYER: u64 = 16 << 20;

#[test]
fn a_registry_on_this_machine_gets_one_big_blob_per_core_at_a_time() {
    let registry = DockerRegistry::start(RegistryOptions::default());
    // On loopback like the registry; it sees when each upload body arrives.
    let proxy = FaultProxy::start(([127, 0, 0, 1], registry.port()).into());
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    // Plain tar layers: written fast, pushed as they are.
    let image = ImageSpec::new(vec![
        LayerSpec::random(LAYER, 1),
        LayerSpec::random(LAYER, 2),
        LayerSpec::random(LAYER, 3),
    ]);
    let expected = write_oci_layout(&layout, &[(image, None)], LayerCompression::None);
    let dest = proxy.reference("turns/app:1");

    // One core to run on (`taskset`), so one turn, though -j 4 would let all three go at once.
    let out = ocipush_under(
        &["taskset", "-c", "0"],
        &[
            "push",
            "--plain-http",
            "-j",
            "4",
            &layout.display().to_string(),
            &dest,
        ],
        None,
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let big: Vec<_> = proxy
        .bodies()
        .into_iter()
        .filter(|b| b.kind == RequestKind::UploadPatch && b.length.is_some_and(|n| n >= LAYER))
        .collect();
    assert_eq!(big.len(), 3, "one PATCH per layer: {big:?}");
    // Each layer began arriving only as the one before it was ending: never while another had
    // more than half of itself still to come (all three at once, each had nearly all).
    for body in &big {
        for left in &body.others_left {
            assert!(
                *left <= LAYER / 2,
                "a big blob began streaming while another had {left} bytes to go (a layer holds {LAYER})"
            );
        }
    }
    assert!(
        big.iter().any(|b| b.others_left.is_empty()),
        "the first layer streamed alone"
    );

    // skopeo copies the image out (checking every blob against its digest) and its layers
    // decompress to the layout's diffIDs; the manifest is the layout's own.
    let reference = registry.docker_ref("turns/app:1");
    let raw = skopeo::inspect_raw(&reference, &SkopeoAuth::insecure());
    assert_eq!(Some(sha256_hex(&raw)), expected[0].manifest_digest);
    assert_eq!(
        diff_ids_via_skopeo(&reference, &SkopeoAuth::insecure()),
        layout_diff_ids(&layout)
    );
}
