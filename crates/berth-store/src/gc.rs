//! Mark and sweep (`berth gc`) and re-hashing every blob (`berth fsck`).

use std::collections::{BTreeSet, HashSet};
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use berth_oci::units;
use berth_reference::Digest;
use serde::Serialize;

use crate::{Result, Store, StoreError, create_dir_synced, lock_exclusive, manifest, sync_dir};

/// What gc may remove.
#[derive(Debug, Clone)]
pub struct GcOptions {
    /// Never remove a blob, link or temporary file younger than this: a push in progress
    /// (blobs uploaded, manifest not yet pushed) keeps its blobs.
    pub grace: Duration,
    /// Also remove manifests that no tag reaches (directly, through an index, or as a
    /// referrer of a kept manifest), and the layer links only they used.
    pub delete_untagged: bool,
    /// Report what would be removed, remove nothing.
    pub dry_run: bool,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            grace: Duration::from_secs(3600),
            delete_untagged: false,
            dry_run: false,
        }
    }
}

/// What gc did (`berth gc --output json`).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct GcReport {
    pub blobs_kept: u64,
    pub blobs_removed: u64,
    pub bytes_removed: u64,
    /// Unreferenced blobs kept because they are younger than the grace period.
    pub blobs_young: u64,
    pub manifests_removed: u64,
    pub layer_links_removed: u64,
    pub temp_files_removed: u64,
    /// Nothing was removed: the counts say what would have been.
    pub dry_run: bool,
}

impl std::fmt::Display for GcReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verb = if self.dry_run {
            "would remove"
        } else {
            "removed"
        };
        write!(
            f,
            "{verb} {} blobs ({}), {} untagged manifests, {} layer links; kept {} blobs ({} younger than the grace period)",
            self.blobs_removed,
            units::size(self.bytes_removed),
            self.manifests_removed,
            self.layer_links_removed,
            self.blobs_kept + self.blobs_young,
            self.blobs_young
        )
    }
}

/// One problem fsck found (in JSON, `kind` names the variant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FsckFinding {
    /// The blob's content does not match its name; it was moved to `quarantine`.
    Corrupt {
        digest: Digest,
        actual: Digest,
        quarantined: PathBuf,
    },
    /// A file in `blobs/` whose name is not a digest (moved to quarantine).
    Stray { path: PathBuf, quarantined: PathBuf },
    /// A repository links a blob or manifest that is not stored.
    Missing { repository: String, digest: Digest },
    /// A tag points at a manifest the repository does not hold.
    DanglingTag {
        repository: String,
        tag: String,
        digest: String,
    },
}

impl std::fmt::Display for FsckFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FsckFinding::Corrupt {
                digest,
                actual,
                quarantined,
            } => write!(
                f,
                "blob {digest} is damaged (its content hashes to {actual}); moved to {}; push the image again to restore it",
                quarantined.display()
            ),
            FsckFinding::Stray { path, quarantined } => write!(
                f,
                "{} is not named by a digest; moved to {}",
                path.display(),
                quarantined.display()
            ),
            FsckFinding::Missing { repository, digest } => write!(
                f,
                "repository {repository} refers to {digest}, which is not stored; push the image again"
            ),
            FsckFinding::DanglingTag {
                repository,
                tag,
                digest,
            } => write!(
                f,
                "tag {repository}:{tag} points at {digest}, which the repository does not hold; push the tag again"
            ),
        }
    }
}

/// What fsck checked and found (`berth fsck --output json`).
#[derive(Debug, Default, Clone, Serialize)]
pub struct FsckReport {
    pub blobs_checked: u64,
    pub bytes_checked: u64,
    pub findings: Vec<FsckFinding>,
}

impl FsckReport {
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

/// `checked N blobs (12.30 MiB): no damage` or `…: N problems`.
impl std::fmt::Display for FsckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (n, size) = (self.blobs_checked, units::size(self.bytes_checked));
        match self.findings.len() {
            0 => write!(f, "checked {n} blobs ({size}): no damage"),
            p => write!(f, "checked {n} blobs ({size}): {p} problems"),
        }
    }
}

/// Every blob file: `(digest if the name is one, path)`.
pub(crate) fn all_blobs(store: &Store) -> Vec<(Option<Digest>, PathBuf)> {
    let mut out = vec![];
    let root = store.root().join("blobs");
    for alg in fs::read_dir(&root).into_iter().flatten().flatten() {
        let alg_name = alg.file_name().to_string_lossy().into_owned();
        for pre in fs::read_dir(alg.path()).into_iter().flatten().flatten() {
            for b in fs::read_dir(pre.path()).into_iter().flatten().flatten() {
                let name = b.file_name().to_string_lossy().into_owned();
                let d = Digest::parse(&format!("{alg_name}:{name}"))
                    .ok()
                    .filter(|d| pre.file_name().to_string_lossy() == d.hex()[..2]);
                out.push((d, b.path()));
            }
        }
    }
    out
}

/// Digests linked under `dir` (`<alg>/<hex>` files), with their modification times.
fn links(dir: &Path) -> Vec<(Digest, PathBuf, SystemTime)> {
    let mut out = vec![];
    for alg in fs::read_dir(dir).into_iter().flatten().flatten() {
        let a = alg.file_name().to_string_lossy().into_owned();
        for l in fs::read_dir(alg.path()).into_iter().flatten().flatten() {
            let h = l.file_name().to_string_lossy().into_owned();
            if let Ok(d) = Digest::parse(&format!("{a}:{h}")) {
                let t = l
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or_else(|_| SystemTime::now());
                out.push((d, l.path(), t));
            }
        }
    }
    out
}

fn older_than(t: SystemTime, grace: Duration) -> bool {
    SystemTime::now()
        .duration_since(t)
        .map(|age| age >= grace)
        .unwrap_or(false)
}

impl Store {
    fn gc_exclusive(&self) -> Result<File> {
        lock_exclusive(self.root(), &self.root().join("gc.lock"))
    }

    /// Mark and sweep. Blobs no repository links (and, with `delete_untagged`, manifests no
    /// tag reaches) are removed, except those younger than the grace period. Safe while the
    /// server runs: it holds off pushes only for the duration of the sweep.
    pub fn gc(&self, opts: &GcOptions) -> Result<GcReport> {
        let _lock = self.gc_exclusive()?;
        let mut report = GcReport {
            dry_run: opts.dry_run,
            ..GcReport::default()
        };
        let mut referenced: HashSet<Digest> = HashSet::new();
        for repo in self.repositories() {
            let dir = self.repo_dir(&repo);
            let manifests = links(&dir.join("_manifests"));
            let layers = links(&dir.join("_layers"));
            let mut kept: BTreeSet<Digest> = BTreeSet::new();
            if opts.delete_untagged {
                // Reach from tags and from young manifests, through indexes and referrers.
                let mut todo: Vec<Digest> = self
                    .tags(&repo)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|t| self.resolve_tag(&repo, t))
                    .collect();
                todo.extend(
                    manifests
                        .iter()
                        .filter(|(_, _, t)| !older_than(*t, opts.grace))
                        .map(|(d, _, _)| d.clone()),
                );
                while let Some(d) = todo.pop() {
                    if !kept.insert(d.clone()) {
                        continue;
                    }
                    if let Ok(bytes) = self.read_blob(&d)
                        && let Ok(r) = manifest::references(&bytes)
                    {
                        todo.extend(r.manifests);
                    }
                    for (r, _) in self.referrers(&repo, &d) {
                        todo.push(r);
                    }
                }
                for (d, path, _) in &manifests {
                    if !kept.contains(d) {
                        report.manifests_removed += 1;
                        if !opts.dry_run {
                            fs::remove_file(path).map_err(StoreError::io("remove", path))?;
                        }
                    }
                }
                let mut used: HashSet<Digest> = HashSet::new();
                for d in &kept {
                    if let Ok(bytes) = self.read_blob(d)
                        && let Ok(r) = manifest::references(&bytes)
                    {
                        used.extend(r.blobs);
                    }
                }
                for (d, path, t) in &layers {
                    if used.contains(d) || !older_than(*t, opts.grace) {
                        referenced.insert(d.clone());
                    } else {
                        report.layer_links_removed += 1;
                        if !opts.dry_run {
                            fs::remove_file(path).map_err(StoreError::io("remove", path))?;
                        }
                    }
                }
            } else {
                kept.extend(manifests.into_iter().map(|(d, _, _)| d));
                referenced.extend(layers.into_iter().map(|(d, _, _)| d));
            }
            for d in kept {
                if let Ok(bytes) = self.read_blob(&d)
                    && let Ok(r) = manifest::references(&bytes)
                {
                    referenced.extend(r.blobs);
                }
                referenced.insert(d);
            }
        }
        for (d, path) in all_blobs(self) {
            let Ok(meta) = fs::metadata(&path) else {
                continue;
            };
            if d.as_ref().is_some_and(|d| referenced.contains(d)) {
                report.blobs_kept += 1;
                continue;
            }
            if !older_than(
                meta.modified().unwrap_or_else(|_| SystemTime::now()),
                opts.grace,
            ) {
                report.blobs_young += 1;
                continue;
            }
            report.blobs_removed += 1;
            report.bytes_removed += meta.len();
            if !opts.dry_run {
                fs::remove_file(&path).map_err(StoreError::io("remove blob", &path))?;
                if let Some(dir) = path.parent() {
                    sync_dir(dir)?;
                }
            }
        }
        for dir in ["tmp"] {
            let d = self.root().join(dir);
            for e in fs::read_dir(&d).into_iter().flatten().flatten() {
                let t = e.metadata().and_then(|m| m.modified());
                if t.is_ok_and(|t| older_than(t, opts.grace.max(Duration::from_secs(24 * 3600)))) {
                    report.temp_files_removed += 1;
                    if !opts.dry_run {
                        let _ = fs::remove_file(e.path());
                    }
                }
            }
        }
        Ok(report)
    }

    /// Re-hashes every blob; damaged ones are moved to `quarantine/` (so they are never
    /// served again), then checks that every repository link and tag resolves.
    pub fn fsck(&self) -> Result<FsckReport> {
        let mut report = FsckReport::default();
        let qdir = self.root().join("quarantine");
        let mut buf = vec![0u8; 1 << 20];
        for (d, path) in all_blobs(self) {
            let Some(d) = d else {
                let q = qdir.join(format!(
                    "stray-{}",
                    path.file_name().unwrap_or_default().to_string_lossy()
                ));
                fs::rename(&path, &q).map_err(StoreError::io("quarantine", &path))?;
                report.findings.push(FsckFinding::Stray {
                    path,
                    quarantined: q,
                });
                continue;
            };
            let mut h = crate::hash::hasher_for(&d)?;
            let mut f = File::open(&path).map_err(StoreError::io("read blob", &path))?;
            loop {
                let n = f
                    .read(&mut buf)
                    .map_err(StoreError::io("read blob", &path))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
                report.bytes_checked += n as u64;
            }
            report.blobs_checked += 1;
            let actual = h.finish();
            if actual != d {
                let q = qdir.join(d.algorithm().as_str()).join(d.hex());
                create_dir_synced(q.parent().expect("parent"))?;
                fs::rename(&path, &q).map_err(StoreError::io("quarantine", &path))?;
                if let Some(dir) = path.parent() {
                    sync_dir(dir)?;
                }
                report.findings.push(FsckFinding::Corrupt {
                    digest: d,
                    actual,
                    quarantined: q,
                });
            }
        }
        for repo in self.repositories() {
            let dir = self.repo_dir(&repo);
            for sub in ["_manifests", "_layers"] {
                for (d, _, _) in links(&dir.join(sub)) {
                    if !self.blob_path(&d).is_file() {
                        report.findings.push(FsckFinding::Missing {
                            repository: repo.clone(),
                            digest: d,
                        });
                    }
                }
            }
            for t in self.tags(&repo).unwrap_or_default() {
                let raw = fs::read_to_string(self.tag_path(&repo, &t)).unwrap_or_default();
                let ok = Digest::parse(raw.trim())
                    .ok()
                    .is_some_and(|d| self.manifest_type(&repo, &d).is_some());
                if !ok {
                    report.findings.push(FsckFinding::DanglingTag {
                        repository: repo.clone(),
                        tag: t,
                        digest: raw.trim().to_string(),
                    });
                }
            }
        }
        Ok(report)
    }
}
