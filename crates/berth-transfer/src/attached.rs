//! What is attached to an image travels with it: for the image and every child of an index,
//! the manifests that refer to it (OCI referrers: the referrers API, or the referrers tag
//! schema's `sha256-<hex>` index where the source has no API) and its cosign tags
//! (`sha256-<hex>.sig`, `.att`, `.sbom`) are copied byte for byte, then what is attached to
//! those in turn (a signature of an SBOM). At a destination without the referrers API each
//! copied referrer is added to the fallback tag's index there, merged with what it lists.

use std::collections::{HashSet, VecDeque};

use berth_ends::{Destination, Source, TransferError};
use berth_oci::Manifest;
use berth_oci::referrers::referrer_descriptor;
use berth_reference::Digest;

use crate::engine::{CopyAt, walk};
use crate::manifest::{Parsed, parse};

/// At most this many artifacts attached to one image (recursively).
const MAX_ATTACHED: u64 = 10_000;

/// Copies what is attached to `top` and its children (recursively); returns how many
/// artifacts are at the destination now (copied, or there already).
pub(crate) async fn copy_attached(at: &CopyAt<'_>, top: &Manifest) -> Result<u64, TransferError> {
    let mut seen: HashSet<Digest> = HashSet::from([top.digest.clone()]);
    let mut subjects: VecDeque<Digest> = VecDeque::from([top.digest.clone()]);
    if let Parsed::Index(children) = parse(top, &at.source.name(), &top.digest.to_string())? {
        for c in children {
            if at.dest.wants_child(&c) && seen.insert(c.digest.clone()) {
                subjects.push_back(c.digest);
            }
        }
    }
    let mut count = 0u64;
    while let Some(subject) = subjects.pop_front() {
        at.engine.go_on()?;
        let found = at.source.attached(&subject).await?;
        for r in found.referrers {
            if !seen.insert(r.digest.clone()) {
                continue;
            }
            let reference = r.digest.to_string();
            // Listed but gone (a stale fallback index entry): nothing to copy.
            let Some(m) = at.source.get_manifest(&reference).await? else {
                continue;
            };
            copy_tree(at, &m, &reference).await?;
            let descriptor = referrer_descriptor(&m).map_err(|e| TransferError::BadManifest {
                source_name: at.source.name(),
                reference: reference.clone(),
                detail: e.to_string(),
            })?;
            at.dest.list_referrer(&subject, &descriptor).await?;
            count += 1;
            subjects.push_back(m.digest);
        }
        for tag in found.tags {
            let Some(m) = at.source.get_manifest(&tag).await? else {
                continue;
            };
            copy_tree(at, &m, &tag).await?;
            count += 1;
            if seen.insert(m.digest.clone()) {
                subjects.push_back(m.digest);
            }
        }
        if count > MAX_ATTACHED {
            return Err(TransferError::Usage {
                name: format!("{}@{}", at.source.name(), top.digest),
                detail: format!("more than {MAX_ATTACHED} artifacts are attached to it"),
            });
        }
    }
    Ok(count)
}

/// Copies manifest `m` (with its blobs and children) to `target_ref` unless it is there.
async fn copy_tree(at: &CopyAt<'_>, m: &Manifest, target_ref: &str) -> Result<(), TransferError> {
    if at.dest.manifest_digest(target_ref).await? == Some(m.digest.clone()) {
        return Ok(());
    }
    let (children, blobs) = walk(at.source.as_ref(), at.dest.as_ref(), m, target_ref).await?;
    at.content(m, target_ref, &children, &blobs).await
}

/// What is attached to `top` at `source` (recursively, as [`copy_attached`] copies it) that
/// `target` lacks, one line each.
pub(crate) async fn missing_attached(
    source: &dyn Source,
    target: &dyn Destination,
    top: &Manifest,
) -> Result<Vec<String>, TransferError> {
    let mut seen: HashSet<Digest> = HashSet::from([top.digest.clone()]);
    let mut subjects: VecDeque<Digest> = VecDeque::from([top.digest.clone()]);
    if let Parsed::Index(children) = parse(top, &source.name(), &top.digest.to_string())? {
        for c in children {
            if target.wants_child(&c) && seen.insert(c.digest.clone()) {
                subjects.push_back(c.digest);
            }
        }
    }
    let mut missing = Vec::new();
    while let Some(subject) = subjects.pop_front() {
        let found = source.attached(&subject).await?;
        for r in found.referrers {
            if !seen.insert(r.digest.clone()) {
                continue;
            }
            match target.manifest_digest(&r.digest.to_string()).await? {
                Some(_) => subjects.push_back(r.digest),
                None => missing.push(format!(
                    "attached artifact {} ({}) of {subject}",
                    r.digest,
                    r.artifact_type.as_deref().unwrap_or("referrer")
                )),
            }
        }
        for tag in found.tags {
            let Some(m) = source.get_manifest(&tag).await? else {
                continue;
            };
            if target.manifest_digest(&tag).await? != Some(m.digest.clone()) {
                missing.push(format!("attached artifact {tag} ({})", m.digest));
            } else if seen.insert(m.digest.clone()) {
                subjects.push_back(m.digest);
            }
        }
        if missing.len() as u64 > MAX_ATTACHED {
            break;
        }
    }
    Ok(missing)
}
