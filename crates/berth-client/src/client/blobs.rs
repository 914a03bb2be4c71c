//! Blobs: existence checks and streamed downloads (redirects followed by hand, credentials
//! never sent to another host).

use super::*;

impl Registry {
    /// `HEAD` a blob: its size, or `None` when it is not there.
    pub async fn head_blob(&self, repo: &str, digest: &Digest) -> Result<Option<u64>, ClientError> {
        let ctx = Ctx::pull(repo, format!("checking blob {digest} in {repo}"));
        // A HEAD may be redirected to storage too.
        let resp = self.blob_response(&ctx, Method::HEAD, digest).await?;
        Ok(resp.map(|r| content_length(r.headers()).unwrap_or(0)))
    }

    /// `method` on blob `digest` of `ctx.repo`, redirects followed (credentials go only to
    /// the registry's own origin): the response when it succeeds, `None` on 404, the
    /// registry's error otherwise.
    async fn blob_response(
        &self,
        ctx: &Ctx<'_>,
        method: Method,
        digest: &Digest,
    ) -> Result<Option<Response>, ClientError> {
        let path = format!("v2/{}/blobs/{digest}", ctx.repo);
        let url = |b: &Url| Self::url(b, &path);
        let mut resp = self.send(ctx, method.clone(), url, |r| r).await?;
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
            resp = self
                .follow_redirect(ctx.repo, ctx, method.clone(), resp)
                .await?;
        }
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(self.status_error(ctx.repo, resp, &ctx.what).await);
        }
        Ok(Some(resp))
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
        let rb = self.http(&key).request(method, target.clone());
        let auth = match same_origin(&target, &info.base) {
            true => self.authorization(&info, repo, &ctx.scopes, false).await?,
            false => None,
        };
        self.send_authorized(rb, auth.as_ref()).await
    }

    /// Downloads a blob as a stream (not verified here: wrap it in
    /// [`crate::VerifyingStream`]). Redirects are followed; credentials go only to the
    /// registry's own origin.
    pub async fn get_blob(&self, repo: &str, digest: &Digest) -> Result<BlobDownload, ClientError> {
        let ctx = Ctx::pull(repo, format!("pulling blob {digest} from {repo}"));
        let Some(resp) = self.blob_response(&ctx, Method::GET, digest).await? else {
            return Err(ClientError::BlobNotFound {
                registry: self.name.clone(),
                repository: repo.into(),
                digest: digest.clone(),
            });
        };
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
