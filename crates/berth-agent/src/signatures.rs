//! `berth agent apply --policy F`: every image is decided before anything of it is written to
//! containerd; one the policy refuses is reported failed (image and reason) and not imported,
//! and one it admits is imported by the digest that was verified.

use std::path::Path;
use std::time::Duration;

use berth_node::signatures::{Gate, load_policy};
use berth_policy::Signatures;
use berth_reference::Reference;
use berth_transfer::Endpoint;

use crate::apply::{AppliedImage, Outcome, Work};
use crate::{AgentError, AgentPlan};

impl Work {
    /// Applies the signature policy file `policy` to the work: refused images leave it (as
    /// failed entries of the report), admitted registry images are pinned to the digest
    /// whose signatures were checked. A preloaded archive carries no signatures, so a
    /// preloaded image passes only a scope that needs none.
    pub async fn enforce(&mut self, plan: &AgentPlan, policy: &Path) -> Result<(), AgentError> {
        let client =
            berth_client::Client::new(plan.registries()).map_err(AgentError::EdgeClient)?;
        let gate = Gate::new(load_policy(policy)?, client, Duration::ZERO);
        let file = gate.policy().file.clone();
        for stage in &mut self.stages {
            let mut kept = Vec::new();
            for mut job in std::mem::take(stage) {
                let refused = |digest: Option<String>, why: String| AppliedImage {
                    name: job.name.clone(),
                    also: job.also.clone(),
                    from: job.from.clone(),
                    digest,
                    status: Outcome::Failed,
                    error: Some(format!("refused by the signature policy {file}: {why}")),
                };
                let source = match Reference::parse(&job.name) {
                    Ok(s) => s,
                    Err(e) => {
                        self.unreadable.push(refused(None, e.to_string()));
                        continue;
                    }
                };
                let Endpoint::Registry(target) = &job.source else {
                    let d = gate
                        .policy()
                        .decide(&source, "(preloaded)", &Signatures::default());
                    match d.allowed() {
                        true => kept.push(job),
                        false => {
                            let why = format!(
                                "{} (a preloaded archive carries no signatures)",
                                d.verdict
                            );
                            self.unreadable.push(refused(None, why));
                        }
                    }
                    continue;
                };
                let checked = match gate.resolve(target).await {
                    Ok(digest) => gate
                        .check_digest(&source, target, &digest)
                        .await
                        .map(|d| (digest, d)),
                    Err(e) => Err(e),
                };
                match checked {
                    Ok((digest, d)) if d.allowed() => {
                        job.source = Endpoint::Registry(target.with_digest(digest));
                        kept.push(job);
                    }
                    Ok((digest, d)) => {
                        let why = format!("{source}: {}", d.verdict);
                        self.unreadable.push(refused(Some(digest.to_string()), why));
                    }
                    Err(e) => {
                        let why = format!("{source}: cannot check its signatures: {e}");
                        self.unreadable.push(refused(None, why));
                    }
                }
            }
            *stage = kept;
        }
        Ok(())
    }
}
