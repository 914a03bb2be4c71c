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

mod blobs;
mod error;
mod gc;
mod hash;
pub mod manifest;
mod referrers;
mod repos;
mod tags;
mod writer;

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_reference::Digest;

pub use berth_reference::validate_tag;
pub use error::{Result, StoreError};
pub use gc::{FsckFinding, FsckReport, GcOptions, GcReport};
pub use hash::{Hasher, digest_like, random_id, sha256};
pub use repos::ManifestPush;
pub use writer::BlobWriter;

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

fn digest_rel(d: &Digest) -> PathBuf {
    Path::new(d.algorithm().as_str()).join(d.hex())
}

/// fsync a directory, so that a rename or create in it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    Ok(berth_atomic::sync_dir(dir)?)
}

fn create_dir_synced(dir: &Path) -> Result<()> {
    Ok(berth_atomic::create_dir_all_synced(dir)?)
}

/// Opens (creating) a lock file, not locked yet.
pub(crate) fn lock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(StoreError::io("open lock file", path))
}

/// Takes the lock file `lock` of the data directory `root` exclusively, without waiting:
/// [`StoreError::Locked`] when another process holds it.
pub(crate) fn lock_exclusive(root: &Path, lock: &Path) -> Result<File> {
    let f = lock_file(lock)?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(fs::TryLockError::WouldBlock) => Err(StoreError::Locked {
            path: root.to_path_buf(),
            lock: lock.to_path_buf(),
        }),
        Err(fs::TryLockError::Error(e)) => Err(StoreError::io("lock", lock)(e)),
    }
}

/// Removes a file; `false` when it was not there.
fn remove_if_present(path: &Path, action: &'static str) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(StoreError::io(action, path)(e)),
    }
}

impl Store {
    /// Opens (creating) a data directory for `berth serve`: takes `server.lock` so that two
    /// servers never share it, and removes what interrupted writes left in `tmp/` and
    /// `uploads/`.
    pub fn open_server(root: &Path) -> Result<Store> {
        Self::open_unlocked(root)?;
        let lock = lock_exclusive(root, &root.join("server.lock"))?;
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

    /// Opens a data directory that is already one (`blobs/` in it), for gc and fsck, which
    /// never create one.
    pub fn open_existing(root: &Path) -> Result<Store> {
        if !root.join("blobs").is_dir() {
            return Err(StoreError::NotADataDir {
                path: root.to_path_buf(),
            });
        }
        Self::open_unlocked(root)
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

    /// A shared hold on `gc.lock`: gc cannot mark and sweep while it is held.
    pub(crate) fn gc_shared(&self) -> Result<File> {
        let p = self.root().join("gc.lock");
        let f = lock_file(&p)?;
        f.lock_shared().map_err(StoreError::io("lock", &p))?;
        Ok(f)
    }

    /// Writes `content` to `path` atomically (a temporary file in `tmp/`, fsync, rename,
    /// fsync of the directory).
    fn write_atomic(&self, path: &Path, content: &[u8]) -> Result<()> {
        Ok(berth_atomic::Options::new()
            .temp_dir(self.root().join("tmp"))
            .write(path, content)?)
    }
}
