//! `ocipush login` / `logout` round trips: credentials are checked against the registry before
//! anything is stored (htpasswd + TLS, and a token server), stored where docker keeps them
//! (`auths` in `$DOCKER_CONFIG/config.json`, or the fake credential helper its `credsStore`
//! names), found again by `push`, and removed by `logout`.

use std::ffi::OsStr;
use std::path::Path;

use crate::common::creds::*;
use crate::common::*;
use ocipush_testkit::fixtures::{write_oci_layout, ImageSpec, LayerCompression};
use ocipush_testkit::pki::TestPki;
use ocipush_testkit::registry::{DockerRegistry, RegistryOptions, TokenAuthOptions};

const USER: &str = "alice";
const PASSWORD: &str = "l0gin-Pw";

fn layout(dir: &Path, seed: u64) -> String {
    write_oci_layout(
        dir,
        &[(ImageSpec::sample(seed), Some("v1"))],
        LayerCompression::Gzip,
    );
    dir.display().to_string()
}

fn config_json(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap()
}

#[test]
fn login_checks_stores_in_auths_and_logout_removes() {
    let pki = TestPki::localhost();
    let registry = DockerRegistry::start(RegistryOptions {
        tls: Some(&pki),
        htpasswd: Some((USER, PASSWORD)),
        ..Default::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let source = layout(&tmp.path().join("layout"), 51);
    let docker = tmp.path().join("docker");
    let env = [("DOCKER_CONFIG", docker.as_os_str())];
    let host = registry.host_port();
    let ca = registry.ca_path().unwrap().display().to_string();
    let login = |password: &str| {
        ocipush_env(
            &[
                "login",
                "--ca-file",
                &ca,
                "-u",
                USER,
                "--password-stdin",
                &host,
            ],
            Some(password),
            &env,
        )
    };

    // A wrong password is refused by the registry, and nothing is written.
    let out = login("wrong-pw");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!docker.join("config.json").exists());

    let out = login(PASSWORD);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "Login Succeeded");
    // As docker warns: no helper, so the password sits base64-encoded in the file.
    assert!(
        stderr(&out).contains("stored unencrypted (base64)"),
        "{}",
        stderr(&out)
    );
    let config = config_json(&docker);
    assert_eq!(config["auths"][&host]["auth"], basic_auth(USER, PASSWORD));
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(docker.join("config.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "config.json must be private: {mode:o}");
    }

    // push finds the stored credentials.
    let dest = registry.reference("login/app:v1");
    let push = || ocipush_env(&["push", "--ca-file", &ca, &source, &dest], None, &env);
    pushed_digest(&push());

    let out = ocipush_env(&["logout", &host], None, &env);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Removing login credentials"));
    assert!(config_json(&docker)["auths"].get(&host).is_none());
    let out = push();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    let out = ocipush_env(&["logout", &host], None, &env);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("Not logged in"), "{}", stderr(&out));

    // Without a terminal and without a password there is nothing to log in with.
    let out = ocipush_env(&["login", "--ca-file", &ca, "-u", USER, &host], None, &env);
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--password-stdin"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn login_and_logout_through_the_configured_helper() {
    let pki = TestPki::localhost();
    let registry = DockerRegistry::start(RegistryOptions {
        tls: Some(&pki),
        htpasswd: Some((USER, PASSWORD)),
        ..Default::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let source = layout(&tmp.path().join("layout"), 52);
    let helper = FakeHelper::install(tmp.path(), "ocitest");
    let docker = docker_config(&tmp.path().join("docker"), &[], r#""credsStore":"ocitest""#);
    let path = path_with(&helper.bin);
    let env = [
        ("DOCKER_CONFIG", docker.as_os_str()),
        ("PATH", path.as_os_str()),
    ];
    let host = registry.host_port();
    let ca = registry.ca_path().unwrap().display().to_string();

    let out = ocipush_env(
        &[
            "login",
            "--ca-file",
            &ca,
            "-u",
            USER,
            "--password-stdin",
            &host,
        ],
        Some(PASSWORD),
        &env,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let stored = helper
        .stored()
        .expect("the helper was given the credentials");
    assert_eq!(stored["ServerURL"], host.as_str());
    assert_eq!(stored["Username"], USER);
    assert_eq!(stored["Secret"], PASSWORD);
    // docker leaves an empty entry when a helper holds the secret; no password in the file.
    let config = config_json(&docker);
    assert_eq!(config["auths"][&host], serde_json::json!({}));
    assert_eq!(config["credsStore"], "ocitest");
    assert!(!stderr(&out).contains("unencrypted"), "{}", stderr(&out));
    assert!(!std::fs::read_to_string(docker.join("config.json"))
        .unwrap()
        .contains(&basic_auth(USER, PASSWORD)));

    let dest = registry.reference("helper/app:v1");
    pushed_digest(&ocipush_env(
        &["push", "--ca-file", &ca, &source, &dest],
        None,
        &env,
    ));

    let out = ocipush_env(&["logout", &host], None, &env);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(helper.stored().is_none(), "{}", helper.log());
    assert!(
        helper.log().contains(&format!("erase {host}")),
        "{}",
        helper.log()
    );
}

#[test]
fn login_against_a_token_server() {
    let registry = DockerRegistry::start(RegistryOptions {
        token_auth: Some(TokenAuthOptions::users(&[(USER, PASSWORD)])),
        ..Default::default()
    });
    let tokens = registry.token_server().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let source = layout(&tmp.path().join("layout"), 53);
    let docker = tmp.path().join("docker");
    let env: [(&str, &OsStr); 1] = [("DOCKER_CONFIG", docker.as_os_str())];
    let host = registry.host_port();
    let login = |password: &str| {
        ocipush_env(
            &[
                "login",
                "--plain-http",
                "-u",
                USER,
                "--password-stdin",
                &host,
            ],
            Some(password),
            &env,
        )
    };

    let out = login("wrong-pw");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("token server rejected the credentials of `alice`"),
        "{}",
        stderr(&out)
    );
    assert!(!docker.join("config.json").exists());

    let out = login(PASSWORD);
    assert!(out.status.success(), "{}", stderr(&out));
    // The check fetched a token as alice (asking for a refresh token, as docker does).
    let checked = tokens
        .requests()
        .into_iter()
        .find(|r| r.authenticated && r.status == 200)
        .unwrap_or_else(|| panic!("no authenticated token request: {:#?}", tokens.requests()));
    assert_eq!(checked.username.as_deref(), Some(USER));
    assert!(
        checked.path_and_query.contains("offline_token=true"),
        "{}",
        checked.path_and_query
    );
    assert_eq!(
        config_json(&docker)["auths"][&host]["auth"],
        basic_auth(USER, PASSWORD)
    );

    tokens.clear_requests();
    let dest = registry.reference("team/app:v1");
    pushed_digest(&ocipush_env(
        &["push", "--plain-http", &source, &dest],
        None,
        &env,
    ));
    assert!(
        tokens
            .requests()
            .iter()
            .any(|r| r.asked_for("repository:team/app:pull,push") && r.authenticated),
        "{:#?}",
        tokens.requests()
    );
}
