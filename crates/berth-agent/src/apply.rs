//! `apply`: the plan's images into containerd, preloaded first, then provider first.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use berth_containerd::{Containerd, ContainerdEnd, ContainerdOptions, LABEL_CRI_MANAGED};
use berth_node::registries::RenderedFile;
use berth_profile::Role;
use berth_transfer::{CopyOptions, Endpoint, EventSink, ImageStatus};
use serde::Serialize;

use crate::{AgentError, AgentPlan, Preload};

/// What happened to one image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Imported,
    Present,
    Failed,
}

/// One image of an [`ApplyReport`].
#[derive(Clone, Debug, Serialize)]
pub struct AppliedImage {
    /// The containerd image name (the source reference as the cluster asks for it); empty
    /// for a preload entry that could not be read.
    pub name: String,
    /// Other names given to the same record (the rewritten target, more RepoTags).
    pub also: Vec<String>,
    /// Where it came from: the target reference, or the preloaded file.
    pub from: String,
    pub digest: Option<String>,
    pub status: Outcome,
    pub error: Option<String>,
}

/// What `apply` did.
#[derive(Clone, Debug, Serialize)]
pub struct ApplyReport {
    pub images: Vec<AppliedImage>,
    pub imported: usize,
    pub present: usize,
    pub failed: usize,
    /// Blob bytes moved.
    pub bytes: u64,
    pub seconds: f64,
}

/// `N imported, N already present, N failed; 12.30 MiB in 4.2s`.
impl std::fmt::Display for ApplyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} imported, {} already present, {} failed; {} in {}",
            self.imported,
            self.present,
            self.failed,
            berth_transfer::units::size(self.bytes),
            berth_transfer::units::seconds(self.seconds)
        )
    }
}

/// One image to import.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) name: String,
    pub(crate) also: Vec<String>,
    pub(crate) from: String,
    pub(crate) source: Endpoint,
    /// (host, repository) it is pulled from, recorded as containerd's distribution source.
    distribution: Option<(String, String)>,
}

/// The images to import, in order: preloaded, provider, the rest.
#[derive(Debug, Default)]
pub struct Work {
    pub(crate) stages: [Vec<Job>; 3],
    /// Preload entries that could not be read, images the signature policy refused.
    pub(crate) unreadable: Vec<AppliedImage>,
}

impl Work {
    /// The preloaded images under their own names, then every image of the plan not among
    /// them, provider first, from its target.
    pub fn new(plan: &AgentPlan, preload: Option<Preload>) -> Work {
        let mut w = Work::default();
        let mut preloaded = BTreeSet::new();
        if let Some(p) = preload {
            preloaded.extend(p.names().map(str::to_string));
            w.unreadable = p
                .problems
                .into_iter()
                .map(|p| AppliedImage {
                    name: String::new(),
                    also: Vec::new(),
                    from: p.path.display().to_string(),
                    digest: None,
                    status: Outcome::Failed,
                    error: Some(p.detail),
                })
                .collect();
            w.stages[0] = p
                .images
                .into_iter()
                .map(|i| Job {
                    name: i.names[0].clone(),
                    also: i.names[1..].to_vec(),
                    source: Endpoint::preloaded(&i),
                    from: i.origin,
                    distribution: None,
                })
                .collect();
        }
        for e in plan.entries() {
            let source = e.source.to_string();
            if preloaded.contains(&source) {
                continue;
            }
            let target = e.target.to_string();
            let job = Job {
                also: if target != source {
                    vec![target.clone()]
                } else {
                    Vec::new()
                },
                name: source,
                from: target,
                distribution: Some((e.target.domain().to_string(), e.target.path().to_string())),
                source: Endpoint::Registry(e.target.clone()),
            };
            w.stages[if e.role == Role::Provider { 1 } else { 2 }].push(job);
        }
        w
    }

    /// How many images there are to import.
    pub fn len(&self) -> usize {
        self.stages.iter().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// containerd, as the agent uses it.
pub struct Agent {
    cd: Arc<Containerd>,
}

impl Agent {
    /// Connects to containerd (the error names the socket and the fix).
    pub async fn connect(opts: ContainerdOptions) -> Result<Agent, AgentError> {
        Ok(Agent {
            cd: Arc::new(Containerd::connect(opts).await?),
        })
    }

    pub fn containerd(&self) -> &Containerd {
        &self.cd
    }

    /// Imports `work` with `jobs` parallel transfers. Every image ends in the report,
    /// imported, present or failed; the run itself fails only when containerd does.
    pub async fn apply(
        &self,
        plan: &AgentPlan,
        work: Work,
        jobs: usize,
        events: Option<EventSink>,
    ) -> Result<ApplyReport, AgentError> {
        let started = Instant::now();
        let options = CopyOptions {
            jobs,
            keep_going: true,
            source_registries: plan.registries(),
            // containerd keeps images; what is attached to them stays in the registries.
            referrers: false,
            ..CopyOptions::default()
        };
        let mut labels = HashMap::new();
        if self.cd.namespace() == berth_containerd::DEFAULT_NAMESPACE {
            labels.insert(
                LABEL_CRI_MANAGED.0.to_string(),
                LABEL_CRI_MANAGED.1.to_string(),
            );
        }
        let mut images = work.unreadable;
        let mut bytes = 0;
        self.cd.begin_lease().await?;
        for stage in work.stages.into_iter().filter(|s| !s.is_empty()) {
            let pairs = stage
                .iter()
                .map(|j| {
                    let mut end = ContainerdEnd::new(self.cd.clone())
                        .also_named(j.also.clone())
                        .image_labels(labels.clone());
                    if let Some((host, repository)) = &j.distribution {
                        end = end.distribution_source(host, repository);
                    }
                    let to = Endpoint::Ends {
                        name: j.name.clone(),
                        reference: j.name.clone(),
                        source: None,
                        destination: Some(Arc::new(end)),
                    };
                    (j.source.clone(), to)
                })
                .collect();
            let report = berth_transfer::copy_images(pairs, options.clone(), events.clone()).await;
            bytes += report.bytes;
            for (j, r) in stage.into_iter().zip(report.images) {
                images.push(AppliedImage {
                    name: j.name,
                    also: j.also,
                    from: j.from,
                    digest: r.digest,
                    status: match r.status {
                        ImageStatus::Copied => Outcome::Imported,
                        ImageStatus::Present => Outcome::Present,
                        ImageStatus::Failed | ImageStatus::Cancelled => Outcome::Failed,
                    },
                    error: r.error,
                });
            }
        }
        let count = |o: Outcome| images.iter().filter(|i| i.status == o).count();
        let failed = count(Outcome::Failed);
        if failed == 0 {
            self.cd.end_lease().await?;
        } else {
            // Keep what was written for the rerun; the lease expires by itself.
            self.cd.keep_lease();
        }
        Ok(ApplyReport {
            imported: count(Outcome::Imported),
            present: count(Outcome::Present),
            failed,
            bytes,
            seconds: started.elapsed().as_secs_f64(),
            images,
        })
    }
}

/// Writes the report to `DIR/agent-state.json` atomically (creating `DIR`). containerd is
/// the state a rerun checks; this file is for people and monitoring.
pub fn write_state(dir: &Path, report: &ApplyReport) -> Result<PathBuf, AgentError> {
    std::fs::create_dir_all(dir).map_err(|source| AgentError::StateDir {
        dir: dir.to_path_buf(),
        source,
    })?;
    let path = dir.join("agent-state.json");
    let json = serde_json::to_string_pretty(report)? + "\n";
    berth_node::files::write_atomic(&RenderedFile {
        path: path.clone(),
        contents: json,
        secret: false,
    })?;
    Ok(path)
}
