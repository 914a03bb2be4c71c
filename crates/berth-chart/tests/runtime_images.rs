//! The runtime image set: Pod-template images plus the complete references named in
//! container arguments, environment variables, ConfigMap data and custom resources.
//! Longhorn with its defaults needs exactly its `runtime-images.txt` (13: the 3 Helm renders
//! into Pod templates and 10 the manager and the driver deployer are told about); every
//! other shared chart gives exactly its `expected-images.txt`, with its defaults and with
//! every value set of `berth_testkit::helm_cases` (no false positives).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use berth_chart::{
    Image, ImageScope, Manifest, Options, Provenance, discover, discover_places, fs::load_path,
    places_of, scan_manifest,
};
use berth_testkit::helm::normalize_image;
use berth_testkit::helm_cases::{
    CHARTS, DIGEST, KUBE_VERSION, MIRROR, NAMESPACE, RELEASE, cases, chart_dir,
};

fn options(scope: ImageScope) -> Options {
    Options {
        release_name: RELEASE.into(),
        namespace: NAMESPACE.into(),
        kube_version: KUBE_VERSION.into(),
        images: scope,
        ..Options::default()
    }
}

fn list(dir: &Path, file: &str) -> BTreeSet<String> {
    std::fs::read_to_string(dir.join(file))
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

fn images(dir: &Path, opts: &Options) -> Vec<Image> {
    let chart = load_path(dir).unwrap();
    discover(&chart, opts).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

fn normalized(images: &[Image]) -> BTreeSet<String> {
    images
        .iter()
        .map(|i| normalize_image(&i.reference))
        .collect()
}

/// Longhorn's ten images that are no Pod-template image, each with what names it.
const LONGHORN_EXTRAS: &[(&str, Provenance, &str)] = &[
    ("longhorn-engine", Provenance::RenderedArg, "--engine-image"),
    (
        "longhorn-instance-manager",
        Provenance::RenderedArg,
        "--instance-manager-image",
    ),
    (
        "backing-image-manager",
        Provenance::RenderedArg,
        "--backing-image-manager-image",
    ),
    (
        "support-bundle-kit",
        Provenance::RenderedArg,
        "--support-bundle-manager-image",
    ),
    (
        "csi-attacher",
        Provenance::RenderedEnv,
        "CSI_ATTACHER_IMAGE",
    ),
    (
        "csi-provisioner",
        Provenance::RenderedEnv,
        "CSI_PROVISIONER_IMAGE",
    ),
    (
        "csi-node-driver-registrar",
        Provenance::RenderedEnv,
        "CSI_NODE_DRIVER_REGISTRAR_IMAGE",
    ),
    ("csi-resizer", Provenance::RenderedEnv, "CSI_RESIZER_IMAGE"),
    (
        "csi-snapshotter",
        Provenance::RenderedEnv,
        "CSI_SNAPSHOTTER_IMAGE",
    ),
    (
        "livenessprobe",
        Provenance::RenderedEnv,
        "CSI_LIVENESS_PROBE_IMAGE",
    ),
];

/// The repository's last component (`longhorn-engine` of `docker.io/longhornio/longhorn-engine:x`).
fn repo_name(reference: &str) -> &str {
    let name = reference.split('@').next().unwrap();
    let last = name.rsplit('/').next().unwrap();
    last.split(':').next().unwrap()
}

/// Checks that the images beyond the Pod-template set are Longhorn's ten, each attributed
/// to its argument or variable on the right object.
fn check_longhorn_extras(all: &[Image], pod: &[Image], case: &str) {
    let pod: BTreeSet<String> = normalized(pod);
    let extras: Vec<&Image> = all
        .iter()
        .filter(|i| !pod.contains(&normalize_image(&i.reference)))
        .collect();
    assert_eq!(extras.len(), 10, "{case}: extras {extras:#?}");
    for (repo, provenance, named_by) in LONGHORN_EXTRAS {
        let i = extras
            .iter()
            .find(|i| repo_name(&i.reference) == *repo)
            .unwrap_or_else(|| panic!("{case}: {repo} not found in {extras:#?}"));
        assert_eq!(i.provenance, *provenance, "{case}: {i:?}");
        assert_eq!(i.named_by.as_deref(), Some(*named_by), "{case}: {i:?}");
        let (object, field_prefix, source) = match provenance {
            Provenance::RenderedArg => (
                "DaemonSet/longhorn-manager",
                ".spec.template.spec.containers[0].command[",
                "longhorn/templates/daemonset-sa.yaml",
            ),
            _ => (
                "Deployment/longhorn-driver-deployer",
                ".spec.template.spec.containers[0].env[",
                "longhorn/templates/deployment-driver.yaml",
            ),
        };
        assert_eq!(i.object, object, "{case}: {i:?}");
        assert!(i.field.starts_with(field_prefix), "{case}: {i:?}");
        assert_eq!(i.source, source, "{case}: {i:?}");
    }
}

#[test]
fn longhorn_needs_its_runtime_images() {
    let dir = chart_dir("longhorn");
    let all = images(&dir, &options(ImageScope::All));
    assert_eq!(normalized(&all), list(&dir, "runtime-images.txt"));
    assert_eq!(all.len(), 13);
    let pod = images(&dir, &options(ImageScope::Pod));
    assert_eq!(normalized(&pod), list(&dir, "expected-images.txt"));
    assert!(pod.iter().all(|i| i.provenance == Provenance::Rendered));
    check_longhorn_extras(&all, &pod, "defaults");
    // The exact path of one argument and one variable, as `images --explain` prints them.
    let engine = all
        .iter()
        .find(|i| repo_name(&i.reference) == "longhorn-engine")
        .unwrap();
    let chart = load_path(&dir).unwrap();
    let rendered = berth_chart::render(&chart, &options(ImageScope::All)).unwrap();
    let ds = rendered
        .iter()
        .find(|m| m.source == "longhorn/templates/daemonset-sa.yaml")
        .unwrap();
    // The argument before the engine image is its flag, in the rendered text too.
    assert!(ds.text.contains(&format!(
        "- --engine-image\n        - \"{}\"",
        engine.reference
    )));
    let n: usize = engine
        .field
        .trim_start_matches(".spec.template.spec.containers[0].command[")
        .trim_end_matches(']')
        .parse()
        .unwrap();
    assert!(n > 0);
    assert_eq!(
        engine.path(),
        format!("DaemonSet/longhorn-manager .spec.template.spec.containers[0].command[{n}]")
    );
}

/// `images --explain REF`: every place the manager image is named (its Pod templates'
/// `image` fields and the `--manager-image` arguments), `rendered` first.
#[test]
fn every_place_of_an_image() {
    let dir = chart_dir("longhorn");
    let chart = load_path(&dir).unwrap();
    let places = discover_places(&chart, &options(ImageScope::All)).unwrap();
    let manager = places_of(&places, "docker.io/longhornio/longhorn-manager:master-head");
    let kinds: BTreeSet<Provenance> = manager.iter().map(|i| i.provenance).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([Provenance::Rendered, Provenance::RenderedArg])
    );
    assert_eq!(manager[0].provenance, Provenance::Rendered);
    assert!(
        manager
            .iter()
            .any(|i| i.object == "DaemonSet/longhorn-manager"
                && i.named_by.as_deref() == Some("--manager-image"))
    );
    assert!(
        manager
            .iter()
            .any(|i| i.object == "Deployment/longhorn-driver-deployer"
                && i.provenance == Provenance::RenderedArg)
    );
    // The familiar form names the same image.
    let familiar = places_of(&places, "longhornio/longhorn-manager:master-head");
    assert_eq!(familiar.len(), manager.len());
    // Each place once; a reference not in the chart has none.
    let unique: BTreeSet<(String, String)> = manager
        .iter()
        .map(|i| (i.object.clone(), i.field.clone()))
        .collect();
    assert_eq!(unique.len(), manager.len());
    assert!(places_of(&places, "docker.io/library/nginx:1").is_empty());
}

/// No chart but Longhorn names an image outside its Pod templates: with its defaults and
/// with every value set, the full set is the Pod-template set (and, with the defaults,
/// `expected-images.txt`). Longhorn's ten extras follow the values: a global registry
/// override moves all 13, optional parts keep them, a digest pin reaches the manager.
#[test]
fn no_false_positives_with_defaults_and_overrides() {
    for name in CHARTS {
        let dir = chart_dir(name);
        let all = images(&dir, &options(ImageScope::All));
        let pod = images(&dir, &options(ImageScope::Pod));
        if *name == "longhorn" {
            check_longhorn_extras(&all, &pod, "longhorn / defaults");
        } else {
            assert_eq!(
                normalized(&all),
                list(&dir, "expected-images.txt"),
                "{name} / defaults"
            );
            assert!(all.iter().all(|i| i.provenance == Provenance::Rendered));
        }
        for case in cases(name) {
            let label = format!("{name} / {}", case.name);
            let with = |scope| {
                let mut o = options(scope);
                o.values = vec![(format!("{}.yaml", case.name), case.values.clone())];
                images(&dir, &o)
            };
            let (all, pod) = (with(ImageScope::All), with(ImageScope::Pod));
            if *name == "longhorn" {
                check_longhorn_extras(&all, &pod, &label);
                let defaults = list(&dir, "runtime-images.txt");
                if let Err(e) = case.check(&defaults, &normalized(&all)) {
                    panic!("{label}: {e}");
                }
            } else {
                assert_eq!(normalized(&all), normalized(&pod), "{label}");
            }
        }
    }
}

/// Longhorn's `image.*` values reach the extras: a tag and a digest on an argument image,
/// a registry on an environment image, `global.imageRegistry` on all 13.
#[test]
fn longhorn_values_move_the_extras() {
    let dir = chart_dir("longhorn");
    let mut o = options(ImageScope::All);
    o.values = vec![(
        "pin.yaml".into(),
        format!(
            "image:\n  longhorn:\n    engine: {{tag: \"v9@{DIGEST}\"}}\n    instanceManager: {{tag: v8}}\n  csi:\n    attacher: {{registry: {MIRROR}}}\n"
        ),
    )];
    let got = normalized(&images(&dir, &o));
    assert_eq!(got.len(), 13, "{got:#?}");
    for want in [
        format!("docker.io/longhornio/longhorn-engine:v9@{DIGEST}"),
        "docker.io/longhornio/longhorn-instance-manager:v8".to_string(),
        format!("{MIRROR}/longhornio/csi-attacher:v4.11.0-20260428"),
    ] {
        assert!(got.contains(&want), "{want} not in {got:#?}");
    }
    let mut o = options(ImageScope::All);
    o.set = vec![format!("global.imageRegistry={MIRROR}")];
    let got = normalized(&images(&dir, &o));
    let want: BTreeSet<String> = list(&dir, "runtime-images.txt")
        .iter()
        .map(|i| i.replacen("docker.io", MIRROR, 1))
        .collect();
    assert_eq!(got, want);
}

fn manifest(source: &str, text: &str) -> Manifest {
    Manifest {
        source: source.into(),
        text: text.into(),
    }
}

/// The scanner on plain manifests (what a manifest pack renders): every provenance with its
/// path, CRD schemas and test hooks skipped, URLs, paths and partial references ignored.
#[test]
fn scanner_rules_on_plain_manifests() {
    let text = r#"
apiVersion: batch/v1
kind: CronJob
metadata: {name: backup}
spec:
  jobTemplate:
    spec:
      template:
        spec:
          initContainers:
            - name: init
              image: busybox:1.37
              command: ["sh", "-c", "echo registry.example.test/not/an:image"]
          containers:
            - name: run
              image: registry.example.test/backup/runner:2.0
              args:
                - --helper-image=registry.example.test/backup/helper:2.0
                - --endpoint=https://s3.example.test:9000/bucket
                - --config=/etc/backup/config.yaml
                - --sidecar-image
                - 'ghcr.io/example/sidecar@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef'
              env:
                - {name: MOVER_IMAGE, value: "localhost:5000/mover:1"}
                - {name: HOME, value: /root}
                - {name: PLAIN, value: "nginx:1.27"}
                - name: FROM_FIELD
                  valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data:
  defaultImage: quay.io/example/default:3
  config.yaml: |
    image: quay.io/example/inside-a-file:1
  url: https://quay.io/example/x:1
---
apiVersion: example.test/v1
kind: Engine
metadata:
  name: e1
  annotations: {note: quay.io/example/annotation:1}
spec:
  engineImage: quay.io/example/engine:4
  versions: [{image: "quay.io/example/engine:5"}]
status: {image: quay.io/example/status:1}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: engines.example.test}
spec:
  versions:
    - schema: {openAPIV3Schema: {properties: {image: {default: quay.io/example/crd:1}}}}
---
apiVersion: v1
kind: Pod
metadata:
  name: test
  annotations: {"helm.sh/hook": test}
spec:
  containers: [{name: t, image: quay.io/example/test:1, args: [quay.io/example/test-arg:1]}]
---
apiVersion: v1
kind: Secret
metadata: {name: s}
stringData: {image: quay.io/example/secret:1}
"#;
    let m = manifest("pack/manifest.yaml", text);
    let places = scan_manifest("pack", &m, ImageScope::All).unwrap();
    let got: Vec<(String, &str, String, Option<&str>)> = places
        .iter()
        .map(|i| {
            (
                i.reference.clone(),
                i.provenance.as_str(),
                i.path(),
                i.named_by.as_deref(),
            )
        })
        .collect();
    let cj = "CronJob/backup .spec.jobTemplate.spec.template.spec";
    let want: Vec<(String, &str, String, Option<&str>)> = vec![
        ("busybox:1.37".into(), "rendered", format!("{cj}.initContainers[0].image"), None),
        (
            "registry.example.test/backup/runner:2.0".into(),
            "rendered",
            format!("{cj}.containers[0].image"),
            None,
        ),
        (
            "registry.example.test/backup/helper:2.0".into(),
            "rendered-arg",
            format!("{cj}.containers[0].args[0]"),
            Some("--helper-image"),
        ),
        (
            "ghcr.io/example/sidecar@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into(),
            "rendered-arg",
            format!("{cj}.containers[0].args[4]"),
            Some("--sidecar-image"),
        ),
        (
            "localhost:5000/mover:1".into(),
            "rendered-env",
            format!("{cj}.containers[0].env[0].value"),
            Some("MOVER_IMAGE"),
        ),
        (
            "quay.io/example/default:3".into(),
            "rendered-config",
            "ConfigMap/settings .data.defaultImage".into(),
            Some("defaultImage"),
        ),
        (
            "quay.io/example/engine:4".into(),
            "rendered-resource",
            "Engine/e1 .spec.engineImage".into(),
            None,
        ),
        (
            "quay.io/example/engine:5".into(),
            "rendered-resource",
            "Engine/e1 .spec.versions[0].image".into(),
            None,
        ),
    ];
    assert_eq!(got, want);
    // Pod-only: the two `image` fields.
    let pod = scan_manifest("pack", &m, ImageScope::Pod).unwrap();
    assert_eq!(
        pod.iter().map(|i| i.reference.as_str()).collect::<Vec<_>>(),
        ["busybox:1.37", "registry.example.test/backup/runner:2.0"]
    );
    // A document that is not YAML is an error naming the manifest.
    let e = scan_manifest(
        "pack",
        &manifest("pack/bad.yaml", "a: [1\n"),
        ImageScope::All,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("pack/bad.yaml"), "{e}");
}

/// NOTES.txt is rendered but never scanned: references on lines of their own in the notes
/// are not images, the same text in a ConfigMap is.
#[test]
fn notes_are_not_scanned() {
    let files: BTreeMap<String, Vec<u8>> = [
        ("Chart.yaml", "apiVersion: v2\nname: notes\nversion: 0.1.0\n"),
        (
            "templates/NOTES.txt",
            "registry.example.test/notes/image:1\n--image=registry.example.test/notes/flag:1\n",
        ),
        (
            "templates/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {image: registry.example.test/config/image:1}\n",
        ),
        (
            "templates/pod.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a, image: registry.example.test/app:1}]\n",
        ),
    ]
    .into_iter()
    .map(|(p, t)| (p.to_string(), t.as_bytes().to_vec()))
    .collect();
    let chart = berth_chart::load_files(files, "notes").unwrap();
    let got = discover(&chart, &options(ImageScope::All)).unwrap();
    assert_eq!(
        got.iter()
            .map(|i| (i.reference.as_str(), i.provenance))
            .collect::<Vec<_>>(),
        [
            ("registry.example.test/app:1", Provenance::Rendered),
            (
                "registry.example.test/config/image:1",
                Provenance::RenderedConfig
            )
        ]
    );
}
