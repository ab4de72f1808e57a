//! A real CNCF distribution registry (`docker-registry serve`, 2.8) for integration tests.
//!
//! [`DockerRegistry::start`] writes a `config.yml` into a temporary directory (filesystem
//! storage there, deletes enabled, log level warn, optional TLS, and optional htpasswd or
//! bearer-token auth), starts the registry on a free 127.0.0.1 port (retrying on a port clash),
//! waits until it answers, and kills it on drop. Its log is kept in a file and printed when
//! startup fails. With token auth it also runs a [`TokenServer`] for as long as it lives.

use crate::pki::TestPki;
use crate::skopeo::SkopeoAuth;
use crate::token_server::{TokenServer, TokenServerOptions, DEFAULT_EXPIRES_IN};
use crate::tools::require_tool;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
const PORT_ATTEMPTS: usize = 5;
/// bcrypt cost for the htpasswd file: the minimum, since the registry checks it per request.
const BCRYPT_COST: u32 = 4;

/// A free TCP port on 127.0.0.1 (bind port 0, read it, release it).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0 to find a free port")
}

/// How to run the registry.
#[derive(Debug, Clone, Copy, Default)]
pub struct RegistryOptions<'a> {
    /// Serve HTTPS with this server certificate and key.
    pub tls: Option<&'a TestPki>,
    /// Require basic auth for this one user.
    pub htpasswd: Option<(&'a str, &'a str)>,
    /// Require bearer tokens from a [`TokenServer`] started with the registry (exclusive with
    /// `htpasswd`: distribution runs one access controller).
    pub token_auth: Option<TokenAuthOptions<'a>>,
    /// With `tls`: require a client certificate signed by the test CA (`http.tls.clientcas`).
    pub client_certificates: bool,
}

/// Bearer-token auth (`auth: token:`): who may log in to the token server, and the issuer and
/// service the registry checks tokens against.
#[derive(Clone, Copy)]
pub struct TokenAuthOptions<'a> {
    /// `(username, password)` pairs the token server accepts; they get pull and push, anonymous
    /// clients only pull.
    pub users: &'a [(&'a str, &'a str)],
    /// `auth.token.issuer` and the tokens' `iss`.
    pub issuer: &'a str,
    /// `auth.token.service`: the `service` of the registry's challenges and the tokens' `aud`.
    pub service: &'a str,
    /// Token lifetime (`expires_in`) in seconds; changeable later with
    /// [`TokenServer::set_expires_in`].
    pub expires_in: u64,
}

impl Default for TokenAuthOptions<'_> {
    fn default() -> Self {
        Self {
            users: &[],
            issuer: "ocipush-testkit-token-issuer",
            service: "ocipush-testkit-registry",
            expires_in: DEFAULT_EXPIRES_IN,
        }
    }
}

impl<'a> TokenAuthOptions<'a> {
    /// The defaults with these users.
    pub fn users(users: &'a [(&'a str, &'a str)]) -> Self {
        Self {
            users,
            ..Self::default()
        }
    }
}

impl std::fmt::Debug for TokenAuthOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenAuthOptions")
            .field(
                "users",
                &self.users.iter().map(|(u, _)| *u).collect::<Vec<_>>(),
            )
            .field("issuer", &self.issuer)
            .field("service", &self.service)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// A running `docker-registry`; killed when dropped.
pub struct DockerRegistry {
    child: Child,
    port: u16,
    tls: bool,
    creds: Option<(String, String)>,
    token_server: Option<TokenServer>,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for DockerRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerRegistry")
            .field("url", &self.url())
            .field("dir", &self.dir.path())
            .field("auth", &self.creds.is_some())
            .field("token_server", &self.token_server)
            .finish()
    }
}

impl DockerRegistry {
    /// Starts a registry and waits until `GET /v2/` answers; panics (with the registry's log)
    /// if it cannot. Panics if `docker-registry` is not on `PATH`.
    pub fn start(options: RegistryOptions<'_>) -> Self {
        let binary = require_tool("docker-registry", "docker-registry");
        let dir = tempfile::Builder::new()
            .prefix("ocipush-registry-")
            .tempdir()
            .expect("creating the registry dir");
        let root = dir.path().to_path_buf();
        let root = root.as_path();
        fs::create_dir_all(root.join("storage")).expect("creating registry storage");
        let tls_paths = options.tls.map(|pki| {
            let paths = pki.write_to(&root.join("pki"));
            pki.write_ca_dir(&root.join("ca"));
            paths
        });
        assert!(
            options.htpasswd.is_none() || options.token_auth.is_none(),
            "docker-registry takes either htpasswd or token auth, not both"
        );
        let token_server = options.token_auth.map(|token| {
            let server = TokenServer::start(TokenServerOptions {
                users: token
                    .users
                    .iter()
                    .map(|(u, p)| (u.to_string(), p.to_string()))
                    .collect(),
                issuer: token.issuer.to_string(),
                service: token.service.to_string(),
                expires_in: token.expires_in,
                ..TokenServerOptions::default()
            });
            server.write_root_cert_bundle(&root.join("token-signer.pem"));
            server
        });
        if let Some((user, password)) = options.htpasswd {
            let hash = bcrypt::hash_with_result(password, BCRYPT_COST)
                .expect("bcrypt")
                .format_for_version(bcrypt::Version::TwoY);
            fs::write(root.join("htpasswd"), format!("{user}:{hash}\n")).expect("writing htpasswd");
        }
        let mut last_log = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let mut config = config_yaml(root, port);
            if let Some(paths) = &tls_paths {
                config.push_str(&format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    yaml_str(&paths.server_cert),
                    yaml_str(&paths.server_key)
                ));
                if options.client_certificates {
                    config.push_str(&format!(
                        "    clientcas:\n      - {}\n",
                        yaml_str(&paths.ca_cert)
                    ));
                }
            }
            if options.htpasswd.is_some() {
                config.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: ocipush-test-registry\n    path: {}\n",
                    yaml_str(&root.join("htpasswd"))
                ));
            }
            if let Some(server) = &token_server {
                config.push_str(&format!(
                    "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    \
                     rootcertbundle: {}\n",
                    yaml_quote(&server.realm()),
                    yaml_quote(server.service()),
                    yaml_quote(server.issuer()),
                    yaml_str(&root.join("token-signer.pem"))
                ));
            }
            fs::write(root.join("config.yml"), &config).expect("writing config.yml");
            let log = File::create(root.join("registry.log")).expect("creating registry.log");
            let mut command = Command::new(&binary);
            command
                .arg("serve")
                .arg(root.join("config.yml"))
                .current_dir(root)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("cloning the log handle"))
                .stderr(log);
            // The registry reads REGISTRY_* variables as config overrides (REGISTRY_AUTH_FILE,
            // meant for skopeo/podman, would be taken for auth.file): drop them all.
            for (key, _) in std::env::vars_os() {
                if key.to_string_lossy().starts_with("REGISTRY_") {
                    command.env_remove(key);
                }
            }
            let mut child = command
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
            let log_path = root.join("registry.log");
            match wait_ready(&mut child, port, options.tls.is_some(), &log_path) {
                Ok(()) => {
                    return DockerRegistry {
                        child,
                        port,
                        tls: options.tls.is_some(),
                        creds: options
                            .htpasswd
                            .or_else(|| options.token_auth.and_then(|t| t.users.first().copied()))
                            .map(|(u, p)| (u.to_string(), p.to_string())),
                        token_server,
                        dir,
                    }
                }
                Err(Startup::PortClash) => {
                    kill(&mut child);
                    last_log = fs::read_to_string(&log_path).unwrap_or_default();
                }
                Err(Startup::Failed(why)) => {
                    kill(&mut child);
                    panic!(
                        "docker-registry did not start on 127.0.0.1:{port}: {why}\n\
                         config.yml:\n{config}\nlog:\n{}",
                        fs::read_to_string(&log_path).unwrap_or_default()
                    );
                }
            }
        }
        panic!("docker-registry hit a port clash {PORT_ATTEMPTS} times; last log:\n{last_log}")
    }

    /// `127.0.0.1:PORT`.
    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether it serves HTTPS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.host_port())
    }

    /// `127.0.0.1:PORT/<repo_and_tag>`, e.g. for `ocipush push` destinations.
    pub fn reference(&self, repo_and_tag: &str) -> String {
        format!("{}/{repo_and_tag}", self.host_port())
    }

    /// `docker://127.0.0.1:PORT/<repo_and_tag>` for skopeo.
    pub fn docker_ref(&self, repo_and_tag: &str) -> String {
        format!("docker://{}", self.reference(repo_and_tag))
    }

    /// Path of the CA certificate clients should trust (`ca.crt`), when TLS is on.
    pub fn ca_path(&self) -> Option<PathBuf> {
        self.tls.then(|| self.dir.path().join("ca/ca.crt"))
    }

    /// A directory holding only `ca.crt` (for skopeo's `--cert-dir`), when TLS is on.
    pub fn ca_dir(&self) -> Option<PathBuf> {
        self.tls.then(|| self.dir.path().join("ca"))
    }

    /// The storage root (`rootdirectory`); repositories live under
    /// `docker/registry/v2/repositories/`, blobs under `docker/registry/v2/blobs/`.
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// The htpasswd user and password, or with token auth the first token-server user.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.creds.as_ref().map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// skopeo settings that reach this registry: verified TLS with its CA (or plain HTTP),
    /// and its credentials.
    pub fn skopeo_auth(&self) -> SkopeoAuth {
        SkopeoAuth {
            tls_verify: self.tls,
            cert_dir: self.ca_dir(),
            creds: self.creds.clone(),
        }
    }

    /// The token server, with token auth.
    pub fn token_server(&self) -> Option<&TokenServer> {
        self.token_server.as_ref()
    }

    /// The registry's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for DockerRegistry {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Waits until the registry answers on `port`, or reports why it will not.
fn wait_ready(child: &mut Child, port: u16, tls: bool, log_path: &Path) -> Result<(), Startup> {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    loop {
        if let Some(status) = child.try_wait().expect("polling docker-registry") {
            let log = fs::read_to_string(log_path).unwrap_or_default();
            return Err(if log.contains("address already in use") {
                Startup::PortClash
            } else {
                Startup::Failed(format!("it exited with {status}"))
            });
        }
        if Instant::now() > deadline {
            return Err(Startup::Failed(format!(
                "no answer on {addr} within {STARTUP_TIMEOUT:?}"
            )));
        }
        if tls {
            // No TLS client here: an accepted connection while our child still runs is good
            // enough (distribution listens only once fully configured).
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                std::thread::sleep(Duration::from_millis(100));
                if child.try_wait().expect("polling docker-registry").is_none() {
                    return Ok(());
                }
                continue;
            }
        } else if probe_http(addr) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

enum Startup {
    PortClash,
    Failed(String),
}

/// `GET /v2/` over HTTP/1.0; true on 200 or 401 from a distribution registry.
fn probe_http(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /v2/ HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response).to_ascii_lowercase();
    let status_ok = response.starts_with("http/1.0 200")
        || response.starts_with("http/1.1 200")
        || response.starts_with("http/1.0 401")
        || response.starts_with("http/1.1 401");
    status_ok && response.contains("docker-distribution-api-version")
}

/// The registry's configuration, `http:` last (TLS and auth settings are appended to it).
/// Manifests may name foreign layers by `http(s)` URL (unset, distribution refuses every
/// manifest with URLs), as registries serving Windows images allow.
fn config_yaml(root: &Path, port: u16) -> String {
    format!(
        "version: 0.1\n\
         log:\n  level: warn\n  formatter: text\n  accesslog:\n    disabled: true\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  \
         maintenance:\n    uploadpurging:\n      enabled: false\n\
         validation:\n  manifests:\n    urls:\n      allow:\n        - ^https?://\n\
         http:\n  addr: 127.0.0.1:{port}\n  secret: ocipush-testkit\n",
        yaml_str(&root.join("storage"))
    )
}

/// A double-quoted YAML scalar.
fn yaml_str(path: &Path) -> String {
    yaml_quote(path.to_str().expect("UTF-8 temp path"))
}

/// A double-quoted YAML scalar.
fn yaml_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_nonzero() {
        assert_ne!(free_port(), 0);
    }

    #[test]
    fn config_mentions_storage_and_addr() {
        let c = config_yaml(Path::new("/tmp/x"), 5555);
        assert!(c.contains("rootdirectory: \"/tmp/x/storage\""));
        assert!(c.contains("addr: 127.0.0.1:5555"));
        assert!(c.contains("enabled: true"));
    }
}
