//! Public keys a policy trusts: ECDSA P-256 and Ed25519, PEM `PUBLIC KEY` (SubjectPublicKeyInfo).

use std::fmt;

use p256::ecdsa::signature::Verifier as _;
use p256::pkcs8::DecodePublicKey as _;
use sha2::{Digest as _, Sha256};

/// A trusted public key and where it came from (a file name, or `keyData`).
#[derive(Clone)]
pub struct PublicKey {
    origin: String,
    fingerprint: String,
    key: KeyKind,
}

#[derive(Clone)]
enum KeyKind {
    P256(p256::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl fmt::Display for PublicKey {
    /// `ecdsa-p256 key cosign.pub (sha256:1a2b3c4d5e6f7a8b)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} key {} (sha256:{})",
            self.algorithm(),
            self.origin,
            self.fingerprint
        )
    }
}

impl PublicKey {
    /// A key from PEM text (`-----BEGIN PUBLIC KEY-----`); `origin` names it in messages.
    pub fn from_pem(origin: &str, pem: &[u8]) -> Result<PublicKey, String> {
        let text = std::str::from_utf8(pem).map_err(|_| "the key is not PEM text".to_string())?;
        let text = text.trim();
        if !text.contains("-----BEGIN PUBLIC KEY-----") {
            return Err(
                "expected a PEM `-----BEGIN PUBLIC KEY-----` block (e.g. cosign.pub)".into(),
            );
        }
        let key = if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_pem(text) {
            KeyKind::P256(k)
        } else if let Ok(k) = ed25519_dalek::VerifyingKey::from_public_key_pem(text) {
            KeyKind::Ed25519(k)
        } else {
            return Err(
                "not an ECDSA P-256 or Ed25519 public key (other curves and RSA are not supported)"
                    .into(),
            );
        };
        let der: Vec<u8> = {
            use base64::Engine as _;
            let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
            base64::engine::general_purpose::STANDARD
                .decode(body.trim())
                .unwrap_or_default()
        };
        let fingerprint = crate::hex(&Sha256::digest(&der)[..8]);
        Ok(PublicKey {
            origin: origin.to_string(),
            fingerprint,
            key,
        })
    }

    /// `ecdsa-p256` or `ed25519`.
    pub fn algorithm(&self) -> &'static str {
        match self.key {
            KeyKind::P256(_) => "ecdsa-p256",
            KeyKind::Ed25519(_) => "ed25519",
        }
    }

    /// Where the key came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Whether `signature` (ECDSA: ASN.1 DER or fixed 64 bytes; Ed25519: 64 bytes) is this
    /// key's signature over `payload` (ECDSA with SHA-256; Ed25519 over the bytes themselves).
    pub fn verifies(&self, payload: &[u8], signature: &[u8]) -> bool {
        match &self.key {
            KeyKind::P256(k) => {
                let sig = p256::ecdsa::Signature::from_der(signature)
                    .or_else(|_| p256::ecdsa::Signature::from_slice(signature));
                sig.is_ok_and(|s| k.verify(payload, &s).is_ok())
            }
            KeyKind::Ed25519(k) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|s| k.verify(payload, &s).is_ok()),
        }
    }
}
