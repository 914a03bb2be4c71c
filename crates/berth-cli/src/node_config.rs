//! `berth node-config`: the node's registry files (berth-agent's rendering), written atomically.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use berth_agent::NodeFiles;
use clap::Args;

use crate::inputs;

#[derive(Args)]
pub struct NodeConfigArgs {
    /// Palette user data (#cloud-config): rules, registries, certificates, credentials.
    #[arg(long, value_name = "FILE", env = "BERTH_USER_DATA")]
    user_data: PathBuf,
    /// Cluster profile files (YAML or JSON): their images' registries get mirrors.
    /// Repeatable: `--profile A B` or `--profile A --profile B`.
    #[arg(long = "profile", value_name = "FILE", required = true, num_args = 1.., env = "BERTH_PROFILE")]
    profiles: Vec<PathBuf>,
    // The edge registry, tried first.
    #[command(flatten)]
    edge: inputs::EdgeTarget,
    #[command(flatten)]
    edge_tls: inputs::EdgeTls,
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

pub fn run(a: NodeConfigArgs) -> Result<ExitCode> {
    let ud = inputs::user_data(&a.user_data)?;
    inputs::refuse_empty(&ud, "node-config")?;
    let edge = a.edge.access(&a.edge_tls, &inputs::EdgeCreds::default())?;
    let extraction = berth_profile::extract_images(&inputs::profiles(&a.profiles)?)?;
    let images: Vec<_> = extraction.images.into_iter().map(|i| i.source).collect();
    let which = NodeFiles {
        hosts_dir: Some(a.hosts_dir),
        hosts_credentials: a.hosts_credentials,
        k3s_registries: a.k3s_registries,
        cri_config: a.cri_config,
        fallback_upstream: a.fallback_upstream,
    };
    let r = berth_agent::node_files(&ud, edge.as_ref(), &images, &which)?;
    if a.dry_run {
        print!("{}", r.preview());
    } else {
        r.write()?;
        r.files
            .iter()
            .for_each(|f| say!("wrote {}", f.path.display()));
    }
    r.notes
        .iter()
        .for_each(|n| say!("berth node-config: note: {n}"));
    Ok(ExitCode::SUCCESS)
}
