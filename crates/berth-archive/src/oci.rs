//! `oci-archive:FILE[:REF]`: a tar of an OCI image layout.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use berth_ends::{Destination, Source, TransferError};
use berth_oci::media::{MAX_MANIFEST_BYTES, OCI_INDEX, OCI_MANIFEST};
use berth_oci::{ByteStream, Manifest, VerifyError, digest_of, media_type_from_json};
use berth_reference::Digest;

use crate::REF_NAME;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::ArchiveError;
use crate::file::{Load, Opened, blocking, existing};
use crate::tarindex::TarIndex;
use crate::writer::{Content, Stage, target_lock, write_tar};

/// `index.json` is read whole; this caps it.
const MAX_INDEX_BYTES: u64 = 64 << 20;

fn blob_entry(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm().as_str(), d.hex())
}

/// An opened, indexed OCI archive.
struct Loaded {
    tar: Arc<TarIndex>,
    index: Value,
}

impl Load for Loaded {
    const KIND: &'static str = "an oci-archive";

    /// Blocking: indexes the tar and reads `index.json`.
    fn load(path: &Path, name: &str) -> Result<Loaded, ArchiveError> {
        let tar = TarIndex::open(path, name)?;
        let index = tar.read_top_json(
            name,
            "index.json",
            ("oci-archive", "manifest.json", "docker-archive"),
            MAX_INDEX_BYTES,
        )?;
        if !index["manifests"].is_array() {
            return Err(ArchiveError::invalid(
                name,
                "index.json has no `manifests` array",
            ));
        }
        Ok(Loaded {
            tar: Arc::new(tar),
            index,
        })
    }
}

impl Loaded {
    fn entries(&self) -> &[Value] {
        self.index["manifests"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    fn has_blob(&self, d: &Digest) -> Result<bool, ArchiveError> {
        Ok(self.tar.find(&blob_entry(d))?.is_some())
    }

    fn ref_names(&self) -> Vec<String> {
        self.entries()
            .iter()
            .map(|m| {
                m["annotations"][REF_NAME]
                    .as_str()
                    .unwrap_or("(unnamed)")
                    .to_string()
            })
            .collect()
    }
}

/// An `oci-archive:FILE[:REF]` to read: a [`Source`].
pub struct OciArchive {
    file: Opened<Loaded>,
}

impl OciArchive {
    /// An archive to read. `reference` is the `org.opencontainers.image.ref.name` of the
    /// image [`Source::get_manifest`] returns for `""`; without it the archive must hold
    /// exactly one `index.json` entry. The file is indexed on first use, not here.
    pub fn open(
        path: impl Into<PathBuf>,
        reference: Option<&str>,
    ) -> Result<OciArchive, ArchiveError> {
        Ok(OciArchive {
            file: Opened::new("oci-archive", path.into(), reference)?,
        })
    }

    /// The reference to pass to [`Source::get_manifest`] for the image this archive was
    /// opened for (`REF`, or `""` for its only image).
    pub fn reference(&self) -> String {
        self.file.reference()
    }

    /// The ref names of the archive's `index.json` entries, in order.
    pub async fn ref_names(&self) -> Result<Vec<String>, ArchiveError> {
        Ok(self.file.loaded().await?.ref_names())
    }

    /// The `index.json` descriptor for `reference` (`""`: the default image).
    fn select<'a>(
        &self,
        l: &'a Loaded,
        reference: &str,
    ) -> Result<Option<&'a Value>, ArchiveError> {
        let wanted = if reference.is_empty() {
            self.file.reference.as_deref()
        } else {
            Some(reference)
        };
        let entries = l.entries();
        match wanted {
            Some(r) => Ok(entries
                .iter()
                .find(|m| m["annotations"][REF_NAME].as_str() == Some(r))),
            None if entries.len() == 1 => Ok(entries.first()),
            None => Err(ArchiveError::usage(
                &self.file.name,
                format!(
                    "the archive holds {} images ({}); name one as oci-archive:FILE:REF",
                    entries.len(),
                    l.ref_names().join(", ")
                ),
            )),
        }
    }
}

/// Reads manifest `digest` from the archive, checking digest and (when known) size.
fn read_manifest(
    name: &str,
    l: &Loaded,
    digest: &Digest,
    media_type: Option<&str>,
    size: Option<u64>,
) -> Result<Manifest, TransferError> {
    let Some(r) = l.tar.find(&blob_entry(digest))? else {
        return Err(ArchiveError::invalid(
            name,
            format!("manifest {digest} is named in index.json but not in the archive"),
        )
        .into());
    };
    let bytes = l
        .tar
        .read(r, &format!("manifest {digest}"), MAX_MANIFEST_BYTES as u64)?;
    let verify = |error| TransferError::Verify {
        source_name: name.to_string(),
        digest: digest.clone(),
        error,
    };
    let actual = digest_of(&bytes, digest).map_err(verify)?;
    if actual != *digest {
        return Err(verify(VerifyError::DigestMismatch {
            expected: digest.clone(),
            actual,
        }));
    }
    if let Some(size) = size
        && size != bytes.len() as u64
    {
        return Err(verify(VerifyError::SizeMismatch {
            digest: digest.clone(),
            expected: size,
            actual: bytes.len() as u64,
        }));
    }
    let media_type = media_type
        .map(str::to_string)
        .or_else(|| media_type_from_json(&bytes))
        .unwrap_or_else(|| OCI_MANIFEST.to_string());
    Ok(Manifest {
        bytes: Bytes::from(bytes),
        media_type,
        digest: digest.clone(),
    })
}

#[async_trait]
impl Source for OciArchive {
    fn name(&self) -> String {
        self.file.name.clone()
    }

    async fn get_manifest(&self, reference: &str) -> Result<Option<Manifest>, TransferError> {
        let l = self.file.loaded().await?;
        let name = &self.file.name;
        if let Ok(digest) = Digest::parse(reference) {
            let desc = l
                .entries()
                .iter()
                .find(|m| m["digest"].as_str() == Some(reference));
            if desc.is_none() && !l.has_blob(&digest)? {
                return Ok(None);
            }
            let mt = desc.and_then(|m| m["mediaType"].as_str());
            let size = desc.and_then(|m| m["size"].as_u64());
            return read_manifest(name, &l, &digest, mt, size).map(Some);
        }
        let Some(desc) = self.select(&l, reference)? else {
            return Ok(None);
        };
        let digest = desc["digest"]
            .as_str()
            .and_then(|d| Digest::parse(d).ok())
            .ok_or_else(|| {
                ArchiveError::invalid(
                    name,
                    format!("the index.json entry for `{reference}` has no valid digest"),
                )
            })?;
        read_manifest(
            name,
            &l,
            &digest,
            desc["mediaType"].as_str(),
            desc["size"].as_u64(),
        )
        .map(Some)
    }

    async fn open_blob(&self, digest: &Digest) -> Result<ByteStream, TransferError> {
        let l = self.file.loaded().await?;
        let r = l.tar.require(&blob_entry(digest), "blob")?;
        Ok(l.tar.stream(r))
    }
}

/// An `oci-archive:FILE[:REF]` to write: a [`Destination`]. Create it with
/// [`OciArchive::create`].
pub struct OciArchiveWriter {
    path: PathBuf,
    reference: Option<String>,
    name: String,
    stage: Stage,
    manifests: Mutex<BTreeMap<Digest, Manifest>>,
    /// Ref names put by this writer.
    tags: Mutex<BTreeMap<String, Digest>>,
    existing: OnceCell<Option<Arc<Loaded>>>,
}

impl OciArchive {
    /// An archive to write at `path`. The image is named by the reference the engine puts
    /// its top manifest under; `""` stands for `reference` (`REF`), and without one the
    /// `index.json` entry is unnamed (as skopeo writes `oci-archive:FILE`). An
    /// existing oci-archive at `path` keeps its other images; any other file there is
    /// refused when the archive is written.
    pub fn create(
        path: impl Into<PathBuf>,
        reference: Option<&str>,
    ) -> Result<OciArchiveWriter, ArchiveError> {
        let path = path.into();
        let name = format!("oci-archive:{}", path.display());
        if let Some(r) = reference
            && Digest::parse(r).is_ok()
        {
            return Err(ArchiveError::usage(
                &name,
                format!(
                    "`{r}` is a digest; an archive names its images by ref names: write oci-archive:FILE:NAME"
                ),
            ));
        }
        let stage = Stage::new(&path, &name)?;
        Ok(OciArchiveWriter {
            path,
            reference: reference.filter(|r| !r.is_empty()).map(str::to_string),
            name,
            stage,
            manifests: Mutex::new(BTreeMap::new()),
            tags: Mutex::new(BTreeMap::new()),
            existing: OnceCell::new(),
        })
    }
}

impl OciArchiveWriter {
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn existing(&self) -> Result<Option<Arc<Loaded>>, ArchiveError> {
        self.existing
            .get_or_try_init(|| async {
                Ok(existing::<Loaded>(&self.path, &self.name)
                    .await?
                    .map(Arc::new))
            })
            .await
            .cloned()
    }

    /// Writes the archive with `top` under `ref_name` plus everything staged and every
    /// image already in the file.
    async fn write(&self, ref_name: Option<&str>, top: &Manifest) -> Result<(), ArchiveError> {
        let lock = target_lock(&self.path);
        let _guard = lock.lock().await;
        let mut entries: BTreeMap<String, Content> = BTreeMap::new();
        for (d, p) in self.stage.all() {
            entries.insert(blob_entry(&d), Content::File(p));
        }
        for (d, m) in self.manifests.lock().expect("lock").iter() {
            entries.insert(blob_entry(d), Content::Bytes(m.bytes.to_vec()));
        }
        let old = existing::<Loaded>(&self.path, &self.name).await?;
        let mut index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []});
        if let Some(old) = old {
            let tar = old.tar.clone();
            for f in old.tar.files().filter(|f| f.starts_with("blobs/")) {
                entries
                    .entry(f.to_string())
                    .or_insert_with(|| Content::Old(tar.clone(), f.to_string()));
            }
            index = old.index.clone();
        }
        let digest = top.digest.to_string();
        let list = index["manifests"]
            .as_array_mut()
            .expect("checked by Loaded::load");
        list.retain(|m| match ref_name {
            Some(r) => m["annotations"][REF_NAME].as_str() != Some(r),
            None => {
                !(m["annotations"][REF_NAME].is_null() && m["digest"].as_str() == Some(&digest))
            }
        });
        let mut desc =
            json!({"mediaType": top.media_type, "digest": digest, "size": top.bytes.len()});
        if let Some(r) = ref_name {
            desc["annotations"] = json!({ REF_NAME: r });
        }
        list.push(desc);
        entries.insert(
            "index.json".into(),
            Content::Bytes(serde_json::to_vec(&index).expect("json")),
        );
        entries.insert(
            "oci-layout".into(),
            Content::Bytes(br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
        );
        let (path, name) = (self.path.clone(), self.name.clone());
        blocking(&self.name, "writing", move || {
            write_tar(&name, &path, entries)
        })
        .await
    }
}

#[async_trait]
impl Destination for OciArchiveWriter {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn blob_domain(&self) -> String {
        self.name.clone()
    }

    async fn has_blob(&self, digest: &Digest) -> Result<bool, TransferError> {
        if self.stage.has(digest) || self.manifests.lock().expect("lock").contains_key(digest) {
            return Ok(true);
        }
        match self.existing().await? {
            Some(l) => Ok(l.has_blob(digest)?),
            None => Ok(false),
        }
    }

    async fn put_blob(
        &self,
        digest: &Digest,
        _size: u64,
        stream: ByteStream,
    ) -> Result<(), TransferError> {
        self.stage.put(digest, stream).await
    }

    async fn manifest_digest(&self, reference: &str) -> Result<Option<Digest>, TransferError> {
        if let Ok(d) = Digest::parse(reference) {
            return Ok(self.has_blob(&d).await?.then_some(d));
        }
        if let Some(d) = self.tags.lock().expect("lock").get(reference) {
            return Ok(Some(d.clone()));
        }
        if reference.is_empty() {
            return Ok(None);
        }
        let Some(l) = self.existing().await? else {
            return Ok(None);
        };
        Ok(l.entries()
            .iter()
            .find(|m| m["annotations"][REF_NAME].as_str() == Some(reference))
            .and_then(|m| m["digest"].as_str())
            .and_then(|d| Digest::parse(d).ok()))
    }

    /// Stages the manifest; under a ref name (or `""`), which the engine puts last, also
    /// writes the archive.
    async fn put_manifest(
        &self,
        reference: &str,
        manifest: &Manifest,
    ) -> Result<(), TransferError> {
        let actual = digest_of(&manifest.bytes, &manifest.digest).map_err(|error| {
            TransferError::Verify {
                source_name: "manifest".into(),
                digest: manifest.digest.clone(),
                error,
            }
        })?;
        if actual != manifest.digest {
            return Err(TransferError::Verify {
                source_name: "manifest".into(),
                digest: manifest.digest.clone(),
                error: VerifyError::DigestMismatch {
                    expected: manifest.digest.clone(),
                    actual,
                },
            });
        }
        self.manifests
            .lock()
            .expect("lock")
            .insert(manifest.digest.clone(), manifest.clone());
        if Digest::parse(reference).is_ok() {
            return Ok(());
        }
        let ref_name = Some(reference)
            .filter(|r| !r.is_empty())
            .or(self.reference.as_deref());
        self.write(ref_name, manifest).await?;
        self.tags
            .lock()
            .expect("lock")
            .insert(reference.to_string(), manifest.digest.clone());
        Ok(())
    }
}

impl std::fmt::Debug for OciArchive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.file.debug("OciArchive", f)
    }
}

impl std::fmt::Debug for OciArchiveWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OciArchiveWriter")
            .field("path", &self.path)
            .field("reference", &self.reference)
            .finish()
    }
}
