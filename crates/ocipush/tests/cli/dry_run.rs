//! `push --dry-run`: the plan tells what would be uploaded, skipped or mounted — found out with
//! HEADs against a real docker-registry — and nothing at all is written there.

use crate::common::*;
use ocipush_testkit::fixtures::{
    write_docker_archive, write_oci_layout, DockerArchiveOptions, ImageSpec, LayerCompression,
    LayerSpec,
};
use ocipush_testkit::registry::{DockerRegistry, RegistryOptions};

fn actions(plan: &serde_json::Value, image: usize) -> Vec<String> {
    plan["images"][image]["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["action"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn dry_run_plans_with_heads_and_writes_nothing() {
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    write_oci_layout(
        &layout,
        &[(
            ImageSpec::new(vec![LayerSpec::text(5000, 1), LayerSpec::random(3000, 2)]),
            Some("app:1.0"),
        )],
        LayerCompression::Gzip,
    );
    let archive = work.path().join("svc.tar");
    write_docker_archive(
        &archive,
        &[(
            ImageSpec::new(vec![LayerSpec::text(4000, 3)]),
            vec!["svc:2.0"],
        )],
        DockerArchiveOptions::default(),
    );
    let registry = DockerRegistry::start(RegistryOptions::default());
    let target = registry.reference("team");
    let cache = work.path().join("cache");
    let env = [("OCIPUSH_CACHE_DIR", cache.as_os_str())];
    let layout_arg = layout.display().to_string();
    let archive_arg = archive.display().to_string();
    let run = |extra: &[&str]| {
        let mut args = vec!["push", "--plain-http", "-r", &target];
        args.extend_from_slice(extra);
        args.push(&layout_arg);
        args.push(&archive_arg);
        ocipush_env(&args, None, &env)
    };

    let out = run(&["--dry-run", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["dry_run"], true);
    assert_eq!(actions(&plan, 0), ["upload", "upload", "upload"], "{plan}");
    // The docker archive's layer is not compressed yet: its digest is learnt on the way.
    assert_eq!(actions(&plan, 1), ["upload", "upload"], "{plan}");
    assert_eq!(plan["images"][1]["blobs"][0]["compress"], "gzip", "{plan}");
    assert!(plan["images"][1]["blobs"][0]["digest"].is_null());
    assert_eq!(
        plan["images"][1]["blobs"][0]["label"], "layer 1/1",
        "{plan}"
    );
    let repositories = registry
        .storage_dir()
        .join("docker/registry/v2/repositories");
    assert!(
        !repositories.exists() || std::fs::read_dir(&repositories).unwrap().next().is_none(),
        "a dry run wrote to the registry"
    );

    // The human plan says the same and that nothing was written.
    let out = run(&["--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("gzip on the way"), "{text}");
    assert!(text.contains("nothing was written"), "{text}");

    // After a real push every blob exists, the compressed layer too (known from the cache).
    let out = run(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&["--dry-run", "--json"]);
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(actions(&plan, 0), ["exists", "exists", "exists"], "{plan}");
    assert_eq!(actions(&plan, 1), ["exists", "exists"], "{plan}");
    let digest = plan["images"][1]["blobs"][0]["digest"].as_str().unwrap();
    // Named by the digest the registry knows it by, now that the cache knows it.
    let label = plan["images"][1]["blobs"][0]["label"].as_str().unwrap();
    assert_eq!(label, format!("layer 1/1 {}", &digest[7..19]), "{plan}");
}

#[test]
fn a_blob_an_earlier_image_of_the_run_uploads_is_planned_as_a_mount() {
    // The push uploads a blob once per registry and mounts it into the other repositories:
    // the plan says so, rather than "upload" for every image that needs it.
    let work = tempfile::tempdir().unwrap();
    let image = ImageSpec::new(vec![LayerSpec::text(5000, 7)]);
    let sources = one_image_in_two_layouts(work.path(), &image);
    let registry = DockerRegistry::start(RegistryOptions::default());
    let target = registry.reference("team");
    let cache = work.path().join("cache");
    let args = [
        "push",
        "--plain-http",
        "--dry-run",
        "--json",
        "-r",
        &target,
        &sources[0],
        &sources[1],
    ];
    let out = ocipush_env(&args, None, &[("OCIPUSH_CACHE_DIR", cache.as_os_str())]);
    assert!(out.status.success(), "{}", stderr(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(actions(&plan, 0), ["upload", "upload"], "{plan}");
    assert_eq!(actions(&plan, 1), ["mount", "mount"], "{plan}");
}
