//! Palette cluster profile exports: detection, images with provenance, findings, errors, fix.

use std::collections::BTreeMap;

use berth_profile::{
    Extraction, PackType, ProfileError, ProfileFormat, Provenance, detect_format, extract_images,
    fix_always_pull_images, lint, parse_profiles,
};

const MLOPS: &str = include_str!("fixtures/mlops-export.json");
const EXAMPLE: &str = include_str!("../../../examples/palette-export.json");
const RETAIL: &str = include_str!("fixtures/retail-edge.yaml");

fn images(text: &str, file: &str) -> Extraction {
    extract_images(&parse_profiles(text, file).unwrap()).unwrap()
}

fn listing(x: &Extraction) -> Vec<(String, String, Vec<Provenance>)> {
    x.images
        .iter()
        .map(|i| (i.source.to_string(), i.layer.clone(), i.provenance.clone()))
        .collect()
}

#[test]
fn detects_the_three_shapes() {
    assert_eq!(detect_format(RETAIL), ProfileFormat::Berth);
    assert_eq!(detect_format(MLOPS), ProfileFormat::PaletteExport);
    assert_eq!(detect_format(EXAMPLE), ProfileFormat::PaletteExport);
    let list = format!("[{MLOPS}, {EXAMPLE}]");
    assert_eq!(detect_format(&list), ProfileFormat::PaletteExportList);
    let profiles = parse_profiles(&list, "two.json").unwrap();
    let names: Vec<&str> = profiles.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["ML Ops", "edge-retail-k3s"]);
    // The YAML form of an export is detected too.
    let yaml = "metadata:\n  name: y\nspec:\n  template:\n    packs:\n      - name: m\n        type: manifest\n        layer: addon\n        manifests: [\"only-a-name\"]\n";
    assert_eq!(detect_format(yaml), ProfileFormat::PaletteExport);
    let p = &parse_profiles(yaml, "y.yaml").unwrap()[0];
    assert_eq!(
        p.layers[0].pack.as_ref().unwrap().manifest_refs,
        ["only-a-name"]
    );
    assert_eq!(parse_profiles(RETAIL, "retail.yaml").unwrap().len(), 1);
}

#[test]
fn mlops_export_gives_its_value_images() {
    let x = images(MLOPS, "profile.json");
    let got = listing(&x);
    let v = vec![Provenance::Values];
    let want = vec![
        (
            "docker.io/aipipeline/kubeflow-operator:v1.2.0".to_string(),
            "kubeflow".to_string(),
            v.clone(),
        ),
        (
            "quay.io/argoproj/argocd:v2.1.6".to_string(),
            "argo-cd".to_string(),
            v.clone(),
        ),
        (
            "ghcr.io/dexidp/dex:v2.30.0".to_string(),
            "argo-cd".to_string(),
            v.clone(),
        ),
        (
            "docker.io/library/redis:6.2.4-alpine".to_string(),
            "argo-cd".to_string(),
            v.clone(),
        ),
        (
            "quay.io/bitnami/redis-exporter:1.26.0-debian-10-r2".to_string(),
            "argo-cd".to_string(),
            v.clone(),
        ),
    ];
    assert_eq!(got, want, "{x:#?}");
    let found = &x.images[0].found_in;
    assert_eq!(
        found,
        &["profile.json: layer kubeflow: values manifests.kubeflow-operator"]
    );
    let charts: Vec<&str> = x
        .findings
        .iter()
        .filter(|f| f.rule == "chart-not-available")
        .map(|f| f.layer.as_str())
        .collect();
    assert_eq!(charts, ["kubeflow", "argo-cd", "istio"]);
    let f = x.findings.iter().find(|f| f.layer == "istio").unwrap();
    assert!(
        f.message.contains("--chart") && f.message.contains("Public Repo"),
        "{}",
        f.message
    );
    let p = &parse_profiles(MLOPS, "profile.json").unwrap()[0];
    assert_eq!(
        p.layers[1].pack.as_ref().unwrap().pack_type,
        Some(PackType::Spectro)
    );
}

#[test]
fn example_export_gives_the_expected_images() {
    let x = images(EXAMPLE, "palette-export.json");
    let got: Vec<(String, Vec<Provenance>)> =
        listing(&x).into_iter().map(|(r, _, p)| (r, p)).collect();
    let c = Provenance::ContentList;
    let v = Provenance::Values;
    let m = Provenance::Manifest;
    let want = vec![
        ("docker.io/rancher/mirrored-pause:3.6", vec![c]),
        ("docker.io/rancher/mirrored-coredns-coredns:1.10.1", vec![c]),
        ("quay.io/tigera/operator:v1.32.3", vec![c, v]),
        ("docker.io/calico/node:v3.27.0", vec![c]),
        ("docker.io/calico/cni:v3.27.0", vec![c]),
        ("docker.io/grafana/grafana:10.4.1", vec![c]),
        ("quay.io/kiwigrid/k8s-sidecar:1.26.1", vec![c, v]),
        ("ghcr.io/stefanprodan/podinfo:6.14.1", vec![c]),
        ("ghcr.io/example/hello-edge:2.1.0", vec![m]),
        ("docker.io/grafana/grafana:10.4.2", vec![v]),
        ("docker.io/library/busybox:1.36", vec![v]),
    ];
    let want: Vec<(String, Vec<Provenance>)> =
        want.into_iter().map(|(r, p)| (r.to_string(), p)).collect();
    assert_eq!(got, want, "{x:#?}");
    let dis: Vec<_> = x
        .findings
        .iter()
        .filter(|f| f.rule == "content-list-disagrees")
        .collect();
    assert_eq!(dis.len(), 1, "{:#?}", x.findings);
    assert_eq!(dis[0].path, "charts.grafana.image");
    assert!(dis[0].message.contains("10.4.1") && dis[0].message.contains("10.4.2"));
    let charts: Vec<_> = x
        .findings
        .iter()
        .filter(|f| f.rule == "chart-not-available")
        .map(|f| f.layer.as_str())
        .collect();
    assert_eq!(
        charts,
        [
            "edge-native-byoi",
            "edge-k3s",
            "cni-calico",
            "grafana",
            "podinfo"
        ]
    );
    let g = x
        .findings
        .iter()
        .find(|f| f.rule == "chart-not-available" && f.layer == "grafana")
        .unwrap();
    assert!(
        g.message
            .contains("grafana 7.3.7 from https://grafana.github.io/helm-charts"),
        "{}",
        g.message
    );
}

#[test]
fn variables_default_and_override() {
    let mut p = parse_profiles(EXAMPLE, "e.json").unwrap();
    assert_eq!(
        p[0].variables,
        [
            ("mirror".to_string(), "docker.io".to_string()),
            ("podinfoTag".to_string(), "6.14.1".to_string())
        ]
    );
    p[0].set_variables(&BTreeMap::from([(
        "mirror".to_string(),
        "registry.local:5000".to_string(),
    )]));
    let x = extract_images(&p).unwrap();
    assert!(
        x.images
            .iter()
            .any(|i| i.source.to_string() == "registry.local:5000/library/busybox:1.36"),
        "{x:#?}"
    );
}

#[test]
fn unresolved_template_in_an_image_is_an_error_naming_pack_and_path() {
    let text = EXAMPLE.replace("{{.spectro.var.mirror}}", "{{ .Values.mirror }}");
    let f = lint(&parse_profiles(&text, "e.json").unwrap()).unwrap();
    let u = f.iter().find(|f| f.rule == "unrendered-template").unwrap();
    assert_eq!(
        (u.layer.as_str(), u.path.as_str()),
        ("grafana", "charts.grafana.initChownData.image")
    );
}

#[test]
fn broken_values_give_the_file_line_and_the_line_inside() {
    let text = EXAMPLE.replace("      tag: \\\"10.4.2\\\"\\n", "      tag: [10.4.2\\n");
    assert_ne!(text, EXAMPLE);
    let err = extract_images(&parse_profiles(&text, "e.json").unwrap()).unwrap_err();
    let ProfileError::Syntax { line, place, .. } = &err else {
        panic!("{err}")
    };
    let file_line = EXAMPLE
        .lines()
        .position(|l| l.contains("charts:\\n  grafana"))
        .unwrap()
        + 1;
    assert!(
        place.contains("grafana") && place.contains(&format!("line {file_line} of the file")),
        "{err}"
    );
    assert_eq!(*line, 18, "{err}");
}

#[test]
fn fix_on_a_json_export_changes_only_the_plugin_list() {
    let fix = fix_always_pull_images(EXAMPLE, "e.json").unwrap();
    assert_eq!(fix.changes.len(), 1);
    let want = EXAMPLE.replace("NodeRestriction,AlwaysPullImages", "NodeRestriction");
    assert_eq!(fix.text, want);
}

#[test]
fn an_undefined_variable_renders_empty_and_an_image_it_empties_is_refused() {
    // Palette renders an undefined variable empty: the busybox repository becomes
    // `/library/busybox` and the podinfo list entry `ghcr.io/stefanprodan/podinfo:`.
    let text = EXAMPLE
        .replace("{{.spectro.var.mirror}}", "{{.spectro.var.nowhere}}")
        .replace(
            "image: ghcr.io/stefanprodan/podinfo:{{.spectro.var.podinfoTag}}",
            "image: \\\"ghcr.io/stefanprodan/podinfo:{{.spectro.var.unset}}\\\"",
        );
    let x = extract_images(&parse_profiles(&text, "e.json").unwrap()).unwrap();
    let empty: Vec<(&str, &str)> = x
        .findings
        .iter()
        .filter(|f| f.rule == "empty-reference")
        .map(|f| (f.layer.as_str(), f.path.as_str()))
        .collect();
    assert_eq!(
        empty,
        [
            ("podinfo", "pack.content.images[0].image"),
            ("grafana", "charts.grafana.initChownData.image"),
        ],
        "{:#?}",
        x.findings
    );
    let f = x
        .findings
        .iter()
        .find(|f| f.rule == "empty-reference")
        .unwrap();
    assert_eq!(f.severity, berth_profile::Severity::Error);
    assert!(f.message.contains("--var NAME=VALUE"), "{f}");
}

#[test]
fn variables_from_a_file_and_flags() {
    let vars = berth_profile::variable_overrides(
        Some((
            "vars.yaml",
            "mirror: registry.local:5000\npodinfoTag: 6.13.0\n",
        )),
        &["podinfoTag=6.12.1".to_string()],
    )
    .unwrap();
    assert_eq!(vars["mirror"], "registry.local:5000");
    assert_eq!(vars["podinfoTag"], "6.12.1", "a flag wins over the file");
    let e = berth_profile::variable_overrides(Some(("vars.yaml", "- a\n")), &[]).unwrap_err();
    assert!(
        e.to_string().contains("vars.yaml") && e.to_string().contains("not a mapping"),
        "{e}"
    );
    let e = berth_profile::variable_overrides(None, &["novalue".to_string()]).unwrap_err();
    assert!(e.to_string().contains("NAME=VALUE"), "{e}");
    let e = berth_profile::variable_overrides(Some(("v.yaml", "a: [1, 2]\n")), &[]).unwrap_err();
    assert!(
        e.to_string().contains("`a`") && e.to_string().contains("not a scalar"),
        "{e}"
    );
}
