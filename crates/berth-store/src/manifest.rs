//! What a manifest refers to: enough parsing to validate pushes, walk indexes, collect
//! referrers and mark blobs in gc. The bytes themselves are never re-serialized.

use berth_reference::Digest;
use serde_json::Value;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// The manifest media types the registry stores.
pub const MANIFEST_TYPES: &[&str] = &[
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_LIST,
    DOCKER_SCHEMA1,
    DOCKER_SCHEMA1_SIGNED,
];

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
}

impl ManifestRefs {
    pub fn is_index(&self) -> bool {
        matches!(self.media_type.as_deref(), Some(OCI_INDEX | DOCKER_LIST))
            || (!self.manifests.is_empty() && self.blobs.is_empty())
    }
}

/// Why a manifest was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("the manifest is not JSON: {0}")]
    NotJson(String),
    #[error("the manifest is not a JSON object")]
    NotObject,
    #[error("the manifest has an invalid digest at `{field}`: {reason}")]
    BadDigest { field: String, reason: String },
    #[error("the manifest has no `{field}` where one is required")]
    Missing { field: &'static str },
}

fn digest_at(v: &Value, field: String) -> Result<Digest, ManifestError> {
    let s = v
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| ManifestError::BadDigest {
            field: field.clone(),
            reason: "no `digest` string".into(),
        })?;
    Digest::parse(s).map_err(|e| ManifestError::BadDigest {
        field,
        reason: e.to_string(),
    })
}

/// Parses what a manifest refers to.
pub fn references(bytes: &[u8]) -> Result<ManifestRefs, ManifestError> {
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| ManifestError::NotJson(e.to_string()))?;
    let obj = v.as_object().ok_or(ManifestError::NotObject)?;
    let mut r = ManifestRefs {
        media_type: obj
            .get("mediaType")
            .and_then(Value::as_str)
            .map(String::from),
        annotations: obj.get("annotations").cloned(),
        ..Default::default()
    };
    if let Some(c) = obj.get("config") {
        r.blobs.push(digest_at(c, "config".into())?);
        r.artifact_type = c.get("mediaType").and_then(Value::as_str).map(String::from);
    }
    if let Some(layers) = obj.get("layers").and_then(Value::as_array) {
        for (i, l) in layers.iter().enumerate() {
            r.blobs.push(digest_at(l, format!("layers[{i}]"))?);
        }
    }
    // Docker schema 1
    if let Some(layers) = obj.get("fsLayers").and_then(Value::as_array) {
        for (i, l) in layers.iter().enumerate() {
            let s = l.get("blobSum").and_then(Value::as_str).unwrap_or_default();
            r.blobs
                .push(Digest::parse(s).map_err(|e| ManifestError::BadDigest {
                    field: format!("fsLayers[{i}].blobSum"),
                    reason: e.to_string(),
                })?);
        }
    }
    if let Some(ms) = obj.get("manifests").and_then(Value::as_array) {
        for (i, m) in ms.iter().enumerate() {
            r.manifests.push(digest_at(m, format!("manifests[{i}]"))?);
        }
    }
    if let Some(s) = obj.get("subject") {
        r.subject = Some(digest_at(s, "subject".into())?);
    }
    if let Some(a) = obj.get("artifactType").and_then(Value::as_str) {
        r.artifact_type = Some(a.to_string());
    }
    r.blobs.sort();
    r.blobs.dedup();
    Ok(r)
}
