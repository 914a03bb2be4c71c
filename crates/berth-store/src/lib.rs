//! Content-addressed storage for the edge registry.
//!
//! Layout of a data directory:
//!
//! ```text
//! blobs/sha256/<2 hex>/<hex>        every blob and manifest, once, named by its digest
//! repos/<name>/_layers/<alg>/<hex>  the blobs a repository may serve (empty link files)
//! repos/<name>/_manifests/<alg>/<hex>  the manifests of a repository (content: media type)
//! repos/<name>/_tags/<tag>          a tag (content: the manifest digest)
//! repos/<name>/_referrers/<alg>/<hex>/<alg>-<hex>  manifests whose `subject` is <alg>:<hex>
//! tmp/, uploads/                    files being written (cleaned when the server starts)
//! quarantine/<alg>/<hex>            blobs fsck found damaged
//! gc.lock, server.lock              lock files
//! ```
//!
//! Writes are atomic and verified: content goes to a temporary file created with `O_EXCL`,
//! is hashed while it streams, fsynced, checked against the digest the client named, renamed
//! into place and the directory fsynced. A crash at any moment leaves either nothing or the
//! complete blob; leftovers in `tmp/` and `uploads/` are removed by [`Store::open_server`].
//!
//! Concurrency with `berth gc`: gc holds an exclusive lock on `gc.lock` while it marks and
//! sweeps; every operation that makes a blob reachable (commit, mount, manifest push) holds
//! a shared lock on it, so gc never removes a blob that a repository is linking.

mod error;
mod gc;
mod hash;
pub mod manifest;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_reference::{Algorithm, Digest};

pub use error::{Result, StoreError};
pub use gc::{FsckFinding, FsckReport, GcOptions, GcReport};
pub use hash::{Hasher, digest_like, random_id, sha256};

/// A data directory. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    _server_lock: Option<File>,
}

/// Checks a repository name: `/`-separated components of the distribution grammar, at most
/// 255 characters. Rejects everything else (`..`, `%2e`, upper case, empty components).
pub fn validate_repository(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() {
        return Err("the repository name is empty".into());
    }
    if name.len() > berth_reference::NAME_MAX_LEN {
        return Err(format!(
            "the repository name is {} characters long; the limit is {}",
            name.len(),
            berth_reference::NAME_MAX_LEN
        ));
    }
    for comp in name.split('/') {
        berth_reference::validate_path_component(comp)?;
    }
    Ok(())
}

/// Checks a tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn validate_tag(tag: &str) -> std::result::Result<(), String> {
    let b = tag.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= berth_reference::TAG_MAX_LEN
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{tag}` is not a valid tag: up to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`"
        ))
    }
}

fn digest_rel(d: &Digest) -> PathBuf {
    Path::new(d.algorithm().as_str()).join(d.hex())
}

/// fsync a directory, so that a rename or create in it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(StoreError::io("fsync directory", dir))
}

fn create_dir_synced(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = vec![];
    let mut d = dir;
    while !d.is_dir() {
        missing.push(d.to_path_buf());
        match d.parent() {
            Some(p) => d = p,
            None => break,
        }
    }
    fs::create_dir_all(dir).map_err(StoreError::io("create directory", dir))?;
    for m in missing.iter().rev() {
        if let Some(p) = m.parent() {
            sync_dir(p)?;
        }
    }
    Ok(())
}

impl Store {
    /// Opens (creating) a data directory for `berth serve`: takes `server.lock` so that two
    /// servers never share it, and removes what interrupted writes left in `tmp/` and
    /// `uploads/`.
    pub fn open_server(root: &Path) -> Result<Store> {
        Self::open_unlocked(root)?;
        let lock_path = root.join("server.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(StoreError::io("open lock file", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Locked {
                    path: root.to_path_buf(),
                    lock: lock_path,
                });
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(StoreError::io("lock", &lock_path)(e));
            }
        }
        for dir in ["tmp", "uploads"] {
            let d = root.join(dir);
            for e in fs::read_dir(&d).map_err(StoreError::io("read directory", &d))? {
                let e = e.map_err(StoreError::io("read directory", &d))?;
                let p = e.path();
                let r = if p.is_dir() {
                    fs::remove_dir_all(&p)
                } else {
                    fs::remove_file(&p)
                };
                r.map_err(StoreError::io("remove stale temporary file", &p))?;
            }
        }
        Ok(Store {
            inner: Arc::new(Inner {
                root: root.to_path_buf(),
                _server_lock: Some(lock),
            }),
        })
    }

    /// Opens (creating) a data directory without cleaning it (gc, fsck, tests).
    pub fn open(root: &Path) -> Result<Store> {
        Self::open_unlocked(root)
    }

    fn open_unlocked(root: &Path) -> Result<Store> {
        for dir in ["blobs", "repos", "tmp", "uploads", "quarantine"] {
            create_dir_synced(&root.join(dir))?;
        }
        Ok(Store {
            inner: Arc::new(Inner {
                root: root.to_path_buf(),
                _server_lock: None,
            }),
        })
    }

    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Where a blob lives: `blobs/<alg>/<2 hex>/<hex>`.
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root()
            .join("blobs")
            .join(d.algorithm().as_str())
            .join(&d.hex()[..2])
            .join(d.hex())
    }

    /// The size of a stored blob, `None` when absent.
    pub fn blob_size(&self, d: &Digest) -> Option<u64> {
        fs::metadata(self.blob_path(d))
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len())
    }

    /// A whole blob (manifests; never for layers).
    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        let p = self.blob_path(d);
        fs::read(&p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                StoreError::BlobMissing { digest: d.clone() }
            } else {
                StoreError::io("read blob", &p)(e)
            }
        })
    }

    /// A shared hold on `gc.lock`: gc cannot mark and sweep while it is held.
    pub(crate) fn gc_shared(&self) -> Result<File> {
        let p = self.root().join("gc.lock");
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(StoreError::io("open lock file", &p))?;
        f.lock_shared().map_err(StoreError::io("lock", &p))?;
        Ok(f)
    }

    fn repo_dir(&self, repo: &str) -> PathBuf {
        debug_assert!(validate_repository(repo).is_ok());
        self.root().join("repos").join(repo)
    }

    /// Writes `content` to `path` atomically (temporary file, fsync, rename, fsync dir).
    fn write_atomic(&self, path: &Path, content: &[u8]) -> Result<()> {
        let tmp = self.root().join("tmp").join(random_id());
        let write = || -> std::io::Result<()> {
            let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            f.write_all(content)?;
            f.sync_all()
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(StoreError::io("write temporary file", &tmp)(e));
        }
        let dir = path.parent().expect("a file in the store has a parent");
        create_dir_synced(dir)?;
        if let Err(e) = fs::rename(&tmp, path) {
            let _ = fs::remove_file(&tmp);
            return Err(StoreError::io("rename into place", path)(e));
        }
        sync_dir(dir)
    }

    /// Stores bytes whose digest is `digest` (already checked by the caller or computed here).
    fn put_bytes(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        let actual = digest_like(bytes, digest)?;
        if &actual != digest {
            return Err(StoreError::DigestMismatch {
                expected: digest.clone(),
                actual,
            });
        }
        let p = self.blob_path(digest);
        if p.is_file() {
            return Ok(());
        }
        self.write_atomic(&p, bytes)
    }

    /// A writer for a new blob in `tmp/`.
    pub async fn writer(&self) -> Result<BlobWriter> {
        BlobWriter::create(
            self.clone(),
            self.root().join("tmp").join(random_id()),
            true,
        )
        .await
    }

    /// A writer for a new blob in `tmp/` that only writes: the caller hashes the same bytes
    /// itself (e.g. while it forwards them) and hands its digest to
    /// [`BlobWriter::commit_hashed`]. (A plain [`BlobWriter::commit`] reads the file back.)
    pub async fn writer_unhashed(&self) -> Result<BlobWriter> {
        BlobWriter::create(
            self.clone(),
            self.root().join("tmp").join(random_id()),
            false,
        )
        .await
    }

    /// A writer for an upload session `id` in `uploads/`.
    pub async fn upload_writer(&self, id: &str) -> Result<BlobWriter> {
        BlobWriter::create(self.clone(), self.root().join("uploads").join(id), true).await
    }

    // ---- repositories ----

    fn layer_link(&self, repo: &str, d: &Digest) -> PathBuf {
        self.repo_dir(repo).join("_layers").join(digest_rel(d))
    }

    fn manifest_link(&self, repo: &str, d: &Digest) -> PathBuf {
        self.repo_dir(repo).join("_manifests").join(digest_rel(d))
    }

    fn tag_path(&self, repo: &str, tag: &str) -> PathBuf {
        self.repo_dir(repo).join("_tags").join(tag)
    }

    fn create_link(&self, path: &Path) -> Result<()> {
        if path.is_file() {
            return Ok(());
        }
        self.write_atomic(path, b"")
    }

    /// Whether `repo` may serve blob `d` (it was pushed or mounted there, and is stored).
    pub fn has_layer(&self, repo: &str, d: &Digest) -> bool {
        self.layer_link(repo, d).is_file() && self.blob_path(d).is_file()
    }

    /// Links a stored blob into `repo` (mount). `Ok(false)` when the blob is not stored.
    pub fn link_layer(&self, repo: &str, d: &Digest) -> Result<bool> {
        let _g = self.gc_shared()?;
        if !self.blob_path(d).is_file() {
            return Ok(false);
        }
        self.create_link(&self.layer_link(repo, d))?;
        Ok(true)
    }

    /// Removes blob `d` from `repo` (the content stays until gc). `false` if it was not there.
    pub fn unlink_layer(&self, repo: &str, d: &Digest) -> Result<bool> {
        let p = self.layer_link(repo, d);
        match fs::remove_file(&p) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::io("remove link", &p)(e)),
        }
    }

    /// The media type of manifest `d` in `repo`, `None` if the repository does not hold it.
    pub fn manifest_type(&self, repo: &str, d: &Digest) -> Option<String> {
        let t = fs::read_to_string(self.manifest_link(repo, d)).ok()?;
        self.blob_path(d).is_file().then_some(t)
    }

    /// Stores a manifest in `repo`, under its digest and optionally a tag. Under the gc lock,
    /// checks that every blob in `blobs` and manifest in `manifests` is in the repository;
    /// returns the first missing one as `Err(Ok(digest))`.
    pub fn put_manifest(
        &self,
        repo: &str,
        push: &ManifestPush<'_>,
    ) -> std::result::Result<(), std::result::Result<Digest, StoreError>> {
        let _g = self.gc_shared().map_err(Err)?;
        for b in push.blobs {
            if !self.has_layer(repo, b) && self.manifest_type(repo, b).is_none() {
                return Err(Ok(b.clone()));
            }
        }
        for m in push.manifests {
            if self.manifest_type(repo, m).is_none() {
                return Err(Ok(m.clone()));
            }
        }
        self.put_bytes(push.digest, push.bytes).map_err(Err)?;
        self.write_atomic(
            &self.manifest_link(repo, push.digest),
            push.media_type.as_bytes(),
        )
        .map_err(Err)?;
        for b in push.blobs {
            if self.blob_path(b).is_file() && !self.layer_link(repo, b).is_file() {
                self.create_link(&self.layer_link(repo, b)).map_err(Err)?;
            }
        }
        if let Some(s) = push.subject {
            let p = self
                .repo_dir(repo)
                .join("_referrers")
                .join(digest_rel(s))
                .join(format!(
                    "{}-{}",
                    push.digest.algorithm().as_str(),
                    push.digest.hex()
                ));
            self.create_link(&p).map_err(Err)?;
        }
        if let Some(t) = push.tag {
            self.write_atomic(&self.tag_path(repo, t), push.digest.to_string().as_bytes())
                .map_err(Err)?;
        }
        Ok(())
    }

    /// The digest a tag points at.
    pub fn resolve_tag(&self, repo: &str, tag: &str) -> Option<Digest> {
        let s = fs::read_to_string(self.tag_path(repo, tag)).ok()?;
        Digest::parse(s.trim()).ok()
    }

    /// Whether the repository exists (has held anything).
    pub fn repo_exists(&self, repo: &str) -> bool {
        let d = self.repo_dir(repo);
        ["_manifests", "_layers", "_tags"]
            .iter()
            .any(|s| d.join(s).is_dir())
    }

    /// Tags of `repo`, sorted; `None` when the repository is unknown.
    pub fn tags(&self, repo: &str) -> Option<Vec<String>> {
        if !self.repo_exists(repo) {
            return None;
        }
        let mut tags: Vec<String> = fs::read_dir(self.repo_dir(repo).join("_tags"))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|t| validate_tag(t).is_ok())
                    .collect()
            })
            .unwrap_or_default();
        tags.sort();
        Some(tags)
    }

    /// Removes a tag. `false` when it did not exist.
    pub fn delete_tag(&self, repo: &str, tag: &str) -> Result<bool> {
        let p = self.tag_path(repo, tag);
        match fs::remove_file(&p) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::io("remove tag", &p)(e)),
        }
    }

    /// Removes manifest `d` from `repo` with every tag that points at it. `false` when the
    /// repository did not hold it.
    pub fn delete_manifest(&self, repo: &str, d: &Digest) -> Result<bool> {
        if self.manifest_type(repo, d).is_none() {
            return Ok(false);
        }
        for t in self.tags(repo).unwrap_or_default() {
            if self.resolve_tag(repo, &t).as_ref() == Some(d) {
                self.delete_tag(repo, &t)?;
            }
        }
        let p = self.manifest_link(repo, d);
        fs::remove_file(&p).map_err(StoreError::io("remove manifest link", &p))?;
        Ok(true)
    }

    /// Manifests of `repo` whose subject is `subject`, with their media types.
    pub fn referrers(&self, repo: &str, subject: &Digest) -> Vec<(Digest, String)> {
        let dir = self
            .repo_dir(repo)
            .join("_referrers")
            .join(digest_rel(subject));
        let mut out = vec![];
        for e in fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some((alg, hex)) = name.split_once('-') else {
                continue;
            };
            let Ok(d) = Digest::parse(&format!("{alg}:{hex}")) else {
                continue;
            };
            if let Some(t) = self.manifest_type(repo, &d) {
                out.push((d, t));
            }
        }
        out.sort();
        out
    }

    /// Every repository, sorted.
    pub fn repositories(&self) -> Vec<String> {
        let mut out = vec![];
        let root = self.root().join("repos");
        fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
            let Ok(rd) = fs::read_dir(dir) else { return };
            let mut is_repo = false;
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('_') {
                    is_repo |= matches!(name.as_str(), "_manifests" | "_layers" | "_tags");
                    continue;
                }
                if berth_reference::validate_path_component(&name).is_err()
                    || !e.file_type().map(|t| t.is_dir()).unwrap_or(false)
                {
                    continue;
                }
                let p = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}/{name}")
                };
                walk(&e.path(), &p, out);
            }
            if is_repo && !prefix.is_empty() {
                out.push(prefix.to_string());
            }
        }
        walk(&root, "", &mut out);
        out.sort();
        out
    }

    /// Total bytes of stored blobs and their count.
    pub fn blob_usage(&self) -> (u64, u64) {
        let mut bytes = 0;
        let mut count = 0;
        for (_, p) in gc::all_blobs(self) {
            if let Ok(m) = fs::metadata(p) {
                bytes += m.len();
                count += 1;
            }
        }
        (bytes, count)
    }
}

/// A manifest to store with [`Store::put_manifest`].
pub struct ManifestPush<'a> {
    pub digest: &'a Digest,
    pub bytes: &'a [u8],
    pub media_type: &'a str,
    pub tag: Option<&'a str>,
    pub subject: Option<&'a Digest>,
    /// Blobs the manifest refers to (config, layers): must be in the repository.
    pub blobs: &'a [Digest],
    /// Child manifests: must be in the repository.
    pub manifests: &'a [Digest],
}

/// Writes reach the file in batches of this size, hashed and written on the blocking pool
/// while the next batch fills.
const WRITE_BATCH: usize = 1 << 20;

/// The file and the running hash: owned by the batch being written, if any.
/// The file, and its hash unless the caller hashes ([`Store::writer_unhashed`]).
type Sink = (File, Option<Hasher>);

/// A batch being hashed and written; it gives back the sink and the buffer.
type Batch = tokio::task::JoinHandle<std::io::Result<(Sink, Vec<u8>)>>;

/// A blob being written: a temporary file created with `O_EXCL`, hashed while it is
/// written. Dropped without [`BlobWriter::commit`], the file is removed.
///
/// Chunks are collected into batches of 1 MiB that are hashed and written on the blocking
/// pool while the next batch fills (at most two batches in memory), so the task that
/// feeds the writer only copies; [`flush`](Self::flush) writes what is collected and frees
/// the buffers.
pub struct BlobWriter {
    store: Store,
    path: PathBuf,
    /// The file and hash, when no batch is being written.
    sink: Option<Sink>,
    /// The batch being written.
    inflight: Option<Batch>,
    buf: Vec<u8>,
    size: u64,
    /// `commit` took over the file (it removes it on failure).
    committing: bool,
}

impl BlobWriter {
    async fn create(store: Store, path: PathBuf, hash: bool) -> Result<BlobWriter> {
        let p = path.clone();
        let file = tokio::task::spawn_blocking(move || {
            OpenOptions::new().write(true).create_new(true).open(&p)
        })
        .await
        .expect("the open task does not panic")
        .map_err(StoreError::io("create temporary file", &path))?;
        Ok(BlobWriter {
            store,
            path,
            sink: Some((file, hash.then(Hasher::sha256))),
            inflight: None,
            buf: Vec::new(),
            size: 0,
            committing: false,
        })
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Waits for the batch being written; returns its (emptied) buffer.
    async fn settle(&mut self) -> Result<Option<Vec<u8>>> {
        let Some(h) = self.inflight.take() else {
            return Ok(None);
        };
        let (sink, mut spare) = h
            .await
            .expect("a write task does not panic")
            .map_err(StoreError::io("write", &self.path))?;
        self.sink = Some(sink);
        spare.clear();
        Ok(Some(spare))
    }

    /// Starts hashing and writing what is collected (after the batch before it).
    async fn send(&mut self) -> Result<()> {
        let spare = self.settle().await?;
        let Some((mut f, mut h)) = self.sink.take() else {
            return Err(StoreError::io("write", &self.path)(std::io::Error::other(
                "an earlier write to this file failed",
            )));
        };
        if self.buf.is_empty() {
            self.sink = Some((f, h));
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.buf, spare.unwrap_or_default());
        let offset = self.size - batch.len() as u64;
        self.inflight = Some(tokio::task::spawn_blocking(move || {
            if let Some(h) = h.as_mut() {
                h.update(&batch);
            }
            f.write_all(&batch)?;
            start_writeback(&f, offset, batch.len());
            Ok(((f, h), batch))
        }));
        Ok(())
    }

    pub async fn write(&mut self, chunk: &[u8]) -> Result<()> {
        self.size += chunk.len() as u64;
        if self.buf.capacity() < WRITE_BATCH {
            self.buf.reserve(WRITE_BATCH - self.buf.len());
        }
        self.buf.extend_from_slice(chunk);
        if self.buf.len() >= WRITE_BATCH {
            self.send().await?;
        }
        Ok(())
    }

    /// Writes everything collected to the file and frees the buffers (e.g. between the
    /// chunks of an upload session).
    pub async fn flush(&mut self) -> Result<()> {
        self.send().await?;
        self.settle().await?;
        self.buf = Vec::new();
        Ok(())
    }

    /// Whether the bytes written so far have digest `expected`, when that is known without
    /// reading the file back (sha256, hashed as written): `None` for other algorithms.
    /// Writes what is collected first; nothing is stored: [`commit`](Self::commit) checks
    /// again.
    pub async fn matches(&mut self, expected: &Digest) -> Result<Option<bool>> {
        self.flush().await?;
        Ok(match (expected.algorithm(), &self.sink) {
            (Algorithm::Sha256, Some((_, Some(h)))) => Some(&h.clone().finish() == expected),
            _ => None,
        })
    }

    /// Verifies the content against `expected`, makes it durable and moves it into place
    /// (or keeps the copy already stored); links it into `repo` when given, all while gc
    /// is held off. On a mismatch, the temporary file is removed and nothing is visible.
    pub async fn commit(self, expected: &Digest, repo: Option<&str>) -> Result<u64> {
        self.finish(expected, None, repo).await
    }

    /// [`commit`](Self::commit) of bytes the caller hashed itself as it wrote them:
    /// `actual` is the digest it got (in `expected`'s algorithm); the file is not read back.
    pub async fn commit_hashed(
        self,
        expected: &Digest,
        actual: Digest,
        repo: Option<&str>,
    ) -> Result<u64> {
        self.finish(expected, Some(actual), repo).await
    }

    async fn finish(
        mut self,
        expected: &Digest,
        hashed: Option<Digest>,
        repo: Option<&str>,
    ) -> Result<u64> {
        self.flush().await?;
        let Some((std_file, hasher)) = self.sink.take() else {
            unreachable!("flush succeeds only with the file back")
        };
        self.committing = true;
        let store = self.store.clone();
        let path = self.path.clone();
        let size = self.size;
        let expected = expected.clone();
        let repo = repo.map(String::from);
        let r = tokio::task::spawn_blocking(move || -> Result<u64> {
            std_file
                .sync_all()
                .map_err(StoreError::io("fsync", &path))?;
            drop(std_file);
            let actual = match (hashed, hasher, expected.algorithm()) {
                (Some(d), _, _) => d,
                (None, Some(h), Algorithm::Sha256) => h.finish(),
                _ => {
                    let mut h = crate::hash::hasher_for(&expected)?;
                    let mut f = File::open(&path).map_err(StoreError::io("read", &path))?;
                    let mut buf = vec![0u8; 1 << 20];
                    loop {
                        let n = std::io::Read::read(&mut f, &mut buf)
                            .map_err(StoreError::io("read", &path))?;
                        if n == 0 {
                            break;
                        }
                        h.update(&buf[..n]);
                    }
                    h.finish()
                }
            };
            if actual != expected {
                return Err(StoreError::DigestMismatch { expected, actual });
            }
            let _g = store.gc_shared()?;
            let target = store.blob_path(&expected);
            let dir = target.parent().expect("blob path has a parent");
            create_dir_synced(dir)?;
            if target.is_file() {
                // Already stored (another repository, a concurrent push): keep one copy,
                // and make it young again for gc's grace period.
                let _ = File::options()
                    .write(true)
                    .open(&target)
                    .and_then(|f| f.set_modified(std::time::SystemTime::now()));
                fs::remove_file(&path).map_err(StoreError::io("remove", &path))?;
            } else {
                fs::rename(&path, &target).map_err(StoreError::io("rename into place", &target))?;
                sync_dir(dir)?;
            }
            if let Some(repo) = repo {
                store.create_link(&store.layer_link(&repo, &expected))?;
            }
            Ok(size)
        })
        .await
        .expect("the commit task does not panic");
        if r.is_err() {
            let _ = fs::remove_file(&self.path);
        }
        r
    }
}

/// Starts writing `len` bytes at `offset` of `f` to the disk without waiting for it, so
/// that the fsync of the commit finds little left to do and a large blob does not reach the
/// disk all at once then (competing with whatever else flushes at that moment, e.g. the
/// client's copy of the same blob). Only a hint: errors are ignored, the fsync decides.
#[cfg(target_os = "linux")]
fn start_writeback(f: &File, offset: u64, len: usize) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (
        libc::off64_t::try_from(offset),
        libc::off64_t::try_from(len),
    ) else {
        return;
    };
    // SAFETY: `f` is an open file for the duration of the call; sync_file_range reads no
    // memory of this process.
    unsafe {
        libc::sync_file_range(f.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_f: &File, _offset: u64, _len: usize) {}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.committing {
            let _ = fs::remove_file(&self.path);
        }
    }
}
