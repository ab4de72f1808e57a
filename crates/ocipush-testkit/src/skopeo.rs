//! skopeo wrappers: inspect and copy images independently of ocipush, to cross-check it.
//!
//! Every call runs skopeo 1.9+ isolated from the host's container configuration: `HOME`,
//! `XDG_RUNTIME_DIR`, `XDG_CONFIG_HOME` and `DOCKER_CONFIG` point into a fresh temporary
//! directory with an empty `auth.json`, `CONTAINERS_REGISTRIES_CONF` is an empty file,
//! signature policy checks are off (`--insecure-policy`) and `--registries.d` is empty. So
//! credentials come only from [`SkopeoAuth`], and references must be fully qualified
//! (`docker://127.0.0.1:PORT/repo:tag`, `oci:DIR:REF`, `docker-archive:PATH`, ...).
//! Failures panic with skopeo's stderr; the `try_` variants return it instead.

use crate::digest::sha256_digest;
use crate::tools::require_tool;
use serde_json::Value;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// How skopeo reaches a `docker://` registry.
#[derive(Clone, Default)]
pub struct SkopeoAuth {
    /// Require HTTPS and verify certificates; `false` also allows plain HTTP.
    pub tls_verify: bool,
    /// A directory of `*.crt` CA files (and nothing else: a `*.key` means a client key).
    pub cert_dir: Option<PathBuf>,
    /// Username and password.
    pub creds: Option<(String, String)>,
}

impl std::fmt::Debug for SkopeoAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SkopeoAuth")
            .field("tls_verify", &self.tls_verify)
            .field("cert_dir", &self.cert_dir)
            .field(
                "creds",
                &self.creds.as_ref().map(|(u, _)| (u, "<redacted>")),
            )
            .finish()
    }
}

impl SkopeoAuth {
    /// Plain HTTP (or unverified TLS), anonymous.
    pub fn insecure() -> Self {
        Self::default()
    }

    /// Verified TLS trusting the CAs in `cert_dir`, anonymous.
    pub fn tls(cert_dir: &Path) -> Self {
        Self {
            tls_verify: true,
            cert_dir: Some(cert_dir.to_path_buf()),
            creds: None,
        }
    }

    /// The same with credentials.
    pub fn with_creds(mut self, user: &str, password: &str) -> Self {
        self.creds = Some((user.to_string(), password.to_string()));
        self
    }

    /// Flags for one side (`prefix` is "", "src-" or "dest-").
    fn flags(&self, prefix: &str) -> Vec<OsString> {
        let mut args: Vec<OsString> =
            vec![format!("--{prefix}tls-verify={}", self.tls_verify).into()];
        if let Some(dir) = &self.cert_dir {
            args.push(format!("--{prefix}cert-dir").into());
            args.push(dir.into());
        }
        match &self.creds {
            Some((user, password)) => {
                args.push(format!("--{prefix}creds").into());
                args.push(format!("{user}:{password}").into());
            }
            None => args.push(format!("--{prefix}no-creds").into()),
        }
        args
    }
}

fn side_flags(reference: &str, auth: &SkopeoAuth, prefix: &str) -> Vec<OsString> {
    if reference.starts_with("docker://") {
        auth.flags(prefix)
    } else {
        Vec::new()
    }
}

/// Runs skopeo with `args` after the isolating global flags; stdout, or stderr on failure.
pub fn try_run(args: &[OsString]) -> Result<Vec<u8>, String> {
    let skopeo = require_tool("skopeo", "skopeo");
    let sandbox = tempfile::Builder::new()
        .prefix("ocipush-skopeo-")
        .tempdir()
        .expect("creating a skopeo sandbox");
    let root = sandbox.path();
    for dir in ["home", "run", "config", "docker", "registries.d", "tmp"] {
        fs::create_dir_all(root.join(dir)).expect("creating a skopeo sandbox dir");
    }
    fs::write(root.join("run/auth.json"), r#"{"auths":{}}"#).expect("writing auth.json");
    fs::write(root.join("registries.conf"), "").expect("writing registries.conf");
    let mut command = Command::new(&skopeo);
    command
        .env("HOME", root.join("home"))
        .env("XDG_RUNTIME_DIR", root.join("run"))
        .env("XDG_CONFIG_HOME", root.join("config"))
        .env("DOCKER_CONFIG", root.join("docker"))
        .env("REGISTRY_AUTH_FILE", root.join("run/auth.json"))
        .env("CONTAINERS_REGISTRIES_CONF", root.join("registries.conf"))
        .env("TMPDIR", root.join("tmp"))
        .arg("--insecure-policy")
        .arg("--registries.d")
        .arg(root.join("registries.d"))
        .args(args);
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", skopeo.display()));
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(format!(
            "skopeo {} failed ({}): {}",
            redact_args(args),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Like [`try_run`], panicking with skopeo's stderr on failure.
pub fn run(args: &[OsString]) -> Vec<u8> {
    try_run(args).unwrap_or_else(|e| panic!("{e}"))
}

fn redact_args(args: &[OsString]) -> String {
    let mut out = Vec::new();
    let mut hide_next = false;
    for arg in args {
        let arg = arg.to_string_lossy();
        if hide_next {
            let user = arg.split(':').next().unwrap_or("");
            out.push(format!("{user}:<redacted>"));
        } else {
            out.push(arg.into_owned());
        }
        hide_next = !hide_next
            && out
                .last()
                .is_some_and(|a| matches!(a.as_str(), "--creds" | "--src-creds" | "--dest-creds"));
    }
    out.join(" ")
}

fn inspect_args(reference: &str, auth: &SkopeoAuth, config: bool) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["inspect".into(), "--raw".into()];
    if config {
        args.push("--config".into());
    }
    args.extend(side_flags(reference, auth, ""));
    args.push(reference.into());
    args
}

/// The manifest (or index) bytes exactly as the source serves them (`skopeo inspect --raw`).
pub fn inspect_raw(reference: &str, auth: &SkopeoAuth) -> Vec<u8> {
    run(&inspect_args(reference, auth, false))
}

/// [`inspect_raw`], returning skopeo's error instead of panicking (e.g. to assert absence).
pub fn try_inspect_raw(reference: &str, auth: &SkopeoAuth) -> Result<Vec<u8>, String> {
    try_run(&inspect_args(reference, auth, false))
}

/// The image config bytes (`skopeo inspect --config --raw`); for an index, the config of the
/// manifest matching this machine's platform.
pub fn inspect_config(reference: &str, auth: &SkopeoAuth) -> Vec<u8> {
    run(&inspect_args(reference, auth, true))
}

/// skopeo's own summary (`skopeo inspect --no-tags`): `Digest`, `Layers`, `Architecture`, ...
pub fn inspect(reference: &str, auth: &SkopeoAuth) -> Value {
    let mut args: Vec<OsString> = vec!["inspect".into(), "--no-tags".into()];
    args.extend(side_flags(reference, auth, ""));
    args.push(reference.into());
    serde_json::from_slice(&run(&args)).expect("skopeo inspect prints JSON")
}

/// `skopeo copy [extra...] src dest` with each side's auth applied to `docker://` references.
pub fn try_copy(
    src: &str,
    dest: &str,
    src_auth: &SkopeoAuth,
    dest_auth: &SkopeoAuth,
    extra: &[&str],
) -> Result<(), String> {
    let mut args: Vec<OsString> = vec!["copy".into(), "--quiet".into()];
    args.extend(extra.iter().map(OsString::from));
    args.extend(side_flags(src, src_auth, "src-"));
    args.extend(side_flags(dest, dest_auth, "dest-"));
    args.push(src.into());
    args.push(dest.into());
    try_run(&args).map(drop)
}

/// [`try_copy`], panicking with skopeo's stderr on failure.
pub fn copy(src: &str, dest: &str, src_auth: &SkopeoAuth, dest_auth: &SkopeoAuth, extra: &[&str]) {
    try_copy(src, dest, src_auth, dest_auth, extra).unwrap_or_else(|e| panic!("{e}"));
}

/// Copies `src_ref` (usually `docker://...`) into the OCI layout `dest_dir` as `ref_name`.
/// OCI images keep their digests; Docker v2 schema 2 manifests are converted to OCI (an OCI
/// layout cannot hold them), which changes the manifest digest but not config or layers.
pub fn copy_to_oci_layout(src_ref: &str, dest_dir: &Path, ref_name: &str, auth: &SkopeoAuth) {
    let dest = format!("oci:{}:{ref_name}", dest_dir.display());
    copy(src_ref, &dest, auth, &SkopeoAuth::default(), &[]);
}

/// Copies a local source (`oci:DIR:REF`, `docker-archive:PATH`, ...) to `dest_ref`
/// (`docker://HOST:PORT/repo:tag`) with `auth` for the destination. skopeo may convert the
/// image (it compresses uncompressed layers for registries); use [`copy`] with
/// `--preserve-digests` to forbid that.
pub fn copy_into_registry(src: &str, dest_ref: &str, auth: &SkopeoAuth) {
    copy(src, dest_ref, &SkopeoAuth::default(), auth, &[]);
}

/// `sha256:` digest of manifest bytes.
pub fn manifest_digest(bytes: &[u8]) -> String {
    sha256_digest(bytes)
}

/// The parts of a manifest or index tests usually compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestView {
    /// `mediaType` (may be absent in OCI documents).
    pub media_type: Option<String>,
    /// `config.digest` for image manifests.
    pub config_digest: Option<String>,
    /// `layers[].digest` for image manifests.
    pub layer_digests: Vec<String>,
    /// `layers[].mediaType` for image manifests.
    pub layer_media_types: Vec<String>,
    /// `manifests[].digest` for indexes and manifest lists.
    pub manifest_digests: Vec<String>,
    /// `manifests[].platform` as `os/arch[/variant]` for indexes.
    pub platforms: Vec<String>,
}

impl ManifestView {
    /// Parses manifest or index JSON; panics if it is not JSON.
    pub fn parse(bytes: &[u8]) -> Self {
        let doc: Value = serde_json::from_slice(bytes).unwrap_or_else(|e| {
            panic!(
                "not a JSON manifest ({e}): {}",
                String::from_utf8_lossy(bytes)
            )
        });
        let strings = |list: &str, field: &str| -> Vec<String> {
            doc[list]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .map(|i| i[field].as_str().unwrap_or_default().to_string())
                        .collect()
                })
                .unwrap_or_default()
        };
        let platforms = doc["manifests"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|i| {
                        let p = &i["platform"];
                        let mut s = format!(
                            "{}/{}",
                            p["os"].as_str().unwrap_or(""),
                            p["architecture"].as_str().unwrap_or("")
                        );
                        if let Some(v) = p["variant"].as_str() {
                            s.push('/');
                            s.push_str(v);
                        }
                        s
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            media_type: doc["mediaType"].as_str().map(String::from),
            config_digest: doc["config"]["digest"].as_str().map(String::from),
            layer_digests: strings("layers", "digest"),
            layer_media_types: strings("layers", "mediaType"),
            manifest_digests: strings("manifests", "digest"),
            platforms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_per_side() {
        let auth = SkopeoAuth::tls(Path::new("/certs")).with_creds("u", "p");
        let flags: Vec<String> = side_flags("docker://h/r:t", &auth, "dest-")
            .into_iter()
            .map(|f| f.into_string().unwrap())
            .collect();
        assert_eq!(
            flags,
            [
                "--dest-tls-verify=true",
                "--dest-cert-dir",
                "/certs",
                "--dest-creds",
                "u:p"
            ]
        );
        assert!(side_flags("oci:/x:y", &auth, "").is_empty());
        assert_eq!(
            SkopeoAuth::insecure().flags("")[1].to_str(),
            Some("--no-creds")
        );
        assert!(!format!("{auth:?}").contains("\"p\""));
    }

    #[test]
    fn creds_are_redacted_in_errors() {
        let args: Vec<OsString> = [
            "copy",
            "--src-no-creds",
            "a",
            "--dest-creds",
            "user:secret",
            "b",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        assert_eq!(
            redact_args(&args),
            "copy --src-no-creds a --dest-creds user:<redacted> b"
        );
    }

    #[test]
    fn manifest_view_parses_both_shapes() {
        let m = br#"{"schemaVersion":2,"config":{"digest":"sha256:c"},"layers":[{"mediaType":"t","digest":"sha256:l"}]}"#;
        let v = ManifestView::parse(m);
        assert_eq!(v.config_digest.as_deref(), Some("sha256:c"));
        assert_eq!(v.layer_digests, ["sha256:l"]);
        assert_eq!(v.media_type, None);
        let i = br#"{"manifests":[{"digest":"sha256:a","platform":{"os":"linux","architecture":"arm64","variant":"v8"}}]}"#;
        let v = ManifestView::parse(i);
        assert_eq!(v.manifest_digests, ["sha256:a"]);
        assert_eq!(v.platforms, ["linux/arm64/v8"]);
        assert_eq!(manifest_digest(b""), sha256_digest(b""));
    }
}
