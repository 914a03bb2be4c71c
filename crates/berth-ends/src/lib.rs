//! The two ends of a transfer: small, object-safe traits that every place content can come
//! from or go to implements (a registry, an OCI layout, an archive, containerd, the edge
//! registry's store), and [`TransferError`], the one error they return. No network: format
//! and runtime crates implement these without the registry client.

mod error;
pub mod manifest;

use async_trait::async_trait;
use berth_oci::referrers::Attached;
use berth_oci::{ByteStream, Descriptor, Manifest};
use berth_reference::Digest;

pub use error::{EndFailure, TransferError};

/// Where images come from.
#[async_trait]
pub trait Source: Send + Sync {
    /// How to name this source in messages (`host/repo`, `oci:DIR`).
    fn name(&self) -> String;

    /// A manifest by tag (or ref name) or by digest, exactly as stored. When fetched by
    /// digest, the bytes must match it. `Ok(None)` when it does not exist.
    async fn get_manifest(&self, reference: &str) -> Result<Option<Manifest>, TransferError>;

    /// A blob's bytes (unverified: the engine verifies them as they flow).
    async fn open_blob(&self, digest: &Digest) -> Result<ByteStream, TransferError>;

    /// `(domain, repository)` when blobs of this source can be mounted into a destination
    /// of the same domain (a registry host).
    fn mount_origin(&self) -> Option<(String, String)> {
        None
    }

    /// What is attached to manifest `subject` here: the manifests whose `subject` it is,
    /// and its cosign tags (`sha256-<hex>.sig`, `.att`, `.sbom`). Ends that keep no
    /// attached artifacts have none.
    async fn attached(&self, _subject: &Digest) -> Result<Attached, TransferError> {
        Ok(Attached::default())
    }
}

/// Where images go.
#[async_trait]
pub trait Destination: Send + Sync {
    fn name(&self) -> String;

    /// The blob store this destination writes to: blobs of concurrent copies to the same
    /// key are moved once (a registry host, a layout directory).
    fn blob_domain(&self) -> String;

    /// Whether blobs may be mounted between repositories of the same `blob_domain`; if
    /// so, the repository name.
    fn mount_repository(&self) -> Option<String> {
        None
    }

    /// Whether this destination wants child `child` of an index. A runtime needs only the
    /// manifests of the platforms it runs (as `ctr images pull` fetches only the host's);
    /// children it declines are neither fetched nor stored, and the index is still stored
    /// whole, with its digest. Registries, layouts and archives take every child.
    fn wants_child(&self, _child: &Descriptor) -> bool {
        true
    }

    async fn has_blob(&self, digest: &Digest) -> Result<bool, TransferError>;

    /// Mounts `digest` from repository `from` of the same domain; `Ok(false)` if refused.
    async fn mount_blob(&self, _digest: &Digest, _from: &str) -> Result<bool, TransferError> {
        Ok(false)
    }

    /// Stores a blob from a stream that fails (before its last chunk) if the content does
    /// not match `digest`; nothing may become visible in that case.
    async fn put_blob(
        &self,
        digest: &Digest,
        size: u64,
        stream: ByteStream,
    ) -> Result<(), TransferError>;

    /// The digest `reference` (tag or digest) resolves to, if any.
    async fn manifest_digest(&self, reference: &str) -> Result<Option<Digest>, TransferError>;

    /// Stores manifest bytes unchanged under `reference` (a tag, or the manifest's digest).
    async fn put_manifest(&self, reference: &str, manifest: &Manifest)
    -> Result<(), TransferError>;

    /// Lists `referrer`, stored here already, among the referrers of `subject` where this
    /// destination does not do so by itself: a registry without the referrers API gets it
    /// added to its fallback tag's index (`sha256-<hex>`), merged with what is there.
    /// Destinations that list referrers themselves, or keep none, do nothing.
    async fn list_referrer(
        &self,
        _subject: &Digest,
        _referrer: &Descriptor,
    ) -> Result<(), TransferError> {
        Ok(())
    }
}
