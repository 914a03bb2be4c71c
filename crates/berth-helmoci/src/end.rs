//! A chart artifact as a transfer source: the engine copies it to a registry, a layout or a
//! bundle like any image, byte for byte.

use async_trait::async_trait;
use berth_ends::{Source, TransferError};
use berth_oci::{ByteStream, Manifest};
use berth_reference::Digest;

use crate::ChartArtifact;

/// Serves one [`ChartArtifact`]: its manifest by tag (the chart's) or digest, its config
/// and layer.
#[derive(Clone, Debug)]
pub struct ArtifactSource {
    /// How messages name it (`chart podinfo 6.14.1`).
    pub name: String,
    pub artifact: ChartArtifact,
}

impl ArtifactSource {
    pub fn new(name: impl Into<String>, artifact: ChartArtifact) -> ArtifactSource {
        ArtifactSource {
            name: name.into(),
            artifact,
        }
    }
}

#[async_trait]
impl Source for ArtifactSource {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn get_manifest(&self, reference: &str) -> Result<Option<Manifest>, TransferError> {
        let a = &self.artifact;
        let ours = reference.is_empty()
            || reference == a.tag()
            || reference == a.manifest.digest.to_string();
        Ok(ours.then(|| a.manifest.clone()))
    }

    async fn open_blob(&self, digest: &Digest) -> Result<ByteStream, TransferError> {
        let a = &self.artifact;
        let bytes = if *digest == a.layer_digest() {
            a.layer.clone()
        } else if *digest == a.config_digest() {
            a.config.clone()
        } else {
            return Err(TransferError::SourceRead {
                source_name: self.name.clone(),
                digest: digest.clone(),
                detail: "not a blob of this chart".into(),
            });
        };
        Ok(Box::pin(futures_util::stream::iter([Ok::<
            _,
            std::io::Error,
        >(bytes)])))
    }
}
