//! Throwaway certificates for TLS tests, made with rcgen (ring backend).
//!
//! [`TestPki::new`] makes a CA and a server certificate it signs (SANs for every host, DNS names
//! and IP addresses alike, `serverAuth` EKU). [`self_signed_ca_true`] makes the awkward case:
//! one self-signed certificate with `basicConstraints CA:TRUE` used directly as the server
//! certificate, as `openssl req -x509` produces (rustls's webpki rejects it by default).

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CertifiedIssuer, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use std::fs;
use std::path::{Path, PathBuf};

/// PEM material for a TLS server and the CA that clients should trust.
#[derive(Clone)]
pub struct TestPki {
    /// The certificate clients trust (for [`self_signed_ca_true`], the server certificate).
    pub ca_cert_pem: String,
    /// The server's certificate.
    pub server_cert_pem: String,
    /// The server's private key (PKCS#8, ECDSA P-256).
    pub server_key_pem: String,
    /// Hosts in the server certificate's SANs.
    pub hosts: Vec<String>,
    /// A client certificate the CA signed (`clientAuth` EKU), for registries that require one;
    /// `None` for [`self_signed_ca_true`].
    pub client_cert_pem: Option<String>,
    /// The client certificate's private key.
    pub client_key_pem: Option<String>,
}

impl std::fmt::Debug for TestPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPki")
            .field("hosts", &self.hosts)
            .field("server_key_pem", &"<redacted>")
            .field("client_key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Where [`TestPki::write_to`] put the files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkiPaths {
    /// `dir/ca.crt`.
    pub ca_cert: PathBuf,
    /// `dir/server.crt`.
    pub server_cert: PathBuf,
    /// `dir/server.key`.
    pub server_key: PathBuf,
}

impl TestPki {
    /// A fresh CA and a server certificate for `hosts` (`"localhost"`, `"127.0.0.1"`, ...).
    pub fn new(hosts: &[&str]) -> Self {
        let ca_key = KeyPair::generate().expect("generating the CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.distinguished_name
            .push(DnType::CommonName, "ocipush test CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(&mut ca);
        let ca_cert = CertifiedIssuer::self_signed(ca, ca_key).expect("self-signing the CA");

        let server_key = KeyPair::generate().expect("generating the server key");
        let mut server = server_params(hosts);
        server.is_ca = IsCa::ExplicitNoCa;
        server.use_authority_key_identifier_extension = true;
        let server_cert = server
            .signed_by(&server_key, &ca_cert)
            .expect("signing the server certificate");

        let client_key = KeyPair::generate().expect("generating the client key");
        let mut client = CertificateParams::new(Vec::<String>::new()).expect("client params");
        client
            .distinguished_name
            .push(DnType::CommonName, "ocipush test client");
        client.is_ca = IsCa::ExplicitNoCa;
        client.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        client.use_authority_key_identifier_extension = true;
        set_validity(&mut client);
        let client_cert = client
            .signed_by(&client_key, &ca_cert)
            .expect("signing the client certificate");
        Self {
            ca_cert_pem: ca_cert.pem(),
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            client_cert_pem: Some(client_cert.pem()),
            client_key_pem: Some(client_key.serialize_pem()),
        }
    }

    /// `TestPki::new(&["localhost", "127.0.0.1"])`.
    pub fn localhost() -> Self {
        Self::new(&["localhost", "127.0.0.1"])
    }

    /// Writes `ca.crt`, `server.crt` and `server.key` into `dir` (created if missing).
    pub fn write_to(&self, dir: &Path) -> PkiPaths {
        fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let paths = PkiPaths {
            ca_cert: dir.join("ca.crt"),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
        };
        for (path, pem) in [
            (&paths.ca_cert, &self.ca_cert_pem),
            (&paths.server_cert, &self.server_cert_pem),
            (&paths.server_key, &self.server_key_pem),
        ] {
            fs::write(path, pem).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        }
        paths
    }

    /// Writes only `ca.crt` into `dir` (created if missing) and returns `dir`: the shape
    /// skopeo's `--cert-dir` and docker's `certs.d/<host>/` expect (a `*.key` there would be
    /// taken for a client key).
    pub fn write_ca_dir(&self, dir: &Path) -> PathBuf {
        fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let path = dir.join("ca.crt");
        fs::write(&path, &self.ca_cert_pem)
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        dir.to_path_buf()
    }
}

/// One self-signed certificate with `basicConstraints CA:TRUE`, SANs for `hosts` and the
/// `serverAuth` EKU, used directly as the server certificate (`ca_cert_pem` is the same
/// certificate as `server_cert_pem`).
pub fn self_signed_ca_true(hosts: &[&str]) -> TestPki {
    let key = KeyPair::generate().expect("generating the key");
    let mut params = server_params(hosts);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages.push(KeyUsagePurpose::KeyCertSign);
    let cert = params.self_signed(&key).expect("self-signing");
    let pem = cert.pem();
    TestPki {
        ca_cert_pem: pem.clone(),
        server_cert_pem: pem,
        server_key_pem: key.serialize_pem(),
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        client_cert_pem: None,
        client_key_pem: None,
    }
}

fn server_params(hosts: &[&str]) -> CertificateParams {
    assert!(
        !hosts.is_empty(),
        "a server certificate needs at least one host"
    );
    let mut params =
        CertificateParams::new(hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>())
            .unwrap_or_else(|e| panic!("bad host in {hosts:?}: {e}"));
    params.distinguished_name.push(DnType::CommonName, hosts[0]);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    set_validity(&mut params);
    params
}

fn set_validity(params: &mut CertificateParams) {
    params.not_before = date_time_ymd(2000, 1, 1);
    params.not_after = date_time_ymd(2099, 12, 31);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_pem_files() {
        let pki = TestPki::localhost();
        let dir = tempfile::tempdir().unwrap();
        let paths = pki.write_to(dir.path());
        let ca = fs::read_to_string(&paths.ca_cert).unwrap();
        assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(fs::read_to_string(&paths.server_key)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_ne!(pki.ca_cert_pem, pki.server_cert_pem);
        let ca_dir = pki.write_ca_dir(&dir.path().join("certs"));
        assert_eq!(fs::read_dir(ca_dir).unwrap().count(), 1);
        assert!(!format!("{pki:?}").contains("PRIVATE"));
    }

    #[test]
    fn self_signed_is_its_own_ca() {
        let pki = self_signed_ca_true(&["127.0.0.1"]);
        assert_eq!(pki.ca_cert_pem, pki.server_cert_pem);
    }
}
