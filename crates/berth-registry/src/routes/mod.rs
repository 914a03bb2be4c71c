//! The distribution API: `/v2/<name>/...` split into routes, one module per route family
//! (handlers), on the content services ([`crate::content`]), the pull-through proxy and the
//! store. Every answer is built by [`crate::response`].

mod base;
mod blobs;
mod catalog;
mod manifests;
mod referrers;
mod tags;
mod uploads;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State as AxState};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use berth_reference::Digest;
use futures_util::StreamExt;

pub(crate) use base::{base, metrics, observe, token};
pub(crate) use catalog::catalog;

use crate::auth::Action;
use crate::proxy::UpstreamRoute;
use crate::response::{ApiResult, with_label};
use crate::{ApiError, State};

pub(crate) type Shared = Arc<State>;

/// The next chunk of a request body; a body that breaks off is a 400 with `code`, its
/// message `what` and the cause.
async fn next_chunk(
    s: &mut axum::body::BodyDataStream,
    code: &'static str,
    what: &str,
) -> Result<Option<bytes::Bytes>, ApiError> {
    match s.next().await {
        None => Ok(None),
        Some(c) => c
            .map(Some)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, code, format!("{what}: {e}"))),
    }
}

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
pub(crate) fn query(q: Option<&str>) -> HashMap<String, String> {
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

pub(crate) fn parse_digest(s: &str) -> Result<Digest, ApiError> {
    Digest::parse(s).map_err(|e| ApiError::digest_invalid(e.to_string()))
}

/// What a request is about, once routed, authorized and (for a pull-through) redirected to
/// the repository that caches it.
pub(crate) struct Ctx<'a> {
    pub st: &'a Shared,
    /// The repository in this registry.
    pub name: String,
    pub headers: &'a HeaderMap,
    pub query: HashMap<String, String>,
    pub head: bool,
    /// Where a pull goes upstream (pull-through caching).
    pub upstream: Option<UpstreamRoute>,
}

/// Everything under `/v2/<name>/`.
pub(crate) async fn dispatch(AxState(st): AxState<Shared>, req: Request) -> Response {
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
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult {
    let name = route.name().to_string();
    if let Err(reason) = berth_store::validate_repository(&name) {
        return Err(ApiError::name_invalid(&name, &reason));
    }
    let action = match *method {
        Method::GET | Method::HEAD => Action::Pull,
        _ => Action::Push,
    };
    st.auth.authorize(headers, st.tls, Some(&name), action)?;
    let q = query(uri.query());
    // Pull-through: `?ns=<host>` or `/<project>/<host_port>/...` names an upstream.
    let upstream = match action {
        Action::Pull => st
            .proxy
            .as_ref()
            .and_then(|p| p.route(&name, q.get("ns").map(String::as_str))),
        Action::Push => None,
    };
    let name = upstream.as_ref().map_or(name, |u| u.local_name.clone());
    // `Cache-Control: only-if-cached` (RFC 9111): answer from the store only, never from
    // upstream. Mirror and verify read their targets so, so that seeding the edge registry
    // stores what it would otherwise only fetch on demand (a miss is a 404).
    let local_only = cache_directive(headers, "only-if-cached");
    let upstream = upstream.filter(|_| !local_only);
    // Stored means servable without upstream: a manifest whose blobs (or, for an index,
    // child manifests) are not all here too is not answered as stored. A pull-through
    // cache holds manifests it fetched for a client before their blobs.
    if local_only && let (Route::Manifest { reference, .. }, Some(store)) = (&route, st.store()) {
        let digest = match Digest::parse(reference) {
            Ok(d) => Some(d),
            Err(_) => store.resolve_tag(&name, reference),
        };
        if let Some(d) = digest
            && !stored_whole(store, &name, &d, 0)
        {
            return Err(ApiError::manifest_unknown(&name, reference));
        }
    }
    let cx = Ctx {
        st,
        name,
        headers,
        query: q,
        head: *method == Method::HEAD,
        upstream,
    };
    match (route, method) {
        (Route::Manifest { reference, .. }, &Method::GET | &Method::HEAD) => {
            manifests::get(&cx, &reference).await
        }
        (Route::Manifest { reference, .. }, &Method::PUT) => {
            manifests::put(&cx, &reference, body).await
        }
        (Route::Manifest { reference, .. }, &Method::DELETE) => {
            manifests::delete(&cx, &reference).await
        }
        (Route::Blob { digest, .. }, &Method::GET | &Method::HEAD) => {
            blobs::get(&cx, &digest).await
        }
        (Route::Blob { digest, .. }, &Method::DELETE) => blobs::delete(&cx, &digest),
        (Route::UploadStart { .. }, &Method::POST) => uploads::start(&cx, body).await,
        (Route::Upload { id, .. }, &Method::PATCH) => uploads::patch(&cx, &id, body).await,
        (Route::Upload { id, .. }, &Method::PUT) => uploads::finish(&cx, &id, body).await,
        (Route::Upload { id, .. }, &Method::GET) => uploads::status(&cx, &id).await,
        (Route::Upload { id, .. }, &Method::DELETE) => uploads::cancel(&cx, &id),
        (Route::Tags { .. }, &Method::GET) => tags::list(&cx).await,
        (Route::Referrers { digest, .. }, &Method::GET) => referrers::list(&cx, &digest).await,
        (_, m) => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            format!("{m} is not supported on this path"),
        )),
    }
}

/// Whether manifest `d` of `repo` is in the store with everything it refers to.
fn stored_whole(store: &berth_store::Store, repo: &str, d: &Digest, depth: u8) -> bool {
    if depth > 4 || store.manifest_type(repo, d).is_none() {
        return false;
    }
    let Ok(refs) = store
        .read_blob(d)
        .map_err(|_| ())
        .and_then(|b| berth_store::manifest::references(&b).map_err(|_| ()))
    else {
        return false;
    };
    refs.blobs
        .iter()
        .all(|b| refs.foreign.contains(b) || store.blob_size(b).is_some())
        && refs
            .manifests
            .iter()
            .all(|m| stored_whole(store, repo, m, depth + 1))
}

/// Whether the request's `Cache-Control` has `directive`: `only-if-cached` (stored content
/// only), `no-store` (a pull-through answer is not kept).
pub(crate) fn cache_directive(headers: &HeaderMap, directive: &str) -> bool {
    headers
        .get_all(axum::http::header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|d| d.trim().eq_ignore_ascii_case(directive))
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
    fn queries() {
        assert_eq!(
            query(Some("a=%2e%2e&n=2")).get("a").map(String::as_str),
            Some("..")
        );
    }
}
