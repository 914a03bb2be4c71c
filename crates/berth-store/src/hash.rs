//! Digests for the store: the one hasher of `berth-oci`, with the store's error type.

use berth_reference::Digest;

pub use berth_oci::Hasher;
pub(crate) use berth_oci::hex;

use crate::StoreError;

/// A hasher in the algorithm of `d`, or [`StoreError::Unsupported`].
pub(crate) fn hasher_for(d: &Digest) -> Result<Hasher, StoreError> {
    Hasher::for_digest(d).map_err(|_| StoreError::Unsupported { digest: d.clone() })
}

/// The sha256 digest of some bytes.
pub fn sha256(bytes: &[u8]) -> Digest {
    berth_oci::sha256_of(bytes)
}

/// The digest of `bytes` in the algorithm of `like`.
pub fn digest_like(bytes: &[u8], like: &Digest) -> Result<Digest, StoreError> {
    let mut h = hasher_for(like)?;
    h.update(bytes);
    Ok(h.finish())
}

/// A random 128-bit identifier in hex (upload sessions, temporary files).
pub fn random_id() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the operating system's random source works");
    hex(&b)
}
