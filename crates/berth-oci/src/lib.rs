//! The OCI vocabulary at the bottom of Berth: what every other crate says about content.
//!
//! - [`media`]: manifest media types and how a manifest's own JSON names its type;
//! - [`Manifest`]: a manifest as the exact bytes received, with its media type and digest;
//! - [`Descriptor`], [`Platform`] and [`walk`]: the one manifest parser, which finds what a
//!   manifest refers to (children of an index, config and layers of an image, its `subject`)
//!   without ever re-serializing it;
//! - [`Hasher`], [`digest_of`], [`sha256_of`]: the one hasher (sha256 with SHA-NI where the
//!   CPU has it, sha512);
//! - [`ByteStream`] and [`VerifyingStream`]: blob bytes in flight, verified before the last
//!   chunk is handed on;
//! - [`Fault`]: what an error at a crate seam says about itself (may a retry help?);
//! - [`units`]: how sizes and durations read in progress, summaries and errors.
//!
//! No I/O, no network: format and runtime crates depend on this, not on the client.

mod digest;
mod fault;
mod manifest;
pub mod media;
mod platform;
pub mod referrers;
mod retry;
mod stream;
pub mod units;

pub use digest::{Hasher, digest_of, hex, sha256_of};
pub use fault::{Fault, error_chain};
pub use manifest::{Descriptor, Kind, Manifest, ManifestError, Walk, walk};
pub use media::media_type_from_json;
pub use platform::Platform;
pub use retry::RetryPolicy;
pub use stream::{ByteStream, VerifyError, VerifyingStream};
