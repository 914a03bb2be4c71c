//! Listings that come in pages: `GET` the first, follow `Link: <...>; rel="next"`.

use super::*;

impl Registry {
    /// Every page of the listing at `first` (at most `max_pages` of them), each read by
    /// `parse` (whose `Err` is the detail of a [`ClientError::Protocol`]); `None` when the
    /// registry answers 404. `accept` is sent as `Accept` when given.
    pub(super) async fn get_pages<T>(
        &self,
        ctx: &Ctx<'_>,
        first: String,
        max_pages: usize,
        accept: Option<&str>,
        parse: impl Fn(&[u8]) -> Result<Vec<T>, String>,
    ) -> Result<Option<Vec<T>>, ClientError> {
        let mut out = Vec::new();
        let mut next = first;
        for _ in 0..max_pages {
            let resp = self
                .send(
                    ctx,
                    Method::GET,
                    |b| Self::url(b, &next),
                    |r| match accept {
                        Some(a) => r.header(header::ACCEPT, a),
                        None => r,
                    },
                )
                .await?;
            if resp.status() == StatusCode::NOT_FOUND {
                return Ok(None);
            }
            if !resp.status().is_success() {
                return Err(self.status_error(ctx.repo, resp, &ctx.what).await);
            }
            let link = next_link(resp.headers());
            let body = resp.bytes().await.map_err(|e| self.send_error(&e))?;
            let page = parse(&body).map_err(|detail| ClientError::Protocol {
                registry: self.name.clone(),
                what: ctx.what.clone(),
                detail,
            })?;
            out.extend(page);
            match link {
                Some(l) => next = l.trim_start_matches('/').to_string(),
                None => break,
            }
        }
        Ok(Some(out))
    }
}

/// The target of a `Link: <...>; rel="next"` header.
fn next_link(h: &HeaderMap) -> Option<String> {
    h.get(header::LINK)
        .and_then(|v| v.to_str().ok())
        .and_then(|l| {
            l.split_once('<')
                .and_then(|(_, r)| r.split_once('>'))
                .map(|(u, _)| u.to_string())
        })
}
