//! The idpbuilder profile: `-r idpbuilder` means the Gitea registry of a local idpbuilder
//! platform (`gitea.cnoe.localtest.me:8443/giteaadmin`), and pushing there takes Gitea's admin
//! credentials from `idpbuilder get secrets -p gitea -o json` when nothing else gave any.

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ocipush_registry::{Credentials, RegistryTarget};

/// The host name idpbuilder gives Gitea.
pub const GITEA_HOSTNAME: &str = "gitea.cnoe.localtest.me";
/// Gitea's registry on a default idpbuilder platform.
pub const GITEA_REGISTRY: &str = "gitea.cnoe.localtest.me:8443";
/// The namespace of Gitea's admin user.
pub const NAMESPACE: &str = "giteaadmin";
/// The admin user name idpbuilder creates, spelt as idpbuilder spells it (Gitea compares user
/// names case-insensitively; its namespace is the lower-case `giteaadmin`).
pub const DEFAULT_USER: &str = "giteaAdmin";
const DEADLINE: Duration = Duration::from_secs(60);

/// `idpbuilder` → `gitea.cnoe.localtest.me:8443/giteaadmin`, `idpbuilder/NS` →
/// `gitea.cnoe.localtest.me:8443/NS`; anything else is not the profile.
pub fn expand_target(arg: &str) -> Option<String> {
    match arg.split_once('/') {
        None if arg == "idpbuilder" => Some(format!("{GITEA_REGISTRY}/{NAMESPACE}")),
        Some(("idpbuilder", ns)) if !ns.is_empty() => Some(format!("{GITEA_REGISTRY}/{ns}")),
        _ => None,
    }
}

/// Fills in what a bare `-r gitea.cnoe.localtest.me` leaves out: the port and the namespace.
pub fn complete_target(target: &mut RegistryTarget) {
    if !is_gitea(&target.registry) {
        return;
    }
    if !target.registry.contains(':') {
        target.registry = format!("{}:8443", target.registry);
    }
    target
        .namespace
        .get_or_insert_with(|| NAMESPACE.to_string());
}

/// Whether `registry` (`host[:port]`) is an idpbuilder Gitea.
pub fn is_gitea(registry: &str) -> bool {
    let host = registry.rsplit_once(':').map_or(registry, |(h, _)| h);
    host.eq_ignore_ascii_case(GITEA_HOSTNAME)
}

/// What asking idpbuilder gave.
#[derive(Debug)]
pub enum GiteaSecret {
    Found(Credentials),
    /// `idpbuilder` is not on PATH.
    NotInstalled,
    /// It ran but gave no usable password (cluster down, no such secret, odd output).
    Failed(String),
}

/// Runs `idpbuilder get secrets -p gitea -o json` and reads the Gitea credentials from it.
pub fn gitea_credentials() -> GiteaSecret {
    let mut child = match Command::new("idpbuilder")
        .args(["get", "secrets", "-p", "gitea", "-o", "json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return GiteaSecret::NotInstalled,
        Err(e) => return GiteaSecret::Failed(format!("cannot run idpbuilder: {e}")),
    };
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(pipe) = stdout.as_mut() {
            let _ = pipe.take(4 << 20).read_to_end(&mut buf);
        }
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(pipe) = stderr.as_mut() {
            let _ = pipe.take(64 << 10).read_to_end(&mut buf);
        }
        buf
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > DEADLINE => {
                let _ = child.kill();
                let _ = child.wait();
                return GiteaSecret::Failed(format!(
                    "`idpbuilder get secrets` did not answer within {}s",
                    DEADLINE.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return GiteaSecret::Failed(format!("cannot wait for idpbuilder: {e}")),
        }
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if !status.success() {
        let message = String::from_utf8_lossy(&stderr);
        let line = message.lines().map(str::trim).find(|l| !l.is_empty());
        return GiteaSecret::Failed(format!(
            "`idpbuilder get secrets -p gitea` failed ({status}){}",
            line.map(|l| format!(": {}", l.chars().take(200).collect::<String>()))
                .unwrap_or_default()
        ));
    }
    match parse_secrets(&stdout) {
        Some(credentials) => GiteaSecret::Found(credentials),
        None => GiteaSecret::Failed(
            "`idpbuilder get secrets -p gitea -o json` printed no Gitea password".into(),
        ),
    }
}

/// Reads the Gitea credential from idpbuilder's JSON: a list (or one object) of secrets with
/// `username`/`password`/`token` fields (older releases nest them in `data`); the entry named
/// `gitea-credential` (or in namespace `gitea`) is preferred.
fn parse_secrets(json: &[u8]) -> Option<Credentials> {
    let value: serde_json::Value = serde_json::from_slice(json).ok()?;
    let entries = match value {
        serde_json::Value::Array(items) => items,
        other => vec![other],
    };
    let field = |entry: &serde_json::Value, name: &str| {
        entry
            .get(name)
            .or_else(|| entry.get("data").and_then(|d| d.get(name)))
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let is_gitea = |entry: &serde_json::Value| {
        entry.get("name").and_then(|n| n.as_str()) == Some("gitea-credential")
            || entry.get("namespace").and_then(|n| n.as_str()) == Some("gitea")
    };
    let mut ordered: Vec<&serde_json::Value> = entries.iter().filter(|e| is_gitea(e)).collect();
    ordered.extend(entries.iter().filter(|e| !is_gitea(e)));
    ordered.into_iter().find_map(|entry| {
        let password = field(entry, "password").or_else(|| field(entry, "token"))?;
        let username = field(entry, "username").unwrap_or_else(|| DEFAULT_USER.to_string());
        Some(Credentials::new(username, password))
    })
}

/// The hint when `ocipush login idpbuilder` got no credentials: how to give the password (the
/// user is known).
pub fn login_hint(why: &GiteaSecret) -> String {
    let how = "give the password (the user is giteaAdmin): \
               idpbuilder get secrets -p gitea -o json shows it; then \
               echo \"$PASSWORD\" | ocipush login idpbuilder --password-stdin";
    match why {
        GiteaSecret::NotInstalled => format!("idpbuilder is not on PATH; {how}"),
        GiteaSecret::Failed(reason) => {
            format!("{reason}; is the idpbuilder cluster running? {how}")
        }
        GiteaSecret::Found(_) => how.to_string(),
    }
}

/// The hint when no credentials for an idpbuilder Gitea could be found.
pub fn missing_hint(why: &GiteaSecret) -> String {
    let how = "pass them with -u giteaAdmin --password-stdin (the password is shown by \
               `idpbuilder get secrets -p gitea`), or `ocipush login gitea.cnoe.localtest.me:8443`";
    match why {
        GiteaSecret::NotInstalled => {
            format!("idpbuilder is not on PATH, so its Gitea password could not be read; {how}")
        }
        GiteaSecret::Failed(reason) => {
            format!("{reason}; is the idpbuilder cluster running? {how}")
        }
        GiteaSecret::Found(_) => how.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_targets() {
        assert_eq!(
            expand_target("idpbuilder").as_deref(),
            Some("gitea.cnoe.localtest.me:8443/giteaadmin")
        );
        assert_eq!(
            expand_target("idpbuilder/team").as_deref(),
            Some("gitea.cnoe.localtest.me:8443/team")
        );
        assert_eq!(expand_target("localhost:5000"), None);
        assert_eq!(expand_target("idpbuilders"), None);
        assert!(is_gitea("gitea.cnoe.localtest.me:8443"));
        assert!(is_gitea("GITEA.cnoe.localtest.me"));
        assert!(!is_gitea("gitea.example.com:8443"));
        let mut bare = RegistryTarget::parse("gitea.cnoe.localtest.me").unwrap();
        complete_target(&mut bare);
        assert_eq!(bare.registry, GITEA_REGISTRY);
        assert_eq!(bare.namespace.as_deref(), Some(NAMESPACE));
        let mut other = RegistryTarget::parse("gitea.cnoe.localtest.me:9443/team").unwrap();
        complete_target(&mut other);
        assert_eq!(other.registry, "gitea.cnoe.localtest.me:9443");
        assert_eq!(other.namespace.as_deref(), Some("team"));
    }

    #[test]
    fn reads_current_and_older_secret_layouts() {
        let current = br#"[{"name":"argocd-initial-admin-secret","namespace":"argocd","username":"admin","password":"argo-pw"},
            {"name":"gitea-credential","namespace":"gitea","username":"giteaAdmin","password":"gitea-pw","token":"tok"}]"#;
        assert_eq!(
            parse_secrets(current),
            Some(Credentials::new("giteaAdmin", "gitea-pw"))
        );
        let older = br#"{"name":"gitea-credential","namespace":"gitea","data":{"username":"giteaAdmin","password":"pw2"}}"#;
        assert_eq!(
            parse_secrets(older),
            Some(Credentials::new("giteaAdmin", "pw2"))
        );
        let token_only = br#"[{"name":"gitea-credential","token":"tok-only"}]"#;
        assert_eq!(
            parse_secrets(token_only),
            Some(Credentials::new("giteaAdmin", "tok-only"))
        );
        assert_eq!(parse_secrets(b"no secrets found\n"), None);
        assert_eq!(parse_secrets(br#"[{"name":"x"}]"#), None);
    }
}
