//! `copy_images`: the copy itself.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Instant;

use berth_client::{Client, Manifest, RegistryConfigs, VerifyingStream};
use berth_ends::{Destination, Source, TransferError};
use berth_oci::{ByteStream, RetryPolicy};
use berth_reference::{Digest, Reference};
use futures_util::StreamExt;
use futures_util::future::{BoxFuture, FutureExt, Shared};
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::manifest::{Descriptor, Parsed, parse};
use crate::{Endpoint, OciLayout, RegistryEnd};

/// A callback receiving progress [`Event`]s. It must be quick (e.g. update a bar).
pub type EventSink = Arc<dyn Fn(Event) + Send + Sync>;

/// Progress of [`copy_images`]. `image` is the index of the pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    ImageStarted {
        image: usize,
        source: String,
        target: String,
        /// Sum of the sizes of the image's distinct blobs.
        total_bytes: u64,
    },
    /// `bytes` more bytes of a blob were transferred.
    BlobProgress {
        image: usize,
        digest: Digest,
        bytes: u64,
    },
    /// A blob transfer starts over (after a retryable failure); its progress so far is void.
    BlobRestarted {
        image: usize,
        digest: Digest,
        discarded: u64,
    },
    BlobDone {
        image: usize,
        digest: Digest,
        size: u64,
        outcome: BlobOutcome,
    },
    ImageDone {
        image: usize,
        source: String,
        target: String,
        status: ImageStatus,
        error: Option<String>,
    },
}

/// What happened to one blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobOutcome {
    /// Already at the destination.
    Skipped,
    /// Mounted from another repository of the destination registry.
    Mounted,
    Copied,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageStatus {
    Copied,
    /// The target already had this manifest (same digest); nothing was copied.
    Present,
    Failed,
    /// Not (wholly) copied: the copy was cancelled ([`CopyOptions::cancel`]); a rerun copies
    /// what is missing.
    Cancelled,
}

/// Settings of a copy.
#[derive(Clone, Debug)]
pub struct CopyOptions {
    /// Parallel transfers (images and blobs), at least 1.
    pub jobs: usize,
    /// Go on with other images after one failed.
    pub keep_going: bool,
    /// Credentials and TLS for source registries.
    pub source_registries: RegistryConfigs,
    /// Credentials and TLS for destination registries.
    pub destination_registries: RegistryConfigs,
    /// Retries of requests and of whole blob transfers.
    pub retry: RetryPolicy,
    /// Cancelling it stops the copy: blob uploads in flight are aborted and their upload
    /// sessions cancelled at the destination, nothing more starts, and every image not
    /// complete is reported [`ImageStatus::Cancelled`].
    pub cancel: CancellationToken,
    /// Copy what is attached to each image and to each child of an index (OCI referrers,
    /// cosign's `.sig`/`.att`/`.sbom` tags), recursively; `--referrers=false` turns it off.
    pub referrers: bool,
}

impl Default for CopyOptions {
    fn default() -> CopyOptions {
        CopyOptions {
            jobs: 4,
            keep_going: false,
            source_registries: RegistryConfigs::new(),
            destination_registries: RegistryConfigs::new(),
            retry: RetryPolicy::default(),
            cancel: CancellationToken::new(),
            referrers: true,
        }
    }
}

impl CopyOptions {
    /// `jobs` parallel transfers with these settings of the two ends.
    pub fn new(
        jobs: usize,
        sources: RegistryConfigs,
        destinations: RegistryConfigs,
    ) -> CopyOptions {
        CopyOptions {
            jobs,
            source_registries: sources,
            destination_registries: destinations,
            ..CopyOptions::default()
        }
    }
}

/// One image in a [`Report`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImageReport {
    pub source: String,
    pub target: String,
    pub digest: Option<String>,
    pub status: ImageStatus,
    pub error: Option<String>,
    /// Artifacts attached to the image (referrers and cosign tags, recursively) now at the
    /// target: copied or there already.
    pub attached: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BlobCounts {
    pub copied: u64,
    pub skipped: u64,
    pub mounted: u64,
}

/// The result of [`copy_images`] (`berth mirror --output json`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub images: Vec<ImageReport>,
    /// The charts `mirror` pushed as Helm OCI artifacts (none for other copies).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub charts: Vec<ImageReport>,
    pub blobs: BlobCounts,
    /// Blob bytes actually copied.
    pub bytes: u64,
    pub seconds: f64,
}

impl Report {
    /// The images, then the charts.
    pub fn all(&self) -> impl Iterator<Item = &ImageReport> {
        self.images.iter().chain(&self.charts)
    }

    /// Images and charts that failed.
    pub fn failed(&self) -> usize {
        self.images
            .iter()
            .chain(&self.charts)
            .filter(|i| i.status == ImageStatus::Failed)
            .count()
    }
}

/// A target read as a source (manifests) and as a destination (blob checks).
pub(crate) type Ends = (Arc<dyn Source>, Arc<dyn Destination>);

type SharedBlob = Shared<BoxFuture<'static, Result<(), Arc<TransferError>>>>;

pub(crate) struct Engine {
    src_client: Client,
    dst_client: Client,
    retry: RetryPolicy,
    jobs: usize,
    permits: Arc<Semaphore>,
    events: Option<EventSink>,
    /// (blob domain, digest) → the first transfer of that blob to that domain.
    inflight: Mutex<HashMap<(String, Digest), SharedBlob>>,
    /// (registry, digest) → a repository of it that has the blob.
    located: Mutex<HashMap<(String, Digest), String>>,
    copied: AtomicU64,
    skipped: AtomicU64,
    mounted: AtomicU64,
    bytes: AtomicU64,
    abort: AtomicBool,
    cancel: CancellationToken,
    referrers: bool,
}

impl Engine {
    fn emit(&self, e: Event) {
        if let Some(s) = &self.events {
            s(e);
        }
    }

    fn source(&self, e: &Endpoint) -> Result<Arc<dyn Source>, TransferError> {
        Ok(match e {
            Endpoint::Registry(r) => registry_end(&self.src_client, r),
            Endpoint::Layout { dir, .. } => Arc::new(OciLayout::open(dir.clone())?),
            Endpoint::Ends { name, source, .. } => {
                one_way(name, source, "read from", "destination")?
            }
        })
    }

    fn destination(&self, e: &Endpoint) -> Result<Arc<dyn Destination>, TransferError> {
        Ok(match e {
            Endpoint::Registry(r) => registry_end(&self.dst_client, r),
            Endpoint::Layout { dir, .. } => Arc::new(OciLayout::create(dir.clone())?),
            Endpoint::Ends {
                name, destination, ..
            } => one_way(name, destination, "written to", "source")?,
        })
    }

    /// `Err(Cancelled)` once the copy was cancelled.
    pub(crate) fn go_on(&self) -> Result<(), TransferError> {
        match self.cancel.is_cancelled() {
            true => Err(TransferError::Cancelled),
            false => Ok(()),
        }
    }

    fn count(&self, o: BlobOutcome) {
        match o {
            BlobOutcome::Copied => &self.copied,
            BlobOutcome::Skipped => &self.skipped,
            BlobOutcome::Mounted => &self.mounted,
        }
        .fetch_add(1, Ordering::Relaxed);
    }
}

/// Fetches `top` and every manifest below it: returns the children in push order (children
/// before their index) and the distinct blobs.
pub(crate) async fn walk(
    source: &dyn Source,
    dest: &dyn Destination,
    top: &Manifest,
    reference: &str,
) -> Result<(Vec<Manifest>, Vec<Descriptor>), TransferError> {
    let mut children = Vec::new();
    let mut blobs: BTreeMap<Digest, Descriptor> = BTreeMap::new();
    // (manifest, reference, depth); an explicit stack: post-order via a second list.
    let mut stack: Vec<(Manifest, String, u32)> = vec![(top.clone(), reference.to_string(), 0)];
    let mut order: Vec<Manifest> = Vec::new();
    let mut seen: HashSet<Digest> = HashSet::new();
    while let Some((m, r, depth)) = stack.pop() {
        match parse(&m, &source.name(), &r)? {
            Parsed::Image(ds) => {
                for d in ds {
                    blobs.entry(d.digest.clone()).or_insert(d);
                }
            }
            Parsed::Index(ds) => {
                if depth > 4 {
                    return Err(TransferError::Usage {
                        name: format!("{}: manifest {r}", source.name()),
                        detail: "indexes nested more than 4 deep are not copied".into(),
                    });
                }
                for d in ds {
                    if !dest.wants_child(&d) || !seen.insert(d.digest.clone()) {
                        continue;
                    }
                    let child = source
                        .get_manifest(&d.digest.to_string())
                        .await?
                        .ok_or_else(|| TransferError::BadManifest {
                            source_name: source.name(),
                            reference: r.clone(),
                            detail: format!(
                                "its child manifest {} is missing at the source",
                                d.digest
                            ),
                        })?;
                    if child.bytes.len() as u64 != d.size {
                        return Err(TransferError::BadManifest {
                            source_name: source.name(),
                            reference: r.clone(),
                            detail: format!(
                                "child {} is {} bytes, the index says {}",
                                d.digest,
                                child.bytes.len(),
                                d.size
                            ),
                        });
                    }
                    order.push(child.clone());
                    stack.push((child, d.digest.to_string(), depth + 1));
                }
            }
        }
    }
    // Deeper manifests were pushed later in `order`; push them first.
    order.reverse();
    children.extend(order);
    Ok((children, blobs.into_values().collect()))
}

async fn transfer_blob(
    engine: Arc<Engine>,
    image: usize,
    source: Arc<dyn Source>,
    dest: Arc<dyn Destination>,
    blob: Descriptor,
    trust_head: bool,
) -> Result<BlobOutcome, TransferError> {
    let digest = blob.digest.clone();
    if trust_head && dest.has_blob(&digest).await? {
        return Ok(BlobOutcome::Skipped);
    }
    if let Some(repo) = dest.mount_repository() {
        let domain = dest.blob_domain();
        let mut from: Vec<String> = Vec::new();
        if let Some(r) = engine
            .located
            .lock()
            .expect("lock")
            .get(&(domain.clone(), digest.clone()))
        {
            from.push(r.clone());
        }
        if let Some((d, r)) = source.mount_origin()
            && d == domain
        {
            from.push(r);
        }
        for f in from.into_iter().filter(|f| *f != repo) {
            if dest.mount_blob(&digest, &f).await? {
                return Ok(BlobOutcome::Mounted);
            }
        }
    }
    let _permit = engine
        .permits
        .clone()
        .acquire_owned()
        .await
        .expect("semaphore");
    engine.go_on()?;
    let retry = engine.retry;
    let mut attempt = 0;
    loop {
        let sent = Arc::new(AtomicU64::new(0));
        let result = async {
            let stream = source.open_blob(&digest).await?;
            let (e2, d2, s2) = (engine.clone(), digest.clone(), sent.clone());
            let verified = VerifyingStream::new(stream, digest.clone(), Some(blob.size))
                .map_err(|error| TransferError::Verify {
                    source_name: source.name(),
                    digest: digest.clone(),
                    error,
                })?
                .on_chunk(move |n| {
                    s2.fetch_add(n, Ordering::Relaxed);
                    e2.emit(Event::BlobProgress {
                        image,
                        digest: d2.clone(),
                        bytes: n,
                    })
                });
            let stream = cancellable(verified.boxed(), engine.cancel.clone());
            dest.put_blob(&digest, blob.size, stream).await
        }
        .await;
        match result {
            Ok(()) => {
                engine.bytes.fetch_add(blob.size, Ordering::Relaxed);
                return Ok(BlobOutcome::Copied);
            }
            Err(e) => {
                engine.go_on()?;
                if let Some(v) = e.verify_error() {
                    return Err(TransferError::Verify {
                        source_name: source.name(),
                        digest,
                        error: v.clone(),
                    });
                }
                attempt += 1;
                if !e.is_retryable() || attempt >= retry.attempts {
                    return Err(e);
                }
                engine.emit(Event::BlobRestarted {
                    image,
                    digest: digest.clone(),
                    discarded: sent.load(Ordering::Relaxed),
                });
                tokio::time::sleep(retry.backoff(attempt - 1)).await;
            }
        }
    }
}

/// `stream`, failing as soon as `cancel` fires, even while it waits for the source: the
/// destination then aborts the upload and cancels its session (as for any broken stream).
fn cancellable(mut stream: ByteStream, cancel: CancellationToken) -> ByteStream {
    let mut stop = Box::pin(cancel.cancelled_owned());
    let mut ended = false;
    Box::pin(futures_util::stream::poll_fn(move |cx| {
        if ended {
            return Poll::Ready(None);
        }
        if stop.as_mut().poll(cx).is_ready() {
            ended = true;
            let e = std::io::Error::other("the copy was cancelled");
            return Poll::Ready(Some(Err(e)));
        }
        stream.poll_next_unpin(cx)
    }))
}

/// Copies one blob, moving it once per destination domain even when several images need it.
async fn copy_blob(
    engine: Arc<Engine>,
    image: usize,
    source: Arc<dyn Source>,
    dest: Arc<dyn Destination>,
    blob: Descriptor,
) -> Result<BlobOutcome, TransferError> {
    let key = (dest.blob_domain(), blob.digest.clone());
    let (shared, leader) = {
        let mut map = engine.inflight.lock().expect("lock");
        match map.get(&key) {
            Some(s) => (s.clone(), false),
            None => {
                let (e, s, d, b) = (engine.clone(), source.clone(), dest.clone(), blob.clone());
                let fut: BoxFuture<'static, Result<(), Arc<TransferError>>> = async move {
                    let r = transfer_blob(e.clone(), image, s, d.clone(), b.clone(), true).await;
                    match r {
                        Ok(o) => {
                            if let Some(repo) = d.mount_repository() {
                                e.located
                                    .lock()
                                    .expect("lock")
                                    .insert((d.blob_domain(), b.digest.clone()), repo);
                            }
                            e.count(o);
                            e.emit(Event::BlobDone {
                                image,
                                digest: b.digest.clone(),
                                size: b.size,
                                outcome: o,
                            });
                            Ok(())
                        }
                        Err(err) => Err(Arc::new(err)),
                    }
                }
                .boxed();
                let s = fut.shared();
                map.insert(key.clone(), s.clone());
                (s, true)
            }
        }
    };
    let r = shared.await;
    if leader {
        // The leader's outcome was counted and reported inside the shared future.
        return r
            .map(|()| BlobOutcome::Copied)
            .map_err(TransferError::Shared);
    }
    r.map_err(TransferError::Shared)?;
    // Follower: the blob is in the domain now; make sure it is in this repository.
    let o = if dest.has_blob(&blob.digest).await? {
        BlobOutcome::Skipped
    } else {
        transfer_blob(engine.clone(), image, source, dest, blob.clone(), true).await?
    };
    engine.count(o);
    engine.emit(Event::BlobDone {
        image,
        digest: blob.digest.clone(),
        size: blob.size,
        outcome: o,
    });
    Ok(o)
}

/// Copies one image; returns its digest and whether it was already present.
async fn copy_one(
    engine: Arc<Engine>,
    image: usize,
    src: &Endpoint,
    dst: &Endpoint,
) -> Result<(Digest, ImageStatus, u64), (Option<Digest>, TransferError)> {
    let source = engine.source(src).map_err(|e| (None, e))?;
    let dest = engine.destination(dst).map_err(|e| (None, e))?;
    let reference = src.reference();
    // Where the target points now is asked at the same time as the source's manifest when
    // the target's reference is known (a tag): a rerun's answer in one round trip, and the
    // two registries' first requests (their `/v2/` probes) overlap.
    let fixed = dst.fixed_target_reference();
    let (top, early) = match &fixed {
        Some(r) => {
            let (top, at) = tokio::join!(source.get_manifest(&reference), dest.manifest_digest(r));
            (top, Some(at))
        }
        None => (source.get_manifest(&reference).await, None),
    };
    let top = top.map_err(|e| (None, e))?.ok_or_else(|| {
        (
            None,
            TransferError::NotFound {
                source_name: source.name(),
                reference: reference.clone(),
            },
        )
    })?;
    let digest = top.digest.clone();
    let fail = |e: TransferError| (Some(top.digest.clone()), e);
    if let Some(want) = dst.expected_digest()
        && want != digest
    {
        return Err(fail(TransferError::Mismatch {
            target: dst.to_string(),
            expected: want,
            found: digest.clone(),
        }));
    }
    let target_ref = dst.target_reference(&digest);
    let at_target = match early {
        Some(at) => at,
        None => dest.manifest_digest(&target_ref).await,
    };
    if at_target.map_err(fail)? == Some(digest.clone()) {
        engine.emit(Event::ImageStarted {
            image,
            source: src.to_string(),
            target: dst.to_string(),
            total_bytes: 0,
        });
        let attached = attached(&engine, image, &source, &dest, &top).await;
        return Ok((digest, ImageStatus::Present, attached.map_err(fail)?));
    }
    let (children, blobs) = walk(source.as_ref(), dest.as_ref(), &top, &reference)
        .await
        .map_err(fail)?;
    engine.emit(Event::ImageStarted {
        image,
        source: src.to_string(),
        target: dst.to_string(),
        total_bytes: blobs.iter().map(|b| b.size).sum(),
    });
    let at = CopyAt {
        engine: &engine,
        image,
        source: &source,
        dest: &dest,
    };
    at.content(&top, &target_ref, &children, &blobs)
        .await
        .map_err(fail)?;
    let attached = attached(&engine, image, &source, &dest, &top).await;
    Ok((digest, ImageStatus::Copied, attached.map_err(fail)?))
}

/// What is attached to `top` (and to its children), copied when the copy takes them.
async fn attached(
    engine: &Arc<Engine>,
    image: usize,
    source: &Arc<dyn Source>,
    dest: &Arc<dyn Destination>,
    top: &Manifest,
) -> Result<u64, TransferError> {
    if !engine.referrers {
        return Ok(0);
    }
    let at = CopyAt {
        engine,
        image,
        source,
        dest,
    };
    crate::attached::copy_attached(&at, top).await
}

/// Where one image's content goes: the engine, the image's number, its two ends.
pub(crate) struct CopyAt<'a> {
    pub(crate) engine: &'a Arc<Engine>,
    pub(crate) image: usize,
    pub(crate) source: &'a Arc<dyn Source>,
    pub(crate) dest: &'a Arc<dyn Destination>,
}

impl CopyAt<'_> {
    /// Copies a walked manifest: its blobs, then its children, then it under `target_ref`.
    pub(crate) async fn content(
        &self,
        top: &Manifest,
        target_ref: &str,
        children: &[Manifest],
        blobs: &[Descriptor],
    ) -> Result<(), TransferError> {
        let (engine, image, source, dest) = (self.engine, self.image, self.source, self.dest);
        // After a failure no further blob starts, but those in flight end by themselves: an
        // upload dropped mid-way would leave its session open at the destination.
        let failed = &AtomicBool::new(false);
        let results: Vec<_> = futures_util::stream::iter(blobs.to_vec())
            .map(|b| {
                let (e, s, d) = (engine.clone(), source.clone(), dest.clone());
                async move {
                    if failed.load(Ordering::Relaxed) {
                        return Err(TransferError::Aborted);
                    }
                    let r = copy_blob(e, image, s, d, b).await;
                    failed.fetch_or(r.is_err(), Ordering::Relaxed);
                    r
                }
            })
            .buffer_unordered(engine.jobs)
            .collect()
            .await;
        let mut errors = results.into_iter().filter_map(Result::err);
        let first = errors.find(|e| !matches!(e, TransferError::Aborted));
        first.map_or(Ok(()), Err)?;
        engine.go_on()?;
        for child in children {
            if dest
                .manifest_digest(&child.digest.to_string())
                .await?
                .is_none()
            {
                put_manifest_repairing(
                    engine,
                    image,
                    source,
                    dest,
                    &child.digest.to_string(),
                    child,
                    blobs,
                )
                .await?;
            }
        }
        put_manifest_repairing(engine, image, source, dest, target_ref, top, blobs).await?;
        Ok(())
    }
}

/// Pushes a manifest. A registry may have answered a blob HEAD from a cache shared across
/// repositories (Distribution 2.8's in-memory blob descriptor cache does) although the blob is
/// not linked into this repository; its manifest PUT then fails with `MANIFEST_BLOB_UNKNOWN`
/// naming the blob. Those blobs are moved again without trusting HEAD (mounted or uploaded)
/// and the manifest is pushed once more.
async fn put_manifest_repairing(
    engine: &Arc<Engine>,
    image: usize,
    source: &Arc<dyn Source>,
    dest: &Arc<dyn Destination>,
    reference: &str,
    manifest: &Manifest,
    blobs: &[Descriptor],
) -> Result<(), TransferError> {
    let err = match dest.put_manifest(reference, manifest).await {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    let text = err.to_string();
    if !text.contains("BLOB_UNKNOWN") {
        return Err(err);
    }
    let missing: Vec<&Descriptor> = blobs
        .iter()
        .filter(|b| text.contains(&b.digest.to_string()))
        .collect();
    if missing.is_empty() {
        return Err(err);
    }
    for b in missing {
        let o = transfer_blob(
            engine.clone(),
            image,
            source.clone(),
            dest.clone(),
            b.clone(),
            false,
        )
        .await?;
        engine.count(o);
    }
    dest.put_manifest(reference, manifest).await
}

/// The registry end of `r` on `client`.
fn registry_end(client: &Client, r: &Reference) -> Arc<RegistryEnd> {
    Arc::new(RegistryEnd::new(client.registry(r.domain()), r.path()))
}

/// An end of `Endpoint::Ends` that goes one way only: `end`, or the error saying it cannot
/// be `used` (`read from`, `written to`) as it is `only` a source or destination.
fn one_way<T: Clone>(
    name: &str,
    end: &Option<T>,
    used: &str,
    only: &str,
) -> Result<T, TransferError> {
    end.clone().ok_or_else(|| TransferError::Usage {
        name: name.to_string(),
        detail: format!("cannot be {used} (it is a {only} only)"),
    })
}

/// Copies every `(source, target)` pair: blobs first (streamed, verified, each moved once,
/// skipped when present, mounted when another repository of the target registry has it),
/// then child manifests, then the top manifest, all byte for byte. Never panics on a
/// failed image: its error is in the report.
pub async fn copy_images(
    pairs: Vec<(Endpoint, Endpoint)>,
    opts: CopyOptions,
    events: Option<EventSink>,
) -> Report {
    let started = Instant::now();
    let jobs = opts.jobs.max(1);
    let clients = Client::new(opts.source_registries.clone()).and_then(|s| {
        Ok((
            s.with_retry(opts.retry),
            Client::new(opts.destination_registries.clone())?
                .with_retry(opts.retry)
                .local_only(),
        ))
    });
    let (src_client, dst_client) = match clients {
        Ok(c) => c,
        Err(e) => {
            let msg = e.to_string();
            return Report {
                images: pairs
                    .iter()
                    .map(|(s, d)| ImageReport {
                        source: s.to_string(),
                        target: d.to_string(),
                        digest: None,
                        status: ImageStatus::Failed,
                        error: Some(msg.clone()),
                        attached: 0,
                    })
                    .collect(),
                charts: Vec::new(),
                blobs: BlobCounts::default(),
                bytes: 0,
                seconds: started.elapsed().as_secs_f64(),
            };
        }
    };
    let engine = Arc::new(Engine {
        src_client,
        dst_client,
        retry: opts.retry,
        jobs,
        permits: Arc::new(Semaphore::new(jobs)),
        events,
        inflight: Mutex::new(HashMap::new()),
        located: Mutex::new(HashMap::new()),
        copied: AtomicU64::new(0),
        skipped: AtomicU64::new(0),
        mounted: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        abort: AtomicBool::new(false),
        cancel: opts.cancel.clone(),
        referrers: opts.referrers,
    });
    let keep_going = opts.keep_going;
    let images: Vec<ImageReport> = futures_util::stream::iter(pairs.into_iter().enumerate())
        .map(|(i, (src, dst))| {
            let engine = engine.clone();
            async move {
                let result = if engine.abort.load(Ordering::Relaxed) {
                    Err((None, TransferError::Aborted))
                } else if engine.cancel.is_cancelled() {
                    Err((None, TransferError::Cancelled))
                } else {
                    copy_one(engine.clone(), i, &src, &dst).await
                };
                let report = match result {
                    Ok((d, status, attached)) => ImageReport {
                        source: src.to_string(),
                        target: dst.to_string(),
                        digest: Some(d.to_string()),
                        status,
                        error: None,
                        attached,
                    },
                    Err((d, e)) => {
                        let cancelled = engine.cancel.is_cancelled();
                        if !keep_going && !cancelled {
                            engine.abort.store(true, Ordering::Relaxed);
                        }
                        ImageReport {
                            source: src.to_string(),
                            target: dst.to_string(),
                            digest: d.map(|d| d.to_string()),
                            status: match cancelled {
                                true => ImageStatus::Cancelled,
                                false => ImageStatus::Failed,
                            },
                            error: Some(match cancelled {
                                true => TransferError::Cancelled.to_string(),
                                false => e.to_string(),
                            }),
                            attached: 0,
                        }
                    }
                };
                engine.emit(Event::ImageDone {
                    image: i,
                    source: report.source.clone(),
                    target: report.target.clone(),
                    status: report.status,
                    error: report.error.clone(),
                });
                (i, report)
            }
        })
        .buffer_unordered(jobs)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<BTreeMap<_, _>>()
        .into_values()
        .collect();
    Report {
        images,
        charts: Vec::new(),
        blobs: BlobCounts {
            copied: engine.copied.load(Ordering::Relaxed),
            skipped: engine.skipped.load(Ordering::Relaxed),
            mounted: engine.mounted.load(Ordering::Relaxed),
        },
        bytes: engine.bytes.load(Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
    }
}
