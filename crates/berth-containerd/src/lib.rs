//! containerd as an end of the Berth transfer engine: the edge agent's way of putting
//! images where the kubelet (CRI) finds them, through containerd's own gRPC API (never by
//! running `ctr`).
//!
//! [`ContainerdEnd`] implements [`berth_ends::Destination`]:
//!
//! - `has_blob` is `Content.Info`; `put_blob` is a `Content.Write` stream (ref
//!   `berth-<digest>`, expected digest and total) committed only when the engine's
//!   verified stream ended cleanly (containerd checks digest and size again at commit);
//!   a failing stream aborts the write, so nothing half-written stays.
//! - `put_manifest` writes manifests and indexes as content with containerd's
//!   garbage-collection labels (`containerd.io/gc.ref.content.*`); for the image's name
//!   (not a digest) it then unpacks the host platform's layers into the snapshotter
//!   (`Snapshots.Prepare` → `Diff.Apply` → `Snapshots.Commit` under the chain ID, labels
//!   `containerd.io/uncompressed` on layers and `containerd.io/gc.ref.snapshot.<name>` on
//!   the config) and finally creates or updates the image record(s) (`Images.Create` /
//!   `Update`), whose target is the top manifest or index.
//! - `manifest_digest(name)` is the image record's target, but only when every name of the
//!   image points to it and it is unpacked: so a rerun skips exactly the images that are
//!   complete.
//!
//! Of an index, the engine copies only the host platform's manifest and content (the end
//! declines other children through `Destination::wants_child`, as `ctr images pull`
//! fetches only the host's); the index itself is stored whole, with its digest, and the
//! host platform is unpacked. A preload archive may therefore lack foreign platforms.
//!
//! While importing, [`Containerd::begin_lease`] holds a lease so containerd's garbage
//! collector does not take content that no image references yet. The lease expires after
//! 24 h when the import is interrupted, so a rerun finds the blobs already written.

mod client;
mod end;
mod error;
pub mod unpack;

pub use berth_oci::Platform;
pub use client::{
    Containerd, ContainerdOptions, DEFAULT_NAMESPACE, DEFAULT_SNAPSHOTTER, DEFAULT_SOCKET, Held,
    ImageRecord, LEASE_EXPIRY, MAX_DOCUMENT_BYTES,
};
pub use end::{ContainerdEnd, ImageState, image_state};
pub use error::ContainerdError;

/// The image name containerd and the kubelet use for a reference: fully qualified, as
/// `ctr images ls` shows it (`nginx:1` → `docker.io/library/nginx:1`).
pub fn image_name(reference: &str) -> Result<String, berth_reference::ReferenceError> {
    Ok(berth_reference::Reference::parse(reference)?.to_string())
}

/// The label the CRI plugin puts on images it manages (set on records in `k8s.io`).
pub const LABEL_CRI_MANAGED: (&str, &str) = ("io.cri-containerd.image", "managed");
