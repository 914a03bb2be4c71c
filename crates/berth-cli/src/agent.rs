//! `berth agent apply` and `berth agent status`: the edge agent (berth-agent), flags and output.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use berth_agent::{Agent, AgentPlan, NodeFiles, Outcome, Work};
use berth_containerd::ContainerdOptions;
use clap::{Args, Subcommand};

use crate::progress::Progress;
use crate::{Output, exit_status, inputs, json_word, runtime, show};

#[derive(Subcommand)]
pub enum AgentCommand {
    /// Put every image of the profiles into containerd, ready to run: preloaded ones first,
    /// then each from its rewritten target, verified, unpacked, named as the cluster asks for
    /// it. A rerun continues where a failed one stopped. Exit 1 if any image failed.
    Apply(ApplyArgs),
    /// For each image of the profiles: is it in containerd (name, digest, unpacked), where it
    /// comes from, is it in the edge registry. Exit 1 when one is missing from containerd.
    Status(StatusArgs),
}

/// How to reach containerd.
#[derive(Args, Clone)]
pub struct ContainerdArgs {
    /// containerd's gRPC socket.
    #[arg(long, value_name = "PATH", default_value = berth_containerd::DEFAULT_SOCKET)]
    containerd_socket: PathBuf,
    /// containerd namespace (the kubelet's CRI uses k8s.io).
    #[arg(long, value_name = "NS", default_value = berth_containerd::DEFAULT_NAMESPACE)]
    namespace: String,
    /// Snapshotter the layers are unpacked into (k3s and containerd default: overlayfs).
    #[arg(long, value_name = "NAME", default_value = berth_containerd::DEFAULT_SNAPSHOTTER)]
    snapshotter: String,
    /// Platform unpacked from multi-platform images (default: this host's, e.g. linux/amd64).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
}

/// Profiles, user data and the edge registry: which images, and where they come from.
#[derive(Args, Clone)]
pub struct AgentPlanArgs {
    /// Palette user data (#cloud-config): the external registry, its credentials and CA.
    #[arg(long, value_name = "FILE", env = "BERTH_USER_DATA")]
    user_data: PathBuf,
    /// Cluster profile files (YAML or JSON). Repeatable: `--profile A B` or `--profile A --profile B`.
    #[arg(long = "profile", value_name = "FILE", required = true, num_args = 1.., env = "BERTH_PROFILE")]
    profiles: Vec<PathBuf>,
    // The edge registry images are taken from instead of the external registry (`http://`
    // for plain HTTP); --edge-ca also goes into its hosts.toml entries with --hosts-dir.
    #[command(flatten)]
    edge: inputs::EdgeTarget,
    #[command(flatten)]
    edge_tls: inputs::EdgeTls,
    #[command(flatten)]
    edge_creds: inputs::EdgeCreds,
}

#[derive(Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    plan: AgentPlanArgs,
    #[command(flatten)]
    containerd: ContainerdArgs,
    /// Directory of OCI layouts, oci-archive and docker-archive files (plain, .gz, .zst):
    /// imported under their own names, without any registry.
    #[arg(long, value_name = "DIR")]
    preload_dir: Option<PathBuf>,
    /// Import only images this signature policy admits (docs/policy.md).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Also write containerd hosts.toml (and CA) files under DIR (e.g.
    /// /etc/containerd/certs.d), so the kubelet's own pulls go where the images are.
    #[arg(long, value_name = "DIR")]
    hosts_dir: Option<PathBuf>,
    /// With --hosts-dir: also put each registry's credentials into its hosts.toml entries
    /// (for ctr, nerdctl); those files become 0600.
    #[arg(long, requires = "hosts_dir")]
    hosts_credentials: bool,
    /// Also write the k3s/RKE2 registries.yaml to FILE (e.g. /etc/rancher/k3s/registries.yaml).
    #[arg(long, value_name = "FILE")]
    k3s_registries: Option<PathBuf>,
    /// Where to write the result of the run (agent-state.json; a rerun checks containerd).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Parallel transfers, across images and blobs.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

#[derive(Args)]
pub struct StatusArgs {
    #[command(flatten)]
    plan: AgentPlanArgs,
    #[command(flatten)]
    containerd: ContainerdArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

pub fn run(cmd: AgentCommand) -> Result<ExitCode> {
    match cmd {
        AgentCommand::Apply(a) => apply(a),
        AgentCommand::Status(a) => status(a),
    }
}

impl AgentPlanArgs {
    fn plan(&self) -> Result<AgentPlan> {
        let edge = self.edge.access(&self.edge_tls, &self.edge_creds)?;
        let profiles = inputs::profiles(&self.profiles)?;
        let ud = inputs::user_data(&self.user_data)?;
        inputs::refuse_empty(&ud, "agent")?;
        Ok(AgentPlan::new(&profiles, ud, edge)?)
    }
}

impl ContainerdArgs {
    fn options(&self) -> Result<ContainerdOptions> {
        let (socket, ns, snap) = (&self.containerd_socket, &self.namespace, &self.snapshotter);
        let platform = self.platform.as_deref();
        let o = berth_agent::containerd_options(socket.clone(), ns, snap, platform);
        o.context("--platform")
    }
}

fn apply(a: ApplyArgs) -> Result<ExitCode> {
    let plan = a.plan.plan()?;
    let which = NodeFiles {
        hosts_dir: a.hosts_dir.clone(),
        hosts_credentials: a.hosts_credentials,
        k3s_registries: a.k3s_registries.clone(),
        ..NodeFiles::default()
    };
    if which.any() {
        let r = plan.node_files(&which)?;
        r.write()?;
        r.files
            .iter()
            .for_each(|f| say!("wrote {}", f.path.display()));
        r.notes.iter().for_each(|n| say!("note: {n}"));
    }
    let rt = runtime()?;
    let agent = rt.block_on(Agent::connect(a.containerd.options()?))?;
    let preload = a
        .preload_dir
        .as_deref()
        .map(|d| rt.block_on(berth_agent::preload(d)));
    let mut work = Work::new(&plan, preload.transpose()?);
    if let Some(p) = &a.policy {
        rt.block_on(work.enforce(&plan, p))?;
    }
    let progress = Progress::new(a.output, work.len(), "imported", true);
    let out = rt.block_on(agent.apply(&plan, work, usize::from(a.jobs), Some(progress.sink())))?;
    progress.finish();
    if let Some(dir) = &a.state_dir {
        berth_agent::write_state(dir, &out)?;
    }
    let row = |i: &berth_agent::AppliedImage| {
        let digest = i.digest.clone().unwrap_or_default();
        vec![json_word(&i.status), i.name.clone(), digest, i.from.clone()]
    };
    let rows = out.images.iter().map(row).collect();
    show(a.output, &out, &["STATUS", "IMAGE", "DIGEST", "FROM"], rows)?;
    let failed = out.images.iter().filter(|i| i.status == Outcome::Failed);
    for i in failed.filter(|_| a.output == Output::Table) {
        let what = if i.name.is_empty() { &i.from } else { &i.name };
        eprintln!("error: {what}: {}", i.error.as_deref().unwrap_or_default());
    }
    let cd = agent.containerd();
    let (socket, ns) = (cd.socket().display(), cd.namespace());
    say!("containerd {socket} namespace {ns}: {out}");
    Ok(exit_status(out.failed > 0))
}

fn status(a: StatusArgs) -> Result<ExitCode> {
    let plan = a.plan.plan()?;
    let rt = runtime()?;
    let agent = rt.block_on(Agent::connect(a.containerd.options()?))?;
    let rows = rt.block_on(agent.status(&plan))?;
    let missing = rows.iter().filter(|r| !r.ready()).count();
    let row = |r: &berth_agent::StatusRow| {
        let name = r.name.clone().unwrap_or_else(|| r.source.to_string());
        let digest = r.digest.clone().unwrap_or_default();
        let mut row = vec![r.containerd_state(), name, digest, r.target.to_string()];
        row.extend(r.edge_registry.as_ref().map(ToString::to_string));
        row
    };
    let mut headers = vec!["IN CONTAINERD", "IMAGE", "DIGEST", "FROM"];
    headers.extend(plan.edge.as_ref().map(|_| "EDGE REGISTRY"));
    let json = std::collections::BTreeMap::from([("images", &rows)]);
    show(a.output, &json, &headers, rows.iter().map(row).collect())?;
    let (cd, n) = (agent.containerd(), rows.len());
    let (socket, ns, present) = (cd.socket().display(), cd.namespace(), n - missing);
    say!("{present} of {n} image(s) in containerd {socket} namespace {ns}");
    Ok(exit_status(missing > 0))
}
