use std::path::PathBuf;

use berth_client::{ClientError, VerifyError};
use berth_reference::Digest;

/// Why a transfer failed. Every message names the image, blob or directory involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("OCI layout {dir}: {detail}")]
    Layout { dir: PathBuf, detail: String },
    #[error(
        "OCI layout {dir}: {what}: {source}; check the directory, its permissions and free space"
    )]
    LayoutIo {
        dir: PathBuf,
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("blob {digest} from {source_name}: {error}")]
    Verify {
        source_name: String,
        digest: Digest,
        error: VerifyError,
    },
    #[error("reading blob {digest} from {source_name} failed: {detail}")]
    SourceRead {
        source_name: String,
        digest: Digest,
        detail: String,
    },
    #[error(
        "manifest {reference} from {source_name} is not a valid image manifest or index: {detail}"
    )]
    BadManifest {
        source_name: String,
        reference: String,
        detail: String,
    },
    #[error(
        "manifest {reference} from {source_name} has media type `{media_type}`, which Berth does not copy (supported: OCI manifest/index, Docker schema 2 manifest/list)"
    )]
    Unsupported {
        source_name: String,
        reference: String,
        media_type: String,
    },
    #[error("{target}: the tag points to {found}, but the source has {expected}")]
    Mismatch {
        target: String,
        expected: Digest,
        found: Digest,
    },
    #[error("{name}: {detail}")]
    End { name: String, detail: String },
    #[error("{0}")]
    Shared(String),
    #[error("not copied: an earlier image failed and keep_going is off")]
    Aborted,
}

impl TransferError {
    /// Whether trying again may help (network trouble, 5xx, a broken-off source stream).
    pub fn is_retryable(&self) -> bool {
        match self {
            TransferError::Client(e) => e.is_retryable(),
            TransferError::SourceRead { .. } => true,
            _ => false,
        }
    }

    /// The content verification failure behind this error, if any.
    pub fn verify_error(&self) -> Option<&VerifyError> {
        match self {
            TransferError::Verify { error, .. } => Some(error),
            TransferError::Client(e) => e.verify_error(),
            _ => None,
        }
    }
}
