//! Building a bundle: the transfer engine fetches every image into a staging OCI layout
//! beside the output (the content, verified as it flows; blobs of `--existing` are taken
//! from the old bundle instead), then one deterministic tar is streamed through a
//! multi-threaded zstd encoder into the output file or its parts. The bundle is never
//! copied whole: the only bytes written are the staging blobs and the compressed stream.

mod contents;
mod existing;
mod platform;
mod write;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use berth_plan::PlanChart;
use berth_reference::Reference;
use berth_transfer::{
    CopyOptions, Destination, Endpoint, EventSink, ImageStatus, OciLayout, Report,
};
use ed25519_dalek::SigningKey;

pub use platform::parse_platform;

use crate::manifest::{BundleManifest, valid_profile_file};
use crate::{BundleError, sign};

/// A profile file to put under `profiles/`.
#[derive(Clone, Debug)]
pub struct ProfileFile {
    /// The file name in the bundle (a single path component).
    pub file: String,
    /// The profile's `name:` (for `created_from`).
    pub name: String,
    pub bytes: Vec<u8>,
}

/// What to build.
#[derive(Clone)]
pub struct BuildOptions {
    /// Every image, by its full source reference.
    pub images: Vec<Reference>,
    /// The charts of the profiles' Helm packs: each Helm OCI artifact is staged and named
    /// by its source reference like an image (so `bundle push` sends it where `mirror`
    /// does). A chart without an artifact (given as a directory) fails the build.
    pub charts: Vec<PlanChart>,
    pub profiles: Vec<ProfileFile>,
    /// `os/arch[/variant]` to keep; empty keeps every platform.
    pub platforms: Vec<String>,
    /// Split the output into parts of at most this many bytes.
    pub split_size: Option<u64>,
    /// zstd level (1..=22; 3 is zstd's default).
    pub level: i32,
    /// zstd worker threads, at least 1 (the output does not depend on the number).
    pub threads: u32,
    /// An older bundle whose blobs are reused instead of fetched.
    pub existing: Option<PathBuf>,
    pub signing_key: Option<SigningKey>,
    /// Sources' credentials and TLS, parallel transfers.
    pub copy: CopyOptions,
}

impl Default for BuildOptions {
    fn default() -> BuildOptions {
        BuildOptions {
            images: Vec::new(),
            charts: Vec::new(),
            profiles: Vec::new(),
            platforms: Vec::new(),
            split_size: None,
            level: 3,
            threads: std::thread::available_parallelism()
                .map(|n| n.get() as u32)
                .unwrap_or(1),
            existing: None,
            signing_key: None,
            copy: CopyOptions::default(),
        }
    }
}

/// What [`build`] did.
#[derive(Debug)]
pub struct BuildReport {
    pub manifest: BundleManifest,
    /// The files written (one, or the parts).
    pub files: Vec<PathBuf>,
    /// The engine's report of fetching the images into the staging layout.
    pub fetch: Report,
    /// Blobs taken from `--existing`.
    pub reused_blobs: u64,
    /// Images pinned by digest taken whole from `--existing` (no request to the source).
    pub reused_images: Vec<String>,
    /// Things the user must know (e.g. an index replaced by `--platform`).
    pub warnings: Vec<String>,
    pub compressed_size: u64,
    /// Seconds spent writing the tar.zst (after every blob was staged).
    pub write_seconds: f64,
}

/// Builds the bundle `out` (or its parts when `split_size` is set).
pub async fn build(
    out: &Path,
    opts: BuildOptions,
    events: Option<EventSink>,
) -> Result<BuildReport, BundleError> {
    let name = out.display().to_string();
    if opts.images.is_empty() {
        return Err(BundleError::usage(
            &name,
            "the profiles list no images: nothing to bundle",
        ));
    }
    if !(1..=22).contains(&opts.level) {
        return Err(BundleError::usage(&name, "--level must be 1 to 22"));
    }
    if out.is_dir() {
        return Err(BundleError::usage(
            &name,
            "is a directory; name the bundle file (BUNDLE.tar.zst)",
        ));
    }
    let mut seen_files = BTreeSet::new();
    for p in &opts.profiles {
        if !valid_profile_file(&p.file) || !seen_files.insert(p.file.clone()) {
            return Err(BundleError::usage(
                &name,
                format!(
                    "profile file name `{}` is not unique or not a plain file name (letters, digits, . - _)",
                    p.file
                ),
            ));
        }
    }
    let stage =
        berth_atomic::temp_dir_beside(out, "stage").map_err(|e| BundleError::atomic(&name, e))?;
    let layout_dir = stage.path().join("layout");
    let layout =
        OciLayout::create(&layout_dir).map_err(|source| BundleError::transfer(&name, source))?;

    // Blobs (and ref names) of an older bundle.
    let reused_blobs = match &opts.existing {
        Some(old) => existing::import(&name, old, &layout_dir).await?,
        None => 0,
    };

    // What to fetch: whole images, or the chosen platforms' manifests.
    let mut images: Vec<Reference> = opts.images.clone();
    images.sort_by_key(|r| r.to_string());
    images.dedup();
    // Images pinned by digest that the old bundle holds whole need no request at all.
    let reused_images = if opts.existing.is_some() && opts.platforms.is_empty() {
        existing::whole_images(&name, &layout, &images).await?
    } else {
        BTreeSet::new()
    };
    let platform::Selection {
        mut pairs,
        replaced,
        mut warnings,
    } = platform::select(&name, &opts, &images, &reused_images, &layout_dir).await?;
    // The charts, from memory, named like images.
    let mut named = images.clone();
    for c in &opts.charts {
        let a = c.artifact.as_ref().map_err(|why| BundleError::Image {
            bundle: name.clone(),
            image: format!("chart {}", c.source),
            detail: why.clone(),
        })?;
        let reference = c.source.to_string();
        let staged = Endpoint::Layout {
            dir: layout_dir.clone(),
            reference,
        };
        pairs.push((berth_transfer::chart_endpoint(c, a), staged));
        named.push(c.source.clone());
    }
    named.sort_by_key(|r| r.to_string());
    named.dedup();
    // Attached artifacts are not carried by bundles yet (their layout keeps no referrers).
    let copy = berth_transfer::CopyOptions {
        referrers: false,
        ..opts.copy.clone()
    };
    let fetch = berth_transfer::copy_images(pairs, copy, events).await;
    if let Some(f) = fetch
        .images
        .iter()
        .find(|i| i.status == ImageStatus::Failed)
    {
        return Err(BundleError::Image {
            bundle: name.clone(),
            image: f.source.clone(),
            detail: f.error.clone().unwrap_or_default(),
        });
    }
    for (r, (_, new)) in &replaced {
        Destination::put_manifest(&layout, r, new)
            .await
            .map_err(|source| BundleError::transfer(&name, source))?;
    }

    let contents::Described {
        manifest,
        index,
        profiles,
        blobs,
    } = contents::describe(&name, &layout, &named, &replaced, &opts, &mut warnings).await?;
    let manifest_bytes = manifest.to_bytes();
    let signature = opts
        .signing_key
        .as_ref()
        .map(|k| sign::sign(k, &manifest_bytes));

    let job = write::WriteJob {
        name: name.clone(),
        out: out.to_path_buf(),
        layout: layout.clone(),
        manifest_bytes,
        signature,
        index,
        profiles,
        blobs: blobs.into_iter().collect(),
        split: opts.split_size,
        level: opts.level,
        threads: opts.threads.max(1),
    };
    let write_started = std::time::Instant::now();
    let files = tokio::task::spawn_blocking(move || job.write())
        .await
        .map_err(|e| BundleError::usage(&name, format!("the bundle writer failed: {e}")))??;
    drop(stage);
    let compressed_size = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    Ok(BuildReport {
        manifest,
        files,
        fetch,
        reused_blobs,
        reused_images: reused_images.into_iter().collect(),
        warnings,
        compressed_size,
        write_seconds: write_started.elapsed().as_secs_f64(),
    })
}
