//! Docker's per-registry certificate folders: `ROOT/HOST[:PORT]/` holding CA certificates
//! (`*.crt`) and client certificates (`NAME.cert` with its key `NAME.key`), searched under
//! `/etc/docker/certs.d`, `~/.docker/certs.d` and the like (the caller picks the roots).

use std::path::{Path, PathBuf};

use crate::error::RegistryError;

/// What the certificate folders hold for one registry.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HostCertificates {
    /// CA certificate files, in the order found.
    pub ca_files: Vec<PathBuf>,
    /// The first client certificate and its key.
    pub client: Option<(PathBuf, PathBuf)>,
}

/// Collects the files under `ROOT/REGISTRY/` for every root that has such a folder.
pub fn host_certificates(
    roots: &[PathBuf],
    registry: &str,
) -> Result<HostCertificates, RegistryError> {
    let mut found = HostCertificates::default();
    for root in roots {
        let dir = root.join(registry);
        if !dir.is_dir() {
            continue;
        }
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| RegistryError::CertFile {
                path: dir.display().to_string(),
                detail: e.to_string(),
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for path in &entries {
            match path.extension().and_then(|e| e.to_str()) {
                Some("crt") => found.ca_files.push(path.clone()),
                Some("cert") => {
                    let key = path.with_extension("key");
                    if !key.is_file() {
                        return Err(RegistryError::CertFile {
                            path: path.display().to_string(),
                            detail: format!("client certificate without its key {}", name(&key)),
                        });
                    }
                    found.client.get_or_insert((path.clone(), key));
                }
                Some("key") => {
                    let cert = path.with_extension("cert");
                    if !cert.is_file() {
                        return Err(RegistryError::CertFile {
                            path: path.display().to_string(),
                            detail: format!("client key without its certificate {}", name(&cert)),
                        });
                    }
                }
                _ => {}
            }
        }
    }
    Ok(found)
}

fn name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_cas_and_client_pairs_per_host() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let host = "reg.example:5000";
        std::fs::create_dir_all(a.path().join(host)).unwrap();
        std::fs::create_dir_all(b.path().join(host)).unwrap();
        std::fs::write(a.path().join(host).join("ca.crt"), "x").unwrap();
        std::fs::write(b.path().join(host).join("extra.crt"), "x").unwrap();
        std::fs::write(b.path().join(host).join("client.cert"), "x").unwrap();
        std::fs::write(b.path().join(host).join("client.key"), "x").unwrap();
        std::fs::write(b.path().join(host).join("README"), "x").unwrap();
        let roots = vec![
            a.path().to_path_buf(),
            PathBuf::from("/nonexistent/certs.d"),
            b.path().to_path_buf(),
        ];
        let found = host_certificates(&roots, host).unwrap();
        assert_eq!(found.ca_files.len(), 2);
        assert!(found.ca_files[0].starts_with(a.path()));
        let (cert, key) = found.client.unwrap();
        assert!(cert.ends_with("client.cert") && key.ends_with("client.key"));
        assert_eq!(
            host_certificates(&roots, "other:5000").unwrap(),
            HostCertificates::default()
        );

        std::fs::remove_file(b.path().join(host).join("client.cert")).unwrap();
        let err = host_certificates(&roots, host).unwrap_err().to_string();
        assert!(
            err.contains("client key without its certificate client.cert"),
            "{err}"
        );
    }
}
