//! What the routes read: [`ReadOnlyContent`], implemented by the store of `berth serve` and
//! by read-only backends such as the bundle of `berth bundle serve`, and the services the
//! routes and the proxy share on top of it (a manifest or a blob as a response).

use std::path::PathBuf;
use std::sync::Arc;

use axum::http::HeaderMap;
use berth_reference::Digest;
use berth_store::Store;

use crate::response::{self, ApiResult};
use crate::{ApiError, State};

/// The content a registry serves, read-only: the same routes answer for every backend, so
/// they agree on `Range`, `Accept`, `HEAD`, digests and error bodies.
///
/// Lookups (`resolve_tag`, `manifest_type`, `blob_size`, `referrers`) are quick and made on
/// the runtime; reading a manifest and listing repositories or tags run on the blocking pool.
pub trait ReadOnlyContent: Send + Sync + 'static {
    /// Every repository, sorted.
    fn repositories(&self) -> Vec<String>;
    /// The tags of `repo`, sorted; `None` when the repository is unknown.
    fn tags(&self, repo: &str) -> Option<Vec<String>>;
    /// The digest tag `tag` of `repo` points at.
    fn resolve_tag(&self, repo: &str, tag: &str) -> Option<Digest>;
    /// The media type of manifest `digest` when `repo` holds it.
    fn manifest_type(&self, repo: &str, digest: &Digest) -> Option<String>;
    /// The bytes of a manifest (the routes check them against `digest` before serving).
    fn read_manifest(&self, digest: &Digest) -> std::io::Result<Vec<u8>>;
    /// The size of blob `digest` when `repo` may serve it (a layer, a config or a manifest
    /// of the repository).
    fn blob_size(&self, repo: &str, digest: &Digest) -> Option<u64>;
    /// The file of a blob [`ReadOnlyContent::blob_size`] said `repo` serves.
    fn blob_file(&self, digest: &Digest) -> PathBuf;
    /// The manifests of `repo` whose `subject` is `subject`, with their media types.
    fn referrers(&self, repo: &str, subject: &Digest) -> Vec<(Digest, String)>;
    /// Bytes and number of the blobs served (for `/metrics`).
    fn usage(&self) -> (u64, u64);
}

impl ReadOnlyContent for Store {
    fn repositories(&self) -> Vec<String> {
        Store::repositories(self)
    }
    fn tags(&self, repo: &str) -> Option<Vec<String>> {
        Store::tags(self, repo)
    }
    fn resolve_tag(&self, repo: &str, tag: &str) -> Option<Digest> {
        Store::resolve_tag(self, repo, tag)
    }
    fn manifest_type(&self, repo: &str, digest: &Digest) -> Option<String> {
        Store::manifest_type(self, repo, digest)
    }
    fn read_manifest(&self, digest: &Digest) -> std::io::Result<Vec<u8>> {
        self.read_blob(digest).map_err(std::io::Error::other)
    }
    fn blob_size(&self, repo: &str, digest: &Digest) -> Option<u64> {
        let visible = self.has_layer(repo, digest) || self.manifest_type(repo, digest).is_some();
        visible.then(|| Store::blob_size(self, digest)).flatten()
    }
    fn blob_file(&self, digest: &Digest) -> PathBuf {
        self.blob_path(digest)
    }
    fn referrers(&self, repo: &str, subject: &Digest) -> Vec<(Digest, String)> {
        Store::referrers(self, repo, subject)
    }
    fn usage(&self) -> (u64, u64) {
        self.blob_usage()
    }
}

/// A manifest's bytes, checked against its digest (a damaged one is never served).
pub(crate) async fn read_manifest(
    content: &Arc<dyn ReadOnlyContent>,
    digest: &Digest,
) -> Result<Vec<u8>, ApiError> {
    let content = content.clone();
    let d = digest.clone();
    tokio::task::spawn_blocking(move || {
        let bytes = content.read_manifest(&d).map_err(ApiError::internal)?;
        match berth_store::digest_like(&bytes, &d) {
            Ok(a) if a == d => Ok(bytes),
            _ => Err(ApiError::internal(format!(
                "stored manifest {d} is damaged; run `berth fsck` and push the image again"
            ))),
        }
    })
    .await
    .map_err(ApiError::internal)?
}

/// Answers with manifest `digest` of `name` (requested as `reference`).
pub(crate) async fn serve_manifest(
    st: &State,
    name: &str,
    digest: &Digest,
    reference: &str,
    headers: &HeaderMap,
    head: bool,
) -> ApiResult {
    let media_type = st
        .content
        .manifest_type(name, digest)
        .ok_or_else(|| ApiError::manifest_unknown(name, reference))?;
    response::check_accept(headers, name, reference, &media_type)?;
    let bytes = read_manifest(&st.content, digest).await?;
    Ok(response::manifest(
        &st.metrics,
        digest,
        &media_type,
        bytes,
        head,
    ))
}

/// Answers with blob `d` of `size` bytes, streamed from its file, with `Range` support.
pub(crate) async fn serve_blob(
    st: &State,
    d: &Digest,
    size: u64,
    headers: &HeaderMap,
    head: bool,
) -> ApiResult {
    let path = st.content.blob_file(d);
    let f = std::fs::File::open(path).map_err(|_| ApiError::blob_unknown("", d))?;
    response::blob(&st.metrics, d, f, size, headers, head)
}
