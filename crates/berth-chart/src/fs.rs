//! Reading a chart from disk: a directory or a `.tgz` file, and finding a chart by name and
//! version in a directory of charts (the only I/O of this crate).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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

/// `helm template`'s options from its flags: `-f` files (read here, in order), `--set`
/// arguments and `--kube-version`.
pub fn options(
    values: &[PathBuf],
    set: &[String],
    kube_version: &str,
) -> Result<crate::Options, ChartError> {
    let mut opts = crate::Options {
        set: set.to_vec(),
        kube_version: kube_version.to_string(),
        ..crate::Options::default()
    };
    for f in values {
        let name = f.display().to_string();
        let text = std::fs::read_to_string(f).map_err(|e| ChartError::Values {
            chart: "(--values)".into(),
            source_name: name.clone(),
            message: format!("cannot read: {e}"),
        })?;
        opts.values.push((name, text));
    }
    Ok(opts)
}

/// The chart `name` at `version` (any version when empty) in `dir`, as `helm pull` leaves it:
/// `NAME-VERSION.tgz`, or a directory `NAME-VERSION/` or `NAME/` (`helm pull --untar`), the
/// first whose Chart.yaml has that name and version. `None` when `dir` holds none of them.
pub fn find_in(dir: &Path, name: &str, version: &str) -> Result<Option<Chart>, ChartError> {
    let mut candidates = vec![
        dir.join(format!("{name}-{version}.tgz")),
        dir.join(format!("{name}-{version}")),
        dir.join(name),
    ];
    if version.is_empty() {
        candidates.clear();
        candidates.push(dir.join(name));
        let entries = std::fs::read_dir(dir).map_err(|e| ChartError::Load {
            chart: name.to_string(),
            message: format!("cannot read the chart directory {}: {e}", dir.display()),
        })?;
        let mut found: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_prefix(name)?.strip_prefix('-'))
                    .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit() || c == 'v'))
            })
            .collect();
        found.sort();
        candidates.extend(found.into_iter().rev());
    }
    if !dir.is_dir() {
        return Err(ChartError::Load {
            chart: name.to_string(),
            message: format!("{} is not a directory of charts", dir.display()),
        });
    }
    for c in candidates {
        if !c.exists() {
            continue;
        }
        let chart = load_path(&c)?;
        if chart.name == name && (version.is_empty() || chart.version() == version) {
            return Ok(Some(chart));
        }
    }
    Ok(None)
}
