//! `GET`/`HEAD`/`DELETE /v2/<name>/blobs/<digest>` (a pull-through miss goes upstream).

use axum::http::StatusCode;

use super::{Ctx, parse_digest};
use crate::ApiError;
use crate::content::serve_blob;
use crate::metrics::Metrics;
use crate::response::{ApiResult, empty};

pub(crate) async fn get(cx: &Ctx<'_>, digest: &str) -> ApiResult {
    let st = cx.st;
    let name = &cx.name;
    let d = parse_digest(digest)?;
    if let Some(u) = &cx.upstream {
        let store = st.writable()?;
        if !store.has_layer(name, &d) {
            return crate::proxy::get_blob(st, u, &d, cx.headers, cx.head).await;
        }
        Metrics::add(&st.metrics.cache_hits, 1);
    }
    let size = st
        .content
        .blob_size(name, &d)
        .ok_or_else(|| ApiError::blob_unknown(name, &d))?;
    serve_blob(st, &d, size, cx.headers, cx.head).await
}

pub(crate) fn delete(cx: &Ctx<'_>, digest: &str) -> ApiResult {
    let store = cx.st.writable()?;
    let d = parse_digest(digest)?;
    if store
        .unlink_layer(&cx.name, &d)
        .map_err(ApiError::internal)?
    {
        Ok(empty(StatusCode::ACCEPTED, &[]))
    } else {
        Err(ApiError::blob_unknown(&cx.name, &d))
    }
}
