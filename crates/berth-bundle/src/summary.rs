//! How reports read: one-line summaries (`Display`) and the JSON of `berth bundle build` and
//! `inspect` (`Serialize`).

use std::fmt;

use berth_transfer::units::size;
use serde::{Serialize, Serializer};

use crate::{BuildReport, BundleManifest, Contents, Head};

impl Serialize for BuildReport {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Out<'a> {
            files: &'a [std::path::PathBuf],
            compressed_size: u64,
            manifest: &'a BundleManifest,
            fetch: &'a berth_transfer::Report,
            reused_blobs: u64,
            warnings: &'a [String],
        }
        Out {
            files: &self.files,
            compressed_size: self.compressed_size,
            manifest: &self.manifest,
            fetch: &self.fetch,
            reused_blobs: self.reused_blobs,
            warnings: &self.warnings,
        }
        .serialize(s)
    }
}

impl fmt::Display for BuildReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.manifest;
        write!(
            f,
            "{} image(s), {} blob(s), {} of content → {} in {} file(s); fetched {} blob(s) ({}), reused {} from --existing",
            m.images.len(),
            m.blobs.len(),
            size(m.total_size),
            size(self.compressed_size),
            self.files.len(),
            self.fetch.blobs.copied,
            size(self.fetch.bytes),
            self.reused_blobs
        )
    }
}

/// The manifest's fields, `signed`, `parts` and `compressed_size`.
impl Serialize for Head {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Out<'a> {
            #[serde(flatten)]
            manifest: &'a BundleManifest,
            signed: bool,
            parts: &'a [std::path::PathBuf],
            compressed_size: u64,
        }
        Out {
            manifest: &self.manifest,
            signed: self.signature.is_some(),
            parts: &self.parts,
            compressed_size: self.compressed_size,
        }
        .serialize(s)
    }
}

impl fmt::Display for Head {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.manifest;
        let platforms = match m.platforms.is_empty() {
            true => "all".to_string(),
            false => m.platforms.join(", "),
        };
        write!(
            f,
            "format {}; from {}; platforms: {platforms}; {} blob(s), {} of content, {} compressed in {} file(s); {}",
            m.format_version,
            m.created_from.join(", "),
            m.blobs.len(),
            size(m.total_size),
            size(self.compressed_size),
            self.parts.len(),
            match self.signature {
                Some(_) => "signed (check with verify --public-key)",
                None => "not signed",
            }
        )
    }
}

/// What a full pass found: images, blobs, and the signature's state.
impl fmt::Display for Contents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.head.manifest;
        write!(
            f,
            "{} image(s), {} blob(s) re-hashed, every reference present{}",
            m.images.len(),
            m.blobs.len(),
            match (self.signature_verified, &self.head.signature) {
                (true, _) => ", signature matches the public key",
                (false, Some(_)) => " (signed; give --public-key to check the signature)",
                (false, None) => " (not signed)",
            }
        )
    }
}
