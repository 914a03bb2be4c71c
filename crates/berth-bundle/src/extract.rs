//! Extracting a bundle into an OCI image layout directory, safely: the bundle is read in one
//! verified pass into a temporary directory beside the target, and renamed to the target
//! only when every entry, digest, reference (and the signature, with a key) checked out.
//! Files are only ever created at paths Berth builds itself (`blobs/ALG/HEX`,
//! `profiles/FILE`), never at a path taken from the archive, so no entry can write
//! outside the target; a damaged or hostile bundle leaves nothing behind.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_reference::{Digest, Reference};
use berth_transfer::{CopyOptions, Endpoint, EventSink, OciLayout, Report};
use ed25519_dalek::VerifyingKey;

use crate::BundleError;
use crate::manifest::{
    INDEX_ENTRY, LAYOUT_ENTRY, MANIFEST_ENTRY, OCI_LAYOUT, PROFILES_DIR, SIGNATURE_ENTRY,
};
use crate::read::{Contents, blob_entry, scan, stream_err};
use crate::write::BlobWriter;

/// fsyncs a directory (its entries are durable once it returns).
fn sync_dir(name: &str, dir: &Path) -> Result<(), BundleError> {
    berth_atomic::sync_dir(dir).map_err(|e| BundleError::atomic(name, e))
}

/// Extracts into `dir` (created; built and checked in a temporary directory beside it).
/// Blobs are written by a [`BlobWriter`] thread while the stream is decompressed (one
/// thread) and hashed (this one), and made durable before this returns.
fn extract_into(
    path: &Path,
    dir: &Path,
    key: Option<&VerifyingKey>,
) -> Result<Contents, BundleError> {
    let name = path.display().to_string();
    let blobs = dir.join("blobs");
    std::fs::create_dir_all(&blobs).map_err(|e| BundleError::io(&name, "creating blobs/", e))?;
    let mut alg_dirs: BTreeSet<&'static str> = BTreeSet::new();
    let mut writer = BlobWriter::new(&name, true);
    let contents = scan(path, key, &mut |d: &Digest, _size, r: &mut dyn Read| {
        let alg = d.algorithm().as_str();
        if alg_dirs.insert(alg) {
            std::fs::create_dir(blobs.join(alg))
                .map_err(|e| BundleError::io(&name, format!("creating blobs/{alg}"), e))?;
        }
        let entry = blob_entry(d);
        writer
            .copy(blobs.join(alg).join(d.hex()), &entry, r)?
            .map_err(|e| stream_err(&name, &entry, e))
    })?;
    // The small files, by the same writer; then wait until every file is written and
    // fsynced, and sync the directories naming them.
    let mut small: Vec<(PathBuf, &[u8])> = vec![
        (dir.join(LAYOUT_ENTRY), OCI_LAYOUT),
        (dir.join(INDEX_ENTRY), &contents.index),
        (dir.join(MANIFEST_ENTRY), &contents.head.manifest_bytes),
    ];
    if let Some(sig) = &contents.head.signature {
        small.push((dir.join(SIGNATURE_ENTRY), sig));
    }
    let pd = dir.join(PROFILES_DIR);
    if !contents.profiles.is_empty() {
        std::fs::create_dir(&pd).map_err(|e| BundleError::io(&name, "creating profiles/", e))?;
        for (file, bytes) in &contents.profiles {
            small.push((pd.join(file), bytes));
        }
    }
    for (p, mut bytes) in small {
        let entry = p
            .strip_prefix(dir)
            .unwrap_or(&p)
            .to_string_lossy()
            .into_owned();
        writer
            .copy(p, &entry, &mut bytes)?
            .map_err(|e| BundleError::io(&name, format!("writing {entry}"), e))?;
    }
    writer.finish()?;
    for alg in &alg_dirs {
        sync_dir(&name, &blobs.join(alg))?;
    }
    sync_dir(&name, &blobs)?;
    if !contents.profiles.is_empty() {
        sync_dir(&name, &pd)?;
    }
    sync_dir(&name, dir)?;
    Ok(contents)
}

/// Extracts the bundle at `path` into the OCI image layout directory `to`, which must not
/// exist or be empty. With `key`, the signature must match. On any error nothing is left.
pub fn extract(
    path: &Path,
    to: &Path,
    key: Option<&VerifyingKey>,
) -> Result<Contents, BundleError> {
    let name = path.display().to_string();
    if let Ok(mut rd) = std::fs::read_dir(to)
        && rd.next().is_some()
    {
        return Err(BundleError::usage(
            &name,
            format!(
                "{} exists and is not empty; extract into a new directory",
                to.display()
            ),
        ));
    }
    if to.exists() && !to.is_dir() {
        return Err(BundleError::usage(
            &name,
            format!("{} exists and is not a directory", to.display()),
        ));
    }
    let parent = berth_atomic::parent_dir(to);
    std::fs::create_dir_all(parent)
        .map_err(|e| BundleError::io(&name, format!("creating {}", parent.display()), e))?;
    let tmp =
        berth_atomic::temp_dir_beside(to, "extract").map_err(|e| BundleError::atomic(&name, e))?;
    let contents = extract_into(path, tmp.path(), key)?;
    if to.is_dir() {
        std::fs::remove_dir(to).map_err(|e| {
            BundleError::io(&name, format!("replacing the empty {}", to.display()), e)
        })?;
    }
    let kept = tmp.keep();
    std::fs::rename(&kept, to).map_err(|e| {
        let _ = std::fs::remove_dir_all(&kept);
        BundleError::io(
            &name,
            format!("renaming the extracted layout to {}", to.display()),
            e,
        )
    })?;
    sync_dir(&name, parent)?;
    Ok(contents)
}

/// A bundle extracted (verified) into a temporary OCI layout, removed on drop: what `push`
/// and `serve` read from.
pub struct Extracted {
    dir: tempfile::TempDir,
    pub contents: Contents,
}

impl Extracted {
    /// Extracts into a new temporary directory under `tmp` (default: `$TMPDIR`, else `/tmp`).
    /// It needs as much free space as the uncompressed bundle.
    pub fn open(
        path: &Path,
        key: Option<&VerifyingKey>,
        tmp: Option<&Path>,
    ) -> Result<Extracted, BundleError> {
        let name = path.display().to_string();
        let b = {
            let mut b = tempfile::Builder::new();
            b.prefix("berth-bundle-");
            b
        };
        let dir = match tmp {
            Some(t) => b.tempdir_in(t),
            None => b.tempdir(),
        }
        .map_err(|e| BundleError::io(&name, "creating a temporary directory for the extracted bundle (set $TMPDIR or --tmp-dir to a disk with room)", e))?;
        let contents = extract_into(path, dir.path(), key)?;
        Ok(Extracted { dir, contents })
    }

    /// The OCI image layout directory.
    pub fn layout(&self) -> &Path {
        self.dir.path()
    }

    /// The engine end of one image (by its source reference), named by that reference.
    pub fn endpoint(&self, source: &str) -> Result<Endpoint, BundleError> {
        let layout = OciLayout::open(self.dir.path())
            .map_err(|e| BundleError::transfer(&self.dir.path().display().to_string(), e))?;
        Ok(Endpoint::Ends {
            name: source.to_string(),
            reference: source.to_string(),
            source: Some(Arc::new(layout)),
            destination: None,
        })
    }
}

/// Every image to its target, through the transfer engine (the same copy as `berth
/// mirror`). `target` maps a source reference to where it goes (the rewrite function);
/// images whose target is their source are returned apart (nothing redirects them).
pub async fn push(
    bundle: &Extracted,
    target: &dyn Fn(&Reference) -> Result<Reference, String>,
    opts: CopyOptions,
    events: Option<EventSink>,
) -> Result<(Report, Vec<String>), BundleError> {
    let name = bundle
        .contents
        .head
        .parts
        .first()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let mut pairs = Vec::new();
    let mut unmoved = Vec::new();
    let mut errors = Vec::new();
    for img in &bundle.contents.head.manifest.images {
        let src = Reference::parse(&img.source).map_err(|e| {
            BundleError::damaged(
                &name,
                MANIFEST_ENTRY,
                format!("image `{}`: {e}", img.source),
            )
        })?;
        match target(&src) {
            Ok(t) if t == src => unmoved.push(img.source.clone()),
            Ok(t) => pairs.push((bundle.endpoint(&img.source)?, Endpoint::Registry(t))),
            Err(e) => errors.push(format!("{}: {e}", img.source)),
        }
    }
    if !errors.is_empty() {
        return Err(BundleError::usage(&name, errors.join("\n")));
    }
    Ok((
        berth_transfer::copy_images(pairs, opts, events).await,
        unmoved,
    ))
}
