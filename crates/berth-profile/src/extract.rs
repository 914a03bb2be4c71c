//! Image extraction and lints.

use std::collections::HashMap;

use berth_reference::Reference;
use serde::Serialize;

use crate::error::{Embedded, ProfileError};
use crate::profile::{LayerType, Profile, Role, Values};
use crate::render::{Renderer, Site, parse_yaml};
use crate::value::Value;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// A lint result. `path` is the place inside the layer (a dotted path in its values, or
/// `manifest NAME: KIND NAME: path`); `message` says how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: String,
    pub severity: Severity,
    pub file: String,
    pub layer: String,
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One line: `FILE: SEVERITY [RULE] layer LAYER: PATH: MESSAGE` (no `layer LAYER:` when the
/// finding is about no layer in particular).
impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} [{}]", self.file, self.severity, self.rule)?;
        if !self.layer.is_empty() {
            write!(f, " layer {}:", self.layer)?;
        }
        write!(f, " {}: {}", self.path, self.message)
    }
}

impl Finding {
    /// Whether any of `findings` has severity `error`.
    pub fn any_error(findings: &[Finding]) -> bool {
        findings.iter().any(|f| f.severity == Severity::Error)
    }
}

/// One image the cluster uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageUse {
    /// The normalized reference.
    pub source: Reference,
    /// The most authoritative layer it was found in, and that layer's type and role.
    pub layer: String,
    pub layer_type: LayerType,
    pub role: Role,
    /// Every place it was found, most authoritative first.
    pub found_in: Vec<String>,
    /// Whether it is in some layer's `pack.content.images`.
    pub listed: bool,
    /// Where it was read: `content-list` (`pack.content.images`), `values`, `manifest`,
    /// `rendered` (a Helm pack's chart, rendered), `annotation` (the chart's image annotations).
    pub provenance: Vec<Provenance>,
}

/// The kind of place an image reference was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Provenance {
    ContentList,
    Values,
    Manifest,
    /// Rendered from a Helm pack's chart with the pack's values (berth-plan, berth-chart).
    Rendered,
    /// Listed by the chart's `helm.sh/images` / `artifacthub.io/images` annotation.
    Annotation,
    /// Named by a container's `args`/`command` of a rendered chart or manifest (`--flag=REF` or alone).
    RenderedArg,
    /// Named by a container's `env[].value` of a rendered chart or manifest.
    RenderedEnv,
    /// Named by a value of a ConfigMap's `data` a chart or manifest holds.
    RenderedConfig,
    /// Named by a field of a custom resource a chart or manifest holds.
    RenderedResource,
}

/// The images of a set of profiles, and the problems met while extracting them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Extraction {
    pub images: Vec<ImageUse>,
    pub findings: Vec<Finding>,
}

/// A layer after rendering: its values tree and its manifests' documents.
pub(crate) struct RenderedLayer {
    pub profile: usize,
    pub layer: usize,
    pub values: Value,
    /// (manifest name, documents)
    pub manifests: Vec<(String, Vec<Value>)>,
    /// Each manifest's text after rendering macros, in the order of `manifests`.
    pub texts: Vec<String>,
}

/// A layer's manifest after its `{{.spectro...}}` macros are rendered: what the cluster
/// applies, for scanners that read more than `image` fields (berth-plan's runtime images).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedManifest {
    pub file: String,
    pub layer: String,
    pub layer_type: LayerType,
    pub name: String,
    pub text: String,
}

/// Every manifest of `profiles`' layers, rendered, in file and layer order.
pub fn rendered_manifests(profiles: &[Profile]) -> Result<Vec<RenderedManifest>, ProfileError> {
    let mut out = Vec::new();
    for rl in render_all(profiles)? {
        let (p, l) = (
            &profiles[rl.profile],
            &profiles[rl.profile].layers[rl.layer],
        );
        for ((name, _), text) in rl.manifests.iter().zip(rl.texts) {
            out.push(RenderedManifest {
                file: p.file.clone(),
                layer: l.name.clone(),
                layer_type: l.layer_type,
                name: name.clone(),
                text,
            });
        }
    }
    Ok(out)
}

pub(crate) fn render_all(profiles: &[Profile]) -> Result<Vec<RenderedLayer>, ProfileError> {
    let mut renderer = Renderer::new(profiles)?;
    let mut out = Vec::new();
    for (pi, p) in profiles.iter().enumerate() {
        for (li, l) in p.layers.iter().enumerate() {
            let values = match &l.values {
                None => Value::Null,
                Some(Values::Mapping(m)) => {
                    let mut tree = m.clone();
                    let site = Site {
                        profile: pi,
                        layer: &l.name,
                        place: "values",
                    };
                    renderer.render_tree(&mut tree, &site)?;
                    tree
                }
                Some(Values::Text(t)) => {
                    let site = Site {
                        profile: pi,
                        layer: &l.name,
                        place: "values",
                    };
                    let text = renderer.render(t, &site)?;
                    parse_yaml(&text).map_err(|e| {
                        let place = "values, after rendering macros";
                        let what = "the layer's values";
                        Embedded::in_values(p, l, t, place, what).syntax(&text, &e)
                    })?
                }
            };
            let mut manifests = Vec::new();
            let mut texts = Vec::new();
            for m in &l.manifests {
                let place = format!("manifest {}", m.name);
                let site = Site {
                    profile: pi,
                    layer: &l.name,
                    place: &place,
                };
                let text = renderer.render(&m.content, &site)?;
                let docs: Vec<Value> = if text.trim().is_empty() {
                    Vec::new()
                } else {
                    serde_saphyr::from_multiple::<Value>(&text).map_err(|e| {
                        Embedded {
                            file: &p.file,
                            file_text: &p.text,
                            raw: &m.content,
                            after: 0,
                            place: format!("layer {}: manifest {}", l.name, m.name),
                            what: "the manifest's content",
                        }
                        .syntax(&text, &e)
                    })?
                };
                manifests.push((m.name.clone(), docs));
                texts.push(text);
            }
            out.push(RenderedLayer {
                profile: pi,
                layer: li,
                values,
                manifests,
                texts,
            });
        }
    }
    Ok(out)
}

/// One place an image reference was written.
struct Occurrence {
    raw: String,
    profile: usize,
    layer: usize,
    /// Path inside the layer, as findings report it.
    path: String,
    /// `found_in` text after the layer name.
    place: String,
    listed: bool,
    provenance: Provenance,
}

/// (profile, layer, raw reference, path, provenance) of every occurrence.
pub(crate) type OccView<'a> = (usize, usize, &'a str, &'a str, Provenance);

fn occs_view(occs: &[Occurrence]) -> Vec<OccView<'_>> {
    occs.iter()
        .map(|o| {
            (
                o.profile,
                o.layer,
                o.raw.as_str(),
                o.path.as_str(),
                o.provenance,
            )
        })
        .collect()
}

impl Occurrence {
    /// `raw`, found in layer `rl` at `path` (`place` in `found_in`), by way of `provenance`.
    fn new(
        rl: &RenderedLayer,
        raw: String,
        path: String,
        place: String,
        listed: bool,
        provenance: Provenance,
    ) -> Self {
        let (profile, layer) = (rl.profile, rl.layer);
        Occurrence {
            raw,
            profile,
            layer,
            path,
            place,
            listed,
            provenance,
        }
    }
}

/// Whether a reference as written has a tag or a digest.
fn has_tag_or_digest(raw: &str) -> bool {
    let last = raw.rsplit('/').next().unwrap_or(raw);
    raw.contains('@') || last.contains(':')
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Finds `image:` fields: strings, and Helm-style mappings with `repository` (plus optional
/// `registry`, `tag`, `digest`). `skip` is a path not to descend into.
/// `loose` (Palette exports): under `charts.<chart>` and `manifests.<name>`, any mapping with
/// `repository` and `tag` or `digest` is an image too (`manifests.x.{registry,repository,tag}`).
pub(crate) fn walk_images(
    v: &Value,
    path: &str,
    skip: &str,
    loose: bool,
    out: &mut Vec<(String, String)>,
) {
    match v {
        Value::Map(entries) => {
            for (k, child) in entries {
                let p = join(path, k);
                if p == skip {
                    continue;
                }
                if loose
                    && k != "image"
                    && (p.starts_with("charts.") || p.starts_with("manifests."))
                    && (child.get("tag").is_some() || child.get("digest").is_some())
                    && let Some(raw) = helm_image(child)
                {
                    out.push((raw, p));
                    continue;
                }
                if k == "image" {
                    match child {
                        Value::String(s) => {
                            if !s.is_empty() {
                                out.push((s.clone(), p));
                            }
                            continue;
                        }
                        Value::Map(_) => {
                            if let Some(raw) = helm_image(child) {
                                out.push((raw, p));
                                continue;
                            }
                        }
                        _ => {}
                    }
                }
                walk_images(child, &p, skip, loose, out);
            }
        }
        Value::Seq(items) => {
            for (i, child) in items.iter().enumerate() {
                walk_images(child, &format!("{path}[{i}]"), skip, loose, out);
            }
        }
        _ => {}
    }
}

/// `registry/repository:tag@digest` of a Helm-style image mapping; empty parts are left out.
fn helm_image(m: &Value) -> Option<String> {
    let part = |k: &str| {
        m.get(k)
            .and_then(Value::scalar_text)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let repository = part("repository")?;
    let mut raw = match part("registry") {
        Some(r) => format!("{}/{}", r.trim_end_matches('/'), repository),
        None => repository,
    };
    if let Some(tag) = part("tag") {
        raw.push(':');
        raw.push_str(&tag);
    }
    if let Some(digest) = part("digest") {
        raw.push('@');
        raw.push_str(&digest);
    }
    Some(raw)
}

fn occurrences(profiles: &[Profile], layers: &[RenderedLayer]) -> Vec<Occurrence> {
    let mut out = Vec::new();
    // 1. pack.content.images, every layer.
    for rl in layers {
        let list = rl
            .values
            .get("pack")
            .and_then(|p| p.get("content"))
            .and_then(|c| c.get("images"));
        if let Some(Value::Seq(items)) = list {
            for (i, item) in items.iter().enumerate() {
                let (raw, path) = match item {
                    Value::String(s) => (s.clone(), format!("pack.content.images[{i}]")),
                    other => (
                        other
                            .get("image")
                            .and_then(Value::scalar_text)
                            .unwrap_or_default(),
                        format!("pack.content.images[{i}].image"),
                    ),
                };
                out.push(Occurrence::new(
                    rl,
                    raw,
                    path.clone(),
                    path,
                    true,
                    Provenance::ContentList,
                ));
            }
        }
    }
    // 2. manifests.
    for rl in layers {
        for (name, docs) in &rl.manifests {
            for (d, doc) in docs.iter().enumerate() {
                let kind = doc.get("kind").and_then(Value::as_str);
                let obj = doc
                    .get("metadata")
                    .and_then(|m| m.get("name"))
                    .and_then(Value::as_str);
                let what = match (kind, obj) {
                    (Some(k), Some(n)) => format!("{k} {n}"),
                    (Some(k), None) => format!("{k} (document {})", d + 1),
                    _ => format!("document {}", d + 1),
                };
                let mut found = Vec::new();
                walk_images(doc, "", "", false, &mut found);
                for (raw, p) in found {
                    let path = format!("manifest {name}: {what}: {p}");
                    out.push(Occurrence::new(
                        rl,
                        raw,
                        path.clone(),
                        path,
                        false,
                        Provenance::Manifest,
                    ));
                }
            }
        }
    }
    // 3. values (Helm-style), apart from pack.content.images.
    for rl in layers {
        let mut found = Vec::new();
        let loose = profiles[rl.profile].layers[rl.layer].pack.is_some();
        walk_images(&rl.values, "", "pack.content.images", loose, &mut found);
        for (raw, p) in found {
            let place = format!("values {p}");
            out.push(Occurrence::new(
                rl,
                raw,
                p,
                place,
                false,
                Provenance::Values,
            ));
        }
    }
    out
}

/// Extraction plus, per image, where its `:latest` was implied (for the lint).
pub(crate) struct Detailed {
    pub extraction: Extraction,
    /// (image index, file, layer, path) of the first occurrence without tag or digest.
    pub implicit_latest: Vec<(usize, String, String, String)>,
    /// (file, layer, path) of each image's first occurrence.
    pub first: Vec<(String, String, String)>,
}

pub(crate) fn extract_detailed(profiles: &[Profile], layers: &[RenderedLayer]) -> Detailed {
    let mut images: Vec<ImageUse> = Vec::new();
    let mut findings = Vec::new();
    let mut index: HashMap<Reference, usize> = HashMap::new();
    let mut implicit_latest: Vec<(usize, String, String, String)> = Vec::new();
    let mut first = Vec::new();
    let occs = occurrences(profiles, layers);
    findings.extend(crate::palette_findings::findings(
        profiles,
        layers,
        &occs_view(&occs),
    ));
    for occ in occs {
        let p = &profiles[occ.profile];
        let l = &p.layers[occ.layer];
        let finding = |rule: &str, message: String| Finding {
            rule: rule.to_string(),
            severity: Severity::Error,
            file: p.file.clone(),
            layer: l.name.clone(),
            path: occ.path.clone(),
            message,
        };
        if occ.raw.contains("{{") {
            findings.push(finding(
                "unrendered-template",
                format!(
                    "image reference `{}` holds a template Berth does not render (only `{{{{.spectro...}}}}` macros are rendered); write the reference out, or use a `.spectro` macro",
                    occ.raw
                ),
            ));
            continue;
        }
        let raw = occ.raw.trim();
        if raw.is_empty() || raw.ends_with([':', '@', '/']) || raw.starts_with('/') {
            findings.push(finding(
                "empty-reference",
                format!(
                    "image reference `{}` is empty or has an empty part after rendering macros (an undefined `{{{{.spectro.var.NAME}}}}` renders empty); give the variable a value with `--var NAME=VALUE` or `--vars FILE`, or write the reference out",
                    occ.raw
                ),
            ));
            continue;
        }
        let reference = match Reference::parse(&occ.raw) {
            Ok(r) => r,
            Err(e) => {
                findings.push(finding(
                    "invalid-reference",
                    format!("{e}; fix the image reference"),
                ));
                continue;
            }
        };
        let found = format!("{}: layer {}: {}", p.file, l.name, occ.place);
        let i = match index.get(&reference) {
            Some(&i) => {
                let img = &mut images[i];
                img.found_in.push(found);
                img.listed |= occ.listed;
                if !img.provenance.contains(&occ.provenance) {
                    img.provenance.push(occ.provenance);
                }
                i
            }
            None => {
                index.insert(reference.clone(), images.len());
                images.push(ImageUse {
                    source: reference,
                    layer: l.name.clone(),
                    layer_type: l.layer_type,
                    role: l.layer_type.role(),
                    found_in: vec![found],
                    listed: occ.listed,
                    provenance: vec![occ.provenance],
                });
                first.push((p.file.clone(), l.name.clone(), occ.path.clone()));
                images.len() - 1
            }
        };
        if !has_tag_or_digest(&occ.raw) && !implicit_latest.iter().any(|(j, ..)| *j == i) {
            implicit_latest.push((i, p.file.clone(), l.name.clone(), occ.path.clone()));
        }
    }
    Detailed {
        extraction: Extraction { images, findings },
        implicit_latest,
        first,
    }
}

/// Extracts the images of the profiles (layers taken in order across the profiles).
///
/// Errors only when a macro cannot be rendered or some YAML is malformed; bad references are
/// findings.
pub fn extract_images(profiles: &[Profile]) -> Result<Extraction, ProfileError> {
    let layers = render_all(profiles)?;
    Ok(extract_detailed(profiles, &layers).extraction)
}

/// Where in a k8s layer's values `AlwaysPullImages` is enabled: `(path, form)`.
/// `config` is `cluster.config` already parsed (when it was a string).
pub(crate) fn always_pull_paths(config: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let has = |list: &str| list.split(',').any(|t| t.trim() == "AlwaysPullImages");
    let kubeadm = config
        .get("clusterConfiguration")
        .and_then(|c| c.get("apiServer"))
        .and_then(|a| a.get("extraArgs"))
        .and_then(|e| e.get("enable-admission-plugins"))
        .and_then(Value::as_str);
    if kubeadm.is_some_and(has) {
        out.push(
            "cluster.config.clusterConfiguration.apiServer.extraArgs.enable-admission-plugins"
                .to_string(),
        );
    }
    match config.get("kube-apiserver-arg") {
        Some(Value::Seq(items)) => {
            for (i, item) in items.iter().enumerate() {
                if let Some(list) = item.as_str().and_then(plugin_arg)
                    && has(list)
                {
                    out.push(format!("cluster.config.kube-apiserver-arg[{i}]"));
                }
            }
        }
        Some(Value::String(s)) if plugin_arg(s).is_some_and(has) => {
            out.push("cluster.config.kube-apiserver-arg".to_string());
        }
        _ => {}
    }
    out
}

/// The plugin list of a `enable-admission-plugins=...` API server argument.
pub(crate) fn plugin_arg(arg: &str) -> Option<&str> {
    arg.trim()
        .trim_start_matches('-')
        .strip_prefix("enable-admission-plugins=")
}

/// `cluster.config` of a values tree, parsed when it is a string.
pub(crate) fn cluster_config(values: &Value) -> Result<Option<Value>, serde_saphyr::Error> {
    match values.get("cluster").and_then(|c| c.get("config")) {
        Some(Value::String(s)) => parse_yaml(s).map(Some),
        Some(v @ Value::Map(_)) => Ok(Some(v.clone())),
        _ => Ok(None),
    }
}

pub(crate) const ALWAYS_PULL_MESSAGE: &str = "AlwaysPullImages is enabled: it makes every pod start pull from the registry, which defeats preloaded images and the edge cache (and turns every start into an authenticated remote pull); remove it from the list, or run `berth lint --fix`";

pub(crate) fn always_pull_findings(
    profile: &Profile,
    layer: usize,
    values: &Value,
) -> Result<Vec<Finding>, ProfileError> {
    let l = &profile.layers[layer];
    if l.layer_type != LayerType::K8s {
        return Ok(Vec::new());
    }
    let config = cluster_config(values).map_err(|e| {
        let src = values
            .get("cluster")
            .and_then(|c| c.get("config"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let (place, what) = ("values cluster.config", "the `cluster.config` string");
        Embedded::in_values(profile, l, src, place, what).syntax(src, &e)
    })?;
    let Some(config) = config else {
        return Ok(Vec::new());
    };
    Ok(always_pull_paths(&config)
        .into_iter()
        .map(|path| Finding {
            rule: "always-pull-images".to_string(),
            severity: Severity::Error,
            file: profile.file.clone(),
            layer: l.name.clone(),
            path,
            message: ALWAYS_PULL_MESSAGE.to_string(),
        })
        .collect())
}

/// Lints the profiles: `always-pull-images`, `invalid-reference`, `unrendered-template`
/// (errors), `image-not-listed`, `implicit-latest` (warnings).
pub fn lint(profiles: &[Profile]) -> Result<Vec<Finding>, ProfileError> {
    let layers = render_all(profiles)?;
    let detailed = extract_detailed(profiles, &layers);
    let mut findings = detailed.extraction.findings;
    for rl in &layers {
        findings.extend(always_pull_findings(
            &profiles[rl.profile],
            rl.layer,
            &rl.values,
        )?);
    }
    for (i, img) in detailed.extraction.images.iter().enumerate() {
        if !img.listed {
            let (file, layer, path) = &detailed.first[i];
            findings.push(Finding {
                rule: "image-not-listed".to_string(),
                severity: Severity::Warning,
                file: file.clone(),
                layer: layer.clone(),
                path: path.clone(),
                message: format!(
                    "image `{}` is used but not in pack.content.images; add `- image: {}` to pack.content.images of layer {} so content bundles and mirrors include it (Berth mirrors it anyway)",
                    img.source, img.source, layer
                ),
            });
        }
        if let Some((_, file, layer, path)) =
            detailed.implicit_latest.iter().find(|(j, ..)| *j == i)
        {
            findings.push(Finding {
                rule: "implicit-latest".to_string(),
                severity: Severity::Warning,
                file: file.clone(),
                layer: layer.clone(),
                path: path.clone(),
                message: format!(
                    "image `{}` has no tag and no digest, so `:latest` was assumed; pin a tag or a digest so every site runs the same image",
                    img.source
                ),
            });
        }
    }
    Ok(findings)
}
