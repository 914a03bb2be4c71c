//! A registry repository as a [`Source`] and a [`Destination`].

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use berth_client::{
    ByteStream, ClientError, MANIFEST_ACCEPT, Manifest, MountResult, ReferrersListing, Registry,
};
use berth_oci::Descriptor;
use berth_oci::referrers::Attached;
use berth_reference::Digest;
use tokio::sync::OnceCell;

use crate::{Destination, Source, TransferError};

/// One repository of a registry.
#[derive(Clone, Debug)]
pub struct RegistryEnd {
    registry: Registry,
    repository: String,
    /// The repository's tags, listed once (cosign tags and fallback tags are found there).
    tags: Arc<OnceCell<BTreeSet<String>>>,
    /// Whether the registry has the referrers API, asked once.
    listing: Arc<OnceCell<ReferrersListing>>,
}

impl RegistryEnd {
    pub fn new(registry: Registry, repository: impl Into<String>) -> RegistryEnd {
        RegistryEnd {
            registry,
            repository: repository.into(),
            tags: Arc::default(),
            listing: Arc::default(),
        }
    }

    async fn tags(&self) -> Result<&BTreeSet<String>, TransferError> {
        self.tags
            .get_or_try_init(|| async {
                match self.registry.tags_list(&self.repository).await {
                    Ok(t) => Ok(t.into_iter().collect()),
                    Err(ClientError::ManifestNotFound { .. }) => Ok(BTreeSet::new()),
                    Err(e) => Err(TransferError::end(e)),
                }
            })
            .await
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn repository(&self) -> &str {
        &self.repository
    }
}

#[async_trait]
impl Source for RegistryEnd {
    fn name(&self) -> String {
        format!("{}/{}", self.registry.name(), self.repository)
    }

    async fn get_manifest(&self, reference: &str) -> Result<Option<Manifest>, TransferError> {
        match self
            .registry
            .get_manifest(&self.repository, reference, MANIFEST_ACCEPT)
            .await
        {
            Ok(m) => Ok(Some(m)),
            Err(ClientError::ManifestNotFound { .. }) => Ok(None),
            Err(e) => Err(TransferError::end(e)),
        }
    }

    async fn open_blob(&self, digest: &Digest) -> Result<ByteStream, TransferError> {
        Ok(self
            .registry
            .get_blob(&self.repository, digest)
            .await
            .map_err(TransferError::end)?
            .stream)
    }

    fn mount_origin(&self) -> Option<(String, String)> {
        Some((self.registry.name().to_string(), self.repository.clone()))
    }

    async fn attached(&self, subject: &Digest) -> Result<Attached, TransferError> {
        let tags = self.tags().await?;
        let (attached, listing) = self
            .registry
            .attached(&self.repository, subject, tags)
            .await
            .map_err(TransferError::end)?;
        let _ = self.listing.set(listing);
        Ok(attached)
    }
}

#[async_trait]
impl Destination for RegistryEnd {
    fn name(&self) -> String {
        Source::name(self)
    }

    fn blob_domain(&self) -> String {
        self.registry.name().to_string()
    }

    fn mount_repository(&self) -> Option<String> {
        Some(self.repository.clone())
    }

    async fn has_blob(&self, digest: &Digest) -> Result<bool, TransferError> {
        Ok(self
            .registry
            .head_blob(&self.repository, digest)
            .await
            .map_err(TransferError::end)?
            .is_some())
    }

    async fn mount_blob(&self, digest: &Digest, from: &str) -> Result<bool, TransferError> {
        Ok(self
            .registry
            .mount_blob(&self.repository, digest, from)
            .await
            .map_err(TransferError::end)?
            == MountResult::Mounted)
    }

    async fn put_blob(
        &self,
        digest: &Digest,
        size: u64,
        stream: ByteStream,
    ) -> Result<(), TransferError> {
        Ok(self
            .registry
            .push_blob(&self.repository, digest, size, stream)
            .await
            .map_err(TransferError::end)?)
    }

    async fn manifest_digest(&self, reference: &str) -> Result<Option<Digest>, TransferError> {
        let head = self
            .registry
            .head_manifest(&self.repository, reference)
            .await
            .map_err(TransferError::end)?;
        Ok(match head {
            None => None,
            Some(h) => match (h.digest, Digest::parse(reference)) {
                (Some(d), _) => Some(d),
                (None, Ok(d)) => Some(d),
                // No digest header: fetch and hash.
                (None, Err(_)) => Source::get_manifest(self, reference)
                    .await?
                    .map(|m| m.digest),
            },
        })
    }

    async fn put_manifest(
        &self,
        reference: &str,
        manifest: &Manifest,
    ) -> Result<(), TransferError> {
        self.registry
            .put_manifest(
                &self.repository,
                reference,
                manifest.bytes.clone(),
                &manifest.media_type,
            )
            .await
            .map_err(TransferError::end)?;
        Ok(())
    }

    async fn list_referrer(
        &self,
        subject: &Digest,
        referrer: &Descriptor,
    ) -> Result<(), TransferError> {
        let listing = self
            .listing
            .get_or_try_init(|| async {
                let api = self.registry.referrers_api(&self.repository, subject).await;
                match api.map_err(TransferError::end)? {
                    Some(_) => Ok::<_, TransferError>(ReferrersListing::Api),
                    None => Ok(ReferrersListing::FallbackTag),
                }
            })
            .await?;
        self.registry
            .list_referrer(&self.repository, subject, referrer, *listing)
            .await
            .map_err(TransferError::end)?;
        Ok(())
    }
}
