//! Archive transports for `berth copy`: `oci-archive:FILE[:REF]` and
//! `docker-archive:FILE[:REF]` (berth-archive ends handed to the engine as trait objects).

use std::sync::Arc;

use anyhow::anyhow;
use berth_archive::{ArchiveRef, DockerArchive, Format, OciArchive};
use berth_transfer::Endpoint;

/// Which side of a copy an endpoint is on.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Source,
    Destination,
}

/// Opens (source) or creates (destination) the archive `s` names.
pub fn endpoint(s: &str, side: Side) -> anyhow::Result<Endpoint> {
    let r: ArchiveRef =
        ArchiveRef::parse(s).ok_or_else(|| anyhow!("`{s}` is not an archive transport"))??;
    let reference = r.reference.as_deref();
    Ok(match (r.format, side) {
        (Format::Oci, Side::Source) => {
            let a = OciArchive::open(&r.path, reference)?;
            Endpoint::Ends {
                name: s.to_string(),
                reference: a.reference(),
                source: Some(Arc::new(a)),
                destination: None,
            }
        }
        (Format::Docker, Side::Source) => {
            let a = DockerArchive::open(&r.path, reference)?;
            Endpoint::Ends {
                name: s.to_string(),
                reference: a.reference(),
                source: Some(Arc::new(a)),
                destination: None,
            }
        }
        (Format::Oci, Side::Destination) => Endpoint::Ends {
            name: s.to_string(),
            reference: String::new(),
            source: None,
            destination: Some(Arc::new(OciArchive::create(&r.path, reference)?)),
        },
        (Format::Docker, Side::Destination) => Endpoint::Ends {
            name: s.to_string(),
            reference: String::new(),
            source: None,
            destination: Some(Arc::new(DockerArchive::create(&r.path, reference)?)),
        },
    })
}
