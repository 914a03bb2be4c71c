//! Errors of bundle operations. Each names the bundle (and the entry when there is one) and
//! says what to do.

use std::path::PathBuf;

/// What went wrong with a bundle.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Reading or writing a file failed.
    #[error("{bundle}: {what}: {source}")]
    Io {
        bundle: String,
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The bundle is damaged or not a bundle: `entry` says where.
    #[error("{bundle}: {entry}: {detail}")]
    Damaged {
        bundle: String,
        entry: String,
        detail: String,
    },
    /// An entry that no bundle Berth writes can contain (an escape attempt, a link, a
    /// duplicate): the bundle is refused as a whole.
    #[error(
        "{bundle}: entry `{entry}` {detail}; the bundle is refused (it was not written by `berth bundle build` or was altered)"
    )]
    Hostile {
        bundle: String,
        entry: String,
        detail: String,
    },
    /// The signature is missing, malformed or made with another key.
    #[error("{bundle}: {detail}")]
    Signature { bundle: String, detail: String },
    /// A key file could not be read or parsed.
    #[error("{path}: {detail}")]
    Key { path: PathBuf, detail: String },
    /// An image could not be put into the bundle.
    #[error("{bundle}: image {image}: {detail}")]
    Image {
        bundle: String,
        image: String,
        detail: String,
    },
    /// Wrong arguments (a bad size, a target that exists).
    #[error("{bundle}: {detail}")]
    Usage { bundle: String, detail: String },
    /// The transfer engine failed.
    #[error("{bundle}: {source}")]
    Transfer {
        bundle: String,
        #[source]
        source: Box<berth_transfer::TransferError>,
    },
}

impl BundleError {
    pub(crate) fn io(bundle: &str, what: impl Into<String>, source: std::io::Error) -> BundleError {
        BundleError::Io {
            bundle: bundle.to_string(),
            what: what.into(),
            source,
        }
    }

    /// A failed step of an atomic write or of a directory beside the target.
    pub(crate) fn atomic(bundle: &str, e: berth_atomic::Error) -> BundleError {
        BundleError::io(bundle, format!("{} {}", e.step, e.path.display()), e.source)
    }

    pub(crate) fn damaged(
        bundle: &str,
        entry: impl Into<String>,
        detail: impl Into<String>,
    ) -> BundleError {
        BundleError::Damaged {
            bundle: bundle.to_string(),
            entry: entry.into(),
            detail: detail.into(),
        }
    }

    pub(crate) fn hostile(
        bundle: &str,
        entry: impl Into<String>,
        detail: impl Into<String>,
    ) -> BundleError {
        BundleError::Hostile {
            bundle: bundle.to_string(),
            entry: entry.into(),
            detail: detail.into(),
        }
    }

    pub(crate) fn transfer(bundle: &str, source: berth_transfer::TransferError) -> BundleError {
        BundleError::Transfer {
            bundle: bundle.to_string(),
            source: Box::new(source),
        }
    }

    pub(crate) fn usage(bundle: &str, detail: impl Into<String>) -> BundleError {
        BundleError::Usage {
            bundle: bundle.to_string(),
            detail: detail.into(),
        }
    }

    /// Whether the bundle itself is bad (as opposed to a local I/O or usage problem).
    pub fn is_damage(&self) -> bool {
        matches!(
            self,
            BundleError::Damaged { .. }
                | BundleError::Hostile { .. }
                | BundleError::Signature { .. }
        )
    }
}
