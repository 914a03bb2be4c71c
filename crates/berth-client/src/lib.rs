//! An OCI distribution / Docker registry v2 client written for copying images byte for
//! byte: raw manifests (never re-serialized), streamed blobs, streamed one-request uploads
//! with a chunked fallback, cross-repository mounts, Basic and Docker token auth,
//! per-repository credentials and TLS settings, bounded retries.
//!
//! Credentials are never logged, never shown in errors or `Debug`, and never sent to a host
//! other than the registry (and its token realm): redirects are followed by hand.

pub mod access;
mod auth;
mod client;
mod config;
mod error;
pub mod loaders;
mod retry;
mod side;
mod tls;

pub use access::{Access, AccessError, AuthFiles, creds_for, parse_scoped_creds, read_cas};
pub use auth::{Challenge, parse_www_authenticate};
pub use berth_oci::{ByteStream, VerifyError, VerifyingStream, digest_of, error_chain, sha256_of};
pub use client::ReferrersListing;
pub use client::{
    BlobDownload, CHUNK_SIZE, Client, DOCKER_LIST, DOCKER_MANIFEST, DOCKER_SCHEMA1,
    DOCKER_SCHEMA1_SIGNED, MANIFEST_ACCEPT, MAX_MANIFEST_BYTES, Manifest, ManifestHead,
    MountResult, OCI_INDEX, OCI_MANIFEST, Registry, http_client, map_send_error,
    media_type_from_json,
};
pub use config::{Credentials, RegistryConfig, RegistryConfigs, normalize_key};
pub use error::ClientError;
pub use retry::{RetryPolicy, parse_retry_after};
pub use side::Side;
pub use tls::UntrustedCertificate;
