//! Air-gap content bundles: every image of a profile, the profile itself and a signed
//! manifest in one deterministic `.tar.zst` (optionally split into parts), for sites with
//! no link.
//!
//! # Format (version 1)
//!
//! A tar (GNU headers; every entry a regular file, mode 0644, mtime 0, uid/gid 0, no user
//! or group names) compressed as one zstd stream with a content checksum. Entries, in this
//! order:
//!
//! 1. `bundle.json` ([`BundleManifest`]): format version, the profiles' names, the kept
//!    platforms, and the digest and size of `index.json`, of every profile file and of
//!    every blob; every image with its source reference, digest, media type and size.
//! 2. `bundle.json.sig`: an ed25519 signature of `bundle.json`'s bytes (when signed).
//!    Since `bundle.json` names the digest of every other entry, it covers the whole bundle.
//! 3. `oci-layout`, `index.json`: an OCI image layout whose `index.json` names each image by
//!    its full source reference (`org.opencontainers.image.ref.name`).
//! 4. `profiles/FILE`: the profile files, sorted.
//! 5. `blobs/sha256/HEX`: every manifest, config and layer, sorted by digest.
//!
//! The same inputs give the same bytes (zstd with at least one worker thread produces the
//! same stream whatever the number of threads). A bundle split with `split_size` is the
//! same stream cut into `NAME.part00`, `NAME.part01`, …; every reader takes `NAME` or
//! `NAME.part00`.
//!
//! # Reading
//!
//! [`scan`] reads the stream once, never decompressing it to disk: it refuses entries no
//! bundle has (absolute paths, `..`, links, devices, duplicates, unknown names), checks the
//! signature before any blob, hashes every blob as it flows and, at the end, checks that
//! every manifest's children, configs and layers are there. [`head`] reads only
//! `bundle.json`. [`extract`] writes a verified OCI layout (built in a temporary directory
//! beside the target and renamed into place only when everything checked out);
//! [`Extracted`] does so into a temporary directory for [`push`] and [`serve`].

mod build;
mod error;
mod extract;
mod hash;
pub mod manifest;
pub mod parts;
mod profiles;
mod read;
mod serve;
pub mod sign;
mod summary;
mod write;

pub use build::{BuildOptions, BuildReport, ProfileFile, build, parse_platform};
pub use error::BundleError;
pub use extract::{Extracted, extract, push};
pub use manifest::{BundleManifest, Content, ImageEntry, ProfileEntry};
pub use profiles::{profile_files, read_profile_files};
pub use read::{BlobSink, Contents, Head, blob_entry, head, scan};
pub use serve::{BundleContent, BundleServer, ServeOptions, listen, router, serve};
