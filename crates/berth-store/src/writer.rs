//! Streaming blob writes (pushes, uploads, pull-through): a temporary file hashed as it is
//! written, verified, fsynced and renamed into place.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

use berth_reference::{Algorithm, Digest};

use crate::{Hasher, Result, Store, StoreError, create_dir_synced, sync_dir};

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
    pub(crate) async fn create(store: Store, path: PathBuf, hash: bool) -> Result<BlobWriter> {
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
