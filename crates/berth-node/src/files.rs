//! Atomic writes of rendered files ([`berth_atomic`]: a temporary file beside the target,
//! fsync, rename, then fsync of the directory). Files holding a password get mode 0600,
//! others 0644.

use crate::NodeError;
use crate::registries::RenderedFile;

/// Writes `file` atomically, creating its directory.
pub fn write_atomic(file: &RenderedFile) -> Result<(), NodeError> {
    berth_atomic::Options::new()
        .mode(if file.secret { 0o600 } else { 0o644 })
        .write(&file.path, file.contents.as_bytes())
        .map_err(|source| NodeError::Write {
            path: file.path.display().to_string(),
            source,
        })
}

/// Writes every file; stops at the first failure.
pub fn write_all(files: &[RenderedFile]) -> Result<(), NodeError> {
    files.iter().try_for_each(write_atomic)
}
