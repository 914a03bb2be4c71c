//! [`Endpoint`]: one end of a copy, named as the user gave it.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use berth_ends::{Destination, Source};
use berth_reference::{Digest, Reference};

/// One end of a copy.
#[derive(Clone)]
pub enum Endpoint {
    /// An image in a registry; its tag and/or digest select the manifest.
    Registry(Reference),
    /// An OCI image layout; `reference` is an `org.opencontainers.image.ref.name` or a digest.
    Layout { dir: PathBuf, reference: String },
    /// Any other end, given as trait objects (archives, containerd, a local store): the
    /// engine does not need to know its type. `reference` addresses the manifest (a tag, a
    /// ref name, a digest, or `""` for an end holding a single image).
    Ends {
        name: String,
        reference: String,
        source: Option<Arc<dyn Source>>,
        destination: Option<Arc<dyn Destination>>,
    },
}

impl Endpoint {
    /// The registry host of a registry end (none for the others).
    pub fn registry_hosts(&self) -> std::collections::BTreeSet<String> {
        match self {
            Endpoint::Registry(r) => [r.domain().to_string()].into(),
            _ => Default::default(),
        }
    }

    /// A preloaded image (an OCI layout or archive found by
    /// [`berth_archive::preload::scan`]) as a source.
    pub fn preloaded(p: &berth_archive::preload::Preloaded) -> Endpoint {
        Endpoint::Ends {
            name: p.origin.clone(),
            reference: p.reference.clone(),
            source: Some(p.source.clone()),
            destination: None,
        }
    }
}

impl PartialEq for Endpoint {
    fn eq(&self, other: &Endpoint) -> bool {
        match (self, other) {
            (Endpoint::Registry(a), Endpoint::Registry(b)) => a == b,
            (
                Endpoint::Layout {
                    dir: a,
                    reference: r,
                },
                Endpoint::Layout {
                    dir: b,
                    reference: q,
                },
            ) => a == b && r == q,
            (
                Endpoint::Ends {
                    name: a,
                    reference: r,
                    ..
                },
                Endpoint::Ends {
                    name: b,
                    reference: q,
                    ..
                },
            ) => a == b && r == q,
            _ => false,
        }
    }
}

impl Eq for Endpoint {}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Endpoint({self})")
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Registry(r) => write!(f, "{r}"),
            Endpoint::Layout { dir, reference } => write!(f, "oci:{}:{reference}", dir.display()),
            Endpoint::Ends { name, .. } => f.write_str(name),
        }
    }
}

impl Endpoint {
    /// The tag / ref name or digest used to address the manifest.
    pub(crate) fn reference(&self) -> String {
        match self {
            Endpoint::Registry(r) => match (r.tag(), r.digest()) {
                (_, Some(d)) => d.to_string(),
                (Some(t), None) => t.to_string(),
                (None, None) => "latest".into(),
            },
            Endpoint::Layout { reference, .. } | Endpoint::Ends { reference, .. } => {
                reference.clone()
            }
        }
    }

    /// Where the top manifest goes: the tag (ref name) if there is one, else the digest.
    pub(crate) fn target_reference(&self, digest: &Digest) -> String {
        self.fixed_target_reference()
            .unwrap_or_else(|| digest.to_string())
    }

    /// The tag or ref name the top manifest goes to, when it does not depend on the digest.
    pub(crate) fn fixed_target_reference(&self) -> Option<String> {
        match self {
            Endpoint::Registry(r) => r.tag().map(str::to_string),
            Endpoint::Layout { reference, .. } | Endpoint::Ends { reference, .. } => {
                Some(reference.clone())
            }
        }
    }

    pub(crate) fn expected_digest(&self) -> Option<Digest> {
        match self {
            Endpoint::Registry(r) => r.digest().cloned(),
            Endpoint::Layout { reference, .. } | Endpoint::Ends { reference, .. } => {
                Digest::parse(reference).ok()
            }
        }
    }
}
