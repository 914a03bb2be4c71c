//! A chart in memory: loaded from its files (relative path → bytes) or a `.tgz`, with its
//! subcharts (`charts/DIR/` and vendored `charts/*.tgz`, nested).

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::sync::Arc;

use crate::ChartError;
use crate::value::Value;

/// A loaded chart.
#[derive(Debug, Clone)]
pub struct Chart {
    /// `name` of Chart.yaml (or the dependency's `alias` once dependencies are resolved).
    pub name: String,
    /// Chart.yaml as written.
    pub metadata: String,
    /// values.yaml as written (empty when there is none).
    pub values: String,
    /// `templates/...` files: path relative to the chart root → text.
    pub templates: BTreeMap<String, String>,
    /// Every other file (what `.Files` sees), except Chart.yaml, values.yaml and subcharts.
    pub files: BTreeMap<String, Vec<u8>>,
    pub subcharts: Vec<Chart>,
    /// requirements.yaml (where an `apiVersion: v1` chart lists its dependencies).
    pub requirements: Option<String>,
    /// Where the chart came from, for errors (`nginx`, `metallb/charts/frr-k8s-0.0.25.tgz`).
    pub origin: String,
    /// The packaged chart's bytes exactly as given, when it was loaded from a `.tgz` (what
    /// `berth mirror` pushes as the chart's Helm OCI artifact); `None` for a directory.
    pub archive: Option<ChartArchive>,
}

/// A packaged chart (`helm package` output) as the exact bytes read. Its `Debug` shows the
/// size only.
#[derive(Clone, PartialEq, Eq)]
pub struct ChartArchive(pub Arc<[u8]>);

impl ChartArchive {
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for ChartArchive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChartArchive({} bytes)", self.0.len())
    }
}

impl Chart {
    /// Loads a chart from its files, paths relative to the chart's root directory.
    pub fn from_files(files: BTreeMap<String, Vec<u8>>, origin: &str) -> Result<Chart, ChartError> {
        let err = |message: String| ChartError::Load {
            chart: origin.to_string(),
            message,
        };
        let text = |p: &str, b: &[u8]| {
            String::from_utf8(b.to_vec()).map_err(|_| err(format!("{p} is not UTF-8")))
        };
        let metadata = match files.get("Chart.yaml") {
            Some(b) => text("Chart.yaml", b)?,
            None => return Err(err("Chart.yaml is missing: not a chart directory".into())),
        };
        let meta = Value::from_yaml_str(&metadata).map_err(|e| err(format!("Chart.yaml: {e}")))?;
        let name = meta
            .get("name")
            .and_then(|n| n.as_str().map(str::to_string))
            .ok_or_else(|| err("Chart.yaml has no `name`".into()))?;
        let values = match files.get("values.yaml") {
            Some(b) => text("values.yaml", b)?,
            None => String::new(),
        };
        let mut templates = BTreeMap::new();
        let mut other = BTreeMap::new();
        let mut sub_dirs: BTreeMap<String, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
        let mut subcharts = Vec::new();
        for (path, bytes) in &files {
            if let Some(rest) = path.strip_prefix("charts/") {
                match rest.split_once('/') {
                    Some((dir, inner)) => {
                        sub_dirs
                            .entry(dir.to_string())
                            .or_default()
                            .insert(inner.to_string(), bytes.clone());
                    }
                    None if rest.ends_with(".tgz") || rest.ends_with(".tar.gz") => {
                        let o = format!("{origin}/charts/{rest}");
                        subcharts.push(Chart::from_tgz(bytes, &o)?);
                    }
                    None => {}
                }
            } else if path.starts_with("templates/") {
                templates.insert(path.clone(), text(path, bytes)?);
            } else if !matches!(
                path.as_str(),
                "Chart.yaml"
                    | "values.yaml"
                    | "Chart.lock"
                    | "requirements.yaml"
                    | "requirements.lock"
            ) {
                other.insert(path.clone(), bytes.clone());
            }
        }
        for (dir, files) in sub_dirs {
            if files.contains_key("Chart.yaml") {
                subcharts.push(Chart::from_files(files, &format!("{origin}/charts/{dir}"))?);
            }
        }
        let requirements = match files.get("requirements.yaml") {
            Some(b) => Some(text("requirements.yaml", b)?),
            None => None,
        };
        Ok(Chart {
            requirements,
            name,
            metadata,
            values,
            templates,
            files: other,
            subcharts,
            origin: origin.to_string(),
            archive: None,
        })
    }

    /// `version` of Chart.yaml (empty when it has none).
    pub fn version(&self) -> String {
        Value::from_yaml_str(&self.metadata)
            .ok()
            .and_then(|m| m.get("version"))
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// The images Chart.yaml's annotations list: `helm.sh/images` and `artifacthub.io/images`
    /// (a YAML list of `{name, image}` held in a string), with the annotation each came from.
    /// An annotation that is not such a list is an error naming it.
    pub fn annotated_images(&self) -> Result<Vec<(String, &'static str)>, ChartError> {
        let meta = Value::from_yaml_str(&self.metadata).map_err(|e| ChartError::Load {
            chart: self.origin.clone(),
            message: format!("Chart.yaml: {e}"),
        })?;
        let mut out = Vec::new();
        for key in ["helm.sh/images", "artifacthub.io/images"] {
            let Some(text) = meta.get("annotations").and_then(|a| a.get(key)) else {
                continue;
            };
            let bad = |why: String| ChartError::Load {
                chart: self.origin.clone(),
                message: format!(
                    "Chart.yaml annotation {key}: {why}; it must be a YAML list of `{{name, image}}` in a string"
                ),
            };
            let text = text.as_str().ok_or_else(|| bad("not a string".into()))?;
            let list = match Value::from_yaml_str(text).map_err(bad)? {
                Value::List(l) => l.to_vec(),
                Value::Nil => Vec::new(),
                _ => return Err(bad("not a list".into())),
            };
            for item in list {
                match item.get("image").as_ref().and_then(Value::as_str) {
                    Some(i) if !i.trim().is_empty() => out.push((i.trim().to_string(), key)),
                    _ => return Err(bad("an entry without `image`".into())),
                }
            }
        }
        Ok(out)
    }

    /// Loads a packaged chart (`helm package` output: one top directory in a gzip'd tar).
    pub fn from_tgz(bytes: &[u8], origin: &str) -> Result<Chart, ChartError> {
        let err = |message: String| ChartError::Load {
            chart: origin.to_string(),
            message,
        };
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
        let mut files = BTreeMap::new();
        let entries = archive
            .entries()
            .map_err(|e| err(format!("not a gzip'd tar: {e}")))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| err(format!("bad tar entry: {e}")))?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let path = entry
                .path()
                .map_err(|e| err(format!("bad tar path: {e}")))?
                .to_string_lossy()
                .into_owned();
            // Drop the top directory (`frr-k8s/Chart.yaml` → `Chart.yaml`).
            let Some((_, rel)) = path.split_once('/') else {
                continue;
            };
            if rel.split('/').any(|c| c == "..") {
                return Err(err(format!("{path}: a path that leaves the chart")));
            }
            let mut buf = Vec::new();
            entry
                .read_to_end(&mut buf)
                .map_err(|e| err(format!("{path}: {e}")))?;
            files.insert(rel.to_string(), buf);
        }
        let mut chart = Chart::from_files(files, origin)?;
        chart.archive = Some(ChartArchive(Arc::from(bytes)));
        Ok(chart)
    }
}
