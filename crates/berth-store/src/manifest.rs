//! What a manifest refers to, as the store needs it: to validate pushes, walk indexes,
//! collect referrers and mark blobs in gc. The walking is `berth-oci`'s one parser; the
//! bytes themselves are never re-serialized.

use berth_oci::Kind;
use berth_reference::Digest;
use serde_json::Value;

pub use berth_oci::ManifestError;
pub use berth_oci::media::{
    DOCKER_LIST, DOCKER_MANIFEST, DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED, OCI_INDEX, OCI_MANIFEST,
    is_foreign_layer,
};

/// The manifest media types the registry stores.
pub const MANIFEST_TYPES: &[&str] = berth_oci::media::MANIFEST_TYPES;

/// The references of one manifest.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ManifestRefs {
    /// `mediaType` in the JSON, if any.
    pub media_type: Option<String>,
    /// Config and layers (image manifests), as blobs.
    pub blobs: Vec<Digest>,
    /// Child manifests (indexes, lists).
    pub manifests: Vec<Digest>,
    /// The OCI `subject` (referrers API).
    pub subject: Option<Digest>,
    /// `artifactType`, or the config's media type for image manifests.
    pub artifact_type: Option<String>,
    /// `annotations`, as JSON.
    pub annotations: Option<Value>,
    /// Layers a registry need not hold (also in `blobs`): non-distributable OCI layers and
    /// foreign Docker layers, which clients fetch from their `urls`.
    pub foreign: Vec<Digest>,
}

impl ManifestRefs {
    pub fn is_index(&self) -> bool {
        matches!(self.media_type.as_deref(), Some(OCI_INDEX | DOCKER_LIST))
            || (!self.manifests.is_empty() && self.blobs.is_empty())
    }
}

/// Parses what a manifest refers to. A JSON object of a type Berth does not know (neither
/// `config` nor `manifests`) refers to nothing and is kept as it is.
pub fn references(bytes: &[u8]) -> Result<ManifestRefs, ManifestError> {
    let w = match berth_oci::walk(bytes, None) {
        Ok(w) => w,
        Err(ManifestError::Unknown { media_type }) => {
            return Ok(ManifestRefs {
                media_type: Some(media_type).filter(|m| !m.is_empty()),
                ..Default::default()
            });
        }
        Err(e) => return Err(e),
    };
    let foreign = match &w.kind {
        Kind::Image { layers, .. } => layers
            .iter()
            .filter(|l| l.media_type.as_deref().is_some_and(is_foreign_layer))
            .map(|l| l.digest.clone())
            .collect(),
        _ => Vec::new(),
    };
    Ok(ManifestRefs {
        foreign,
        blobs: w.blob_digests(),
        manifests: match &w.kind {
            Kind::Index(children) => children.iter().map(|c| c.digest.clone()).collect(),
            _ => Vec::new(),
        },
        subject: w.subject.map(|s| s.digest),
        media_type: w.declared_media_type,
        artifact_type: w.artifact_type,
        annotations: w.annotations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_layers_are_blobs_a_registry_may_lack() {
        let d = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let m = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": d('a'), "size": 1},
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", "digest": d('b'), "size": 1, "urls": ["https://x/b"]},
                {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "digest": d('c'), "size": 1},
                {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d('e'), "size": 1},
            ],
        });
        let r = references(m.to_string().as_bytes()).unwrap();
        assert_eq!(r.blobs.len(), 4);
        let foreign: Vec<String> = r.foreign.iter().map(ToString::to_string).collect();
        assert_eq!(foreign, vec![d('b'), d('c')]);
    }
}
