//! Helm v4 as the oracle of chart rendering: every chart in `<repo>/../shared/charts/` (real
//! public charts, see its README) rendered by `helm template` with a fixed release name,
//! namespace and `--kube-version`, for its defaults and three value sets (optional parts on,
//! a registry override, a digest pin). The output is parsed as YAML documents and the images
//! of the Pod templates compared with what each case must give; with the defaults they must be
//! the chart's `expected-images.txt`.
//!
//! Issue 13 (Berth's own renderer) compares its image set and documents with these.

use std::collections::BTreeSet;
use std::path::Path;

use berth_testkit::helm::{self, Helm, Template};
use berth_testkit::helm_cases::{
    CHARTS, Case, KUBE_VERSION, NAMESPACE, RELEASE, cases, chart_dir as chart, charts_dir,
};

/// `name:` of the chart's Chart.yaml (helm's `# Source:` lines start with it).
fn chart_name(chart: &Path) -> String {
    let text = std::fs::read_to_string(chart.join("Chart.yaml")).unwrap();
    let v: serde_json::Value = berth_testkit::helm::documents(&text)
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    v["name"].as_str().unwrap().to_string()
}

/// The normalized Pod-template images `helm template` renders for the chart with `values`.
fn render(helm: &Helm, chart: &Path, scratch: &Path, case: &str, values: &str) -> BTreeSet<String> {
    let f = scratch.join(format!("{case}.yaml"));
    std::fs::write(&f, values).unwrap();
    let files = if values.trim().is_empty() {
        vec![]
    } else {
        vec![f]
    };
    let rendered = helm
        .template(&Template {
            chart,
            release: RELEASE,
            namespace: NAMESPACE,
            kube_version: KUBE_VERSION,
            values_files: &files,
            set: &[],
            skip_tests: true,
        })
        .unwrap_or_else(|e| panic!("{} / {case}: {e}", chart.display()));
    let docs =
        helm::documents(&rendered).unwrap_or_else(|e| panic!("{} / {case}: {e}", chart.display()));
    // Every document comes from a template of this chart (or of a sub-chart in charts/).
    let by_source = helm::documents_by_source(&rendered)
        .unwrap_or_else(|e| panic!("{} / {case}: {e}", chart.display()));
    assert_eq!(
        by_source.values().map(Vec::len).sum::<usize>(),
        docs.len(),
        "{} / {case}",
        chart.display()
    );
    let chart_name = chart_name(chart);
    for source in by_source.keys() {
        assert!(
            source.starts_with(&format!("{chart_name}/templates/"))
                || source.starts_with(&format!("{chart_name}/charts/")),
            "{} / {case}: document from {source}",
            chart.display()
        );
    }
    assert!(
        !docs.is_empty(),
        "{} / {case}: no documents",
        chart.display()
    );
    assert!(
        docs.iter()
            .all(|d| d.get("kind").is_some_and(|k| k.is_string())),
        "{} / {case}: a document without `kind`",
        chart.display()
    );
    helm::pod_images(&docs)
        .iter()
        .map(|i| helm::normalize_image(i))
        .collect()
}

fn check_chart(name: &str, cases: Vec<Case>) {
    assert!(cases.len() >= 3, "{name}: at least three value sets");
    let helm = Helm::new();
    let chart = chart(name);
    let scratch = tempfile::tempdir().unwrap();
    let defaults = render(&helm, &chart, scratch.path(), "defaults", "");
    assert!(!defaults.is_empty(), "{name}: no images with the defaults");
    let expected = chart.join("expected-images.txt");
    if expected.is_file() {
        let want: BTreeSet<String> = std::fs::read_to_string(&expected)
            .unwrap()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect();
        assert_eq!(
            defaults,
            want,
            "{name}: helm's Pod-template images with the defaults vs {}",
            expected.display()
        );
    }
    for case in &cases {
        let got = render(&helm, &chart, scratch.path(), case.name, &case.values);
        if let Err(e) = case.check(&defaults, &got) {
            panic!("{name} / {}: {e}", case.name);
        }
    }
}

/// Every chart folder has a test below (a new chart in shared/ fails here until it gets one).
#[test]
fn every_shared_chart_is_covered() {
    let covered = CHARTS;
    let dir = charts_dir();
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if !p.is_dir() {
            continue;
        }
        n += 1;
        let folder = p.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            p.join("Chart.yaml").is_file() && p.join("SOURCE.md").is_file(),
            "{folder}: Chart.yaml and SOURCE.md"
        );
        assert!(
            covered.iter().any(
                |c| folder.strip_prefix(c).is_some_and(|r| r.starts_with('-'))
                    && chart(c) == p.canonicalize().unwrap()
            ),
            "{folder} has no case list in peers_helm.rs"
        );
    }
    assert_eq!(n, covered.len(), "charts in {}", dir.display());
}

#[test]
fn helm_is_the_pinned_v4() {
    assert_eq!(Helm::new().version(), "v4.3.2");
}

#[test]
fn helm_renders_coredns() {
    check_chart("coredns", cases("coredns"));
}

#[test]
fn helm_renders_harbor() {
    check_chart("harbor", cases("harbor"));
}

#[test]
fn helm_renders_ingress_nginx() {
    check_chart("ingress-nginx", cases("ingress-nginx"));
}

#[test]
fn helm_renders_longhorn() {
    check_chart("longhorn", cases("longhorn"));
}

#[test]
fn helm_renders_metallb() {
    check_chart("metallb", cases("metallb"));
}

#[test]
fn helm_renders_metrics_server() {
    check_chart("metrics-server", cases("metrics-server"));
}

#[test]
fn helm_renders_nginx() {
    check_chart("nginx", cases("nginx"));
}

#[test]
fn helm_renders_podinfo() {
    check_chart("podinfo", cases("podinfo"));
}

#[test]
fn helm_renders_spegel() {
    check_chart("spegel", cases("spegel"));
}

#[test]
fn helm_renders_tigera_operator() {
    check_chart("tigera-operator", cases("tigera-operator"));
}

#[test]
fn helm_renders_traefik() {
    check_chart("traefik", cases("traefik"));
}

#[test]
fn helm_renders_zot() {
    check_chart("zot", cases("zot"));
}
