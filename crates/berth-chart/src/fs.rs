//! Reading a chart from disk: a directory or a `.tgz` file (the only I/O of this crate).

use std::collections::BTreeMap;
use std::path::Path;

use crate::{Chart, ChartError};

/// Loads a chart directory (every regular file under it) or a packaged `.tgz`.
pub fn load_path(path: &Path) -> Result<Chart, ChartError> {
    let origin = path.display().to_string();
    let err = |message: String| ChartError::Load {
        chart: origin.clone(),
        message,
    };
    if path.is_file() {
        let bytes = std::fs::read(path).map_err(|e| err(format!("read: {e}")))?;
        return Chart::from_tgz(&bytes, &origin);
    }
    let mut files = BTreeMap::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries =
            std::fs::read_dir(&dir).map_err(|e| err(format!("{}: {e}", dir.display())))?;
        for e in entries {
            let e = e.map_err(|e| err(format!("{}: {e}", dir.display())))?;
            let p = e.path();
            let ft = e
                .file_type()
                .map_err(|e| err(format!("{}: {e}", p.display())))?;
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() {
                let rel = p
                    .strip_prefix(path)
                    .map_err(|e| err(e.to_string()))?
                    .to_string_lossy()
                    .replace('\\', "/");
                let bytes = std::fs::read(&p).map_err(|e| err(format!("{}: {e}", p.display())))?;
                files.insert(rel, bytes);
            }
        }
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or(origin.clone());
    Chart::from_files(files, &name)
}
