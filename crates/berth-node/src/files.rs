//! Atomic writes of rendered files: a temporary file beside the target, fsync, rename, then
//! fsync of the directory. Files holding a password get mode 0600, others 0644.

use std::io::Write;
use std::path::Path;

use crate::NodeError;
use crate::registries::RenderedFile;

/// Writes `file` atomically, creating its directory.
pub fn write_atomic(file: &RenderedFile) -> Result<(), NodeError> {
    let err = |source: std::io::Error| NodeError::Write {
        path: file.path.display().to_string(),
        source,
    };
    let dir = file
        .path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(err)?;
    let name = file
        .path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.berth-tmp-{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(if file.secret { 0o600 } else { 0o644 });
        }
        let mut f = opts.open(&tmp)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(if file.secret {
                0o600
            } else {
                0o644
            }))?;
        }
        f.write_all(file.contents.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &file.path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}

/// Writes every file; stops at the first failure.
pub fn write_all(files: &[RenderedFile]) -> Result<(), NodeError> {
    files.iter().try_for_each(write_atomic)
}
