//! The edge agent: what `berth agent` does on the edge host.
//!
//! - [`preload()`]: the images of a preload directory (OCI layouts, oci-archive and
//!   docker-archive files, plain or compressed), imported without any registry.
//! - [`Agent::apply`]: every image of the [`AgentPlan`] into containerd through its API,
//!   moved by the one transfer engine: preloaded images first, then the provider (OS)
//!   images, then the rest, each from its rewritten target (the external registry with the
//!   user data's credentials and CAs, or the edge registry). Complete images are skipped; a
//!   failed run keeps its lease so a rerun continues where it stopped.
//! - [`Agent::status`]: for each image, whether containerd has it (name, digest,
//!   unpacked) and whether the edge registry holds it.
//! - [`node_files`]: the node's registry configuration (containerd hosts.toml, the k3s/RKE2
//!   registries.yaml, the CRI drop-in) from the same user data and edge registry.
//!
//! The plan itself (targets, roles, the edge registry's address, the user data as registry
//! settings) is `berth-plan`'s; this crate adds containerd and the network.

mod apply;
mod node;
mod preload;
mod signatures;
mod status;

use std::path::PathBuf;

use berth_client::RegistryConfigs;
use berth_containerd::{ContainerdOptions, Platform};
use berth_plan::{EdgeAccess, Plan, PlanEntry, PlanError, RegistrySettings};
use berth_profile::Profile;
use berth_userdata::UserData;

pub use apply::{Agent, AppliedImage, ApplyReport, Outcome, Work, write_state};
pub use node::{NodeFiles, RenderedNodeFiles, node_edge, node_files};
pub use preload::{Preload, preload};
pub use status::{EdgeState, StatusRow};

/// Why the agent could not do its work. Images that fail are not errors: they are reported
/// per image ([`ApplyReport`]); these are the failures that stop the whole run.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Containerd(#[from] berth_containerd::ContainerdError),
    #[error("cannot read the preload directory {}: {source}", dir.display())]
    Preload {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Node(#[from] berth_node::NodeError),
    #[error("cannot create the state directory {}: {source}", dir.display())]
    StateDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot encode the agent state: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("`{0}` is not a platform: write OS/ARCH[/VARIANT], e.g. linux/amd64")]
    Platform(String),
    /// The edge registry's settings cannot be used (a CA that does not parse).
    #[error("the edge registry's settings: {0}")]
    EdgeClient(#[source] berth_client::ClientError),
}

/// How to reach containerd: its socket and namespace, the snapshotter layers are unpacked
/// into, and the platform unpacked from multi-platform images (`OS/ARCH[/VARIANT]`;
/// default: this host's).
pub fn containerd_options(
    socket: PathBuf,
    namespace: &str,
    snapshotter: &str,
    platform: Option<&str>,
) -> Result<ContainerdOptions, AgentError> {
    let platform = match platform {
        Some(p) => Platform::parse(p).ok_or_else(|| AgentError::Platform(p.to_string()))?,
        None => Platform::host(),
    };
    let (namespace, snapshotter) = (namespace.to_string(), snapshotter.to_string());
    Ok(ContainerdOptions {
        socket,
        namespace,
        snapshotter,
        platform,
    })
}

/// Which images the edge host needs, where each comes from, and how to reach the registries.
#[derive(Debug, Clone)]
pub struct AgentPlan {
    /// The profiles' images, provider first (see [`Plan::in_role_order`]), each once.
    pub plan: Plan,
    pub user_data: UserData,
    pub edge: Option<EdgeAccess>,
    /// The user data's registries and the edge registry.
    pub settings: RegistrySettings,
}

impl AgentPlan {
    /// The plan of `profiles` (and the charts of their Helm packs) with the user data's
    /// rewrite rules and, when given, the edge registry in front.
    pub fn new(
        profiles: &[Profile],
        charts: &berth_plan::Charts,
        user_data: UserData,
        edge: Option<EdgeAccess>,
    ) -> Result<AgentPlan, AgentError> {
        let (rewriter, settings) = berth_plan::targets(Some(&user_data), edge.as_ref());
        let mut plan = Plan::build_with(profiles, charts, &rewriter)?;
        let mut seen = std::collections::BTreeSet::new();
        plan.entries = plan
            .in_role_order()
            .into_iter()
            .filter(|e| seen.insert(e.source.clone()))
            .cloned()
            .collect();
        Ok(AgentPlan {
            plan,
            user_data,
            edge,
            settings,
        })
    }

    pub fn entries(&self) -> &[PlanEntry] {
        &self.plan.entries
    }

    /// The node's registry files for the plan's images (see [`node_files`]).
    pub fn node_files(&self, which: &NodeFiles) -> Result<RenderedNodeFiles, AgentError> {
        let images: Vec<_> = self.entries().iter().map(|e| e.source.clone()).collect();
        node_files(&self.user_data, self.edge.as_ref(), &images, which)
    }

    /// The network client's settings for every registry images come from.
    pub fn registries(&self) -> RegistryConfigs {
        (&self.settings).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containerd_options_and_platforms() {
        let o = containerd_options(
            "/run/c.sock".into(),
            "k8s.io",
            "native",
            Some("linux/arm64/v8"),
        )
        .unwrap();
        assert_eq!(
            (o.namespace.as_str(), o.snapshotter.as_str()),
            ("k8s.io", "native")
        );
        assert_eq!(o.platform, Platform::parse("linux/arm64/v8").unwrap());
        let host = containerd_options("/s".into(), "n", "s", None).unwrap();
        assert_eq!(host.platform, Platform::host());
        let e = containerd_options("/s".into(), "n", "s", Some("amd64")).unwrap_err();
        assert!(
            e.to_string().contains("`amd64`") && e.to_string().contains("OS/ARCH"),
            "{e}"
        );
    }
}
