//! [`ContainerdEnd`]: containerd as a [`Destination`] of the transfer engine.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use berth_ends::{Destination, TransferError};
use berth_oci::{ByteStream, Descriptor, Manifest};
use berth_reference::Digest;

use crate::unpack::{self, LABEL_DISTRIBUTION_SOURCE};
use crate::{Containerd, ContainerdError, Held, ImageRecord};

/// One image's way into containerd. The engine writes blobs (`Content.Write`, verified
/// by digest and size), then child manifests, then the top manifest under the image name:
/// only then is the host platform unpacked and the image record created (after every
/// piece of content it points to is there, so no record ever points to missing content).
///
/// Several ends share one [`Containerd`] (and its lease); blobs shared by images move once.
#[derive(Clone)]
pub struct ContainerdEnd {
    cd: Arc<Containerd>,
    also: Vec<String>,
    source: Option<(String, String)>,
    image_labels: HashMap<String, String>,
}

impl std::fmt::Debug for ContainerdEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ContainerdEnd({:?}, also {:?})", self.cd, self.also)
    }
}

/// An image record and whether it is usable here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageState {
    pub record: ImageRecord,
    /// The host platform's manifest, when all its content is there.
    pub platform_manifest: Option<Digest>,
    /// Every layer is a committed snapshot in the snapshotter.
    pub unpacked: bool,
    /// Why it is not usable (content missing, no image for the platform).
    pub problem: Option<String>,
}

/// The state of image `name`: `None` when containerd has no such record.
pub async fn image_state(
    cd: &Containerd,
    name: &str,
) -> Result<Option<ImageState>, ContainerdError> {
    let Some(record) = cd.get_image(name).await? else {
        return Ok(None);
    };
    let resolved = unpack::resolve(cd, name, &record.digest, None, cd.platform()).await;
    let (platform_manifest, unpacked, problem) = match resolved {
        Ok(Some(parts)) => {
            let u = unpack::is_unpacked(cd, &parts).await?;
            (
                Some(parts.manifest),
                u,
                (!u).then(|| format!("not unpacked into snapshotter `{}`", cd.snapshotter())),
            )
        }
        Ok(None) => (None, false, Some("content is missing".to_string())),
        Err(e @ ContainerdError::Image { .. }) => (None, false, Some(e.to_string())),
        Err(e) => return Err(e),
    };
    Ok(Some(ImageState {
        record,
        platform_manifest,
        unpacked,
        problem,
    }))
}

impl ContainerdEnd {
    pub fn new(cd: Arc<Containerd>) -> ContainerdEnd {
        ContainerdEnd {
            cd,
            also: Vec::new(),
            source: None,
            image_labels: HashMap::new(),
        }
    }

    /// More names for the image record (besides the engine's reference), e.g. the
    /// rewritten target or every `RepoTags` entry of a docker-archive image.
    pub fn also_named(mut self, names: impl IntoIterator<Item = String>) -> ContainerdEnd {
        self.also.extend(names);
        self
    }

    /// Labels content with `containerd.io/distribution.source.<host>=<repository>`.
    pub fn distribution_source(mut self, host: &str, repository: &str) -> ContainerdEnd {
        self.source = Some((host.to_string(), repository.to_string()));
        self
    }

    /// Labels of the image records (e.g. `io.cri-containerd.image=managed`).
    pub fn image_labels(mut self, labels: HashMap<String, String>) -> ContainerdEnd {
        self.image_labels = labels;
        self
    }

    pub fn containerd(&self) -> &Arc<Containerd> {
        &self.cd
    }

    fn source_labels(&self) -> HashMap<String, String> {
        self.source
            .iter()
            .map(|(h, r)| (format!("{LABEL_DISTRIBUTION_SOURCE}.{h}"), r.clone()))
            .collect()
    }

    fn names<'a>(&'a self, reference: &'a str) -> impl Iterator<Item = &'a str> {
        std::iter::once(reference).chain(
            self.also
                .iter()
                .map(String::as_str)
                .filter(move |n| *n != reference),
        )
    }

    /// The digest every name of this image points to, when all do and it is unpacked.
    async fn present(&self, reference: &str) -> Result<Option<Digest>, ContainerdError> {
        let mut digest: Option<Digest> = None;
        for name in self.names(reference) {
            match image_state(&self.cd, name).await? {
                Some(s) if s.unpacked && s.problem.is_none() => match &digest {
                    Some(d) if *d != s.record.digest => return Ok(None),
                    _ => digest = Some(s.record.digest),
                },
                _ => return Ok(None),
            }
        }
        Ok(digest)
    }

    async fn put_top(&self, reference: &str, m: &Manifest) -> Result<(), ContainerdError> {
        let parts = unpack::resolve(
            &self.cd,
            reference,
            &m.digest,
            Some(m.bytes.clone()),
            self.cd.platform(),
        )
        .await?
        .ok_or_else(|| ContainerdError::Image {
            image: reference.to_string(),
            detail: format!(
                "content of {} is missing in containerd after the copy (was it garbage-collected?)",
                m.digest
            ),
        })?;
        unpack::unpack(&self.cd, reference, &parts).await?;
        for name in self.names(reference) {
            self.cd
                .put_image(
                    name,
                    &m.media_type,
                    &m.digest,
                    m.bytes.len() as u64,
                    self.image_labels.clone(),
                )
                .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Destination for ContainerdEnd {
    fn name(&self) -> String {
        format!(
            "containerd {} (namespace {})",
            self.cd.socket().display(),
            self.cd.namespace()
        )
    }

    fn blob_domain(&self) -> String {
        format!(
            "containerd:{}:{}",
            self.cd.socket().display(),
            self.cd.namespace()
        )
    }

    /// Only the manifests of the host platform (and entries with no platform), as
    /// `ctr images pull` stores them: other platforms' content is never unpacked here.
    /// Attestation entries (`unknown/unknown`) are declined too.
    fn wants_child(&self, child: &Descriptor) -> bool {
        child
            .platform
            .as_ref()
            .is_none_or(|p| self.cd.platform().matches(p))
    }

    async fn has_blob(&self, digest: &Digest) -> Result<bool, TransferError> {
        // Held first: a blob found here is skipped, so it must outlive a concurrent GC.
        self.cd.hold(Held::Content, &digest.to_string()).await?;
        Ok(self.cd.content_info(digest).await?.is_some())
    }

    async fn put_blob(
        &self,
        digest: &Digest,
        size: u64,
        stream: ByteStream,
    ) -> Result<(), TransferError> {
        match self
            .cd
            .write_content(digest, size, stream, self.source_labels())
            .await
        {
            Ok(()) => Ok(()),
            Err(Ok(io)) => Err(TransferError::stream("the source", digest, &io)),
            Err(Err(e)) if e.is_retryable() => Err(TransferError::SourceRead {
                source_name: self.name(),
                digest: digest.clone(),
                detail: e.to_string(),
            }),
            Err(Err(e)) => Err(e.into()),
        }
    }

    async fn manifest_digest(&self, reference: &str) -> Result<Option<Digest>, TransferError> {
        if let Ok(d) = Digest::parse(reference) {
            return Ok(self.cd.content_info(&d).await?.map(|_| d));
        }
        Ok(self.present(reference).await?)
    }

    async fn put_manifest(&self, reference: &str, m: &Manifest) -> Result<(), TransferError> {
        let mut labels = unpack::gc_labels(reference, &m.digest, &m.bytes)?;
        labels.extend(self.source_labels());
        if self.cd.content_info(&m.digest).await?.is_none() {
            self.cd
                .write_bytes(&m.digest, m.bytes.clone(), labels)
                .await?;
        } else {
            self.cd.set_content_labels(&m.digest, labels).await?;
        }
        if Digest::parse(reference).is_ok() {
            return Ok(());
        }
        Ok(self.put_top(reference, m).await?)
    }
}
