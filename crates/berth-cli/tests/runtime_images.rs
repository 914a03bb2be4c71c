//! `berth images --chart` on Longhorn: the thirteen images its workloads need (three in Pod
//! templates, ten named in `longhorn-manager`'s arguments and the driver deployer's
//! environment), `--images pod` for exactly what Helm renders, and `--explain` naming the
//! argument an image came from. The expectations are the chart's own files
//! (`runtime-images.txt`, `expected-images.txt`, from the shared charts).

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Output;

use berth_testkit::helm_cases::chart_dir;
use common::berth;
use serde_json::Value;

fn longhorn() -> PathBuf {
    chart_dir("longhorn")
}

fn listed(file: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(longhorn().join(file)).unwrap();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

fn images(o: &Output) -> Vec<Value> {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    j["images"].as_array().unwrap().clone()
}

fn sources(list: &[Value]) -> BTreeSet<String> {
    let s = list
        .iter()
        .map(|i| i["source"].as_str().unwrap().to_string());
    s.collect()
}

#[test]
fn longhorn_needs_thirteen_and_helm_renders_three() {
    let chart = longhorn();
    let chart = chart.to_str().unwrap();
    let all = images(&berth(&["images", "--chart", chart, "-o", "json"]));
    assert_eq!(sources(&all), listed("runtime-images.txt"));
    assert_eq!(all.len(), 13);
    let pod = images(&berth(&[
        "images", "--chart", chart, "--images", "pod", "-o", "json",
    ]));
    assert_eq!(sources(&pod), listed("expected-images.txt"));
    // The ten extras carry their own provenance: arguments and environment variables.
    let extra: Vec<&Value> = all
        .iter()
        .filter(|i| !sources(&pod).contains(i["source"].as_str().unwrap()))
        .collect();
    assert_eq!(extra.len(), 10);
    let kinds: BTreeSet<String> = extra
        .iter()
        .flat_map(|i| i["provenance"].as_array().unwrap().clone())
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["rendered-arg".to_string(), "rendered-env".to_string()])
    );
}

#[test]
fn explain_names_the_argument_and_the_variable() {
    let chart = longhorn();
    let chart = chart.to_str().unwrap();
    let engine = listed("runtime-images.txt")
        .into_iter()
        .find(|r| r.contains("longhorn-engine"))
        .unwrap();
    let o = berth(&["images", "--chart", chart, "--explain", &engine]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("provenance: rendered-arg"), "{out}");
    assert!(
        out.contains("DaemonSet/longhorn-manager .spec.template.spec.containers[0]"),
        "{out}"
    );
    assert!(out.contains("(--engine-image)"), "{out}");
    let attacher = listed("runtime-images.txt")
        .into_iter()
        .find(|r| r.contains("csi-attacher"))
        .unwrap();
    let o = berth(&["images", "--chart", chart, "--explain", &attacher]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("provenance: rendered-env"), "{out}");
    assert!(out.contains("(CSI_ATTACHER_IMAGE)"), "{out}");
    // An image the chart does not name is an error naming it.
    let o = berth(&[
        "images",
        "--chart",
        chart,
        "--explain",
        "docker.io/library/nginx:1",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not an image of the plan"));
}
