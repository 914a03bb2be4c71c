//! Streaming digests (sha256 with SHA-NI where the CPU has it, sha512).

use berth_reference::{Algorithm, Digest};
use sha2::Digest as _;

use crate::StoreError;

/// A running hash for one of the supported algorithms.
#[derive(Clone)]
pub enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub fn sha256() -> Hasher {
        Hasher::Sha256(sha2::Sha256::new())
    }

    pub fn for_algorithm(d: &Digest) -> Result<Hasher, StoreError> {
        match d.algorithm() {
            Algorithm::Sha256 => Ok(Hasher::sha256()),
            Algorithm::Sha512 => Ok(Hasher::Sha512(sha2::Sha512::new())),
            _ => Err(StoreError::Unsupported { digest: d.clone() }),
        }
    }

    pub fn update(&mut self, b: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(b),
            Hasher::Sha512(h) => h.update(b),
        }
    }

    pub fn finish(self) -> Digest {
        let (alg, bytes): (&str, Vec<u8>) = match self {
            Hasher::Sha256(h) => ("sha256", h.finalize().to_vec()),
            Hasher::Sha512(h) => ("sha512", h.finalize().to_vec()),
        };
        Digest::parse(&format!("{alg}:{}", hex(&bytes))).expect("a hash is a valid digest")
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(H[(b >> 4) as usize] as char);
        s.push(H[(b & 0xf) as usize] as char);
    }
    s
}

/// The sha256 digest of some bytes.
pub fn sha256(bytes: &[u8]) -> Digest {
    let mut h = Hasher::sha256();
    h.update(bytes);
    h.finish()
}

/// The digest of `bytes` in the algorithm of `like`.
pub fn digest_like(bytes: &[u8], like: &Digest) -> Result<Digest, StoreError> {
    let mut h = Hasher::for_algorithm(like)?;
    h.update(bytes);
    Ok(h.finish())
}

/// A random 128-bit identifier in hex (upload sessions, temporary files).
pub fn random_id() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the operating system's random source works");
    hex(&b)
}
