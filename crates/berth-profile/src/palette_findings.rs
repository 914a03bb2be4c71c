//! Findings only Palette exports have: packs whose chart is not in the file, manifests named
//! without content, and a pack's `pack.content.images` disagreeing with its values.

use berth_reference::Reference;

use crate::extract::{Finding, OccView, Provenance, RenderedLayer, Severity};
use crate::palette::PackType;
use crate::profile::Profile;
use crate::value::Value;

pub(crate) fn findings(
    profiles: &[Profile],
    layers: &[RenderedLayer],
    occs: &[OccView<'_>],
) -> Vec<Finding> {
    let mut out = Vec::new();
    for rl in layers {
        let p = &profiles[rl.profile];
        let l = &p.layers[rl.layer];
        let Some(pack) = &l.pack else { continue };
        let finding = |rule: &str, path: String, message: String| Finding {
            rule: rule.to_string(),
            severity: Severity::Warning,
            file: p.file.clone(),
            layer: l.name.clone(),
            path,
            message,
        };
        if matches!(pack.pack_type, Some(PackType::Helm | PackType::Spectro)) {
            let charts = chart_list(&rl.values);
            let registry = pack.registry.as_deref().unwrap_or("its pack registry");
            let kind = pack.pack_type.map_or("", PackType::as_str);
            let version = l.version.as_deref().unwrap_or("?");
            let what = if charts.is_empty() {
                format!(
                    "pull pack {}:{version} from {registry} and give its chart with `--charts DIR` (a directory of charts as `helm pull` writes them)",
                    l.name
                )
            } else {
                format!(
                    "give the chart{} with `--charts DIR`, a directory holding NAME-VERSION.tgz or NAME/ as `helm pull [--untar]` writes them ({}), or pull pack {}:{version} from {registry}",
                    if charts.len() > 1 { "s" } else { "" },
                    charts.join(", "),
                    l.name
                )
            };
            out.push(finding(
                "chart-not-available",
                "chart".to_string(),
                format!(
                    "{kind} pack {} {version}: its chart is not in the export, so it was not rendered and only the images in its values and pack.content.images are reported (its chart's defaults are missing); to render it, {what}",
                    l.name
                ),
            ));
        }
        for name in &pack.manifest_refs {
            out.push(finding(
                "manifest-not-in-export",
                format!("manifest {name}"),
                format!(
                    "manifest {name} is named without content in the export, so its images are unknown; export the profile with manifest content, or list its images in pack.content.images"
                ),
            ));
        }
        let of_layer = |prov: Provenance| {
            occs.iter()
                .filter(move |o| o.0 == rl.profile && o.1 == rl.layer && o.4 == prov)
                .filter_map(|o| Some((Reference::parse(o.2).ok()?, o.3)))
        };
        let listed: Vec<(Reference, &str)> = of_layer(Provenance::ContentList).collect();
        for (r, path) in of_layer(Provenance::Values) {
            if listed.iter().any(|(x, _)| *x == r) {
                continue;
            }
            if let Some((x, xpath)) = listed.iter().find(|(x, _)| x.name() == r.name()) {
                out.push(finding(
                    "content-list-disagrees",
                    path.to_string(),
                    format!(
                        "the values deploy `{r}` but pack.content.images lists `{x}` ({xpath}); both are reported; make them agree so air-gapped content bundles carry the deployed image"
                    ),
                ));
            }
        }
    }
    out
}

/// `REPO/NAME VERSION` of each `pack.content.charts` entry.
fn chart_list(values: &Value) -> Vec<String> {
    let Some(Value::Seq(items)) = values
        .get("pack")
        .and_then(|p| p.get("content"))
        .and_then(|c| c.get("charts"))
    else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|c| {
            let get = |k: &str| c.get(k).and_then(Value::scalar_text);
            let name = get("name")?;
            let repo = get("repo").unwrap_or_default();
            let version = get("version").unwrap_or_default();
            Some(format!("{name} {version} from {repo}"))
        })
        .collect()
}
