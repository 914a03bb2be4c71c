//! A Palette export's Helm pack rendered into the plan: the images are exactly what Helm
//! renders with the pack's values plus what the pack lists, each with its provenance; a
//! missing chart keeps its finding; a template that fails is an error naming file, pack,
//! chart, template and line; every disagreement is a warning naming both references.

use std::collections::BTreeMap;
use std::collections::BTreeSet;

use berth_chart::Chart;
use berth_plan::{Charts, Plan, PlanError};
use berth_profile::{Profile, Provenance, parse_profiles};
use berth_rewrite::Rewriter;
use berth_testkit::helm_cases::{KUBE_VERSION, chart_dir};

/// An edge-native export: OS, k3s, and podinfo as a Helm add-on pack whose values set the
/// image tag through a variable and list `listed` in pack.content.images.
fn export(listed: &str, values: &str) -> String {
    let values = format!(
        "pack:\n  content:\n    images:\n      - image: {listed}\n    charts:\n      - repo: https://stefanprodan.github.io/podinfo\n        name: podinfo\n        version: 6.14.1\ncharts:\n  podinfo:\n{values}"
    );
    let values = serde_json::to_string(&values).unwrap();
    format!(
        r#"{{"metadata": {{"name": "shop"}}, "spec": {{"version": "1.0.0",
  "variables": [{{"name": "tag", "defaultValue": "6.14.1"}}],
  "template": {{"type": "cluster", "cloudType": "edge-native", "packs": [
    {{"name": "k3s", "version": "1.33.1", "type": "spectro", "layer": "k8s",
      "values": "pack:\n  content:\n    images:\n      - image: docker.io/rancher/mirrored-pause:3.6\n"}},
    {{"name": "podinfo", "tag": "6.14.x", "version": "6.14.1", "type": "helm", "layer": "addon",
      "values": {values},
      "registry": {{"metadata": {{"name": "Podinfo", "kind": "helm"}}}}}}
  ]}}}}}}"#
    )
}

fn podinfo() -> Chart {
    berth_chart::fs::load_path(&chart_dir("podinfo")).unwrap()
}

fn profiles(text: &str, vars: &[(&str, &str)]) -> Vec<Profile> {
    let mut p = parse_profiles(text, "shop.json").unwrap();
    let vars: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    p.iter_mut().for_each(|p| p.set_variables(&vars));
    p
}

fn charts(p: &[Profile]) -> Charts {
    Charts::collect(p, KUBE_VERSION, |s| {
        assert_eq!((s.name.as_str(), s.version.as_str()), ("podinfo", "6.14.1"));
        Ok(Some(podinfo()))
    })
    .unwrap()
}

fn plan(p: &[Profile], charts: &Charts) -> Plan {
    Plan::build_with(p, charts, &Rewriter::new(None, None)).unwrap()
}

fn listing(plan: &Plan) -> Vec<(String, Vec<Provenance>)> {
    let e = plan.entries.iter();
    e.map(|e| (e.source.to_string(), e.provenance.clone()))
        .collect()
}

/// The images real `helm template` renders for podinfo with `values` (when the Go peer is
/// built), else the values' own expectation.
fn helm_images(values: &str) -> BTreeSet<String> {
    use berth_testkit::helm::{self, Helm, Template};
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("values.yaml");
    std::fs::write(&f, values).unwrap();
    let chart = chart_dir("podinfo");
    let out = Helm::new()
        .template(&Template {
            chart: &chart,
            release: "podinfo",
            namespace: "default",
            kube_version: KUBE_VERSION,
            values_files: &[f],
            set: &[],
            skip_tests: true,
        })
        .unwrap();
    helm::pod_images(&helm::documents(&out).unwrap())
}

#[test]
fn a_helm_pack_gives_what_helm_renders_plus_its_list_with_provenance() {
    let text = export(
        "ghcr.io/stefanprodan/podinfo:{{.spectro.var.tag}}",
        "    image:\n      tag: \"{{.spectro.var.tag}}\"\n",
    );
    let p = profiles(&text, &[]);
    let plan = plan(&p, &charts(&p));
    let c = Provenance::ContentList;
    let r = Provenance::Rendered;
    assert_eq!(
        listing(&plan),
        [
            ("docker.io/rancher/mirrored-pause:3.6".to_string(), vec![c]),
            (
                "ghcr.io/stefanprodan/podinfo:6.14.1".to_string(),
                vec![c, r]
            ),
        ]
    );
    let podinfo = &plan.entries[1];
    assert!(
        podinfo.found_in[1].contains("chart podinfo: podinfo/templates/deployment.yaml"),
        "{:?}",
        podinfo.found_in
    );
    let rules: Vec<&str> = plan.findings.iter().map(|f| f.rule.as_str()).collect();
    // The k3s pack still lacks its chart; podinfo's was rendered and agrees with its list.
    assert_eq!(rules, ["chart-not-available"], "{:#?}", plan.findings);
    assert_eq!(plan.findings[0].layer, "k3s");
    let json = serde_json::to_value(&plan.entries[1]).unwrap();
    assert_eq!(
        json["provenance"],
        serde_json::json!(["content-list", "rendered"])
    );
}

#[test]
fn the_packs_values_change_the_image_as_helm_renders_it() {
    let values = "    image:\n      repository: registry.example.test/mirror/podinfo\n      tag: \"{{.spectro.var.tag}}\"\n";
    let text = export("ghcr.io/stefanprodan/podinfo:6.14.1", values);
    let p = profiles(&text, &[("tag", "6.13.0")]);
    let plan = plan(&p, &charts(&p));
    let rendered: BTreeSet<String> = plan
        .entries
        .iter()
        .filter(|e| e.provenance.contains(&Provenance::Rendered))
        .map(|e| e.source.to_string())
        .collect();
    let want = "registry.example.test/mirror/podinfo:6.13.0";
    assert_eq!(rendered, BTreeSet::from([want.to_string()]));
    // Real helm, given the same values the pack passes, renders the same.
    let helm_values =
        "image:\n  repository: registry.example.test/mirror/podinfo\n  tag: \"6.13.0\"\n";
    assert_eq!(helm_images(helm_values), rendered);
    // The image the values name is also `values` provenance; the list disagrees.
    let e = plan.entries.iter().find(|e| e.source.to_string() == want);
    let e = e.unwrap();
    assert_eq!(e.provenance, [Provenance::Values, Provenance::Rendered]);
    let dis: Vec<_> = plan
        .findings
        .iter()
        .filter(|f| f.rule == "chart-disagrees")
        .collect();
    assert_eq!(dis.len(), 2, "{:#?}", plan.findings);
    assert_eq!(dis[0].layer, "podinfo");
    assert_eq!(dis[0].path, "pack.content.images[0].image");
    for f in &dis {
        assert!(
            f.message.contains("ghcr.io/stefanprodan/podinfo:6.14.1")
                || f.message.contains("does not list"),
            "{f}"
        );
        assert!(f.message.contains("podinfo 6.14.1"), "{f}");
    }
    assert!(dis[0].message.contains(want), "{}", dis[0]);
}

#[test]
fn a_pack_whose_chart_was_not_given_keeps_its_finding() {
    let text = export(
        "ghcr.io/stefanprodan/podinfo:6.14.1",
        "    replicaCount: 1\n",
    );
    let p = profiles(&text, &[]);
    let plan = plan(&p, &Charts::default());
    let f = plan
        .findings
        .iter()
        .find(|f| f.rule == "chart-not-available" && f.layer == "podinfo")
        .expect("podinfo's chart is not available");
    assert!(
        f.message.contains("--charts DIR")
            && f.message
                .contains("podinfo 6.14.1 from https://stefanprodan.github.io/podinfo"),
        "{f}"
    );
    assert_eq!(
        listing(&plan)[1],
        (
            "ghcr.io/stefanprodan/podinfo:6.14.1".to_string(),
            vec![Provenance::ContentList]
        )
    );
}

fn chart_of(files: &[(&str, &str)]) -> Chart {
    let files = files
        .iter()
        .map(|(p, t)| (p.to_string(), t.as_bytes().to_vec()))
        .collect();
    Chart::from_files(files, "podinfo").unwrap()
}

#[test]
fn a_template_that_fails_is_an_error_naming_file_pack_chart_template_and_line() {
    let text = export(
        "ghcr.io/stefanprodan/podinfo:6.14.1",
        "    replicaCount: 1\n",
    );
    let p = profiles(&text, &[]);
    let broken = chart_of(&[
        (
            "Chart.yaml",
            "apiVersion: v2\nname: podinfo\nversion: 6.14.1\n",
        ),
        (
            "templates/deploy.yaml",
            "kind: Pod\nspec:\n  containers:\n    - image: {{ required \"image.tag is required\" .Values.image.tag }}\n",
        ),
        ("values.yaml", "image: {}\n"),
    ]);
    let charts = Charts::collect(&p, KUBE_VERSION, |_| Ok(Some(broken.clone()))).unwrap();
    let e = Plan::build_with(&p, &charts, &Rewriter::new(None, None)).unwrap_err();
    assert!(matches!(e, PlanError::Chart(_)), "{e:?}");
    let msg = e.to_string();
    for part in [
        "shop.json",
        "pack podinfo",
        "chart podinfo 6.14.1",
        "templates/deploy.yaml",
        "line 4",
        "image.tag is required",
    ] {
        assert!(msg.contains(part), "{part}: {msg}");
    }
}

#[test]
fn annotations_add_their_images_and_disagreements() {
    let text = export(
        "ghcr.io/stefanprodan/podinfo:6.14.1",
        "    replicaCount: 1\n",
    );
    let p = profiles(&text, &[]);
    let chart = chart_of(&[
        (
            "Chart.yaml",
            "apiVersion: v2\nname: podinfo\nversion: 6.14.1\nannotations:\n  artifacthub.io/images: |\n    - name: podinfo\n      image: ghcr.io/stefanprodan/podinfo:6.14.1\n    - name: old\n      image: ghcr.io/stefanprodan/podinfo:6.0.0\n",
        ),
        (
            "templates/deploy.yaml",
            "kind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n        - image: ghcr.io/stefanprodan/podinfo:{{ .Chart.Version }}\n",
        ),
    ]);
    let charts = Charts::collect(&p, KUBE_VERSION, |_| Ok(Some(chart.clone()))).unwrap();
    let plan = plan(&p, &charts);
    let c = Provenance::ContentList;
    let r = Provenance::Rendered;
    let a = Provenance::Annotation;
    assert_eq!(
        listing(&plan)[1..],
        [
            (
                "ghcr.io/stefanprodan/podinfo:6.14.1".to_string(),
                vec![c, r, a]
            ),
            ("ghcr.io/stefanprodan/podinfo:6.0.0".to_string(), vec![a]),
        ]
    );
    let dis: Vec<_> = plan
        .findings
        .iter()
        .filter(|f| f.rule == "chart-disagrees")
        .collect();
    assert_eq!(dis.len(), 1, "{:#?}", plan.findings);
    assert_eq!(
        dis[0].path,
        "chart podinfo: Chart.yaml annotations.artifacthub.io/images"
    );
    assert!(
        dis[0].message.contains("podinfo:6.0.0") && dis[0].message.contains("podinfo:6.14.1"),
        "{}",
        dis[0]
    );
}
