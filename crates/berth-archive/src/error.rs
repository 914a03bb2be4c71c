use berth_ends::TransferError;
use berth_oci::Fault;

/// Why an archive could not be read or written. `archive` is the transport and file
/// (`oci-archive:/path/x.tar`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    #[error("{archive}: {what}: {source}; check the file, its permissions and free space")]
    Io {
        archive: String,
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{archive}: entry `{entry}` {reason}; the archive is refused (docker save, skopeo and Berth never write such entries: it was damaged or crafted)"
    )]
    Hostile {
        archive: String,
        entry: String,
        reason: String,
    },
    #[error("{archive}: {detail}")]
    Invalid { archive: String, detail: String },
    #[error("{archive}: {detail}")]
    Usage { archive: String, detail: String },
}

impl ArchiveError {
    pub(crate) fn io(
        archive: &str,
        what: impl Into<String>,
        source: std::io::Error,
    ) -> ArchiveError {
        ArchiveError::Io {
            archive: archive.to_string(),
            what: what.into(),
            source,
        }
    }

    /// A failed atomic write of the archive file.
    pub(crate) fn atomic(archive: &str, e: berth_atomic::Error) -> ArchiveError {
        ArchiveError::io(
            archive,
            format!("{} {}", e.step, e.path.display()),
            e.source,
        )
    }

    pub(crate) fn invalid(archive: &str, detail: impl Into<String>) -> ArchiveError {
        ArchiveError::Invalid {
            archive: archive.to_string(),
            detail: detail.into(),
        }
    }

    pub(crate) fn usage(archive: &str, detail: impl Into<String>) -> ArchiveError {
        ArchiveError::Usage {
            archive: archive.to_string(),
            detail: detail.into(),
        }
    }

    pub(crate) fn hostile(archive: &str, entry: &str, reason: impl Into<String>) -> ArchiveError {
        ArchiveError::Hostile {
            archive: archive.to_string(),
            entry: entry.to_string(),
            reason: reason.into(),
        }
    }
}

/// An archive is a file on this machine: no archive error goes away by trying again.
impl Fault for ArchiveError {
    fn is_retryable(&self) -> bool {
        false
    }
}

impl From<ArchiveError> for TransferError {
    fn from(e: ArchiveError) -> TransferError {
        TransferError::end(e)
    }
}
