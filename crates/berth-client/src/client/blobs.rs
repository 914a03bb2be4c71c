//! Blobs: existence checks and streamed downloads (redirects followed by hand, credentials
//! never sent to another host).

use super::*;

impl Registry {
    /// `HEAD` a blob: its size, or `None` when it is not there.
    pub async fn head_blob(&self, repo: &str, digest: &Digest) -> Result<Option<u64>, ClientError> {
        let ctx = Ctx {
            repo,
            scopes: vec![Self::pull_scope(repo)],
            what: format!("checking blob {digest} in {repo}"),
        };
        let path = format!("v2/{repo}/blobs/{digest}");
        let mut resp = self
            .send(&ctx, Method::HEAD, |b| Self::url(b, &path), |r| r)
            .await?;
        // A HEAD may be redirected to storage too; follow it without credentials elsewhere.
        let mut hops = 0;
        while resp.status().is_redirection() && hops < 5 {
            hops += 1;
            resp = self.follow_redirect(repo, &ctx, Method::HEAD, resp).await?;
        }
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(self.status_error(repo, resp, &ctx.what).await);
        }
        Ok(Some(content_length(resp.headers()).unwrap_or(0)))
    }

    /// The absolute URL a response's `Location` header points to (`kind` names it in errors).
    pub(super) fn location(
        &self,
        ctx: &Ctx<'_>,
        resp: &Response,
        kind: &str,
    ) -> Result<Url, ClientError> {
        let location = resp
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ClientError::Protocol {
                registry: self.name.clone(),
                what: ctx.what.clone(),
                detail: format!("HTTP {} without a Location header", resp.status()),
            })?;
        resp.url()
            .join(location)
            .map_err(|e| ClientError::Protocol {
                registry: self.name.clone(),
                what: ctx.what.clone(),
                detail: format!("bad {kind} Location `{location}`: {e}"),
            })
    }

    async fn follow_redirect(
        &self,
        repo: &str,
        ctx: &Ctx<'_>,
        method: Method,
        resp: Response,
    ) -> Result<Response, ClientError> {
        let target = self.location(ctx, &resp, "redirect")?;
        let info = self.host_info(repo).await?;
        let (key, _) = self.config(repo);
        let mut rb = self.http(&key).request(method, target.clone());
        if same_origin(&target, &info.base)
            && let Some(a) = self.authorization(&info, repo, &ctx.scopes, false).await?
        {
            rb = rb.header(header::AUTHORIZATION, a);
        }
        rb.send().await.map_err(|e| self.send_error(&e))
    }

    /// Downloads a blob as a stream (not verified here: wrap it in
    /// [`crate::VerifyingStream`]). Redirects are followed; credentials go only to the
    /// registry's own origin.
    pub async fn get_blob(&self, repo: &str, digest: &Digest) -> Result<BlobDownload, ClientError> {
        let ctx = Ctx {
            repo,
            scopes: vec![Self::pull_scope(repo)],
            what: format!("pulling blob {digest} from {repo}"),
        };
        let path = format!("v2/{repo}/blobs/{digest}");
        let mut resp = self
            .send(&ctx, Method::GET, |b| Self::url(b, &path), |r| r)
            .await?;
        let mut hops = 0;
        while resp.status().is_redirection() {
            hops += 1;
            if hops > 10 {
                return Err(ClientError::Protocol {
                    registry: self.name.clone(),
                    what: ctx.what.clone(),
                    detail: "more than 10 redirects".into(),
                });
            }
            resp = self.follow_redirect(repo, &ctx, Method::GET, resp).await?;
        }
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(ClientError::BlobNotFound {
                registry: self.name.clone(),
                repository: repo.into(),
                digest: digest.clone(),
            });
        }
        if !resp.status().is_success() {
            return Err(self.status_error(repo, resp, &ctx.what).await);
        }
        let size = content_length(resp.headers());
        let name = self.name.clone();
        let stream = resp.bytes_stream().map_err(move |e| {
            std::io::Error::other(format!("reading from registry {name}: {}", error_chain(&e)))
        });
        Ok(BlobDownload {
            size,
            stream: Box::pin(stream),
        })
    }
}
