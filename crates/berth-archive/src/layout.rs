//! An OCI image layout directory (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`) as a
//! [`Source`] and a [`Destination`]. Blobs are written to a temporary file, fsynced and
//! renamed into place only after their digest was verified; `index.json` is replaced
//! atomically the same way.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use berth_oci::{ByteStream, Manifest, VerifyingStream, digest_of, media_type_from_json};
use berth_reference::Digest;
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use berth_ends::{Destination, Source, TransferError};

/// An `index.json` hit: digest, media type, size.
type Found = (Digest, Option<String>, Option<u64>);

/// The annotation naming a manifest in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// An OCI image layout directory.
#[derive(Clone, Debug)]
pub struct OciLayout {
    dir: PathBuf,
}

/// One lock per layout directory for `index.json` updates within this process.
fn index_lock(dir: &Path) -> Arc<tokio::sync::Mutex<()>> {
    crate::writer::path_lock(dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf()))
}

impl OciLayout {
    /// A layout to read from (it must exist).
    pub fn open(dir: impl Into<PathBuf>) -> Result<OciLayout, TransferError> {
        let l = OciLayout { dir: dir.into() };
        if !l.dir.join("index.json").is_file() {
            return Err(l.err("there is no index.json: not an OCI image layout"));
        }
        Ok(l)
    }

    /// A layout to write to, created if needed.
    pub fn create(dir: impl Into<PathBuf>) -> Result<OciLayout, TransferError> {
        let l = OciLayout { dir: dir.into() };
        std::fs::create_dir_all(l.dir.join("blobs/sha256"))
            .map_err(|e| l.io("creating blobs/sha256", e))?;
        let marker = l.dir.join("oci-layout");
        if !marker.exists() {
            std::fs::write(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#)
                .map_err(|e| l.io("writing oci-layout", e))?;
        }
        if !l.dir.join("index.json").exists() {
            l.write_index_sync(&json!({"schemaVersion": 2, "manifests": []}))?;
        }
        Ok(l)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn err(&self, detail: &str) -> TransferError {
        TransferError::Layout {
            dir: self.dir.clone(),
            detail: detail.to_string(),
        }
    }

    fn io(&self, what: &str, source: std::io::Error) -> TransferError {
        TransferError::LayoutIo {
            dir: self.dir.clone(),
            what: what.to_string(),
            source,
        }
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir
            .join("blobs")
            .join(digest.algorithm().as_str())
            .join(digest.hex())
    }

    fn read_index(&self) -> Result<Value, TransferError> {
        let bytes = std::fs::read(self.dir.join("index.json"))
            .map_err(|e| self.io("reading index.json", e))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| self.err(&format!("index.json is not valid JSON: {e}")))
    }

    fn write_index_sync(&self, v: &Value) -> Result<(), TransferError> {
        let bytes = serde_json::to_vec_pretty(v).expect("json");
        berth_atomic::write(self.dir.join("index.json"), &bytes)
            .map_err(|e| self.io(&format!("{} {}", e.step, e.path.display()), e.source))
    }

    /// The `index.json` descriptor for a ref name or digest.
    fn find(&self, reference: &str) -> Result<Option<Found>, TransferError> {
        let index = self.read_index()?;
        let by_digest = Digest::parse(reference).ok();
        for m in index["manifests"].as_array().into_iter().flatten() {
            let name = m["annotations"][REF_NAME].as_str();
            let digest = m["digest"].as_str().and_then(|d| Digest::parse(d).ok());
            let matches = match &by_digest {
                Some(d) => digest.as_ref() == Some(d),
                None => name == Some(reference),
            };
            if matches {
                let digest = digest.ok_or_else(|| {
                    self.err(&format!(
                        "the index.json entry `{reference}` has no valid digest"
                    ))
                })?;
                return Ok(Some((
                    digest,
                    m["mediaType"].as_str().map(str::to_string),
                    m["size"].as_u64(),
                )));
            }
        }
        match by_digest {
            Some(d) if self.blob_path(&d).is_file() => Ok(Some((d, None, None))),
            _ => Ok(None),
        }
    }

    /// Writes `stream` to a temporary file beside the blob, fsyncs, renames into place.
    async fn write_blob(
        &self,
        digest: &Digest,
        mut stream: ByteStream,
    ) -> Result<(), TransferError> {
        let path = self.blob_path(digest);
        let parent = path.parent().expect("blob dir").to_path_buf();
        tokio::fs::create_dir_all(&parent)
            .await
            .map_err(|e| self.io("creating the blob directory", e))?;
        let tmp = parent.join(format!(".tmp-{}-{}", digest.hex(), fastrand::u64(..)));
        let what = format!("writing blob {digest}");
        let result = async {
            let mut f = tokio::fs::File::create_new(&tmp)
                .await
                .map_err(|e| self.io(&what, e))?;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| TransferError::stream("stream", digest, &e))?;
                f.write_all(&chunk).await.map_err(|e| self.io(&what, e))?;
            }
            f.flush().await.map_err(|e| self.io(&what, e))?;
            f.sync_all().await.map_err(|e| self.io(&what, e))?;
            drop(f);
            tokio::fs::rename(&tmp, &path)
                .await
                .map_err(|e| self.io(&what, e))?;
            let d = tokio::fs::File::open(&parent)
                .await
                .map_err(|e| self.io(&what, e))?;
            d.sync_all().await.map_err(|e| self.io(&what, e))?;
            Ok(())
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }
}

#[async_trait]
impl Source for OciLayout {
    fn name(&self) -> String {
        format!("oci:{}", self.dir.display())
    }

    async fn get_manifest(&self, reference: &str) -> Result<Option<Manifest>, TransferError> {
        let Some((digest, media_type, size)) = self.find(reference)? else {
            return Ok(None);
        };
        let bytes = tokio::fs::read(self.blob_path(&digest))
            .await
            .map_err(|e| self.io(&format!("reading manifest {digest}"), e))?;
        let actual = digest_of(&bytes, &digest).map_err(|error| TransferError::Verify {
            source_name: Source::name(self),
            digest: digest.clone(),
            error,
        })?;
        if actual != digest {
            return Err(TransferError::Verify {
                source_name: Source::name(self),
                digest: digest.clone(),
                error: berth_oci::VerifyError::DigestMismatch {
                    expected: digest,
                    actual,
                },
            });
        }
        if let Some(size) = size
            && size != bytes.len() as u64
        {
            return Err(self.err(&format!(
                "manifest {digest} is {} bytes, index.json says {size}",
                bytes.len()
            )));
        }
        let media_type = media_type
            .or_else(|| media_type_from_json(&bytes))
            .unwrap_or_else(|| berth_oci::media::OCI_MANIFEST.to_string());
        Ok(Some(Manifest {
            bytes: Bytes::from(bytes),
            media_type,
            digest,
        }))
    }

    async fn open_blob(&self, digest: &Digest) -> Result<ByteStream, TransferError> {
        let f = tokio::fs::File::open(self.blob_path(digest))
            .await
            .map_err(|e| self.io(&format!("opening blob {digest}"), e))?;
        Ok(Box::pin(tokio_util::io::ReaderStream::with_capacity(
            f,
            256 << 10,
        )))
    }
}

#[async_trait]
impl Destination for OciLayout {
    fn name(&self) -> String {
        Source::name(self)
    }

    fn blob_domain(&self) -> String {
        Source::name(self)
    }

    async fn has_blob(&self, digest: &Digest) -> Result<bool, TransferError> {
        Ok(tokio::fs::metadata(self.blob_path(digest))
            .await
            .is_ok_and(|m| m.is_file()))
    }

    async fn put_blob(
        &self,
        digest: &Digest,
        _size: u64,
        stream: ByteStream,
    ) -> Result<(), TransferError> {
        self.write_blob(digest, stream).await
    }

    async fn manifest_digest(&self, reference: &str) -> Result<Option<Digest>, TransferError> {
        Ok(self.find(reference)?.map(|(d, _, _)| d))
    }

    async fn put_manifest(
        &self,
        reference: &str,
        manifest: &Manifest,
    ) -> Result<(), TransferError> {
        if !Destination::has_blob(self, &manifest.digest).await? {
            let stream: ByteStream = Box::pin(futures_util::stream::once(
                futures_util::future::ready(Ok(manifest.bytes.clone())),
            ));
            let verified = VerifyingStream::new(
                stream,
                manifest.digest.clone(),
                Some(manifest.bytes.len() as u64),
            )
            .map_err(|error| TransferError::Verify {
                source_name: "manifest".into(),
                digest: manifest.digest.clone(),
                error,
            })?;
            self.write_blob(&manifest.digest, verified.boxed()).await?;
        }
        if Digest::parse(reference).is_ok() {
            return Ok(());
        }
        let lock = index_lock(&self.dir);
        let _guard = lock.lock().await;
        let mut index = self.read_index()?;
        let entry = json!({
            "mediaType": manifest.media_type,
            "digest": manifest.digest.to_string(),
            "size": manifest.bytes.len(),
            "annotations": { REF_NAME: reference },
        });
        let list = index["manifests"]
            .as_array_mut()
            .ok_or_else(|| self.err("index.json has no `manifests` array"))?;
        list.retain(|m| m["annotations"][REF_NAME].as_str() != Some(reference));
        list.push(entry);
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.write_index_sync(&index))
            .await
            .map_err(|e| self.err(&format!("index.json writer failed: {e}")))?
    }
}
