//! Tag lists, following `Link` pagination.

use super::*;

impl Registry {
    /// All tags of `repo` (following `Link` pagination).
    pub async fn tags_list(&self, repo: &str) -> Result<Vec<String>, ClientError> {
        #[derive(serde::Deserialize)]
        struct Tags {
            tags: Option<Vec<String>>,
        }
        let ctx = Ctx::pull(repo, format!("listing tags of {repo}"));
        let first = format!("v2/{repo}/tags/list?n=1000");
        let pages = self
            .get_pages(&ctx, first, 10_000, None, |body| {
                let t: Tags =
                    serde_json::from_slice(body).map_err(|e| format!("bad tag list JSON: {e}"))?;
                Ok(t.tags.unwrap_or_default())
            })
            .await?;
        pages.ok_or_else(|| ClientError::ManifestNotFound {
            registry: self.name.clone(),
            repository: repo.into(),
            reference: "(any tag)".into(),
        })
    }
}
