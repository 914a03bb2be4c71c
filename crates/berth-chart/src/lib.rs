//! Helm chart image discovery, in Rust: a chart (in-memory files or a `.tgz`) with its
//! dependencies resolved, its values coalesced as Helm does, every template rendered with Go
//! `text/template` semantics and the Sprig/Helm functions real charts use, and the images of
//! every Pod template read from the rendered documents. No I/O here (see [`fs`] for a
//! directory loader).

mod certs;
mod chart;
mod exec;
pub mod fs;
mod funcs;
mod images;
mod parse;
pub mod runtime;
mod sprig;
mod value;
mod values;

use std::collections::BTreeMap;
use std::rc::Rc;

pub use chart::{Chart, ChartArchive};
pub use images::{
    Image, ImageScope, Provenance, image_places, images_of, places_of, scan_manifest,
};

use crate::exec::Engine;
use crate::value::{Files, Map, Value};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChartError {
    #[error("chart {chart}: {message}")]
    Load { chart: String, message: String },
    #[error("chart {chart}: values {source_name}: {message}")]
    Values {
        chart: String,
        source_name: String,
        message: String,
    },
    #[error("chart {chart}: template {file} line {line}: {message}")]
    Template {
        chart: String,
        file: String,
        line: usize,
        message: String,
    },
    #[error("chart {chart}: {file}: the rendered output is not YAML: {message}")]
    Output {
        chart: String,
        file: String,
        message: String,
    },
}

/// What `helm template` is told besides the chart.
#[derive(Debug, Clone)]
pub struct Options {
    pub release_name: String,
    pub namespace: String,
    /// `--kube-version` (`v1.34.0`).
    pub kube_version: String,
    /// `-f FILE` contents in order, with a name for errors.
    pub values: Vec<(String, String)>,
    /// `--set` arguments in order.
    pub set: Vec<String>,
    /// Every image the site needs ([`ImageScope::All`], the default) or only the Pod-template
    /// images Helm renders ([`ImageScope::Pod`], `--images pod`).
    pub images: ImageScope,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            release_name: "release-name".into(),
            namespace: "default".into(),
            kube_version: "v1.34.0".into(),
            values: Vec::new(),
            set: Vec::new(),
            images: ImageScope::All,
        }
    }
}

/// One rendered template file (`CHART/templates/FILE`, or `CHART/charts/SUB/templates/FILE`).
#[derive(Debug, Clone)]
pub struct Manifest {
    pub source: String,
    pub text: String,
}

/// A chart with its dependencies resolved: aliases applied, disabled ones removed.
struct Resolved<'c> {
    chart: &'c Chart,
    name: String,
    meta: Value,
    defaults: Value,
    children: Vec<Resolved<'c>>,
}

fn resolve<'c>(chart: &'c Chart, name: String) -> Result<Resolved<'c>, ChartError> {
    let verr = |m: String| ChartError::Load {
        chart: chart.origin.clone(),
        message: m,
    };
    let meta =
        Value::from_yaml_str(&chart.metadata).map_err(|e| verr(format!("Chart.yaml: {e}")))?;
    let defaults = match Value::from_yaml_str(&chart.values) {
        Ok(v @ Value::Map(_)) => v,
        Ok(Value::Nil) => Value::map(Map::new()),
        Ok(_) => return Err(verr("values.yaml is not a map".into())),
        Err(e) => return Err(verr(format!("values.yaml: {e}"))),
    };
    // An `apiVersion: v1` chart lists its dependencies in requirements.yaml.
    if meta.get("dependencies").is_none()
        && let Some(req) = &chart.requirements
    {
        let r = Value::from_yaml_str(req).map_err(|e| verr(format!("requirements.yaml: {e}")))?;
        if let (Value::Map(m), Some(d)) = (&meta, r.get("dependencies")) {
            m.borrow_mut().insert("dependencies".into(), d);
        }
    }
    let deps: Vec<Value> = match meta.get("dependencies") {
        Some(Value::List(l)) => l.to_vec(),
        _ => Vec::new(),
    };
    let mut children = Vec::new();
    let mut listed = std::collections::BTreeSet::new();
    for d in &deps {
        let dname = d
            .get("name")
            .and_then(|n| n.as_str().map(str::to_string))
            .unwrap_or_default();
        let Some(sub) = chart.subcharts.iter().find(|c| c.name == dname) else {
            return Err(verr(format!(
                "dependency {dname:?} is not in charts/ (run `helm dependency build`)"
            )));
        };
        listed.insert(dname.clone());
        let alias = d.get("alias").and_then(|a| a.as_str().map(str::to_string));
        children.push(resolve(sub, alias.unwrap_or(dname))?);
    }
    for sub in &chart.subcharts {
        if !listed.contains(&sub.name) {
            children.push(resolve(sub, sub.name.clone())?);
        }
    }
    Ok(Resolved {
        chart,
        name,
        meta,
        defaults,
        children,
    })
}

fn node<'a>(r: &'a Resolved) -> values::Node<'a> {
    values::Node {
        name: &r.name,
        defaults: r.defaults.clone(),
        children: r.children.iter().map(node).collect(),
    }
}

/// Removes the dependencies whose `condition` or `tags` turn them off (Helm's
/// `processDependencyEnabled`), with `cvals` the coalesced values of the top chart.
fn prune(r: &mut Resolved, cvals: &Value, prefix: &str) {
    let deps: Vec<Value> = match r.meta.get("dependencies") {
        Some(Value::List(l)) => l.to_vec(),
        _ => Vec::new(),
    };
    let tags = values::path_get(cvals, "tags");
    let mut off = Vec::new();
    for d in &deps {
        let name = d
            .get("alias")
            .or_else(|| d.get("name"))
            .and_then(|n| n.as_str().map(str::to_string))
            .unwrap_or_default();
        let mut enabled = true;
        if let Some(Value::List(t)) = d.get("tags") {
            let states: Vec<bool> = t
                .iter()
                .filter_map(|t| t.as_str())
                .filter_map(|t| match tags.as_ref().and_then(|m| m.get(t)) {
                    Some(Value::Bool(b)) => Some(b),
                    _ => None,
                })
                .collect();
            if !states.is_empty() {
                enabled = states.iter().any(|b| *b);
            }
        }
        if let Some(Value::Str(c)) = d.get("condition") {
            for path in c.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                if let Some(Value::Bool(b)) = values::path_get(cvals, &format!("{prefix}{path}")) {
                    enabled = b;
                    break;
                }
            }
        }
        if !enabled {
            off.push(name);
        }
    }
    r.children.retain(|c| !off.contains(&c.name));
    for c in &mut r.children {
        let p = format!("{prefix}{}.", c.name);
        prune(c, cvals, &p);
    }
}

/// Helm's `processImportValues`, children first: each dependency's `import-values` (`name`
/// for the child's `exports.name`, or `{child: PATH, parent: PATH}`) copied into the parent's
/// values, under the parent's own values.
fn import_values(r: &mut Resolved) -> Result<(), String> {
    for c in &mut r.children {
        import_values(c)?;
    }
    let deps: Vec<Value> = match r.meta.get("dependencies") {
        Some(Value::List(l)) => l.to_vec(),
        _ => Vec::new(),
    };
    if !deps.iter().any(|d| d.get("import-values").is_some()) {
        return Ok(());
    }
    let cvals = Value::map(Map::new());
    values::coalesce(&node(r), &cvals)?;
    let b = Value::map(Map::new());
    let Value::Map(bm) = &b else { unreachable!() };
    for d in &deps {
        let Some(Value::List(ivs)) = d.get("import-values") else {
            continue;
        };
        let name = d
            .get("name")
            .and_then(|n| n.as_str().map(str::to_string))
            .unwrap_or_default();
        for iv in ivs.iter() {
            let (child, parent) = match iv {
                Value::Str(s) => (format!("exports.{s}"), ".".to_string()),
                Value::Map(_) => {
                    let get = |k: &str| iv.get(k).and_then(|v| v.as_str().map(str::to_string));
                    match (get("child"), get("parent")) {
                        (Some(c), Some(p)) => (c, p),
                        _ => {
                            return Err(format!(
                                "dependency {name}: import-values entry needs `child` and `parent`"
                            ));
                        }
                    }
                }
                _ => {
                    return Err(format!(
                        "dependency {name}: import-values entries are strings or maps"
                    ));
                }
            };
            // A missing table is skipped, as Helm does (with a warning).
            let Some(Value::Map(table)) = values::path_get(&cvals, &format!("{name}.{child}"))
            else {
                continue;
            };
            let mut v = Value::Map(table).deep_copy();
            if parent != "." {
                for part in parent.rsplit('.') {
                    let mut m = Map::new();
                    m.insert(part.to_string(), v);
                    v = Value::map(m);
                }
            }
            if let Value::Map(vm) = v {
                let vm = vm.borrow().clone();
                values::coalesce_tables(bm, &vm, false);
            }
        }
    }
    let Value::Map(cm) = &cvals else {
        unreachable!()
    };
    let bm = bm.borrow().clone();
    values::coalesce_tables(cm, &bm, false);
    r.defaults = cvals;
    Ok(())
}

fn user_values(chart: &Chart, opts: &Options) -> Result<Value, ChartError> {
    let user = Value::map(Map::new());
    for (name, text) in &opts.values {
        let v = Value::from_yaml_str(text).map_err(|message| ChartError::Values {
            chart: chart.origin.clone(),
            source_name: name.clone(),
            message,
        })?;
        values::merge_user(&user, &v);
    }
    for s in &opts.set {
        let v = values::parse_set(s).map_err(|message| ChartError::Values {
            chart: chart.origin.clone(),
            source_name: format!("--set {s}"),
            message,
        })?;
        values::merge_user(&user, &v);
    }
    Ok(user)
}

/// Renders every template of the chart and its enabled subcharts, as `helm template` does.
pub fn render(chart: &Chart, opts: &Options) -> Result<Vec<Manifest>, ChartError> {
    let mut top = resolve(chart, chart.name.clone())?;
    let verr = |message: String| ChartError::Values {
        chart: chart.origin.clone(),
        source_name: "coalesced".into(),
        message,
    };
    let cvals = user_values(chart, opts)?;
    values::coalesce(&node(&top), &cvals).map_err(verr)?;
    prune(&mut top, &cvals, "");
    import_values(&mut top).map_err(verr)?;
    let vals = user_values(chart, opts)?;
    values::coalesce(&node(&top), &vals).map_err(verr)?;

    // Every template of every chart, named as Helm names them.
    struct Tpl<'a> {
        name: String,
        text: &'a str,
        values: Value,
        chart: Value,
        files: Value,
        base: String,
        /// A library chart's templates only define (Helm renders none of its files).
        library: bool,
    }
    let mut tpls: Vec<Tpl> = Vec::new();
    fn collect<'a>(
        r: &'a Resolved,
        prefix: &str,
        vals: &Value,
        out: &mut Vec<Tpl<'a>>,
        is_root: bool,
    ) {
        let files = Value::Files(Rc::new(Files(
            r.chart
                .files
                .iter()
                .map(|(k, v)| (k.clone(), Rc::new(v.clone())))
                .collect(),
        )));
        let chart = chart_object(&r.meta, &r.name, is_root);
        let library = r
            .meta
            .get("type")
            .and_then(|t| t.as_str().map(|t| t == "library"))
            == Some(true);
        for (path, text) in &r.chart.templates {
            out.push(Tpl {
                name: format!("{prefix}{}/{path}", r.name),
                text,
                values: vals.clone(),
                chart: chart.clone(),
                files: files.clone(),
                base: format!("{prefix}{}/templates", r.name),
                library,
            });
        }
        for c in &r.children {
            let sub = vals.get(&c.name).unwrap_or_else(|| Value::map(Map::new()));
            collect(c, &format!("{prefix}{}/charts/", r.name), &sub, out, false);
        }
    }
    collect(&top, "", &vals, &mut tpls, true);
    // Helm's order: deeper paths first, then reverse lexical; later definitions win.
    tpls.sort_by(|a, b| {
        let (ca, cb) = (a.name.matches('/').count(), b.name.matches('/').count());
        cb.cmp(&ca).then_with(|| b.name.cmp(&a.name))
    });
    let mut engine = Engine::default();
    let mut parsed = Vec::new();
    for t in &tpls {
        let p = parse::parse(t.text).map_err(|(line, message)| ChartError::Template {
            chart: chart.origin.clone(),
            file: t.name.clone(),
            line,
            message: format!("parse error: {message}"),
        })?;
        engine.add_defines(&t.name, &p);
        parsed.push(p);
    }
    let caps = capabilities(&opts.kube_version);
    let release = release_object(opts);
    let mut out = Vec::new();
    for (t, p) in tpls.iter().zip(&parsed) {
        let base = t.name.rsplit('/').next().unwrap_or_default();
        // The top chart's NOTES.txt is rendered (an error there fails `helm template` too)
        // but is no manifest; subcharts' notes are not rendered.
        let notes = base == "NOTES.txt";
        let top_notes = notes && t.name == format!("{}/templates/NOTES.txt", top.name);
        if base.starts_with('_')
            || t.library
            || (notes && !top_notes)
            || !t.name.contains("/templates/")
        {
            continue;
        }
        let mut m = Map::new();
        m.insert("Values".into(), t.values.clone());
        m.insert("Chart".into(), t.chart.clone());
        m.insert("Release".into(), release.clone());
        m.insert("Capabilities".into(), caps.clone());
        m.insert("Files".into(), t.files.clone());
        let mut tm = Map::new();
        tm.insert("Name".into(), Value::str(&t.name));
        tm.insert("BasePath".into(), Value::str(&t.base));
        m.insert("Template".into(), Value::map(tm));
        let dot = Value::map(m);
        let text = engine
            .render(&t.name, &p.body, &dot)
            .map_err(|e| ChartError::Template {
                chart: chart.origin.clone(),
                file: e.file,
                line: e.line,
                message: e.message,
            })?;
        if !notes {
            out.push(Manifest {
                source: t.name.clone(),
                text: text.replace("<no value>", ""),
            });
        }
    }
    out.sort_by(|a, b| a.source.cmp(&b.source));
    Ok(out)
}

/// `.Chart`: Chart.yaml with Helm's field names (`Name`, `Version`, `AppVersion`, ...).
fn chart_object(meta: &Value, name: &str, is_root: bool) -> Value {
    let mut m = Map::new();
    if let Value::Map(src) = meta {
        for (k, v) in src.borrow().iter() {
            let key = match k.as_str() {
                "apiVersion" => "APIVersion".to_string(),
                "appVersion" => "AppVersion".to_string(),
                "kubeVersion" => "KubeVersion".to_string(),
                other => {
                    let mut c = other.chars();
                    c.next()
                        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                        .unwrap_or_default()
                }
            };
            m.insert(key, v.clone());
        }
    }
    m.insert("Name".into(), Value::str(name));
    m.insert("IsRoot".into(), Value::Bool(is_root));
    for k in [
        "Version",
        "AppVersion",
        "Description",
        "Type",
        "KubeVersion",
    ] {
        m.entry(k.into()).or_insert_with(|| Value::str(""));
    }
    for (k, v) in [
        ("Annotations", Value::map(Map::new())),
        ("Keywords", Value::list(vec![])),
    ] {
        m.entry(k.into()).or_insert(v);
    }
    Value::map(m)
}

fn release_object(o: &Options) -> Value {
    let mut m = Map::new();
    m.insert("Name".into(), Value::str(&o.release_name));
    m.insert("Namespace".into(), Value::str(&o.namespace));
    m.insert("Service".into(), Value::str("Helm"));
    m.insert("IsInstall".into(), Value::Bool(true));
    m.insert("IsUpgrade".into(), Value::Bool(false));
    m.insert("Revision".into(), Value::Int(1));
    Value::map(m)
}

/// The API versions a default Helm knows (built-in Kubernetes groups, with and without kind).
const API_VERSIONS: &[&str] = &[
    "v1",
    "v1/ConfigMap",
    "v1/Secret",
    "v1/Service",
    "v1/ServiceAccount",
    "v1/Pod",
    "v1/Namespace",
    "v1/PersistentVolumeClaim",
    "v1/PersistentVolume",
    "v1/Endpoints",
    "v1/LimitRange",
    "v1/ResourceQuota",
    "admissionregistration.k8s.io/v1",
    "admissionregistration.k8s.io/v1/MutatingWebhookConfiguration",
    "admissionregistration.k8s.io/v1/ValidatingWebhookConfiguration",
    "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy",
    "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicyBinding",
    "apiextensions.k8s.io/v1",
    "apiextensions.k8s.io/v1/CustomResourceDefinition",
    "apiregistration.k8s.io/v1",
    "apiregistration.k8s.io/v1/APIService",
    "apps/v1",
    "apps/v1/Deployment",
    "apps/v1/DaemonSet",
    "apps/v1/StatefulSet",
    "apps/v1/ReplicaSet",
    "apps/v1/ControllerRevision",
    "authentication.k8s.io/v1",
    "authorization.k8s.io/v1",
    "autoscaling/v1",
    "autoscaling/v1/HorizontalPodAutoscaler",
    "autoscaling/v2",
    "autoscaling/v2/HorizontalPodAutoscaler",
    "batch/v1",
    "batch/v1/Job",
    "batch/v1/CronJob",
    "certificates.k8s.io/v1",
    "coordination.k8s.io/v1",
    "coordination.k8s.io/v1/Lease",
    "discovery.k8s.io/v1",
    "discovery.k8s.io/v1/EndpointSlice",
    "events.k8s.io/v1",
    "flowcontrol.apiserver.k8s.io/v1",
    "networking.k8s.io/v1",
    "networking.k8s.io/v1/Ingress",
    "networking.k8s.io/v1/IngressClass",
    "networking.k8s.io/v1/NetworkPolicy",
    "node.k8s.io/v1",
    "node.k8s.io/v1/RuntimeClass",
    "policy/v1",
    "policy/v1/PodDisruptionBudget",
    "rbac.authorization.k8s.io/v1",
    "rbac.authorization.k8s.io/v1/ClusterRole",
    "rbac.authorization.k8s.io/v1/ClusterRoleBinding",
    "rbac.authorization.k8s.io/v1/Role",
    "rbac.authorization.k8s.io/v1/RoleBinding",
    "resource.k8s.io/v1",
    "scheduling.k8s.io/v1",
    "scheduling.k8s.io/v1/PriorityClass",
    "storage.k8s.io/v1",
    "storage.k8s.io/v1/StorageClass",
    "storage.k8s.io/v1/CSIDriver",
    "storage.k8s.io/v1/CSINode",
    "storage.k8s.io/v1/VolumeAttachment",
];

fn capabilities(kube_version: &str) -> Value {
    let v = kube_version.trim_start_matches('v');
    let mut parts = v.split(['.', '-', '+']);
    let major = parts.next().unwrap_or("1").to_string();
    let minor = parts.next().unwrap_or("0").to_string();
    let mut kv = Map::new();
    let full = format!("v{v}");
    kv.insert("Version".into(), Value::str(&full));
    kv.insert("GitVersion".into(), Value::str(&full));
    kv.insert("Major".into(), Value::str(major));
    kv.insert("Minor".into(), Value::str(minor));
    let mut helm = Map::new();
    helm.insert("Version".into(), Value::str("v4.0.0"));
    let mut m = Map::new();
    m.insert("KubeVersion".into(), Value::map(kv));
    m.insert(
        "APIVersions".into(),
        Value::ApiVersions(Rc::new(
            API_VERSIONS.iter().map(|s| s.to_string()).collect(),
        )),
    );
    m.insert("HelmVersion".into(), Value::map(helm));
    Value::map(m)
}

/// Renders the chart and returns its images, one per reference, in `opts.images`' scope
/// (see [`images_of`]).
pub fn discover(chart: &Chart, opts: &Options) -> Result<Vec<Image>, ChartError> {
    let manifests = render(chart, opts)?;
    images_of(&chart.origin, &manifests, opts.images)
}

/// Renders the chart and returns every place an image is named, in `opts.images`' scope
/// (see [`image_places`]; [`places_of`] picks one reference's, for `images --explain`).
pub fn discover_places(chart: &Chart, opts: &Options) -> Result<Vec<Image>, ChartError> {
    let manifests = render(chart, opts)?;
    image_places(&chart.origin, &manifests, opts.images)
}

/// Loads a chart from in-memory files keyed by path relative to the chart root.
pub fn load_files(files: BTreeMap<String, Vec<u8>>, origin: &str) -> Result<Chart, ChartError> {
    Chart::from_files(files, origin)
}
