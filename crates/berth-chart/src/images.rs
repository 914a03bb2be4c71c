//! The images of rendered manifests. The Pod-template set: the `image` of every entry of
//! `containers`, `initContainers` and `ephemeralContainers` of Pod, Deployment, StatefulSet,
//! DaemonSet, ReplicaSet, ReplicationController, Job and CronJob. The runtime set adds the
//! complete image references named elsewhere (container arguments, environment variables,
//! ConfigMap data, custom resources; see [`crate::runtime`]). Helm test hooks
//! (`helm.sh/hook: test`) and `CustomResourceDefinition`s are skipped.

use crate::runtime;
use crate::value::Value;
use crate::{ChartError, Manifest};

/// Where an image reference was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Provenance {
    /// The `image` field of a Pod-template container (what Helm-based tools list).
    Rendered,
    /// A container's `args` or `command` entry, alone or as `--flag=REF`.
    RenderedArg,
    /// A container's `env[].value`.
    RenderedEnv,
    /// A value of a ConfigMap's `data`.
    RenderedConfig,
    /// A field of a custom resource.
    RenderedResource,
}

impl Provenance {
    /// The name printed in tables and JSON (`rendered`, `rendered-arg`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Provenance::Rendered => "rendered",
            Provenance::RenderedArg => "rendered-arg",
            Provenance::RenderedEnv => "rendered-env",
            Provenance::RenderedConfig => "rendered-config",
            Provenance::RenderedResource => "rendered-resource",
        }
    }
}

impl std::fmt::Display for Provenance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which images discovery returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImageScope {
    /// Pod-template images and every complete reference named in arguments, environment
    /// variables, ConfigMap data and custom resources (what the site needs).
    #[default]
    All,
    /// Only the `image` fields of Pod templates (exactly what Helm renders; `--images pod`).
    Pod,
}

/// An image reference as rendered, with the template that rendered it and the place in the
/// rendered object where it was found.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Image {
    /// As rendered (not normalized); for `--flag=REF` only the `REF`.
    pub reference: String,
    pub provenance: Provenance,
    /// The template file (`CHART/templates/FILE`), or the manifest's name.
    pub source: String,
    /// `Kind/name` of the rendered object (`DaemonSet/longhorn-manager`).
    pub object: String,
    /// The field path in that object (`.spec.template.spec.containers[0].args[9]`).
    pub field: String,
    /// What names the image there: the flag of an argument (`--engine-image`), the
    /// environment variable (`CSI_ATTACHER_IMAGE`), the ConfigMap key; `None` for `image`.
    pub named_by: Option<String>,
}

impl Image {
    /// `Kind/name .field.path`, as `images --explain` prints it.
    pub fn path(&self) -> String {
        format!("{} {}", self.object, self.field)
    }
}

/// Splits a rendered file into YAML documents as Helm does (on `---` lines).
fn documents(text: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" || line.starts_with("--- ") {
            docs.push(String::new());
        } else {
            let d = docs.last_mut().expect("one document");
            d.push_str(line);
            d.push('\n');
        }
    }
    docs.into_iter().filter(|d| !d.trim().is_empty()).collect()
}

/// The Pod spec of a workload and its field path.
pub(crate) fn pod_spec(doc: &Value) -> Option<(Value, &'static str)> {
    let kind = doc.get("kind")?;
    let spec = doc.get("spec");
    match kind.as_str()? {
        "Pod" => Some((spec?, ".spec")),
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "ReplicationController"
        | "Job" => Some((spec?.get("template")?.get("spec")?, ".spec.template.spec")),
        "CronJob" => Some((
            spec?
                .get("jobTemplate")?
                .get("spec")?
                .get("template")?
                .get("spec")?,
            ".spec.jobTemplate.spec.template.spec",
        )),
        _ => None,
    }
}

fn is_test_hook(doc: &Value) -> bool {
    doc.get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get("helm.sh/hook"))
        .and_then(|h| {
            h.as_str()
                .map(|s| s.split(',').any(|x| x.trim().starts_with("test")))
        })
        .unwrap_or(false)
}

/// `Kind/name` of a rendered object.
fn object_name(doc: &Value) -> String {
    let s = |v: Option<Value>| v.and_then(|v| v.as_str().map(str::to_string));
    let kind = s(doc.get("kind")).unwrap_or_else(|| "?".into());
    let name = s(doc.get("metadata").and_then(|m| m.get("name"))).unwrap_or_default();
    format!("{kind}/{name}")
}

/// Every place an image is named in one rendered file or manifest (`m.source` names it,
/// `origin` the chart or pack for errors), in document order: the same rules for charts,
/// manifest packs and plain manifests. A document that is not YAML is an error.
pub fn scan_manifest(
    origin: &str,
    m: &Manifest,
    scope: ImageScope,
) -> Result<Vec<Image>, ChartError> {
    let mut out = Vec::new();
    for d in documents(&m.text) {
        let doc = Value::from_yaml_str(&d).map_err(|message| ChartError::Output {
            chart: origin.to_string(),
            file: m.source.clone(),
            message,
        })?;
        if is_test_hook(&doc)
            || doc
                .get("kind")
                .and_then(|k| k.as_str().map(str::to_string))
                .as_deref()
                == Some("CustomResourceDefinition")
        {
            continue;
        }
        let object = object_name(&doc);
        let mut push =
            |reference: String, provenance: Provenance, field: String, named_by: Option<String>| {
                out.push(Image {
                    reference,
                    provenance,
                    source: m.source.clone(),
                    object: object.clone(),
                    field,
                    named_by,
                })
            };
        if let Some((spec, at)) = pod_spec(&doc) {
            for list in ["initContainers", "containers", "ephemeralContainers"] {
                let Some(Value::List(cs)) = spec.get(list) else {
                    continue;
                };
                for (n, c) in cs.iter().enumerate() {
                    let here = format!("{at}.{list}[{n}]");
                    if let Some(Value::Str(i)) = c.get("image") {
                        push(
                            i.to_string(),
                            Provenance::Rendered,
                            format!("{here}.image"),
                            None,
                        );
                    }
                    if scope == ImageScope::All {
                        runtime::container(c, &here, &mut push);
                    }
                }
            }
        } else if scope == ImageScope::All {
            runtime::object(&doc, &mut push);
        }
    }
    Ok(out)
}

/// Every place an image is named in `manifests` (see [`scan_manifest`]), sorted by
/// reference, then provenance (`rendered` first), source and path: what
/// `images --explain` lists.
pub fn image_places(
    chart: &str,
    manifests: &[Manifest],
    scope: ImageScope,
) -> Result<Vec<Image>, ChartError> {
    let mut out = Vec::new();
    for m in manifests {
        out.extend(scan_manifest(chart, m, scope)?);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The images of `manifests`, sorted, one entry per reference: the first place of each (a
/// Pod-template `image` wins over an argument naming the same reference).
pub fn images_of(
    chart: &str,
    manifests: &[Manifest],
    scope: ImageScope,
) -> Result<Vec<Image>, ChartError> {
    let mut out = image_places(chart, manifests, scope)?;
    out.dedup_by(|a, b| a.reference == b.reference);
    Ok(out)
}

/// The places in `places` that name `reference`, compared normalized
/// (`nginx` is `docker.io/library/nginx:latest`); a reference that does not parse is
/// compared as written.
pub fn places_of<'a>(places: &'a [Image], reference: &str) -> Vec<&'a Image> {
    let norm = |r: &str| {
        berth_reference::Reference::parse(r)
            .map(|p| p.to_string())
            .unwrap_or_else(|_| r.to_string())
    };
    let want = norm(reference.trim());
    places
        .iter()
        .filter(|i| norm(&i.reference) == want)
        .collect()
}
