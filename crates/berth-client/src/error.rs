//! The client's errors. Every message names the registry (and the repository, reference or
//! digest when there is one) and says what to do. None contains a password or a token.

use berth_reference::Digest;

use berth_oci::{Fault, VerifyError};

use crate::side::Side;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error(
        "{side} {registry} rejected the credentials of user `{username}` ({what}): correct them in {}",
        .side.credentials_fix()
    )]
    CredentialsRejected {
        registry: String,
        username: String,
        what: String,
        side: Side,
    },
    #[error(
        "{side} {registry} requires credentials for {what}: give them in {}",
        .side.credentials_fix()
    )]
    AuthRequired {
        registry: String,
        what: String,
        side: Side,
    },
    #[error(
        "{side} {registry} denied {what} (HTTP 403) for {who}: the account lacks permission on that repository, or the credentials (in {}) were rejected",
        .side.credentials_fix()
    )]
    Denied {
        registry: String,
        what: String,
        who: String,
        side: Side,
    },
    #[error(
        "manifest {registry}/{repository}:{reference} not found: check the repository name, tag or digest"
    )]
    ManifestNotFound {
        registry: String,
        repository: String,
        reference: String,
    },
    #[error(
        "blob {digest} not found in {registry}/{repository}: the image is incomplete at the source"
    )]
    BlobNotFound {
        registry: String,
        repository: String,
        digest: Digest,
    },
    #[error("TLS with {side} {registry} failed: {detail}; {}", .side.ca_fix(.registry))]
    Tls {
        registry: String,
        detail: String,
        side: Side,
    },
    /// A plain-HTTP server answered the TLS hello.
    #[error(
        "{side} at {registry} answers plain HTTP, not HTTPS: {}",
        .side.insecure_fix()
    )]
    PlainHttp { registry: String, side: Side },
    #[error(
        "cannot reach {side} {registry}: {detail}; check that it is running, and its address ({})",
        .side.address_fix()
    )]
    Connect {
        registry: String,
        detail: String,
        side: Side,
    },
    #[error("registry {registry} answered HTTP {status} to {what}: {detail}")]
    Status {
        registry: String,
        what: String,
        status: u16,
        detail: String,
    },
    #[error("registry {registry}: {what}: {detail}")]
    Protocol {
        registry: String,
        what: String,
        detail: String,
    },
    #[error(
        "manifest {registry}/{repository}:{reference} is Docker schema 1 (`{media_type}`), which Berth does not copy: rebuild or re-push it as Docker schema 2 or OCI"
    )]
    Schema1 {
        registry: String,
        repository: String,
        reference: String,
        media_type: String,
    },
    #[error("manifest {registry}/{repository}@{reference}: {source}")]
    Verify {
        registry: String,
        repository: String,
        reference: String,
        #[source]
        source: Box<VerifyError>,
    },
    #[error(
        "upload of {digest} to {registry}/{repository} was aborted, nothing was committed: {source}"
    )]
    Body {
        registry: String,
        repository: String,
        digest: Digest,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "registry {registry} refused a one-request upload of {digest} (HTTP {status}); the next attempt uploads in chunks"
    )]
    MonolithicRefused {
        registry: String,
        digest: Digest,
        status: u16,
    },
    #[error(
        "invalid TLS settings for `{key}`: {detail}; fix the CA certificates configured for it"
    )]
    Config { key: String, detail: String },
}

impl Fault for ClientError {
    fn is_retryable(&self) -> bool {
        ClientError::is_retryable(self)
    }

    fn verify_error(&self) -> Option<&VerifyError> {
        ClientError::verify_error(self)
    }
}

impl ClientError {
    /// Whether trying the same operation again may succeed (connection trouble, 5xx, 429,
    /// a refused one-request upload, a source stream that broke off).
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Connect { .. } | ClientError::MonolithicRefused { .. } => true,
            ClientError::Status { status, .. } => {
                *status >= 500 || *status == 429 || *status == 408
            }
            ClientError::Body { source, .. } => VerifyError::from_io(source).is_none(),
            _ => false,
        }
    }

    /// The verification failure behind this error, if it is one.
    pub fn verify_error(&self) -> Option<&VerifyError> {
        match self {
            ClientError::Verify { source, .. } => Some(&**source),
            ClientError::Body { source, .. } => VerifyError::from_io(source),
            _ => None,
        }
    }
}
