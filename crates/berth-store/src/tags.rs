//! Tags: `repos/<name>/_tags/<tag>`, each holding the digest it points at.

use std::fs;
use std::path::PathBuf;

use berth_reference::Digest;

use crate::{Result, Store, remove_if_present, validate_tag};

impl Store {
    pub(crate) fn tag_path(&self, repo: &str, tag: &str) -> PathBuf {
        self.repo_dir(repo).join("_tags").join(tag)
    }

    /// Points `tag` of `repo` at `digest`.
    pub(crate) fn set_tag(&self, repo: &str, tag: &str, digest: &Digest) -> Result<()> {
        self.write_atomic(&self.tag_path(repo, tag), digest.to_string().as_bytes())
    }

    /// The digest a tag points at.
    pub fn resolve_tag(&self, repo: &str, tag: &str) -> Option<Digest> {
        let s = fs::read_to_string(self.tag_path(repo, tag)).ok()?;
        Digest::parse(s.trim()).ok()
    }

    /// Tags of `repo`, sorted; `None` when the repository is unknown.
    pub fn tags(&self, repo: &str) -> Option<Vec<String>> {
        if !self.repo_exists(repo) {
            return None;
        }
        let mut tags: Vec<String> = fs::read_dir(self.repo_dir(repo).join("_tags"))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|t| validate_tag(t).is_ok())
                    .collect()
            })
            .unwrap_or_default();
        tags.sort();
        Some(tags)
    }

    /// Removes a tag. `false` when it did not exist.
    pub fn delete_tag(&self, repo: &str, tag: &str) -> Result<bool> {
        remove_if_present(&self.tag_path(repo, tag), "remove tag")
    }
}
