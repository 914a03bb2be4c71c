//! The one image transfer engine, used by mirror, bundles, the edge registry and the agent.
//!
//! [`copy_images`] copies images between [`Endpoint`]s (registries, OCI layouts) byte for
//! byte: single manifests, Docker schema 2, OCI indexes and Docker manifest lists with
//! every platform. Blobs stream in constant memory and are verified (sha256/sha512) as
//! they flow; a corrupted blob never becomes visible at the destination. The destination
//! is the state: a rerun moves only what is missing. [`verify`] checks targets.
//!
//! The ends are the small object-safe traits [`Source`] and [`Destination`], implemented
//! by [`RegistryEnd`] and [`OciLayout`].

mod attached;
mod charts;
mod endpoint;
mod engine;
mod mirror;
mod registry_end;
mod tally;
mod transport;
mod verify;

pub use berth_archive::{OciLayout, REF_NAME};
pub use berth_ends::{Destination, EndFailure, Source, TransferError, manifest};
pub use berth_oci::{Platform, units};
pub use charts::chart_endpoint;
pub use endpoint::Endpoint;
pub use engine::{
    BlobCounts, BlobOutcome, CopyOptions, Event, EventSink, ImageReport, ImageStatus, Report,
    copy_images,
};
pub use mirror::{mirror, verify_plan};
pub use registry_end::RegistryEnd;
pub use tally::{Finished, Tally};
pub use tokio_util::sync::CancellationToken;
pub use transport::{Side, TransportError, endpoint};
pub use verify::{VerifyReport, VerifyResult, VerifyStatus, mirror_command, verify};
