//! The plan: every image of the profiles, where it lives after rewriting, what it is for and
//! where it was found.

use std::collections::BTreeSet;
use std::fmt;

use berth_profile::{Finding, ImageUse, LayerType, Profile, ProfileError, Provenance, Role};
use berth_reference::Reference;
use berth_rewrite::{RewriteError, Rewriter};
use berth_userdata::UserData;

use crate::helm::Charts;
use serde::Serialize;

/// One image of the plan. Serializes as `berth images` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanEntry {
    /// The normalized reference, as the cluster asks for it.
    pub source: Reference,
    /// Where it lives after rewriting (equal to `source` when nothing redirects it).
    pub target: Reference,
    /// The most authoritative layer it was found in, that layer's type and the role.
    pub layer: String,
    pub layer_type: LayerType,
    pub role: Role,
    /// Provenance: every place it was found, most authoritative first.
    pub found_in: Vec<String>,
    /// The kinds of place it was read from (`content-list`, `values`, `manifest`).
    pub provenance: Vec<Provenance>,
}

impl PlanEntry {
    /// Whether the rewrite sends it somewhere else (so there is something to copy).
    pub fn redirected(&self) -> bool {
        self.source != self.target
    }
}

/// An image the rewrite function refused, with where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error} (found in {})", found_in.join("; "))]
pub struct Unrewritable {
    pub source: Reference,
    pub found_in: Vec<String>,
    #[source]
    pub error: RewriteError,
}

/// Why no plan could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// A Helm pack's chart that could not be loaded or rendered (file, pack, chart, and the
    /// template file and line).
    #[error(transparent)]
    Chart(Box<crate::helm::ChartRenderError>),
    /// A profile's manifest that is not YAML once rendered (its layer and name).
    #[error(transparent)]
    Manifest(Box<berth_chart::ChartError>),
    /// Every image the rewrite function refused, each with its fix.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Rewrite(Vec<Unrewritable>),
}

/// The images of a set of profiles with their targets, and the findings met extracting them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    #[serde(rename = "images")]
    pub entries: Vec<PlanEntry>,
    #[serde(skip)]
    pub findings: Vec<Finding>,
    /// The charts of the profiles' Helm packs the caller loaded, as the artifacts `mirror`
    /// pushes ([`crate::PlanChart`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub charts: Vec<crate::PlanChart>,
}

impl Plan {
    /// Extracts the images of `profiles` and rewrites each. Any image the rewrite refuses
    /// fails the plan, naming every such image. The findings are the extraction's, then
    /// where the user data's settings do not cover a target ([`crate::coverage`]).
    pub fn build(profiles: &[Profile], rewriter: &Rewriter) -> Result<Plan, PlanError> {
        Plan::build_with(profiles, &Charts::default(), rewriter)
    }

    /// [`Plan::build`] with the charts of the profiles' Helm packs rendered
    /// ([`crate::extract`]): their images with provenance `rendered` and `annotation`.
    pub fn build_with(
        profiles: &[Profile],
        charts: &Charts,
        rewriter: &Rewriter,
    ) -> Result<Plan, PlanError> {
        let extraction = crate::helm::extract(profiles, charts)?;
        let mut plan = Plan::from_images(&extraction.images, extraction.findings, rewriter)?;
        let (charts, findings) = crate::charts::plan_charts(profiles, charts, rewriter)?;
        plan.charts = charts;
        plan.findings.extend(findings);
        Ok(plan)
    }

    /// [`Plan::build_with`] with nothing redirected: every image and chart at its source
    /// (what a content bundle names them by).
    pub fn of_sources(profiles: &[Profile], charts: &Charts) -> Result<Plan, PlanError> {
        Plan::build_with(profiles, charts, &Rewriter::new(None, None))
    }

    /// The plan of already extracted images.
    pub fn from_images(
        images: &[ImageUse],
        findings: Vec<Finding>,
        rewriter: &Rewriter,
    ) -> Result<Plan, PlanError> {
        let mut entries = Vec::with_capacity(images.len());
        let mut refused = Vec::new();
        for img in images {
            match rewriter.rewrite(&img.source) {
                Ok(target) => entries.push(PlanEntry {
                    source: img.source.clone(),
                    target,
                    layer: img.layer.clone(),
                    layer_type: img.layer_type,
                    role: img.role,
                    found_in: img.found_in.clone(),
                    provenance: img.provenance.clone(),
                }),
                Err(error) => refused.push(Unrewritable {
                    source: img.source.clone(),
                    found_in: img.found_in.clone(),
                    error,
                }),
            }
        }
        if !refused.is_empty() {
            return Err(PlanError::Rewrite(refused));
        }
        let mut findings = findings;
        findings.extend(crate::coverage::coverage(&entries, rewriter));
        Ok(Plan {
            entries,
            findings,
            charts: Vec::new(),
        })
    }

    /// The entries the rewrite sends elsewhere, and those it leaves where they are.
    pub fn split_redirected(&self) -> (Vec<&PlanEntry>, Vec<&PlanEntry>) {
        self.entries.iter().partition(|e| e.redirected())
    }

    /// (source, target) of every image and chart `mirror` copies (`--dry-run`).
    pub fn moves(&self) -> Vec<(String, String)> {
        let (images, _) = self.split_redirected();
        let pair = |s: &Reference, t: &Reference| (s.to_string(), t.to_string());
        let images = images.into_iter().map(|e| pair(&e.source, &e.target));
        let charts = self
            .moved_charts()
            .into_iter()
            .map(|c| pair(&c.source, &c.target));
        images.chain(charts).collect()
    }

    /// The charts the rewrite sends elsewhere (those `mirror` pushes).
    pub fn moved_charts(&self) -> Vec<&crate::PlanChart> {
        self.charts.iter().filter(|c| c.redirected()).collect()
    }

    /// The entries in the order an edge host needs them: provider (the OS) first, then core
    /// (Kubernetes), infra (CNI, CSI) and add-ons; the profiles' order within a role.
    pub fn in_role_order(&self) -> Vec<&PlanEntry> {
        let mut v: Vec<&PlanEntry> = self.entries.iter().collect();
        v.sort_by_key(|e| role_rank(e.role));
        v
    }

    /// The extraction's findings, then the profile lints ([`berth_profile::lint`]) not
    /// already among them.
    pub fn findings_with_lints(&self, profiles: &[Profile]) -> Result<Vec<Finding>, PlanError> {
        let mut all = self.findings.clone();
        for f in berth_profile::lint(profiles)? {
            if !self
                .findings
                .iter()
                .any(|g| g.rule == f.rule && g.path == f.path && g.layer == f.layer)
            {
                all.push(f);
            }
        }
        Ok(all)
    }

    /// The registry hosts the images come from.
    pub fn source_hosts(&self) -> BTreeSet<String> {
        self.entries
            .iter()
            .map(|e| e.source.domain().to_string())
            .collect()
    }
}

/// `berth lint`: the profile lints ([`berth_profile::lint`]), and with user data the
/// extraction's findings and where its settings do not cover a target
/// ([`crate::coverage`]); the edge registry plays no part.
pub fn lint(profiles: &[Profile], user_data: Option<&UserData>) -> Result<Vec<Finding>, PlanError> {
    match user_data {
        Some(ud) => {
            Plan::build(profiles, &Rewriter::new(Some(ud), None))?.findings_with_lints(profiles)
        }
        None => Ok(berth_profile::lint(profiles)?),
    }
}

/// Provider 0, core 1, infra 2, addon 3.
pub fn role_rank(r: Role) -> u8 {
    match r {
        Role::Provider => 0,
        Role::Core => 1,
        Role::Infra => 2,
        Role::Addon => 3,
    }
}

impl fmt::Display for PlanEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.source, self.target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_rewrite::LocalRegistry;
    use berth_userdata::UserData;

    const PROFILE: &str = "name: p\nlayers:\n  - name: apps\n    type: addon\n    values:\n      pack:\n        content:\n          images:\n            - image: nginx:1\n            - image: quay.io/a/b:2\n  - name: os\n    type: os\n    values:\n      pack:\n        content:\n          images:\n            - image: ttl.sh/os:1\n  - name: k8s\n    type: k8s\n    values:\n      pack:\n        content:\n          images:\n            - image: registry.k8s.io/pause:3.9\n";

    fn profiles() -> Vec<Profile> {
        vec![Profile::parse(PROFILE, "p.yaml").unwrap()]
    }

    #[test]
    fn entries_carry_target_role_layer_and_provenance() {
        let ud = UserData::parse(
            "#cloud-config\nstylus:\n  registryCredentials:\n    domain: ext.example.com/mirror\n",
            "ud.yaml",
        )
        .unwrap();
        let plan = Plan::build(&profiles(), &Rewriter::new(Some(&ud), None)).unwrap();
        let nginx = plan
            .entries
            .iter()
            .find(|e| e.source.to_string() == "docker.io/library/nginx:1")
            .unwrap();
        assert_eq!(
            nginx.target.to_string(),
            "ext.example.com/mirror/docker.io/library/nginx:1"
        );
        assert_eq!((nginx.role, nginx.layer.as_str()), (Role::Addon, "apps"));
        assert!(nginx.found_in[0].contains("apps"), "{:?}", nginx.found_in);
        assert!(nginx.redirected());
        let json = serde_json::to_value(nginx).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "found_in",
                "layer",
                "layer_type",
                "provenance",
                "role",
                "source",
                "target"
            ]
        );
        assert_eq!(json["provenance"], serde_json::json!(["content-list"]));
        assert_eq!(json["source"], "docker.io/library/nginx:1");
        let roles: Vec<Role> = plan.in_role_order().iter().map(|e| e.role).collect();
        assert_eq!(roles[..2], [Role::Provider, Role::Core]);
        assert_eq!(
            plan.source_hosts().into_iter().collect::<Vec<_>>(),
            ["docker.io", "quay.io", "registry.k8s.io", "ttl.sh"]
        );
    }

    #[test]
    fn without_redirect_nothing_moves() {
        let plan = Plan::build(&profiles(), &Rewriter::new(None, None)).unwrap();
        let (moved, unmoved) = plan.split_redirected();
        assert!(moved.is_empty());
        assert_eq!(unmoved.len(), 4);
    }

    #[test]
    fn refused_images_name_where_they_were_found() {
        let text = PROFILE.replace("quay.io/a/b:2", "\"[fd00::1]:5000/a/b:2\"");
        let p = vec![Profile::parse(&text, "p.yaml").unwrap()];
        let local = LocalRegistry::new("edge:5000", None).unwrap();
        let e = Plan::build(&p, &Rewriter::new(None, Some(local))).unwrap_err();
        let PlanError::Rewrite(refused) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(refused.len(), 1);
        assert!(matches!(refused[0].error, RewriteError::Ipv6Host { .. }));
        let msg = e.to_string();
        assert!(
            msg.contains("IPv6") && msg.contains("found in") && msg.contains("apps"),
            "{msg}"
        );
        assert!(std::error::Error::source(&refused[0]).is_some());
    }
}
