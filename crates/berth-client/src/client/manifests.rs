//! Manifests: fetched and pushed as exact bytes, checked against the digest they were asked by.

use super::*;

impl Registry {
    /// `method` on manifest `reference` of `ctx.repo`, accepting `accept`: the response when
    /// it succeeds, `None` on 404, the registry's error otherwise.
    async fn manifest_response(
        &self,
        ctx: &Ctx<'_>,
        method: Method,
        reference: &str,
        accept: &[&str],
    ) -> Result<Option<Response>, ClientError> {
        let accept_value = accept.join(", ");
        let path = format!("v2/{}/manifests/{reference}", ctx.repo);
        let url = |b: &Url| Self::url(b, &path);
        let with_accept = |r: reqwest::RequestBuilder| r.header(header::ACCEPT, &accept_value);
        let resp = self.send(ctx, method, url, with_accept).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(self.status_error(ctx.repo, resp, &ctx.what).await);
        }
        Ok(Some(resp))
    }

    /// Fetches a manifest by tag or digest, exactly as served. When fetched by digest, the
    /// bytes are checked against it. Docker schema 1 is refused with [`ClientError::Schema1`].
    pub async fn get_manifest(
        &self,
        repo: &str,
        reference: &str,
        accept: &[&str],
    ) -> Result<Manifest, ClientError> {
        let ctx = Ctx::pull(repo, format!("pulling manifest {repo}:{reference}"));
        let accept = if accept.is_empty() {
            MANIFEST_ACCEPT
        } else {
            accept
        };
        let Some(resp) = self
            .manifest_response(&ctx, Method::GET, reference, accept)
            .await?
        else {
            return Err(ClientError::ManifestNotFound {
                registry: self.name.clone(),
                repository: repo.into(),
                reference: reference.into(),
            });
        };
        let ct = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(';').next().unwrap_or("").trim().to_string());
        let mut body = BytesMut::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.send_error(&e))?;
            if body.len() + chunk.len() > MAX_MANIFEST_BYTES {
                return Err(ClientError::Protocol {
                    registry: self.name.clone(),
                    what: ctx.what.clone(),
                    detail: format!("the manifest is larger than {MAX_MANIFEST_BYTES} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        let bytes = body.freeze();
        let media_type = match ct {
            Some(ct) if !ct.is_empty() && ct != "application/json" && ct != "text/plain" => ct,
            _ => media_type_from_json(&bytes).unwrap_or_else(|| OCI_MANIFEST.to_string()),
        };
        if media_type == DOCKER_SCHEMA1 || media_type == DOCKER_SCHEMA1_SIGNED {
            return Err(ClientError::Schema1 {
                registry: self.name.clone(),
                repository: repo.into(),
                reference: reference.into(),
                media_type,
            });
        }
        let digest = match Digest::parse(reference) {
            Ok(expected) => {
                let actual =
                    digest_of(&bytes, &expected).map_err(|source| ClientError::Verify {
                        registry: self.name.clone(),
                        repository: repo.into(),
                        reference: reference.into(),
                        source: Box::new(source),
                    })?;
                if actual != expected {
                    return Err(ClientError::Verify {
                        registry: self.name.clone(),
                        repository: repo.into(),
                        reference: reference.into(),
                        source: Box::new(VerifyError::DigestMismatch { expected, actual }),
                    });
                }
                expected
            }
            Err(_) => sha256_of(&bytes),
        };
        Ok(Manifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// `HEAD` a manifest: `None` when it is not there.
    pub async fn head_manifest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<Option<ManifestHead>, ClientError> {
        let ctx = Ctx::pull(repo, format!("checking manifest {repo}:{reference}"));
        let head = self.manifest_response(&ctx, Method::HEAD, reference, MANIFEST_ACCEPT);
        let Some(resp) = head.await? else {
            return Ok(None);
        };
        let h = resp.headers();
        Ok(Some(ManifestHead {
            digest: h
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| Digest::parse(v).ok()),
            media_type: h
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            size: content_length(h),
        }))
    }

    /// Pushes manifest bytes unchanged under `reference` (a tag or its digest).
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        bytes: Bytes,
        media_type: &str,
    ) -> Result<Digest, ClientError> {
        let ctx = Ctx::push(repo, format!("pushing manifest {repo}:{reference}"));
        let path = format!("v2/{repo}/manifests/{reference}");
        let resp = self
            .send(
                &ctx,
                Method::PUT,
                |b| Self::url(b, &path),
                |r| {
                    r.header(header::CONTENT_TYPE, media_type)
                        .body(bytes.clone())
                },
            )
            .await?;
        if !resp.status().is_success() {
            return Err(self.status_error(repo, resp, &ctx.what).await);
        }
        Ok(sha256_of(&bytes))
    }
}
