//! A profile's manifest layer names images outside `image` fields (an operator's arguments
//! and environment, a ConfigMap, a custom resource): they join the plan with the same
//! provenance and place rules as a chart's (`rendered-arg`, `rendered-env`,
//! `rendered-config`, `rendered-resource`), macros rendered first; `--images pod` leaves
//! them out; URLs, paths and partial references are never images.

use berth_chart::ImageScope;
use berth_plan::{Charts, Plan};
use berth_profile::{Profile, Provenance};
use berth_rewrite::Rewriter;

const PROFILE: &str = r#"name: ops
version: 1.0.0
variables:
  tag: v1.17.0
layers:
  - name: cert-manager
    type: addon
    manifests:
      - name: controller
        content: |
          apiVersion: apps/v1
          kind: Deployment
          metadata: {name: cert-manager, namespace: cert-manager}
          spec:
            template:
              spec:
                containers:
                  - name: controller
                    image: quay.io/jetstack/cert-manager-controller:{{.spectro.var.tag}}
                    args:
                      - --v=2
                      - --acme-http01-solver-image=quay.io/jetstack/cert-manager-acmesolver:{{.spectro.var.tag}}
                      - --cluster-resource-namespace=$(POD_NAMESPACE)
                      - --leader-election-namespace=kube-system
                      - --webhook-url=https://cert-manager-webhook.example.test:443/validate
                    env:
                      - name: SIDECAR_IMAGE
                        value: registry.example.test:5000/ops/sidecar:2.1
                      - name: CONFIG_PATH
                        value: /etc/config/ops.yaml
          ---
          apiVersion: v1
          kind: ConfigMap
          metadata: {name: images}
          data:
            helper: ghcr.io/acme/helper@sha256:4a6b5e1c2f0d9e8b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a
            note: "pull from ghcr.io/acme/helper:1 at night"
          ---
          apiVersion: backup.acme.example/v1
          kind: Agent
          metadata: {name: nightly}
          spec:
            image: ghcr.io/acme/backup-agent:3.0
            runner:
              template: docker.io/acme/runner:0.9
              partial: docker.io/acme/runner
"#;

fn plan(scope: ImageScope) -> Plan {
    let profiles = Profile::parse(PROFILE, "ops.yaml").unwrap();
    let mut charts = Charts::default();
    charts.images = scope;
    Plan::build_with(&[profiles], &charts, &Rewriter::new(None, None)).unwrap()
}

fn entry<'p>(plan: &'p Plan, source: &str) -> &'p berth_plan::PlanEntry {
    let found = plan.entries.iter().find(|e| e.source.to_string() == source);
    found.unwrap_or_else(|| panic!("{source} not in the plan: {:#?}", plan.entries))
}

#[test]
fn manifest_layers_give_their_runtime_images_with_provenance_and_place() {
    let plan = plan(ImageScope::All);
    let sources: Vec<String> = plan.entries.iter().map(|e| e.source.to_string()).collect();
    let mut sorted = sources.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "docker.io/acme/runner:0.9",
            "ghcr.io/acme/backup-agent:3.0",
            "ghcr.io/acme/helper@sha256:4a6b5e1c2f0d9e8b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a",
            "quay.io/jetstack/cert-manager-acmesolver:v1.17.0",
            "quay.io/jetstack/cert-manager-controller:v1.17.0",
            "registry.example.test:5000/ops/sidecar:2.1",
        ],
        "{sources:?}"
    );
    let solver = entry(&plan, "quay.io/jetstack/cert-manager-acmesolver:v1.17.0");
    assert_eq!(solver.provenance, [Provenance::RenderedArg]);
    assert_eq!(
        solver.found_in,
        [
            "ops.yaml: layer cert-manager: manifest controller: Deployment/cert-manager .spec.template.spec.containers[0].args[1] (--acme-http01-solver-image)"
        ]
    );
    let sidecar = entry(&plan, "registry.example.test:5000/ops/sidecar:2.1");
    assert_eq!(sidecar.provenance, [Provenance::RenderedEnv]);
    assert!(
        sidecar.found_in[0].ends_with(".env[0].value (SIDECAR_IMAGE)"),
        "{:?}",
        sidecar.found_in
    );
    let helper = plan
        .entries
        .iter()
        .find(|e| e.source.to_string().starts_with("ghcr.io/acme/helper"));
    assert_eq!(helper.unwrap().provenance, [Provenance::RenderedConfig]);
    let runner = entry(&plan, "docker.io/acme/runner:0.9");
    assert_eq!(runner.provenance, [Provenance::RenderedResource]);
    assert!(
        runner.found_in[0].contains("Agent/nightly .spec.runner.template"),
        "{:?}",
        runner.found_in
    );
    // The custom resource's `image` field is the manifest's own (read once, as `manifest`).
    let agent = entry(&plan, "ghcr.io/acme/backup-agent:3.0");
    assert_eq!(agent.provenance, [Provenance::Manifest]);
    let controller = entry(&plan, "quay.io/jetstack/cert-manager-controller:v1.17.0");
    assert_eq!(controller.provenance, [Provenance::Manifest]);
    assert!(plan.findings.is_empty(), "{:?}", plan.findings);
}

#[test]
fn images_pod_keeps_only_the_image_fields() {
    let plan = plan(ImageScope::Pod);
    let mut sources: Vec<String> = plan.entries.iter().map(|e| e.source.to_string()).collect();
    sources.sort();
    assert_eq!(
        sources,
        [
            "ghcr.io/acme/backup-agent:3.0",
            "quay.io/jetstack/cert-manager-controller:v1.17.0"
        ]
    );
}
