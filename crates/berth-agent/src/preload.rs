//! The preload directory: images imported under their own names, without any registry.

use std::path::Path;

use berth_archive::preload::{PreloadProblem, Preloaded};

use crate::AgentError;

/// The images of a preload directory, and the entries that could not be used.
#[derive(Debug, Default)]
pub struct Preload {
    pub images: Vec<Preloaded>,
    pub problems: Vec<PreloadProblem>,
}

impl Preload {
    /// Every containerd name the preloaded images carry.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.images
            .iter()
            .flat_map(|i| i.names.iter().map(String::as_str))
    }
}

/// Lists the images of every OCI layout, oci-archive and docker-archive (plain, gzip or
/// zstd) directly in `dir`. An entry that is none of these is a problem of its own, not a
/// failure of the whole directory.
pub async fn preload(dir: &Path) -> Result<Preload, AgentError> {
    let scan = berth_archive::preload::scan(dir)
        .await
        .map_err(|source| AgentError::Preload {
            dir: dir.to_path_buf(),
            source,
        })?;
    Ok(Preload {
        images: scan.images,
        problems: scan.problems,
    })
}
