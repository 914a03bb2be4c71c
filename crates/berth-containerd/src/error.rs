use std::path::PathBuf;

use berth_ends::TransferError;
use berth_oci::Fault;

/// Why talking to containerd failed. Every message names the socket, image, blob or
/// snapshot involved, and where it can, the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContainerdError {
    #[error(
        "containerd socket {socket} does not exist: is containerd running? Start it, or give its socket with --containerd-socket"
    )]
    NoSocket { socket: PathBuf },
    #[error(
        "cannot connect to containerd at {socket}: {detail}; is containerd running, and may this user use the socket? Give another socket with --containerd-socket"
    )]
    Connect { socket: PathBuf, detail: String },
    #[error(
        "`{namespace}` is not a valid containerd namespace (letters, digits and single `.`, `_`, `-` between them)"
    )]
    Namespace { namespace: String },
    #[error("containerd {what}: {code:?}: {message}")]
    Rpc {
        what: String,
        code: tonic::Code,
        message: String,
    },
    #[error("writing {digest} to containerd: {detail}; nothing was committed")]
    Write { digest: String, detail: String },
    #[error("image {image}: {detail}")]
    Image { image: String, detail: String },
    #[error("unpacking layer {layer} of {image} into snapshotter `{snapshotter}`: {detail}")]
    Unpack {
        image: String,
        layer: String,
        snapshotter: String,
        detail: String,
    },
}

impl ContainerdError {
    pub(crate) fn rpc(what: impl Into<String>, s: tonic::Status) -> ContainerdError {
        ContainerdError::Rpc {
            what: what.into(),
            code: s.code(),
            message: s.message().to_string(),
        }
    }

    /// The gRPC status code, for errors that came from containerd.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            ContainerdError::Rpc { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether trying again may help (containerd restarting, a busy ingest).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.code(),
            Some(tonic::Code::Unavailable | tonic::Code::Aborted | tonic::Code::DeadlineExceeded)
        )
    }
}

impl Fault for ContainerdError {
    fn is_retryable(&self) -> bool {
        ContainerdError::is_retryable(self)
    }
}

impl From<ContainerdError> for TransferError {
    fn from(e: ContainerdError) -> TransferError {
        TransferError::end(e)
    }
}
