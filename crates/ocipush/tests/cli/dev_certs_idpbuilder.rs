//! Local development platforms: a self-signed `CA:TRUE` server certificate (what
//! `openssl req -x509` and idpbuilder hand out) trusted with `--ca-file`, and the idpbuilder
//! profile — `-r idpbuilder` reaching `gitea.cnoe.localtest.me:8443/giteaadmin` with the
//! password from a fake `idpbuilder get secrets` — through an HTTPS proxy from the environment
//! that tunnels that name to a docker-registry on loopback.

use std::ffi::OsStr;
use std::net::SocketAddr;

use crate::common::creds::*;
use crate::common::proxy::ConnectProxy;
use crate::common::*;
use ocipush_testkit::fixtures::{write_oci_layout, ImageSpec, LayerCompression};
use ocipush_testkit::pki::self_signed_ca_true;
use ocipush_testkit::registry::{DockerRegistry, RegistryOptions};
use ocipush_testkit::skopeo::{self, SkopeoAuth};

const GITEA: &str = "gitea.cnoe.localtest.me";

#[test]
fn self_signed_ca_true_certificate_given_with_ca_file() {
    let pki = self_signed_ca_true(&["localhost", "127.0.0.1"]);
    let registry = DockerRegistry::start(RegistryOptions {
        tls: Some(&pki),
        htpasswd: Some(("dev", "dev-pw")),
        ..Default::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let expected = write_oci_layout(
        &layout,
        &[(ImageSpec::sample(61), Some("v1"))],
        LayerCompression::Gzip,
    );
    let source = layout.display().to_string();
    let dest = registry.reference("dev/app:v1");
    let creds = [
        ("OCIPUSH_USERNAME", OsStr::new("dev")),
        ("OCIPUSH_PASSWORD", OsStr::new("dev-pw")),
    ];
    let cert = registry.ca_path().unwrap().display().to_string();

    let out = ocipush_env(&["push", "--ca-file", &cert, &source, &dest], None, &creds);
    assert_eq!(
        Some(pushed_digest(&out)),
        expected[0].manifest_digest,
        "{}",
        stderr(&out)
    );
    let raw = skopeo::inspect_raw(&registry.docker_ref("dev/app:v1"), &registry.skopeo_auth());
    assert_eq!(Some(sha256_hex(&raw)), expected[0].manifest_digest);

    // Not trusted without it...
    let out = ocipush_env(&["push", &source, &dest], None, &creds);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    // ...nor with another self-signed CA:TRUE certificate for the same names.
    let other = self_signed_ca_true(&["localhost", "127.0.0.1"]);
    let other_path = tmp.path().join("other.pem");
    std::fs::write(&other_path, &other.ca_cert_pem).unwrap();
    let out = ocipush_env(
        &[
            "push",
            "--ca-file",
            other_path.to_str().unwrap(),
            &source,
            &dest,
        ],
        None,
        &creds,
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}

#[test]
fn idpbuilder_profile_through_an_https_proxy() {
    let pki = self_signed_ca_true(&[GITEA, "127.0.0.1"]);
    let registry = DockerRegistry::start(RegistryOptions {
        tls: Some(&pki),
        htpasswd: Some(("giteaAdmin", "idp-Secret-pw")),
        ..Default::default()
    });
    let upstream: SocketAddr = registry.host_port().parse().unwrap();
    let proxy = ConnectProxy::start(upstream);
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let expected = write_oci_layout(
        &layout,
        &[(ImageSpec::sample(62), Some("v1"))],
        LayerCompression::Gzip,
    );
    let source = layout.display().to_string();
    let cert = registry.ca_path().unwrap().display().to_string();
    let bin = fake_idpbuilder(
        tmp.path(),
        r#"[{"name":"argocd-initial-admin-secret","namespace":"argocd","username":"admin","password":"argo"},
            {"name":"gitea-credential","namespace":"gitea","username":"giteaAdmin","password":"idp-Secret-pw","token":"t"}]"#,
    );
    let path = path_with(&bin);
    let proxy_url = proxy.url();
    let env = [
        ("PATH", path.as_os_str()),
        ("HTTPS_PROXY", OsStr::new(&proxy_url)),
    ];

    let out = ocipush_env(
        &[
            "push",
            "-r",
            "idpbuilder",
            "-t",
            "dev",
            "--ca-file",
            &cert,
            &source,
        ],
        None,
        &env,
    );
    assert_eq!(
        Some(pushed_digest(&out)),
        expected[0].manifest_digest,
        "{}",
        stderr(&out)
    );
    let line = stdout(&out);
    assert!(
        line.starts_with(&format!("{GITEA}:8443/giteaadmin/")),
        "{line}"
    );
    // Every connection went through the proxy, to the name (nothing resolved it locally).
    let targets = proxy.targets();
    assert!(!targets.is_empty());
    assert!(
        targets.iter().all(|t| t == &format!("{GITEA}:8443")),
        "{targets:?}"
    );
    assert!(!stderr(&out).contains("idp-Secret-pw"));

    // The image is where the profile said, read back directly.
    let reference = line.trim().split('@').next().unwrap().to_string();
    let path_in_registry = reference.split_once('/').unwrap().1;
    let raw = skopeo::inspect_raw(
        &registry.docker_ref(path_in_registry),
        &SkopeoAuth::tls(&registry.ca_dir().unwrap()).with_creds("giteaAdmin", "idp-Secret-pw"),
    );
    assert_eq!(Some(sha256_hex(&raw)), expected[0].manifest_digest);

    // Without idpbuilder on PATH and no other credentials: a clear hint, before any upload.
    let empty_bin = tmp.path().join("empty-bin");
    std::fs::create_dir_all(&empty_bin).unwrap();
    let out = ocipush_env(
        &["push", "-r", "idpbuilder", "--ca-file", &cert, &source],
        None,
        &[
            ("PATH", empty_bin.as_os_str()),
            ("HTTPS_PROXY", OsStr::new(&proxy_url)),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("idpbuilder is not on PATH")
            && stderr(&out).contains("idpbuilder get secrets -p gitea"),
        "{}",
        stderr(&out)
    );

    // The password alone (idpbuilder's variable, as the README says): the Gitea admin's name
    // fills in the user.
    let out = ocipush_env(
        &[
            "push",
            "-r",
            "idpbuilder",
            "-t",
            "pw-only",
            "--ca-file",
            &cert,
            &source,
        ],
        None,
        &[
            ("PATH", empty_bin.as_os_str()),
            ("HTTPS_PROXY", OsStr::new(&proxy_url)),
            ("IDPBUILDER_REGISTRY_PASSWORD", OsStr::new("idp-Secret-pw")),
        ],
    );
    assert_eq!(
        Some(pushed_digest(&out)),
        expected[0].manifest_digest,
        "{}",
        stderr(&out)
    );

    // `login idpbuilder`: with nothing to go on, the hint says how to give the password (not to
    // run `ocipush login` with the Gitea address, which is this command again); with the
    // password alone, the user is idpbuilder's admin.
    let docker = tmp.path().join("docker");
    let login_env = [
        ("PATH", empty_bin.as_os_str()),
        ("HTTPS_PROXY", OsStr::new(&proxy_url)),
        ("DOCKER_CONFIG", docker.as_os_str()),
    ];
    let out = ocipush_env(
        &["login", "--ca-file", &cert, "idpbuilder"],
        None,
        &login_env,
    );
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("ocipush login idpbuilder --password-stdin"),
        "{err}"
    );
    assert!(!err.contains("ocipush login gitea.cnoe"), "{err}");
    let out = ocipush_env(
        &[
            "login",
            "--ca-file",
            &cert,
            "--password-stdin",
            "idpbuilder",
        ],
        Some("idp-Secret-pw\n"),
        &login_env,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "Login Succeeded");
}
