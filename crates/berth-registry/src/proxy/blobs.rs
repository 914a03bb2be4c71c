//! Pull-through blobs: a stored digest never goes upstream; a miss is fetched once however
//! many clients ask, streamed to the first client while it is verified and stored.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use berth_reference::Digest;
use futures_util::StreamExt;

use super::{Proxy, UpstreamRoute, proxy_of, upstream_error};
use crate::content::serve_blob;
use crate::metrics::Metrics;
use crate::{ApiError, State, response};

pub(crate) async fn get_blob(
    st: &Arc<State>,
    u: &UpstreamRoute,
    d: &Digest,
    headers: &HeaderMap,
    head: bool,
) -> Result<Response, ApiError> {
    let p = proxy_of(st)?;
    let store = st.writable()?;
    let name = &u.local_name;
    if let Some(size) = store.blob_size(d) {
        store.link_layer(name, d).map_err(ApiError::internal)?;
        Metrics::add(&st.metrics.cache_hits, 1);
        return serve_blob(st, d, size, headers, head).await;
    }
    let guard = p.flight(d).lock_owned().await;
    if let Some(size) = store.blob_size(d) {
        drop(guard);
        store.link_layer(name, d).map_err(ApiError::internal)?;
        Metrics::add(&st.metrics.cache_hits, 1);
        return serve_blob(st, d, size, headers, head).await;
    }
    Metrics::add(&st.metrics.cache_misses, 1);
    if !head && !headers.contains_key(axum::http::header::RANGE) {
        let res = tee_blob(st, p, u, d, guard).await;
        if res.is_err() {
            p.flights.lock().expect("lock").remove(d);
        }
        return res;
    }
    let res = fetch_blob(st, p, u, d).await;
    p.flights.lock().expect("lock").remove(d);
    drop(guard);
    let size = res?;
    serve_blob(st, d, size, headers, head).await
}

/// Bytes of a pull-through blob that may wait in memory for the store's writes.
const WRITE_LAG: usize = 8 << 20;

/// What the forwarding task hands the task that stores a blob.
enum ToStore {
    /// Bytes to write; the permit bounds what waits ([`WRITE_LAG`]).
    Chunk(bytes::Bytes, tokio::sync::OwnedSemaphorePermit),
    /// Everything was handed over: say whether it hashed to the digest, then commit.
    End(tokio::sync::oneshot::Sender<Result<(), String>>),
}

/// Hashes and writes what the forwarding task hands over (in batches on the blocking pool,
/// so the hashing runs beside the forwarding instead of in its way). At the end it tells
/// the forwarding task whether the whole blob hashed to `d` (before the fsync: the client
/// need not wait for durability), then commits it (fsync, rename). Anything else (the
/// sender gone without [`ToStore::End`], a failed write, a mismatch) leaves nothing
/// visible: the temporary file goes with the writer.
async fn store_behind(
    mut w: berth_store::BlobWriter,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<ToStore>,
    d: Digest,
    repo: String,
    upstream: String,
) -> Result<u64, String> {
    while let Some(m) = rx.recv().await {
        match m {
            ToStore::Chunk(c, _permit) => w
                .write(&c)
                .await
                .map_err(|e| format!("storing blob {d}: {e}"))?,
            ToStore::End(verdict) => {
                let (cd, repo) = (d.clone(), repo.clone());
                let commit = |w: berth_store::BlobWriter| async move {
                    w.commit(&cd, Some(&repo))
                        .await
                        .map_err(|e| format!("storing blob {cd}: {e}"))
                };
                return match w.matches(&d).await {
                    Ok(Some(true)) => {
                        let _ = verdict.send(Ok(()));
                        commit(w).await
                    }
                    Ok(Some(false)) => {
                        let e = format!(
                            "blob {d} from upstream {upstream}: the content does not match the digest"
                        );
                        let _ = verdict.send(Err(e.clone()));
                        Err(e)
                    }
                    // Not sha256: the commit reads the file back and decides, before the
                    // client gets its last chunk.
                    Ok(None) => {
                        let r = commit(w).await;
                        let _ = verdict.send(r.as_ref().map(|_| ()).map_err(Clone::clone));
                        r
                    }
                    Err(e) => {
                        let e = format!("storing blob {d}: {e}");
                        let _ = verdict.send(Err(e.clone()));
                        Err(e)
                    }
                };
            }
        }
    }
    Err(format!("storing blob {d}: cancelled"))
}

/// Streams a blob from the upstream to the client while it is stored. The forwarding task
/// passes each chunk on at once; a second task hashes and writes it to the store, lagging
/// at most [`WRITE_LAG`] bytes behind. The last chunk is held back until the whole
/// blob has hashed to its digest, so a client never receives the whole of a damaged blob
/// (the body then ends with an error); the blob becomes visible in the store only after its
/// own fsync and rename, and a failed write leaves nothing behind.
/// The fetch continues (and is stored) if the client goes away; concurrent requests for
/// the digest wait on `guard` until it is stored.
async fn tee_blob(
    st: &Arc<State>,
    p: &Proxy,
    u: &UpstreamRoute,
    d: &Digest,
    guard: tokio::sync::OwnedMutexGuard<()>,
) -> Result<Response, ApiError> {
    let (reg, repo) = p.upstream(u);
    let dl = reg
        .get_blob(&repo, d)
        .await
        .map_err(|e| upstream_error(st, u, &e))?;
    let w = st.writable()?.writer().await.map_err(ApiError::internal)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(8);
    let size = dl.size;
    {
        let st = st.clone();
        let u = u.clone();
        let d = d.clone();
        tokio::spawn(async move {
            let lag = Arc::new(tokio::sync::Semaphore::new(WRITE_LAG));
            let (wtx, wrx) = tokio::sync::mpsc::unbounded_channel();
            let writer = tokio::spawn(store_behind(
                w,
                wrx,
                d.clone(),
                u.local_name.clone(),
                u.registry.clone(),
            ));
            let mut stream = dl.stream;
            let mut pending: Option<bytes::Bytes> = None;
            let mut failed: Option<String> = None;
            while let Some(c) = stream.next().await {
                match c {
                    Ok(c) => {
                        let n = u32::try_from(c.len().min(WRITE_LAG)).expect("WRITE_LAG fits");
                        let permit = lag
                            .clone()
                            .acquire_many_owned(n)
                            .await
                            .expect("the semaphore is never closed");
                        if wtx.send(ToStore::Chunk(c.clone(), permit)).is_err() {
                            // The writer failed; its error is collected below.
                            break;
                        }
                        if let Some(prev) = pending.replace(c) {
                            let _ = tx.send(Ok(prev)).await;
                        }
                    }
                    Err(e) => {
                        Metrics::add(&st.metrics.upstream_errors, 1);
                        failed = Some(format!(
                            "reading blob {d} from upstream {}: {e}",
                            u.registry
                        ));
                        break;
                    }
                }
            }
            if failed.is_none() {
                let (vtx, vrx) = tokio::sync::oneshot::channel();
                if wtx.send(ToStore::End(vtx)).is_ok() {
                    match vrx.await {
                        // Verified: the client gets its last chunk while the store commits.
                        Ok(Ok(())) => {
                            if let Some(last) = pending.take() {
                                let _ = tx.send(Ok(last)).await;
                            }
                        }
                        Ok(Err(e)) => {
                            Metrics::add(&st.metrics.upstream_errors, 1);
                            failed = Some(e);
                        }
                        // The writer failed first; its error is collected below.
                        Err(_) => {}
                    }
                }
            }
            drop(wtx);
            let stored = writer
                .await
                .unwrap_or_else(|e| Err(format!("storing blob {d}: {e}")));
            let failed = match (failed, stored) {
                (Some(f), _) => Some(f),
                (None, Ok(_)) => None,
                (None, Err(e)) => {
                    Metrics::add(&st.metrics.upstream_errors, 1);
                    Some(e)
                }
            };
            // Stored (or given up): waiting requests go on without the slow first client.
            if let Some(p) = st.proxy.as_ref() {
                p.flights.lock().expect("lock").remove(&d);
            }
            drop(guard);
            if let Some(f) = failed {
                tracing::warn!(error = %f, "pull-through blob fetch failed");
                let _ = tx.send(Err(std::io::Error::other(f))).await;
            }
        });
    }
    let body =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    let mut r = Response::new(axum::body::Body::from_stream(body));
    for (k, v) in response::blob_head(d, size.unwrap_or(0)) {
        if k == "Content-Length" && size.is_none() {
            continue;
        }
        if let Ok(v) = axum::http::HeaderValue::from_str(&v) {
            r.headers_mut().insert(k, v);
        }
    }
    if let Some(n) = size {
        Metrics::add(&st.metrics.bytes_served, n);
    }
    Ok(r)
}

/// Downloads a blob into the store (verified against its digest on commit).
async fn fetch_blob(
    st: &Arc<State>,
    p: &Proxy,
    u: &UpstreamRoute,
    d: &Digest,
) -> Result<u64, ApiError> {
    let (reg, repo) = p.upstream(u);
    let mut dl = reg
        .get_blob(&repo, d)
        .await
        .map_err(|e| upstream_error(st, u, &e))?;
    let mut w = st.writable()?.writer().await.map_err(ApiError::internal)?;
    while let Some(c) = dl.stream.next().await {
        let c = c.map_err(|e| {
            Metrics::add(&st.metrics.upstream_errors, 1);
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "UNKNOWN",
                format!("reading blob {d} from upstream {}: {e}", u.registry),
            )
        })?;
        w.write(&c).await.map_err(ApiError::internal)?;
    }
    w.commit(d, Some(&u.local_name)).await.map_err(|e| {
        Metrics::add(&st.metrics.upstream_errors, 1);
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "BLOB_UNKNOWN",
            format!("blob {d} from upstream {}: {e}", u.registry),
        )
    })
}
