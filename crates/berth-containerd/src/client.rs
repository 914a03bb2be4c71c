//! A connection to containerd: the gRPC services the agent needs, each call carrying the
//! namespace (`containerd-namespace`) and, during an import, the lease (`containerd-lease`).

mod content;
mod images;
mod snapshots;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_reference::Digest;
use containerd_client::services::v1 as api;
use containerd_client::services::v1::snapshots as snap;
use tonic::Request;
use tonic::transport::Channel;

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
}

pub(crate) use berth_oci::error_chain;

/// `2024-01-01T00:00:00Z` (RFC 3339, UTC, whole seconds) for a time since the Unix epoch;
/// the last second RFC 3339 can write for a later one.
pub(crate) fn rfc3339(since_epoch: Duration) -> String {
    berth_oci::units::rfc3339(since_epoch).unwrap_or_else(|| "9999-12-31T23:59:59Z".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_expiry_dates_are_rfc3339_and_never_past_9999() {
        assert_eq!(
            rfc3339(Duration::from_secs(1_704_067_200 + 3661)),
            "2024-01-01T01:01:01Z"
        );
        assert_eq!(rfc3339(Duration::MAX), "9999-12-31T23:59:59Z");
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
