//! The distribution API: routing of `/v2/<name>/...` and the handlers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use berth_reference::Digest;
use berth_store::{BlobWriter, ManifestPush, manifest};
use futures_util::StreamExt;
use serde_json::json;

use crate::auth::Action;
use crate::metrics::Metrics;
use crate::{ApiError, Session, State};

pub type Shared = Arc<State>;
type ApiResult = Result<Response, ApiError>;

/// The route of a request, for metrics and logs.
#[derive(Clone, Copy)]
pub struct RouteLabel(pub &'static str);

#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    Manifest { name: String, reference: String },
    Blob { name: String, digest: String },
    UploadStart { name: String },
    Upload { name: String, id: String },
    Tags { name: String },
    Referrers { name: String, digest: String },
}

impl Route {
    pub fn label(&self) -> &'static str {
        match self {
            Route::Manifest { .. } => "manifest",
            Route::Blob { .. } => "blob",
            Route::UploadStart { .. } | Route::Upload { .. } => "upload",
            Route::Tags { .. } => "tags",
            Route::Referrers { .. } => "referrers",
        }
    }
    pub fn name(&self) -> &str {
        match self {
            Route::Manifest { name, .. }
            | Route::Blob { name, .. }
            | Route::UploadStart { name }
            | Route::Upload { name, .. }
            | Route::Tags { name }
            | Route::Referrers { name, .. } => name,
        }
    }
}

/// Splits the path after `/v2/` (raw, not percent-decoded) into a route.
pub fn parse_route(rest: &str) -> Option<Route> {
    let parts: Vec<&str> = rest.split('/').collect();
    let n = parts.len();
    let name = |k: usize| parts[..n - k].join("/");
    if n >= 3 && parts[n - 2] == "tags" && parts[n - 1] == "list" {
        return Some(Route::Tags { name: name(2) });
    }
    if n >= 4 && parts[n - 3] == "blobs" && parts[n - 2] == "uploads" {
        let id = parts[n - 1];
        return Some(if id.is_empty() {
            Route::UploadStart { name: name(3) }
        } else {
            Route::Upload {
                name: name(3),
                id: id.to_string(),
            }
        });
    }
    if n >= 3 && parts[n - 2] == "blobs" && parts[n - 1] == "uploads" {
        return Some(Route::UploadStart { name: name(2) });
    }
    if n >= 3 && parts[n - 2] == "manifests" {
        return Some(Route::Manifest {
            name: name(2),
            reference: parts[n - 1].to_string(),
        });
    }
    if n >= 3 && parts[n - 2] == "blobs" {
        return Some(Route::Blob {
            name: name(2),
            digest: parts[n - 1].to_string(),
        });
    }
    if n >= 3 && parts[n - 2] == "referrers" {
        return Some(Route::Referrers {
            name: name(2),
            digest: parts[n - 1].to_string(),
        });
    }
    None
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match h {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Query parameters (last value wins).
pub fn query(q: Option<&str>) -> HashMap<String, String> {
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn with_label(mut r: Response, label: &'static str) -> Response {
    r.extensions_mut().insert(RouteLabel(label));
    r
}

fn empty(status: StatusCode, headers: &[(&str, String)]) -> Response {
    let mut r = (status, Body::empty()).into_response();
    for (k, v) in headers {
        if let Ok(n) = header::HeaderName::from_bytes(k.as_bytes()) {
            r.headers_mut().insert(n, hv(v));
        }
    }
    if !r.headers().contains_key(header::CONTENT_LENGTH) {
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    }
    r
}

/// Records metrics and a log line for every request.
pub async fn observe(AxState(st): AxState<Shared>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let start = Instant::now();
    let mut res = next.run(req).await;
    let route = res
        .extensions()
        .get::<RouteLabel>()
        .map(|r| r.0)
        .unwrap_or("other");
    let status = res.status().as_u16();
    st.metrics.request(method.as_str(), route, status);
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    if status >= 500 {
        tracing::warn!(%method, %path, route, status, ms, "request");
    } else {
        tracing::info!(%method, %path, route, status, ms, "request");
    }
    res.headers_mut().insert(
        "Docker-Distribution-API-Version",
        HeaderValue::from_static("registry/2.0"),
    );
    res
}

pub async fn base(AxState(st): AxState<Shared>, headers: HeaderMap) -> Response {
    let r = match st.auth.authorize(&headers, st.tls, None, Action::Pull) {
        Ok(_) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "{}",
        )
            .into_response(),
        Err(e) => e.into_response(),
    };
    with_label(r, "base")
}

pub async fn token(AxState(st): AxState<Shared>, headers: HeaderMap) -> Response {
    let r = match st.auth.issue_token(&headers, st.tls) {
        Ok(v) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            v.to_string(),
        )
            .into_response(),
        Err(e) => e.into_response(),
    };
    with_label(r, "token")
}

pub async fn metrics(AxState(st): AxState<Shared>) -> Response {
    let store = st.store.clone();
    let st2 = st.clone();
    let text = tokio::task::spawn_blocking(move || st2.metrics.render(&store))
        .await
        .unwrap_or_default();
    with_label(
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            text,
        )
            .into_response(),
        "metrics",
    )
}

/// One page of a list, and `(n, last)` for the next page's link.
type Page = (Vec<String>, Option<(usize, String)>);

fn paginate(items: Vec<String>, q: &HashMap<String, String>) -> Result<Page, ApiError> {
    let n = match q.get("n") {
        Some(n) => Some(n.parse::<usize>().map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "PAGINATION_NUMBER_INVALID",
                format!("`n={n}` is not a number"),
            )
        })?),
        None => None,
    };
    let mut it: Vec<String> = match q.get("last") {
        Some(last) => items
            .into_iter()
            .filter(|t| t.as_str() > last.as_str())
            .collect(),
        None => items,
    };
    match n {
        Some(n) if it.len() > n => {
            it.truncate(n);
            let last = it.last().cloned().unwrap_or_default();
            Ok((it, Some((n, last))))
        }
        _ => Ok((it, None)),
    }
}

pub async fn catalog(
    AxState(st): AxState<Shared>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let r = async {
        st.auth.authorize(&headers, st.tls, None, Action::Pull)?;
        let store = st.store.clone();
        let repos = tokio::task::spawn_blocking(move || store.repositories())
            .await
            .map_err(ApiError::internal)?;
        let (page, next) = paginate(repos, &query(uri.query()))?;
        let mut r = (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            json!({ "repositories": page }).to_string(),
        )
            .into_response();
        if let Some((n, last)) = next {
            r.headers_mut().insert(
                header::LINK,
                hv(&format!("</v2/_catalog?last={last}&n={n}>; rel=\"next\"")),
            );
        }
        Ok::<_, ApiError>(r)
    }
    .await
    .unwrap_or_else(|e| e.into_response());
    with_label(r, "catalog")
}

/// Everything under `/v2/<name>/`.
pub async fn dispatch(AxState(st): AxState<Shared>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let rest = parts.uri.path().strip_prefix("/v2/").unwrap_or("");
    let Some(route) = parse_route(rest) else {
        return with_label(
            ApiError::unsupported(format!(
                "`{}` is not a distribution API path",
                parts.uri.path()
            ))
            .into_response(),
            "other",
        );
    };
    let label = route.label();
    let r = handle(&st, route, &parts.method, &parts.uri, &parts.headers, body)
        .await
        .unwrap_or_else(|e| e.into_response());
    with_label(r, label)
}

async fn handle(
    st: &Shared,
    route: Route,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult {
    let q = query(uri.query());
    let mut name = route.name().to_string();
    if let Err(reason) = berth_store::validate_repository(&name) {
        return Err(ApiError::name_invalid(&name, &reason));
    }
    let action = match *method {
        Method::GET | Method::HEAD => Action::Pull,
        _ => Action::Push,
    };
    st.auth.authorize(headers, st.tls, Some(&name), action)?;
    // Pull-through: `?ns=<host>` or `/<project>/<host_port>/...` names an upstream.
    let upstream = match action {
        Action::Pull => st
            .proxy
            .as_ref()
            .and_then(|p| p.route(&name, q.get("ns").map(String::as_str))),
        Action::Push => None,
    };
    if let Some(u) = &upstream {
        name = u.local_name.clone();
    }
    match (route, method) {
        (Route::Manifest { reference, .. }, &Method::GET | &Method::HEAD) => {
            get_manifest(
                st,
                &name,
                &reference,
                headers,
                *method == Method::HEAD,
                upstream.as_ref(),
            )
            .await
        }
        (Route::Manifest { reference, .. }, &Method::PUT) => {
            put_manifest(st, &name, &reference, headers, body).await
        }
        (Route::Manifest { reference, .. }, &Method::DELETE) => {
            delete_manifest(st, &name, &reference).await
        }
        (Route::Blob { digest, .. }, &Method::GET | &Method::HEAD) => {
            get_blob(
                st,
                &name,
                &digest,
                headers,
                *method == Method::HEAD,
                upstream.as_ref(),
            )
            .await
        }
        (Route::Blob { digest, .. }, &Method::DELETE) => {
            let d = parse_digest(&digest)?;
            if st
                .store
                .unlink_layer(&name, &d)
                .map_err(ApiError::internal)?
            {
                Ok(empty(StatusCode::ACCEPTED, &[]))
            } else {
                Err(ApiError::blob_unknown(&name, &d))
            }
        }
        (Route::UploadStart { .. }, &Method::POST) => {
            start_upload(st, &name, &q, headers, body).await
        }
        (Route::Upload { id, .. }, &Method::PATCH) => {
            patch_upload(st, &name, &id, headers, body).await
        }
        (Route::Upload { id, .. }, &Method::PUT) => finish_upload(st, &name, &id, &q, body).await,
        (Route::Upload { id, .. }, &Method::GET) => {
            let s = session(st, &name, &id)?;
            let size = s
                .lock()
                .await
                .writer
                .as_ref()
                .map(BlobWriter::size)
                .unwrap_or(0);
            Ok(empty(
                StatusCode::NO_CONTENT,
                &upload_headers(&name, &id, size),
            ))
        }
        (Route::Upload { id, .. }, &Method::DELETE) => {
            session(st, &name, &id)?;
            st.uploads.lock().expect("lock").remove(&id);
            Ok(empty(StatusCode::NO_CONTENT, &[]))
        }
        (Route::Tags { .. }, &Method::GET) => {
            let tags = match &upstream {
                Some(u) => crate::proxy::tags(st, u).await?,
                None => st
                    .store
                    .tags(&name)
                    .ok_or_else(|| ApiError::name_unknown(&name))?,
            };
            let (page, next) = paginate(tags, &q)?;
            let mut r = (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                json!({ "name": name, "tags": page }).to_string(),
            )
                .into_response();
            if let Some((n, last)) = next {
                r.headers_mut().insert(
                    header::LINK,
                    hv(&format!(
                        "</v2/{name}/tags/list?last={last}&n={n}>; rel=\"next\""
                    )),
                );
            }
            Ok(r)
        }
        (Route::Referrers { digest, .. }, &Method::GET) => referrers(st, &name, &digest, &q),
        (_, m) => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            format!("{m} is not supported on this path"),
        )),
    }
}

fn parse_digest(s: &str) -> Result<Digest, ApiError> {
    Digest::parse(s).map_err(|e| ApiError::digest_invalid(e.to_string()))
}

/// The tag or digest `reference` in `name`, as a digest.
fn resolve(st: &State, name: &str, reference: &str) -> Result<Digest, ApiError> {
    if reference.contains(':') {
        return parse_digest(reference);
    }
    berth_store::validate_tag(reference)
        .map_err(|reason| ApiError::new(StatusCode::BAD_REQUEST, "TAG_INVALID", reason))?;
    st.store
        .resolve_tag(name, reference)
        .ok_or_else(|| ApiError::manifest_unknown(name, reference))
}

fn accepts(headers: &HeaderMap, media_type: &str) -> bool {
    let mut any = false;
    for v in headers.get_all(header::ACCEPT) {
        for t in v.to_str().unwrap_or("").split(',') {
            let t = t.split(';').next().unwrap_or("").trim();
            if t.is_empty() {
                continue;
            }
            any = true;
            if t == "*/*" || t.eq_ignore_ascii_case(media_type) {
                return true;
            }
        }
    }
    !any
}

pub(crate) fn manifest_response(
    st: &State,
    digest: &Digest,
    media_type: &str,
    bytes: Vec<u8>,
    head: bool,
) -> Response {
    let len = bytes.len();
    let mut r = if head {
        empty(StatusCode::OK, &[])
    } else {
        Metrics::add(&st.metrics.bytes_served, len as u64);
        (StatusCode::OK, bytes).into_response()
    };
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, hv(media_type));
    h.insert(header::CONTENT_LENGTH, hv(&len.to_string()));
    h.insert("Docker-Content-Digest", hv(&digest.to_string()));
    h.insert(header::ETAG, hv(&format!("\"{digest}\"")));
    r
}

async fn get_manifest(
    st: &Shared,
    name: &str,
    reference: &str,
    headers: &HeaderMap,
    head: bool,
    upstream: Option<&crate::proxy::UpstreamRoute>,
) -> ApiResult {
    if let Some(u) = upstream {
        return crate::proxy::get_manifest(st, u, reference, headers, head).await;
    }
    let digest = resolve(st, name, reference)?;
    serve_manifest(st, name, &digest, reference, headers, head).await
}

/// `MANIFEST_UNKNOWN` when the request's Accept header does not list `media_type`.
pub(crate) fn check_accept(
    headers: &HeaderMap,
    name: &str,
    reference: &str,
    media_type: &str,
) -> Result<(), ApiError> {
    if accepts(headers, media_type) {
        return Ok(());
    }
    Err(ApiError::manifest_unknown(name, reference).detail(json!({
        "reason": format!("the manifest is {media_type}, which the request's Accept header does not list"),
    })))
}

/// Serves stored manifest `digest` of `name` (requested as `reference`).
pub(crate) async fn serve_manifest(
    st: &State,
    name: &str,
    digest: &Digest,
    reference: &str,
    headers: &HeaderMap,
    head: bool,
) -> ApiResult {
    let media_type = st
        .store
        .manifest_type(name, digest)
        .ok_or_else(|| ApiError::manifest_unknown(name, reference))?;
    check_accept(headers, name, reference, &media_type)?;
    let bytes = read_manifest(st, digest).await?;
    Ok(manifest_response(st, digest, &media_type, bytes, head))
}

/// A stored manifest's bytes, checked against its digest (a damaged one is never served).
pub(crate) async fn read_manifest(st: &State, digest: &Digest) -> Result<Vec<u8>, ApiError> {
    let store = st.store.clone();
    let d = digest.clone();
    tokio::task::spawn_blocking(move || {
        let bytes = store.read_blob(&d).map_err(ApiError::internal)?;
        match berth_store::digest_like(&bytes, &d) {
            Ok(a) if a == d => Ok(bytes),
            _ => Err(ApiError::internal(format!(
                "stored manifest {d} is damaged; run `berth fsck` and push the image again"
            ))),
        }
    })
    .await
    .map_err(ApiError::internal)?
}

/// Reads a body of at most `limit` bytes.
pub(crate) async fn read_limited(body: Body, limit: usize) -> Result<Vec<u8>, ApiError> {
    let too_big = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "MANIFEST_INVALID",
            format!(
                "the manifest is larger than the limit of {limit} bytes (limits.manifest_bytes)"
            ),
        )
    };
    let mut out = Vec::new();
    let mut s = body.into_data_stream();
    while let Some(c) = s.next().await {
        let c = c.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "MANIFEST_INVALID",
                format!("reading the body: {e}"),
            )
        })?;
        if out.len() + c.len() > limit {
            return Err(too_big());
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

async fn put_manifest(
    st: &Shared,
    name: &str,
    reference: &str,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult {
    let limit = st.cfg.limits.manifest_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|l| l > limit) {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "MANIFEST_INVALID",
            format!(
                "the manifest is larger than the limit of {limit} bytes (limits.manifest_bytes)"
            ),
        ));
    }
    let bytes = read_limited(body, limit).await?;
    Metrics::add(&st.metrics.bytes_received, bytes.len() as u64);
    let (tag, wanted) = if reference.contains(':') {
        (None, Some(parse_digest(reference)?))
    } else {
        berth_store::validate_tag(reference)
            .map_err(|r| ApiError::new(StatusCode::BAD_REQUEST, "TAG_INVALID", r))?;
        (Some(reference), None)
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
    let media_type = match (content_type(headers), &refs.media_type) {
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
    let store = st.store.clone();
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
                blobs: &refs.blobs,
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

async fn delete_manifest(st: &Shared, name: &str, reference: &str) -> ApiResult {
    let deleted = if reference.contains(':') {
        let d = parse_digest(reference)?;
        st.store
            .delete_manifest(name, &d)
            .map_err(ApiError::internal)?
    } else {
        berth_store::validate_tag(reference)
            .map_err(|r| ApiError::new(StatusCode::BAD_REQUEST, "TAG_INVALID", r))?;
        st.store
            .delete_tag(name, reference)
            .map_err(ApiError::internal)?
    };
    if deleted {
        Ok(empty(StatusCode::ACCEPTED, &[]))
    } else {
        Err(ApiError::manifest_unknown(name, reference))
    }
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` → inclusive range, `Err` when unsatisfiable.
fn parse_range(v: &str, size: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = v.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None; // multiple ranges: serve the whole blob
    }
    let (a, b) = spec.split_once('-')?;
    let r = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            if n == 0 || size == 0 {
                return Some(Err(()));
            }
            (size.saturating_sub(n), size - 1)
        }
        (a, "") => (a.parse().ok()?, size.saturating_sub(1)),
        (a, b) => (
            a.parse().ok()?,
            b.parse::<u64>().ok()?.min(size.saturating_sub(1)),
        ),
    };
    if r.0 >= size || r.0 > r.1 {
        return Some(Err(()));
    }
    Some(Ok(r))
}

pub(crate) fn blob_head(digest: &Digest, len: u64) -> Vec<(&'static str, String)> {
    vec![
        ("Content-Type", "application/octet-stream".into()),
        ("Content-Length", len.to_string()),
        ("Docker-Content-Digest", digest.to_string()),
        ("Accept-Ranges", "bytes".into()),
        ("ETag", format!("\"{digest}\"")),
    ]
}

async fn get_blob(
    st: &Shared,
    name: &str,
    digest: &str,
    headers: &HeaderMap,
    head: bool,
    upstream: Option<&crate::proxy::UpstreamRoute>,
) -> ApiResult {
    let d = parse_digest(digest)?;
    if let Some(u) = upstream {
        if !st.store.has_layer(name, &d) {
            return crate::proxy::get_blob(st, u, &d, headers, head).await;
        }
        Metrics::add(&st.metrics.cache_hits, 1);
    }
    let size = match st.store.blob_size(&d) {
        Some(s) if st.store.has_layer(name, &d) || st.store.manifest_type(name, &d).is_some() => s,
        _ => return Err(ApiError::blob_unknown(name, &d)),
    };
    serve_blob_file(st, &d, size, headers, head).await
}

/// A stored blob, streamed from its file, with Range support.
pub(crate) async fn serve_blob_file(
    st: &State,
    d: &Digest,
    size: u64,
    headers: &HeaderMap,
    head: bool,
) -> ApiResult {
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_range(v, size));
    let (status, start, len) = match range {
        None => (StatusCode::OK, 0, size),
        Some(Ok((a, b))) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        Some(Err(())) => {
            return Err(ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "BLOB_UNKNOWN",
                format!("the requested range is outside blob {d} of {size} bytes"),
            )
            .header(header::CONTENT_RANGE, format!("bytes */{size}")));
        }
    };
    let mut hdrs = blob_head(d, len);
    if status == StatusCode::PARTIAL_CONTENT {
        hdrs.push((
            "Content-Range",
            format!("bytes {start}-{}/{size}", start + len - 1),
        ));
    }
    if head {
        return Ok(empty(
            status,
            &hdrs
                .iter()
                .map(|(k, v)| (*k, v.clone()))
                .collect::<Vec<_>>(),
        ));
    }
    let f =
        std::fs::File::open(st.store.blob_path(d)).map_err(|_| ApiError::blob_unknown("", d))?;
    Metrics::add(&st.metrics.bytes_served, len);
    let stream = file_stream(f, start, len);
    let mut r = (status, Body::from_stream(stream)).into_response();
    for (k, v) in hdrs {
        r.headers_mut().insert(k, hv(&v));
    }
    Ok(r)
}

/// The size of the reads that feed a blob's body: large, so that a blob takes few trips to
/// the blocking pool and few socket writes, yet small enough that a download holds little
/// memory (the chunk being sent and the one read ahead).
const BLOB_CHUNK: u64 = 1 << 20;

/// `len` bytes of `file` from `start`, in chunks of [`BLOB_CHUNK`] read with `pread` on the
/// blocking pool straight into the buffers that are sent, the next chunk read while the
/// current one is written. A file shorter than `len` ends the stream with an error (the
/// client sees a truncated body, never a short blob as a whole one).
fn file_stream(
    file: std::fs::File,
    start: u64,
    len: u64,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    type Read = tokio::task::JoinHandle<std::io::Result<bytes::Bytes>>;
    fn read(file: &Arc<std::fs::File>, pos: u64, left: u64) -> Option<Read> {
        if left == 0 {
            return None;
        }
        let n = left.min(BLOB_CHUNK) as usize;
        let f = file.clone();
        // Allocated here, on a runtime thread, where hyper frees it once sent: buffers
        // allocated on the many blocking-pool threads would each grow an allocator arena.
        let mut b = vec![0u8; n];
        Some(tokio::task::spawn_blocking(move || {
            std::os::unix::fs::FileExt::read_exact_at(&*f, &mut b, pos)?;
            Ok(bytes::Bytes::from(b))
        }))
    }
    let file = Arc::new(file);
    let first = read(&file, start, len);
    futures_util::stream::try_unfold(
        (file, first, start, len),
        |(file, pending, pos, left)| async move {
            let Some(pending) = pending else {
                return Ok(None);
            };
            let chunk = pending.await.map_err(std::io::Error::other)??;
            let n = chunk.len() as u64;
            let next = read(&file, pos + n, left - n);
            Ok(Some((chunk, (file, next, pos + n, left - n))))
        },
    )
}

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
    while let Some(c) = s.next().await {
        let c = c.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "BLOB_UPLOAD_INVALID",
                format!("the request body ended early: {e}"),
            )
        })?;
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

async fn start_upload(
    st: &Shared,
    name: &str,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult {
    if let (Some(m), Some(from)) = (q.get("mount"), q.get("from")) {
        let d = parse_digest(m)?;
        if berth_store::validate_repository(from).is_ok()
            && st
                .auth
                .authorize(headers, st.tls, Some(from), Action::Pull)
                .is_ok()
            && st.store.has_layer(from, &d)
            && st.store.link_layer(name, &d).map_err(ApiError::internal)?
        {
            return Ok(blob_created(name, &d));
        }
    }
    if let Some(dg) = q.get("digest") {
        let d = parse_digest(dg)?;
        let mut w = st.store.writer().await.map_err(ApiError::internal)?;
        pump(st, body, &mut w).await?;
        w.commit(&d, Some(name)).await.map_err(commit_error)?;
        return Ok(blob_created(name, &d));
    }
    let id = berth_store::random_id();
    let w = st
        .store
        .upload_writer(&id)
        .await
        .map_err(ApiError::internal)?;
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

async fn patch_upload(
    st: &Shared,
    name: &str,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult {
    let s = session(st, name, id)?;
    let mut g = s.lock().await;
    if g.repo != name {
        return Err(ApiError::upload_unknown(id));
    }
    g.touched = Instant::now();
    let w = g
        .writer
        .as_mut()
        .ok_or_else(|| ApiError::upload_unknown(id))?;
    let range = match headers.get(header::CONTENT_RANGE) {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(parse_content_range)
                .filter(|(a, b)| b >= a)
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "BLOB_UPLOAD_INVALID",
                        "Content-Range must be `<start>-<end>` (inclusive byte offsets)",
                    )
                })?,
        ),
        None => None,
    };
    if let Some((a, _)) = range
        && a != w.size()
    {
        let mut e = ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "BLOB_UPLOAD_INVALID",
            format!(
                "the chunk starts at byte {a}, but the upload has {} bytes: send the chunk that starts there",
                w.size()
            ),
        );
        for (k, v) in upload_headers(name, id, w.size()) {
            e = e.header(
                header::HeaderName::from_static(match k {
                    "Location" => "location",
                    "Docker-Upload-UUID" => "docker-upload-uuid",
                    _ => "range",
                }),
                v,
            );
        }
        return Err(e);
    }
    let n = pump(st, body, w).await?;
    if let Some((a, b)) = range
        && b - a + 1 != n
    {
        drop(g);
        st.uploads.lock().expect("lock").remove(id);
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "BLOB_UPLOAD_INVALID",
            format!(
                "Content-Range says {} bytes but the body had {n}; the upload was cancelled",
                b - a + 1
            ),
        ));
    }
    let size = w.size();
    Ok(empty(StatusCode::ACCEPTED, &upload_headers(name, id, size)))
}

async fn finish_upload(
    st: &Shared,
    name: &str,
    id: &str,
    q: &HashMap<String, String>,
    body: Body,
) -> ApiResult {
    let s = session(st, name, id)?;
    let mut g = s.lock().await;
    if g.repo != name {
        return Err(ApiError::upload_unknown(id));
    }
    let d = parse_digest(q.get("digest").map(String::as_str).unwrap_or(""))?;
    let mut w = g
        .writer
        .take()
        .ok_or_else(|| ApiError::upload_unknown(id))?;
    st.uploads.lock().expect("lock").remove(id);
    pump(st, body, &mut w).await?;
    w.commit(&d, Some(name)).await.map_err(commit_error)?;
    Ok(blob_created(name, &d))
}

fn referrers(st: &Shared, name: &str, digest: &str, q: &HashMap<String, String>) -> ApiResult {
    let subject = parse_digest(digest)?;
    let filter = q.get("artifactType").filter(|s| !s.is_empty());
    let mut manifests = vec![];
    for (d, mt) in st.store.referrers(name, &subject) {
        let Ok(bytes) = st.store.read_blob(&d) else {
            continue;
        };
        let refs = manifest::references(&bytes).unwrap_or_default();
        if let Some(f) = filter
            && refs.artifact_type.as_deref() != Some(f.as_str())
        {
            continue;
        }
        let mut desc = json!({ "mediaType": mt, "digest": d.to_string(), "size": bytes.len() });
        if let Some(a) = &refs.artifact_type {
            desc["artifactType"] = json!(a);
        }
        if let Some(a) = &refs.annotations {
            desc["annotations"] = a.clone();
        }
        manifests.push(desc);
    }
    let body = json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_INDEX,
        "manifests": manifests,
    });
    let mut r = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, manifest::OCI_INDEX)],
        body.to_string(),
    )
        .into_response();
    if filter.is_some() {
        r.headers_mut().insert(
            "OCI-Filters-Applied",
            HeaderValue::from_static("artifactType"),
        );
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            parse_route("a/b/manifests/v1"),
            Some(Route::Manifest {
                name: "a/b".into(),
                reference: "v1".into()
            })
        );
        assert_eq!(
            parse_route("a/blobs/uploads/"),
            Some(Route::UploadStart { name: "a".into() })
        );
        assert_eq!(
            parse_route("a/blobs/uploads/xyz"),
            Some(Route::Upload {
                name: "a".into(),
                id: "xyz".into()
            })
        );
        assert_eq!(
            parse_route("x/blobs/blobs/sha256:00"),
            Some(Route::Blob {
                name: "x/blobs".into(),
                digest: "sha256:00".into()
            })
        );
        assert_eq!(
            parse_route("a/tags/list"),
            Some(Route::Tags { name: "a".into() })
        );
        assert_eq!(parse_route("manifests/x"), None);
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some(Ok((0, 9))));
        assert_eq!(parse_range("bytes=90-", 100), Some(Ok((90, 99))));
        assert_eq!(parse_range("bytes=-10", 100), Some(Ok((90, 99))));
        assert_eq!(parse_range("bytes=95-200", 100), Some(Ok((95, 99))));
        assert_eq!(parse_range("bytes=100-", 100), Some(Err(())));
        assert_eq!(parse_content_range("0-99"), Some((0, 99)));
        assert_eq!(
            query(Some("a=%2e%2e&n=2")).get("a").map(String::as_str),
            Some("..")
        );
    }
}
