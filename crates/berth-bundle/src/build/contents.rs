//! What the bundle holds: every manifest, config and layer below each image, the
//! `index.json` naming the images and the `bundle.json` listing it all.

use std::collections::BTreeMap;

use berth_client::Manifest;
use berth_reference::{Algorithm, Digest, Reference};
use berth_transfer::manifest::{Parsed, parse};
use berth_transfer::{OciLayout, REF_NAME, Source};
use serde_json::{Value, json};

use super::platform::{platform_matches, platform_string};
use super::{BuildOptions, ProfileFile};
use crate::BundleError;
use crate::hash::digest_bytes;
use crate::manifest::{BundleManifest, Content, FORMAT_VERSION, ImageEntry, ProfileEntry};

/// The bundle's metadata and the blobs it holds.
pub(super) struct Described {
    pub manifest: BundleManifest,
    pub index: Vec<u8>,
    /// Sorted by file name.
    pub profiles: Vec<ProfileFile>,
    pub blobs: BTreeMap<Digest, u64>,
}

/// Describes the staged `images`, checking that every blob below each is staged.
pub(super) async fn describe(
    name: &str,
    layout: &OciLayout,
    images: &[Reference],
    replaced: &BTreeMap<String, (Manifest, Manifest)>,
    opts: &BuildOptions,
    warnings: &mut Vec<String>,
) -> Result<Described, BundleError> {
    // What the bundle holds: every manifest, config and layer below each image.
    let mut blobs: BTreeMap<Digest, u64> = BTreeMap::new();
    let mut entries = Vec::new();
    let mut index_entries = Vec::new();
    for r in images {
        let source = r.to_string();
        let top = Source::get_manifest(layout, &source)
            .await
            .map_err(|e| BundleError::transfer(name, e))?
            .ok_or_else(|| BundleError::Image {
                bundle: name.to_string(),
                image: source.clone(),
                detail: "is not in the staging layout after fetching".into(),
            })?;
        collect(
            name,
            layout,
            &top,
            &source,
            &mut blobs,
            &opts.platforms,
            warnings,
        )
        .await?;
        index_entries.push(json!({
            "mediaType": top.media_type,
            "digest": top.digest.to_string(),
            "size": top.bytes.len(),
            "annotations": { REF_NAME: source },
        }));
        entries.push(ImageEntry {
            source: source.clone(),
            digest: top.digest.to_string(),
            media_type: top.media_type.clone(),
            size: top.bytes.len() as u64,
            source_digest: replaced
                .get(&source)
                .filter(|(old, new)| old.digest != new.digest)
                .map(|(old, _)| old.digest.to_string()),
        });
    }
    let index = serde_json::to_vec_pretty(&json!({
        "schemaVersion": 2,
        "mediaType": berth_client::OCI_INDEX,
        "manifests": index_entries,
    }))
    .expect("json");
    let mut profiles: Vec<ProfileFile> = opts.profiles.clone();
    profiles.sort_by(|a, b| a.file.cmp(&b.file));
    let manifest = BundleManifest {
        format_version: FORMAT_VERSION,
        created_from: opts.profiles.iter().map(|p| p.name.to_string()).collect(),
        platforms: opts.platforms.clone(),
        index: Content {
            digest: digest_bytes(Algorithm::Sha256, &index),
            size: index.len() as u64,
        },
        profiles: profiles
            .iter()
            .map(|p| ProfileEntry {
                file: p.file.clone(),
                digest: digest_bytes(Algorithm::Sha256, &p.bytes),
                size: p.bytes.len() as u64,
            })
            .collect(),
        images: entries,
        blobs: blobs
            .iter()
            .map(|(d, s)| Content {
                digest: d.to_string(),
                size: *s,
            })
            .collect(),
        total_size: blobs.values().sum(),
    };
    Ok(Described {
        manifest,
        index,
        profiles,
        blobs,
    })
}

/// Adds every blob below `top` (itself included) to `blobs`, checking each is staged.
pub(super) async fn collect(
    name: &str,
    layout: &OciLayout,
    top: &Manifest,
    image: &str,
    blobs: &mut BTreeMap<Digest, u64>,
    platforms: &[String],
    warnings: &mut Vec<String>,
) -> Result<(), BundleError> {
    let err = |detail: String| BundleError::Image {
        bundle: name.to_string(),
        image: image.to_string(),
        detail,
    };
    let mut stack = vec![top.clone()];
    while let Some(m) = stack.pop() {
        blobs.insert(m.digest.clone(), m.bytes.len() as u64);
        match parse(&m, name, image).map_err(|e| err(e.to_string()))? {
            Parsed::Index(children) => {
                for c in children {
                    let child = Source::get_manifest(layout, &c.digest.to_string())
                        .await
                        .map_err(|e| err(e.to_string()))?
                        .ok_or_else(|| {
                            err(format!("child manifest {} was not fetched", c.digest))
                        })?;
                    stack.push(child);
                }
            }
            Parsed::Image(descs) => {
                for (i, d) in descs.iter().enumerate() {
                    let size = std::fs::metadata(layout.blob_path(&d.digest))
                        .map(|m| m.len())
                        .map_err(|_| err(format!("blob {} was not fetched", d.digest)))?;
                    if size != d.size {
                        return Err(err(format!(
                            "blob {} is {size} bytes, its manifest says {}",
                            d.digest, d.size
                        )));
                    }
                    blobs.insert(d.digest.clone(), d.size);
                    // A single-platform image under --platform: say when it is another one.
                    if i == 0
                        && !platforms.is_empty()
                        && m.digest == top.digest
                        && let Ok(cfg) = std::fs::read(layout.blob_path(&d.digest))
                        && let Ok(v) = serde_json::from_slice::<Value>(&cfg)
                        && v["architecture"].is_string()
                        && !platforms.iter().any(|p| platform_matches(p, &v))
                    {
                        warnings.push(format!(
                            "{image}: a single-platform image for {}, not among {}; kept as it is",
                            platform_string(&v),
                            platforms.join(", ")
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}
