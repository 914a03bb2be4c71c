//! Reading images back from containerd's content store, the garbage-collection labels
//! that tie them together, and unpacking layers into a snapshotter.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use berth_oci::sha256_of;
use berth_reference::Digest;
use bytes::Bytes;
use serde::Deserialize;

use crate::{Containerd, ContainerdError, Held};
use berth_oci::Platform;

/// containerd's label: content referenced by this content (`.config`, `.l.<i>`, `.m.<i>`).
pub const LABEL_GC_CONTENT: &str = "containerd.io/gc.ref.content";
/// containerd's label on a config: the snapshot of the unpacked image, per snapshotter.
pub const LABEL_GC_SNAPSHOT: &str = "containerd.io/gc.ref.snapshot";
/// containerd's label on a layer: its diff ID (the digest of the uncompressed tar).
pub const LABEL_UNCOMPRESSED: &str = "containerd.io/uncompressed";
/// containerd's label: the registry host (suffix) and repository (value) content came from.
pub const LABEL_DISTRIBUTION_SOURCE: &str = "containerd.io/distribution.source";
/// containerd's label on a snapshot: its chain ID.
const LABEL_SNAPSHOT_REF: &str = "containerd.io/snapshot.ref";

#[derive(Deserialize)]
struct RawDesc {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    digest: String,
    size: u64,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Deserialize)]
struct RawManifest {
    #[serde(default)]
    manifests: Option<Vec<RawDesc>>,
    #[serde(default)]
    config: Option<RawDesc>,
    #[serde(default)]
    layers: Vec<RawDesc>,
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    rootfs: Option<RootFs>,
}

#[derive(Deserialize)]
struct RootFs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

/// A content descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desc {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

/// The single-platform image an image record resolves to on this host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageParts {
    /// The platform's image manifest.
    pub manifest: Digest,
    pub config: Desc,
    pub layers: Vec<Desc>,
    pub diff_ids: Vec<Digest>,
}

impl ImageParts {
    /// The chain IDs of the layers: the names of the committed snapshots.
    pub fn chain_ids(&self) -> Vec<Digest> {
        chain_ids(&self.diff_ids)
    }
}

/// `chain[0] = diff[0]`, `chain[i] = sha256(chain[i-1] + " " + diff[i])`.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(p) => sha256_of(format!("{p} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

fn parse_digest(image: &str, s: &str) -> Result<Digest, ContainerdError> {
    Digest::parse(s).map_err(|e| ContainerdError::Image {
        image: image.to_string(),
        detail: format!("invalid digest `{s}`: {e}"),
    })
}

fn desc(image: &str, d: &RawDesc, default_mt: &str) -> Result<Desc, ContainerdError> {
    Ok(Desc {
        media_type: d
            .media_type
            .clone()
            .unwrap_or_else(|| default_mt.to_string()),
        digest: parse_digest(image, &d.digest)?,
        size: d.size,
    })
}

fn parse_manifest(
    image: &str,
    digest: &Digest,
    bytes: &[u8],
) -> Result<RawManifest, ContainerdError> {
    serde_json::from_slice(bytes).map_err(|e| ContainerdError::Image {
        image: image.to_string(),
        detail: format!("manifest {digest} is not valid JSON: {e}"),
    })
}

/// The garbage-collection labels of a manifest or index: what it references.
pub fn gc_labels(
    image: &str,
    digest: &Digest,
    bytes: &[u8],
) -> Result<HashMap<String, String>, ContainerdError> {
    let m = parse_manifest(image, digest, bytes)?;
    let mut labels = HashMap::new();
    if let Some(children) = &m.manifests {
        for (i, c) in children.iter().enumerate() {
            labels.insert(format!("{LABEL_GC_CONTENT}.m.{i}"), c.digest.clone());
        }
    }
    if let Some(c) = &m.config {
        labels.insert(format!("{LABEL_GC_CONTENT}.config"), c.digest.clone());
    }
    for (i, l) in m.layers.iter().enumerate() {
        labels.insert(format!("{LABEL_GC_CONTENT}.l.{i}"), l.digest.clone());
    }
    Ok(labels)
}

/// Resolves `digest` (a manifest or index whose bytes may be given) to the image for
/// `platform`, reading what it needs from containerd. `Ok(None)` when some content is
/// missing; an error when the index has no image for the platform.
pub async fn resolve(
    cd: &Containerd,
    image: &str,
    digest: &Digest,
    bytes: Option<Bytes>,
    platform: &Platform,
) -> Result<Option<ImageParts>, ContainerdError> {
    let mut digest = digest.clone();
    let mut bytes = bytes;
    for _depth in 0..5 {
        let b = match bytes.take() {
            Some(b) => b,
            None => match cd.read_content(&digest).await? {
                Some(b) => b,
                None => return Ok(None),
            },
        };
        let m = parse_manifest(image, &digest, &b)?;
        if let Some(children) = m.manifests {
            let chosen = children
                .iter()
                .filter(|c| c.platform.as_ref().is_some_and(|p| platform.matches(p)))
                // An exact variant match first.
                .max_by_key(|c| c.platform.as_ref().map(|p| p.variant == platform.variant));
            let Some(c) = chosen else {
                let found: Vec<String> = children
                    .iter()
                    .map(|c| {
                        c.platform
                            .as_ref()
                            .map_or_else(|| "(no platform)".to_string(), |p| p.to_string())
                    })
                    .collect();
                return Err(ContainerdError::Image {
                    image: image.to_string(),
                    detail: format!(
                        "the index has no image for {platform} (it has: {})",
                        found.join(", ")
                    ),
                });
            };
            digest = parse_digest(image, &c.digest)?;
            continue;
        }
        let Some(config) = m.config else {
            return Err(ContainerdError::Image {
                image: image.to_string(),
                detail: format!("manifest {digest} has neither `config` nor `manifests`"),
            });
        };
        let config = desc(image, &config, "application/vnd.oci.image.config.v1+json")?;
        let layers = m
            .layers
            .iter()
            .map(|l| desc(image, l, "application/vnd.oci.image.layer.v1.tar+gzip"))
            .collect::<Result<Vec<_>, _>>()?;
        let Some(cfg) = cd.read_content(&config.digest).await? else {
            return Ok(None);
        };
        let raw: RawConfig = serde_json::from_slice(&cfg).map_err(|e| ContainerdError::Image {
            image: image.to_string(),
            detail: format!("config {} is not valid JSON: {e}", config.digest),
        })?;
        let diff_ids = raw
            .rootfs
            .map(|r| r.diff_ids)
            .unwrap_or_default()
            .iter()
            .map(|d| parse_digest(image, d))
            .collect::<Result<Vec<_>, _>>()?;
        if diff_ids.len() != layers.len() {
            return Err(ContainerdError::Image {
                image: image.to_string(),
                detail: format!(
                    "config {} lists {} diff_ids for {} layers",
                    config.digest,
                    diff_ids.len(),
                    layers.len()
                ),
            });
        }
        return Ok(Some(ImageParts {
            manifest: digest,
            config,
            layers,
            diff_ids,
        }));
    }
    Err(ContainerdError::Image {
        image: image.to_string(),
        detail: "indexes nested more than 4 deep".into(),
    })
}

/// Whether every layer of the image is a committed snapshot in the snapshotter.
pub async fn is_unpacked(cd: &Containerd, parts: &ImageParts) -> Result<bool, ContainerdError> {
    match parts.chain_ids().last() {
        None => Ok(true),
        Some(top) => cd.snapshot_exists(&top.to_string()).await,
    }
}

/// Unpacks the layers in order: for each layer whose snapshot (named by its chain ID) is
/// missing, `Snapshots.Prepare(key, parent)` → `Diff.Apply(layer, mounts)` (the applied
/// digest must be the config's diff ID) → `Snapshots.Commit(chainID, key)`; a failed step
/// removes its active snapshot. Then labels the layers (`containerd.io/uncompressed`) and
/// the config (`containerd.io/gc.ref.snapshot.<snapshotter>`), as containerd's own
/// unpacker does. Returns the number of layers applied.
pub async fn unpack(
    cd: &Containerd,
    image: &str,
    parts: &ImageParts,
) -> Result<usize, ContainerdError> {
    let chains = parts.chain_ids();
    let mut applied = 0;
    for (i, layer) in parts.layers.iter().enumerate() {
        let chain = chains[i].to_string();
        let diff_id = &parts.diff_ids[i];
        // Another image of this run may be unpacking the same chain: wait for it, then
        // find the snapshot committed.
        let _chain_guard = cd.lock_chain(&chain).await;
        cd.hold(Held::Snapshot, &chain).await?;
        if !cd.snapshot_exists(&chain).await? {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos();
            let key = format!("extract-{nanos}-{:06x} {chain}", fastrand::u32(..0xff_ffff));
            let parent = if i == 0 {
                String::new()
            } else {
                chains[i - 1].to_string()
            };
            let labels = HashMap::from([(LABEL_SNAPSHOT_REF.to_string(), chain.clone())]);
            let unpack_err = |detail: String| ContainerdError::Unpack {
                image: image.to_string(),
                layer: layer.digest.to_string(),
                snapshotter: cd.snapshotter().to_string(),
                detail,
            };
            let mounts = match cd.prepare_snapshot(&key, &parent, labels.clone()).await {
                Ok(m) => Some(m),
                // Another import (of an image sharing this layer) committed the chain since
                // the check above: containerd refuses to prepare a snapshot whose target exists.
                Err(e) if e.code() == Some(tonic::Code::AlreadyExists) => None,
                Err(e) => return Err(unpack_err(e.to_string())),
            };
            let Some(mounts) = mounts else {
                cd.set_content_labels(
                    &layer.digest,
                    HashMap::from([(LABEL_UNCOMPRESSED.to_string(), diff_id.to_string())]),
                )
                .await?;
                continue;
            };
            let result = async {
                let got = cd
                    .apply_layer(&layer.media_type, &layer.digest, layer.size, mounts)
                    .await
                    .map_err(|e| unpack_err(e.to_string()))?;
                if got != diff_id.to_string() {
                    return Err(unpack_err(format!(
                        "the uncompressed layer has digest {got}, the config's diff_id is {diff_id}"
                    )));
                }
                match cd.commit_snapshot(&chain, &key, labels.clone()).await {
                    Ok(()) => Ok(()),
                    // Committed meanwhile by someone else (containerd, another agent).
                    Err(e) if e.code() == Some(tonic::Code::AlreadyExists) => Ok(()),
                    Err(e) => Err(unpack_err(e.to_string())),
                }
            }
            .await;
            if let Err(e) = result {
                let _ = cd.remove_snapshot(&key).await;
                return Err(e);
            }
            // An AlreadyExists commit leaves the active snapshot behind.
            if cd.snapshot_exists(&key).await.unwrap_or(false) {
                let _ = cd.remove_snapshot(&key).await;
            }
            applied += 1;
        }
        cd.set_content_labels(
            &layer.digest,
            HashMap::from([(LABEL_UNCOMPRESSED.to_string(), diff_id.to_string())]),
        )
        .await?;
    }
    if let Some(top) = chains.last() {
        cd.set_content_labels(
            &parts.config.digest,
            HashMap::from([(
                format!("{LABEL_GC_SNAPSHOT}.{}", cd.snapshotter()),
                top.to_string(),
            )]),
        )
        .await?;
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_oci_definition() {
        let a = Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap();
        let b = Digest::parse(&format!("sha256:{}", "b".repeat(64))).unwrap();
        let c = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(c[0], a);
        assert_eq!(c[1], sha256_of(format!("{a} {b}").as_bytes()));
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn gc_labels_name_children_config_and_layers() {
        let d = sha256_of(b"x");
        let idx =
            br#"{"manifests":[{"digest":"sha256:aa","size":1},{"digest":"sha256:bb","size":2}]}"#;
        let l = gc_labels("i", &d, idx).unwrap();
        assert_eq!(l["containerd.io/gc.ref.content.m.0"], "sha256:aa");
        assert_eq!(l["containerd.io/gc.ref.content.m.1"], "sha256:bb");
        let m = br#"{"config":{"digest":"sha256:cc","size":1},"layers":[{"digest":"sha256:dd","size":1}]}"#;
        let l = gc_labels("i", &d, m).unwrap();
        assert_eq!(l["containerd.io/gc.ref.content.config"], "sha256:cc");
        assert_eq!(l["containerd.io/gc.ref.content.l.0"], "sha256:dd");
        assert_eq!(l.len(), 2);
    }
}
