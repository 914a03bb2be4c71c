//! `berth node-config`: containerd hosts.toml files, the k3s/RKE2 registries.yaml and the
//! containerd CRI drop-in that redirect the profiles' images on the node, written atomically.

use std::path::PathBuf;
use std::process::ExitCode;

use berth_node::registries::{self, EdgeRegistry, RenderedFile};
use clap::Args;

use crate::{Failure, inputs};

#[derive(Args)]
pub struct NodeConfigArgs {
    /// Palette user data (#cloud-config): rules, registries, certificates, credentials.
    #[arg(long, value_name = "FILE")]
    user_data: PathBuf,
    /// Cluster profile files (YAML or JSON): their images' registries get mirrors.
    #[arg(long = "profile", value_name = "FILE", required = true)]
    profiles: Vec<PathBuf>,
    /// The edge registry, tried first: [https://|http://]HOST[:PORT].
    #[arg(long, value_name = "URL")]
    edge_registry: Option<String>,
    /// The edge registry's project.
    #[arg(long, value_name = "NAME", default_value = berth_rewrite::DEFAULT_PROJECT, requires = "edge_registry")]
    project: String,
    /// CA certificate (PEM) of the edge registry.
    #[arg(long, value_name = "FILE", requires = "edge_registry")]
    edge_ca: Option<PathBuf>,
    /// Skip TLS verification for the edge registry.
    #[arg(long, requires = "edge_registry")]
    edge_insecure: bool,
    /// containerd's registry config_path.
    #[arg(long, value_name = "DIR", default_value = "/etc/containerd/certs.d")]
    hosts_dir: PathBuf,
    /// Also put each registry's credentials into the hosts.toml entries that reach it
    /// (`header` Authorization = "Basic ..."), for clients that do not read the CRI config
    /// (ctr, nerdctl, containerd's transfer service); those files become 0600.
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

pub fn run(a: NodeConfigArgs) -> Result<ExitCode, Failure> {
    let ud = inputs::user_data(&a.user_data)?;
    let profiles = inputs::profiles(&a.profiles)?;
    let extraction = berth_profile::extract_images(&profiles)?;
    let images: Vec<_> = extraction.images.iter().map(|i| i.source.clone()).collect();
    let edge = match &a.edge_registry {
        Some(url) => {
            let ca = a.edge_ca.as_deref().map(inputs::read).transpose()?;
            Some(EdgeRegistry::parse(
                url,
                Some(&a.project),
                ca,
                a.edge_insecure,
            )?)
        }
        None => None,
    };
    let plan = registries::plan(&ud, edge.as_ref(), &images, a.fallback_upstream)?;
    let opts = registries::HostsOptions {
        credentials: a.hosts_credentials,
    };
    let hosts = registries::containerd_hosts_with(&plan, &a.hosts_dir, opts);
    let mut files: Vec<RenderedFile> = hosts.files;
    let mut notes = hosts.notes;
    if let Some(path) = &a.k3s_registries {
        let k = registries::k3s_registries(&plan, path);
        files.extend(k.files);
        notes.extend(k.notes);
    }
    if let Some(path) = &a.cri_config {
        files.push(registries::cri_drop_in(&plan, &a.hosts_dir, path, true));
    }
    notes.sort();
    notes.dedup();
    if a.dry_run {
        for f in &files {
            println!("==> {} <==", f.path.display());
            if f.secret {
                print!("{}", registries::redact(&f.contents, &plan));
            } else {
                print!("{}", f.contents);
            }
        }
    } else {
        berth_node::files::write_all(&files)?;
        for f in &files {
            println!("wrote {}", f.path.display());
        }
    }
    for n in &notes {
        eprintln!("berth node-config: note: {n}");
    }
    Ok(ExitCode::SUCCESS)
}
