//! Blob uploads under `/v2/<name>/blobs/uploads/`: monolithic (`POST ?digest=`), `POST` +
//! `PUT`, chunked `PATCH` with `Content-Range`, streamed `PATCH`, status (`GET`), cancel
//! (`DELETE`), and mounts (`?mount=` with or without `from`).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::Response;
use berth_reference::Digest;
use berth_store::BlobWriter;
use serde_json::json;

use super::{Ctx, next_chunk, parse_digest};
use crate::auth::Action;
use crate::metrics::Metrics;
use crate::response::{ApiResult, empty};
use crate::{ApiError, Session, State};

fn upload_headers(name: &str, id: &str, size: u64) -> Vec<(&'static str, String)> {
    vec![
        ("Location", format!("/v2/{name}/blobs/uploads/{id}")),
        ("Docker-Upload-UUID", id.to_string()),
        ("Range", format!("0-{}", size.saturating_sub(1))),
    ]
}

/// Streams a request body into a writer, never holding more than one chunk.
async fn pump(st: &State, body: Body, w: &mut BlobWriter) -> Result<u64, ApiError> {
    let mut n = 0u64;
    let mut s = body.into_data_stream();
    while let Some(c) = next_chunk(
        &mut s,
        "BLOB_UPLOAD_INVALID",
        "the request body ended early",
    )
    .await?
    {
        w.write(&c).await.map_err(ApiError::internal)?;
        n += c.len() as u64;
        Metrics::add(&st.metrics.bytes_received, c.len() as u64);
    }
    // An upload session keeps no buffer between its requests.
    w.flush().await.map_err(ApiError::internal)?;
    Ok(n)
}

fn commit_error(e: berth_store::StoreError) -> ApiError {
    match e {
        berth_store::StoreError::DigestMismatch { expected, actual } => ApiError::digest_invalid(
            format!("the uploaded content has digest {actual}, not {expected}: nothing was stored"),
        )
        .detail(json!({ "expected": expected.to_string(), "actual": actual.to_string() })),
        berth_store::StoreError::Unsupported { digest } => {
            ApiError::digest_invalid(format!("{digest}: use sha256 or sha512"))
        }
        e => ApiError::internal(e),
    }
}

fn blob_created(name: &str, d: &Digest) -> Response {
    empty(
        StatusCode::CREATED,
        &[
            ("Location", format!("/v2/{name}/blobs/{d}")),
            ("Docker-Content-Digest", d.to_string()),
        ],
    )
}

/// `?mount=<digest>`: links a stored blob into the repository instead of uploading it.
/// With `from=<repo>`, only a blob of that repository (which the caller may pull); without
/// it, any stored blob: content is addressed by its digest and every user who may push may
/// also pull every repository, so the mount reveals nothing the caller could not read.
/// `false`: no mount, start an upload.
fn mount(cx: &Ctx<'_>, m: &str) -> Result<bool, ApiError> {
    let st = cx.st;
    let store = st.writable()?;
    let d = parse_digest(m)?;
    let source_has_it = match cx.query.get("from") {
        Some(from) => {
            berth_store::validate_repository(from).is_ok()
                && st
                    .auth
                    .authorize(cx.headers, st.tls, Some(from), Action::Pull)
                    .is_ok()
                && store.has_layer(from, &d)
        }
        None => store.blob_size(&d).is_some(),
    };
    Ok(source_has_it && store.link_layer(&cx.name, &d).map_err(ApiError::internal)?)
}

pub(crate) async fn start(cx: &Ctx<'_>, body: Body) -> ApiResult {
    let st = cx.st;
    let store = st.writable()?;
    let name = &cx.name;
    if let Some(m) = cx.query.get("mount")
        && mount(cx, m)?
    {
        return Ok(blob_created(name, &parse_digest(m)?));
    }
    if let Some(dg) = cx.query.get("digest") {
        let d = parse_digest(dg)?;
        let mut w = store.writer().await.map_err(ApiError::internal)?;
        pump(st, body, &mut w).await?;
        w.commit(&d, Some(name)).await.map_err(commit_error)?;
        return Ok(blob_created(name, &d));
    }
    let id = berth_store::random_id();
    let w = store.upload_writer(&id).await.map_err(ApiError::internal)?;
    st.uploads.lock().expect("lock").insert(
        id.clone(),
        Arc::new(tokio::sync::Mutex::new(Session {
            repo: name.to_string(),
            writer: Some(w),
            touched: Instant::now(),
        })),
    );
    Ok(empty(StatusCode::ACCEPTED, &upload_headers(name, &id, 0)))
}

fn session(st: &State, name: &str, id: &str) -> Result<Arc<tokio::sync::Mutex<Session>>, ApiError> {
    st.writable()?;
    let s = st
        .uploads
        .lock()
        .expect("lock")
        .get(id)
        .cloned()
        .ok_or_else(|| ApiError::upload_unknown(id))?;
    // The repository is checked under the async lock by callers that write; a session
    // belongs to the repository it was started in.
    if let Ok(g) = s.try_lock()
        && g.repo != name
    {
        return Err(ApiError::upload_unknown(id));
    }
    Ok(s)
}

/// The session `id` of repository `name`, locked for a write.
async fn locked(
    st: &State,
    name: &str,
    id: &str,
) -> Result<tokio::sync::OwnedMutexGuard<Session>, ApiError> {
    let g = session(st, name, id)?.lock_owned().await;
    if g.repo != name {
        return Err(ApiError::upload_unknown(id));
    }
    Ok(g)
}

/// `start-end` (also `bytes=start-end` / `bytes start-end/*`).
fn parse_content_range(v: &str) -> Option<(u64, u64)> {
    let v = v.trim();
    let v = v
        .strip_prefix("bytes=")
        .or_else(|| v.strip_prefix("bytes "))
        .unwrap_or(v);
    let v = v.split('/').next()?;
    let (a, b) = v.split_once('-')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

/// The `Content-Range` of a chunk, checked against what the upload holds: `416` (the
/// session kept, with its `Range`) when the chunk does not start where the upload ends.
fn chunk_range(cx: &Ctx<'_>, id: &str, w: &BlobWriter) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(v) = cx.headers.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let (a, b) = v
        .to_str()
        .ok()
        .and_then(parse_content_range)
        .filter(|(a, b)| b >= a)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "BLOB_UPLOAD_INVALID",
                "Content-Range must be `<start>-<end>` (inclusive byte offsets)",
            )
        })?;
    if a == w.size() {
        return Ok(Some((a, b)));
    }
    let mut e = ApiError::new(
        StatusCode::RANGE_NOT_SATISFIABLE,
        "BLOB_UPLOAD_INVALID",
        format!(
            "the chunk starts at byte {a}, but the upload has {} bytes: send the chunk that starts there",
            w.size()
        ),
    );
    for (k, v) in upload_headers(&cx.name, id, w.size()) {
        e = e.header(
            header::HeaderName::from_static(match k {
                "Location" => "location",
                "Docker-Upload-UUID" => "docker-upload-uuid",
                _ => "range",
            }),
            v,
        );
    }
    Err(e)
}

/// A chunk of `n` bytes that `Content-Range` said was another size cancels the upload.
fn check_chunk_length(
    st: &State,
    id: &str,
    range: Option<(u64, u64)>,
    n: u64,
) -> Result<(), ApiError> {
    match range {
        Some((a, b)) if b - a + 1 != n => {
            st.uploads.lock().expect("lock").remove(id);
            Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "BLOB_UPLOAD_INVALID",
                format!(
                    "Content-Range says {} bytes but the body had {n}; the upload was cancelled",
                    b - a + 1
                ),
            ))
        }
        _ => Ok(()),
    }
}

pub(crate) async fn patch(cx: &Ctx<'_>, id: &str, body: Body) -> ApiResult {
    let st = cx.st;
    let name = &cx.name;
    let mut g = locked(st, name, id).await?;
    g.touched = Instant::now();
    let w = g
        .writer
        .as_mut()
        .ok_or_else(|| ApiError::upload_unknown(id))?;
    let range = chunk_range(cx, id, w)?;
    let n = pump(st, body, w).await?;
    let size = w.size();
    drop(g);
    check_chunk_length(st, id, range, n)?;
    Ok(empty(StatusCode::ACCEPTED, &upload_headers(name, id, size)))
}

pub(crate) async fn finish(cx: &Ctx<'_>, id: &str, body: Body) -> ApiResult {
    let st = cx.st;
    let name = &cx.name;
    let mut g = locked(st, name, id).await?;
    let d = parse_digest(cx.query.get("digest").map(String::as_str).unwrap_or(""))?;
    let range = match g.writer.as_ref() {
        Some(w) => chunk_range(cx, id, w)?,
        None => return Err(ApiError::upload_unknown(id)),
    };
    let mut w = g
        .writer
        .take()
        .ok_or_else(|| ApiError::upload_unknown(id))?;
    st.uploads.lock().expect("lock").remove(id);
    let n = pump(st, body, &mut w).await?;
    check_chunk_length(st, id, range, n)?;
    w.commit(&d, Some(name)).await.map_err(commit_error)?;
    Ok(blob_created(name, &d))
}

pub(crate) async fn status(cx: &Ctx<'_>, id: &str) -> ApiResult {
    let s = session(cx.st, &cx.name, id)?;
    let size = s
        .lock()
        .await
        .writer
        .as_ref()
        .map(BlobWriter::size)
        .unwrap_or(0);
    Ok(empty(
        StatusCode::NO_CONTENT,
        &upload_headers(&cx.name, id, size),
    ))
}

pub(crate) fn cancel(cx: &Ctx<'_>, id: &str) -> ApiResult {
    session(cx.st, &cx.name, id)?;
    cx.st.uploads.lock().expect("lock").remove(id);
    Ok(empty(StatusCode::NO_CONTENT, &[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(parse_content_range("0-99"), Some((0, 99)));
        assert_eq!(parse_content_range("bytes=5-9"), Some((5, 9)));
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, 9)));
        assert_eq!(parse_content_range("5"), None);
    }
}
