//! Just enough of the image manifest formats to find what a manifest references.

use berth_client::{
    DOCKER_LIST, DOCKER_MANIFEST, DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED, Manifest, OCI_INDEX,
    OCI_MANIFEST,
};
use berth_reference::Digest;
use serde::Deserialize;

use crate::{Platform, TransferError};

/// A content descriptor.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: Option<String>,
    pub digest: Digest,
    pub size: u64,
    /// The platform of an index entry.
    #[serde(default)]
    pub platform: Option<Platform>,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(rename = "schemaVersion")]
    schema_version: Option<u32>,
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    manifests: Option<Vec<Descriptor>>,
}

/// What a manifest references.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// An OCI index or Docker manifest list: child manifests.
    Index(Vec<Descriptor>),
    /// An image manifest: config and layers (blobs).
    Image(Vec<Descriptor>),
}

pub fn is_index_type(mt: &str) -> bool {
    mt == OCI_INDEX || mt == DOCKER_LIST
}

/// Parses `m` (never re-serialized; only read).
pub fn parse(m: &Manifest, source_name: &str, reference: &str) -> Result<Parsed, TransferError> {
    let bad = |detail: String| TransferError::BadManifest {
        source_name: source_name.to_string(),
        reference: reference.to_string(),
        detail,
    };
    if m.media_type == DOCKER_SCHEMA1 || m.media_type == DOCKER_SCHEMA1_SIGNED {
        return Err(TransferError::Unsupported {
            source_name: source_name.into(),
            reference: reference.into(),
            media_type: m.media_type.clone(),
        });
    }
    let raw: Raw = serde_json::from_slice(&m.bytes).map_err(|e| bad(e.to_string()))?;
    if raw.schema_version == Some(1) {
        return Err(TransferError::Unsupported {
            source_name: source_name.into(),
            reference: reference.into(),
            media_type: DOCKER_SCHEMA1_SIGNED.into(),
        });
    }
    let mt = raw.media_type.as_deref().unwrap_or(&m.media_type);
    if is_index_type(mt) || (raw.manifests.is_some() && raw.config.is_none()) {
        return Ok(Parsed::Index(raw.manifests.unwrap_or_default()));
    }
    if mt == OCI_MANIFEST || mt == DOCKER_MANIFEST || raw.config.is_some() {
        let config = raw.config.ok_or_else(|| bad("it has no `config`".into()))?;
        let mut blobs = vec![config];
        blobs.extend(raw.layers);
        return Ok(Parsed::Image(blobs));
    }
    Err(TransferError::Unsupported {
        source_name: source_name.into(),
        reference: reference.into(),
        media_type: mt.to_string(),
    })
}
