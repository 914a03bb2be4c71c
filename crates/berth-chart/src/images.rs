//! The images of every Pod template in rendered manifests: `containers`, `initContainers`
//! and `ephemeralContainers` of Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet,
//! ReplicationController, Job and CronJob; Helm test hooks (`helm.sh/hook: test`) skipped.

use crate::value::Value;
use crate::{ChartError, Manifest};

/// An image reference as rendered, with the template that rendered it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Image {
    pub reference: String,
    pub source: String,
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

fn pod_spec(doc: &Value) -> Option<Value> {
    let kind = doc.get("kind")?;
    let spec = doc.get("spec");
    match kind.as_str()? {
        "Pod" => spec,
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "ReplicationController"
        | "Job" => spec?.get("template")?.get("spec"),
        "CronJob" => spec?
            .get("jobTemplate")?
            .get("spec")?
            .get("template")?
            .get("spec"),
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

/// Images of the Pod templates in `manifests`, sorted and without duplicates.
pub fn images_of(chart: &str, manifests: &[Manifest]) -> Result<Vec<Image>, ChartError> {
    let mut out = Vec::new();
    for m in manifests {
        for d in documents(&m.text) {
            let doc = Value::from_yaml_str(&d).map_err(|message| ChartError::Output {
                chart: chart.to_string(),
                file: m.source.clone(),
                message,
            })?;
            if is_test_hook(&doc) {
                continue;
            }
            let Some(spec) = pod_spec(&doc) else { continue };
            for list in ["initContainers", "containers", "ephemeralContainers"] {
                if let Some(Value::List(cs)) = spec.get(list) {
                    for c in cs.iter() {
                        if let Some(Value::Str(i)) = c.get("image") {
                            out.push(Image {
                                reference: i.to_string(),
                                source: m.source.clone(),
                            });
                        }
                    }
                }
            }
        }
    }
    out.sort();
    out.dedup_by(|a, b| a.reference == b.reference);
    Ok(out)
}
