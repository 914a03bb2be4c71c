//! Tag lists, following `Link` pagination.

use super::*;

impl Registry {
    /// All tags of `repo` (following `Link` pagination).
    pub async fn tags_list(&self, repo: &str) -> Result<Vec<String>, ClientError> {
        #[derive(serde::Deserialize)]
        struct Tags {
            tags: Option<Vec<String>>,
        }
        let ctx = Ctx {
            repo,
            scopes: vec![Self::pull_scope(repo)],
            what: format!("listing tags of {repo}"),
        };
        let mut out = Vec::new();
        let mut next = format!("v2/{repo}/tags/list?n=1000");
        for _ in 0..10_000 {
            let resp = self
                .send(&ctx, Method::GET, |b| Self::url(b, &next), |r| r)
                .await?;
            if resp.status() == StatusCode::NOT_FOUND {
                return Err(ClientError::ManifestNotFound {
                    registry: self.name.clone(),
                    repository: repo.into(),
                    reference: "(any tag)".into(),
                });
            }
            if !resp.status().is_success() {
                return Err(self.status_error(repo, resp, &ctx.what).await);
            }
            let link = resp
                .headers()
                .get(header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| {
                    l.split_once('<')
                        .and_then(|(_, r)| r.split_once('>'))
                        .map(|(u, _)| u.to_string())
                });
            let body = resp.bytes().await.map_err(|e| self.send_error(&e))?;
            let t: Tags = serde_json::from_slice(&body).map_err(|e| ClientError::Protocol {
                registry: self.name.clone(),
                what: ctx.what.clone(),
                detail: format!("bad tag list JSON: {e}"),
            })?;
            out.extend(t.tags.unwrap_or_default());
            match link {
                Some(l) => next = l.trim_start_matches('/').to_string(),
                None => return Ok(out),
            }
        }
        Ok(out)
    }
}
