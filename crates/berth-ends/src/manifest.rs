//! The manifests a transfer copies: what one refers to, or why it is not copied.

use berth_oci::{Kind, Manifest, media};

pub use berth_oci::Descriptor;

use crate::TransferError;

/// What a copied manifest references.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// An OCI index or Docker manifest list: child manifests.
    Index(Vec<Descriptor>),
    /// An image manifest: config and layers (blobs).
    Image(Vec<Descriptor>),
}

pub fn is_index_type(mt: &str) -> bool {
    media::is_index(mt)
}

/// Walks `m` for copying (never re-serialized; only read): Docker schema 1 and unknown
/// types are refused, naming the source and reference.
pub fn parse(m: &Manifest, source_name: &str, reference: &str) -> Result<Parsed, TransferError> {
    let unsupported = |media_type: String| TransferError::Unsupported {
        source_name: source_name.into(),
        reference: reference.into(),
        media_type,
    };
    let w = m.walk().map_err(|error| match error {
        berth_oci::ManifestError::Unknown { media_type } => unsupported(media_type),
        error => TransferError::BadManifest {
            source_name: source_name.to_string(),
            reference: reference.to_string(),
            detail: error.to_string(),
        },
    })?;
    match w.kind {
        Kind::Index(children) => Ok(Parsed::Index(children)),
        Kind::Image { config, layers } => {
            let mut blobs = vec![config];
            blobs.extend(layers);
            Ok(Parsed::Image(blobs))
        }
        Kind::Schema1(_) => Err(unsupported(w.media_type)),
    }
}
