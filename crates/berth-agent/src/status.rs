//! `status`: where each image of the plan is, in containerd and in the edge registry.

use berth_client::Client;
use berth_containerd::image_state;
use berth_profile::Role;
use berth_reference::Reference;
use serde::Serialize;

use crate::{Agent, AgentError, AgentPlan};

/// One image of the plan.
#[derive(Debug, Serialize)]
pub struct StatusRow {
    pub source: Reference,
    pub role: Role,
    /// Where it is taken from (the rewritten target).
    pub target: Reference,
    pub in_containerd: bool,
    /// The containerd name found (the source name, else the target name).
    pub name: Option<String>,
    pub digest: Option<String>,
    pub unpacked: bool,
    pub problem: Option<String>,
    /// Whether the edge registry holds it (only with an edge registry).
    pub edge_registry: Option<EdgeState>,
}

impl StatusRow {
    /// In containerd and unpacked: ready to run.
    pub fn ready(&self) -> bool {
        self.in_containerd && self.unpacked
    }

    /// `yes`, `incomplete (PROBLEM)` or `no`.
    pub fn containerd_state(&self) -> String {
        match (self.in_containerd, self.unpacked) {
            (true, true) => "yes".into(),
            (true, false) => format!("incomplete ({})", self.problem.as_deref().unwrap_or("")),
            (false, _) => "no".into(),
        }
    }
}

/// The edge registry's answer for one image.
#[derive(Debug, Serialize)]
pub struct EdgeState {
    pub present: bool,
    pub digest: Option<String>,
    pub error: Option<String>,
}

/// `yes`, `no` or `error: …`.
impl std::fmt::Display for EdgeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.error, self.present) {
            (Some(e), _) => write!(f, "error: {e}"),
            (None, true) => f.write_str("yes"),
            (None, false) => f.write_str("no"),
        }
    }
}

impl EdgeState {
    fn error(e: impl ToString) -> EdgeState {
        EdgeState {
            present: false,
            digest: None,
            error: Some(e.to_string()),
        }
    }
}

impl Agent {
    /// For each image of the plan: its containerd record (under the source name, else the
    /// target name) and, with an edge registry, whether the registry has its manifest.
    pub async fn status(&self, plan: &AgentPlan) -> Result<Vec<StatusRow>, AgentError> {
        let client = match &plan.edge {
            Some(_) => Some(Client::new(plan.registries()).map_err(AgentError::EdgeClient)?),
            None => None,
        };
        let mut rows = Vec::new();
        for e in plan.entries() {
            let mut found = None;
            for name in [e.source.to_string(), e.target.to_string()] {
                if let Some(s) = image_state(self.containerd(), &name).await? {
                    found = Some(s);
                    break;
                }
            }
            let edge_registry = match (&client, &plan.edge) {
                (Some(_), Some(edge)) if e.target.domain() != edge.registry.host() => Some(
                    EdgeState::error("the rewrite does not send this image to the edge registry"),
                ),
                (Some(c), Some(_)) => Some(
                    match c
                        .registry(e.target.domain())
                        .head_manifest(e.target.path(), &e.target.reference_part())
                        .await
                    {
                        Ok(h) => EdgeState {
                            present: h.is_some(),
                            digest: h.and_then(|h| h.digest).map(|d| d.to_string()),
                            error: None,
                        },
                        Err(err) => EdgeState::error(err),
                    },
                ),
                _ => None,
            };
            rows.push(StatusRow {
                source: e.source.clone(),
                role: e.role,
                target: e.target.clone(),
                in_containerd: found.is_some(),
                name: found.as_ref().map(|s| s.record.name.clone()),
                digest: found.as_ref().map(|s| s.record.digest.to_string()),
                unpacked: found.as_ref().is_some_and(|s| s.unpacked),
                problem: found.and_then(|s| s.problem),
                edge_registry,
            });
        }
        Ok(rows)
    }
}
