//! `berth images` on Helm packs: the example export's podinfo pack rendered from the
//! embedded chart, `--charts DIR` for an export's packs (images exactly what Helm renders with
//! the pack's values plus the pack's list), `--chart` alone, a template that fails (exit 2,
//! file and line), and `--var` / `--vars`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use berth_testkit::helm::{self, Helm, Template};
use berth_testkit::helm_cases::{KUBE_VERSION, chart_dir, charts_dir};
use common::berth;
use serde_json::Value;

fn example_export() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/palette-export.json")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn json(o: &Output) -> Value {
    assert_eq!(o.status.code(), Some(0), "{}", stderr(o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// (source, provenance) of every image of `berth images -o json`.
fn images(o: &Output) -> Vec<(String, Vec<String>)> {
    let j = json(o);
    let list = j["images"].as_array().unwrap();
    list.iter()
        .map(|i| {
            let p = i["provenance"].as_array().unwrap();
            let p = p.iter().map(|x| x.as_str().unwrap().to_string());
            (i["source"].as_str().unwrap().to_string(), p.collect())
        })
        .collect()
}

fn podinfo_of(list: &[(String, Vec<String>)]) -> Vec<(String, Vec<String>)> {
    let podinfo = list.iter().filter(|(s, _)| s.contains("podinfo"));
    podinfo.cloned().collect()
}

/// What real `helm template` renders for podinfo with `values`.
fn helm_renders(values: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("v.yaml");
    std::fs::write(&f, values).unwrap();
    let out = Helm::new()
        .template(&Template {
            chart: &chart_dir("podinfo"),
            release: "podinfo",
            namespace: "default",
            kube_version: KUBE_VERSION,
            values_files: &[f],
            set: &[],
            skip_tests: true,
        })
        .unwrap();
    let set = helm::pod_images(&helm::documents(&out).unwrap());
    set.into_iter().collect()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn the_example_export_renders_its_podinfo_pack() {
    let o = berth(&["images", "--example", "export", "-o", "json"]);
    let list = images(&o);
    let want = (
        "ghcr.io/stefanprodan/podinfo:6.14.1".to_string(),
        strings(&["content-list", "rendered"]),
    );
    assert_eq!(podinfo_of(&list), [want]);
    assert_eq!(
        helm_renders("image:\n  tag: \"6.14.1\"\n"),
        ["ghcr.io/stefanprodan/podinfo:6.14.1"]
    );
    let e = stderr(&o);
    assert!(!e.contains("layer podinfo: chart:"), "{e}");
    assert!(
        e.contains("layer grafana: chart: "),
        "grafana's chart is not given: {e}"
    );
    // The table says the same.
    let o = berth(&["images", "--example", "export"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("ghcr.io/stefanprodan/podinfo:6.14.1"));
}

#[test]
fn charts_dir_renders_an_exports_pack_with_its_values_and_variables() {
    let export = example_export();
    let export = export.to_str().unwrap();
    let charts = charts_dir();
    let charts = charts.to_str().unwrap();
    // Without --charts: the list only, and the finding says how to give the chart.
    let o = berth(&["images", "--profile", export, "-o", "json"]);
    let list = images(&o);
    assert_eq!(
        podinfo_of(&list),
        [(
            "ghcr.io/stefanprodan/podinfo:6.14.1".to_string(),
            strings(&["content-list"])
        )]
    );
    let e = stderr(&o);
    assert!(
        e.contains("layer podinfo: chart:") && e.contains("--charts DIR"),
        "{e}"
    );
    // --var changes both the list and the values the chart is rendered with: Helm's image.
    let o = berth(&[
        "images",
        "--profile",
        export,
        "--charts",
        charts,
        "--var",
        "podinfoTag=6.13.0",
        "-o",
        "json",
    ]);
    let list = images(&o);
    let helm = helm_renders("replicaCount: 1\nimage:\n  tag: \"6.13.0\"\n");
    assert_eq!(helm, ["ghcr.io/stefanprodan/podinfo:6.13.0"]);
    assert_eq!(
        podinfo_of(&list),
        [(helm[0].clone(), strings(&["content-list", "rendered"]))]
    );
    // Every other image is the export's own, unchanged by the charts.
    let plain = images(&berth(&[
        "images",
        "--profile",
        export,
        "--var",
        "podinfoTag=6.13.0",
        "-o",
        "json",
    ]));
    let others = |l: &[(String, Vec<String>)]| {
        let l = l.iter().filter(|(s, _)| !s.contains("podinfo"));
        l.cloned().collect::<Vec<_>>()
    };
    assert_eq!(others(&plain), others(&list));
    assert_eq!(plain.len(), list.len());
    // --vars FILE, under --var.
    let dir = tempfile::tempdir().unwrap();
    let vars = dir.path().join("vars.yaml");
    std::fs::write(&vars, "podinfoTag: 6.12.1\nmirror: registry.local:5000\n").unwrap();
    let v = vars.to_str().unwrap();
    let list = images(&berth(&[
        "images",
        "--profile",
        export,
        "--charts",
        charts,
        "--vars",
        v,
        "-o",
        "json",
    ]));
    assert_eq!(
        podinfo_of(&list)[0].0,
        "ghcr.io/stefanprodan/podinfo:6.12.1"
    );
    assert!(
        list.iter()
            .any(|(s, _)| s == "registry.local:5000/library/busybox:1.36"),
        "{list:?}"
    );
    let o = berth(&[
        "images",
        "--profile",
        export,
        "--vars",
        v,
        "--var",
        "podinfoTag=6.11.0",
        "-o",
        "json",
    ]);
    assert_eq!(
        podinfo_of(&images(&o))[0].0,
        "ghcr.io/stefanprodan/podinfo:6.11.0"
    );
    // A bad --var or --vars is bad input.
    let o = berth(&["images", "--profile", export, "--var", "podinfoTag"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("NAME=VALUE"), "{}", stderr(&o));
    std::fs::write(&vars, "- podinfoTag\n").unwrap();
    let o = berth(&["images", "--profile", export, "--vars", v]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("vars.yaml"), "{}", stderr(&o));
}

#[test]
fn a_disagreement_between_list_and_chart_is_a_warning_naming_both() {
    let text = std::fs::read_to_string(example_export()).unwrap();
    let text = text.replace("podinfo:{{.spectro.var.podinfoTag}}", "podinfo:6.0.0");
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export.json");
    std::fs::write(&export, text).unwrap();
    let charts = charts_dir();
    let o = berth(&[
        "images",
        "--profile",
        export.to_str().unwrap(),
        "--charts",
        charts.to_str().unwrap(),
        "-o",
        "json",
    ]);
    let list = images(&o);
    assert_eq!(
        podinfo_of(&list),
        [
            (
                "ghcr.io/stefanprodan/podinfo:6.0.0".to_string(),
                strings(&["content-list"])
            ),
            (
                "ghcr.io/stefanprodan/podinfo:6.14.1".to_string(),
                strings(&["rendered"])
            ),
        ]
    );
    let e = stderr(&o);
    let line = e
        .lines()
        .find(|l| l.contains("[chart-disagrees]"))
        .unwrap_or_else(|| panic!("{e}"));
    assert!(
        line.contains("layer podinfo") && line.contains("chart podinfo 6.14.1"),
        "{line}"
    );
    assert!(
        line.contains("podinfo:6.0.0") && line.contains("podinfo:6.14.1"),
        "{line}"
    );
}

#[test]
fn a_chart_alone_and_a_template_that_fails() {
    let chart = chart_dir("podinfo");
    let c = chart.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("v.yaml");
    std::fs::write(
        &values,
        "image:\n  repository: mirror.example.test/podinfo\n",
    )
    .unwrap();
    let v = values.to_str().unwrap();
    let o = berth(&[
        "images",
        "--chart",
        c,
        "--values",
        v,
        "--set",
        "image.tag=6.10.0",
        "-o",
        "json",
    ]);
    let want = (
        "mirror.example.test/podinfo:6.10.0".to_string(),
        strings(&["rendered"]),
    );
    assert_eq!(images(&o), [want]);
    // A template that cannot be rendered: exit 2, the template file and line.
    let broken = dir.path().join("broken");
    std::fs::create_dir_all(broken.join("templates")).unwrap();
    std::fs::write(
        broken.join("Chart.yaml"),
        "apiVersion: v2\nname: podinfo\nversion: 6.14.1\n",
    )
    .unwrap();
    std::fs::write(broken.join("templates/pod.yaml"), "kind: Pod\nspec:\n  containers:\n    - image: {{ .Values.image.digest | required \"set image.digest\" }}\n").unwrap();
    let o = berth(&["images", "--chart", broken.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("templates/pod.yaml") && e.contains("line 4"),
        "{e}"
    );
    // The same chart as an export's pack: the error also names the file and the pack.
    let charts = dir.path().join("charts");
    std::fs::create_dir_all(&charts).unwrap();
    std::fs::rename(&broken, charts.join("podinfo")).unwrap();
    let export = example_export();
    let o = berth(&[
        "images",
        "--profile",
        export.to_str().unwrap(),
        "--charts",
        charts.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    for part in [
        "palette-export.json",
        "pack podinfo",
        "chart podinfo 6.14.1",
        "templates/pod.yaml",
        "line 4",
    ] {
        assert!(e.contains(part), "{part}: {e}");
    }
}
