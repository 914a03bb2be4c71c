//! The value sets every shared chart is rendered with (by Helm in `peers_helm`, by Berth's
//! renderer in `berth-chart`), and what the Pod-template images must be with each: optional
//! parts on, a registry override, a digest pin.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// `<repo>/../shared/charts` (CI keeps a copy of `shared/` beside its clone).
pub fn charts_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/charts");
    assert!(
        d.join("README.md").is_file(),
        "the shared charts are missing at {}: put the project's `shared/` directory beside the repository",
        d.display()
    );
    d.canonicalize().unwrap()
}

/// The chart folder whose name starts with `NAME-` (folders are `<name>-<version>`).
pub fn chart_dir(name: &str) -> PathBuf {
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

/// `helm template` settings both renderers use.
pub const RELEASE: &str = "rel";
pub const NAMESPACE: &str = "default";
/// Pinned, so the output does not follow the client-go Helm was built with; longhorn needs
/// kubeVersion >= 1.34.
pub const KUBE_VERSION: &str = "v1.34.0";
pub const MIRROR: &str = "mirror.example.test";
pub const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// One value set and what the Pod-template images must be with it.
pub struct Case {
    pub name: &'static str,
    /// A values file (YAML), passed with `-f`.
    pub values: String,
    /// Images (normalized) that must be rendered.
    pub contains: Vec<String>,
    /// Every image must be under this registry host.
    pub all_under: Option<&'static str>,
    /// Every image of the defaults must still be rendered (optional parts add to them).
    pub keeps_defaults: bool,
}

impl Case {
    /// Whether `got` (normalized images with this case's values) is what the case asks,
    /// given `defaults` (the images with the chart's defaults).
    pub fn check(&self, defaults: &BTreeSet<String>, got: &BTreeSet<String>) -> Result<(), String> {
        for want in &self.contains {
            if !got.contains(want) {
                return Err(format!("{want} not rendered; rendered {got:#?}"));
            }
        }
        if let Some(host) = self.all_under {
            let outside: Vec<&String> = got
                .iter()
                .filter(|i| !i.starts_with(&format!("{host}/")))
                .collect();
            if !outside.is_empty() {
                return Err(format!("images outside {host}: {outside:?}"));
            }
        }
        if self.keeps_defaults {
            let lost: Vec<&String> = defaults.difference(got).collect();
            if !lost.is_empty() {
                return Err(format!("default images gone: {lost:?}"));
            }
            if !(got.len() > defaults.len() || self.contains.iter().all(|c| defaults.contains(c))) {
                return Err("the optional parts added no image".into());
            }
        }
        // The case changed what is rendered (or, for optional parts that bring no image, at
        // least kept it).
        if got == defaults && !self.keeps_defaults {
            return Err("the same images as with the defaults".into());
        }
        Ok(())
    }

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

/// The charts that have cases (the folder names in `shared/charts/` start with these).
pub const CHARTS: &[&str] = &[
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

/// The cases of a chart (empty for an unknown one).
pub fn cases(chart: &str) -> Vec<Case> {
    match chart {
        "coredns" => vec![
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
        "harbor" => vec![
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
        "ingress-nginx" => vec![
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
        "longhorn" => vec![
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
        "metallb" => vec![
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
        "metrics-server" => vec![
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
        "nginx" => vec![
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
        "podinfo" => vec![
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
        "spegel" => vec![
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
        "tigera-operator" => vec![
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
        "traefik" => vec![
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
        "zot" => vec![
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
        _ => Vec::new(),
    }
}
