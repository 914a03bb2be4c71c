//! Pull-through manifests: served from the cache while fresh, else fetched upstream,
//! answered from memory and stored behind the answer.

use std::sync::Arc;
use std::time::Instant;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use berth_client::{ClientError, MANIFEST_ACCEPT};
use berth_reference::Digest;
use berth_store::{ManifestPush, manifest};

use super::{Proxy, UpstreamRoute, proxy_of, upstream_error};
use crate::content::serve_manifest;
use crate::metrics::Metrics;
use crate::{ApiError, State, response};

/// The references of a manifest fetched from upstream; `MANIFEST_INVALID` (502) when it is
/// not a manifest this registry stores.
fn check_manifest(
    u: &UpstreamRoute,
    m: &berth_client::Manifest,
) -> Result<manifest::ManifestRefs, ApiError> {
    let refs = manifest::references(&m.bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "MANIFEST_INVALID",
            format!("upstream {} served an invalid manifest: {e}", u.registry),
        )
    })?;
    if !manifest::MANIFEST_TYPES.contains(&m.media_type.as_str()) {
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "MANIFEST_INVALID",
            format!(
                "upstream {} served `{}`, which this registry does not store",
                u.registry, m.media_type
            ),
        ));
    }
    Ok(refs)
}

/// Whether the client asked that nothing of the answer be stored (`Cache-Control: no-store`).
fn no_store(headers: &HeaderMap) -> bool {
    crate::routes::cache_directive(headers, "no-store")
}

/// Whether manifest `d` is in `name`, once a store of it in progress has finished.
async fn stored(st: &State, p: &Proxy, name: &str, d: &Digest) -> bool {
    if st.content.manifest_type(name, d).is_some() {
        return true;
    }
    let pending = p.flights.lock().expect("lock").get(d).cloned();
    if let Some(f) = pending {
        let _done = f.lock().await;
    }
    st.content.manifest_type(name, d).is_some()
}

/// Answers with a manifest fetched from upstream, from memory (its digest is that of these
/// bytes: computed for a tag, checked for a digest), and stores it (an index with its child
/// manifests, a tag with its digest) in the background, so the client does not wait for
/// the store's fsyncs. Requests for the digest meanwhile wait for the store to finish; a
/// tag counts as re-checked once it is stored. A request with `Cache-Control: no-store`
/// (RFC 9111) is answered and nothing is stored.
#[allow(clippy::too_many_arguments)]
fn answer_and_store(
    st: &Arc<State>,
    p: &Proxy,
    u: &UpstreamRoute,
    m: berth_client::Manifest,
    tag: Option<&str>,
    reference: &str,
    headers: &HeaderMap,
    head: bool,
) -> Result<Response, ApiError> {
    check_manifest(u, &m)?;
    response::check_accept(headers, &u.local_name, reference, &m.media_type)?;
    let r = response::manifest(
        &st.metrics,
        &m.digest,
        &m.media_type,
        m.bytes.to_vec(),
        head,
    );
    if no_store(headers) {
        return Ok(r);
    }
    let flight = p.flight(&m.digest);
    // Taken now (it is new, or the one of a store in progress), so that a request that
    // comes after this answer waits for this store.
    let guard = flight.clone().try_lock_owned();
    let st = st.clone();
    let u = u.clone();
    let tag = tag.map(String::from);
    tokio::spawn(async move {
        let _guard = match guard {
            Ok(g) => g,
            Err(_) => flight.lock_owned().await,
        };
        let Some(p) = st.proxy.as_ref() else {
            return;
        };
        let d = m.digest.clone();
        match store_manifest(&st, p, &u, m, tag.as_deref()).await {
            Ok(()) => {
                if let Some(t) = tag {
                    p.checked
                        .lock()
                        .expect("lock")
                        .insert((u.local_name.clone(), t), Instant::now());
                }
            }
            Err(e) => {
                tracing::warn!(repository = %u.local_name, digest = %d, error = %e.message, "storing a pulled-through manifest failed")
            }
        }
        p.flights.lock().expect("lock").remove(&d);
    });
    Ok(r)
}

/// Stores a fetched manifest (and, for an index, every child manifest) in `u.local_name`.
async fn store_manifest(
    st: &Arc<State>,
    p: &Proxy,
    u: &UpstreamRoute,
    m: berth_client::Manifest,
    tag: Option<&str>,
) -> Result<(), ApiError> {
    let refs = check_manifest(u, &m)?;
    let (reg, repo) = p.upstream(u);
    for child in &refs.manifests {
        if st.content.manifest_type(&u.local_name, child).is_some() {
            continue;
        }
        let c = reg
            .get_manifest(&repo, &child.to_string(), MANIFEST_ACCEPT)
            .await
            .map_err(|e| upstream_error(st, u, &e))?;
        Box::pin(store_manifest(st, p, u, c, None)).await?;
    }
    let store = st.writable()?.clone();
    let local = u.local_name.clone();
    let tag = tag.map(String::from);
    let res = tokio::task::spawn_blocking(move || {
        store.put_manifest(
            &local,
            &ManifestPush {
                digest: &m.digest,
                bytes: &m.bytes,
                media_type: &m.media_type,
                tag: tag.as_deref(),
                subject: refs.subject.as_ref(),
                // Blobs are fetched on their own miss.
                blobs: &[],
                manifests: &refs.manifests,
            },
        )
    })
    .await
    .map_err(ApiError::internal)?;
    match res {
        Ok(()) => Ok(()),
        Err(Ok(missing)) => Err(ApiError::internal(format!(
            "child manifest {missing} of an upstream index was not stored"
        ))),
        Err(Err(e)) => Err(ApiError::internal(e)),
    }
}

/// Answers a pull of manifest `reference` (a digest or a valid tag) through `u`.
pub(crate) async fn get_manifest(
    st: &Arc<State>,
    u: &UpstreamRoute,
    reference: &str,
    headers: &HeaderMap,
    head: bool,
) -> Result<Response, ApiError> {
    let p = proxy_of(st)?;
    let name = &u.local_name;
    if let Ok(d) = Digest::parse(reference) {
        if stored(st, p, name, &d).await {
            Metrics::add(&st.metrics.cache_hits, 1);
            return serve_manifest(st, name, &d, reference, headers, head).await;
        }
        Metrics::add(&st.metrics.cache_misses, 1);
        let (reg, repo) = p.upstream(u);
        let m = reg
            .get_manifest(&repo, reference, MANIFEST_ACCEPT)
            .await
            .map_err(|e| upstream_error(st, u, &e))?;
        if m.digest != d {
            return Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "MANIFEST_INVALID",
                format!("upstream {} served {} for {d}", u.registry, m.digest),
            ));
        }
        return answer_and_store(st, p, u, m, None, reference, headers, head);
    }
    // Not a digest: a valid tag (the route checked).
    let key = (name.clone(), reference.to_string());
    let cached = st.writable()?.resolve_tag(name, reference);
    if let Some(d) = &cached {
        let fresh = p
            .checked
            .lock()
            .expect("lock")
            .get(&key)
            .is_some_and(|t| t.elapsed() < p.tag_ttl);
        if fresh && st.content.manifest_type(name, d).is_some() {
            Metrics::add(&st.metrics.cache_hits, 1);
            return serve_manifest(st, name, d, reference, headers, head).await;
        }
    }
    let (reg, repo) = p.upstream(u);
    match reg.get_manifest(&repo, reference, MANIFEST_ACCEPT).await {
        Ok(m) => {
            let d = m.digest.clone();
            if cached.as_ref() == Some(&d) && stored(st, p, name, &d).await {
                Metrics::add(&st.metrics.cache_hits, 1);
                if !no_store(headers) {
                    p.checked.lock().expect("lock").insert(key, Instant::now());
                }
                return serve_manifest(st, name, &d, reference, headers, head).await;
            }
            Metrics::add(&st.metrics.cache_misses, 1);
            answer_and_store(st, p, u, m, Some(reference), reference, headers, head)
        }
        Err(e) => {
            let err = upstream_error(st, u, &e);
            match (&e, cached) {
                (ClientError::ManifestNotFound { .. }, _) | (_, None) => Err(err),
                (_, Some(d)) => {
                    tracing::info!(repository = %name, tag = reference, "serving the cached tag");
                    Metrics::add(&st.metrics.cache_hits, 1);
                    serve_manifest(st, name, &d, reference, headers, head).await
                }
            }
        }
    }
}
