//! Artifacts attached to an image: the names under which they are found, and the referrers
//! index a registry without the referrers API keeps in a tag.
//!
//! - OCI 1.1 referrers: a manifest with a `subject` refers to that manifest. A registry with
//!   the referrers API (`GET /v2/NAME/referrers/DIGEST`) lists them itself; on one without
//!   it, the pusher keeps an index of them under the referrers tag schema's tag
//!   ([`fallback_tag`], `sha256-<hex>`), merging with what is there.
//! - cosign's tag scheme: the signature, attestation and SBOM of a manifest are images
//!   under the tags `sha256-<hex>.sig`, `.att` and `.sbom` ([`cosign_tag`]).

use berth_reference::Digest;
use serde_json::{Value, json};

use crate::{Descriptor, Manifest, ManifestError, media};

/// The kinds of cosign's tag scheme, by tag suffix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CosignKind {
    /// `.sig`: signatures.
    Signature,
    /// `.att`: attestations.
    Attestation,
    /// `.sbom`: an SBOM (`cosign attach sbom`).
    Sbom,
}

impl CosignKind {
    pub const ALL: [CosignKind; 3] = [
        CosignKind::Signature,
        CosignKind::Attestation,
        CosignKind::Sbom,
    ];

    /// The tag suffix, without the dot.
    pub fn suffix(self) -> &'static str {
        match self {
            CosignKind::Signature => "sig",
            CosignKind::Attestation => "att",
            CosignKind::Sbom => "sbom",
        }
    }
}

/// The referrers tag schema's tag of `subject`: `<alg>-<hex>`, the algorithm cut to 32
/// characters and the hex to 64 (OCI distribution spec 1.1, "Referrers Tag Schema").
pub fn fallback_tag(subject: &Digest) -> String {
    let alg: String = subject.algorithm().as_str().chars().take(32).collect();
    let hex: String = subject.hex().chars().take(64).collect();
    format!("{alg}-{hex}")
}

/// cosign's tag of `subject`'s signature, attestation or SBOM: `sha256-<hex>.sig` etc.
pub fn cosign_tag(subject: &Digest, kind: CosignKind) -> String {
    format!(
        "{}-{}.{}",
        subject.algorithm().as_str(),
        subject.hex(),
        kind.suffix()
    )
}

/// Whether `tag` names something attached to another manifest (a fallback index or a
/// cosign tag) rather than an image of its own.
pub fn is_attached_tag(tag: &str) -> bool {
    let Some((alg, rest)) = tag.split_once('-') else {
        return false;
    };
    let hex = match rest.split_once('.') {
        Some((h, s)) if CosignKind::ALL.iter().any(|k| k.suffix() == s) => h,
        Some(_) => return false,
        None => rest,
    };
    matches!(alg, "sha256" | "sha512")
        && !hex.is_empty()
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What is attached to one manifest at one end.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attached {
    /// Manifests whose `subject` is the manifest (from the referrers API or the fallback
    /// tag's index), as their descriptors.
    pub referrers: Vec<Descriptor>,
    /// cosign tags of the manifest that exist (`sha256-<hex>.sig`, ...).
    pub tags: Vec<String>,
}

impl Attached {
    pub fn is_empty(&self) -> bool {
        self.referrers.is_empty() && self.tags.is_empty()
    }
}

/// The descriptor a referrers index lists for `m` (a manifest with a `subject`): its media
/// type, digest and size, its `artifactType` (the manifest's own, else its config's media
/// type) and its annotations.
pub fn referrer_descriptor(m: &Manifest) -> Result<Descriptor, ManifestError> {
    let w = m.walk()?;
    Ok(Descriptor {
        media_type: Some(w.media_type),
        digest: m.digest.clone(),
        size: m.bytes.len() as u64,
        platform: None,
        artifact_type: w.artifact_type,
        annotations: w.annotations,
    })
}

/// The descriptors of a referrers index (the referrers API's answer, or a fallback tag's
/// manifest).
pub fn parse_index(bytes: &[u8]) -> Result<Vec<Descriptor>, ManifestError> {
    // By its own JSON only: an image manifest is not taken for an index.
    match crate::walk(bytes, None)?.kind {
        crate::Kind::Index(d) => Ok(d),
        _ => Err(ManifestError::Missing { field: "manifests" }),
    }
}

/// The fallback tag's index with `add` listed: `existing` (the tag's manifest, if any) kept
/// entry for entry, every field of every entry as it was, and `add` appended unless an entry
/// of its digest is there. `None` when `existing` lists it already (nothing to push).
pub fn merge_fallback_index(
    existing: Option<&[u8]>,
    add: &Descriptor,
) -> Result<Option<Vec<u8>>, ManifestError> {
    let mut index = match existing {
        Some(bytes) => {
            // Checked as an index first: a tag holding something else is not overwritten.
            parse_index(bytes)?;
            serde_json::from_slice::<Value>(bytes)
                .map_err(|e| ManifestError::NotJson(e.to_string()))?
        }
        None => json!({ "schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": [] }),
    };
    let obj = index.as_object_mut().ok_or(ManifestError::NotObject)?;
    let manifests = obj.entry("manifests").or_insert_with(|| json!([]));
    if manifests.is_null() {
        *manifests = json!([]);
    }
    let manifests = manifests
        .as_array_mut()
        .ok_or(ManifestError::Missing { field: "manifests" })?;
    let digest = add.digest.to_string();
    if manifests
        .iter()
        .any(|d| d.get("digest").and_then(Value::as_str) == Some(digest.as_str()))
    {
        return Ok(None);
    }
    manifests.push(serde_json::to_value(add).expect("a descriptor serializes"));
    Ok(Some(
        serde_json::to_vec(&index).expect("an index serializes"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn d() -> Digest {
        Digest::parse(D).unwrap()
    }

    #[test]
    fn tag_names_follow_the_spec_and_cosign() {
        let hex = &D[7..];
        assert_eq!(fallback_tag(&d()), format!("sha256-{hex}"));
        assert_eq!(
            cosign_tag(&d(), CosignKind::Signature),
            format!("sha256-{hex}.sig")
        );
        assert_eq!(
            cosign_tag(&d(), CosignKind::Attestation),
            format!("sha256-{hex}.att")
        );
        assert_eq!(
            cosign_tag(&d(), CosignKind::Sbom),
            format!("sha256-{hex}.sbom")
        );
        assert!(is_attached_tag(&fallback_tag(&d())));
        assert!(is_attached_tag(&cosign_tag(&d(), CosignKind::Sbom)));
        assert!(!is_attached_tag("v1.2"));
        assert!(!is_attached_tag("sha256-zz"));
        assert!(!is_attached_tag(&format!("sha256-{hex}.txt")));
    }

    #[test]
    fn merging_keeps_foreign_entries_and_their_fields() {
        let foreign = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{}","size":10,"artifactType":"x/foreign","annotations":{{"k":"v"}},"data":"AA=="}}]}}"#,
            media::OCI_INDEX,
            "f".repeat(64)
        );
        let add = Descriptor {
            media_type: Some(media::OCI_MANIFEST.into()),
            digest: d(),
            size: 5,
            platform: None,
            artifact_type: Some("application/spdx+json".into()),
            annotations: None,
        };
        let merged = merge_fallback_index(Some(foreign.as_bytes()), &add)
            .unwrap()
            .unwrap();
        let v: Value = serde_json::from_slice(&merged).unwrap();
        let m = v["manifests"].as_array().unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0]["artifactType"], "x/foreign");
        assert_eq!(m[0]["data"], "AA==");
        assert_eq!(m[0]["annotations"]["k"], "v");
        assert_eq!(m[1]["digest"], D);
        assert_eq!(m[1]["artifactType"], "application/spdx+json");
        // Listed already: nothing to push.
        assert_eq!(merge_fallback_index(Some(&merged), &add).unwrap(), None);
        // A fresh index.
        let fresh = merge_fallback_index(None, &add).unwrap().unwrap();
        assert_eq!(parse_index(&fresh).unwrap(), vec![add.clone()]);
        // A tag holding an image is not an index to merge into.
        let image = br#"{"schemaVersion":2,"config":{"mediaType":"a","digest":"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","size":1},"layers":[]}"#;
        assert!(merge_fallback_index(Some(image), &add).is_err());
    }
}
