//! Pushing with credentials kept where docker and podman keep them — docker's config.json
//! (`auths` under docker's key spellings, `credHelpers`, `credsStore` through a fake helper on
//! PATH), containers' auth.json (`REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR`) — in the documented
//! precedence, and TLS trust from a docker-style `certs.d` folder, against docker-registry
//! with htpasswd + TLS. Every push is read back with skopeo.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Output;

use crate::common::creds::*;
use crate::common::*;
use ocipush_testkit::fixtures::{write_oci_layout, ImageSpec, LayerCompression};
use ocipush_testkit::pki::TestPki;
use ocipush_testkit::registry::{DockerRegistry, RegistryOptions};
use ocipush_testkit::skopeo;

const USER: &str = "alice";
const PASSWORD: &str = "st0red-Pw";

struct Setup {
    registry: DockerRegistry,
    ca: String,
    source: String,
    digest: String,
    tmp: tempfile::TempDir,
}

fn setup(seed: u64) -> Setup {
    let pki = TestPki::localhost();
    let registry = DockerRegistry::start(RegistryOptions {
        tls: Some(&pki),
        htpasswd: Some((USER, PASSWORD)),
        ..Default::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let expected = write_oci_layout(
        &layout,
        &[(ImageSpec::sample(seed), Some("v1"))],
        LayerCompression::Gzip,
    );
    Setup {
        ca: registry.ca_path().unwrap().display().to_string(),
        source: layout.display().to_string(),
        digest: expected[0].manifest_digest.clone().unwrap(),
        registry,
        tmp,
    }
}

impl Setup {
    fn push(&self, repo: &str, envs: &[(&str, &OsStr)]) -> Output {
        let dest = self.registry.reference(&format!("{repo}:v1"));
        ocipush_env(
            &["push", "--ca-file", &self.ca, &self.source, &dest],
            None,
            envs,
        )
    }

    /// Asserts the push worked and skopeo reads the same manifest back.
    fn assert_pushed(&self, out: &Output, repo: &str) {
        assert_eq!(pushed_digest(out), self.digest, "{}", stderr(out));
        let raw = skopeo::inspect_raw(
            &self.registry.docker_ref(&format!("{repo}:v1")),
            &self.registry.skopeo_auth(),
        );
        assert_eq!(sha256_hex(&raw), self.digest);
    }

    fn dir(&self, name: &str) -> std::path::PathBuf {
        self.tmp.path().join(name)
    }
}

fn os(p: &Path) -> &OsStr {
    p.as_os_str()
}

#[test]
fn docker_config_auths_under_every_key_spelling() {
    let s = setup(41);
    let host = s.registry.host_port();
    for (i, key) in [
        host.clone(),
        format!("https://{host}"),
        format!("http://{host}/v1/"),
    ]
    .iter()
    .enumerate()
    {
        let config = docker_config(
            &s.dir(&format!("docker{i}")),
            &[(key.as_str(), USER, PASSWORD)],
            "",
        );
        let out = s.push(&format!("cfg/k{i}"), &[("DOCKER_CONFIG", os(&config))]);
        s.assert_pushed(&out, &format!("cfg/k{i}"));
    }

    // An entry for another registry is not used: anonymous, refused, with a login hint.
    let config = docker_config(&s.dir("other"), &[("127.0.0.1:1", USER, PASSWORD)], "");
    let out = s.push("cfg/other", &[("DOCKER_CONFIG", os(&config))]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("ocipush login"), "{}", stderr(&out));

    // ~/.docker/config.json is the default when DOCKER_CONFIG is unset.
    let home = s.dir("home");
    docker_config(
        &home.join(".docker"),
        &[(host.as_str(), USER, PASSWORD)],
        "",
    );
    let out = s.push("cfg/home", &[("HOME", os(&home))]);
    s.assert_pushed(&out, "cfg/home");
}

#[test]
fn credential_helpers_from_cred_helpers_and_creds_store() {
    let s = setup(42);
    let host = s.registry.host_port();
    let helper = FakeHelper::install(&s.dir("h"), "ocitest");
    helper.seed(host.as_str(), USER, PASSWORD);
    let path = path_with(&helper.bin);

    let config = docker_config(
        &s.dir("helpers"),
        &[],
        &format!(r#""credHelpers":{{"{host}":"ocitest"}}"#),
    );
    let out = s.push(
        "helper/a",
        &[("DOCKER_CONFIG", os(&config)), ("PATH", &path)],
    );
    s.assert_pushed(&out, "helper/a");
    // The helper was asked with docker's key for the registry on stdin.
    assert!(
        helper.log().lines().any(|l| l == format!("get {host}")),
        "{}",
        helper.log()
    );

    let config = docker_config(&s.dir("store"), &[], r#""credsStore":"ocitest""#);
    let out = s.push(
        "helper/b",
        &[("DOCKER_CONFIG", os(&config)), ("PATH", &path)],
    );
    s.assert_pushed(&out, "helper/b");

    // A `credsStore` whose helper is not installed (a config copied from Docker Desktop) is
    // reported and skipped; the `auths` entry still works.
    let config = docker_config(
        &s.dir("absent"),
        &[(host.as_str(), USER, PASSWORD)],
        r#""credsStore":"ocipush-test-absent""#,
    );
    let out = s.push("helper/c", &[("DOCKER_CONFIG", os(&config))]);
    s.assert_pushed(&out, "helper/c");
    assert!(
        stderr(&out).contains("docker-credential-ocipush-test-absent is not installed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn containers_auth_json_from_registry_auth_file_and_xdg_runtime_dir() {
    let s = setup(43);
    let host = s.registry.host_port();
    let auth_json = |path: &Path, key: &str, password: &str| {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            path,
            format!(
                r#"{{"auths":{{"{key}":{{"auth":"{}"}}}}}}"#,
                basic_auth(USER, password)
            ),
        )
        .unwrap();
    };
    // A repository-scoped key (podman's `host/namespace`) beats the registry-wide one.
    let file = s.dir("auth.json");
    std::fs::write(
        &file,
        format!(
            r#"{{"auths":{{"{host}":{{"auth":"{}"}},"{host}/team":{{"auth":"{}"}}}}}}"#,
            basic_auth(USER, "wrong"),
            basic_auth(USER, PASSWORD)
        ),
    )
    .unwrap();
    let out = s.push("team/app", &[("REGISTRY_AUTH_FILE", os(&file))]);
    s.assert_pushed(&out, "team/app");
    let out = s.push("other/app", &[("REGISTRY_AUTH_FILE", os(&file))]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    let run = s.dir("run");
    auth_json(&run.join("containers/auth.json"), &host, PASSWORD);
    let out = s.push("xdg/app", &[("XDG_RUNTIME_DIR", os(&run))]);
    s.assert_pushed(&out, "xdg/app");

    // ~/.config/containers/auth.json when there is no runtime directory.
    let home = s.dir("home");
    auth_json(&home.join(".config/containers/auth.json"), &host, PASSWORD);
    let out = s.push("home/app", &[("HOME", os(&home))]);
    s.assert_pushed(&out, "home/app");
}

#[test]
fn precedence_flags_env_docker_config_auth_json() {
    let s = setup(44);
    let host = s.registry.host_port();
    let good = docker_config(&s.dir("good"), &[(host.as_str(), USER, PASSWORD)], "");
    let bad = docker_config(&s.dir("bad"), &[(host.as_str(), USER, "wrong-pw")], "");
    let auth_good = s.dir("auth-good.json");
    std::fs::write(
        &auth_good,
        format!(
            r#"{{"auths":{{"{host}":{{"auth":"{}"}}}}}}"#,
            basic_auth(USER, PASSWORD)
        ),
    )
    .unwrap();

    // Environment beats docker's config.
    let out = s.push(
        "p/env",
        &[
            ("DOCKER_CONFIG", os(&bad)),
            ("OCIPUSH_USERNAME", OsStr::new(USER)),
            ("OCIPUSH_PASSWORD", OsStr::new(PASSWORD)),
        ],
    );
    s.assert_pushed(&out, "p/env");

    // Flags beat docker's config: a wrong --password-stdin fails although the config is right.
    let dest = s.registry.reference("p/flags:v1");
    let out = ocipush_env(
        &[
            "push",
            "--ca-file",
            &s.ca,
            "-u",
            USER,
            "--password-stdin",
            &s.source,
            &dest,
        ],
        Some("wrong-pw"),
        &[("DOCKER_CONFIG", os(&good))],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    // docker's config beats auth.json: its wrong entry is used, so the push fails...
    let out = s.push(
        "p/docker",
        &[
            ("DOCKER_CONFIG", os(&bad)),
            ("REGISTRY_AUTH_FILE", os(&auth_good)),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // ...and without a docker entry for the registry, auth.json is next.
    let empty = docker_config(&s.dir("empty"), &[], "");
    let out = s.push(
        "p/auth",
        &[
            ("DOCKER_CONFIG", os(&empty)),
            ("REGISTRY_AUTH_FILE", os(&auth_good)),
        ],
    );
    s.assert_pushed(&out, "p/auth");

    // -u alone takes the stored password of that same user.
    let out = ocipush_env(
        &["push", "--ca-file", &s.ca, "-u", USER, &s.source, &dest],
        None,
        &[("DOCKER_CONFIG", os(&good))],
    );
    s.assert_pushed(&out, "p/flags");
    let out = ocipush_env(
        &["push", "--ca-file", &s.ca, "-u", "bob", &s.source, &dest],
        None,
        &[("DOCKER_CONFIG", os(&good))],
    );
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
}

#[test]
fn certs_d_folder_trusts_the_registry_ca() {
    let s = setup(45);
    let envs_creds = [
        ("OCIPUSH_USERNAME", OsStr::new(USER)),
        ("OCIPUSH_PASSWORD", OsStr::new(PASSWORD)),
    ];
    let dest = s.registry.reference("certs/app:v1");
    // No CA anywhere: the certificate is not trusted.
    let out = ocipush_env(&["push", &s.source, &dest], None, &envs_creds);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("certs.d"), "{}", stderr(&out));

    // certs.d/HOST:PORT/ca.crt, as docker reads it.
    let certs_d = s.dir("certs.d");
    let host_dir = certs_d.join(s.registry.host_port());
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::copy(&s.ca, host_dir.join("ca.crt")).unwrap();
    let mut envs = envs_creds.to_vec();
    envs.push(("OCIPUSH_CERTS_D", os(&certs_d)));
    let out = ocipush_env(&["push", &s.source, &dest], None, &envs);
    s.assert_pushed(&out, "certs/app");

    // A client key without its certificate is a clear error, as with docker.
    std::fs::write(host_dir.join("client.key"), "x").unwrap();
    let out = ocipush_env(&["push", &s.source, &dest], None, &envs);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("client key without its certificate client.cert"),
        "{}",
        stderr(&out)
    );
}
