//! The Helm charts a profile's packs install (`pack.content.charts`), with the values each
//! chart is given (`charts.<name>` of the pack's rendered values). Rendering the charts and
//! fetching them are other crates' work (`berth-chart`, and the I/O layer above); this only
//! says which charts, from where, with which values.

use crate::error::ProfileError;
use crate::extract::{render_all, walk_images};
use crate::profile::{LayerType, Profile};
use crate::value::Value;

/// One chart of one pack.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartSpec {
    /// The profile file and layer (pack) that installs it.
    pub file: String,
    pub layer: String,
    pub layer_type: LayerType,
    /// Where in the layer's values the entry is: `pack.content.charts[0]`.
    pub path: String,
    /// The chart's name and version as the entry gives them (`version` may be empty).
    pub name: String,
    pub version: String,
    /// The entry's `repo`: a chart repository URL (`https://charts.example.com`), an
    /// `oci://HOST/PATH` registry location, or empty when the entry gives none.
    pub repo: String,
    /// The values the pack passes to the chart: the rendered `charts.<name>` table
    /// (`Value::Null` when the pack gives none).
    pub values: Value,
    /// The pack's `pack.content.images` (reference as written, path), after macros.
    pub listed: Vec<(String, String)>,
    /// The image-like values under `charts.<name>` (reference, path), after macros.
    pub values_images: Vec<(String, String)>,
}

impl ChartSpec {
    /// The values as JSON text (which is YAML), for a chart renderer's `--values`.
    pub fn values_json(&self) -> String {
        self.values.to_json().to_string()
    }

    /// `NAME VERSION from REPO`, for messages.
    pub fn describe(&self) -> String {
        let mut s = self.name.clone();
        if !self.version.is_empty() {
            s.push(' ');
            s.push_str(&self.version);
        }
        if !self.repo.is_empty() {
            s.push_str(" from ");
            s.push_str(&self.repo);
        }
        s
    }
}

/// Every `pack.content.charts` entry of every layer, in profile and layer order, with its
/// values. Macros in the values are rendered first, as for image extraction.
pub fn chart_specs(profiles: &[Profile]) -> Result<Vec<ChartSpec>, ProfileError> {
    let mut out = Vec::new();
    for rl in render_all(profiles)? {
        let p = &profiles[rl.profile];
        let l = &p.layers[rl.layer];
        let Some(Value::Seq(items)) = rl
            .values
            .get("pack")
            .and_then(|v| v.get("content"))
            .and_then(|v| v.get("charts"))
        else {
            continue;
        };
        let listed: Vec<(String, String)> = match rl
            .values
            .get("pack")
            .and_then(|v| v.get("content"))
            .and_then(|v| v.get("images"))
        {
            Some(Value::Seq(images)) => images
                .iter()
                .enumerate()
                .filter_map(|(j, item)| match item {
                    Value::String(s) => Some((s.clone(), format!("pack.content.images[{j}]"))),
                    other => Some((
                        other.get("image").and_then(Value::scalar_text)?,
                        format!("pack.content.images[{j}].image"),
                    )),
                })
                .collect(),
            _ => Vec::new(),
        };
        for (i, item) in items.iter().enumerate() {
            let get = |k: &str| item.get(k).and_then(Value::scalar_text).unwrap_or_default();
            let name = get("name");
            if name.is_empty() {
                continue;
            }
            let values = rl
                .values
                .get("charts")
                .and_then(|c| c.get(&name))
                .cloned()
                .unwrap_or(Value::Null);
            let mut values_images = Vec::new();
            let loose = l.pack.is_some();
            let prefix = format!("charts.{name}");
            walk_images(&values, &prefix, "", loose, &mut values_images);
            out.push(ChartSpec {
                listed: listed.clone(),
                values_images,
                file: p.file.clone(),
                layer: l.name.clone(),
                layer_type: l.layer_type,
                path: format!("pack.content.charts[{i}]"),
                version: get("version"),
                repo: get("repo"),
                name,
                values,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_carry_repo_version_and_rendered_values() {
        let text = "name: p\nvariables:\n  tag: v9\nlayers:\n  - name: web\n    type: addon\n    values:\n      pack:\n        content:\n          charts:\n            - repo: oci://reg.example.com/charts\n              name: podinfo\n              version: 6.14.1\n            - name: bare\n      charts:\n        podinfo:\n          image:\n            tag: \"{{ .spectro.var.tag }}\"\n";
        let p = Profile::parse(text, "p.yaml").unwrap();
        let specs = chart_specs(&[p]).unwrap();
        assert_eq!(specs.len(), 2);
        assert_eq!(
            specs[0].describe(),
            "podinfo 6.14.1 from oci://reg.example.com/charts"
        );
        assert_eq!(specs[0].path, "pack.content.charts[0]");
        assert_eq!(specs[0].values_json(), r#"{"image":{"tag":"v9"}}"#);
        assert_eq!(specs[1].values, Value::Null);
        assert_eq!(specs[1].values_json(), "null");
    }
}
