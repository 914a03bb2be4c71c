//! A connection to containerd: the gRPC services the agent needs, each call carrying the
//! namespace (`containerd-namespace`) and, during an import, the lease (`containerd-lease`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_oci::ByteStream;
use berth_reference::Digest;
use bytes::{Bytes, BytesMut};
use containerd_client::services::v1 as api;
use containerd_client::services::v1::snapshots as snap;
use containerd_client::types::{Descriptor as PbDescriptor, Mount};
use futures_util::StreamExt;
use tonic::transport::Channel;
use tonic::{Code, Request};

use crate::ContainerdError;
use berth_oci::Platform;

/// The biggest chunk sent in one `Content.Write` message (containerd accepts 16 MiB).
const WRITE_CHUNK: usize = 1 << 20;
/// The largest manifest, index or config read whole.
pub const MAX_DOCUMENT_BYTES: usize = 8 << 20;
/// How long a lease protects content of an interrupted import (for a rerun to reuse).
pub const LEASE_EXPIRY: Duration = Duration::from_secs(24 * 3600);

/// Where and how to connect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerdOptions {
    /// containerd's gRPC socket (`/run/containerd/containerd.sock`).
    pub socket: PathBuf,
    /// The namespace images go to (`k8s.io` for Kubernetes).
    pub namespace: String,
    /// The snapshotter layers are unpacked into (`overlayfs`, `native`).
    pub snapshotter: String,
    /// The platform whose image is unpacked from an index.
    pub platform: Platform,
}

/// The default socket of containerd.
pub const DEFAULT_SOCKET: &str = "/run/containerd/containerd.sock";
/// The namespace the CRI plugin (Kubernetes) uses.
pub const DEFAULT_NAMESPACE: &str = "k8s.io";
/// containerd's default snapshotter on Linux.
pub const DEFAULT_SNAPSHOTTER: &str = "overlayfs";

impl Default for ContainerdOptions {
    fn default() -> ContainerdOptions {
        ContainerdOptions {
            socket: PathBuf::from(DEFAULT_SOCKET),
            namespace: DEFAULT_NAMESPACE.into(),
            snapshotter: DEFAULT_SNAPSHOTTER.into(),
            platform: Platform::host(),
        }
    }
}

/// An image record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRecord {
    pub name: String,
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    pub labels: HashMap<String, String>,
}

/// A connection to one containerd namespace.
/// What [`Containerd::hold`] puts into a lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    Content,
    Snapshot,
}

pub struct Containerd {
    channel: Channel,
    opts: ContainerdOptions,
    lease: Mutex<Option<String>>,
    /// One unpack per chain ID at a time in this process: images sharing layers, imported
    /// concurrently, would otherwise each prepare a snapshot and apply the same layer
    /// (with the native snapshotter a full copy each) only for all commits but one to fail.
    unpacking: Mutex<HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for Containerd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Containerd({}, namespace {})",
            self.opts.socket.display(),
            self.opts.namespace
        )
    }
}

fn valid_namespace(ns: &str) -> bool {
    !ns.is_empty()
        && ns.len() <= 76
        && ns
            .split(['.', '_', '-'])
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

impl Containerd {
    /// Holds the unpack of chain `chain` in this process until the guard is dropped.
    pub(crate) async fn lock_chain(&self, chain: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let m = self
            .unpacking
            .lock()
            .expect("lock")
            .entry(chain.to_string())
            .or_default()
            .clone();
        m.lock_owned().await
    }

    /// Connects and checks that containerd answers (its version).
    pub async fn connect(opts: ContainerdOptions) -> Result<Containerd, ContainerdError> {
        if !valid_namespace(&opts.namespace) {
            return Err(ContainerdError::Namespace {
                namespace: opts.namespace.clone(),
            });
        }
        let socket = opts.socket.clone();
        if !socket.exists() {
            return Err(ContainerdError::NoSocket { socket });
        }
        let connect_err = |detail: String| ContainerdError::Connect {
            socket: socket.clone(),
            detail,
        };
        let channel =
            tokio::time::timeout(Duration::from_secs(10), containerd_client::connect(&socket))
                .await
                .map_err(|_| connect_err("no answer within 10 s".into()))?
                .map_err(|e| connect_err(error_chain(&e)))?;
        let cd = Containerd {
            channel,
            opts,
            lease: Mutex::new(None),
            unpacking: Mutex::new(HashMap::new()),
        };
        let mut v =
            containerd_client::services::v1::version_client::VersionClient::new(cd.channel.clone());
        tokio::time::timeout(Duration::from_secs(10), v.version(()))
            .await
            .map_err(|_| connect_err("the Version call got no answer within 10 s".into()))?
            .map_err(|s| connect_err(format!("the Version call failed: {}", s.message())))?;
        Ok(cd)
    }

    pub fn socket(&self) -> &Path {
        &self.opts.socket
    }

    pub fn namespace(&self) -> &str {
        &self.opts.namespace
    }

    pub fn snapshotter(&self) -> &str {
        &self.opts.snapshotter
    }

    pub fn platform(&self) -> &Platform {
        &self.opts.platform
    }

    /// containerd's version (`1.6.20~ds1`).
    pub async fn version(&self) -> Result<String, ContainerdError> {
        let mut v = containerd_client::services::v1::version_client::VersionClient::new(
            self.channel.clone(),
        );
        let r = v
            .version(())
            .await
            .map_err(|s| ContainerdError::rpc("Version", s))?;
        Ok(r.into_inner().version)
    }

    fn req<T>(&self, msg: T) -> Request<T> {
        let mut r = Request::new(msg);
        let md = r.metadata_mut();
        if let Ok(v) = self.opts.namespace.parse() {
            md.insert("containerd-namespace", v);
        }
        if let Some(l) = self.lease.lock().expect("lock").as_deref()
            && let Ok(v) = l.parse()
        {
            md.insert("containerd-lease", v);
        }
        r
    }

    fn content(&self) -> api::content_client::ContentClient<Channel> {
        api::content_client::ContentClient::new(self.channel.clone())
            .max_decoding_message_size(64 << 20)
    }

    fn images(&self) -> api::images_client::ImagesClient<Channel> {
        api::images_client::ImagesClient::new(self.channel.clone())
    }

    fn snapshots(&self) -> snap::snapshots_client::SnapshotsClient<Channel> {
        snap::snapshots_client::SnapshotsClient::new(self.channel.clone())
    }

    // ---- leases

    /// Starts a lease: content and snapshots written from now on are kept from garbage
    /// collection until [`Containerd::end_lease`] (or until it expires, 24 h later, if the
    /// import was interrupted: a rerun finds the content still there).
    pub async fn begin_lease(&self) -> Result<String, ContainerdError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let id = format!(
            "berth-{}-{}-{:08x}",
            now.as_secs(),
            std::process::id(),
            fastrand::u32(..)
        );
        let expire = rfc3339(now + LEASE_EXPIRY);
        let mut c = api::leases_client::LeasesClient::new(self.channel.clone());
        c.create(self.req(api::CreateRequest {
            id: id.clone(),
            labels: HashMap::from([("containerd.io/gc.expire".to_string(), expire)]),
        }))
        .await
        .map_err(|s| ContainerdError::rpc(format!("creating lease {id}"), s))?;
        *self.lease.lock().expect("lock") = Some(id.clone());
        Ok(id)
    }

    /// Ends the lease: what no image references may now be collected.
    pub async fn end_lease(&self) -> Result<(), ContainerdError> {
        let id = self.lease.lock().expect("lock").take();
        if let Some(id) = id {
            let mut c = api::leases_client::LeasesClient::new(self.channel.clone());
            c.delete(self.req(api::DeleteRequest {
                id: id.clone(),
                sync: false,
            }))
            .await
            .map_err(|s| ContainerdError::rpc(format!("deleting lease {id}"), s))?;
        }
        Ok(())
    }

    /// Puts `id` (content: a digest; a snapshot: its key) into the running import's lease,
    /// so that what the import found already there and relies on is not garbage-collected
    /// before the image that references it is recorded. No-op without a lease.
    pub async fn hold(&self, kind: Held, id: &str) -> Result<(), ContainerdError> {
        let Some(lease) = self.lease.lock().expect("lock").clone() else {
            return Ok(());
        };
        let r#type = match kind {
            Held::Content => "content".to_string(),
            Held::Snapshot => format!("snapshots/{}", self.opts.snapshotter),
        };
        let mut c = api::leases_client::LeasesClient::new(self.channel.clone());
        c.add_resource(self.req(api::AddResourceRequest {
            id: lease.clone(),
            resource: Some(api::Resource {
                id: id.to_string(),
                r#type,
            }),
        }))
        .await
        .map_err(|s| ContainerdError::rpc(format!("adding {id} to lease {lease}"), s))?;
        Ok(())
    }

    /// Forgets the lease without deleting it: it expires by itself.
    pub fn keep_lease(&self) -> Option<String> {
        self.lease.lock().expect("lock").take()
    }

    // ---- content

    /// The content's labels, or `None` when the namespace does not have it.
    pub async fn content_info(
        &self,
        digest: &Digest,
    ) -> Result<Option<HashMap<String, String>>, ContainerdError> {
        match self
            .content()
            .info(self.req(api::InfoRequest {
                digest: digest.to_string(),
            }))
            .await
        {
            Ok(r) => Ok(Some(
                r.into_inner().info.map(|i| i.labels).unwrap_or_default(),
            )),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(ContainerdError::rpc(format!("Content.Info {digest}"), s)),
        }
    }

    /// Reads small content (a manifest, index or config) whole; `None` when absent.
    pub async fn read_content(&self, digest: &Digest) -> Result<Option<Bytes>, ContainerdError> {
        let what = || format!("Content.Read {digest}");
        let mut stream = match self
            .content()
            .read(self.req(api::ReadContentRequest {
                digest: digest.to_string(),
                offset: 0,
                size: 0,
            }))
            .await
        {
            Ok(r) => r.into_inner(),
            Err(s) if s.code() == Code::NotFound => return Ok(None),
            Err(s) => return Err(ContainerdError::rpc(what(), s)),
        };
        let mut out = BytesMut::new();
        loop {
            match stream.message().await {
                Ok(Some(m)) => {
                    out.extend_from_slice(&m.data);
                    if out.len() > MAX_DOCUMENT_BYTES {
                        return Err(ContainerdError::Image {
                            image: digest.to_string(),
                            detail: format!(
                                "content is larger than {MAX_DOCUMENT_BYTES} bytes; it is not a manifest or config"
                            ),
                        });
                    }
                }
                Ok(None) => break,
                Err(s) if s.code() == Code::NotFound => return Ok(None),
                Err(s) => return Err(ContainerdError::rpc(what(), s)),
            }
        }
        Ok(Some(out.freeze()))
    }

    /// Writes content from a stream: `Content.Write` with the expected digest and total,
    /// committed (with `labels`) only when the stream ended cleanly; containerd checks
    /// digest and size again at the commit. If the stream fails, the write is aborted and
    /// nothing is committed; the stream's error is returned as is (`Err(Ok(io))`).
    /// Content already there is not written again.
    pub async fn write_content(
        &self,
        digest: &Digest,
        size: u64,
        mut data: ByteStream,
        labels: HashMap<String, String>,
    ) -> Result<(), Result<std::io::Error, ContainerdError>> {
        let reference = format!("berth-{digest}");
        let fail = |detail: String| ContainerdError::Write {
            digest: digest.to_string(),
            detail,
        };
        let (tx, rx) = tokio::sync::mpsc::channel::<api::WriteContentRequest>(2);
        let base = api::WriteContentRequest {
            r#ref: reference.clone(),
            total: size as i64,
            expected: digest.to_string(),
            ..Default::default()
        };
        // The first message opens the ingest (it must name the ref). Writing then starts
        // at offset 0 (containerd truncates what a former attempt left), so every byte
        // committed is one the engine verified in this run.
        let _ = tx
            .send(api::WriteContentRequest {
                action: api::WriteAction::Stat as i32,
                ..base.clone()
            })
            .await;
        let responses = match self
            .content()
            .write(self.req(tokio_stream::wrappers::ReceiverStream::new(rx)))
            .await
        {
            Ok(r) => r.into_inner(),
            Err(s) if s.code() == Code::AlreadyExists => return Ok(()),
            Err(s) => {
                return Err(Err(ContainerdError::rpc(
                    format!("Content.Write {digest}"),
                    s,
                )));
            }
        };
        let mut session = WriteSession {
            tx,
            responses,
            what: format!("Content.Write {digest}"),
        };
        let result: Result<(), Result<std::io::Error, ContainerdError>> = async {
            match session.recv().await {
                Ok(_) => {}
                // Committed meanwhile (another writer of the same blob).
                Err(e) if e.code() == Some(Code::AlreadyExists) => return Ok(()),
                Err(e) => return Err(Err(e)),
            }
            let mut offset: u64 = 0;
            let mut buf = BytesMut::with_capacity(WRITE_CHUNK);
            let mut ended = false;
            while !ended {
                match data.next().await {
                    Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                    Some(Err(e)) => return Err(Ok(e)),
                    None => ended = true,
                }
                while buf.len() >= WRITE_CHUNK || (ended && !buf.is_empty()) {
                    let n = buf.len().min(WRITE_CHUNK);
                    let part = buf.split_to(n);
                    let o = session
                        .step(api::WriteContentRequest {
                            action: api::WriteAction::Write as i32,
                            offset: offset as i64,
                            data: part.to_vec(),
                            ..base.clone()
                        })
                        .await
                        .map_err(Err)?;
                    offset += n as u64;
                    if o as u64 != offset {
                        return Err(Err(fail(format!(
                            "containerd is at offset {o} after {offset} bytes were sent"
                        ))));
                    }
                }
            }
            if offset != size {
                return Err(Err(fail(format!(
                    "the stream ended after {offset} bytes, {size} expected"
                ))));
            }
            match session
                .step(api::WriteContentRequest {
                    action: api::WriteAction::Commit as i32,
                    offset: offset as i64,
                    labels,
                    ..base.clone()
                })
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if e.code() == Some(Code::AlreadyExists) => Ok(()),
                Err(e) => Err(Err(e)),
            }
        }
        .await;
        drop(session);
        if result.is_err() {
            self.abort_write(&reference).await;
        }
        result
    }

    /// Writes small content held in memory.
    pub async fn write_bytes(
        &self,
        digest: &Digest,
        bytes: Bytes,
        labels: HashMap<String, String>,
    ) -> Result<(), ContainerdError> {
        let size = bytes.len() as u64;
        let stream: ByteStream = Box::pin(futures_util::stream::once(async move { Ok(bytes) }));
        self.write_content(digest, size, stream, labels)
            .await
            .map_err(|e| match e {
                Ok(io) => ContainerdError::Write {
                    digest: digest.to_string(),
                    detail: io.to_string(),
                },
                Err(e) => e,
            })
    }

    async fn abort_write(&self, reference: &str) {
        let _ = self
            .content()
            .abort(self.req(api::AbortRequest {
                r#ref: reference.to_string(),
            }))
            .await;
    }

    /// Sets labels of content (others are kept).
    pub async fn set_content_labels(
        &self,
        digest: &Digest,
        labels: HashMap<String, String>,
    ) -> Result<(), ContainerdError> {
        if labels.is_empty() {
            return Ok(());
        }
        let paths = labels.keys().map(|k| format!("labels.{k}")).collect();
        self.content()
            .update(self.req(api::UpdateRequest {
                info: Some(api::Info {
                    digest: digest.to_string(),
                    labels,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask { paths }),
            }))
            .await
            .map_err(|s| ContainerdError::rpc(format!("Content.Update {digest}"), s))?;
        Ok(())
    }

    /// Digests of all content in the namespace.
    pub async fn list_content(&self) -> Result<Vec<String>, ContainerdError> {
        let mut s = self
            .content()
            .list(self.req(api::ListContentRequest { filters: vec![] }))
            .await
            .map_err(|s| ContainerdError::rpc("Content.List", s))?
            .into_inner();
        let mut out = Vec::new();
        while let Some(m) = s
            .message()
            .await
            .map_err(|s| ContainerdError::rpc("Content.List", s))?
        {
            out.extend(m.info.into_iter().map(|i| i.digest));
        }
        Ok(out)
    }

    // ---- images

    pub async fn get_image(&self, name: &str) -> Result<Option<ImageRecord>, ContainerdError> {
        match self
            .images()
            .get(self.req(api::GetImageRequest {
                name: name.to_string(),
            }))
            .await
        {
            Ok(r) => Ok(r.into_inner().image.and_then(record)),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(ContainerdError::rpc(format!("Images.Get {name}"), s)),
        }
    }

    pub async fn list_images(&self) -> Result<Vec<ImageRecord>, ContainerdError> {
        let r = self
            .images()
            .list(self.req(api::ListImagesRequest { filters: vec![] }))
            .await
            .map_err(|s| ContainerdError::rpc("Images.List", s))?;
        Ok(r.into_inner()
            .images
            .into_iter()
            .filter_map(record)
            .collect())
    }

    /// Creates the image record, or points an existing one at `target`.
    pub async fn put_image(
        &self,
        name: &str,
        media_type: &str,
        digest: &Digest,
        size: u64,
        labels: HashMap<String, String>,
    ) -> Result<(), ContainerdError> {
        let image = api::Image {
            name: name.to_string(),
            labels,
            target: Some(PbDescriptor {
                media_type: media_type.to_string(),
                digest: digest.to_string(),
                size: size as i64,
                annotations: HashMap::new(),
            }),
            created_at: None,
            updated_at: None,
        };
        match self
            .images()
            .create(self.req(api::CreateImageRequest {
                image: Some(image.clone()),
                source_date_epoch: None,
            }))
            .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.code() == Code::AlreadyExists => {
                self.images()
                    .update(self.req(api::UpdateImageRequest {
                        image: Some(image),
                        update_mask: None,
                        source_date_epoch: None,
                    }))
                    .await
                    .map_err(|s| ContainerdError::rpc(format!("Images.Update {name}"), s))?;
                Ok(())
            }
            Err(s) => Err(ContainerdError::rpc(format!("Images.Create {name}"), s)),
        }
    }

    pub async fn delete_image(&self, name: &str) -> Result<(), ContainerdError> {
        match self
            .images()
            .delete(self.req(api::DeleteImageRequest {
                name: name.to_string(),
                sync: false,
                target: None,
            }))
            .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.code() == Code::NotFound => Ok(()),
            Err(s) => Err(ContainerdError::rpc(format!("Images.Delete {name}"), s)),
        }
    }

    // ---- snapshots and diff

    pub async fn snapshot_exists(&self, key: &str) -> Result<bool, ContainerdError> {
        match self
            .snapshots()
            .stat(self.req(snap::StatSnapshotRequest {
                snapshotter: self.opts.snapshotter.clone(),
                key: key.to_string(),
            }))
            .await
        {
            Ok(_) => Ok(true),
            Err(s) if s.code() == Code::NotFound => Ok(false),
            Err(s) => Err(ContainerdError::rpc(
                format!("Snapshots.Stat {key} ({})", self.opts.snapshotter),
                s,
            )),
        }
    }

    pub async fn prepare_snapshot(
        &self,
        key: &str,
        parent: &str,
        labels: HashMap<String, String>,
    ) -> Result<Vec<Mount>, ContainerdError> {
        let r = self
            .snapshots()
            .prepare(self.req(snap::PrepareSnapshotRequest {
                snapshotter: self.opts.snapshotter.clone(),
                key: key.to_string(),
                parent: parent.to_string(),
                labels,
            }))
            .await
            .map_err(|s| {
                ContainerdError::rpc(
                    format!("Snapshots.Prepare {key} ({})", self.opts.snapshotter),
                    s,
                )
            })?;
        Ok(r.into_inner().mounts)
    }

    pub async fn commit_snapshot(
        &self,
        name: &str,
        key: &str,
        labels: HashMap<String, String>,
    ) -> Result<(), ContainerdError> {
        self.snapshots()
            .commit(self.req(snap::CommitSnapshotRequest {
                snapshotter: self.opts.snapshotter.clone(),
                name: name.to_string(),
                key: key.to_string(),
                labels,
            }))
            .await
            .map_err(|s| ContainerdError::rpc(format!("Snapshots.Commit {name}"), s))?;
        Ok(())
    }

    pub async fn remove_snapshot(&self, key: &str) -> Result<(), ContainerdError> {
        self.snapshots()
            .remove(self.req(snap::RemoveSnapshotRequest {
                snapshotter: self.opts.snapshotter.clone(),
                key: key.to_string(),
            }))
            .await
            .map_err(|s| ContainerdError::rpc(format!("Snapshots.Remove {key}"), s))?;
        Ok(())
    }

    /// Applies a layer to mounts; returns the digest of the uncompressed tar (the diff ID).
    pub async fn apply_layer(
        &self,
        media_type: &str,
        digest: &Digest,
        size: u64,
        mounts: Vec<Mount>,
    ) -> Result<String, ContainerdError> {
        let mut c = api::diff_client::DiffClient::new(self.channel.clone());
        let r = c
            .apply(self.req(api::ApplyRequest {
                diff: Some(PbDescriptor {
                    media_type: media_type.to_string(),
                    digest: digest.to_string(),
                    size: size as i64,
                    annotations: HashMap::new(),
                }),
                mounts,
                payloads: HashMap::new(),
                sync_fs: false,
            }))
            .await
            .map_err(|s| ContainerdError::rpc(format!("Diff.Apply {digest}"), s))?;
        Ok(r.into_inner().applied.map(|d| d.digest).unwrap_or_default())
    }
}

/// One `Content.Write` stream: containerd answers every request with one response.
struct WriteSession {
    tx: tokio::sync::mpsc::Sender<api::WriteContentRequest>,
    responses: tonic::Streaming<api::WriteContentResponse>,
    what: String,
}

impl WriteSession {
    async fn recv(&mut self) -> Result<i64, ContainerdError> {
        match self.responses.message().await {
            Ok(Some(r)) => Ok(r.offset),
            Ok(None) => Err(ContainerdError::Rpc {
                what: self.what.clone(),
                code: Code::Unavailable,
                message: "containerd closed the write stream early".into(),
            }),
            Err(s) => Err(ContainerdError::rpc(self.what.clone(), s)),
        }
    }

    async fn step(&mut self, req: api::WriteContentRequest) -> Result<i64, ContainerdError> {
        // If containerd ended the stream, sending fails and the next response carries
        // its status.
        let _ = self.tx.send(req).await;
        self.recv().await
    }
}

fn record(i: api::Image) -> Option<ImageRecord> {
    let t = i.target?;
    Some(ImageRecord {
        name: i.name,
        media_type: t.media_type,
        digest: Digest::parse(&t.digest).ok()?,
        size: t.size.max(0) as u64,
        labels: i.labels,
    })
}

/// The chain of an error and its sources.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

/// `2024-01-01T00:00:00Z` (RFC 3339, UTC, whole seconds) for a time since the Unix epoch.
pub(crate) fn rfc3339(since_epoch: Duration) -> String {
    let secs = i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX);
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "9999-12-31T23:59:59Z".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_dates() {
        assert_eq!(rfc3339(Duration::from_secs(0)), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(Duration::from_secs(1_704_067_200 + 3661)),
            "2024-01-01T01:01:01Z"
        );
        assert_eq!(
            rfc3339(Duration::from_secs(1_709_164_800)),
            "2024-02-29T00:00:00Z"
        );
    }

    #[test]
    fn namespaces_are_checked() {
        assert!(valid_namespace("k8s.io"));
        assert!(valid_namespace("default"));
        assert!(!valid_namespace("a..b"));
        assert!(!valid_namespace(""));
        assert!(!valid_namespace("a/b"));
    }
}
