//! Ed25519 signatures over `bundle.json`.
//!
//! Key files: a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`, what
//! `openssl genpkey -algorithm ed25519` writes) or a raw 32-byte seed; public keys as SPKI
//! PEM (`-----BEGIN PUBLIC KEY-----`) or 32 raw bytes. `bundle.json.sig` holds the 64-byte
//! signature, base64-free: the raw bytes.

use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

use crate::BundleError;

pub use ed25519_dalek::{SigningKey as PrivateKey, VerifyingKey as PublicKey};

fn key_err(path: &Path, detail: impl Into<String>) -> BundleError {
    BundleError::Key {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

/// A key file: exactly 32 raw bytes, or text (PEM).
enum KeyFile {
    Raw([u8; 32]),
    Pem(String),
}

/// Reads a key file; `not_text` is the error for a file that is neither 32 bytes nor text,
/// and a text holding `other.0` (the other kind of key) is refused with `other.1`.
fn read_key_file(path: &Path, not_text: &str, other: (&str, &str)) -> Result<KeyFile, BundleError> {
    let bytes = std::fs::read(path).map_err(|e| key_err(path, format!("cannot read: {e}")))?;
    if let Ok(raw) = <[u8; 32]>::try_from(bytes.as_slice()) {
        return Ok(KeyFile::Raw(raw));
    }
    let text = String::from_utf8(bytes).map_err(|_| key_err(path, not_text))?;
    if text.contains(other.0) {
        return Err(key_err(path, other.1));
    }
    Ok(KeyFile::Pem(text))
}

/// Reads a signing key: PKCS#8 PEM, or a file of exactly 32 bytes (the seed).
pub fn read_signing_key(path: &Path) -> Result<SigningKey, BundleError> {
    let file = read_key_file(
        path,
        "not an ed25519 key: expected a PEM private key or a 32-byte seed (make one with `berth bundle keygen --out PREFIX`)",
        (
            "PUBLIC KEY",
            "this is a public key; --signing-key takes the private key (PREFIX.key)",
        ),
    )?;
    let text = match file {
        KeyFile::Raw(seed) => return Ok(SigningKey::from_bytes(&seed)),
        KeyFile::Pem(text) => text,
    };
    SigningKey::from_pkcs8_pem(&text).map_err(|e| {
        key_err(
            path,
            format!("not an ed25519 PKCS#8 PEM private key ({e}); make one with `berth bundle keygen --out PREFIX`"),
        )
    })
}

/// Reads a public key: SPKI PEM, or a file of exactly 32 bytes.
pub fn read_public_key(path: &Path) -> Result<VerifyingKey, BundleError> {
    let file = read_key_file(
        path,
        "not an ed25519 public key: expected PEM or 32 raw bytes",
        (
            "PRIVATE KEY",
            "this is a private key; --public-key takes the public key (PREFIX.pub)",
        ),
    )?;
    match file {
        KeyFile::Raw(raw) => VerifyingKey::from_bytes(&raw)
            .map_err(|e| key_err(path, format!("not an ed25519 public key: {e}"))),
        KeyFile::Pem(text) => VerifyingKey::from_public_key_pem(&text)
            .map_err(|e| key_err(path, format!("not an ed25519 SPKI PEM public key: {e}"))),
    }
}

/// Makes a new key pair and writes `PREFIX.key` (PKCS#8 PEM, mode 0600) and `PREFIX.pub`
/// (SPKI PEM). Refuses to overwrite existing files.
pub fn keygen(prefix: &Path) -> Result<(PathBuf, PathBuf), BundleError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| key_err(prefix, format!("no randomness from the system: {e}")))?;
    let key = SigningKey::from_bytes(&seed);
    let with = |ext: &str| {
        let mut s = prefix.as_os_str().to_os_string();
        s.push(ext);
        PathBuf::from(s)
    };
    let (kp, pp) = (with(".key"), with(".pub"));
    let private = key
        .to_pkcs8_pem(Default::default())
        .map_err(|e| key_err(&kp, format!("cannot encode: {e}")))?;
    let public = key
        .verifying_key()
        .to_public_key_pem(Default::default())
        .map_err(|e| key_err(&pp, format!("cannot encode: {e}")))?;
    write_new(&kp, private.as_bytes(), 0o600)?;
    if let Err(e) = write_new(&pp, public.as_bytes(), 0o644) {
        let _ = std::fs::remove_file(&kp);
        return Err(e);
    }
    Ok((kp, pp))
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), BundleError> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = o.open(path).map_err(|e| {
        key_err(
            path,
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                "already exists; choose another --out PREFIX (keys are never overwritten)".into()
            } else {
                format!("cannot create: {e}")
            },
        )
    })?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| key_err(path, format!("cannot write: {e}")))
}

/// The signature of `bundle.json`'s bytes.
pub fn sign(key: &SigningKey, manifest: &[u8]) -> Vec<u8> {
    key.sign(manifest).to_bytes().to_vec()
}

/// Checks `sig` over `manifest` with `key`.
pub fn verify(
    bundle: &str,
    key: &VerifyingKey,
    manifest: &[u8],
    sig: Option<&[u8]>,
) -> Result<(), BundleError> {
    let fail = |detail: &str| BundleError::Signature {
        bundle: bundle.to_string(),
        detail: detail.to_string(),
    };
    let sig = sig.ok_or_else(|| {
        fail("the bundle is not signed (no bundle.json.sig) but --public-key was given; build it with --signing-key, or leave out --public-key to accept unsigned bundles")
    })?;
    let sig = Signature::from_slice(sig)
        .map_err(|_| fail("bundle.json.sig is not a 64-byte ed25519 signature"))?;
    key.verify(manifest, &sig).map_err(|_| {
        fail("the signature of bundle.json does not match the public key: the bundle was signed with another key or bundle.json was altered; it is refused")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keygen_sign_verify_and_raw_seeds() {
        let dir = tempfile::tempdir().unwrap();
        let (kp, pp) = keygen(&dir.path().join("site")).unwrap();
        assert!(
            keygen(&dir.path().join("site")).is_err(),
            "never overwrites"
        );
        let key = read_signing_key(&kp).unwrap();
        let public = read_public_key(&pp).unwrap();
        let sig = sign(&key, b"manifest");
        verify("b", &public, b"manifest", Some(&sig)).unwrap();
        assert!(verify("b", &public, b"manifest!", Some(&sig)).is_err());
        assert!(verify("b", &public, b"manifest", None).is_err());
        let raw = dir.path().join("seed");
        std::fs::write(&raw, [7u8; 32]).unwrap();
        let other = read_signing_key(&raw).unwrap();
        assert!(verify("b", &public, b"manifest", Some(&sign(&other, b"manifest"))).is_err());
        assert!(
            read_signing_key(&pp)
                .unwrap_err()
                .to_string()
                .contains("public key")
        );
        assert!(
            read_public_key(&kp)
                .unwrap_err()
                .to_string()
                .contains("private key")
        );
    }
}
