//! Manifest media types, and how a manifest's own JSON names its type.

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
/// The empty descriptor's media type (artifacts without a config).
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// Every manifest media type Berth knows, in the order a client asks for them (`Accept`).
/// Schema 1 is accepted only so that it can be reported clearly as unsupported for copies;
/// the edge registry stores it as it stores any manifest.
pub const MANIFEST_TYPES: &[&str] = &[
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_LIST,
    DOCKER_SCHEMA1_SIGNED,
    DOCKER_SCHEMA1,
];

/// Largest manifest accepted (the OCI distribution spec's recommended limit is 4 MiB).
pub const MAX_MANIFEST_BYTES: usize = 8 << 20;

/// Whether `mt` is an index type (OCI index, Docker manifest list).
pub fn is_index(mt: &str) -> bool {
    mt == OCI_INDEX || mt == DOCKER_LIST
}

/// Whether a layer of this media type may be left out of a registry: non-distributable OCI
/// layers and foreign Docker layers, which clients fetch from their `urls`.
pub fn is_foreign_layer(mt: &str) -> bool {
    mt.starts_with("application/vnd.oci.image.layer.nondistributable.")
        || mt.starts_with("application/vnd.docker.image.rootfs.foreign.")
}

/// Whether `mt` is Docker schema 1 (signed or not).
pub fn is_schema1(mt: &str) -> bool {
    mt == DOCKER_SCHEMA1 || mt == DOCKER_SCHEMA1_SIGNED
}

/// The media type a manifest's JSON says it has: its `mediaType`, or, without one, schema 1
/// for `schemaVersion: 1`, an index when it has `manifests`, else an image manifest. `None`
/// when the bytes are not a JSON object.
pub fn media_type_from_json(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct M {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        #[serde(rename = "schemaVersion")]
        schema_version: Option<u32>,
        manifests: Option<serde::de::IgnoredAny>,
    }
    let m: M = serde_json::from_slice(bytes).ok()?;
    Some(match (m.media_type, m.schema_version, m.manifests) {
        (Some(mt), _, _) => mt,
        (None, Some(1), _) => DOCKER_SCHEMA1_SIGNED.to_string(),
        (None, _, Some(_)) => OCI_INDEX.to_string(),
        (None, _, None) => OCI_MANIFEST.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_of_json() {
        assert_eq!(
            media_type_from_json(br#"{"mediaType":"x/y"}"#).as_deref(),
            Some("x/y")
        );
        assert_eq!(
            media_type_from_json(br#"{"schemaVersion":1}"#).as_deref(),
            Some(DOCKER_SCHEMA1_SIGNED)
        );
        assert_eq!(
            media_type_from_json(br#"{"schemaVersion":2,"manifests":[]}"#).as_deref(),
            Some(OCI_INDEX)
        );
        assert_eq!(
            media_type_from_json(br#"{"schemaVersion":2}"#).as_deref(),
            Some(OCI_MANIFEST)
        );
        assert_eq!(media_type_from_json(b"[1]"), None);
        assert!(is_index(DOCKER_LIST) && !is_index(OCI_MANIFEST));
    }
}
