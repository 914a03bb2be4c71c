//! How the registry answers: headers, empty bodies, manifests, blobs with `Range`, `Accept`
//! negotiation and pagination links. The routes and the pull-through proxy build every
//! response here, whatever backend the content comes from, so `berth serve` and `berth
//! bundle serve` answer alike. Error bodies are [`ApiError`]'s.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_reference::Digest;
use serde_json::json;

use crate::ApiError;
use crate::metrics::Metrics;

pub(crate) type ApiResult = Result<Response, ApiError>;

/// The route of a request, for metrics and logs.
#[derive(Clone, Copy)]
pub(crate) struct RouteLabel(pub &'static str);

pub(crate) fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub(crate) fn with_label(mut r: Response, label: &'static str) -> Response {
    r.extensions_mut().insert(RouteLabel(label));
    r
}

/// A response without a body (`Content-Length: 0` unless `headers` set one).
pub(crate) fn empty(status: StatusCode, headers: &[(&str, String)]) -> Response {
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

/// `200` with a JSON body.
pub(crate) fn json_ok(v: &serde_json::Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

/// Whether the request's `Accept` header lists `media_type` (or a wildcard that covers it);
/// a request without one accepts anything.
pub(crate) fn accepts(headers: &HeaderMap, media_type: &str) -> bool {
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
            if let Some(top) = t.strip_suffix("/*")
                && media_type
                    .split_once('/')
                    .is_some_and(|(mt, _)| mt.eq_ignore_ascii_case(top))
            {
                return true;
            }
        }
    }
    !any
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

/// A manifest's answer: its exact bytes (none for `HEAD`) with its media type and digest.
pub(crate) fn manifest(
    metrics: &Metrics,
    digest: &Digest,
    media_type: &str,
    bytes: Vec<u8>,
    head: bool,
) -> Response {
    let len = bytes.len();
    let mut r = if head {
        empty(StatusCode::OK, &[])
    } else {
        Metrics::add(&metrics.bytes_served, len as u64);
        (StatusCode::OK, bytes).into_response()
    };
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, hv(media_type));
    h.insert(header::CONTENT_LENGTH, hv(&len.to_string()));
    h.insert("Docker-Content-Digest", hv(&digest.to_string()));
    h.insert(header::ETAG, hv(&format!("\"{digest}\"")));
    r
}

/// The headers of a blob's answer of `len` bytes.
pub(crate) fn blob_head(digest: &Digest, len: u64) -> Vec<(&'static str, String)> {
    vec![
        ("Content-Type", "application/octet-stream".into()),
        ("Content-Length", len.to_string()),
        ("Docker-Content-Digest", digest.to_string()),
        ("Accept-Ranges", "bytes".into()),
        ("ETag", format!("\"{digest}\"")),
    ]
}

/// What a `Range` header asks of a blob of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ByteRange {
    /// No range (or one this server answers with the whole blob: several ranges, another
    /// unit, a malformed header).
    Whole,
    /// Bytes `start..=end`.
    Part(u64, u64),
    /// Outside the blob: `416`.
    Unsatisfiable,
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n`.
pub(crate) fn parse_range(v: Option<&str>, size: u64) -> ByteRange {
    let Some(spec) = v.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return ByteRange::Whole;
    };
    if spec.contains(',') {
        return ByteRange::Whole; // several ranges: serve the whole blob
    }
    let Some((a, b)) = spec.split_once('-') else {
        return ByteRange::Whole;
    };
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let Ok(n) = n.parse::<u64>() else {
                return ByteRange::Whole;
            };
            if n == 0 || size == 0 {
                return ByteRange::Unsatisfiable;
            }
            (size.saturating_sub(n), size - 1)
        }
        (a, b) => {
            let Ok(start) = a.parse::<u64>() else {
                return ByteRange::Whole;
            };
            let end = if b.is_empty() {
                size.saturating_sub(1)
            } else {
                match b.parse::<u64>() {
                    Ok(e) if e < start => return ByteRange::Unsatisfiable,
                    Ok(e) => e.min(size.saturating_sub(1)),
                    Err(_) => return ByteRange::Whole,
                }
            };
            (start, end)
        }
    };
    if start >= size || start > end {
        return ByteRange::Unsatisfiable;
    }
    ByteRange::Part(start, end)
}

/// A blob of `size` bytes from `file` (none for `HEAD`), the part the `Range` header asks
/// for (`206`) or `416` with `Content-Range: bytes */size`.
pub(crate) fn blob(
    metrics: &Metrics,
    d: &Digest,
    file: std::fs::File,
    size: u64,
    headers: &HeaderMap,
    head: bool,
) -> ApiResult {
    let range = parse_range(
        headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
        size,
    );
    let (status, start, len) = match range {
        ByteRange::Whole => (StatusCode::OK, 0, size),
        ByteRange::Part(a, b) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        ByteRange::Unsatisfiable => {
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
        return Ok(empty(status, &hdrs));
    }
    Metrics::add(&metrics.bytes_served, len);
    let mut r = (status, Body::from_stream(file_stream(file, start, len))).into_response();
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

/// One page of a sorted list (`n`, `last`), and the `Link` to the next page at `path`.
pub(crate) fn page(
    items: Vec<String>,
    q: &HashMap<String, String>,
    path: &str,
) -> Result<(Vec<String>, Option<HeaderValue>), ApiError> {
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
            Ok((
                it,
                Some(hv(&format!("<{path}?last={last}&n={n}>; rel=\"next\""))),
            ))
        }
        _ => Ok((it, None)),
    }
}

/// A JSON list page with its `Link` to the next one.
pub(crate) fn listing(body: &serde_json::Value, next: Option<HeaderValue>) -> Response {
    let mut r = json_ok(body);
    if let Some(l) = next {
        r.headers_mut().insert(header::LINK, l);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use ByteRange::*;
        let r = |v: &str, size| parse_range(Some(v), size);
        assert_eq!(r("bytes=0-9", 100), Part(0, 9));
        assert_eq!(r("bytes=90-", 100), Part(90, 99));
        assert_eq!(r("bytes=-10", 100), Part(90, 99));
        assert_eq!(r("bytes=-500", 100), Part(0, 99));
        assert_eq!(r("bytes=95-200", 100), Part(95, 99));
        assert_eq!(r("bytes=100-", 100), Unsatisfiable);
        assert_eq!(r("bytes=50-0", 100), Unsatisfiable);
        assert_eq!(r("bytes=-0", 100), Unsatisfiable);
        assert_eq!(r("bytes=0-0", 0), Unsatisfiable);
        assert_eq!(r("bytes=0-1,5-6", 100), Whole);
        assert_eq!(r("items=0-1", 100), Whole);
        assert_eq!(r("bytes=x-1", 100), Whole);
        assert_eq!(parse_range(None, 100), Whole);
    }

    #[test]
    fn accept() {
        let mut h = HeaderMap::new();
        assert!(accepts(&h, "application/vnd.oci.image.index.v1+json"));
        h.append(
            header::ACCEPT,
            hv("application/vnd.oci.image.manifest.v1+json; q=0.9"),
        );
        assert!(accepts(&h, "application/vnd.oci.image.manifest.v1+json"));
        assert!(!accepts(&h, "application/vnd.oci.image.index.v1+json"));
        h.append(header::ACCEPT, hv("application/*"));
        assert!(accepts(&h, "application/vnd.oci.image.index.v1+json"));
    }
}
