//! Signature policy at the site (issue 14): which images must be signed by which keys.
//!
//! - [`Policy`]: Berth's YAML policy format or containers' `policy.json` (`docker` transport:
//!   `insecureAcceptAnything`, `reject`, `sigstoreSigned` with `keyPath`/`keyPaths`/`keyData`
//!   and `signedIdentity`), the most specific scope winning as in containers/image;
//! - [`PublicKey`]: ECDSA P-256 and Ed25519 public keys (PEM, SubjectPublicKeyInfo), checked
//!   with RustCrypto's `p256` and `ed25519-dalek`;
//! - [`Policy::decide`]: cosign simple-signing signatures of one image digest → a typed
//!   [`Verdict`] (signed by KEY, unsigned, wrong key, payload damaged, digest mismatch,
//!   identity mismatch, not verified), the identity checked against the image's *source*
//!   reference, which a mirrored image keeps.
//!
//! No I/O: key files are read through the closure the caller gives [`Policy::parse`], and the
//! signatures are fetched by the caller (`berth-node`).

mod identity;
mod keys;
mod policy;
mod verify;

pub use identity::{Named, SignedIdentity};
pub use keys::PublicKey;
pub use policy::{Policy, ReadKey, Requirement, SignedBy};
pub use verify::{
    BUNDLE_ANNOTATION, CERTIFICATE_ANNOTATION, COSIGN_TYPE, Decision, SIGNATURE_ANNOTATION,
    SIGSTORE_BUNDLE, SIMPLE_SIGNING, Signature, Signatures, Verdict,
};

/// A policy file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{file}: {}{message}", prefix(.field))]
    Invalid {
        file: String,
        field: String,
        message: String,
    },
}

fn prefix(field: &str) -> String {
    match field.is_empty() {
        true => String::new(),
        false => format!("{field}: "),
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
