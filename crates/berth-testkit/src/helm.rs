//! Helm v4 (the Go peer `helm`) as the oracle of chart rendering: `helm template` of a local
//! chart, offline (no `--dependency-update`, no `--validate`), with Helm's cache, config and
//! data directories in a temporary directory, its output parsed as YAML documents, and the
//! images of the Pod templates in them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use tempfile::TempDir;

use crate::{clean_command, require_go_peer};

/// What `helm template` is asked to render (the same inputs Berth's renderer gets).
#[derive(Clone, Debug)]
pub struct Template<'a> {
    pub chart: &'a Path,
    pub release: &'a str,
    pub namespace: &'a str,
    /// `--kube-version`, e.g. `v1.34.0` (pinned, so the output does not follow the client-go
    /// Helm was built with).
    pub kube_version: &'a str,
    /// `-f FILE`, in order.
    pub values_files: &'a [PathBuf],
    /// `--set K=V`, in order.
    pub set: &'a [String],
    /// `--skip-tests`: leave out Helm test hooks (their Pods are not part of a release).
    pub skip_tests: bool,
}

/// An isolated helm.
pub struct Helm {
    dir: TempDir,
    bin: PathBuf,
}

impl Default for Helm {
    fn default() -> Self {
        Self::new()
    }
}

impl Helm {
    /// The Go peer `helm` (panics naming `scripts/install-deps.sh` when it is not built).
    pub fn new() -> Helm {
        let bin = require_go_peer("helm");
        let dir = tempfile::Builder::new()
            .prefix("berth-helm-")
            .tempdir()
            .expect("create helm temp dir");
        Helm { dir, bin }
    }

    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// `helm ARGS...` with a cleared environment and Helm's own directories inside this
    /// helm's temporary directory.
    pub fn run(&self, args: &[&str]) -> Output {
        let d = self.dir.path();
        clean_command(&self.bin, d)
            .env("HELM_CACHE_HOME", d.join("cache"))
            .env("HELM_CONFIG_HOME", d.join("config"))
            .env("HELM_DATA_HOME", d.join("data"))
            .args(args)
            .output()
            .expect("run helm")
    }

    /// `helm version --template {{.Version}}`.
    pub fn version(&self) -> String {
        let o = self.run(&["version", "--template", "{{.Version}}"]);
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// `helm template RELEASE CHART -n NS --kube-version V [-f ..] [--set ..]`: the rendered
    /// text, or helm's error output.
    pub fn template(&self, t: &Template) -> Result<String, String> {
        let chart = t.chart.to_str().expect("chart path is UTF-8");
        let mut args: Vec<&str> = vec![
            "template",
            t.release,
            chart,
            "--namespace",
            t.namespace,
            "--kube-version",
            t.kube_version,
        ];
        if t.skip_tests {
            args.push("--skip-tests");
        }
        for f in t.values_files {
            args.push("-f");
            args.push(f.to_str().expect("values path is UTF-8"));
        }
        for s in t.set {
            args.push("--set");
            args.push(s);
        }
        let o = self.run(&args);
        if o.status.success() {
            Ok(String::from_utf8(o.stdout).expect("helm output is UTF-8"))
        } else {
            Err(format!(
                "helm {args:?} failed ({}):\n{}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
            ))
        }
    }
}

/// The YAML documents of a rendered chart (empty documents dropped), as JSON values.
pub fn documents(rendered: &str) -> Result<Vec<Value>, String> {
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_events: 50_000_000,
            max_nodes: 10_000_000,
            max_total_scalar_bytes: 512 * 1024 * 1024,
            max_documents: 100_000,
        },
    };
    let docs: Vec<Value> = serde_saphyr::from_multiple_with_options(rendered, options)
        .map_err(|e| format!("helm's output is not YAML: {e}"))?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// The documents of a rendered chart grouped by the template that produced them (helm writes
/// `# Source: CHART/templates/FILE` before each document), in output order within a template:
/// what a renderer's output is compared with, template by template.
pub fn documents_by_source(
    rendered: &str,
) -> Result<std::collections::BTreeMap<String, Vec<Value>>, String> {
    let mut out: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
    let mut chunk = String::new();
    let mut flush = |chunk: &mut String| -> Result<(), String> {
        let source = chunk
            .lines()
            .find_map(|l| l.strip_prefix("# Source: "))
            .map(str::to_string);
        let docs = documents(chunk)?;
        if !docs.is_empty() {
            let source = source.ok_or_else(|| {
                format!("a document without a `# Source:` line: {}", chunk.trim())
            })?;
            out.entry(source).or_default().extend(docs);
        }
        chunk.clear();
        Ok(())
    };
    for line in rendered.lines() {
        if line == "---" || line.starts_with("--- ") {
            flush(&mut chunk)?;
        }
        chunk.push_str(line);
        chunk.push('\n');
    }
    flush(&mut chunk)?;
    Ok(out)
}

/// The images of every Pod template in the documents: the `image` of each entry of
/// `containers`, `initContainers` and `ephemeralContainers` lists, wherever a workload kind
/// nests its Pod spec (Deployment, StatefulSet, DaemonSet, Job, CronJob, Pod, and custom
/// resources that embed a Pod spec). Schemas of CRDs, where `containers` is an object
/// describing a list, contribute nothing. References are as rendered (not normalized).
pub fn pod_images(docs: &[Value]) -> BTreeSet<String> {
    fn walk(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    if matches!(
                        k.as_str(),
                        "containers" | "initContainers" | "ephemeralContainers"
                    ) && let Value::Array(list) = child
                    {
                        for c in list {
                            if let Some(i) = c.get("image").and_then(Value::as_str) {
                                out.insert(i.to_string());
                            }
                        }
                    }
                    walk(child, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    for d in docs {
        walk(d, &mut out);
    }
    out
}

/// A reference normalized as `../shared/charts/*/expected-images.txt` lists them: a name
/// without a registry host gets `docker.io/` (and `library/` when it has one component), a
/// reference with neither tag nor digest gets `:latest`.
pub fn normalize_image(reference: &str) -> String {
    let r = reference.trim();
    let (first, rest) = r.split_once('/').unwrap_or(("", r));
    let has_host =
        !first.is_empty() && (first.contains('.') || first.contains(':') || first == "localhost");
    let mut out = if has_host {
        r.to_string()
    } else if first.is_empty() {
        format!("docker.io/library/{rest}")
    } else {
        format!("docker.io/{r}")
    };
    let name_end = out.find('@').unwrap_or(out.len());
    let last = &out[..name_end];
    let has_tag = last.rsplit_once('/').map_or(last, |(_, l)| l).contains(':');
    if !has_tag && !out.contains('@') {
        out.push_str(":latest");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_the_expected_lists() {
        assert_eq!(normalize_image("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(
            normalize_image("coredns/coredns:1.13.1"),
            "docker.io/coredns/coredns:1.13.1"
        );
        assert_eq!(
            normalize_image("docker.io/traefik:v3.7.11"),
            "docker.io/traefik:v3.7.11"
        );
        assert_eq!(
            normalize_image("127.0.0.1:5000/a/b"),
            "127.0.0.1:5000/a/b:latest"
        );
        let d = "sha256:594ceea76b01c592858f803f9ff4d2cb40542cae2060410b2c95f75907d659e1";
        assert_eq!(
            normalize_image(&format!("registry.k8s.io/x/c@{d}")),
            format!("registry.k8s.io/x/c@{d}")
        );
        assert_eq!(
            normalize_image(&format!("registry.k8s.io/x/c:v1@{d}")),
            format!("registry.k8s.io/x/c:v1@{d}")
        );
    }

    #[test]
    fn documents_are_grouped_by_their_template() {
        let by = documents_by_source(
            "---\n# Source: c/templates/a.yaml\nkind: A\n---\n# Source: c/templates/b.yaml\nkind: B\n---\n# Source: c/templates/a.yaml\nkind: A2\n---\n# Source: c/templates/empty.yaml\n",
        )
        .unwrap();
        let kinds = |k: &str| -> Vec<String> {
            by[k]
                .iter()
                .map(|d| d["kind"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(by.len(), 2);
        assert_eq!(kinds("c/templates/a.yaml"), ["A", "A2"]);
        assert_eq!(kinds("c/templates/b.yaml"), ["B"]);
        assert!(documents_by_source("kind: X\n").is_err());
    }

    #[test]
    fn pod_images_come_from_container_lists_only() {
        let docs = documents(
            "kind: Deployment\nspec:\n  template:\n    spec:\n      initContainers:\n        - name: i\n          image: a:1\n      containers:\n        - name: c\n          image: b:2\n---\n---\nkind: CronJob\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers: [{name: c, image: 'c@sha256:00'}]\n---\nkind: CustomResourceDefinition\nspec:\n  versions:\n    - schema:\n        openAPIV3Schema:\n          properties:\n            containers:\n              type: array\n              items: {properties: {image: {type: string}}}\n            image: {type: string}\n",
        )
        .unwrap();
        assert_eq!(docs.len(), 3);
        let got: Vec<String> = pod_images(&docs).into_iter().collect();
        assert_eq!(got, ["a:1", "b:2", "c@sha256:00"]);
    }
}
