//! Blobs: `blobs/<alg>/<2 hex>/<hex>`, written atomically and verified.

use std::fs;
use std::path::PathBuf;

use berth_reference::Digest;

use crate::{BlobWriter, Result, Store, StoreError, digest_like, gc, random_id};

impl Store {
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

    /// Stores bytes whose digest is `digest` (already checked by the caller or computed here).
    pub(crate) fn put_bytes(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
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
        self.writer_in("tmp", &random_id(), true).await
    }

    /// A writer for a new blob in `tmp/` that only writes: the caller hashes the same bytes
    /// itself (e.g. while it forwards them) and hands its digest to
    /// [`BlobWriter::commit_hashed`]. (A plain [`BlobWriter::commit`] reads the file back.)
    pub async fn writer_unhashed(&self) -> Result<BlobWriter> {
        self.writer_in("tmp", &random_id(), false).await
    }

    /// A writer for an upload session `id` in `uploads/`.
    pub async fn upload_writer(&self, id: &str) -> Result<BlobWriter> {
        self.writer_in("uploads", id, true).await
    }

    async fn writer_in(&self, dir: &str, file: &str, hash: bool) -> Result<BlobWriter> {
        BlobWriter::create(self.clone(), self.root().join(dir).join(file), hash).await
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
