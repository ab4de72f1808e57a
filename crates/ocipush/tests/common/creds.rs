//! Credential fixtures for the binary's tests: docker config directories, containers
//! `auth.json` files, a fake `docker-credential-*` helper and a fake `idpbuilder`, all in temp
//! directories and reached only through the child's environment (PATH, DOCKER_CONFIG, ...).

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;

/// `base64(user:password)`, as docker's `auths` keep it.
pub fn basic_auth(user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

/// Writes `dir/config.json` with `auths` entries `(key, user, password)` and extra top-level
/// JSON fields (e.g. `"credsStore": "x"`); returns `dir`.
pub fn docker_config(dir: &Path, auths: &[(&str, &str, &str)], extra: &str) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let entries: Vec<String> = auths
        .iter()
        .map(|(k, u, p)| format!("{:?}:{{\"auth\":{:?}}}", k, basic_auth(u, p)))
        .collect();
    let mut doc = format!("{{\"auths\":{{{}}}", entries.join(","));
    if !extra.is_empty() {
        doc.push(',');
        doc.push_str(extra);
    }
    doc.push('}');
    fs::write(dir.join("config.json"), doc).unwrap();
    dir.to_path_buf()
}

/// A fake credential helper `docker-credential-NAME` in `bin/`, keeping one credential in
/// `state/cred.json` and logging every call (`ACTION INPUT`) to `state/log`.
pub struct FakeHelper {
    pub bin: PathBuf,
    pub state: PathBuf,
}

impl FakeHelper {
    pub fn install(root: &Path, name: &str) -> FakeHelper {
        let bin = root.join("bin");
        let state = root.join("helper-state");
        fs::create_dir_all(&bin).unwrap();
        fs::create_dir_all(&state).unwrap();
        let script = format!(
            r#"#!/bin/sh
state='{state}'
input=$(cat)
printf '%s %s\n' "$1" "$input" >> "$state/log"
case "$1" in
  get)
    if [ -f "$state/cred.json" ]; then cat "$state/cred.json"; exit 0; fi
    echo "credentials not found in native keychain"; exit 1 ;;
  store) printf '%s' "$input" > "$state/cred.json" ;;
  erase)
    if [ -f "$state/cred.json" ]; then rm "$state/cred.json"; exit 0; fi
    echo "credentials not found in native keychain"; exit 1 ;;
  *) echo "unknown action $1"; exit 1 ;;
esac
"#,
            state = state.display()
        );
        write_executable(&bin.join(format!("docker-credential-{name}")), &script);
        FakeHelper { bin, state }
    }

    /// Seeds the credential `get` answers with.
    pub fn seed(&self, server_url: &str, user: &str, secret: &str) {
        fs::write(
            self.state.join("cred.json"),
            format!(r#"{{"ServerURL":{server_url:?},"Username":{user:?},"Secret":{secret:?}}}"#),
        )
        .unwrap();
    }

    /// What the helper keeps now, if anything.
    pub fn stored(&self) -> Option<serde_json::Value> {
        let text = fs::read_to_string(self.state.join("cred.json")).ok()?;
        Some(serde_json::from_str(&text).unwrap())
    }

    /// The calls so far, one `ACTION INPUT` line each.
    pub fn log(&self) -> String {
        fs::read_to_string(self.state.join("log")).unwrap_or_default()
    }
}

/// A fake `idpbuilder` in `bin/` answering `get secrets -p gitea -o json` with `json`.
pub fn fake_idpbuilder(root: &Path, json: &str) -> PathBuf {
    let bin = root.join("bin");
    fs::create_dir_all(&bin).unwrap();
    let data = root.join("idpbuilder-secrets.json");
    fs::write(&data, json).unwrap();
    let script = format!(
        "#!/bin/sh\n[ \"$*\" = 'get secrets -p gitea -o json' ] || {{ echo \"unexpected: $*\" >&2; exit 2; }}\ncat '{}'\n",
        data.display()
    );
    write_executable(&bin.join("idpbuilder"), &script);
    bin
}

/// `dir` in front of the test process's PATH, for the child only.
pub fn path_with(dir: &Path) -> OsString {
    let mut paths = vec![dir.to_path_buf()];
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(paths).unwrap()
}

fn write_executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}
