//! `--existing`: the blobs of an older bundle, and the images it holds whole.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

use berth_reference::{Digest, Reference};
use berth_transfer::{Destination, OciLayout, Source};

use super::contents::collect;
use crate::BundleError;
use crate::read::{blob_entry, scan, stream_err};
use crate::write::BlobWriter;

/// Copies the verified blobs of the bundle `old` into the staging layout at `layout_dir`
/// and takes its `index.json` (so the engine finds unchanged images present); returns how
/// many blobs.
pub(super) async fn import(name: &str, old: &Path, layout_dir: &Path) -> Result<u64, BundleError> {
    let (old, dir) = (old.to_path_buf(), layout_dir.to_path_buf());
    let (n, index) = tokio::task::spawn_blocking(move || import_blobs(&old, &dir))
        .await
        .map_err(|e| BundleError::usage(name, format!("reading --existing failed: {e}")))??;
    std::fs::write(layout_dir.join("index.json"), index)
        .map_err(|e| BundleError::io(name, "writing the staging index.json", e))?;
    Ok(n)
}

/// Images pinned by digest whose every manifest, config and layer the old bundle holds
/// need no request at all: each is put under its reference in the staging layout.
pub(super) async fn whole_images(
    name: &str,
    layout: &OciLayout,
    images: &[Reference],
) -> Result<BTreeSet<String>, BundleError> {
    let mut reused_images: BTreeSet<String> = BTreeSet::new();
    for r in images {
        let Some(d) = r.digest() else { continue };
        let Ok(Some(top)) = Source::get_manifest(layout, &d.to_string()).await else {
            continue;
        };
        let mut probe = BTreeMap::new();
        let mut w = Vec::new();
        if collect(name, layout, &top, &r.to_string(), &mut probe, &[], &mut w)
            .await
            .is_ok()
        {
            Destination::put_manifest(layout, &r.to_string(), &top)
                .await
                .map_err(|source| BundleError::transfer(name, source))?;
            reused_images.insert(r.to_string());
        }
    }
    Ok(reused_images)
}

/// Copies the verified blobs of an old bundle into the staging layout; returns how many,
/// and the old `index.json` (so the engine finds unchanged images present).
fn import_blobs(old: &Path, layout_dir: &Path) -> Result<(u64, Vec<u8>), BundleError> {
    let name = old.display().to_string();
    let mut n = 0u64;
    let mut writer = BlobWriter::new(&name, false);
    let scanned = scan(old, None, &mut |d: &Digest, _size, r: &mut dyn Read| {
        let dir = layout_dir.join("blobs").join(d.algorithm().as_str());
        std::fs::create_dir_all(&dir)
            .map_err(|e| BundleError::io(&name, "creating the staging blob directory", e))?;
        let entry = blob_entry(d);
        writer
            .copy(dir.join(d.hex()), &entry, r)?
            .map_err(|e| stream_err(&name, &entry, e))?;
        n += 1;
        Ok(())
    });
    let contents = scanned
        .and_then(|c| writer.finish().map(|()| c))
        .map_err(|e| match e {
            e if e.is_damage() => {
                BundleError::usage(&name, format!("--existing cannot be used: {e}"))
            }
            e => e,
        })?;
    Ok((n, contents.index))
}
