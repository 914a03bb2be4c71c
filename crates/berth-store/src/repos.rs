//! Repositories: the blobs (`_layers/`) and manifests (`_manifests/`) each may serve, as
//! link files, and the walk over every repository.

use std::fs;
use std::path::{Path, PathBuf};

use berth_reference::Digest;

use crate::{Result, Store, StoreError, digest_rel, remove_if_present, validate_repository};

/// A manifest to store with [`Store::put_manifest`].
pub struct ManifestPush<'a> {
    pub digest: &'a Digest,
    pub bytes: &'a [u8],
    pub media_type: &'a str,
    pub tag: Option<&'a str>,
    pub subject: Option<&'a Digest>,
    /// Blobs the manifest refers to (config, layers): must be in the repository.
    pub blobs: &'a [Digest],
    /// Child manifests: must be in the repository.
    pub manifests: &'a [Digest],
}

impl Store {
    pub(crate) fn repo_dir(&self, repo: &str) -> PathBuf {
        debug_assert!(validate_repository(repo).is_ok());
        self.root().join("repos").join(repo)
    }

    pub(crate) fn layer_link(&self, repo: &str, d: &Digest) -> PathBuf {
        self.repo_dir(repo).join("_layers").join(digest_rel(d))
    }

    fn manifest_link(&self, repo: &str, d: &Digest) -> PathBuf {
        self.repo_dir(repo).join("_manifests").join(digest_rel(d))
    }

    pub(crate) fn create_link(&self, path: &Path) -> Result<()> {
        if path.is_file() {
            return Ok(());
        }
        self.write_atomic(path, b"")
    }

    /// Whether `repo` may serve blob `d` (it was pushed or mounted there, and is stored).
    pub fn has_layer(&self, repo: &str, d: &Digest) -> bool {
        self.layer_link(repo, d).is_file() && self.blob_path(d).is_file()
    }

    /// Links a stored blob into `repo` (mount). `Ok(false)` when the blob is not stored.
    pub fn link_layer(&self, repo: &str, d: &Digest) -> Result<bool> {
        let _g = self.gc_shared()?;
        if !self.blob_path(d).is_file() {
            return Ok(false);
        }
        self.create_link(&self.layer_link(repo, d))?;
        Ok(true)
    }

    /// Removes blob `d` from `repo` (the content stays until gc). `false` if it was not there.
    pub fn unlink_layer(&self, repo: &str, d: &Digest) -> Result<bool> {
        remove_if_present(&self.layer_link(repo, d), "remove link")
    }

    /// The media type of manifest `d` in `repo`, `None` if the repository does not hold it.
    pub fn manifest_type(&self, repo: &str, d: &Digest) -> Option<String> {
        let t = fs::read_to_string(self.manifest_link(repo, d)).ok()?;
        self.blob_path(d).is_file().then_some(t)
    }

    /// Stores a manifest in `repo`, under its digest and optionally a tag. Under the gc lock,
    /// checks that every blob in `blobs` and manifest in `manifests` is in the repository;
    /// returns the first missing one as `Err(Ok(digest))`.
    pub fn put_manifest(
        &self,
        repo: &str,
        push: &ManifestPush<'_>,
    ) -> std::result::Result<(), std::result::Result<Digest, StoreError>> {
        let _g = self.gc_shared().map_err(Err)?;
        for b in push.blobs {
            if !self.has_layer(repo, b) && self.manifest_type(repo, b).is_none() {
                return Err(Ok(b.clone()));
            }
        }
        for m in push.manifests {
            if self.manifest_type(repo, m).is_none() {
                return Err(Ok(m.clone()));
            }
        }
        self.put_bytes(push.digest, push.bytes).map_err(Err)?;
        self.write_atomic(
            &self.manifest_link(repo, push.digest),
            push.media_type.as_bytes(),
        )
        .map_err(Err)?;
        for b in push.blobs {
            if self.blob_path(b).is_file() && !self.layer_link(repo, b).is_file() {
                self.create_link(&self.layer_link(repo, b)).map_err(Err)?;
            }
        }
        if let Some(s) = push.subject {
            self.link_referrer(repo, s, push.digest).map_err(Err)?;
        }
        if let Some(t) = push.tag {
            self.set_tag(repo, t, push.digest).map_err(Err)?;
        }
        Ok(())
    }

    /// Removes manifest `d` from `repo` with every tag that points at it. `false` when the
    /// repository did not hold it.
    pub fn delete_manifest(&self, repo: &str, d: &Digest) -> Result<bool> {
        if self.manifest_type(repo, d).is_none() {
            return Ok(false);
        }
        for t in self.tags(repo).unwrap_or_default() {
            if self.resolve_tag(repo, &t).as_ref() == Some(d) {
                self.delete_tag(repo, &t)?;
            }
        }
        let p = self.manifest_link(repo, d);
        fs::remove_file(&p).map_err(StoreError::io("remove manifest link", &p))?;
        Ok(true)
    }

    /// Whether the repository exists (has held anything).
    pub fn repo_exists(&self, repo: &str) -> bool {
        let d = self.repo_dir(repo);
        ["_manifests", "_layers", "_tags"]
            .iter()
            .any(|s| d.join(s).is_dir())
    }

    /// Every repository, sorted.
    pub fn repositories(&self) -> Vec<String> {
        let mut out = vec![];
        let root = self.root().join("repos");
        fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
            let Ok(rd) = fs::read_dir(dir) else { return };
            let mut is_repo = false;
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('_') {
                    is_repo |= matches!(name.as_str(), "_manifests" | "_layers" | "_tags");
                    continue;
                }
                if berth_reference::validate_path_component(&name).is_err()
                    || !e.file_type().map(|t| t.is_dir()).unwrap_or(false)
                {
                    continue;
                }
                let p = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}/{name}")
                };
                walk(&e.path(), &p, out);
            }
            if is_repo && !prefix.is_empty() {
                out.push(prefix.to_string());
            }
        }
        walk(&root, "", &mut out);
        out.sort();
        out
    }
}
