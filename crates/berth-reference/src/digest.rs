//! Content digests (`algorithm:hex`), as the OCI image spec defines them.

use std::fmt;

use crate::ReferenceError;

/// A digest algorithm Berth can verify or at least carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
    Blake3,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
            Algorithm::Blake3 => "blake3",
        }
    }

    /// Number of lower-case hex characters the encoded part must have.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 | Algorithm::Blake3 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// A validated content digest such as `sha256:<64 hex>`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    /// Parses `algorithm:hex`, checking the algorithm is a registered one and the hex part
    /// has the right length and is lower case.
    pub fn parse(s: &str) -> Result<Digest, ReferenceError> {
        let bad = |reason: String| ReferenceError::InvalidDigest {
            digest: s.to_string(),
            reason,
        };
        let (alg, hex) = s.split_once(':').ok_or_else(|| {
            bad("expected `algorithm:hex`, e.g. `sha256:` followed by 64 hex digits".into())
        })?;
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            "blake3" => Algorithm::Blake3,
            other => {
                return Err(bad(format!(
                    "unsupported digest algorithm `{other}` (use sha256, sha512 or blake3)"
                )));
            }
        };
        if hex.len() != algorithm.hex_len() {
            return Err(bad(format!(
                "a {} digest has {} hex digits, this one has {}",
                algorithm.as_str(),
                algorithm.hex_len(),
                hex.len()
            )));
        }
        if let Some(c) = hex.chars().find(|c| !matches!(c, '0'..='9' | 'a'..='f')) {
            let why = if c.is_ascii_hexdigit() {
                "hex digits must be lower case".to_string()
            } else {
                format!("`{c}` is not a hex digit")
            };
            return Err(bad(why));
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_string(),
        })
    }

    /// Builds a sha256 digest from a raw 32-byte hash.
    pub fn sha256_from_bytes(bytes: &[u8; 32]) -> Digest {
        let mut hex = String::with_capacity(64);
        for b in bytes {
            hex.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
            hex.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
        }
        Digest {
            algorithm: Algorithm::Sha256,
            hex,
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The encoded (hex) part.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.as_str(), self.hex)
    }
}

text_form!(Digest);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let s = format!("sha256:{}", "a".repeat(64));
        let d = Digest::parse(&s).unwrap();
        assert_eq!(d.to_string(), s);
        assert_eq!(d.algorithm(), Algorithm::Sha256);
        let s = format!("sha512:{}", "0".repeat(128));
        assert_eq!(Digest::parse(&s).unwrap().to_string(), s);
    }

    #[test]
    fn rejects_bad_digests() {
        for (input, needle) in [
            ("sha256:abc", "64 hex digits"),
            (
                "md5:0123456789abcdef0123456789abcdef",
                "unsupported digest algorithm `md5`",
            ),
            ("sha256", "algorithm:hex"),
            (&format!("sha256:{}", "A".repeat(64)), "lower case"),
            (&format!("sha256:{}", "g".repeat(64)), "not a hex digit"),
            (&format!("sha512:{}", "a".repeat(64)), "128 hex digits"),
        ] {
            let err = Digest::parse(input).unwrap_err().to_string();
            assert!(err.contains(needle), "{input}: {err}");
            assert!(err.contains(input), "{input}: {err}");
        }
    }

    #[test]
    fn from_bytes() {
        let d = Digest::sha256_from_bytes(&[0xab; 32]);
        assert_eq!(d.hex(), "ab".repeat(32));
    }
}
