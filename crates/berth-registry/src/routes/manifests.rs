//! `GET`/`HEAD`/`PUT`/`DELETE /v2/<name>/manifests/<reference>` (a tag or a digest).
//!
//! A reference that is neither a digest nor a valid tag names no manifest: reads and deletes
//! answer `404 MANIFEST_UNKNOWN` (as the conformance suite expects), a push `400 TAG_INVALID`.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use berth_reference::Digest;
use berth_store::{ManifestPush, manifest};
use serde_json::json;

use super::{Ctx, next_chunk, parse_digest};
use crate::ApiError;
use crate::content::serve_manifest;
use crate::metrics::Metrics;
use crate::response::{ApiResult, empty};

/// What a manifest reference names.
pub(crate) enum Reference {
    Digest(Digest),
    Tag,
}

/// A digest (it has a `:`) or a tag; `Err(reason)` when it is neither.
pub(crate) fn classify(reference: &str) -> Result<Reference, ApiError> {
    if reference.contains(':') {
        return parse_digest(reference).map(Reference::Digest);
    }
    berth_store::validate_tag(reference)
        .map(|()| Reference::Tag)
        .map_err(|reason| ApiError::new(StatusCode::BAD_REQUEST, "TAG_INVALID", reason))
}

/// For reads and deletes: a reference that cannot name a manifest names none (`404`).
fn lookup(name: &str, reference: &str) -> Result<Reference, ApiError> {
    match classify(reference) {
        Err(e) if e.code == "TAG_INVALID" => Err(ApiError::manifest_unknown(name, reference)
            .detail(json!({ "name": name, "reference": reference, "reason": e.message }))),
        r => r,
    }
}

pub(crate) async fn get(cx: &Ctx<'_>, reference: &str) -> ApiResult {
    let st = cx.st;
    let name = &cx.name;
    let kind = lookup(name, reference)?;
    if let Some(u) = &cx.upstream {
        return crate::proxy::get_manifest(st, u, reference, cx.headers, cx.head).await;
    }
    let digest = match kind {
        Reference::Digest(d) => d,
        Reference::Tag => st
            .content
            .resolve_tag(name, reference)
            .ok_or_else(|| ApiError::manifest_unknown(name, reference))?,
    };
    serve_manifest(st, name, &digest, reference, cx.headers, cx.head).await
}

pub(crate) async fn delete(cx: &Ctx<'_>, reference: &str) -> ApiResult {
    let store = cx.st.writable()?;
    let name = &cx.name;
    let deleted = match lookup(name, reference)? {
        Reference::Digest(d) => store.delete_manifest(name, &d),
        Reference::Tag => store.delete_tag(name, reference),
    }
    .map_err(ApiError::internal)?;
    if deleted {
        Ok(empty(StatusCode::ACCEPTED, &[]))
    } else {
        Err(ApiError::manifest_unknown(name, reference))
    }
}

fn too_big(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "MANIFEST_INVALID",
        format!("the manifest is larger than the limit of {limit} bytes (limits.manifest_bytes)"),
    )
}

/// Reads a body of at most `limit` bytes.
async fn read_limited(body: Body, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    let mut s = body.into_data_stream();
    while let Some(c) = next_chunk(&mut s, "MANIFEST_INVALID", "reading the body").await? {
        if out.len() + c.len() > limit {
            return Err(too_big(limit));
        }
        out.extend_from_slice(&c);
    }
    Ok(out)
}

fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_string())
        .filter(|v| !v.is_empty())
}

pub(crate) async fn put(cx: &Ctx<'_>, reference: &str, body: Body) -> ApiResult {
    let st = cx.st;
    let store = st.writable()?;
    let name = &cx.name;
    let limit = st.cfg.limits.manifest_bytes;
    let declared = cx
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|l| l > limit) {
        return Err(too_big(limit));
    }
    let bytes = read_limited(body, limit).await?;
    Metrics::add(&st.metrics.bytes_received, bytes.len() as u64);
    let (tag, wanted) = match classify(reference)? {
        Reference::Digest(d) => (None, Some(d)),
        Reference::Tag => (Some(reference), None),
    };
    let digest = match &wanted {
        Some(w) => {
            let d = berth_store::digest_like(&bytes, w)
                .map_err(|e| ApiError::digest_invalid(e.to_string()))?;
            if &d != w {
                return Err(ApiError::digest_invalid(format!(
                    "the manifest's digest is {d}, not {w} as the URL says"
                )));
            }
            d
        }
        None => berth_store::sha256(&bytes),
    };
    let invalid = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "MANIFEST_INVALID", m);
    let refs = manifest::references(&bytes).map_err(|e| invalid(e.to_string()))?;
    let media_type = match (content_type(cx.headers), &refs.media_type) {
        (Some(h), Some(j)) if &h != j && h != "application/json" => {
            return Err(invalid(format!(
                "the Content-Type is {h} but the manifest's mediaType is {j}"
            )));
        }
        (_, Some(j)) => j.clone(),
        (Some(h), None) if h != "application/json" => h,
        _ => {
            if refs.manifests.is_empty() {
                manifest::OCI_MANIFEST.to_string()
            } else {
                manifest::OCI_INDEX.to_string()
            }
        }
    };
    if !manifest::MANIFEST_TYPES.contains(&media_type.as_str()) {
        return Err(invalid(format!(
            "`{media_type}` is not a manifest media type this registry stores ({})",
            manifest::MANIFEST_TYPES.join(", ")
        )));
    }
    // Non-distributable layers are fetched from their `urls`: a push need not include them.
    let required: Vec<Digest> = refs
        .blobs
        .iter()
        .filter(|b| !refs.foreign.contains(b))
        .cloned()
        .collect();
    let store = store.clone();
    let repo = name.to_string();
    let tag = tag.map(String::from);
    let d2 = digest.clone();
    let subject = refs.subject.clone();
    let res = tokio::task::spawn_blocking(move || {
        store.put_manifest(
            &repo,
            &ManifestPush {
                digest: &d2,
                bytes: &bytes,
                media_type: &media_type,
                tag: tag.as_deref(),
                subject: subject.as_ref(),
                blobs: &required,
                manifests: &refs.manifests,
            },
        )
    })
    .await
    .map_err(ApiError::internal)?;
    match res {
        Ok(()) => {}
        Err(Ok(missing)) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "MANIFEST_BLOB_UNKNOWN",
                format!("the manifest refers to {missing}, which is not in repository `{name}`: push it first"),
            )
            .detail(json!({ "digest": missing.to_string() })));
        }
        Err(Err(e)) => return Err(ApiError::internal(e)),
    }
    let mut h = vec![
        ("Location", format!("/v2/{name}/manifests/{digest}")),
        ("Docker-Content-Digest", digest.to_string()),
    ];
    if let Some(s) = &refs.subject {
        h.push(("OCI-Subject", s.to_string()));
    }
    Ok(empty(StatusCode::CREATED, &h))
}
