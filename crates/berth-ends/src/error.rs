use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use berth_oci::{Fault, VerifyError};
use berth_reference::Digest;

/// Why a transfer failed. Every message names the image, blob or directory involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// An end (a registry, an archive, containerd, a store) failed; its own typed error is
    /// kept, with whether a retry can help.
    #[error(transparent)]
    End(#[from] EndFailure),
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
    /// The image is not at the source.
    #[error(
        "manifest {reference} not found at the source ({source_name}): check the image's repository and tag"
    )]
    NotFound {
        source_name: String,
        reference: String,
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
    /// An end used the wrong way round (a destination-only end read from).
    #[error("{name}: {detail}")]
    Usage { name: String, detail: String },
    /// The failure of a transfer another image was waiting for (a shared blob).
    #[error(transparent)]
    Shared(Arc<TransferError>),
    #[error("not copied: an earlier image failed (use --keep-going to copy the others)")]
    Aborted,
    /// The copy was cancelled (Ctrl-C) before this was complete.
    #[error("cancelled before it was complete; a rerun copies what is missing")]
    Cancelled,
}

impl TransferError {
    /// An end's own typed error, kept whole.
    pub fn end(fault: impl Fault) -> TransferError {
        TransferError::End(EndFailure::new(fault))
    }

    /// A source stream's read error while blob `digest` was written: the verification
    /// failure it carries ([`TransferError::Verify`]), or a broken-off read (retryable).
    pub fn stream(source_name: &str, digest: &Digest, e: &std::io::Error) -> TransferError {
        match VerifyError::from_io(e) {
            Some(v) => TransferError::Verify {
                source_name: source_name.into(),
                digest: digest.clone(),
                error: v.clone(),
            },
            None => TransferError::SourceRead {
                source_name: source_name.into(),
                digest: digest.clone(),
                detail: e.to_string(),
            },
        }
    }

    /// Whether trying again may help (network trouble, 5xx, a broken-off source stream).
    pub fn is_retryable(&self) -> bool {
        match self {
            TransferError::End(f) => f.is_retryable(),
            TransferError::SourceRead { .. } => true,
            TransferError::Shared(e) => e.is_retryable(),
            _ => false,
        }
    }

    /// The content verification failure behind this error, if any.
    pub fn verify_error(&self) -> Option<&VerifyError> {
        match self {
            TransferError::Verify { error, .. } => Some(error),
            TransferError::End(f) => f.verify_error(),
            TransferError::Shared(e) => e.verify_error(),
            _ => None,
        }
    }

    /// The end's own error of type `T` behind this one, if that is what it is.
    pub fn end_error<T: std::error::Error + 'static>(&self) -> Option<&T> {
        match self {
            TransferError::End(f) => f.downcast_ref(),
            TransferError::Shared(e) => e.end_error(),
            _ => None,
        }
    }
}

/// The typed error of an end, kept as its source with what it says about retries. Its
/// message is the end's own (nothing is added, so a chain prints each cause once).
pub struct EndFailure {
    inner: Box<dyn std::error::Error + Send + Sync>,
    retryable: bool,
    verify: Option<VerifyError>,
}

impl EndFailure {
    pub fn new(fault: impl Fault) -> EndFailure {
        EndFailure {
            retryable: fault.is_retryable(),
            verify: fault.verify_error().cloned(),
            inner: Box::new(fault),
        }
    }

    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    pub fn verify_error(&self) -> Option<&VerifyError> {
        self.verify.as_ref()
    }

    /// The end's error as its own type.
    pub fn downcast_ref<T: std::error::Error + 'static>(&self) -> Option<&T> {
        self.inner.downcast_ref()
    }
}

impl fmt::Debug for EndFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

impl fmt::Display for EndFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl std::error::Error for EndFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("peer busy")]
    struct Busy(#[source] std::io::Error);
    impl Fault for Busy {
        fn is_retryable(&self) -> bool {
            true
        }
    }

    #[test]
    fn an_end_error_keeps_its_type_source_and_retryability() {
        let e = TransferError::end(Busy(std::io::Error::other("socket closed")));
        assert!(e.is_retryable());
        assert_eq!(e.to_string(), "peer busy");
        // transparent: the chain is the end's own chain, each cause once
        let src = std::error::Error::source(&e).unwrap();
        assert_eq!(src.to_string(), "socket closed");
        assert!(e.end_error::<Busy>().is_some());
        let shared = TransferError::Shared(Arc::new(e));
        assert!(shared.is_retryable() && shared.end_error::<Busy>().is_some());
        assert!(!TransferError::Aborted.is_retryable());
        assert!(!TransferError::Cancelled.is_retryable());
    }
}
