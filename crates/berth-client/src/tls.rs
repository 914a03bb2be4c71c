//! TLS settings of the HTTP clients: verified by the registry's own CA certificates plus the
//! system roots, or not verified at all for an `insecure` registry.
//!
//! The system roots (`/etc/ssl/certs`, or `SSL_CERT_FILE` / `SSL_CERT_DIR`) are read once
//! per process, and only when a certificate is not issued by one of the registry's own CAs:
//! reading and parsing them (some 150 certificates, twice: bundle and directory) is most of
//! the start-up time of a short command otherwise, and each HTTP client did it again.

use std::sync::{Arc, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, DigitallySignedStruct, Error, OtherError, RootCertStore, SignatureScheme,
};

/// A certificate no trusted CA issued, with the names the server presented (taken from its
/// certificate), so that the error says which CA to trust.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UntrustedCertificate {
    /// The issuer's distinguished name (`CN=Berth CA, O=Example`).
    pub issuer: String,
    /// The certificate's own subject.
    pub subject: String,
    /// A trusted CA has the issuer's name, but did not sign it (another CA of that name).
    pub same_name: bool,
}

impl UntrustedCertificate {
    /// From the server's certificate (DER); `None` when it does not parse.
    pub fn of(end_entity: &[u8], same_name: bool) -> Option<UntrustedCertificate> {
        let (_, cert) = x509_parser::parse_x509_certificate(end_entity).ok()?;
        let name = |n: &x509_parser::x509::X509Name<'_>| {
            let s = n.to_string();
            if s.is_empty() {
                "an empty name".to_string()
            } else {
                s
            }
        };
        Some(UntrustedCertificate {
            issuer: name(cert.issuer()),
            subject: name(cert.subject()),
            same_name,
        })
    }
}

impl std::fmt::Display for UntrustedCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (issuer, subject) = (&self.issuer, &self.subject);
        if self.same_name {
            write!(
                f,
                "the server presented a certificate issued by `{issuer}` (for `{subject}`), but not by the trusted CA of that name: another CA with the same name issued it"
            )
        } else if issuer == subject {
            write!(
                f,
                "the server presented a self-signed certificate (`{subject}`), which is not trusted"
            )
        } else {
            write!(
                f,
                "the server presented a certificate issued by `{issuer}` (for `{subject}`), a CA that is not trusted"
            )
        }
    }
}

impl std::error::Error for UntrustedCertificate {}

/// An unknown issuer (or a trusted CA's name on a certificate it did not sign), said with
/// the issuer's name from `end_entity`.
fn with_issuer(e: Error, end_entity: &CertificateDer<'_>) -> Error {
    let same_name = match &e {
        Error::InvalidCertificate(CertificateError::UnknownIssuer) => false,
        Error::InvalidCertificate(CertificateError::BadSignature) => true,
        _ => return e,
    };
    match UntrustedCertificate::of(end_entity, same_name) {
        Some(u) => Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(u)))),
        None => e,
    }
}

fn provider() -> Arc<CryptoProvider> {
    static P: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    P.get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .clone()
}

/// The verifier of the system roots, built on first use; `Err` when the system has none.
fn system_verifier() -> Result<Arc<WebPkiServerVerifier>, Error> {
    static V: OnceLock<Result<Arc<WebPkiServerVerifier>, String>> = OnceLock::new();
    V.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        if roots.is_empty() {
            return Err("no CA certificates were found on this system (/etc/ssl/certs, SSL_CERT_FILE, SSL_CERT_DIR)".into());
        }
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| e.to_string())
    })
    .clone()
    .map_err(Error::General)
}

/// Verifies with the registry's CAs first, then with the system roots; or, for an
/// `insecure` registry, accepts any certificate (the handshake signatures are still checked).
#[derive(Debug)]
struct Verifier {
    own: Option<Arc<WebPkiServerVerifier>>,
    insecure: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        if self.insecure {
            return Ok(ServerCertVerified::assertion());
        }
        let Some(own) = &self.own else {
            return system_verifier()?
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
                .map_err(|e| with_issuer(e, end_entity));
        };
        match own.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            // Not by the registry's CAs (an unknown issuer, or another CA of the same name):
            // the system roots may still vouch for it; if not, the first reason is reported.
            Err(first @ Error::InvalidCertificate(_)) => system_verifier()
                .and_then(|v| {
                    v.verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
                })
                .map_err(|_| with_issuer(first, end_entity)),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
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
        verify_tls13_signature(
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

/// The rustls configuration for a registry: `own_cas` (DER) trusted besides the system
/// roots, or nothing verified when `insecure`. Fails when a CA is not a usable trust anchor.
pub(crate) fn client_config(
    own_cas: Vec<CertificateDer<'static>>,
    insecure: bool,
) -> Result<rustls::ClientConfig, String> {
    let provider = provider();
    let own = if own_cas.is_empty() || insecure {
        None
    } else {
        let mut roots = RootCertStore::empty();
        for c in own_cas {
            roots
                .add(c)
                .map_err(|e| format!("a CA certificate is not a usable trust anchor: {e}"))?;
        }
        Some(
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| e.to_string())?,
        )
    };
    let verifier = Arc::new(Verifier {
        own,
        insecure,
        provider: provider.clone(),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(config)
}
