//! `docker-archive:FILE[:REF]`: the `docker save` format.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use berth_ends::manifest::{Parsed, parse};
use berth_ends::{Destination, Source, TransferError};
use berth_oci::media::DOCKER_MANIFEST;
use berth_oci::{ByteStream, Manifest, sha256_of};
use berth_reference::{Digest, Reference};
use bytes::Bytes;
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::ArchiveError;
use crate::file::{Load, Opened, blocking, existing};
use crate::tarindex::{Compression, TarIndex, sniff};
use crate::writer::{Content, Stage, target_lock, write_tar};

pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker schema 2 has no zstd layer type; the OCI one is what registries accept.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

const MAX_MANIFEST_JSON: u64 = 16 << 20;
const MAX_CONFIG: u64 = 64 << 20;

/// Matches a `RepoTags` entry against `name:tag` (both normalized when they parse).
fn tag_matches(repo_tag: &str, wanted: &str) -> bool {
    match (Reference::parse(repo_tag), Reference::parse(wanted)) {
        (Ok(a), Ok(b)) => a == b,
        _ => repo_tag == wanted,
    }
}

fn repo_tags(entry: &Value) -> Vec<String> {
    entry["RepoTags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect()
}

/// One image of the archive with its synthesized manifest.
struct Image {
    manifest: Manifest,
    /// Blob digest → archive entry.
    blobs: HashMap<Digest, String>,
}

struct Loaded {
    tar: Arc<TarIndex>,
    entries: Vec<Value>,
}

impl Load for Loaded {
    const KIND: &'static str = "a docker-archive";

    fn load(path: &Path, name: &str) -> Result<Loaded, ArchiveError> {
        let tar = TarIndex::open(path, name)?;
        let v = tar.read_top_json(
            name,
            "manifest.json",
            ("docker-archive", "index.json", "oci-archive"),
            MAX_MANIFEST_JSON,
        )?;
        let Value::Array(entries) = v else {
            return Err(ArchiveError::invalid(
                name,
                "manifest.json is not a list of images",
            ));
        };
        Ok(Loaded {
            tar: Arc::new(tar),
            entries,
        })
    }
}

impl Loaded {
    fn describe(&self) -> String {
        self.entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let tags = repo_tags(e);
                if tags.is_empty() {
                    format!("@{i} (untagged)")
                } else {
                    tags.join(" ")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The `manifest.json` entry for `wanted` (`None`: the only one).
    fn select(&self, name: &str, wanted: Option<&str>) -> Result<Option<&Value>, ArchiveError> {
        match wanted {
            None if self.entries.len() == 1 => Ok(self.entries.first()),
            None => Err(ArchiveError::usage(
                name,
                format!(
                    "the archive holds {} images ({}); name one as docker-archive:FILE:NAME:TAG or docker-archive:FILE:@N",
                    self.entries.len(),
                    self.describe()
                ),
            )),
            Some(w) => {
                if let Some(n) = w.strip_prefix('@') {
                    let i: usize = n.parse().map_err(|_| {
                        ArchiveError::usage(
                            name,
                            format!("`{w}` is not an image number (@0, @1, …)"),
                        )
                    })?;
                    return Ok(self.entries.get(i));
                }
                Ok(self
                    .entries
                    .iter()
                    .find(|e| repo_tags(e).iter().any(|t| tag_matches(t, w))))
            }
        }
    }

    /// Synthesizes the Docker schema 2 manifest of one entry (blocking: hashes its layers).
    fn image(&self, name: &str, entry: &Value) -> Result<Image, ArchiveError> {
        let config_path = entry["Config"]
            .as_str()
            .ok_or_else(|| ArchiveError::invalid(name, "a manifest.json entry has no `Config`"))?;
        let r = self.tar.require(config_path, "the config")?;
        let config = self
            .tar
            .read(r, &format!("the config `{config_path}`"), MAX_CONFIG)?;
        let config_digest = sha256_of(&config);
        let mut blobs = HashMap::from([(config_digest.clone(), config_path.to_string())]);
        let mut layers = Vec::new();
        let paths = entry["Layers"].as_array().ok_or_else(|| {
            ArchiveError::invalid(name, "a manifest.json entry has no `Layers` list")
        })?;
        for p in paths {
            let p = p.as_str().ok_or_else(|| {
                ArchiveError::invalid(name, "a `Layers` entry of manifest.json is not a string")
            })?;
            let r = self.tar.require(p, "the layer")?;
            let mut reader = self.tar.reader(r);
            let mut hasher = sha2::Sha256::new();
            let mut buf = vec![0u8; 1 << 20];
            let mut head = Vec::new();
            loop {
                let n = reader
                    .read(&mut buf)
                    .map_err(|e| ArchiveError::io(name, format!("reading the layer `{p}`"), e))?;
                if n == 0 {
                    break;
                }
                if head.len() < 6 {
                    head.extend_from_slice(&buf[..n.min(6 - head.len())]);
                }
                hasher.update(&buf[..n]);
            }
            let out: [u8; 32] = hasher.finalize().into();
            let digest = Digest::sha256_from_bytes(&out);
            let media_type = match sniff(&head) {
                Ok(Compression::Gzip) => DOCKER_LAYER_GZIP,
                Ok(Compression::Zstd) => OCI_LAYER_ZSTD,
                Ok(Compression::None) => DOCKER_LAYER,
                Err(alg) => {
                    return Err(ArchiveError::invalid(
                        name,
                        format!(
                            "the layer `{p}` is compressed with {alg}, which image manifests cannot describe"
                        ),
                    ));
                }
            };
            blobs.insert(digest.clone(), p.to_string());
            layers.push(format!(
                r#"{{"mediaType":"{media_type}","size":{},"digest":"{digest}"}}"#,
                r.size
            ));
        }
        let bytes = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"{DOCKER_CONFIG}","size":{},"digest":"{config_digest}"}},"layers":[{}]}}"#,
            config.len(),
            layers.join(",")
        );
        Ok(Image {
            manifest: Manifest {
                digest: sha256_of(bytes.as_bytes()),
                bytes: Bytes::from(bytes),
                media_type: DOCKER_MANIFEST.to_string(),
            },
            blobs,
        })
    }
}

/// A `docker-archive:FILE[:REF]` to read: a [`Source`] serving a synthesized Docker
/// schema 2 manifest (see the crate documentation for what its digest means).
pub struct DockerArchive {
    file: Opened<Loaded>,
    /// Selector (`""` for the default) → synthesized image.
    images: Mutex<HashMap<String, Arc<Image>>>,
}

impl DockerArchive {
    /// An archive to read. `reference` (`name:tag`, or `@N` for the N-th image of
    /// `manifest.json`) selects the image [`Source::get_manifest`] returns for `""`;
    /// without it the archive must hold exactly one image. Indexed on first use.
    pub fn open(
        path: impl Into<PathBuf>,
        reference: Option<&str>,
    ) -> Result<DockerArchive, ArchiveError> {
        Ok(DockerArchive {
            file: Opened::new("docker-archive", path.into(), reference)?,
            images: Mutex::new(HashMap::new()),
        })
    }

    /// The reference to pass to [`Source::get_manifest`] for the image this archive was
    /// opened for (`REF`, or `""`).
    pub fn reference(&self) -> String {
        self.file.reference()
    }

    /// The `RepoTags` of every image in the archive, in `manifest.json` order.
    pub async fn repo_tags(&self) -> Result<Vec<Vec<String>>, ArchiveError> {
        Ok(self
            .file
            .loaded()
            .await?
            .entries
            .iter()
            .map(repo_tags)
            .collect())
    }

    /// The image for a selector, synthesized once.
    async fn image(&self, selector: &str) -> Result<Option<Arc<Image>>, ArchiveError> {
        if let Some(i) = self.images.lock().expect("lock").get(selector) {
            return Ok(Some(i.clone()));
        }
        let l = self.file.loaded().await?;
        let wanted = if selector.is_empty() {
            self.file.reference.clone()
        } else {
            Some(selector.to_string())
        };
        let name = self.file.name.clone();
        let img = blocking(&self.file.name, "reading", move || {
            let Some(entry) = l.select(&name, wanted.as_deref())? else {
                return Ok(None);
            };
            l.image(&name, entry).map(|i| Some(Arc::new(i)))
        })
        .await?;
        if let Some(i) = &img {
            self.images
                .lock()
                .expect("lock")
                .insert(selector.to_string(), i.clone());
        }
        Ok(img)
    }

    fn cached(&self) -> Vec<Arc<Image>> {
        self.images
            .lock()
            .expect("lock")
            .values()
            .cloned()
            .collect()
    }
}

#[async_trait]
impl Source for DockerArchive {
    fn name(&self) -> String {
        self.file.name.clone()
    }

    /// `""`, `REF`, another `name:tag` / `@N` of the archive, or the digest of a manifest
    /// synthesized before.
    async fn get_manifest(&self, reference: &str) -> Result<Option<Manifest>, TransferError> {
        if Digest::parse(reference).is_ok() {
            if self.cached().is_empty() {
                self.image("").await?;
            }
            return Ok(self
                .cached()
                .into_iter()
                .find(|i| i.manifest.digest.to_string() == reference)
                .map(|i| i.manifest.clone()));
        }
        Ok(self.image(reference).await?.map(|i| i.manifest.clone()))
    }

    async fn open_blob(&self, digest: &Digest) -> Result<ByteStream, TransferError> {
        let l = self.file.loaded().await?;
        let entry = self
            .cached()
            .into_iter()
            .find_map(|i| i.blobs.get(digest).cloned())
            .ok_or_else(|| {
                ArchiveError::invalid(
                    &self.file.name,
                    format!("blob {digest} is not a config or layer of an image read from it"),
                )
            })?;
        let r = l.tar.require(&entry, "the blob")?;
        Ok(l.tar.stream(r))
    }
}

/// A `docker-archive:FILE[:NAME:TAG]` to write: a [`Destination`] for single-platform
/// images. Create it with [`DockerArchive::create`].
pub struct DockerArchiveWriter {
    path: PathBuf,
    repo_tag: Option<String>,
    name: String,
    stage: Stage,
}

impl DockerArchive {
    /// An archive to write at `path`; `reference` (`name:tag`) becomes the image's
    /// `RepoTags` (when the engine puts the manifest under `""`; another `name:tag` it puts
    /// under wins). Config and layers are stored as files named by their digest
    /// (`<hex>.json`, `<hex>.tar`, `<hex>.tar.gz` for gzip layers, which `docker load`
    /// accepts), exactly as the source serves them. An existing docker-archive at `path`
    /// keeps its other images.
    pub fn create(
        path: impl Into<PathBuf>,
        reference: Option<&str>,
    ) -> Result<DockerArchiveWriter, ArchiveError> {
        let path = path.into();
        let name = format!("docker-archive:{}", path.display());
        let repo_tag = match reference.filter(|r| !r.is_empty()) {
            Some(r) => Some(normalize_tag(&name, r)?),
            None => None,
        };
        let stage = Stage::new(&path, &name)?;
        Ok(DockerArchiveWriter {
            path,
            repo_tag,
            name,
            stage,
        })
    }
}

/// `name:tag` as `docker save` writes it (`nginx:1.27`, `quay.io/a/b:1`).
fn normalize_tag(archive: &str, r: &str) -> Result<String, ArchiveError> {
    let parsed = Reference::parse(r)
        .map_err(|e| ArchiveError::usage(archive, format!("`{r}` is not a name:tag: {e}")))?;
    if parsed.digest().is_some() {
        return Err(ArchiveError::usage(
            archive,
            format!("`{r}` has a digest; docker-archive names images by name:tag only"),
        ));
    }
    Ok(parsed.familiar())
}

fn layer_file(d: &Digest, media_type: Option<&str>) -> String {
    let mt = media_type.unwrap_or("");
    let ext = if mt.contains("gzip") {
        "tar.gz"
    } else if mt.contains("zstd") {
        "tar.zst"
    } else {
        "tar"
    };
    format!("{}.{ext}", d.hex())
}

impl DockerArchiveWriter {
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn write(&self, reference: &str, m: &Manifest) -> Result<(), TransferError> {
        let blobs = match parse(m, &self.name, reference)? {
            Parsed::Image(b) => b,
            Parsed::Index(children) => {
                return Err(ArchiveError::usage(
                    &self.name,
                    format!(
                        "`{reference}` is a multi-platform index ({} manifests), and a docker-archive holds single-platform images only: copy one platform's manifest by its digest, or write an oci-archive: instead",
                        children.len()
                    ),
                )
                .into());
            }
        };
        let repo_tag = match reference {
            "" => self.repo_tag.clone(),
            r => Some(normalize_tag(&self.name, r)?),
        };
        let mut entries: BTreeMap<String, Content> = BTreeMap::new();
        let mut layer_names = Vec::new();
        for (i, b) in blobs.iter().enumerate() {
            if !self.stage.has(&b.digest) {
                return Err(ArchiveError::invalid(
                    &self.name,
                    format!(
                        "blob {} of the manifest was not put before it; nothing was written",
                        b.digest
                    ),
                )
                .into());
            }
            let file = if i == 0 {
                format!("{}.json", b.digest.hex())
            } else {
                let f = layer_file(&b.digest, b.media_type.as_deref());
                layer_names.push(f.clone());
                f
            };
            entries.insert(file, Content::File(self.stage.path(&b.digest)));
        }
        let config_name = format!("{}.json", blobs[0].digest.hex());
        let lock = target_lock(&self.path);
        let _guard = lock.lock().await;
        let old = existing::<Loaded>(&self.path, &self.name).await?;
        let mut tags: Vec<String> = repo_tag.iter().cloned().collect();
        let mut list: Vec<Value> = Vec::new();
        if let Some(old) = old {
            let tar = old.tar.clone();
            for f in old
                .tar
                .files()
                .filter(|f| *f != "manifest.json" && *f != "repositories")
            {
                entries
                    .entry(f.to_string())
                    .or_insert_with(|| Content::Old(tar.clone(), f.to_string()));
            }
            for mut e in old.entries.iter().cloned() {
                let mut other: Vec<String> = repo_tags(&e);
                other.retain(|t| repo_tag.as_deref().is_none_or(|mine| !tag_matches(t, mine)));
                let same =
                    e["Config"].as_str() == Some(&config_name) && e["Layers"] == json!(layer_names);
                if same {
                    // The same image again: one entry with all its names.
                    tags.extend(other);
                    continue;
                }
                // Links (docker save shares identical layers) become plain copies.
                let referenced = std::iter::once(e["Config"].clone())
                    .chain(e["Layers"].as_array().cloned().unwrap_or_default());
                for p in referenced.filter_map(|v| v.as_str().map(str::to_string)) {
                    let key = p.trim_start_matches("./").to_string();
                    entries
                        .entry(key)
                        .or_insert_with(|| Content::Old(tar.clone(), p.clone()));
                }
                e["RepoTags"] = json!(other);
                list.push(e);
            }
        }
        tags.sort();
        tags.dedup();
        list.push(json!({"Config": config_name, "RepoTags": tags, "Layers": layer_names}));
        entries.insert(
            "manifest.json".into(),
            Content::Bytes(serde_json::to_vec(&list).expect("json")),
        );
        let (path, name) = (self.path.clone(), self.name.clone());
        blocking(&self.name, "writing", move || {
            write_tar(&name, &path, entries)
        })
        .await?;
        Ok(())
    }
}

#[async_trait]
impl Destination for DockerArchiveWriter {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn blob_domain(&self) -> String {
        self.name.clone()
    }

    async fn has_blob(&self, digest: &Digest) -> Result<bool, TransferError> {
        Ok(self.stage.has(digest))
    }

    async fn put_blob(
        &self,
        digest: &Digest,
        _size: u64,
        stream: ByteStream,
    ) -> Result<(), TransferError> {
        self.stage.put(digest, stream).await
    }

    /// Always `None`: a docker-archive keeps no manifest, so the source's manifest digest
    /// can never be found in it and every copy writes the image again.
    async fn manifest_digest(&self, _reference: &str) -> Result<Option<Digest>, TransferError> {
        Ok(None)
    }

    /// Under a digest (an index's child) nothing happens; under `name:tag` or `""` (the
    /// top manifest, put last) the archive is written; an index is refused.
    async fn put_manifest(
        &self,
        reference: &str,
        manifest: &Manifest,
    ) -> Result<(), TransferError> {
        if Digest::parse(reference).is_ok() {
            return Ok(());
        }
        self.write(reference, manifest).await
    }
}

impl std::fmt::Debug for DockerArchive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.file.debug("DockerArchive", f)
    }
}

impl std::fmt::Debug for DockerArchiveWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerArchiveWriter")
            .field("path", &self.path)
            .field("repo_tag", &self.repo_tag)
            .finish()
    }
}
