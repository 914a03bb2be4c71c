//! The profile-format.md example, end to end.

use berth_profile::*;

type Row<'a> = (String, &'a str, LayerType, Role, Vec<&'a str>, bool);

const RETAIL: &str = include_str!("fixtures/retail-edge.yaml");
const DIGEST: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[test]
fn retail_images_roles_layers_and_places() {
    let p = Profile::parse(RETAIL, "retail.yaml").unwrap();
    assert_eq!(p.name(), "retail-edge");
    assert_eq!(p.file(), "retail.yaml");
    let x = extract_images(&[p]).unwrap();
    let got: Vec<Row> = x
        .images
        .iter()
        .map(|i| {
            (
                i.source.to_string(),
                i.layer.as_str(),
                i.layer_type,
                i.role,
                i.found_in.iter().map(String::as_str).collect(),
                i.listed,
            )
        })
        .collect();
    let pos = format!("ghcr.io/acme/pos@sha256:{DIGEST}");
    let want: Vec<Row> = vec![
        (
            "ttl.sh/ubuntu:k3s-1.29.4-v4.4.4-demo".into(),
            "edge-native-byoi",
            LayerType::Os,
            Role::Provider,
            vec!["retail.yaml: layer edge-native-byoi: pack.content.images[0].image"],
            true,
        ),
        (
            "registry.k8s.io/kube-apiserver:v1.29.4".into(),
            "edge-k8s",
            LayerType::K8s,
            Role::Core,
            vec!["retail.yaml: layer edge-k8s: pack.content.images[0].image"],
            true,
        ),
        (
            "registry.k8s.io/etcd:3.5.12-0".into(),
            "edge-k8s",
            LayerType::K8s,
            Role::Core,
            vec!["retail.yaml: layer edge-k8s: pack.content.images[1].image"],
            true,
        ),
        (
            "ghcr.io/kube-vip/kube-vip:v0.7.2".into(),
            "edge-k8s",
            LayerType::K8s,
            Role::Core,
            vec!["retail.yaml: layer edge-k8s: pack.content.images[2].image"],
            true,
        ),
        (
            "docker.io/calico/cni:v3.27.2".into(),
            "cni-calico",
            LayerType::Cni,
            Role::Infra,
            vec!["retail.yaml: layer cni-calico: pack.content.images[0].image"],
            true,
        ),
        (
            "docker.io/calico/node:v3.27.2".into(),
            "cni-calico",
            LayerType::Cni,
            Role::Infra,
            vec!["retail.yaml: layer cni-calico: pack.content.images[1].image"],
            true,
        ),
        (
            "ghcr.io/acme/pos-migrate:2.4.1".into(),
            "retail-app",
            LayerType::Addon,
            Role::Addon,
            vec![
                "retail.yaml: layer retail-app: manifest app: Deployment pos: spec.template.spec.initContainers[0].image",
            ],
            false,
        ),
        (
            pos.clone(),
            "retail-app",
            LayerType::Addon,
            Role::Addon,
            vec![
                "retail.yaml: layer retail-app: manifest app: Deployment pos: spec.template.spec.containers[0].image",
            ],
            false,
        ),
        (
            "quay.io/tigera/operator:v1.32.5".into(),
            "cni-calico",
            LayerType::Cni,
            Role::Infra,
            vec!["retail.yaml: layer cni-calico: values charts.calico.image"],
            false,
        ),
    ];
    assert_eq!(got, want);
    assert!(x.findings.is_empty(), "{:?}", x.findings);
}

#[test]
fn retail_lint_findings() {
    let p = Profile::parse(RETAIL, "retail.yaml").unwrap();
    let f = lint(&[p]).unwrap();
    let got: Vec<(&str, Severity, &str, &str, &str)> = f
        .iter()
        .map(|f| {
            (
                f.rule.as_str(),
                f.severity,
                f.file.as_str(),
                f.layer.as_str(),
                f.path.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "always-pull-images",
                Severity::Error,
                "retail.yaml",
                "edge-k8s",
                "cluster.config.clusterConfiguration.apiServer.extraArgs.enable-admission-plugins"
            ),
            (
                "image-not-listed",
                Severity::Warning,
                "retail.yaml",
                "retail-app",
                "manifest app: Deployment pos: spec.template.spec.initContainers[0].image"
            ),
            (
                "image-not-listed",
                Severity::Warning,
                "retail.yaml",
                "retail-app",
                "manifest app: Deployment pos: spec.template.spec.containers[0].image"
            ),
            (
                "image-not-listed",
                Severity::Warning,
                "retail.yaml",
                "cni-calico",
                "charts.calico.image"
            ),
        ]
    );
    assert!(f[0].message.contains("AlwaysPullImages"));
    assert!(f[0].message.contains("berth lint --fix"));
    assert!(f[0].message.contains("edge cache"));
    assert!(
        f[3].message
            .contains("add `- image: quay.io/tigera/operator:v1.32.5` to pack.content.images")
    );
}

#[test]
fn serialized_forms_are_lower_case() {
    let p = Profile::parse(RETAIL, "retail.yaml").unwrap();
    let x = extract_images(std::slice::from_ref(&p)).unwrap();
    let json = serde_json::to_value(&x.images[0]).unwrap();
    assert_eq!(json["source"], "ttl.sh/ubuntu:k3s-1.29.4-v4.4.4-demo");
    assert_eq!(json["layer_type"], "os");
    assert_eq!(json["role"], "provider");
    let f = serde_json::to_value(&lint(&[p]).unwrap()[1]).unwrap();
    assert_eq!(f["severity"], "warning");
}

#[test]
fn several_profiles_take_layers_in_order_and_dedupe_by_authority() {
    let infra = Profile::parse(RETAIL, "retail.yaml").unwrap();
    let addon = Profile::parse(
        r#"
name: monitoring
layers:
  - name: prom
    type: addon
    values:
      pack:
        content:
          images:
            - image: quay.io/tigera/operator:v1.32.5
            - image: "ghcr.io/acme/pos-migrate:{{.spectro.var.appTag}}"
      charts:
        x:
          image: {repository: registry.k8s.io/etcd, tag: 3.5.12-0}
        y:
          image: {repository: nginx, tag: ""}
"#,
        "mon.yaml",
    )
    .unwrap();
    let x = extract_images(&[infra, addon]).unwrap();
    let op = x
        .images
        .iter()
        .find(|i| i.source.to_string() == "quay.io/tigera/operator:v1.32.5")
        .unwrap();
    // Listed in the add-on profile: that is more authoritative than the CNI layer's chart values.
    assert_eq!(op.layer, "prom");
    assert_eq!(op.role, Role::Addon);
    assert!(op.listed);
    assert_eq!(
        op.found_in,
        vec![
            "mon.yaml: layer prom: pack.content.images[0].image",
            "retail.yaml: layer cni-calico: values charts.calico.image"
        ]
    );
    // The variable comes from the infra profile (the add-on profile has none).
    let mig = x
        .images
        .iter()
        .find(|i| i.source.to_string() == "ghcr.io/acme/pos-migrate:2.4.1")
        .unwrap();
    assert_eq!(mig.layer, "prom");
    assert!(mig.listed);
    assert_eq!(mig.found_in.len(), 2);
    let etcd = x
        .images
        .iter()
        .find(|i| i.source.to_string() == "registry.k8s.io/etcd:3.5.12-0")
        .unwrap();
    assert_eq!(etcd.layer, "edge-k8s");
    assert_eq!(
        etcd.found_in[1],
        "mon.yaml: layer prom: values charts.x.image"
    );
    // `tag: ""` means no tag: latest assumed, and linted.
    assert!(
        x.images
            .iter()
            .any(|i| i.source.to_string() == "docker.io/library/nginx:latest")
    );
}

#[test]
fn bad_references_are_findings_not_errors() {
    let p = Profile::parse(
        r#"
name: bad
layers:
  - name: app
    type: addon
    values: |
      pack:
        content:
          images:
            - image: "Docker.io/Foo/Bar:1"
            - image: "{{ .Values.image }}"
            - image: busybox
      web:
        image: "{{ .Values.registry }}/web:1"
        sidecar:
          image: {registry: "quay.io", repository: "prom/node-exporter", digest: "sha256:0123"}
"#,
        "bad.yaml",
    )
    .unwrap();
    let x = extract_images(std::slice::from_ref(&p)).unwrap();
    assert_eq!(x.images.len(), 1);
    assert_eq!(
        x.images[0].source.to_string(),
        "docker.io/library/busybox:latest"
    );
    let rules: Vec<(&str, &str)> = x
        .findings
        .iter()
        .map(|f| (f.rule.as_str(), f.path.as_str()))
        .collect();
    assert_eq!(
        rules,
        vec![
            ("invalid-reference", "pack.content.images[0].image"),
            ("unrendered-template", "pack.content.images[1].image"),
            ("unrendered-template", "web.image"),
            ("invalid-reference", "web.sidecar.image"),
        ]
    );
    assert!(
        x.findings[0].message.contains("lower case"),
        "{}",
        x.findings[0].message
    );
    assert!(x.findings[1].message.contains("{{ .Values.image }}"));
    assert!(
        x.findings
            .iter()
            .all(|f| f.severity == Severity::Error && f.file == "bad.yaml" && f.layer == "app")
    );
    let l = lint(&[p]).unwrap();
    let latest: Vec<&Finding> = l.iter().filter(|f| f.rule == "implicit-latest").collect();
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0].path, "pack.content.images[2].image");
    assert_eq!(latest[0].severity, Severity::Warning);
    assert!(latest[0].message.contains("pin a tag or a digest"));
    assert!(!l.iter().any(|f| f.rule == "image-not-listed"));
}

#[test]
fn manifest_pod_specs_of_every_kind() {
    let p = Profile::parse(
        r#"
name: m
layers:
  - name: jobs
    type: addon
    manifests:
      - name: all
        content: |
          apiVersion: batch/v1
          kind: CronJob
          metadata: {name: nightly}
          spec:
            jobTemplate:
              spec:
                template:
                  spec:
                    containers: [{name: a, image: "alpine:3.19"}]
          ---
          apiVersion: v1
          kind: Pod
          metadata: {name: dbg}
          spec:
            ephemeralContainers:
              - name: e
                image: busybox:1.36
            containers:
              - {name: c, image: "alpine:3.19"}
          ---
"#,
        "m.yaml",
    )
    .unwrap();
    let x = extract_images(&[p]).unwrap();
    let got: Vec<(String, Vec<String>)> = x
        .images
        .iter()
        .map(|i| (i.source.to_string(), i.found_in.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("docker.io/library/alpine:3.19".to_string(), vec![
                "m.yaml: layer jobs: manifest all: CronJob nightly: spec.jobTemplate.spec.template.spec.containers[0].image".to_string(),
                "m.yaml: layer jobs: manifest all: Pod dbg: spec.containers[0].image".to_string(),
            ]),
            ("docker.io/library/busybox:1.36".to_string(), vec![
                "m.yaml: layer jobs: manifest all: Pod dbg: spec.ephemeralContainers[0].image".to_string(),
            ]),
        ]
    );
}

#[test]
fn k3s_list_form_and_mapping_config_are_linted() {
    let p = Profile::parse(
        r#"
name: k3s
layers:
  - name: edge-k3s
    type: k8s
    version: 1.29.4
    values:
      cluster:
        config:
          kube-apiserver-arg:
            - anonymous-auth=false
            - enable-admission-plugins=NodeRestriction,AlwaysPullImages
  - name: other
    type: addon
    values:
      cluster:
        config:
          kube-apiserver-arg: ["enable-admission-plugins=AlwaysPullImages"]
"#,
        "k3s.yaml",
    )
    .unwrap();
    let f = lint(&[p]).unwrap();
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].rule, "always-pull-images");
    assert_eq!(f[0].layer, "edge-k3s");
    assert_eq!(f[0].path, "cluster.config.kube-apiserver-arg[1]");
}

#[test]
fn the_example_profile_parses_and_lists_images() {
    let p = Profile::example().unwrap();
    assert_eq!(p.file(), "<example profile>");
    assert!(!extract_images(&[p]).unwrap().images.is_empty());
}
