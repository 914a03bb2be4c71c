//! Pull-through caching of upstream registries.
//!
//! A pull names an upstream with containerd's `?ns=<host>` query parameter, or with the
//! path `/v2/<project>/<host_port>/<repo>`. Both are cached in the local repository
//! `<project>/<host_port>/<repo>`. Manifests fetched by tag are stored with the tag (an
//! index with all its child manifests); blobs are fetched on their first miss, once per
//! digest however many clients ask at the same time. A digest already held never goes
//! upstream; a tag is re-checked at most once per `tag_ttl_seconds`, and the cached tag
//! is served when the upstream fails.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use berth_client::{
    Client, ClientError, Credentials, MANIFEST_ACCEPT, RegistryConfig, RegistryConfigs,
    RetryPolicy, normalize_key,
};
use berth_reference::Digest;
use berth_store::{ManifestPush, manifest};
use futures_util::StreamExt;

use crate::config::ProxyConfig;
use crate::metrics::Metrics;
use crate::{ApiError, RegistryError, State};

/// Where a pull goes upstream.
#[derive(Debug, Clone)]
pub struct UpstreamRoute {
    /// The repository in the local store that caches it.
    pub local_name: String,
    /// The upstream registry as clients name it (`host[:port]`).
    pub registry: String,
    /// The repository at the upstream (before any endpoint prefix).
    pub repository: String,
}

/// Where an upstream is fetched from.
#[derive(Debug, Clone)]
struct Target {
    /// `host[:port]` the client connects to.
    host: String,
    /// Repository prefix at that host (an endpoint's path), without slashes around it.
    prefix: String,
}

type Flights = Mutex<HashMap<Digest, Arc<tokio::sync::Mutex<()>>>>;

pub struct Proxy {
    client: Client,
    upstreams: HashMap<String, Target>,
    project: String,
    /// The user data's redirect (prefix or mapping rules): hosts that are not upstreams
    /// themselves are fetched from where it sends them.
    rewriter: Option<berth_rewrite::Rewriter>,
    tag_ttl: Duration,
    checked: Mutex<HashMap<(String, String), Instant>>,
    flights: Flights,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("upstreams", &self.upstreams.keys().collect::<Vec<_>>())
            .field("project", &self.project)
            .finish()
    }
}

fn split_endpoint(e: &str) -> (String, String) {
    let e = e
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_matches('/');
    match e.split_once('/') {
        Some((h, p)) => (h.to_string(), p.trim_matches('/').to_string()),
        None => (e.to_string(), String::new()),
    }
}

impl Proxy {
    /// The upstreams of the settings (user data registries and `upstreams`); `None` when
    /// there are none.
    pub fn from_config(cfg: &ProxyConfig) -> Result<Option<Proxy>, RegistryError> {
        let mut configs = RegistryConfigs::new();
        let mut upstreams = HashMap::new();
        let mut rewriter = None;
        if let Some(path) = &cfg.user_data {
            let text = std::fs::read_to_string(path).map_err(|source| RegistryError::Io {
                action: "read user data",
                path: path.clone(),
                source,
            })?;
            let ud = berth_userdata::UserData::parse(&text, &path.display().to_string())
                .map_err(|e| RegistryError::Upstream(e.to_string()))?;
            for r in &ud.registries {
                let rc = RegistryConfig {
                    credentials: r
                        .has_credentials()
                        .then(|| Credentials::new(r.username.clone(), r.password.clone())),
                    insecure: r.insecure,
                    ca_pems: r.certificates.clone(),
                };
                let host = normalize_key(r.host());
                configs.insert_if_absent(&host, rc.clone());
                configs.insert(&r.domain, rc);
                upstreams.entry(host.clone()).or_insert(Target {
                    host,
                    prefix: String::new(),
                });
            }
            let rw = berth_rewrite::Rewriter::new(Some(&ud), None);
            if rw.enabled() {
                rewriter = Some(rw);
            }
        }
        for u in &cfg.upstreams {
            let key = normalize_key(&u.registry);
            if key.is_empty() || key.contains('/') {
                return Err(RegistryError::Upstream(format!(
                    "upstream `{}`: `registry` must be host[:port]",
                    u.registry
                )));
            }
            let (host, prefix) = split_endpoint(u.endpoint.as_deref().unwrap_or(&key));
            let mut ca_pems = vec![];
            if let Some(ca) = &u.ca_file {
                ca_pems.push(
                    std::fs::read_to_string(ca).map_err(|source| RegistryError::Io {
                        action: "read upstream CA file",
                        path: ca.clone(),
                        source,
                    })?,
                );
            }
            let credentials = match (&u.username, &u.password) {
                (Some(n), p) => Some(Credentials::new(n.clone(), p.clone().unwrap_or_default())),
                (None, Some(_)) => {
                    return Err(RegistryError::Upstream(format!(
                        "upstream `{key}`: a password needs a username"
                    )));
                }
                (None, None) => None,
            };
            configs.insert(
                &host,
                RegistryConfig {
                    credentials,
                    insecure: u.insecure,
                    ca_pems,
                },
            );
            upstreams.insert(key, Target { host, prefix });
        }
        if upstreams.is_empty() && rewriter.is_none() {
            return Ok(None);
        }
        let tag_ttl = match &cfg.tag_recheck {
            Some(t) => crate::config::parse_duration(t).ok_or_else(|| {
                RegistryError::Upstream(format!(
                    "proxy.tag_recheck `{t}` is not a duration (30s, 5m, 1h or seconds)"
                ))
            })?,
            None => Duration::from_secs(cfg.tag_ttl_seconds),
        };
        let client = Client::new(configs)
            .map_err(|e| RegistryError::Upstream(e.to_string()))?
            .with_retry(RetryPolicy::none());
        Ok(Some(Proxy {
            client,
            upstreams,
            project: cfg.project.trim_matches('/').to_string(),
            rewriter,
            tag_ttl,
            checked: Mutex::new(HashMap::new()),
            flights: Mutex::new(HashMap::new()),
        }))
    }

    /// The upstream a pull of `name` (with `?ns=`) goes to, if any.
    ///
    /// The path form `<project>/<host_port>/<repo>` names its upstream itself and wins over
    /// `?ns=`: containerd appends `?ns=<upstream host>` to every request to a mirror, also to
    /// a mirror written as `https://edge/v2/<project>/<host_port>` with `override_path`
    /// (what `berth node-config` writes), where `ns` is the host the pull named.
    pub fn route(&self, name: &str, ns: Option<&str>) -> Option<UpstreamRoute> {
        if let Some(r) = self.path_route(name) {
            return Some(r);
        }
        let key = normalize_key(ns.filter(|n| !n.is_empty())?);
        if !self.serves(&key) {
            return None;
        }
        let hp = berth_rewrite::encode_host_component(&key)?;
        Some(UpstreamRoute {
            local_name: format!("{}/{hp}/{name}", self.project),
            registry: key,
            repository: name.to_string(),
        })
    }

    /// The path form: `<project>/<host_port>/<repo>` of a served upstream.
    fn path_route(&self, name: &str) -> Option<UpstreamRoute> {
        let rest = name.strip_prefix(&self.project)?.strip_prefix('/')?;
        let (hp, repo) = rest.split_once('/')?;
        let host = berth_rewrite::decode_host_component(hp);
        if repo.is_empty() || !self.serves(&host) {
            return None;
        }
        Some(UpstreamRoute {
            local_name: name.to_string(),
            registry: host,
            repository: repo.to_string(),
        })
    }

    /// Whether pulls of `host` go upstream.
    fn serves(&self, host: &str) -> bool {
        self.upstreams.contains_key(host) || self.rewriter.is_some()
    }

    /// The registry and repository to fetch `u` from.
    fn upstream(&self, u: &UpstreamRoute) -> (berth_client::Registry, String) {
        if !self.upstreams.contains_key(&u.registry)
            && let Some(rw) = &self.rewriter
            && let Ok(r) = rw.rewrite_str(&format!("{}/{}", u.registry, u.repository))
        {
            let name = r.name();
            if let Some((host, repo)) = name.split_once('/') {
                return (self.client.registry(host), repo.to_string());
            }
        }
        let t = self.upstreams.get(&u.registry).cloned().unwrap_or(Target {
            host: u.registry.clone(),
            prefix: String::new(),
        });
        let repo = if t.prefix.is_empty() {
            u.repository.clone()
        } else {
            format!("{}/{}", t.prefix, u.repository)
        };
        (self.client.registry(&t.host), repo)
    }

    fn flight(&self, d: &Digest) -> Arc<tokio::sync::Mutex<()>> {
        self.flights
            .lock()
            .expect("lock")
            .entry(d.clone())
            .or_default()
            .clone()
    }
}

fn proxy_of(st: &State) -> Result<&Proxy, ApiError> {
    st.proxy
        .as_ref()
        .ok_or_else(|| ApiError::internal("pull-through caching is not configured"))
}

fn upstream_error(st: &State, u: &UpstreamRoute, e: &ClientError) -> ApiError {
    match e {
        ClientError::ManifestNotFound { .. } | ClientError::BlobNotFound { .. } => {}
        _ => Metrics::add(&st.metrics.upstream_errors, 1),
    }
    tracing::warn!(upstream = %u.registry, repository = %u.repository, error = %e, "upstream request failed");
    match e {
        ClientError::ManifestNotFound { reference, .. } => {
            ApiError::manifest_unknown(&u.local_name, reference)
        }
        ClientError::BlobNotFound { digest, .. } => ApiError::blob_unknown(&u.local_name, digest),
        e => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "UNKNOWN",
            format!("upstream {}: {e}", u.registry),
        ),
    }
}

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

/// Whether manifest `d` is in `name`, once a store of it in progress has finished.
async fn stored(st: &State, p: &Proxy, name: &str, d: &Digest) -> bool {
    if st.store.manifest_type(name, d).is_some() {
        return true;
    }
    let pending = p.flights.lock().expect("lock").get(d).cloned();
    if let Some(f) = pending {
        let _done = f.lock().await;
    }
    st.store.manifest_type(name, d).is_some()
}

/// Answers with a manifest fetched from upstream, from memory (its digest is that of these
/// bytes: computed for a tag, checked for a digest), and stores it (an index with its child
/// manifests, a tag with its digest) in the background, so the client does not wait for
/// the store's fsyncs. Requests for the digest meanwhile wait for the store to finish; a
/// tag counts as re-checked once it is stored.
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
    crate::api::check_accept(headers, &u.local_name, reference, &m.media_type)?;
    let r = crate::api::manifest_response(st, &m.digest, &m.media_type, m.bytes.to_vec(), head);
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
        if st.store.manifest_type(&u.local_name, child).is_some() {
            continue;
        }
        let c = reg
            .get_manifest(&repo, &child.to_string(), MANIFEST_ACCEPT)
            .await
            .map_err(|e| upstream_error(st, u, &e))?;
        Box::pin(store_manifest(st, p, u, c, None)).await?;
    }
    let store = st.store.clone();
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
            return crate::api::serve_manifest(st, name, &d, reference, headers, head).await;
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
    berth_store::validate_tag(reference)
        .map_err(|reason| ApiError::new(StatusCode::BAD_REQUEST, "TAG_INVALID", reason))?;
    let key = (name.clone(), reference.to_string());
    let cached = st.store.resolve_tag(name, reference);
    if let Some(d) = &cached {
        let fresh = p
            .checked
            .lock()
            .expect("lock")
            .get(&key)
            .is_some_and(|t| t.elapsed() < p.tag_ttl);
        if fresh && st.store.manifest_type(name, d).is_some() {
            Metrics::add(&st.metrics.cache_hits, 1);
            return crate::api::serve_manifest(st, name, d, reference, headers, head).await;
        }
    }
    let (reg, repo) = p.upstream(u);
    match reg.get_manifest(&repo, reference, MANIFEST_ACCEPT).await {
        Ok(m) => {
            let d = m.digest.clone();
            if cached.as_ref() == Some(&d) && stored(st, p, name, &d).await {
                Metrics::add(&st.metrics.cache_hits, 1);
                p.checked.lock().expect("lock").insert(key, Instant::now());
                return crate::api::serve_manifest(st, name, &d, reference, headers, head).await;
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
                    crate::api::serve_manifest(st, name, &d, reference, headers, head).await
                }
            }
        }
    }
}

pub(crate) async fn get_blob(
    st: &Arc<State>,
    u: &UpstreamRoute,
    d: &Digest,
    headers: &HeaderMap,
    head: bool,
) -> Result<Response, ApiError> {
    let p = proxy_of(st)?;
    let name = &u.local_name;
    if let Some(size) = st.store.blob_size(d) {
        st.store.link_layer(name, d).map_err(ApiError::internal)?;
        Metrics::add(&st.metrics.cache_hits, 1);
        return crate::api::serve_blob_file(st, d, size, headers, head).await;
    }
    let guard = p.flight(d).lock_owned().await;
    if let Some(size) = st.store.blob_size(d) {
        drop(guard);
        st.store.link_layer(name, d).map_err(ApiError::internal)?;
        Metrics::add(&st.metrics.cache_hits, 1);
        return crate::api::serve_blob_file(st, d, size, headers, head).await;
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
    crate::api::serve_blob_file(st, d, size, headers, head).await
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
    let w = st.store.writer().await.map_err(ApiError::internal)?;
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
    for (k, v) in crate::api::blob_head(d, size.unwrap_or(0)) {
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
    let mut w = st.store.writer().await.map_err(ApiError::internal)?;
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

/// Tags at the upstream, or the cached ones when it cannot be reached.
pub(crate) async fn tags(st: &Arc<State>, u: &UpstreamRoute) -> Result<Vec<String>, ApiError> {
    let p = proxy_of(st)?;
    let (reg, repo) = p.upstream(u);
    match reg.tags_list(&repo).await {
        Ok(mut t) => {
            t.sort();
            Ok(t)
        }
        Err(e) => {
            let err = upstream_error(st, u, &e);
            st.store.tags(&u.local_name).ok_or(err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Upstream;

    #[test]
    fn user_data_upstreams_and_mapping() {
        let dir = tempfile::tempdir().unwrap();
        let ud = dir.path().join("user-data");
        std::fs::write(
            &ud,
            "#cloud-config\nstylus:\n  registryCredentials:\n    domain: 10.10.254.254:8000/spectro-images\n    username: ubuntu\n    password: \"s3cret\"\n    insecure: true\n",
        )
        .unwrap();
        let cfg = ProxyConfig {
            user_data: Some(ud),
            ..ProxyConfig::default()
        };
        let p = Proxy::from_config(&cfg).unwrap().unwrap();
        assert!(!format!("{p:?}").contains("s3cret"));
        // The external registry itself, path-addressed.
        let r = p
            .route("spectro-images/10.10.254.254_8000/spectro-images/x", None)
            .unwrap();
        let (reg, repo) = p.upstream(&r);
        assert_eq!(reg.name(), "10.10.254.254:8000");
        assert_eq!(repo, "spectro-images/x");
        // Another host, through the user data's redirect.
        let r = p.route("library/nginx", Some("docker.io")).unwrap();
        assert_eq!(r.local_name, "spectro-images/docker.io/library/nginx");
        let (reg, repo) = p.upstream(&r);
        assert_eq!(reg.name(), "10.10.254.254:8000");
        assert_eq!(repo, "spectro-images/docker.io/library/nginx");
    }

    #[test]
    fn routes() {
        let cfg = ProxyConfig {
            upstreams: vec![Upstream {
                registry: "reg.example:5000".into(),
                ..Upstream::default()
            }],
            ..ProxyConfig::default()
        };
        let p = Proxy::from_config(&cfg).unwrap().unwrap();
        let r = p.route("lib/app", Some("reg.example:5000")).unwrap();
        assert_eq!(r.local_name, "spectro-images/reg.example_5000/lib/app");
        assert_eq!(r.repository, "lib/app");
        let r = p
            .route("spectro-images/reg.example_5000/lib/app", None)
            .unwrap();
        assert_eq!(r.registry, "reg.example:5000");
        assert_eq!(r.repository, "lib/app");
        assert!(p.route("lib/app", Some("other.example")).is_none());
        assert!(p.route("spectro-images/other_1/x", None).is_none());
        assert!(p.route("lib/app", None).is_none());
        assert_eq!(
            split_endpoint("https://mirror:443/pre/fix/"),
            ("mirror:443".into(), "pre/fix".into())
        );
    }
}
