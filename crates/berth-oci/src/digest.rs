//! The one hasher: streaming digests in the algorithm a digest names.

use berth_reference::{Algorithm, Digest};
use sha2::Digest as _;

use crate::VerifyError;

/// A running hash for one of the supported algorithms (sha256 uses SHA-NI where the CPU
/// has it).
#[derive(Clone)]
pub enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub fn sha256() -> Hasher {
        Hasher::Sha256(sha2::Sha256::new())
    }

    /// A hasher in the algorithm of `d`; sha256 and sha512 are supported.
    pub fn for_digest(d: &Digest) -> Result<Hasher, VerifyError> {
        match d.algorithm() {
            Algorithm::Sha256 => Ok(Hasher::sha256()),
            Algorithm::Sha512 => Ok(Hasher::Sha512(sha2::Sha512::new())),
            a => Err(VerifyError::Unsupported {
                digest: d.clone(),
                alg: a.as_str(),
            }),
        }
    }

    pub fn update(&mut self, b: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(b),
            Hasher::Sha512(h) => h.update(b),
        }
    }

    pub fn finish(self) -> Digest {
        match self {
            Hasher::Sha256(h) => {
                let out: [u8; 32] = h.finalize().into();
                Digest::sha256_from_bytes(&out)
            }
            Hasher::Sha512(h) => Digest::parse(&format!("sha512:{}", hex(&h.finalize())))
                .expect("a sha512 hash is a valid digest"),
        }
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(H[(b >> 4) as usize] as char);
        s.push(H[(b & 0xf) as usize] as char);
    }
    s
}

/// The digest of `bytes` with the algorithm of `like` (sha256 or sha512).
pub fn digest_of(bytes: &[u8], like: &Digest) -> Result<Digest, VerifyError> {
    let mut h = Hasher::for_digest(like)?;
    h.update(bytes);
    Ok(h.finish())
}

/// The sha256 digest of `bytes`.
pub fn sha256_of(bytes: &[u8]) -> Digest {
    let mut h = Hasher::sha256();
    h.update(bytes);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        assert_eq!(
            sha256_of(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let like = Digest::parse(&format!("sha512:{}", "0".repeat(128))).unwrap();
        let d = digest_of(b"abc", &like).unwrap();
        assert!(d.to_string().starts_with("sha512:ddaf35a193617aba"), "{d}");
        assert_eq!(hex(&[0, 0xab, 0xff]), "00abff");
    }
}
