//! Building a bundle: the transfer engine fetches every image into a staging OCI layout
//! beside the output (the content, verified as it flows; blobs of `--existing` are taken
//! from the old bundle instead), then one deterministic tar is streamed through a
//! multi-threaded zstd encoder into the output file or its parts. The bundle is never
//! copied whole: the only bytes written are the staging blobs and the compressed stream.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use berth_client::{Client, Manifest};
use berth_reference::{Algorithm, Digest, Reference};
use berth_transfer::manifest::{Parsed, parse};
use berth_transfer::{
    CopyOptions, Destination, Endpoint, EventSink, ImageStatus, OciLayout, REF_NAME, RegistryEnd,
    Report, Source,
};
use bytes::Bytes;
use ed25519_dalek::SigningKey;
use serde_json::{Value, json};

use crate::manifest::{
    BundleManifest, Content, FORMAT_VERSION, INDEX_ENTRY, ImageEntry, LAYOUT_ENTRY, MANIFEST_ENTRY,
    OCI_LAYOUT, PROFILES_DIR, ProfileEntry, SIGNATURE_ENTRY, valid_profile_file,
};
use crate::parts::SplitWriter;
use crate::read::{blob_entry, digest_bytes, scan, stream_err};
use crate::write::BlobWriter;
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

fn platform_matches(want: &str, p: &Value) -> bool {
    let mut w = want.split('/');
    let (os, arch, variant) = (w.next(), w.next(), w.next());
    os == p["os"].as_str()
        && arch == p["architecture"].as_str()
        && variant.is_none_or(|v| Some(v) == p["variant"].as_str())
}

fn platform_string(p: &Value) -> String {
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
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = out
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bundle".into());
    let stage = tempfile::Builder::new()
        .prefix(&format!(".{file_name}.berth-stage-"))
        .tempdir_in(&parent)
        .map_err(|e| {
            BundleError::io(
                &name,
                format!("creating a staging directory in {}", parent.display()),
                e,
            )
        })?;
    let layout_dir = stage.path().join("layout");
    let layout =
        OciLayout::create(&layout_dir).map_err(|source| BundleError::transfer(&name, source))?;

    // Blobs (and ref names) of an older bundle.
    let mut reused_blobs = 0u64;
    if let Some(old) = &opts.existing {
        let (old, dir) = (old.clone(), layout_dir.clone());
        let (n, index) = tokio::task::spawn_blocking(move || import_existing(&old, &dir))
            .await
            .map_err(|e| BundleError::usage(&name, format!("reading --existing failed: {e}")))??;
        reused_blobs = n;
        std::fs::write(layout_dir.join("index.json"), index)
            .map_err(|e| BundleError::io(&name, "writing the staging index.json", e))?;
    }

    // What to fetch: whole images, or the chosen platforms' manifests.
    let mut images: Vec<Reference> = opts.images.clone();
    images.sort_by_key(|r| r.to_string());
    images.dedup();
    // Images pinned by digest that the old bundle holds whole need no request at all.
    let mut reused_images: BTreeSet<String> = BTreeSet::new();
    if opts.existing.is_some() && opts.platforms.is_empty() {
        for r in &images {
            let Some(d) = r.digest() else { continue };
            let Ok(Some(top)) = Source::get_manifest(&layout, &d.to_string()).await else {
                continue;
            };
            let mut probe = BTreeMap::new();
            let mut w = Vec::new();
            if collect(
                &name,
                &layout,
                &top,
                &r.to_string(),
                &mut probe,
                &[],
                &mut w,
            )
            .await
            .is_ok()
            {
                Destination::put_manifest(&layout, &r.to_string(), &top)
                    .await
                    .map_err(|source| BundleError::transfer(&name, source))?;
                reused_images.insert(r.to_string());
            }
        }
    }
    let mut pairs = Vec::new();
    let mut replaced: BTreeMap<String, (Manifest, Manifest)> = BTreeMap::new();
    let mut warnings = Vec::new();
    if opts.platforms.is_empty() {
        for r in images
            .iter()
            .filter(|r| !reused_images.contains(&r.to_string()))
        {
            pairs.push((
                Endpoint::Registry(r.clone()),
                Endpoint::Layout {
                    dir: layout_dir.clone(),
                    reference: r.to_string(),
                },
            ));
        }
    } else {
        let client = Client::new(opts.copy.source_registries.clone())
            .map_err(|e| BundleError::usage(&name, format!("source registry settings: {e}")))?
            .with_retry(opts.copy.retry);
        for r in &images {
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
                    bundle: name.clone(),
                    image: r.to_string(),
                    detail: e.to_string(),
                })?
                .ok_or_else(|| BundleError::Image {
                    bundle: name.clone(),
                    image: r.to_string(),
                    detail: "not found at the source".into(),
                })?;
            let image_err = |detail: String| BundleError::Image {
                bundle: name.clone(),
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
                            dir: layout_dir.clone(),
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
                                dir: layout_dir.clone(),
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

    let fetch = berth_transfer::copy_images(pairs, opts.copy.clone(), events).await;
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

    // What the bundle holds: every manifest, config and layer below each image.
    let mut blobs: BTreeMap<Digest, u64> = BTreeMap::new();
    let mut entries = Vec::new();
    let mut index_entries = Vec::new();
    for r in &images {
        let source = r.to_string();
        let top = Source::get_manifest(&layout, &source)
            .await
            .map_err(|e| BundleError::transfer(&name, e))?
            .ok_or_else(|| BundleError::Image {
                bundle: name.clone(),
                image: source.clone(),
                detail: "is not in the staging layout after fetching".into(),
            })?;
        collect(
            &name,
            &layout,
            &top,
            &source,
            &mut blobs,
            &opts.platforms,
            &mut warnings,
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
        created_from: opts.profiles.iter().map(|p| p.name.clone()).collect(),
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
    let manifest_bytes = manifest.to_bytes();
    let signature = opts
        .signing_key
        .as_ref()
        .map(|k| sign::sign(k, &manifest_bytes));

    let job = WriteJob {
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

/// Adds every blob below `top` (itself included) to `blobs`, checking each is staged.
async fn collect(
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

/// Copies the verified blobs of an old bundle into the staging layout; returns how many,
/// and the old `index.json` (so the engine finds unchanged images present).
fn import_existing(old: &Path, layout_dir: &Path) -> Result<(u64, Vec<u8>), BundleError> {
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

struct WriteJob {
    name: String,
    out: PathBuf,
    layout: OciLayout,
    manifest_bytes: Vec<u8>,
    signature: Option<Vec<u8>>,
    index: Vec<u8>,
    profiles: Vec<ProfileFile>,
    blobs: Vec<(Digest, u64)>,
    split: Option<u64>,
    level: i32,
    threads: u32,
}

/// A tar header as every bundle entry has it: regular file, mode 0644, mtime 0, uid/gid 0.
fn header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_size(size);
    h
}

impl WriteJob {
    fn write(self) -> Result<Vec<PathBuf>, BundleError> {
        let name = self.name.clone();
        let ioe = |what: &str| {
            let name = name.clone();
            let what = what.to_string();
            move |e: io::Error| BundleError::io(&name, what.clone(), e)
        };
        let split = SplitWriter::create(&self.out, self.split)?;
        let mut enc =
            zstd::stream::write::Encoder::new(split, self.level).map_err(ioe("starting zstd"))?;
        enc.multithread(self.threads)
            .map_err(ioe("starting zstd worker threads"))?;
        enc.include_checksum(true)
            .map_err(ioe("configuring zstd"))?;
        let mut tar = tar::Builder::new(enc);
        tar.mode(tar::HeaderMode::Deterministic);
        let small = |tar: &mut tar::Builder<_>, path: &str, bytes: &[u8]| {
            let mut h = header(bytes.len() as u64);
            tar.append_data(&mut h, path, bytes)
                .map_err(ioe(&format!("writing {path}")))
        };
        small(&mut tar, MANIFEST_ENTRY, &self.manifest_bytes)?;
        if let Some(sig) = &self.signature {
            small(&mut tar, SIGNATURE_ENTRY, sig)?;
        }
        small(&mut tar, LAYOUT_ENTRY, OCI_LAYOUT)?;
        small(&mut tar, INDEX_ENTRY, &self.index)?;
        for p in &self.profiles {
            small(&mut tar, &format!("{PROFILES_DIR}/{}", p.file), &p.bytes)?;
        }
        for (d, size) in &self.blobs {
            let entry = blob_entry(d);
            let f = std::fs::File::open(self.layout.blob_path(d))
                .map_err(ioe(&format!("opening staged {entry}")))?;
            let mut h = header(*size);
            // Exactly `size` bytes, read in large chunks.
            let r = io::BufReader::with_capacity(1 << 20, f).take(*size);
            tar.append_data(&mut h, &entry, r)
                .map_err(ioe(&format!("writing {entry}")))?;
        }
        let enc = tar.into_inner().map_err(ioe("finishing the tar stream"))?;
        let mut split = enc.finish().map_err(ioe("finishing the zstd stream"))?;
        split.flush().map_err(ioe("writing the bundle"))?;
        split.finish().map_err(ioe("writing the bundle"))
    }
}
