//! Server certificate verifiers: webpki path validation against the trust anchors, with one
//! narrow exception for self-signed development certificates, and the `--insecure` one that
//! checks nothing.
//!
//! The exception: `openssl req -x509` (and local platforms such as idpbuilder) make one
//! self-signed certificate with `basicConstraints CA:TRUE` and serve it directly. webpki refuses
//! it with `CaUsedAsEndEntity` — a CA certificate must not identify a server — even when the
//! user trusts it explicitly, while Go (docker, podman, crane) and OpenSSL accept it. We accept
//! it only when the very certificate the server presents, byte for byte, is one the user gave
//! as a trust anchor (`--ca-file`, `certs.d`): then it is pinned, nobody else can present it
//! without its private key (the handshake signature is still checked against it), its name
//! must still match the host, and webpki has already checked its validity period (it checks
//! dates before basic constraints, which a test here holds it to). A CA:TRUE certificate that
//! is not itself a given anchor, or one signed by such a CA, gets no exception.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};

/// webpki validation, plus exact-match acceptance of pinned self-signed CA:TRUE certificates.
#[derive(Debug)]
pub(crate) struct AnchoredVerifier {
    /// `None` when there is no trust anchor at all (no system store, no CA file).
    inner: Option<Arc<WebPkiServerVerifier>>,
    /// The certificates the user gave as trust anchors.
    pinned: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
}

impl AnchoredVerifier {
    pub(crate) fn new(
        roots: RootCertStore,
        pinned: Vec<CertificateDer<'static>>,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, Error> {
        let inner = if roots.is_empty() {
            None
        } else {
            Some(
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| Error::General(e.to_string()))?,
            )
        };
        Ok(AnchoredVerifier {
            inner,
            pinned,
            provider,
        })
    }
}

/// Whether webpki refused the certificate only for being a CA used as an end entity.
fn is_ca_used_as_end_entity(error: &Error) -> bool {
    match error {
        Error::InvalidCertificate(CertificateError::Other(other)) => {
            let source: &(dyn std::error::Error + 'static) = &*other.0;
            matches!(
                source.downcast_ref::<webpki::Error>(),
                Some(webpki::Error::CaUsedAsEndEntity)
            )
        }
        _ => false,
    }
}

impl ServerCertVerifier for AnchoredVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let Some(inner) = &self.inner else {
            return Err(Error::InvalidCertificate(CertificateError::UnknownIssuer));
        };
        match inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(e)
                if is_ca_used_as_end_entity(&e)
                    && self
                        .pinned
                        .iter()
                        .any(|p| p.as_ref() == end_entity.as_ref()) =>
            {
                let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
                rustls::client::verify_server_name(&parsed, server_name)?;
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `--insecure`: any certificate, any name. The user asked for it and was warned.
#[derive(Debug)]
pub(crate) struct NoVerification {
    pub(crate) provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{date_time_ymd, BasicConstraints, CertificateParams, IsCa, KeyPair};

    fn ca_true(host: &str, not_after_year: i32) -> CertificateDer<'static> {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![host.to_string()]).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.not_before = date_time_ymd(2001, 1, 1);
        params.not_after = date_time_ymd(not_after_year, 1, 1);
        params.self_signed(&key).unwrap().der().clone()
    }

    fn verifier(anchors: &[&CertificateDer<'static>]) -> AnchoredVerifier {
        let mut roots = RootCertStore::empty();
        for a in anchors {
            roots.add((*a).clone()).unwrap();
        }
        AnchoredVerifier::new(
            roots,
            anchors.iter().map(|a| (*a).clone()).collect(),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .unwrap()
    }

    fn verify(v: &AnchoredVerifier, cert: &CertificateDer<'_>, host: &str) -> Result<(), Error> {
        let name = ServerName::try_from(host.to_string()).unwrap();
        v.verify_server_cert(cert, &[], &name, &[], UnixTime::now())
            .map(|_| ())
    }

    #[test]
    fn pinned_ca_true_certificate_is_accepted_for_its_name_only() {
        let cert = ca_true("dev.example", 2090);
        let v = verifier(&[&cert]);
        verify(&v, &cert, "dev.example").unwrap();
        let wrong = verify(&v, &cert, "other.example").unwrap_err();
        assert!(
            matches!(
                wrong,
                Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. })
            ),
            "{wrong:?}"
        );
    }

    #[test]
    fn ca_true_certificate_that_is_not_the_anchor_is_refused() {
        let anchor = ca_true("dev.example", 2090);
        let other = ca_true("dev.example", 2090);
        let err = verify(&verifier(&[&anchor]), &other, "dev.example").unwrap_err();
        assert!(!matches!(err, Error::General(_)), "{err:?}");
        // Without any anchor: refused too.
        let err = verify(&verifier(&[]), &other, "dev.example").unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidCertificate(CertificateError::UnknownIssuer)
            ),
            "{err:?}"
        );
    }

    #[test]
    fn expired_pinned_certificate_is_refused() {
        // webpki checks the validity period before basic constraints; the exception relies on
        // that order, and this test fails if it ever changes.
        let cert = ca_true("dev.example", 2002);
        let err = verify(&verifier(&[&cert]), &cert, "dev.example").unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidCertificate(CertificateError::ExpiredContext { .. })
            ),
            "{err:?}"
        );
    }
}
