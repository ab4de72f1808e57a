//! Referrers (signatures, SBOMs, attestations: manifests with a `subject`) carried with their
//! image: from an OCI layout, from registries with and without the referrers API, into both
//! kinds; every manifest read back with skopeo, the referrers API read with curl.

use crate::common::*;
use crate::registry_sources::raw;
use ocipush_testkit::fixtures::{write_oci_layout, ImageSpec, LayerCompression};
use ocipush_testkit::registry::{DockerRegistry, RegistryOptions};
use ocipush_testkit::skopeo::{self, ManifestView, SkopeoAuth};

/// What refers to an image travels with it: from an OCI layout (its `index.json` lists an SBOM
/// of the image and a signature of the SBOM) into docker-registry, which has no referrers API
/// (so they are listed under the `sha256-HEX` tag); from there with `--referrers` into
/// `ocipush serve`, which has the API; and back out of it into another docker-registry.
#[test]
fn referrers_travel_with_their_image_both_ways() {
    use crate::common::serve::Serve;
    use ocipush_testkit::fixtures::attach_referrer;

    let layout = tempfile::tempdir().unwrap();
    let image = write_oci_layout(
        layout.path(),
        &[(ImageSpec::sample(71), Some("v1"))],
        LayerCompression::Gzip,
    )
    .remove(0);
    let image_digest = image.manifest_digest.clone().unwrap();
    let image_size = image.manifest_bytes.as_ref().unwrap().len() as u64;
    let oci_manifest = "application/vnd.oci.image.manifest.v1+json";
    let sbom = attach_referrer(
        layout.path(),
        (oci_manifest, &image_digest, image_size),
        "application/spdx+json",
        "application/spdx+json",
        br#"{"spdxVersion":"SPDX-2.3","name":"sample"}"#,
    );
    let signature = attach_referrer(
        layout.path(),
        (oci_manifest, &sbom.digest, sbom.bytes.len() as u64),
        "application/vnd.dev.cosign.artifact.sig.v1+json",
        "application/vnd.dev.sigstore.bundle.v0.3+json",
        br#"{"signature":"not a real one"}"#,
    );
    let auth = SkopeoAuth::insecure();
    let fallback_tag = |digest: &str| digest.replace(':', "-");

    // 1. Layout -> docker-registry: the image by tag, the referrers by digest, listed under
    //    the fallback tags of their subjects.
    let first = DockerRegistry::start(RegistryOptions::default());
    let out = ocipush(
        &[
            "push",
            &layout.path().display().to_string(),
            &first.reference("team/app:v1"),
        ],
        None,
    );
    assert_eq!(pushed_digest(&out), image_digest);
    for (referrer, subject) in [(&sbom, &image_digest), (&signature, &sbom.digest)] {
        let by_digest = first.docker_ref(&format!("team/app@{}", referrer.digest));
        assert_eq!(raw(&by_digest, &auth), referrer.bytes);
        let listed = raw(
            &first.docker_ref(&format!("team/app:{}", fallback_tag(subject))),
            &auth,
        );
        let listed = ManifestView::parse(&listed);
        assert_eq!(
            listed.manifest_digests,
            std::slice::from_ref(&referrer.digest)
        );
    }

    // 2. docker-registry -> ocipush serve with --referrers: found through the fallback tags,
    //    written where the referrers API lists them.
    let root = tempfile::tempdir().unwrap();
    let serve = Serve::start(root.path(), &[]);
    let out = ocipush(
        &[
            "push",
            "--referrers",
            &format!("docker://{}", first.reference("team/app:v1")),
            &format!("{}/mirror/app:v1", serve.addr),
        ],
        None,
    );
    assert_eq!(pushed_digest(&out), image_digest, "{}", stderr(&out));
    for referrer in [&sbom, &signature] {
        let by_digest = format!("docker://{}/mirror/app@{}", serve.addr, referrer.digest);
        assert_eq!(raw(&by_digest, &auth), referrer.bytes);
    }
    let listed = referrers_api(&serve.addr, "mirror/app", &image_digest);
    assert_eq!(listed, std::slice::from_ref(&sbom.digest));
    let listed = referrers_api(&serve.addr, "mirror/app", &sbom.digest);
    assert_eq!(listed, std::slice::from_ref(&signature.digest));

    // 3. ocipush serve -> another docker-registry with --referrers: found through the API.
    let second = DockerRegistry::start(RegistryOptions::default());
    let out = ocipush(
        &[
            "push",
            "--referrers",
            &format!("docker://{}/mirror/app:v1", serve.addr),
            &second.reference("again/app:v1"),
        ],
        None,
    );
    assert_eq!(pushed_digest(&out), image_digest, "{}", stderr(&out));
    for (referrer, subject) in [(&sbom, &image_digest), (&signature, &sbom.digest)] {
        let by_digest = second.docker_ref(&format!("again/app@{}", referrer.digest));
        assert_eq!(raw(&by_digest, &auth), referrer.bytes);
        let listed = raw(
            &second.docker_ref(&format!("again/app:{}", fallback_tag(subject))),
            &auth,
        );
        assert_eq!(
            ManifestView::parse(&listed).manifest_digests,
            std::slice::from_ref(&referrer.digest)
        );
    }

    // Without --referrers, a registry source's referrers stay behind.
    let third = DockerRegistry::start(RegistryOptions::default());
    let out = ocipush(
        &[
            "push",
            &format!("docker://{}/mirror/app:v1", serve.addr),
            &third.reference("plain/app:v1"),
        ],
        None,
    );
    pushed_digest(&out);
    assert!(skopeo::try_inspect_raw(
        &third.docker_ref(&format!("plain/app@{}", sbom.digest)),
        &auth
    )
    .is_err());
}

/// The digests the referrers API of `ocipush serve` lists for `subject`, read with curl.
fn referrers_api(addr: &str, repository: &str, subject: &str) -> Vec<String> {
    let out = std::process::Command::new("curl")
        .args([
            "-sf",
            &format!("http://{addr}/v2/{repository}/referrers/{subject}"),
        ])
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    ManifestView::parse(&out.stdout).manifest_digests
}
