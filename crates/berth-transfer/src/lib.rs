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

mod ends;
mod engine;
mod error;
mod layout;
pub mod manifest;
mod platform;
mod registry_end;

pub use ends::{Destination, Source};
pub use engine::{
    BlobCounts, BlobOutcome, CopyOptions, Endpoint, Event, EventSink, ImageReport, ImageStatus,
    Report, VerifyResult, VerifyStatus, copy_images, verify,
};
pub use error::TransferError;
pub use layout::{OciLayout, REF_NAME};
pub use platform::Platform;
pub use registry_end::RegistryEnd;
