//! The last check of a scan: every image's manifests, configs and layers are in the bundle.

use std::collections::{BTreeMap, BTreeSet};

use berth_client::Manifest;
use berth_reference::Digest;
use bytes::Bytes;

use super::blob_entry;
use crate::BundleError;
use crate::manifest::{BundleManifest, INDEX_ENTRY, MANIFEST_ENTRY};

/// `index.json` names every image of `bundle.json` with its digest, and every manifest's
/// children, configs and layers are in the bundle with the sizes the manifests give.
pub(super) fn check_references(
    name: &str,
    manifest: &BundleManifest,
    index: &[u8],
    blobs: &BTreeMap<Digest, u64>,
    json: &BTreeMap<Digest, Vec<u8>>,
) -> Result<(), BundleError> {
    let v: serde_json::Value = serde_json::from_slice(index)
        .map_err(|e| BundleError::damaged(name, INDEX_ENTRY, format!("is not JSON: {e}")))?;
    let mut in_index: BTreeMap<String, String> = BTreeMap::new();
    for m in v["manifests"].as_array().into_iter().flatten() {
        let r = m["annotations"][berth_transfer::REF_NAME]
            .as_str()
            .unwrap_or_default()
            .to_string();
        in_index.insert(r, m["digest"].as_str().unwrap_or_default().to_string());
    }
    for img in &manifest.images {
        match in_index.get(&img.source) {
            Some(d) if *d == img.digest => {}
            Some(d) => {
                return Err(BundleError::damaged(
                    name,
                    INDEX_ENTRY,
                    format!(
                        "names {} with {d}, bundle.json with {}",
                        img.source, img.digest
                    ),
                ));
            }
            None => {
                return Err(BundleError::damaged(
                    name,
                    INDEX_ENTRY,
                    format!("does not name {} (listed in bundle.json)", img.source),
                ));
            }
        }
    }
    let mut stack: Vec<(Digest, String)> = Vec::new();
    for img in &manifest.images {
        let d = Digest::parse(&img.digest).map_err(|e| {
            BundleError::damaged(name, MANIFEST_ENTRY, format!("image {}: {e}", img.source))
        })?;
        stack.push((d, img.source.clone()));
    }
    let mut done = BTreeSet::new();
    while let Some((d, image)) = stack.pop() {
        if !done.insert(d.clone()) {
            continue;
        }
        let bytes = json.get(&d).ok_or_else(|| {
            BundleError::damaged(
                name,
                blob_entry(&d),
                format!("a manifest of {image}, is missing or not a JSON manifest"),
            )
        })?;
        let m = Manifest {
            media_type: berth_client::media_type_from_json(bytes)
                .unwrap_or_else(|| berth_client::OCI_MANIFEST.to_string()),
            bytes: Bytes::from(bytes.clone()),
            digest: d.clone(),
        };
        let parsed = berth_transfer::manifest::parse(&m, name, &image).map_err(|e| {
            BundleError::damaged(name, blob_entry(&d), format!("a manifest of {image}: {e}"))
        })?;
        let (children, is_index) = match parsed {
            berth_transfer::manifest::Parsed::Index(c) => (c, true),
            berth_transfer::manifest::Parsed::Image(c) => (c, false),
        };
        for c in children {
            match blobs.get(&c.digest) {
                Some(s) if *s == c.size => {}
                Some(s) => {
                    return Err(BundleError::damaged(
                        name,
                        blob_entry(&c.digest),
                        format!("is {s} bytes but manifest {d} of {image} says {}", c.size),
                    ));
                }
                None => {
                    return Err(BundleError::damaged(
                        name,
                        blob_entry(&c.digest),
                        format!("is missing: manifest {d} of {image} references it"),
                    ));
                }
            }
            if is_index {
                stack.push((c.digest, image.clone()));
            }
        }
    }
    Ok(())
}
