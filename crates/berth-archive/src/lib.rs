//! The two archive transports skopeo users know, as ends of the Berth transfer engine
//! ([`berth_transfer::Source`] and [`berth_transfer::Destination`]):
//!
//! - `oci-archive:FILE[:REF]`: a tar of an OCI image layout (`oci-layout`, `index.json`,
//!   `blobs/<alg>/<hex>`). `REF` is the `org.opencontainers.image.ref.name` of an
//!   `index.json` entry; without it the archive must hold exactly one entry.
//!   [`OciArchive`] reads it, [`OciArchiveWriter`] writes it.
//! - `docker-archive:FILE[:REF]`: the `docker save` format (`manifest.json` with `Config`,
//!   `RepoTags`, `Layers`). [`DockerArchive`] reads it, [`DockerArchiveWriter`] writes it.
//!
//! # Reading
//!
//! Reading streams: nothing is loaded whole except the small JSON documents (index,
//! manifests, configs, `manifest.json`, each capped). The tar is indexed once (entry
//! name → offset and size, one pass over the headers with seeks past the data) and blobs
//! are then read with positional reads of that range, so several blobs stream at once
//! from one file. An archive compressed as a whole (gzip or zstd, recognised by its magic
//! bytes, never by its name) cannot be indexed in place: it is decompressed once into an
//! anonymous temporary file in the system temporary directory (`$TMPDIR`, else `/tmp`;
//! unlinked at once, so nothing is left behind even after a crash; it needs as much free
//! space there as the uncompressed tar).
//!
//! Indexing happens lazily, on the first request, on a blocking thread: opening is cheap.
//!
//! A `docker-archive` holds no manifest: [`DockerArchive`] synthesizes a Docker schema 2
//! manifest whose descriptors point at the config and layer files by their sha256 (the
//! layer bytes as stored; `…rootfs.diff.tar` for a plain tar, `…tar.gzip` for gzip). The
//! digest of a docker-archive image is therefore necessarily the digest of that
//! synthesized manifest, not of any manifest the image had in a registry (skopeo does the
//! same; its synthesized bytes differ, so the digests differ from skopeo's too).
//!
//! # Hostile archives
//!
//! An entry named with `..`, an absolute path, a link leaving the archive, a device, FIFO
//! or sparse entry, a name that is not UTF-8 or appears twice, entries that run past the
//! end of the file or a missing end-of-archive marker (a truncated file) make the archive
//! refused with an [`ArchiveError`] naming the archive and the entry. Nothing is ever
//! extracted: entries are only read as byte ranges, and symbolic or hard links inside the
//! archive (`docker save` links identical `layer.tar` files) are resolved within it. Blob
//! contents are verified by the engine as they flow.
//!
//! # Writing
//!
//! Blobs are collected in a temporary directory beside the target file
//! (`.FILE.berth-stage-XXXXXX`, removed when the writer is dropped), each written to a
//! temporary file and renamed only when the verified stream ended without error. When
//! the engine puts the image's top manifest under a tag (it does so last, after every
//! blob and child manifest), the archive is written to `.FILE.tmp-…`, fsynced and renamed
//! to `FILE` (`berth_atomic`). The tar is deterministic: entries sorted by name, mode 0644/0755, mtime 0,
//! uid/gid 0, no user or group names. An existing archive at `FILE` is updated, not
//! replaced: its other images are kept (like an OCI layout directory), an image under
//! the same name is replaced. A file at `FILE` that is not such an archive is refused.

mod docker;
mod error;
mod file;
mod layout;
mod oci;
pub mod preload;
mod tarindex;
mod writer;

pub use docker::{DockerArchive, DockerArchiveWriter};
pub use error::ArchiveError;
pub use layout::{OciLayout, REF_NAME};
pub use oci::{OciArchive, OciArchiveWriter};
pub use tarindex::relative_entry_name;

use std::path::PathBuf;

/// Which archive format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// `oci-archive:`
    Oci,
    /// `docker-archive:`
    Docker,
}

impl Format {
    /// The transport prefix, without the colon.
    pub fn transport(self) -> &'static str {
        match self {
            Format::Oci => "oci-archive",
            Format::Docker => "docker-archive",
        }
    }
}

/// A parsed `oci-archive:FILE[:REF]` or `docker-archive:FILE[:REF]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveRef {
    pub format: Format,
    pub path: PathBuf,
    /// `REF`: an `index.json` ref name (oci-archive) or `name:tag` / `@N` (docker-archive).
    pub reference: Option<String>,
}

impl ArchiveRef {
    /// Parses `TRANSPORT:FILE[:REF]` like skopeo: `FILE` ends at the first `:` after the
    /// transport (so `docker-archive:a.tar:nginx:1.27` is `a.tar` and `nginx:1.27`).
    /// `None` when `s` has neither transport prefix.
    pub fn parse(s: &str) -> Option<Result<ArchiveRef, ArchiveError>> {
        let (format, rest) = if let Some(r) = s.strip_prefix("oci-archive:") {
            (Format::Oci, r)
        } else if let Some(r) = s.strip_prefix("docker-archive:") {
            (Format::Docker, r)
        } else {
            return None;
        };
        let (path, reference) = match rest.split_once(':') {
            Some((p, r)) => (p, Some(r.to_string())),
            None => (rest, None),
        };
        if path.is_empty() {
            return Some(Err(ArchiveError::Usage {
                archive: s.to_string(),
                detail: format!(
                    "the file name is missing: write {}:FILE[:REF]",
                    format.transport()
                ),
            }));
        }
        Some(Ok(ArchiveRef {
            format,
            path: PathBuf::from(path),
            reference: reference.filter(|r| !r.is_empty()),
        }))
    }
}

impl std::fmt::Display for ArchiveRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.format.transport(), self.path.display())?;
        if let Some(r) = &self.reference {
            write!(f, ":{r}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_transports_like_skopeo() {
        let r = ArchiveRef::parse("docker-archive:/tmp/a.tar:nginx:1.27")
            .unwrap()
            .unwrap();
        assert_eq!(r.format, Format::Docker);
        assert_eq!(r.path, PathBuf::from("/tmp/a.tar"));
        assert_eq!(r.reference.as_deref(), Some("nginx:1.27"));
        assert_eq!(r.to_string(), "docker-archive:/tmp/a.tar:nginx:1.27");
        let r = ArchiveRef::parse("oci-archive:x.tar").unwrap().unwrap();
        assert_eq!((r.format, r.reference), (Format::Oci, None));
        assert!(ArchiveRef::parse("oci:dir:ref").is_none());
        let e = ArchiveRef::parse("oci-archive::ref").unwrap().unwrap_err();
        assert!(e.to_string().contains("file name is missing"), "{e}");
    }
}
