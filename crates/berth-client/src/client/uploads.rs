//! Uploads: one streamed `PUT ?digest=` per blob with an 8 MiB chunked fallback, and
//! cross-repository mounts.

use super::*;

impl Registry {
    /// `rb` sent with `auth` as its `Authorization`, when there is one.
    pub(super) async fn send_authorized(
        &self,
        rb: reqwest::RequestBuilder,
        auth: Option<&HeaderValue>,
    ) -> Result<Response, ClientError> {
        let rb = match auth {
            Some(a) => rb.header(header::AUTHORIZATION, a.clone()),
            None => rb,
        };
        rb.send().await.map_err(|e| self.send_error(&e))
    }

    async fn upload_target(
        &self,
        repo: &str,
        ctx: &Ctx<'_>,
        resp: &Response,
    ) -> Result<(Url, Option<HeaderValue>), ClientError> {
        let url = self.location(ctx, resp, "upload")?;
        let info = self.host_info(repo).await?;
        let auth = if same_origin(&url, &info.base) {
            self.authorization(&info, repo, &ctx.scopes, false).await?
        } else {
            None
        };
        Ok((url, auth))
    }

    async fn cancel_upload(&self, repo: &str, url: &Url, auth: &Option<HeaderValue>) {
        let (key, _) = self.config(repo);
        let rb = self.http(&key).delete(url.clone());
        let _ = self.send_authorized(rb, auth.as_ref()).await;
    }

    async fn start_upload(
        &self,
        repo: &str,
        ctx: &Ctx<'_>,
        query: &str,
    ) -> Result<Response, ClientError> {
        let path = format!("v2/{repo}/blobs/uploads/{query}");
        self.send(
            ctx,
            Method::POST,
            |b| Self::url(b, &path),
            |r| r.header(header::CONTENT_LENGTH, "0"),
        )
        .await
    }

    /// Uploads a blob of `size` bytes from `stream`: one streamed `PUT ?digest=` after the
    /// `POST`, or, once this registry refused that, chunked `PATCH`es of [`CHUNK_SIZE`]. If
    /// the stream fails (for example a [`crate::VerifyingStream`] detecting corruption), the
    /// upload is never completed and its session is cancelled. Not retried here: the caller
    /// reopens the source and calls again.
    pub async fn push_blob(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        stream: ByteStream,
    ) -> Result<(), ClientError> {
        let ctx = Ctx::push(repo, format!("pushing blob {digest} to {repo}"));
        let resp = self.start_upload(repo, &ctx, "").await?;
        if resp.status() != StatusCode::ACCEPTED && !resp.status().is_success() {
            return Err(self.status_error(repo, resp, &ctx.what).await);
        }
        let (url, auth) = self.upload_target(repo, &ctx, &resp).await?;
        let chunked = *self
            .inner()
            .chunked
            .lock()
            .expect("lock")
            .get(&self.host)
            .unwrap_or(&false);
        // The stream's own error, kept aside: reqwest reports only "body error".
        let slot: Arc<Mutex<Option<std::io::Error>>> = Arc::new(Mutex::new(None));
        let slot2 = slot.clone();
        let stream = stream.map_err(move |e| {
            let msg = e.to_string();
            *slot2.lock().expect("lock") = Some(e);
            std::io::Error::other(msg)
        });
        let result = if chunked {
            self.push_chunked(
                repo,
                &ctx,
                digest,
                url.clone(),
                auth.clone(),
                Box::pin(stream),
            )
            .await
        } else {
            let mut put = url.clone();
            put.query_pairs_mut()
                .append_pair("digest", &digest.to_string());
            let (key, _) = self.config(repo);
            let mut rb = self
                .http(&key)
                .put(put)
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .header(header::CONTENT_LENGTH, size.to_string())
                .body(reqwest::Body::wrap_stream(stream));
            if let Some(a) = &auth {
                rb = rb.header(header::AUTHORIZATION, a.clone());
            }
            match rb.send().await {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => {
                    let status = r.status();
                    let err = self.status_error(repo, r, &ctx.what).await;
                    let refused = matches!(status.as_u16(), 405 | 411 | 413 | 416)
                        || (status == StatusCode::BAD_REQUEST
                            && !err.to_string().contains("DIGEST_INVALID"));
                    if refused && slot.lock().expect("lock").is_none() {
                        self.inner()
                            .chunked
                            .lock()
                            .expect("lock")
                            .insert(self.host.clone(), true);
                        Err(ClientError::MonolithicRefused {
                            registry: self.name.clone(),
                            digest: digest.clone(),
                            status: status.as_u16(),
                        })
                    } else {
                        Err(err)
                    }
                }
                Err(e) => Err(self.send_error(&e)),
            }
        };
        match result {
            Ok(()) => Ok(()),
            Err(e) => {
                self.cancel_upload(repo, &url, &auth).await;
                match slot.lock().expect("lock").take() {
                    Some(source) => Err(ClientError::Body {
                        registry: self.name.clone(),
                        repository: repo.into(),
                        digest: digest.clone(),
                        source,
                    }),
                    None => Err(e),
                }
            }
        }
    }

    async fn push_chunked(
        &self,
        repo: &str,
        ctx: &Ctx<'_>,
        digest: &Digest,
        mut url: Url,
        mut auth: Option<HeaderValue>,
        mut stream: ByteStream,
    ) -> Result<(), ClientError> {
        let (key, _) = self.config(repo);
        let http = self.http(&key);
        let mut offset: u64 = 0;
        let mut buf = BytesMut::with_capacity(CHUNK_SIZE);
        let mut ended = false;
        while !ended {
            while buf.len() < CHUNK_SIZE {
                match stream.next().await {
                    Some(Ok(b)) => buf.extend_from_slice(&b),
                    Some(Err(e)) => {
                        return Err(ClientError::Body {
                            registry: self.name.clone(),
                            repository: repo.into(),
                            digest: digest.clone(),
                            source: e,
                        });
                    }
                    None => {
                        ended = true;
                        break;
                    }
                }
            }
            let chunk = if buf.len() > CHUNK_SIZE {
                buf.split_to(CHUNK_SIZE).freeze()
            } else {
                buf.split().freeze()
            };
            if chunk.is_empty() {
                continue;
            }
            let end = offset + chunk.len() as u64 - 1;
            let rb = http
                .patch(url.clone())
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .header(header::CONTENT_RANGE, format!("{offset}-{end}"))
                .header(header::CONTENT_LENGTH, chunk.len().to_string())
                .body(chunk.clone());
            let resp = self.send_authorized(rb, auth.as_ref()).await?;
            if resp.status() != StatusCode::ACCEPTED && !resp.status().is_success() {
                return Err(self.status_error(repo, resp, &ctx.what).await);
            }
            offset = end + 1;
            if resp.headers().contains_key(header::LOCATION) {
                (url, auth) = self.upload_target(repo, ctx, &resp).await?;
            }
        }
        let mut put = url;
        put.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let rb = http.put(put).header(header::CONTENT_LENGTH, "0");
        let resp = self.send_authorized(rb, auth.as_ref()).await?;
        if !resp.status().is_success() {
            return Err(self.status_error(repo, resp, &ctx.what).await);
        }
        Ok(())
    }

    /// Asks the registry to mount `digest` from `from_repo` into `repo` (the token asks for
    /// `pull` on `from_repo` too). 201 → [`MountResult::Mounted`]; 202 → the session it
    /// opened is cancelled and [`MountResult::NotMounted`] returned.
    pub async fn mount_blob(
        &self,
        repo: &str,
        digest: &Digest,
        from_repo: &str,
    ) -> Result<MountResult, ClientError> {
        let ctx = Ctx {
            repo,
            scopes: vec![Self::push_scope(repo), Self::pull_scope(from_repo)],
            what: format!("mounting blob {digest} from {from_repo} into {repo}"),
        };
        let query = format!("?mount={digest}&from={from_repo}");
        let resp = self.start_upload(repo, &ctx, &query).await?;
        match resp.status() {
            StatusCode::CREATED => Ok(MountResult::Mounted),
            StatusCode::ACCEPTED => {
                if let Ok((url, auth)) = self.upload_target(repo, &ctx, &resp).await {
                    self.cancel_upload(repo, &url, &auth).await;
                }
                Ok(MountResult::NotMounted)
            }
            _ => Err(self.status_error(repo, resp, &ctx.what).await),
        }
    }
}
