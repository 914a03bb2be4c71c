//! A profile's Helm packs, rendered: each `pack.content.charts` entry
//! ([`berth_profile::ChartSpec`]) whose chart the caller loaded (from a directory, a chart
//! repository, a registry: the plan does not care) is rendered by `berth-chart` with the
//! pack's `charts.<name>` values. Its images join the plan with provenance `rendered` (and
//! `annotation` for the chart's `helm.sh/images` / `artifacthub.io/images`), and every place
//! the pack's list or values disagree with what the chart renders is a warning.

use berth_chart::{Chart, ChartError, Image, ImageScope, Options};
use berth_profile::{
    ChartSpec, Extraction, Finding, ImageUse, LayerType, Profile, Provenance, Severity, Value,
    chart_specs,
};
use berth_reference::{Reference, ReferenceError};

use crate::PlanError;

/// The charts a caller loaded for the profiles' Helm packs, each with the entry it is for.
#[derive(Debug, Clone)]
pub struct Charts {
    entries: Vec<(ChartSpec, Chart)>,
    /// `.Capabilities.KubeVersion` the charts are rendered for (`v1.34.0`).
    pub kube_version: String,
    /// Every image the charts name (the default), or the Pod templates' only (`--images pod`).
    pub images: ImageScope,
}

impl Default for Charts {
    fn default() -> Self {
        Charts {
            entries: Vec::new(),
            kube_version: Options::default().kube_version,
            images: ImageScope::default(),
        }
    }
}

impl Charts {
    /// The chart of every `pack.content.charts` entry of `profiles` that `find` gives
    /// (`None`: not available, its pack keeps the `chart-not-available` finding). `find` is
    /// where the caller's I/O happens; a chart it cannot load is an error naming the pack.
    pub fn collect(
        profiles: &[Profile],
        kube_version: &str,
        mut find: impl FnMut(&ChartSpec) -> Result<Option<Chart>, ChartError>,
    ) -> Result<Charts, PlanError> {
        let mut charts = Charts {
            kube_version: kube_version.to_string(),
            ..Charts::default()
        };
        for spec in chart_specs(profiles)? {
            match find(&spec) {
                Ok(Some(chart)) => charts.insert(spec, chart),
                Ok(None) => {}
                Err(source) => return Err(ChartRenderError::new(&spec, source).into()),
            }
        }
        Ok(charts)
    }

    /// Gives `chart` for the entry `spec` (matched by file, pack and path).
    pub fn insert(&mut self, spec: ChartSpec, chart: Chart) {
        self.entries.retain(|(s, _)| !same_entry(s, &spec));
        self.entries.push((spec, chart));
    }

    /// The chart given for the entry `spec`.
    pub fn get(&self, spec: &ChartSpec) -> Option<&Chart> {
        let found = self.entries.iter().find(|(s, _)| same_entry(s, spec));
        found.map(|(_, c)| c)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn same_entry(a: &ChartSpec, b: &ChartSpec) -> bool {
    (&a.file, &a.layer, &a.path) == (&b.file, &b.layer, &b.path)
}

/// A chart of a profile's pack that could not be loaded or rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: pack {layer}: chart {chart}: {source}")]
pub struct ChartRenderError {
    pub file: String,
    pub layer: String,
    /// `NAME VERSION from REPO`.
    pub chart: String,
    #[source]
    pub source: ChartError,
}

impl ChartRenderError {
    fn new(spec: &ChartSpec, source: ChartError) -> Self {
        ChartRenderError {
            file: spec.file.clone(),
            layer: spec.layer.clone(),
            chart: spec.describe(),
            source,
        }
    }
}

impl From<ChartRenderError> for PlanError {
    fn from(e: ChartRenderError) -> Self {
        PlanError::Chart(Box::new(e))
    }
}

/// One chart's images: rendered (reference, template) and annotated (reference, key).
struct Rendered<'s> {
    spec: &'s ChartSpec,
    rendered: Vec<(Reference, String)>,
    annotated: Vec<(Reference, &'static str)>,
}

impl Rendered<'_> {
    /// Adds the chart's image `img` to the extraction (found at `what` and its place) and to
    /// this chart's rendered set; a reference that does not parse is returned as an error.
    fn add_rendered(
        &mut self,
        x: &mut Extraction,
        what: &str,
        img: &Image,
    ) -> Result<(), ReferenceError> {
        let reference = Reference::parse(&img.reference)?;
        let found = format!("{what}: {}", place(img));
        let layer = (self.spec.layer.as_str(), self.spec.layer_type);
        add(x, layer, &reference, found, provenance(img));
        if !self.rendered.iter().any(|(r, _)| *r == reference) {
            self.rendered.push((reference, img.source.clone()));
        }
        Ok(())
    }

    /// Adds `raw`, listed by the chart's annotation `key`, to the extraction and to this
    /// chart's annotated set.
    fn add_annotated(
        &mut self,
        x: &mut Extraction,
        what: &str,
        raw: &str,
        key: &'static str,
    ) -> Result<(), ReferenceError> {
        let reference = Reference::parse(raw)?;
        let found = format!("{what}: annotation {key}");
        let layer = (self.spec.layer.as_str(), self.spec.layer_type);
        add(x, layer, &reference, found, Provenance::Annotation);
        self.annotated.push((reference, key));
        Ok(())
    }
}

/// The images of `profiles` ([`berth_profile::extract_images`]) with those of the charts of
/// their Helm packs that `charts` holds.
pub fn extract(profiles: &[Profile], charts: &Charts) -> Result<Extraction, PlanError> {
    let mut x = berth_profile::extract_images(profiles)?;
    manifest_runtime_images(profiles, charts.images, &mut x)?;
    let specs = chart_specs(profiles)?;
    let mut done = Vec::new();
    for spec in &specs {
        let Some(chart) = charts.get(spec) else {
            continue;
        };
        let values = match &spec.values {
            Value::Null => Vec::new(),
            _ => vec![(
                format!("{}: pack {}: charts.{}", spec.file, spec.layer, spec.name),
                spec.values_json(),
            )],
        };
        let opts = Options {
            release_name: spec.name.clone(),
            kube_version: charts.kube_version.clone(),
            images: charts.images,
            values,
            ..Options::default()
        };
        let err = |e| ChartRenderError::new(spec, e);
        let images = berth_chart::discover_places(chart, &opts).map_err(err)?;
        let annotations = chart.annotated_images().map_err(err)?;
        let what = format!("{}: layer {}: chart {}", spec.file, spec.layer, spec.name);
        let mut r = Rendered {
            spec,
            rendered: Vec::new(),
            annotated: Vec::new(),
        };
        for img in images {
            if let Err(e) = r.add_rendered(&mut x, &what, &img) {
                let path = format!("chart {}: {}", spec.name, img.source);
                x.findings.push(finding(
                    spec,
                    Severity::Error,
                    "invalid-reference",
                    path,
                    format!(
                        "the chart renders `{}`: {e}; fix the pack's values for the chart",
                        img.reference
                    ),
                ));
            }
        }
        for (raw, key) in annotations {
            if let Err(e) = r.add_annotated(&mut x, &what, &raw, key) {
                let path = format!("chart {}: Chart.yaml annotations.{key}", spec.name);
                x.findings.push(finding(
                    spec,
                    Severity::Warning,
                    "invalid-reference",
                    path,
                    format!("the annotation lists `{raw}`: {e}"),
                ));
            }
        }
        done.push(r);
    }
    // A pack all of whose charts were rendered no longer lacks its chart.
    let rendered_pack = |file: &str, layer: &str| {
        let of_pack = |s: &&ChartSpec| s.file == file && s.layer == layer;
        let mut all = specs.iter().filter(of_pack).peekable();
        all.peek().is_some() && all.all(|s| charts.get(s).is_some())
    };
    x.findings
        .retain(|f| f.rule != "chart-not-available" || !rendered_pack(&f.file, &f.layer));
    for (i, r) in done.iter().enumerate() {
        let pack: Vec<&Rendered> = done
            .iter()
            .filter(|o| (&o.spec.file, &o.spec.layer) == (&r.spec.file, &r.spec.layer))
            .collect();
        let first_of_pack = std::ptr::eq(pack[0], &done[i]);
        let whole = rendered_pack(&r.spec.file, &r.spec.layer);
        x.findings
            .extend(disagreements(r, &pack, first_of_pack && whole));
    }
    Ok(x)
}

/// Adds `reference` found at `found` in `layer` to the extraction (a new image, or one more
/// place and provenance of a known one).
fn add(
    x: &mut Extraction,
    (layer, layer_type): (&str, LayerType),
    reference: &Reference,
    found: String,
    prov: Provenance,
) {
    match x.images.iter_mut().find(|i| i.source == *reference) {
        Some(img) => {
            if !img.found_in.contains(&found) {
                img.found_in.push(found);
            }
            if !img.provenance.contains(&prov) {
                img.provenance.push(prov);
            }
        }
        None => x.images.push(ImageUse {
            source: reference.clone(),
            layer: layer.to_string(),
            layer_type,
            role: layer_type.role(),
            found_in: vec![found],
            listed: false,
            provenance: vec![prov],
        }),
    }
}

/// The images the profiles' manifests (manifest packs, a layer's `manifests`) name outside
/// `image` fields, by the rules charts follow ([`berth_chart::scan_manifest`]): container
/// arguments and environment variables, ConfigMap data, custom resources. The `image`
/// fields themselves berth-profile already read (provenance `manifest`).
fn manifest_runtime_images(
    profiles: &[Profile],
    scope: ImageScope,
    x: &mut Extraction,
) -> Result<(), PlanError> {
    if scope == ImageScope::Pod {
        return Ok(());
    }
    for m in berth_profile::rendered_manifests(profiles)? {
        let origin = format!("{}: layer {}", m.file, m.layer);
        let manifest = berth_chart::Manifest {
            source: format!("manifest {}", m.name),
            text: m.text,
        };
        let places = berth_chart::scan_manifest(&origin, &manifest, ImageScope::All)
            .map_err(|source| PlanError::Manifest(Box::new(source)))?;
        for img in places {
            if img.provenance == berth_chart::Provenance::Rendered || img.field.ends_with(".image")
            {
                continue;
            }
            let found = format!("{origin}: {}", place(&img));
            match Reference::parse(&img.reference) {
                Ok(r) => add(x, (&m.layer, m.layer_type), &r, found, provenance(&img)),
                Err(e) => x.findings.push(Finding {
                    rule: "invalid-reference".into(),
                    severity: Severity::Error,
                    file: m.file.clone(),
                    layer: m.layer.clone(),
                    path: format!("{}: {}", manifest.source, img.path()),
                    message: format!("the manifest names `{}`: {e}", img.reference),
                }),
            }
        }
    }
    Ok(())
}

/// The plan's provenance of an image a chart names.
fn provenance(img: &Image) -> Provenance {
    match img.provenance {
        berth_chart::Provenance::Rendered => Provenance::Rendered,
        berth_chart::Provenance::RenderedArg => Provenance::RenderedArg,
        berth_chart::Provenance::RenderedEnv => Provenance::RenderedEnv,
        berth_chart::Provenance::RenderedConfig => Provenance::RenderedConfig,
        berth_chart::Provenance::RenderedResource => Provenance::RenderedResource,
    }
}

/// Where a chart names an image: its template, and for one outside a Pod template's `image`
/// the object, field and what names it (`templates/daemonset-sa.yaml:
/// DaemonSet/longhorn-manager .spec.template.spec.containers[0].command[4] (--engine-image)`).
fn place(img: &Image) -> String {
    if img.provenance == berth_chart::Provenance::Rendered {
        return img.source.clone();
    }
    match &img.named_by {
        Some(n) => format!("{}: {} ({n})", img.source, img.path()),
        None => format!("{}: {}", img.source, img.path()),
    }
}

fn finding(
    spec: &ChartSpec,
    severity: Severity,
    rule: &str,
    path: String,
    message: String,
) -> Finding {
    Finding {
        rule: rule.to_string(),
        severity,
        file: spec.file.clone(),
        layer: spec.layer.clone(),
        path,
        message,
    }
}

/// Every difference between what chart `r` renders and the pack's list (checked once per
/// pack, against all its charts, when `check_list`), its values and the chart's annotations.
fn disagreements(r: &Rendered, pack: &[&Rendered], check_list: bool) -> Vec<Finding> {
    let spec = r.spec;
    let chart = format!("chart {}", spec.describe());
    let warn = |path: String, message: String| {
        finding(spec, Severity::Warning, "chart-disagrees", path, message)
    };
    let rendered_list = |set: &[(Reference, String)]| {
        let names: Vec<String> = set.iter().map(|(x, _)| format!("`{x}`")).collect();
        if names.is_empty() {
            "no image".to_string()
        } else {
            names.join(", ")
        }
    };
    let all: Vec<(Reference, String)> = pack
        .iter()
        .flat_map(|p| p.rendered.iter().cloned())
        .collect();
    let listed: Vec<(Reference, &str)> = spec
        .listed
        .iter()
        .filter_map(|(raw, path)| Some((Reference::parse(raw).ok()?, path.as_str())))
        .collect();
    let mut out = Vec::new();
    if check_list {
        for (l, path) in &listed {
            if all.iter().any(|(x, _)| x == l) {
                continue;
            }
            let message = match all.iter().find(|(x, _)| x.name() == l.name()) {
                Some((x, t)) => format!(
                    "pack.content.images lists `{l}` but {chart} renders `{x}` ({t}) with the pack's values; both are reported; make the list agree with what the chart deploys"
                ),
                None => format!(
                    "pack.content.images lists `{l}`, which {chart} does not render with the pack's values (it renders {}); both are reported",
                    rendered_list(&all)
                ),
            };
            out.push(warn(path.to_string(), message));
        }
    }
    for (x, t) in &r.rendered {
        if listed.iter().any(|(l, _)| l == x || l.name() == x.name()) {
            continue;
        }
        let message = format!(
            "{chart} renders `{x}` ({t}), which pack.content.images does not list; add `- image: {x}` to it so content bundles made from the list carry it (Berth mirrors it anyway)"
        );
        out.push(warn(format!("chart {}: {t}", spec.name), message));
    }
    for (raw, path) in &spec.values_images {
        let Ok(v) = Reference::parse(raw) else {
            continue;
        };
        if r.rendered.iter().any(|(x, _)| *x == v) {
            continue;
        }
        let message = match r.rendered.iter().find(|(x, _)| x.name() == v.name()) {
            Some((x, t)) => format!(
                "the values name `{v}` but {chart} renders `{x}` ({t}) with them; both are reported"
            ),
            None => format!(
                "the values name `{v}`, which {chart} does not render with them (it renders {}); both are reported",
                rendered_list(&r.rendered)
            ),
        };
        out.push(warn(path.clone(), message));
    }
    for (a, key) in &r.annotated {
        if r.rendered.iter().any(|(x, _)| x == a) {
            continue;
        }
        let path = format!("chart {}: Chart.yaml annotations.{key}", spec.name);
        let message = match r.rendered.iter().find(|(x, _)| x.name() == a.name()) {
            Some((x, t)) => format!(
                "the chart's annotation {key} lists `{a}` but {chart} renders `{x}` ({t}) with the pack's values; both are reported"
            ),
            None => format!(
                "the chart's annotation {key} lists `{a}`, which {chart} does not render with the pack's values (it renders {}); both are reported",
                rendered_list(&r.rendered)
            ),
        };
        out.push(warn(path, message));
    }
    out
}

/// The images of one chart alone (`berth images --chart`): rendered, then annotated, with
/// findings where the annotation and the rendering disagree. Every image's layer is the
/// chart's name, its role `addon`.
pub fn chart_extraction(chart: &Chart, opts: &Options) -> Result<Extraction, ChartError> {
    let spec = ChartSpec {
        file: chart.origin.clone(),
        layer: chart.name.clone(),
        layer_type: berth_profile::LayerType::Addon,
        path: String::new(),
        name: chart.name.clone(),
        version: chart.version(),
        repo: String::new(),
        values: Value::Null,
        listed: Vec::new(),
        values_images: Vec::new(),
    };
    let mut x = Extraction {
        images: Vec::new(),
        findings: Vec::new(),
    };
    let mut r = Rendered {
        spec: &spec,
        rendered: Vec::new(),
        annotated: Vec::new(),
    };
    let what = format!("chart {}", chart.origin);
    for img in berth_chart::discover_places(chart, opts)? {
        if let Err(e) = r.add_rendered(&mut x, &what, &img) {
            x.findings.push(finding(
                &spec,
                Severity::Error,
                "invalid-reference",
                img.source.clone(),
                format!("the chart renders `{}`: {e}", img.reference),
            ));
        }
    }
    for (raw, key) in chart.annotated_images()? {
        // An annotation that does not parse is left out here (no finding).
        let _ = r.add_annotated(&mut x, &what, &raw, key);
    }
    let pack = [&r];
    let mut findings = disagreements(&r, &pack, false);
    findings.retain(|f| f.path.contains("annotations."));
    x.findings = findings;
    Ok(x)
}
