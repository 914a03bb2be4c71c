//! A bundle served read-only as an OCI distribution registry: `/v2/`, manifests by tag or
//! digest (content negotiation on `Accept`), blobs with `Range`, tags lists and the catalog.
//! The bundle is first extracted (verified) into a temporary OCI layout ([`Extracted`]);
//! requests read files of that layout. Each repository serves only the manifests and blobs
//! its images reference.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io::SeekFrom;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_client::Manifest;
use berth_reference::{Digest, Reference};
use berth_transfer::manifest::{Parsed, parse};
use bytes::Bytes;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::{BundleError, Extracted};

/// Maps a source reference to the reference it is served as.
pub type NameFn = Box<dyn Fn(&Reference) -> Result<Reference, String> + Send + Sync>;

/// How images are named by the server.
pub struct ServeOptions {
    /// Maps an image's source reference to the reference it is served as (its path and tag
    /// or digest are used; its domain is ignored). Typically the rewrite function with the
    /// edge registry as `--local-registry`, so clients find images where the agent looks.
    pub name: NameFn,
}

#[derive(Default)]
struct Repo {
    tags: BTreeMap<String, Digest>,
    manifests: BTreeMap<Digest, String>,
    blobs: BTreeSet<Digest>,
}

struct Served {
    root: PathBuf,
    repos: BTreeMap<String, Repo>,
    _bundle: Arc<Extracted>,
}

fn blob_path(root: &std::path::Path, d: &Digest) -> PathBuf {
    root.join("blobs")
        .join(d.algorithm().as_str())
        .join(d.hex())
}

fn index(
    bundle: &Arc<Extracted>,
    opts: &ServeOptions,
) -> Result<BTreeMap<String, Repo>, BundleError> {
    let root = bundle.layout();
    let name = root.display().to_string();
    let mut repos: BTreeMap<String, Repo> = BTreeMap::new();
    for img in &bundle.contents.head.manifest.images {
        let src = Reference::parse(&img.source).map_err(|e| {
            BundleError::damaged(&name, "bundle.json", format!("image `{}`: {e}", img.source))
        })?;
        let served = (opts.name)(&src)
            .map_err(|e| BundleError::usage(&name, format!("{}: {e}", img.source)))?;
        let repo = repos.entry(served.path().to_string()).or_default();
        let top = Digest::parse(&img.digest).map_err(|e| {
            BundleError::damaged(&name, "bundle.json", format!("image `{}`: {e}", img.source))
        })?;
        if let Some(t) = served.tag() {
            repo.tags.insert(t.to_string(), top.clone());
        }
        let mut stack = vec![(top, img.media_type.clone())];
        while let Some((d, mt)) = stack.pop() {
            if repo.manifests.contains_key(&d) {
                continue;
            }
            let bytes = std::fs::read(blob_path(root, &d))
                .map_err(|e| BundleError::io(&name, format!("reading manifest {d}"), e))?;
            let mt = berth_client::media_type_from_json(&bytes).unwrap_or(mt);
            let m = Manifest {
                bytes: Bytes::from(bytes),
                media_type: mt.clone(),
                digest: d.clone(),
            };
            match parse(&m, &name, &img.source)
                .map_err(|e| BundleError::damaged(&name, crate::blob_entry(&d), e.to_string()))?
            {
                Parsed::Index(children) => {
                    for c in children {
                        let cmt = c
                            .media_type
                            .clone()
                            .unwrap_or_else(|| berth_client::OCI_MANIFEST.into());
                        stack.push((c.digest, cmt));
                    }
                }
                Parsed::Image(blobs) => repo.blobs.extend(blobs.into_iter().map(|b| b.digest)),
            }
            repo.manifests.insert(d, mt);
        }
    }
    Ok(repos)
}

/// The read-only registry API over `bundle`, as a router (to serve it with TLS, hand it to
/// a TLS-capable server such as `berth_registry::serve_app`).
pub fn router(bundle: Arc<Extracted>, opts: ServeOptions) -> Result<axum::Router, BundleError> {
    let repos = index(&bundle, &opts)?;
    let state = Arc::new(Served {
        root: bundle.layout().to_path_buf(),
        repos,
        _bundle: bundle,
    });
    Ok(axum::Router::new().fallback(handle).with_state(state))
}

/// Serves `bundle` over plain HTTP on `listener` until `shutdown` completes.
pub async fn serve(
    bundle: Arc<Extracted>,
    listener: tokio::net::TcpListener,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), BundleError> {
    let app = router(bundle, opts)?;
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| BundleError::io("serve", "serving", e))
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"errors": [{"code": code, "message": message}]}).to_string();
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (
                header::HeaderName::from_static("docker-distribution-api-version"),
                "registry/2.0",
            ),
        ],
        body,
    )
        .into_response()
}

fn json_response(v: serde_json::Value, extra: Option<(header::HeaderName, String)>) -> Response {
    let mut r = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response();
    api_header(r.headers_mut());
    if let Some((k, v)) = extra
        && let Ok(v) = HeaderValue::from_str(&v)
    {
        r.headers_mut().insert(k, v);
    }
    r
}

fn api_header(h: &mut HeaderMap) {
    h.insert(
        header::HeaderName::from_static("docker-distribution-api-version"),
        HeaderValue::from_static("registry/2.0"),
    );
}

/// `(start, end inclusive)` of a single `bytes=` range, or `None` for a full response.
/// `Err` when unsatisfiable.
fn range(h: &HeaderMap, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(v) = h.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None); // multiple ranges: answer with the whole blob
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 {
            return Err(());
        }
        (size.saturating_sub(n), size.checked_sub(1).ok_or(())?)
    } else {
        let s: u64 = a.parse().map_err(|_| ())?;
        let e: u64 = if b.is_empty() {
            size.checked_sub(1).ok_or(())?
        } else {
            b.parse::<u64>()
                .map_err(|_| ())?
                .min(size.saturating_sub(1))
        };
        (s, e)
    };
    if start > end || start >= size {
        return Err(());
    }
    Ok(Some((start, end)))
}

fn accepts(h: &HeaderMap, media_type: &str) -> bool {
    let values: Vec<&str> = h
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.split(';').next().unwrap_or("").trim())
        .filter(|t| !t.is_empty())
        .collect();
    values.is_empty()
        || values
            .iter()
            .any(|t| *t == media_type || *t == "*/*" || *t == "application/*")
}

async fn handle(State(s): State<Arc<Served>>, req: Request) -> Response {
    let method = req.method().clone();
    if method != Method::GET && method != Method::HEAD {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "this registry serves a bundle and is read-only",
        );
    }
    let head = method == Method::HEAD;
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let headers = req.headers().clone();
    let Some(rest) = path.strip_prefix("/v2/") else {
        if path == "/v2" {
            return json_response(json!({}), None);
        }
        return error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "not a registry API path",
        );
    };
    if rest.is_empty() {
        return json_response(json!({}), None);
    }
    if rest == "_catalog" {
        let (n, last) = pagination(&query);
        let all: Vec<&String> = s
            .repos
            .keys()
            .filter(|r| last.as_ref().is_none_or(|l| r.as_str() > l.as_str()))
            .collect();
        let page: Vec<&String> = all.iter().take(n).copied().collect();
        let link = (all.len() > n).then(|| {
            (
                header::LINK,
                format!(
                    "</v2/_catalog?n={n}&last={}>; rel=\"next\"",
                    page.last().map(|s| s.as_str()).unwrap_or("")
                ),
            )
        });
        return json_response(json!({"repositories": page}), link);
    }
    let find = |suffix: &str| -> Option<(String, String)> {
        let i = rest.rfind(suffix)?;
        Some((rest[..i].to_string(), rest[i + suffix.len()..].to_string()))
    };
    if let Some((repo, tail)) = find("/tags/list")
        && tail.is_empty()
    {
        let Some(r) = s.repos.get(&repo) else {
            return error(
                StatusCode::NOT_FOUND,
                "NAME_UNKNOWN",
                &format!("repository {repo} is not in the bundle"),
            );
        };
        let (n, last) = pagination(&query);
        let all: Vec<&String> = r
            .tags
            .keys()
            .filter(|t| last.as_ref().is_none_or(|l| t.as_str() > l.as_str()))
            .collect();
        let page: Vec<&String> = all.iter().take(n).copied().collect();
        return json_response(json!({"name": repo, "tags": page}), None);
    }
    if let Some((repo, reference)) = find("/manifests/") {
        let Some(r) = s.repos.get(&repo) else {
            return error(
                StatusCode::NOT_FOUND,
                "NAME_UNKNOWN",
                &format!("repository {repo} is not in the bundle"),
            );
        };
        let digest = match Digest::parse(&reference) {
            Ok(d) => Some(d),
            Err(_) => r.tags.get(&reference).cloned(),
        };
        let Some((digest, mt)) =
            digest.and_then(|d| r.manifests.get(&d).map(|mt| (d.clone(), mt.clone())))
        else {
            return error(
                StatusCode::NOT_FOUND,
                "MANIFEST_UNKNOWN",
                &format!("{repo}:{reference} is not in the bundle"),
            );
        };
        if !accepts(&headers, &mt) {
            return error(
                StatusCode::NOT_FOUND,
                "MANIFEST_UNKNOWN",
                &format!(
                    "{repo}:{reference} is a {mt}, which the Accept header does not list (the bundle serves manifests as they are)"
                ),
            );
        }
        let bytes = match tokio::fs::read(blob_path(&s.root, &digest)).await {
            Ok(b) => b,
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", &e.to_string()),
        };
        let len = bytes.len();
        let mut resp = Response::new(if head {
            Body::empty()
        } else {
            Body::from(bytes)
        });
        let h = resp.headers_mut();
        api_header(h);
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(&mt).unwrap_or(HeaderValue::from_static("application/json")),
        );
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        h.insert(
            "docker-content-digest",
            HeaderValue::from_str(&digest.to_string()).expect("digest"),
        );
        h.insert(
            header::ETAG,
            HeaderValue::from_str(&format!("\"{digest}\"")).expect("digest"),
        );
        return resp;
    }
    if let Some((repo, digest)) = find("/blobs/") {
        let Some(r) = s.repos.get(&repo) else {
            return error(
                StatusCode::NOT_FOUND,
                "NAME_UNKNOWN",
                &format!("repository {repo} is not in the bundle"),
            );
        };
        let d = match Digest::parse(&digest) {
            Ok(d) => d,
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "DIGEST_INVALID",
                    &format!("`{digest}` is not a digest"),
                );
            }
        };
        if !r.blobs.contains(&d) && !r.manifests.contains_key(&d) {
            return error(
                StatusCode::NOT_FOUND,
                "BLOB_UNKNOWN",
                &format!("blob {d} is not in {repo}"),
            );
        }
        let mut f = match tokio::fs::File::open(blob_path(&s.root, &d)).await {
            Ok(f) => f,
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", &e.to_string()),
        };
        let size = match f.metadata().await {
            Ok(m) => m.len(),
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", &e.to_string()),
        };
        let (status, start, len) = match range(&headers, size) {
            Ok(None) => (StatusCode::OK, 0, size),
            Ok(Some((a, b))) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
            Err(()) => {
                let mut r = error(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "RANGE_INVALID",
                    "the range is outside the blob",
                );
                r.headers_mut().insert(
                    header::CONTENT_RANGE,
                    HeaderValue::from_str(&format!("bytes */{size}")).expect("range"),
                );
                return r;
            }
        };
        let body = if head {
            Body::empty()
        } else {
            if start > 0
                && let Err(e) = f.seek(SeekFrom::Start(start)).await
            {
                return error(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", &e.to_string());
            }
            Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
                f.take(len),
                256 << 10,
            ))
        };
        let mut resp = Response::new(body);
        *resp.status_mut() = status;
        let h = resp.headers_mut();
        api_header(h);
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        h.insert(
            "docker-content-digest",
            HeaderValue::from_str(&d.to_string()).expect("digest"),
        );
        if status == StatusCode::PARTIAL_CONTENT {
            h.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes {start}-{}/{size}", start + len - 1))
                    .expect("range"),
            );
        }
        return resp;
    }
    error(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "not a registry API path",
    )
}

fn pagination(query: &str) -> (usize, Option<String>) {
    let mut n = usize::MAX;
    let mut last = None;
    for kv in query.split('&') {
        match kv.split_once('=') {
            Some(("n", v)) => n = v.parse().unwrap_or(usize::MAX).max(1),
            Some(("last", v)) => last = Some(v.to_string()),
            _ => {}
        }
    }
    (n, last)
}

/// Binds `addr` for [`serve`].
pub async fn listen(addr: std::net::SocketAddr) -> Result<tokio::net::TcpListener, BundleError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| BundleError::io("serve", format!("cannot listen on {addr}"), e))
}

/// Completes on Ctrl-C or SIGTERM (a graceful end of [`serve`], which removes the extracted
/// bundle).
pub async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
