//! What both formats share around the file: opening it by path and indexing it once on
//! first use, loading the archive already at a writer's target, and running the blocking
//! work (indexing, writing) off the async threads.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::ArchiveError;

/// An indexed archive of one format.
pub(crate) trait Load: Sized + Send + Sync + 'static {
    /// For messages: `a docker-archive`, `an oci-archive`.
    const KIND: &'static str;

    /// Blocking: indexes the tar and reads its top document.
    fn load(path: &Path, name: &str) -> Result<Self, ArchiveError>;
}

/// Runs blocking work on the blocking pool; `what` names the task if it panicked.
pub(crate) async fn blocking<T: Send + 'static>(
    name: &str,
    what: &str,
    f: impl FnOnce() -> Result<T, ArchiveError> + Send + 'static,
) -> Result<T, ArchiveError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ArchiveError::invalid(name, format!("the {what} task failed: {e}")))?
}

/// An archive file to read: its path, its name in messages (`TRANSPORT:PATH`) and the
/// reference it was opened for; indexed on first use, once.
pub(crate) struct Opened<L> {
    pub path: PathBuf,
    pub name: String,
    pub reference: Option<String>,
    loaded: OnceCell<Arc<L>>,
}

impl<L: Load> Opened<L> {
    /// `path` must be a file; an empty `reference` is none.
    pub fn new(
        transport: &str,
        path: PathBuf,
        reference: Option<&str>,
    ) -> Result<Opened<L>, ArchiveError> {
        let name = format!("{transport}:{}", path.display());
        if !path.is_file() {
            return Err(ArchiveError::usage(&name, "there is no such file"));
        }
        Ok(Opened {
            path,
            name,
            reference: reference.filter(|r| !r.is_empty()).map(str::to_string),
            loaded: OnceCell::new(),
        })
    }

    /// `REF`, or `""`.
    pub fn reference(&self) -> String {
        self.reference.clone().unwrap_or_default()
    }

    /// `TYPE { path, reference }`, for the readers' `Debug`.
    pub fn debug(&self, type_name: &str, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(type_name)
            .field("path", &self.path)
            .field("reference", &self.reference)
            .finish()
    }

    pub async fn loaded(&self) -> Result<Arc<L>, ArchiveError> {
        self.loaded
            .get_or_try_init(|| {
                let (path, name) = (self.path.clone(), self.name.clone());
                blocking(&self.name, "indexing", move || {
                    L::load(&path, &name).map(Arc::new)
                })
            })
            .await
            .cloned()
    }
}

/// The archive now at a writer's target, if any; a file there that is not one is refused.
pub(crate) async fn existing<L: Load>(path: &Path, name: &str) -> Result<Option<L>, ArchiveError> {
    let (path, owned) = (path.to_path_buf(), name.to_string());
    blocking(name, "indexing", move || {
        if !path.exists() {
            return Ok(None);
        }
        L::load(&path, &owned).map(Some).map_err(|e| {
            ArchiveError::usage(
                &owned,
                format!(
                    "the file exists and cannot be updated as {} ({e}); remove it or choose another file",
                    L::KIND
                ),
            )
        })
    })
    .await
}
