//! `bundle.json`: what a bundle holds. It names the digest of every other entry (the OCI
//! `index.json`, each profile, each blob), so a signature over it covers the whole bundle.

use serde::{Deserialize, Serialize};

/// The `format_version` this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The entry names of a bundle.
pub const MANIFEST_ENTRY: &str = "bundle.json";
pub const SIGNATURE_ENTRY: &str = "bundle.json.sig";
pub const LAYOUT_ENTRY: &str = "oci-layout";
pub const INDEX_ENTRY: &str = "index.json";
pub const PROFILES_DIR: &str = "profiles";

/// The bytes of the `oci-layout` entry.
pub const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// `bundle.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleManifest {
    pub format_version: u32,
    /// The names of the profiles the bundle was built from (their `name:` field).
    pub created_from: Vec<String>,
    /// Platforms kept (`os/arch[/variant]`); empty when every platform is in the bundle.
    #[serde(default)]
    pub platforms: Vec<String>,
    /// The OCI `index.json` entry.
    pub index: Content,
    /// The profile files under `profiles/`.
    pub profiles: Vec<ProfileEntry>,
    /// Every image, by its full source reference (the `org.opencontainers.image.ref.name`).
    pub images: Vec<ImageEntry>,
    /// Every blob under `blobs/` (manifests, configs, layers), sorted by digest.
    pub blobs: Vec<Content>,
    /// Sum of the blob sizes.
    pub total_size: u64,
}

/// A digest and a size.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Content {
    pub digest: String,
    pub size: u64,
}

/// One profile file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileEntry {
    /// The file name under `profiles/`.
    pub file: String,
    pub digest: String,
    pub size: u64,
}

/// One image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageEntry {
    /// The full source reference (`registry/path:tag`), also its ref name in `index.json`.
    pub source: String,
    /// The digest of its top manifest in the bundle.
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    /// The digest it had at the source when `--platform` replaced its index; absent when
    /// the image is byte for byte the source's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_digest: Option<String>,
}

impl BundleManifest {
    /// The exact bytes written to `bundle.json` (and signed).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("bundle.json serializes");
        v.push(b'\n');
        v
    }
}

/// A profile file name safe to use as a single path component.
pub fn valid_profile_file(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}
