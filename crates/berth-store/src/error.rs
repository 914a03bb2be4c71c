use std::path::PathBuf;

use berth_reference::Digest;

/// What went wrong in the store. Every variant names the file, repository or digest and,
/// where there is one, the fix.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{action} `{path}`: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the uploaded content has digest {actual}, not {expected}: the client sent different bytes than it named; nothing was stored"
    )]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error(
        "digest algorithm of {digest} is not supported for stored content (use sha256 or sha512)"
    )]
    Unsupported { digest: Digest },
    #[error(
        "the data directory `{path}` is in use by another process (lock `{lock}` is held): stop the other `berth serve`, `berth gc` or `berth fsck`"
    )]
    Locked { path: PathBuf, lock: PathBuf },
    #[error("`{path}` is not a berth data directory (no blobs/): give the registry's --data")]
    NotADataDir { path: PathBuf },
    #[error("blob {digest} is not in the store")]
    BlobMissing { digest: Digest },
}

impl StoreError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io {
            action,
            path,
            source,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl From<berth_atomic::Error> for StoreError {
    fn from(e: berth_atomic::Error) -> StoreError {
        StoreError::Io {
            action: e.step,
            path: e.path,
            source: e.source,
        }
    }
}
