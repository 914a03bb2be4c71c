//! Transport references, as skopeo writes them: `docker://REF`, `oci:DIR[:REF]`,
//! `oci-archive:FILE[:REF]`, `docker-archive:FILE[:REF]`, each as an end of the engine.

use std::path::PathBuf;
use std::sync::Arc;

use berth_archive::{ArchiveError, ArchiveRef, DockerArchive, Format, OciArchive};
use berth_ends::{Destination, Source};
use berth_reference::{Reference, ReferenceError};

use crate::Endpoint;

/// Which side of a copy an end is on: a source archive is opened, a destination created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Source,
    Destination,
}

/// Why a transport reference cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error(
        "`{0}`: unknown transport; use docker://REF, oci:DIR[:REF], oci-archive:FILE[:REF] or docker-archive:FILE[:REF]"
    )]
    Unknown(String),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

/// The engine's end for the transport reference `s`.
pub fn endpoint(s: &str, side: Side) -> Result<Endpoint, TransportError> {
    if let Some(r) = s.strip_prefix("docker://") {
        return Ok(Endpoint::Registry(Reference::parse(r)?));
    }
    if let Some(rest) = s.strip_prefix("oci:") {
        // `DIR[:REF]`: like skopeo, the directory ends at the first `:`.
        let (dir, reference) = rest.split_once(':').unwrap_or((rest, ""));
        let reference = if reference.is_empty() {
            "latest"
        } else {
            reference
        };
        return Ok(Endpoint::Layout {
            dir: PathBuf::from(dir),
            reference: reference.to_string(),
        });
    }
    let r = ArchiveRef::parse(s).ok_or_else(|| TransportError::Unknown(s.to_string()))??;
    let reference = r.reference.as_deref();
    type Src = Option<Arc<dyn Source>>;
    type Dst = Option<Arc<dyn Destination>>;
    let ends = |reference: String, source: Src, destination: Dst| Endpoint::Ends {
        name: s.to_string(),
        reference,
        source,
        destination,
    };
    Ok(match (r.format, side) {
        (Format::Oci, Side::Source) => {
            let a = OciArchive::open(&r.path, reference)?;
            ends(a.reference(), Some(Arc::new(a)), None)
        }
        (Format::Docker, Side::Source) => {
            let a = DockerArchive::open(&r.path, reference)?;
            ends(a.reference(), Some(Arc::new(a)), None)
        }
        (Format::Oci, Side::Destination) => {
            let d = OciArchive::create(&r.path, reference)?;
            ends(String::new(), None, Some(Arc::new(d)))
        }
        (Format::Docker, Side::Destination) => {
            let d = DockerArchive::create(&r.path, reference)?;
            ends(String::new(), None, Some(Arc::new(d)))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_and_layout_references() {
        let Endpoint::Registry(r) = endpoint("docker://nginx:1", Side::Source).unwrap() else {
            panic!("a registry end")
        };
        assert_eq!(r.to_string(), "docker.io/library/nginx:1");
        for (s, dir, reference) in [("oci:/l:app", "/l", "app"), ("oci:/l", "/l", "latest")] {
            match endpoint(s, Side::Destination).unwrap() {
                Endpoint::Layout {
                    dir: d,
                    reference: r,
                } => {
                    assert_eq!((d, r.as_str()), (PathBuf::from(dir), reference))
                }
                _ => panic!("{s}: a layout end"),
            }
        }
    }

    #[test]
    fn unknown_and_bad_references_are_named() {
        let e = endpoint("ftp://x/y", Side::Source).unwrap_err();
        assert!(matches!(e, TransportError::Unknown(_)));
        assert!(e.to_string().contains("ftp://x/y") && e.to_string().contains("docker://"));
        let e = endpoint("docker://Nginx", Side::Source).unwrap_err();
        assert!(matches!(e, TransportError::Reference(_)), "{e:?}");
        let e = endpoint("oci-archive:/nonexistent/a.tar", Side::Source).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/a.tar"), "{e}");
        let e = endpoint("docker-archive:", Side::Destination).unwrap_err();
        assert!(matches!(e, TransportError::Archive(_)), "{e:?}");
    }
}
