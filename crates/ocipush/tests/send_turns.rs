//! A registry on this machine shares its cores with ocipush, so it is sent at most one big
//! blob of an OCI layout per core at a time, the others waiting their turn; the image lands
//! whole all the same, as skopeo reads it back, and a blob whose upload is cut off gives its
//! turn back.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use ocipush_testkit::fault_proxy::{Fault, FaultPlan, FaultProxy, RequestKind, Rule};
use ocipush_testkit::fixtures::{
    write_oci_layout, ExpectedImage, ImageSpec, LayerCompression, LayerSpec,
};
use ocipush_testkit::registry::{DockerRegistry, RegistryOptions};
use ocipush_testkit::skopeo::{self, SkopeoAuth};

/// What a blob whose last byte ocipush handed over may still have to arrive: the client's
/// send buffer (at most `tcp_wmem`'s limit) and the proxy's receive buffer (512 KiB), with
/// room to spare.
fn in_kernel_buffers() -> u64 {
    let wmem = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem").expect("Linux tcp_wmem");
    let most: u64 = wmem
        .split_whitespace()
        .last()
        .and_then(|n| n.parse().ok())
        .expect("tcp_wmem's limit");
    most + (1 << 20)
}

/// `taskset` arguments that pin ocipush to one core it may run on, so it gets one turn.
fn on_one_core() -> Vec<String> {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let allowed = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .expect("Cpus_allowed_list");
    let first = allowed
        .trim()
        .split([',', '-'])
        .next()
        .expect("one allowed CPU");
    vec!["taskset".into(), "-c".into(), first.to_string()]
}

/// An OCI layout of `count` plain-tar layers of `size` random bytes each (pushed as they are).
fn layout_of(dir: &Path, count: u64, size: u64) -> (PathBuf, ExpectedImage) {
    let layout = dir.join("layout");
    let layers = (1..=count)
        .map(|seed| LayerSpec::random(size, seed))
        .collect();
    let mut expected = write_oci_layout(
        &layout,
        &[(ImageSpec::new(layers), None)],
        LayerCompression::None,
    );
    (layout, expected.remove(0))
}

fn push_on_one_core(layout: &Path, dest: &str) -> std::process::Output {
    let wrapper = on_one_core();
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    let layout = layout.display().to_string();
    // -j 4 would let every layer go at once; --timeout ends a push stuck on a lost turn.
    let args = [
        "push",
        "--plain-http",
        "-j",
        "4",
        "--timeout",
        "60s",
        &layout,
        dest,
    ];
    // Turns are for streamed blobs: these layers are streamed even where they are small
    // enough to go from memory.
    ocipush_under(
        &wrapper,
        &args,
        None,
        &[("OCIPUSH_SMALL_BLOB", "0".as_ref())],
    )
}

/// The registry holds `expected` whole: skopeo copies it out (checking every blob against its
/// digest), its manifest is the layout's, and its layers decompress to the layout's diffIDs.
fn assert_holds(reference: &str, expected: &ExpectedImage, layout: &Path) {
    let raw = skopeo::inspect_raw(reference, &SkopeoAuth::insecure());
    assert_eq!(Some(sha256_hex(&raw)), expected.manifest_digest);
    assert_eq!(
        diff_ids_via_skopeo(reference, &SkopeoAuth::insecure()),
        layout_diff_ids(layout)
    );
}

#[test]
fn a_registry_on_this_machine_gets_one_big_blob_per_core_at_a_time() {
    let registry = DockerRegistry::start(RegistryOptions::default());
    // On loopback like the registry; it sees when each upload body arrives.
    let proxy = FaultProxy::start(([127, 0, 0, 1], registry.port()).into());
    let dir = tempfile::tempdir().unwrap();
    // Layers that the kernel's buffers hold less than half of.
    let buffered = in_kernel_buffers();
    let layer = (2 * buffered + (1 << 20)).max(16 << 20);
    let (layout, expected) = layout_of(dir.path(), 3, layer);

    let out = push_on_one_core(&layout, &proxy.reference("turns/app:1"));
    assert!(out.status.success(), "{}", stderr(&out));

    let big: Vec<_> = proxy
        .bodies()
        .into_iter()
        .filter(|b| b.kind == RequestKind::UploadPatch && b.length.is_some_and(|n| n >= layer))
        .collect();
    assert_eq!(big.len(), 3, "one PATCH per layer: {big:?}");
    // Each layer began arriving only as the one before it was ending: never while another had
    // more than the kernel's buffers still to come (all three at once, each had nearly all).
    for body in &big {
        for left in &body.others_left {
            assert!(
                *left <= buffered,
                "a big blob began streaming while another had {left} bytes to go (a layer holds {layer})"
            );
        }
    }
    assert_holds(&registry.docker_ref("turns/app:1"), &expected, &layout);
}

#[test]
fn a_big_blob_whose_upload_is_cut_off_gives_its_turn_back() {
    let registry = DockerRegistry::start(RegistryOptions::default());
    let proxy = FaultProxy::start(([127, 0, 0, 1], registry.port()).into());
    // The first upload body is cut off halfway: that blob starts over, and the other one must
    // still get the one turn.
    proxy.set_plan(FaultPlan::rules(vec![Rule::nth(
        RequestKind::UploadPatch,
        1,
        Fault::ResetRequest {
            after_body_bytes: 2 << 20,
        },
    )]));
    let dir = tempfile::tempdir().unwrap();
    let (layout, expected) = layout_of(dir.path(), 2, 6 << 20);

    let out = push_on_one_core(&layout, &proxy.reference("turns/cut:1"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(proxy.injected().len(), 1, "{:?}", proxy.injected());
    assert_holds(&registry.docker_ref("turns/cut:1"), &expected, &layout);
}
