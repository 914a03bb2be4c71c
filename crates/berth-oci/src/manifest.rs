//! Manifests as exact bytes, and the one parser that walks them: children of an index,
//! config and layers of an image, the `subject` of a referrer. The bytes are never
//! re-serialized; parsing only reads them.

use berth_reference::Digest;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Platform;
use crate::media::{self, DOCKER_SCHEMA1_SIGNED};

/// A manifest exactly as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub bytes: Bytes,
    pub media_type: String,
    /// The digest of `bytes` (verified by whoever fetched it by digest).
    pub digest: Digest,
}

/// A content descriptor, as in OCI manifests and indexes.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub digest: Digest,
    pub size: u64,
    /// The platform of an index entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Value>,
}

/// What kind of manifest it is, with what it refers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An OCI index or Docker manifest list: child manifests.
    Index(Vec<Descriptor>),
    /// An image (or artifact) manifest: its config and layers, which are blobs.
    Image {
        config: Descriptor,
        layers: Vec<Descriptor>,
    },
    /// Docker schema 1: layer digests (`fsLayers[].blobSum`), no sizes.
    Schema1(Vec<Digest>),
}

/// A walked manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Walk {
    /// The `mediaType` the JSON itself declares, if any.
    pub declared_media_type: Option<String>,
    /// The media type: the JSON's `mediaType`, else the one the manifest came with, else
    /// the one its shape says.
    pub media_type: String,
    pub kind: Kind,
    /// The OCI `subject` (referrers API).
    pub subject: Option<Descriptor>,
    /// `artifactType`, or for an image manifest its config's media type.
    pub artifact_type: Option<String>,
    /// `annotations`, as JSON.
    pub annotations: Option<Value>,
}

impl Walk {
    pub fn is_index(&self) -> bool {
        matches!(self.kind, Kind::Index(_))
    }

    /// The blobs this manifest refers to directly, each once, sorted (config and layers;
    /// schema 1 layers). Empty for an index.
    pub fn blob_digests(&self) -> Vec<Digest> {
        let mut out: Vec<Digest> = match &self.kind {
            Kind::Index(_) => Vec::new(),
            Kind::Image { config, layers } => std::iter::once(config)
                .chain(layers)
                .map(|d| d.digest.clone())
                .collect(),
            Kind::Schema1(ds) => ds.clone(),
        };
        out.sort();
        out.dedup();
        out
    }

    /// The child manifests of an index (empty for others).
    pub fn children(&self) -> &[Descriptor] {
        match &self.kind {
            Kind::Index(c) => c,
            _ => &[],
        }
    }
}

/// Why a manifest could not be walked. Each names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("the manifest is not JSON: {0}")]
    NotJson(String),
    #[error("the manifest is not a JSON object")]
    NotObject,
    #[error("the manifest has an invalid descriptor at `{field}`: {reason}")]
    BadDescriptor { field: String, reason: String },
    #[error("the manifest has an invalid digest at `{field}`: {reason}")]
    BadDigest { field: String, reason: String },
    #[error("the manifest has no `{field}` where one is required")]
    Missing { field: &'static str },
    #[error(
        "the manifest is neither an image manifest nor an index (media type `{media_type}`, no `config` and no `manifests`)"
    )]
    Unknown { media_type: String },
}

fn descriptor(v: &Value, field: String) -> Result<Descriptor, ManifestError> {
    let obj = v.as_object().ok_or_else(|| ManifestError::BadDescriptor {
        field: field.clone(),
        reason: "not a JSON object".into(),
    })?;
    let digest =
        obj.get("digest")
            .and_then(Value::as_str)
            .ok_or_else(|| ManifestError::BadDigest {
                field: field.clone(),
                reason: "no `digest` string".into(),
            })?;
    let digest = Digest::parse(digest).map_err(|e| ManifestError::BadDigest {
        field: field.clone(),
        reason: e.to_string(),
    })?;
    let size = match obj.get("size") {
        Some(s) => s.as_u64().ok_or_else(|| ManifestError::BadDescriptor {
            field: field.clone(),
            reason: format!("`size` is {s}, not a non-negative integer"),
        })?,
        None => {
            return Err(ManifestError::BadDescriptor {
                field,
                reason: "no `size`".into(),
            });
        }
    };
    let platform = match obj.get("platform") {
        Some(p) => Some(serde_json::from_value::<Platform>(p.clone()).map_err(|e| {
            ManifestError::BadDescriptor {
                field: format!("{field}.platform"),
                reason: e.to_string(),
            }
        })?),
        None => None,
    };
    let text = |k: &str| obj.get(k).and_then(Value::as_str).map(String::from);
    Ok(Descriptor {
        media_type: text("mediaType"),
        digest,
        size,
        platform,
        artifact_type: text("artifactType"),
        annotations: obj.get("annotations").cloned(),
    })
}

fn descriptors(obj: &Map<String, Value>, key: &str) -> Result<Vec<Descriptor>, ManifestError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, d)| descriptor(d, format!("{key}[{i}]")))
            .collect(),
        Some(_) => Err(ManifestError::BadDescriptor {
            field: key.to_string(),
            reason: "not a JSON array".into(),
        }),
    }
}

/// Walks a manifest's bytes. `media_type` is the type it came with (a `Content-Type`, an
/// index entry's `mediaType`), used when the JSON names none.
pub fn walk(bytes: &[u8], media_type: Option<&str>) -> Result<Walk, ManifestError> {
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| ManifestError::NotJson(e.to_string()))?;
    let obj = v.as_object().ok_or(ManifestError::NotObject)?;
    let own = obj.get("mediaType").and_then(Value::as_str);
    let schema1 = obj.get("schemaVersion").and_then(Value::as_u64) == Some(1)
        || own.or(media_type).is_some_and(media::is_schema1);
    let annotations = obj.get("annotations").cloned();
    let artifact = obj
        .get("artifactType")
        .and_then(Value::as_str)
        .map(String::from);
    let subject = obj
        .get("subject")
        .map(|s| descriptor(s, "subject".into()))
        .transpose()?;

    if schema1 {
        let mut layers = Vec::new();
        if let Some(Value::Array(items)) = obj.get("fsLayers") {
            for (i, l) in items.iter().enumerate() {
                let s = l.get("blobSum").and_then(Value::as_str).unwrap_or_default();
                layers.push(Digest::parse(s).map_err(|e| ManifestError::BadDigest {
                    field: format!("fsLayers[{i}].blobSum"),
                    reason: e.to_string(),
                })?);
            }
        }
        return Ok(Walk {
            declared_media_type: own.map(String::from),
            media_type: own
                .or(media_type.filter(|m| media::is_schema1(m)))
                .unwrap_or(DOCKER_SCHEMA1_SIGNED)
                .to_string(),
            kind: Kind::Schema1(layers),
            subject,
            artifact_type: artifact,
            annotations,
        });
    }

    let has_config = obj.get("config").is_some();
    let declared = own.or(media_type).unwrap_or_default();
    let index = media::is_index(declared) || (obj.contains_key("manifests") && !has_config);
    let (kind, media_type, artifact_type) = if index {
        let mt = own
            .map(String::from)
            .or_else(|| media_type.filter(|m| media::is_index(m)).map(String::from))
            .unwrap_or_else(|| media::OCI_INDEX.to_string());
        (Kind::Index(descriptors(obj, "manifests")?), mt, artifact)
    } else if has_config || declared == media::OCI_MANIFEST || declared == media::DOCKER_MANIFEST {
        let config = descriptor(
            obj.get("config")
                .ok_or(ManifestError::Missing { field: "config" })?,
            "config".into(),
        )?;
        let layers = descriptors(obj, "layers")?;
        let mt = own
            .or(media_type)
            .unwrap_or(media::OCI_MANIFEST)
            .to_string();
        let at = artifact.or_else(|| config.media_type.clone());
        (Kind::Image { config, layers }, mt, at)
    } else {
        return Err(ManifestError::Unknown {
            media_type: declared.to_string(),
        });
    };
    Ok(Walk {
        declared_media_type: own.map(String::from),
        media_type,
        kind,
        subject,
        artifact_type,
        annotations,
    })
}

impl Manifest {
    /// Walks this manifest (see [`walk`]).
    pub fn walk(&self) -> Result<Walk, ManifestError> {
        walk(&self.bytes, Some(&self.media_type))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn walks_an_image_with_subject_and_an_index_with_platforms() {
        let image = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{{"mediaType":"application/vnd.example+json","digest":"{D1}","size":2}},
            "layers":[{{"mediaType":"x","digest":"{D2}","size":3}},{{"digest":"{D1}","size":2}}],
            "subject":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{D2}","size":9}},
            "annotations":{{"a":"b"}}}}"#
        );
        let w = walk(image.as_bytes(), None).unwrap();
        assert_eq!(w.media_type, media::OCI_MANIFEST);
        assert_eq!(
            w.artifact_type.as_deref(),
            Some("application/vnd.example+json")
        );
        assert_eq!(w.subject.as_ref().unwrap().digest.to_string(), D2);
        assert_eq!(w.blob_digests().len(), 2);
        assert!(!w.is_index());

        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "digest":"{D1}","size":7,"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}}]}}"#
        );
        let w = walk(index.as_bytes(), None).unwrap();
        assert_eq!(w.media_type, media::OCI_INDEX);
        assert_eq!(
            w.children()[0].platform.as_ref().unwrap().to_string(),
            "linux/arm64/v8"
        );
        // A Docker list named only by the type it came with.
        let w = walk(index.as_bytes(), Some(media::DOCKER_LIST)).unwrap();
        assert_eq!(w.media_type, media::DOCKER_LIST);
    }

    #[test]
    fn errors_name_the_field() {
        let bad = format!(
            r#"{{"config":{{"digest":"{D1}","size":1}},"layers":[{{"digest":"sha256:zz","size":1}}]}}"#
        );
        let e = walk(bad.as_bytes(), None).unwrap_err();
        assert!(e.to_string().contains("layers[0]"), "{e}");
        let e = walk(
            format!(r#"{{"config":{{"digest":"{D1}"}}}}"#).as_bytes(),
            None,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("`config`") && e.to_string().contains("size"),
            "{e}"
        );
        assert_eq!(walk(b"[]", None).unwrap_err(), ManifestError::NotObject);
        assert!(matches!(
            walk(br#"{"schemaVersion":2,"mediaType":"text/plain"}"#, None),
            Err(ManifestError::Unknown { .. })
        ));
        assert!(matches!(
            walk(
                br#"{"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#,
                None
            ),
            Err(ManifestError::Missing { field: "config" })
        ));
    }

    #[test]
    fn schema1_layers() {
        let m = format!(
            r#"{{"schemaVersion":1,"fsLayers":[{{"blobSum":"{D1}"}},{{"blobSum":"{D1}"}}]}}"#
        );
        let w = walk(m.as_bytes(), None).unwrap();
        assert_eq!(w.media_type, DOCKER_SCHEMA1_SIGNED);
        assert_eq!(w.blob_digests().len(), 1);
    }
}
