//! `berth agent apply` and `berth agent status`: the edge agent (berth-agent), flags and output;
//! `berth node-config`: the node's registry files (berth-agent's rendering), written atomically.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use berth_agent::{Agent, AgentPlan, NodeFiles, Outcome, RenderedNodeFiles, Work};
use berth_containerd::ContainerdOptions;
use clap::{Args, Subcommand};

use crate::transfer::progress;
use crate::{exit_status, inputs, json_out, json_word, runtime, show};

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

#[derive(Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    inputs: inputs::NodeInputs,
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
}

#[derive(Args)]
pub struct StatusArgs {
    #[command(flatten)]
    inputs: inputs::NodeInputs,
    #[command(flatten)]
    containerd: ContainerdArgs,
}

pub fn run(cmd: AgentCommand) -> Result<ExitCode> {
    match cmd {
        AgentCommand::Apply(a) => apply(a),
        AgentCommand::Status(a) => status(a),
    }
}

/// Which images, and where they come from.
fn plan(i: &inputs::NodeInputs) -> Result<AgentPlan> {
    let (ud, profiles, charts, edge) = i.read("agent")?;
    Ok(AgentPlan::new(&profiles, &charts, ud, edge)?)
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
    let plan = plan(&a.inputs)?;
    let which = NodeFiles {
        hosts_dir: a.hosts_dir.clone(),
        hosts_credentials: a.hosts_credentials,
        k3s_registries: a.k3s_registries.clone(),
        ..NodeFiles::default()
    };
    if which.any() {
        write(&plan.node_files(&which)?, false, "agent")?;
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
    let progress = progress(work.len(), "imported", true);
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
    show(&out, &["STATUS", "IMAGE", "DIGEST", "FROM"], rows)?;
    let failed = out.images.iter().filter(|i| i.status == Outcome::Failed);
    for i in failed.filter(|_| !json_out()) {
        let what = if i.name.is_empty() { &i.from } else { &i.name };
        eprintln!("error: {what}: {}", i.error.as_deref().unwrap_or_default());
    }
    let cd = agent.containerd();
    let (socket, ns) = (cd.socket().display(), cd.namespace());
    say!("containerd {socket} namespace {ns}: {out}");
    Ok(exit_status(out.failed > 0))
}

fn status(a: StatusArgs) -> Result<ExitCode> {
    let plan = plan(&a.inputs)?;
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
    show(&json, &headers, rows.iter().map(row).collect())?;
    let (cd, n) = (agent.containerd(), rows.len());
    let (socket, ns, present) = (cd.socket().display(), cd.namespace(), n - missing);
    say!("{present} of {n} image(s) in containerd {socket} namespace {ns}");
    Ok(exit_status(missing > 0))
}

#[derive(Args)]
pub struct NodeConfigArgs {
    #[command(flatten)]
    inputs: inputs::NodeInputs,
    /// containerd's registry config_path.
    #[arg(long, value_name = "DIR", default_value = "/etc/containerd/certs.d")]
    hosts_dir: PathBuf,
    /// Also put each registry's credentials into its hosts.toml entries (for ctr, nerdctl,
    /// containerd's transfer service); those files become 0600.
    #[arg(long)]
    hosts_credentials: bool,
    /// Also write a k3s/RKE2 registries.yaml here (e.g. /etc/rancher/k3s/registries.yaml).
    #[arg(long, value_name = "FILE")]
    k3s_registries: Option<PathBuf>,
    /// Also write a containerd 1.x CRI drop-in here (config_path and registry.configs auth),
    /// e.g. /etc/containerd/conf.d/berth.toml.
    #[arg(long, value_name = "FILE")]
    cri_config: Option<PathBuf>,
    /// Let pulls fall back to the upstream registries (the internet) after the mirrors.
    #[arg(long)]
    fallback_upstream: bool,
    /// Print the files instead of writing them (passwords shown as <redacted>).
    #[arg(long)]
    dry_run: bool,
}

pub fn node_config(a: NodeConfigArgs) -> Result<ExitCode> {
    let (ud, profiles, charts, edge) = a.inputs.read("node-config")?;
    let extraction = berth_plan::extract(&profiles, &charts)?;
    let images: Vec<_> = extraction.images.into_iter().map(|i| i.source).collect();
    let which = NodeFiles {
        hosts_dir: Some(a.hosts_dir),
        hosts_credentials: a.hosts_credentials,
        k3s_registries: a.k3s_registries,
        cri_config: a.cri_config,
        fallback_upstream: a.fallback_upstream,
    };
    let r = berth_agent::node_files(&ud, edge.as_ref(), &images, &which)?;
    write(&r, a.dry_run, "node-config")?;
    Ok(ExitCode::SUCCESS)
}

/// Writes the files (`dry_run`: prints them), saying what it wrote and noticed.
fn write(r: &RenderedNodeFiles, dry_run: bool, command: &str) -> Result<()> {
    if dry_run {
        print!("{}", r.preview());
    } else {
        r.write()?;
        for f in &r.files {
            say!("wrote {}", f.path.display());
        }
    }
    r.notes
        .iter()
        .for_each(|n| say!("berth {command}: note: {n}"));
    Ok(())
}
