//! No password, token or `Authorization` value ever reaches ocipush's output: pushes and logins
//! against a token-auth registry at every verbosity (`-v`, `-vv`, and `OCIPUSH_LOG=trace`),
//! succeeding and failing, with credentials from flags, the environment, docker's config
//! (password and identity token), and the errors that follow wrong ones.
//! (`Debug` of the settings types is covered by the binary's unit tests.)

use std::ffi::OsStr;
use std::process::Output;

use crate::common::*;
use base64::Engine as _;
use ocipush_testkit::fixtures::{write_oci_layout, ImageSpec, LayerCompression};
use ocipush_testkit::registry::{DockerRegistry, RegistryOptions, TokenAuthOptions};

const USER: &str = "alice";
const PASSWORD: &str = "Pw-S3cret-XyZ";
const WRONG: &str = "Wr0ng-S3cret-QwE";
const IDENTITY: &str = "IdTok-S3cret-RtY";

/// Fails if `out` shows any secret: the passwords, their Basic encodings, a JWT, or a header.
fn assert_clean(out: &Output, what: &str) {
    let text = format!("{}\n{}", stdout(out), stderr(out));
    let b64 = |p: &str| base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{p}"));
    for secret in [PASSWORD, WRONG, IDENTITY] {
        assert!(!text.contains(secret), "{what}: `{secret}` leaked:\n{text}");
        assert!(
            !text.contains(&b64(secret)),
            "{what}: basic auth leaked:\n{text}"
        );
    }
    // Distribution tokens are JWTs: base64url JSON, starting `eyJ`.
    assert!(!text.contains("eyJ"), "{what}: a token leaked:\n{text}");
    let lower = text.to_ascii_lowercase();
    for marker in ["bearer ey", "basic ", "authorization: "] {
        assert!(
            !lower.contains(marker),
            "{what}: `{marker}` in output:\n{text}"
        );
    }
}

#[test]
fn no_secret_in_output_at_any_verbosity() {
    let registry = DockerRegistry::start(RegistryOptions {
        token_auth: Some(TokenAuthOptions::users(&[
            (USER, PASSWORD),
            ("idt", IDENTITY),
        ])),
        ..Default::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    write_oci_layout(
        &layout,
        &[(ImageSpec::sample(71), Some("v1"))],
        LayerCompression::Gzip,
    );
    let source = layout.display().to_string();
    let host = registry.host_port();
    let dest = registry.reference("secret/app:v1");
    let trace = [("OCIPUSH_LOG", OsStr::new("trace"))];

    let runs = [
        (&[][..], false),
        (&["-v"][..], false),
        (&["-vv"][..], false),
        (&["-vv"][..], true),
    ];
    for (i, (verbosity, traced)) in runs.into_iter().enumerate() {
        let envs: &[(&str, &OsStr)] = if traced { &trace } else { &[] };
        let run = |extra: &[&str], stdin: Option<&str>, more: &[(&str, &OsStr)]| {
            let mut args = vec!["push", "--plain-http"];
            args.extend_from_slice(verbosity);
            args.extend_from_slice(extra);
            args.extend_from_slice(&[source.as_str(), dest.as_str()]);
            let mut all = envs.to_vec();
            all.extend_from_slice(more);
            ocipush_env(&args, stdin, &all)
        };
        let label = format!("{verbosity:?} trace={traced}");

        let out = run(&["-u", USER, "--password-stdin"], Some(PASSWORD), &[]);
        pushed_digest(&out);
        assert_clean(&out, &format!("{label} stdin"));
        if !verbosity.is_empty() {
            // The logs were on, and they did talk about the token.
            assert!(
                stderr(&out).contains("got a bearer token"),
                "{}",
                stderr(&out)
            );
        }

        let out = run(&["-u", USER, "--password-stdin"], Some(WRONG), &[]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert_clean(&out, &format!("{label} wrong password"));

        let out = run(
            &[],
            None,
            &[
                ("OCIPUSH_USERNAME", OsStr::new(USER)),
                ("OCIPUSH_PASSWORD", OsStr::new(PASSWORD)),
            ],
        );
        pushed_digest(&out);
        assert_clean(&out, &format!("{label} env"));

        let out = run(&["-u", USER, "-p", PASSWORD], None, &[]);
        pushed_digest(&out);
        assert!(stderr(&out).contains("visible to other users"));
        assert_clean(&out, &format!("{label} -p"));

        // An identity token from docker's config: the token server refuses the OAuth2 POST
        // (405), and the GET fallback sends it as the password of its user.
        let docker = tmp.path().join(format!("docker{i}"));
        std::fs::create_dir_all(&docker).unwrap();
        std::fs::write(
            docker.join("config.json"),
            format!(
                r#"{{"auths":{{"{host}":{{"auth":"{}","identitytoken":"{IDENTITY}"}}}}}}"#,
                base64::engine::general_purpose::STANDARD.encode("idt:")
            ),
        )
        .unwrap();
        let out = run(&[], None, &[("DOCKER_CONFIG", docker.as_os_str())]);
        pushed_digest(&out);
        assert_clean(&out, &format!("{label} identity token"));

        let out = ocipush_env(
            &[
                "login",
                "--plain-http",
                "-u",
                USER,
                "--password-stdin",
                &host,
            ],
            Some(WRONG),
            &[("DOCKER_CONFIG", docker.as_os_str())],
        );
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert_clean(&out, &format!("{label} login"));
    }
    // The identity-token pushes went POST (refused) then GET as `idt`.
    let requests = registry.token_server().unwrap().requests();
    assert!(
        requests
            .iter()
            .any(|r| r.method == "POST" && r.status == 405),
        "{requests:#?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.method == "GET" && r.username.as_deref() == Some("idt") && r.authenticated),
        "{requests:#?}"
    );
}
