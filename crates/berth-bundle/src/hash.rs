//! Digests of bundle entries (sha256, sha512), in one piece or as they stream.

use std::io::{self, Read};

use berth_reference::Algorithm;
use sha2::Digest as _;

/// A hash of either algorithm.
pub(crate) enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub(crate) fn new(alg: Algorithm) -> Hasher {
        match alg {
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            // Refused by `classify` before any hashing.
            _ => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    pub(crate) fn update(&mut self, b: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(b),
            Hasher::Sha512(h) => h.update(b),
        }
    }

    pub(crate) fn hex(self) -> String {
        let bytes: Vec<u8> = match self {
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
        };
        hex(&bytes)
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(H[(b >> 4) as usize] as char);
        s.push(H[(b & 15) as usize] as char);
    }
    s
}

/// `algorithm:hex` of `bytes`.
pub(crate) fn digest_bytes(alg: Algorithm, bytes: &[u8]) -> String {
    let mut h = Hasher::new(alg);
    h.update(bytes);
    format!("{}:{}", alg.as_str(), h.hex())
}

pub(crate) struct HashingReader<'a, R: Read> {
    pub(crate) inner: &'a mut R,
    pub(crate) hasher: Hasher,
    pub(crate) read: u64,
}

impl<R: Read> Read for HashingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}
