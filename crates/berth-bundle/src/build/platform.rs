//! What to fetch: whole images, or only the chosen platforms' manifests of an index (whose
//! bytes are then rewritten to name only those).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use berth_client::{Client, Manifest};
use berth_reference::{Algorithm, Digest, Reference};
use berth_transfer::manifest::{Parsed, parse};
use berth_transfer::{Endpoint, RegistryEnd, Source};
use bytes::Bytes;
use serde_json::Value;

use super::BuildOptions;
use crate::BundleError;
use crate::hash::digest_bytes;

pub(super) fn platform_matches(want: &str, p: &Value) -> bool {
    let mut w = want.split('/');
    let (os, arch, variant) = (w.next(), w.next(), w.next());
    os == p["os"].as_str()
        && arch == p["architecture"].as_str()
        && variant.is_none_or(|v| Some(v) == p["variant"].as_str())
}

pub(super) fn platform_string(p: &Value) -> String {
    let mut s = format!(
        "{}/{}",
        p["os"].as_str().unwrap_or("?"),
        p["architecture"].as_str().unwrap_or("?")
    );
    if let Some(v) = p["variant"].as_str() {
        s.push('/');
        s.push_str(v);
    }
    s
}

/// Validates `os/arch[/variant]`.
pub fn parse_platform(s: &str) -> Result<String, String> {
    let parts: Vec<&str> = s.split('/').collect();
    if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
        return Err(format!(
            "`{s}` is not a platform; write OS/ARCH or OS/ARCH/VARIANT (linux/amd64, linux/arm64/v8)"
        ));
    }
    Ok(s.to_string())
}

/// The images to fetch and where, the indexes rewritten for `--platform` (`(original,
/// rewritten)` by reference) and what the user must know about them.
pub(super) struct Selection {
    pub pairs: Vec<(Endpoint, Endpoint)>,
    pub replaced: BTreeMap<String, (Manifest, Manifest)>,
    pub warnings: Vec<String>,
}

/// Every image but those in `reused` goes to the staging layout at `layout_dir`: whole, or
/// (with `--platform`) the chosen platforms' manifests, asking the source for each index.
pub(super) async fn select(
    name: &str,
    opts: &BuildOptions,
    images: &[Reference],
    reused: &BTreeSet<String>,
    layout_dir: &Path,
) -> Result<Selection, BundleError> {
    let mut pairs = Vec::new();
    let mut replaced: BTreeMap<String, (Manifest, Manifest)> = BTreeMap::new();
    let mut warnings = Vec::new();
    if opts.platforms.is_empty() {
        for r in images.iter().filter(|r| !reused.contains(&r.to_string())) {
            pairs.push((
                Endpoint::Registry(r.clone()),
                Endpoint::Layout {
                    dir: layout_dir.to_path_buf(),
                    reference: r.to_string(),
                },
            ));
        }
    } else {
        let client = Client::new(opts.copy.source_registries.clone())
            .map_err(|e| BundleError::usage(name, format!("source registry settings: {e}")))?
            .with_retry(opts.copy.retry);
        for r in images {
            let src = RegistryEnd::new(client.registry(r.domain()), r.path());
            let reference = match (r.digest(), r.tag()) {
                (Some(d), _) => d.to_string(),
                (None, Some(t)) => t.to_string(),
                (None, None) => "latest".into(),
            };
            let top = src
                .get_manifest(&reference)
                .await
                .map_err(|e| BundleError::Image {
                    bundle: name.to_string(),
                    image: r.to_string(),
                    detail: e.to_string(),
                })?
                .ok_or_else(|| BundleError::Image {
                    bundle: name.to_string(),
                    image: r.to_string(),
                    detail: "not found at the source".into(),
                })?;
            let image_err = |detail: String| BundleError::Image {
                bundle: name.to_string(),
                image: r.to_string(),
                detail,
            };
            match parse(&top, &Source::name(&src), &reference)
                .map_err(|e| image_err(e.to_string()))?
            {
                Parsed::Image(_) => {
                    pairs.push((
                        Endpoint::Registry(r.clone()),
                        Endpoint::Layout {
                            dir: layout_dir.to_path_buf(),
                            reference: r.to_string(),
                        },
                    ));
                }
                Parsed::Index(_) => {
                    let mut v: Value = serde_json::from_slice(&top.bytes)
                        .map_err(|e| image_err(format!("its index is not JSON: {e}")))?;
                    let all: Vec<Value> = v["manifests"].as_array().cloned().unwrap_or_default();
                    let kept: Vec<Value> = all
                        .iter()
                        .filter(|m| {
                            opts.platforms
                                .iter()
                                .any(|p| platform_matches(p, &m["platform"]))
                        })
                        .cloned()
                        .collect();
                    if kept.is_empty() {
                        let has: Vec<String> = all
                            .iter()
                            .map(|m| platform_string(&m["platform"]))
                            .collect();
                        return Err(image_err(format!(
                            "has none of the platforms {} (it has {}); drop --platform or add one it has",
                            opts.platforms.join(", "),
                            has.join(", ")
                        )));
                    }
                    for m in &kept {
                        let d = m["digest"]
                            .as_str()
                            .and_then(|d| Digest::parse(d).ok())
                            .ok_or_else(|| {
                                image_err("an index entry has no valid digest".into())
                            })?;
                        pairs.push((
                            Endpoint::Registry(r.with_digest(d.clone())),
                            Endpoint::Layout {
                                dir: layout_dir.to_path_buf(),
                                reference: d.to_string(),
                            },
                        ));
                    }
                    let new = if kept.len() == all.len() {
                        top.clone()
                    } else {
                        v["manifests"] = Value::Array(kept);
                        let bytes = serde_json::to_vec(&v).expect("json");
                        let digest = Digest::parse(&digest_bytes(Algorithm::Sha256, &bytes))
                            .expect("digest");
                        warnings.push(format!(
                            "{r}: only {} kept: its index was rewritten, so its digest changes from {} to {digest} (signatures and digest pins of the original index do not match the bundle)",
                            opts.platforms.join(", "),
                            top.digest
                        ));
                        Manifest {
                            bytes: Bytes::from(bytes),
                            media_type: top.media_type.clone(),
                            digest,
                        }
                    };
                    replaced.insert(r.to_string(), (top, new));
                }
            }
        }
    }
    Ok(Selection {
        pairs,
        replaced,
        warnings,
    })
}
