//! Helm v4 as the oracle of chart rendering: every chart in `<repo>/../shared/charts/` (real
//! public charts, see its README) rendered by `helm template` with a fixed release name,
//! namespace and `--kube-version`, for its defaults and three value sets (optional parts on,
//! a registry override, a digest pin). The output is parsed as YAML documents and the images
//! of the Pod templates compared with what each case must give; with the defaults they must be
//! the chart's `expected-images.txt`.
//!
//! Issue 13 (Berth's own renderer) compares its image set and documents with these.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use berth_testkit::helm::{self, Helm, Template};

const RELEASE: &str = "rel";
const NAMESPACE: &str = "default";
/// Pinned, so the output does not follow the client-go Helm was built with; longhorn needs
/// kubeVersion >= 1.34.
const KUBE_VERSION: &str = "v1.34.0";
const MIRROR: &str = "mirror.example.test";
const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// `<repo>/../shared/charts` (CI keeps a copy of `shared/` beside its clone).
fn charts_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/charts");
    assert!(
        d.join("README.md").is_file(),
        "the shared charts are missing at {}: put the project's `shared/` directory beside the repository",
        d.display()
    );
    d.canonicalize().unwrap()
}

/// The chart folder whose name starts with `NAME-` (folders are `<name>-<version>`).
fn chart(name: &str) -> PathBuf {
    let dir = charts_dir();
    let found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_prefix(name))
                    .is_some_and(|rest| {
                        rest.starts_with('-')
                            && rest[1..].starts_with(|c: char| c.is_ascii_digit() || c == 'v')
                    })
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "exactly one chart `{name}-<version>` in {}",
        dir.display()
    );
    found.into_iter().next().unwrap()
}

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

/// One value set and what the Pod-template images must be with it.
struct Case {
    name: &'static str,
    /// A values file (YAML), passed with `-f`.
    values: String,
    /// Images (normalized) that must be rendered.
    contains: Vec<String>,
    /// Every image must be under this registry host.
    all_under: Option<&'static str>,
    /// Every image of the defaults must still be rendered (optional parts add to them).
    keeps_defaults: bool,
}

impl Case {
    fn new(name: &'static str, values: &str) -> Case {
        Case {
            name,
            values: values.replace("$MIRROR", MIRROR).replace("$DIGEST", DIGEST),
            contains: Vec::new(),
            all_under: None,
            keeps_defaults: false,
        }
    }
    fn contains(mut self, images: &[&str]) -> Case {
        self.contains = images
            .iter()
            .map(|i| i.replace("$MIRROR", MIRROR).replace("$DIGEST", DIGEST))
            .collect();
        self
    }
    fn all_under_mirror(mut self) -> Case {
        self.all_under = Some(MIRROR);
        self
    }
    fn keeps_defaults(mut self) -> Case {
        self.keeps_defaults = true;
        self
    }
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
        for want in &case.contains {
            assert!(
                got.contains(want),
                "{name} / {}: {want} not rendered; helm rendered {got:#?}",
                case.name
            );
        }
        if let Some(host) = case.all_under {
            let outside: Vec<&String> = got
                .iter()
                .filter(|i| !i.starts_with(&format!("{host}/")))
                .collect();
            assert!(
                outside.is_empty(),
                "{name} / {}: images outside {host}: {outside:?}",
                case.name
            );
        }
        if case.keeps_defaults {
            let lost: Vec<&String> = defaults.difference(&got).collect();
            assert!(
                lost.is_empty(),
                "{name} / {}: default images gone: {lost:?}",
                case.name
            );
            assert!(
                got.len() > defaults.len() || case.contains.iter().all(|c| defaults.contains(c)),
                "{name} / {}: the optional parts added no image",
                case.name
            );
        }
        // The case changed what is rendered (or, for optional parts that bring no image,
        // at least kept it).
        assert!(
            got != defaults || case.keeps_defaults,
            "{name} / {}: the same images as with the defaults",
            case.name
        );
    }
}

/// Every chart folder has a test below (a new chart in shared/ fails here until it gets one).
#[test]
fn every_shared_chart_is_covered() {
    let covered = [
        "coredns",
        "harbor",
        "ingress-nginx",
        "longhorn",
        "metallb",
        "metrics-server",
        "nginx",
        "podinfo",
        "spegel",
        "tigera-operator",
        "traefik",
        "zot",
    ];
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
    check_chart(
        "coredns",
        vec![
            Case::new("optional", "autoscaler: {enabled: true}\n")
                .contains(&["registry.k8s.io/cpa/cluster-proportional-autoscaler:v1.9.0"])
                .keeps_defaults(),
            Case::new(
                "registry",
                "image: {repository: $MIRROR/coredns/coredns}\nautoscaler:\n  enabled: true\n  image: {repository: $MIRROR/cpa/cluster-proportional-autoscaler}\n",
            )
            .contains(&["$MIRROR/coredns/coredns:1.13.1"])
            .all_under_mirror(),
            Case::new("digest", "image: {tag: \"1.13.1@$DIGEST\"}\n")
                .contains(&["docker.io/coredns/coredns:1.13.1@$DIGEST"]),
        ],
    );
}

#[test]
fn helm_renders_harbor() {
    check_chart(
        "harbor",
        vec![
            Case::new(
                "optional",
                "metrics: {enabled: true}\nexpose:\n  type: clusterIP\n  tls: {auto: {commonName: harbor.example.test}}\n",
            )
            .contains(&[
                "docker.io/goharbor/harbor-exporter:dev",
                "docker.io/goharbor/nginx-photon:dev",
            ])
            .keeps_defaults(),
            Case::new(
                "registry",
                "nginx: {image: {repository: $MIRROR/goharbor/nginx-photon}}\nportal: {image: {repository: $MIRROR/goharbor/harbor-portal}}\ncore: {image: {repository: $MIRROR/goharbor/harbor-core}}\njobservice: {image: {repository: $MIRROR/goharbor/harbor-jobservice}}\nregistry:\n  registry: {image: {repository: $MIRROR/goharbor/registry-photon}}\n  controller: {image: {repository: $MIRROR/goharbor/harbor-registryctl}}\ntrivy: {image: {repository: $MIRROR/goharbor/trivy-adapter-photon}}\ndatabase: {internal: {image: {repository: $MIRROR/goharbor/harbor-db}}}\nredis: {internal: {image: {repository: $MIRROR/goharbor/valkey-photon}}}\nexporter: {image: {repository: $MIRROR/goharbor/harbor-exporter}}\nmetrics: {enabled: true}\nexpose:\n  type: clusterIP\n  tls: {auto: {commonName: harbor.example.test}}\n",
            )
            .contains(&["$MIRROR/goharbor/harbor-exporter:dev", "$MIRROR/goharbor/nginx-photon:dev"])
            .all_under_mirror(),
            Case::new("digest", "core: {image: {tag: \"dev@$DIGEST\"}}\n")
                .contains(&["docker.io/goharbor/harbor-core:dev@$DIGEST"]),
        ],
    );
}

#[test]
fn helm_renders_ingress_nginx() {
    check_chart(
        "ingress-nginx",
        vec![
            Case::new("optional", "defaultBackend: {enabled: true}\n")
                .contains(&["registry.k8s.io/defaultbackend-amd64:1.5"])
                .keeps_defaults(),
            Case::new(
                "registry",
                "global: {image: {registry: $MIRROR}}\ndefaultBackend: {enabled: true}\n",
            )
            .contains(&["$MIRROR/defaultbackend-amd64:1.5"])
            .all_under_mirror(),
            Case::new("digest", "controller: {image: {digest: \"$DIGEST\"}}\n")
                .contains(&["registry.k8s.io/ingress-nginx/controller:v1.15.1@$DIGEST"]),
        ],
    );
}

#[test]
fn helm_renders_longhorn() {
    check_chart(
        "longhorn",
        vec![
            Case::new(
                "optional",
                "openshift: {enabled: true}\nimage:\n  openshift:\n    oauthProxy: {registry: quay.io, repository: openshift/origin-oauth-proxy, tag: \"4.18\"}\n",
            )
            .contains(&["quay.io/openshift/origin-oauth-proxy:4.18"])
            .keeps_defaults(),
            Case::new("registry", "global: {imageRegistry: $MIRROR}\n")
                .contains(&["$MIRROR/longhornio/longhorn-manager:master-head"])
                .all_under_mirror(),
            Case::new(
                "digest",
                "image:\n  longhorn:\n    manager: {tag: \"master-head@$DIGEST\"}\n",
            )
            .contains(&["docker.io/longhornio/longhorn-manager:master-head@$DIGEST"]),
        ],
    );
}

#[test]
fn helm_renders_metallb() {
    check_chart(
        "metallb",
        vec![
            // The (deprecated) FRR mode instead of the frr-k8s sub-chart: another FRR image.
            Case::new(
                "optional",
                "speaker: {frr: {enabled: true}}\nfrrk8s: {enabled: false}\n",
            )
            .contains(&["quay.io/frrouting/frr:10.5.3"]),
            Case::new(
                "registry",
                "controller: {image: {repository: $MIRROR/metallb/controller}}\nspeaker: {image: {repository: $MIRROR/metallb/speaker}}\nfrr-k8s:\n  frrk8s:\n    image: {repository: $MIRROR/metallb/frr-k8s}\n    frr: {image: {repository: $MIRROR/frrouting/frr}}\n",
            )
            .contains(&["$MIRROR/metallb/frr-k8s:v0.0.25"])
            .all_under_mirror(),
            Case::new("digest", "controller: {image: {tag: \"v0.0.0@$DIGEST\"}}\n")
                .contains(&["quay.io/metallb/controller:v0.0.0@$DIGEST"]),
        ],
    );
}

#[test]
fn helm_renders_metrics_server() {
    check_chart(
        "metrics-server",
        vec![
            Case::new("optional", "addonResizer: {enabled: true}\n")
                .contains(&["registry.k8s.io/autoscaling/addon-resizer:1.8.23"])
                .keeps_defaults(),
            Case::new(
                "registry",
                "image: {repository: $MIRROR/metrics-server/metrics-server}\naddonResizer:\n  enabled: true\n  image: {repository: $MIRROR/autoscaling/addon-resizer}\n",
            )
            .contains(&["$MIRROR/metrics-server/metrics-server:v0.8.1"])
            .all_under_mirror(),
            Case::new("digest", "image: {tag: \"v0.8.1@$DIGEST\"}\n")
                .contains(&["registry.k8s.io/metrics-server/metrics-server:v0.8.1@$DIGEST"]),
        ],
    );
}

#[test]
fn helm_renders_nginx() {
    check_chart(
        "nginx",
        vec![
            Case::new(
                "optional",
                "metrics: {enabled: true}\ncloneStaticSiteFromGit: {enabled: true, repository: \"https://git.example.test/site.git\", branch: main}\n",
            )
            .contains(&[
                "docker.io/bitnami/nginx-exporter:1.4.2-debian-12-r9",
                "docker.io/bitnami/git:2.51.0-debian-12-r0",
            ])
            .keeps_defaults(),
            // Bitnami charts refuse a changed image source unless told it is wanted.
            Case::new(
                "registry",
                "global: {imageRegistry: $MIRROR, security: {allowInsecureImages: true}}\nmetrics: {enabled: true}\n",
            )
            .contains(&["$MIRROR/bitnami/nginx:1.29.1-debian-12-r0"])
            .all_under_mirror(),
            Case::new("digest", "image: {digest: \"$DIGEST\"}\n")
                .contains(&["docker.io/bitnami/nginx@$DIGEST"]),
        ],
    );
}

#[test]
fn helm_renders_podinfo() {
    check_chart(
        "podinfo",
        vec![
            Case::new("optional", "redis: {enabled: true}\n")
                .contains(&["docker.io/redis:8.8.0"])
                .keeps_defaults(),
            Case::new(
                "registry",
                "image: {repository: $MIRROR/stefanprodan/podinfo}\nredis: {enabled: true, repository: $MIRROR/library/redis}\n",
            )
            .contains(&["$MIRROR/library/redis:8.8.0"])
            .all_under_mirror(),
            Case::new("digest", "image: {tag: \"6.14.1@$DIGEST\"}\n")
                .contains(&["ghcr.io/stefanprodan/podinfo:6.14.1@$DIGEST"]),
        ],
    );
}

#[test]
fn helm_renders_spegel() {
    check_chart(
        "spegel",
        vec![
            // Optional parts that bring no image of their own.
            Case::new(
                "optional",
                "serviceMonitor: {enabled: true}\ngrafanaDashboard: {enabled: true}\nverticalPodAutoscaler: {enabled: true}\n",
            )
            .contains(&["ghcr.io/spegel-org/spegel:v0.0.1"])
            .keeps_defaults(),
            Case::new("registry", "image: {repository: $MIRROR/spegel-org/spegel}\n")
                .contains(&["$MIRROR/spegel-org/spegel:v0.0.1"])
                .all_under_mirror(),
            Case::new("digest", "image: {digest: \"$DIGEST\"}\n")
                .contains(&["ghcr.io/spegel-org/spegel@$DIGEST"]),
        ],
    );
}

#[test]
fn helm_renders_tigera_operator() {
    check_chart(
        "tigera-operator",
        vec![
            // On OpenShift an init container creates the initial resources with calicoctl.
            Case::new("optional", "installation: {kubernetesProvider: openshift}\n")
                .contains(&["quay.io/calico/calico:master"])
                .keeps_defaults(),
            Case::new(
                "registry",
                "tigeraOperator: {registry: $MIRROR}\ncalicoctl: {image: $MIRROR/calico/calico}\ninstallation: {kubernetesProvider: openshift}\n",
            )
            .contains(&["$MIRROR/tigera/operator:master", "$MIRROR/calico/calico:master"])
            .all_under_mirror(),
            Case::new("digest", "tigeraOperator: {version: \"master@$DIGEST\"}\n")
                .contains(&["quay.io/tigera/operator:master@$DIGEST"]),
        ],
    );
}

#[test]
fn helm_renders_traefik() {
    check_chart(
        "traefik",
        vec![
            // Traefik Hub in proxy mode replaces the Traefik Proxy image.
            Case::new("optional", "hub: {enabled: true}\nimage: {tag: v3.21.0}\n")
                .contains(&["ghcr.io/traefik/traefik-hub:v3.21.0"]),
            Case::new("registry", "image: {registry: $MIRROR}\n")
                .contains(&["$MIRROR/traefik:v3.7.11"])
                .all_under_mirror(),
            Case::new(
                "digest",
                "image: {digest: \"$DIGEST\"}\nversionOverride: v3.7.11\n",
            )
            .contains(&["docker.io/traefik@$DIGEST"]),
        ],
    );
}

#[test]
fn helm_renders_zot() {
    check_chart(
        "zot",
        vec![
            Case::new(
                "optional",
                "extraContainers:\n  - name: sidecar\n    image: busybox:1.37\n    command: [sleep, infinity]\n",
            )
            .contains(&["docker.io/library/busybox:1.37"])
            .keeps_defaults(),
            Case::new("registry", "image: {repository: $MIRROR/project-zot/zot}\n")
                .contains(&["$MIRROR/project-zot/zot:v2.1.18"])
                .all_under_mirror(),
            Case::new("digest", "image: {tag: \"v2.1.18@$DIGEST\"}\n")
                .contains(&["ghcr.io/project-zot/zot:v2.1.18@$DIGEST"]),
        ],
    );
}
