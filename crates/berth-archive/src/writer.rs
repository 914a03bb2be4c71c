//! What both writers share: a staging directory of verified blobs beside the target, and
//! the deterministic, atomic tar writer.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufWriter, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use berth_ends::TransferError;
use berth_oci::ByteStream;
use berth_reference::Digest;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::ArchiveError;
use crate::tarindex::{RangeReader, TarIndex};

/// One lock per target file, so that writers of the same archive in this process take
/// turns (each re-reads the archive under the lock and keeps the others' images).
pub(crate) fn target_lock(path: &Path) -> Arc<tokio::sync::Mutex<()>> {
    path_lock(std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()))
}

/// One lock per path (an archive file, a layout directory) within this process.
pub(crate) fn path_lock(key: PathBuf) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>> = OnceLock::new();
    LOCKS
        .get_or_init(Default::default)
        .lock()
        .expect("lock")
        .entry(key)
        .or_default()
        .clone()
}

/// Verified blobs collected for one writer, in `.FILE.berth-stage-XXXXXX` beside the target.
pub(crate) struct Stage {
    name: String,
    dir: tempfile::TempDir,
    blobs: Mutex<BTreeMap<Digest, u64>>,
}

impl Stage {
    pub(crate) fn new(target: &Path, name: &str) -> Result<Stage, ArchiveError> {
        if target.file_name().is_none() {
            return Err(ArchiveError::usage(name, "the target is not a file name"));
        }
        if target.is_dir() {
            return Err(ArchiveError::usage(
                name,
                "the target is a directory; name a file (an OCI layout directory is oci:DIR)",
            ));
        }
        let dir = berth_atomic::temp_dir_beside(target, "stage").map_err(|e| {
            ArchiveError::io(
                name,
                format!("creating a staging directory in {}", e.path.display()),
                e.source,
            )
        })?;
        Ok(Stage {
            name: name.to_string(),
            dir,
            blobs: Mutex::new(BTreeMap::new()),
        })
    }

    pub(crate) fn path(&self, d: &Digest) -> PathBuf {
        self.dir
            .path()
            .join(format!("{}-{}", d.algorithm().as_str(), d.hex()))
    }

    pub(crate) fn has(&self, d: &Digest) -> bool {
        self.blobs.lock().expect("lock").contains_key(d)
    }

    /// `(digest, staged file)` of every blob.
    pub(crate) fn all(&self) -> Vec<(Digest, PathBuf)> {
        self.blobs
            .lock()
            .expect("lock")
            .keys()
            .map(|d| (d.clone(), self.path(d)))
            .collect()
    }

    /// Writes the (engine-verified) stream to a temp file, renamed into the stage only when
    /// the stream ended without error.
    pub(crate) async fn put(
        &self,
        digest: &Digest,
        mut stream: ByteStream,
    ) -> Result<(), TransferError> {
        let tmp = self
            .dir
            .path()
            .join(format!(".tmp-{}-{}", digest.hex(), unique()));
        let what = format!("staging blob {digest}");
        let result = async {
            let mut f = tokio::fs::File::create_new(&tmp)
                .await
                .map_err(|e| ArchiveError::io(&self.name, &what, e))?;
            let mut size = 0u64;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| TransferError::stream("stream", digest, &e))?;
                size += chunk.len() as u64;
                f.write_all(&chunk)
                    .await
                    .map_err(|e| ArchiveError::io(&self.name, &what, e))?;
            }
            f.flush()
                .await
                .map_err(|e| ArchiveError::io(&self.name, &what, e))?;
            drop(f);
            tokio::fs::rename(&tmp, self.path(digest))
                .await
                .map_err(|e| ArchiveError::io(&self.name, &what, e))?;
            self.blobs
                .lock()
                .expect("lock")
                .insert(digest.clone(), size);
            Ok::<(), TransferError>(())
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }
}

fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The content of one tar entry.
pub(crate) enum Content {
    Bytes(Vec<u8>),
    /// A staged file.
    File(PathBuf),
    /// A range of the archive being replaced.
    Old(Arc<TarIndex>, String),
}

/// Writes a deterministic tar of `entries` (sorted by name; directories for every parent)
/// to a temporary file beside `target`, fsyncs it and renames it to `target` (blocking;
/// [`berth_atomic`]).
pub(crate) fn write_tar(
    name: &str,
    target: &Path,
    entries: BTreeMap<String, Content>,
) -> Result<(), ArchiveError> {
    let io = |what: &str, e: io::Error| ArchiveError::io(name, what.to_string(), e);
    let f = berth_atomic::Options::new()
        .create(target)
        .map_err(|e| ArchiveError::atomic(name, e))?;
    let mut b = tar::Builder::new(BufWriter::with_capacity(1 << 20, f));
    let mut dirs = std::collections::BTreeSet::new();
    for key in entries.keys() {
        let mut p = key.as_str();
        while let Some((parent, _)) = p.rsplit_once('/') {
            dirs.insert(parent.to_string());
            p = parent;
        }
    }
    // Directories and files in one sorted order (a parent sorts before its children).
    let mut all: BTreeMap<&str, Option<&Content>> =
        dirs.iter().map(|d| (d.as_str(), None)).collect();
    for (k, c) in &entries {
        all.insert(k.as_str(), Some(c));
    }
    for (path, content) in all {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        let writing = format!("writing entry {path}");
        match content {
            None => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, format!("{path}/"), io::empty())
                    .map_err(|e| io(&writing, e))?;
            }
            Some(c) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                let (size, reader): (u64, Box<dyn Read>) = match c {
                    Content::Bytes(v) => (v.len() as u64, Box::new(&v[..])),
                    Content::File(p) => {
                        let f = File::open(p)
                            .map_err(|e| io(&format!("opening staged {}", p.display()), e))?;
                        let len = f.metadata().map_err(|e| io(&writing, e))?.len();
                        (len, Box::new(f))
                    }
                    Content::Old(ix, entry) => {
                        let r = ix.require(entry, "entry")?;
                        let reader: RangeReader = ix.reader(r);
                        (r.size, Box::new(reader))
                    }
                };
                h.set_size(size);
                b.append_data(&mut h, path, reader.take(size))
                    .map_err(|e| io(&writing, e))?;
            }
        }
    }
    let w = b.into_inner().map_err(|e| io("finishing the tar", e))?;
    let f = w
        .into_inner()
        .map_err(|e| io("flushing the tar", e.into_error()))?;
    f.commit().map_err(|e| ArchiveError::atomic(name, e))
}
