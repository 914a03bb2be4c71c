//! `berth agent apply` and `berth agent status`: the edge agent's containerd side. Images
//! go into containerd through its gRPC API (berth-containerd), moved by the one transfer
//! engine: preloaded archives and layouts first (no registry), then every other image of
//! the profiles from its rewritten target (external or edge registry).

use std::collections::{BTreeSet, HashMap};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, anyhow};
use berth_archive::preload;
use berth_client::{Client, Credentials, RegistryConfig, RegistryConfigs};
use berth_containerd::{
    Containerd, ContainerdEnd, ContainerdOptions, LABEL_CRI_MANAGED, Platform, image_state,
};
use berth_node::registries::{self, EdgeRegistry};
use berth_profile::Role;
use berth_reference::Reference;
use berth_rewrite::{LocalRegistry, Rewriter};
use berth_transfer::{CopyOptions, Endpoint, Event, EventSink, ImageStatus, Report};
use berth_userdata::UserData;
use clap::{Args, Subcommand};
use serde::Serialize;

use crate::plan::{PlannedImage, plan, print_table};
use crate::{EXIT_FINDINGS, Failure, Output, inputs};

#[derive(Subcommand)]
pub enum AgentCommand {
    /// Put every image of the profiles into containerd, ready to run: preloaded archives
    /// and layouts under their own names, every other image from its rewritten target
    /// (the external registry with the user data's credentials and CA, or the edge
    /// registry), content verified by digest, layers unpacked for this host's platform,
    /// image records named as the cluster asks for them. A rerun continues where a
    /// failed one stopped; complete images are skipped. Exit 1 if any image failed.
    Apply(ApplyArgs),
    /// For each image of the profiles: is it in containerd (under which name and digest,
    /// unpacked?), where it comes from, and whether the edge registry holds it. Exit 1
    /// when an image is missing from containerd.
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
    #[arg(long, value_name = "FILE")]
    user_data: PathBuf,
    /// Cluster profile files (YAML or JSON).
    #[arg(long = "profile", value_name = "FILE", required = true)]
    profiles: Vec<PathBuf>,
    /// The edge registry images are taken from instead of the external registry:
    /// `[https://]HOST[:PORT]` (`http://` for plain HTTP). Targets become
    /// HOST[:PORT]/<project>/<registry>/<path>.
    #[arg(long, value_name = "URL")]
    edge_registry: Option<String>,
    /// The edge registry's project (first path component).
    #[arg(long, value_name = "NAME", default_value = berth_rewrite::DEFAULT_PROJECT, requires = "edge_registry")]
    edge_project: String,
    /// PEM CA certificate(s) of an HTTPS edge registry signed by a private CA (`berth serve`
    /// generates DATA/tls/ca.crt): trusted besides the user data's CAs and the system roots,
    /// and written into the edge's hosts.toml entries with --hosts-dir.
    #[arg(long, value_name = "FILE", requires = "edge_registry")]
    edge_ca: Option<PathBuf>,
}

#[derive(Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    plan: AgentPlanArgs,
    #[command(flatten)]
    containerd: ContainerdArgs,
    /// Directory of preloaded images: OCI layout directories, oci-archive and
    /// docker-archive files (plain, .gz or .zst), imported under their own names
    /// (org.opencontainers.image.ref.name / RepoTags) without any registry.
    #[arg(long, value_name = "DIR")]
    preload_dir: Option<PathBuf>,
    /// Also write containerd hosts.toml files (and CA files) for every upstream registry
    /// under DIR (e.g. /etc/containerd/certs.d), so pulls the kubelet still makes go to the
    /// external or edge registry (berth-node's rendering, the same rewrite function).
    #[arg(long, value_name = "DIR")]
    hosts_dir: Option<PathBuf>,
    /// With --hosts-dir: also put each registry's credentials into the hosts.toml entries
    /// that reach it (`header` Authorization), for clients that do not read the CRI config
    /// (ctr, nerdctl); those files become 0600.
    #[arg(long, requires = "hosts_dir")]
    hosts_credentials: bool,
    /// Also write the k3s/RKE2 registries.yaml to FILE (e.g. /etc/rancher/k3s/registries.yaml).
    #[arg(long, value_name = "FILE")]
    k3s_registries: Option<PathBuf>,
    /// Where to write the result of the last run (agent-state.json). containerd itself is
    /// the state: a rerun checks it, not this file.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Parallel transfers, across images and blobs.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

#[derive(Args)]
pub struct StatusArgs {
    #[command(flatten)]
    plan: AgentPlanArgs,
    #[command(flatten)]
    containerd: ContainerdArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

pub fn run(cmd: AgentCommand) -> Result<ExitCode, Failure> {
    match cmd {
        AgentCommand::Apply(a) => apply(a),
        AgentCommand::Status(a) => status(a),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Splits `[scheme://]host[:port]`: the host and whether it is plain HTTP.
fn edge_host(url: &str) -> anyhow::Result<(String, bool)> {
    let u = url.trim().trim_end_matches('/');
    let (host, plain) = if let Some(h) = u.strip_prefix("https://") {
        (h, false)
    } else if let Some(h) = u.strip_prefix("http://") {
        (h, true)
    } else if u.contains("://") {
        return Err(anyhow!(
            "--edge-registry {url}: use https://HOST[:PORT], http://HOST[:PORT] or HOST[:PORT]"
        ));
    } else {
        (u, false)
    };
    Ok((host.to_string(), plain))
}

/// Registry settings from user data (each registry by its domain) and the edge registry.
fn registry_configs(
    ud: &UserData,
    edge: Option<(&str, bool)>,
    edge_ca: Option<&str>,
) -> RegistryConfigs {
    let mut configs = RegistryConfigs::new();
    for r in &ud.registries {
        configs.insert(
            &r.domain,
            RegistryConfig {
                credentials: r
                    .has_credentials()
                    .then(|| Credentials::new(r.username.clone(), r.password.clone())),
                insecure: r.insecure,
                ca_pems: r.certificates.clone(),
            },
        );
    }
    if let Some((host, plain)) = edge {
        let e = configs.entry(host);
        e.insecure |= plain;
        // The edge registry's certificate may come from the same CA as the external one.
        for r in &ud.registries {
            e.ca_pems.extend(r.certificates.iter().cloned());
        }
        e.ca_pems.extend(edge_ca.map(str::to_string));
    }
    configs
}

struct AgentPlan {
    rows: Vec<PlannedImage>,
    configs: RegistryConfigs,
    edge: Option<String>,
    user_data: UserData,
    local: Option<(LocalRegistry, bool)>,
    edge_ca: Option<String>,
}

fn agent_plan(a: &AgentPlanArgs) -> Result<AgentPlan, Failure> {
    let profiles = inputs::profiles(&a.profiles)?;
    let ud = inputs::user_data(&a.user_data)?;
    let edge = match &a.edge_registry {
        Some(u) => Some(edge_host(u)?),
        None => None,
    };
    let local = match &edge {
        Some((h, _)) => Some(
            LocalRegistry::new(h, Some(&a.edge_project))
                .map_err(|e| anyhow!("--edge-registry: {e}"))?,
        ),
        None => None,
    };
    let rewriter = Rewriter::new(Some(&ud), local.clone());
    let (mut rows, _findings) = plan(&profiles, &rewriter)?;
    rows.sort_by_key(|r| role_order(r.role));
    let edge_ca = a.edge_ca.as_deref().map(inputs::read).transpose()?;
    let configs = registry_configs(
        &ud,
        edge.as_ref().map(|(h, p)| (h.as_str(), *p)),
        edge_ca.as_deref(),
    );
    Ok(AgentPlan {
        rows,
        configs,
        local: local.zip(edge.as_ref().map(|(_, plain)| *plain)),
        edge: edge.map(|(h, _)| h),
        user_data: ud,
        edge_ca,
    })
}

fn role_order(r: Role) -> u8 {
    match r {
        Role::Provider => 0,
        Role::Core => 1,
        Role::Infra => 2,
        Role::Addon => 3,
    }
}

fn options(c: &ContainerdArgs) -> anyhow::Result<ContainerdOptions> {
    let platform = match &c.platform {
        Some(p) => Platform::parse(p)
            .ok_or_else(|| anyhow!("--platform {p}: write OS/ARCH[/VARIANT], e.g. linux/amd64"))?,
        None => Platform::host(),
    };
    Ok(ContainerdOptions {
        socket: c.containerd_socket.clone(),
        namespace: c.namespace.clone(),
        snapshotter: c.snapshotter.clone(),
        platform,
    })
}

/// One image of `berth agent apply`.
#[derive(Clone, Debug, Serialize)]
struct AppliedImage {
    /// The containerd image name (the source reference as the cluster asks for it).
    name: String,
    /// Other names given to the same record (the rewritten target, more RepoTags).
    also: Vec<String>,
    /// Where it came from: the target reference, or the preloaded file.
    from: String,
    digest: Option<String>,
    /// imported | present | failed
    status: &'static str,
    error: Option<String>,
}

#[derive(Serialize)]
struct ApplyOutput {
    images: Vec<AppliedImage>,
    imported: usize,
    present: usize,
    failed: usize,
    bytes: u64,
    seconds: f64,
}

struct Job {
    name: String,
    also: Vec<String>,
    from: String,
    source: Endpoint,
    distribution: Option<(String, String)>,
}

fn apply(a: ApplyArgs) -> Result<ExitCode, Failure> {
    let plan = agent_plan(&a.plan)?;
    let opts = options(&a.containerd)?;
    node_files(&a, &plan)?;
    let rt = runtime()?;
    let started = Instant::now();
    let cd = Arc::new(rt.block_on(Containerd::connect(opts))?);

    // 1. Preloaded images.
    let mut results: Vec<AppliedImage> = Vec::new();
    let mut preload_jobs = Vec::new();
    let mut preloaded_names = BTreeSet::new();
    if let Some(dir) = &a.preload_dir {
        let scan = rt
            .block_on(preload::scan(dir))
            .with_context(|| format!("--preload-dir {}", dir.display()))?;
        for p in scan.problems {
            results.push(AppliedImage {
                name: String::new(),
                also: Vec::new(),
                from: p.path.display().to_string(),
                digest: None,
                status: "failed",
                error: Some(p.detail),
            });
        }
        for i in scan.images {
            preloaded_names.extend(i.names.iter().cloned());
            preload_jobs.push(Job {
                name: i.names[0].clone(),
                also: i.names[1..].to_vec(),
                source: Endpoint::preloaded(&i),
                from: i.origin,
                distribution: None,
            });
        }
    }
    // 2. Every other image of the profiles, provider first, from its target.
    let mut provider_jobs = Vec::new();
    let mut other_jobs = Vec::new();
    let mut seen = BTreeSet::new();
    for r in &plan.rows {
        if preloaded_names.contains(&r.source) || !seen.insert(r.source.clone()) {
            continue;
        }
        let target = Reference::parse(&r.target)?;
        let job = Job {
            name: r.source.clone(),
            also: if r.target != r.source {
                vec![r.target.clone()]
            } else {
                Vec::new()
            },
            from: r.target.clone(),
            distribution: Some((target.domain().to_string(), target.path().to_string())),
            source: Endpoint::Registry(target),
        };
        if r.role == Role::Provider {
            provider_jobs.push(job);
        } else {
            other_jobs.push(job);
        }
    }

    let total = preload_jobs.len() + provider_jobs.len() + other_jobs.len();
    let progress = Progress::new(
        a.output == Output::Table && std::io::stderr().is_terminal(),
        total,
    );
    let copy_opts = CopyOptions {
        jobs: usize::from(a.jobs),
        keep_going: true,
        source_registries: plan.configs.clone(),
        ..CopyOptions::default()
    };
    let mut image_labels = HashMap::new();
    if cd.namespace() == berth_containerd::DEFAULT_NAMESPACE {
        image_labels.insert(
            LABEL_CRI_MANAGED.0.to_string(),
            LABEL_CRI_MANAGED.1.to_string(),
        );
    }
    let mut bytes = 0;
    rt.block_on(cd.begin_lease())?;
    for jobs in [preload_jobs, provider_jobs, other_jobs] {
        if jobs.is_empty() {
            continue;
        }
        let pairs = jobs
            .iter()
            .map(|j| {
                let mut end = ContainerdEnd::new(cd.clone())
                    .also_named(j.also.clone())
                    .image_labels(image_labels.clone());
                if let Some((h, r)) = &j.distribution {
                    end = end.distribution_source(h, r);
                }
                (
                    j.source.clone(),
                    Endpoint::Ends {
                        name: j.name.clone(),
                        reference: j.name.clone(),
                        source: None,
                        destination: Some(Arc::new(end)),
                    },
                )
            })
            .collect();
        let report: Report = rt.block_on(berth_transfer::copy_images(
            pairs,
            copy_opts.clone(),
            Some(progress.sink()),
        ));
        bytes += report.bytes;
        for (j, r) in jobs.iter().zip(report.images) {
            results.push(AppliedImage {
                name: j.name.clone(),
                also: j.also.clone(),
                from: j.from.clone(),
                digest: r.digest,
                status: match r.status {
                    ImageStatus::Copied => "imported",
                    ImageStatus::Present => "present",
                    ImageStatus::Failed => "failed",
                },
                error: r.error,
            });
        }
    }
    let count = |s: &str| results.iter().filter(|r| r.status == s).count();
    let failed = count("failed");
    if failed == 0 {
        rt.block_on(cd.end_lease())?;
    } else {
        // Keep what was written for the rerun; the lease expires by itself.
        cd.keep_lease();
    }
    progress.finish();
    let out = ApplyOutput {
        imported: count("imported"),
        present: count("present"),
        failed,
        bytes,
        seconds: started.elapsed().as_secs_f64(),
        images: results,
    };
    if let Some(dir) = &a.state_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--state-dir {}: cannot create it", dir.display()))?;
        inputs::write_atomic(
            &dir.join("agent-state.json"),
            &(serde_json::to_string_pretty(&out)? + "\n"),
        )?;
    }
    match a.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&out)?),
        Output::Table => {
            let rows: Vec<Vec<String>> = out
                .images
                .iter()
                .map(|i| {
                    vec![
                        i.status.to_string(),
                        i.name.clone(),
                        i.digest.clone().unwrap_or_default(),
                        i.from.clone(),
                    ]
                })
                .collect();
            print_table(&["STATUS", "IMAGE", "DIGEST", "FROM"], &rows);
            for i in out.images.iter().filter(|i| i.error.is_some()) {
                let what = if i.name.is_empty() { &i.from } else { &i.name };
                eprintln!("error: {what}: {}", i.error.as_deref().unwrap_or_default());
            }
        }
    }
    let mb = out.bytes as f64 / 1e6;
    eprintln!(
        "containerd {} namespace {}: {} imported, {} already present, {} failed; {mb:.1} MB in {:.2} s",
        cd.socket().display(),
        cd.namespace(),
        out.imported,
        out.present,
        out.failed,
        out.seconds
    );
    Ok(if out.failed > 0 {
        ExitCode::from(EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    })
}

/// `--hosts-dir` / `--k3s-registries`: berth-node renders them from the same plan.
fn node_files(a: &ApplyArgs, plan: &AgentPlan) -> anyhow::Result<()> {
    if a.hosts_dir.is_none() && a.k3s_registries.is_none() {
        return Ok(());
    }
    let edge = plan.local.as_ref().map(|(local, plain)| EdgeRegistry {
        local: local.clone(),
        plain_http: *plain,
        ca_pem: plan.edge_ca.clone(),
        insecure: false,
    });
    let images = plan
        .rows
        .iter()
        .map(|r| Reference::parse(&r.source))
        .collect::<Result<Vec<_>, _>>()?;
    let p = registries::plan(&plan.user_data, edge.as_ref(), &images, false)?;
    let mut files = Vec::new();
    let mut notes = Vec::new();
    if let Some(dir) = &a.hosts_dir {
        let opts = registries::HostsOptions {
            credentials: a.hosts_credentials,
        };
        let r = registries::containerd_hosts_with(&p, dir, opts);
        files.extend(r.files);
        notes.extend(r.notes);
    }
    if let Some(path) = &a.k3s_registries {
        let r = registries::k3s_registries(&p, path);
        files.extend(r.files);
        notes.extend(r.notes);
    }
    berth_node::files::write_all(&files)?;
    notes.sort();
    notes.dedup();
    for f in &files {
        eprintln!("wrote {}", f.path.display());
    }
    for n in notes {
        eprintln!("note: {n}");
    }
    Ok(())
}

/// Progress on stderr: a line per finished image (and a byte count on a terminal).
struct Progress {
    enabled: bool,
    total: usize,
    done: Arc<AtomicUsize>,
    bytes: Arc<Mutex<u64>>,
}

impl Progress {
    fn new(terminal: bool, total: usize) -> Progress {
        Progress {
            enabled: terminal,
            total,
            done: Arc::new(AtomicUsize::new(0)),
            bytes: Arc::new(Mutex::new(0)),
        }
    }

    fn sink(&self) -> EventSink {
        let (done, total, bytes, terminal) = (
            self.done.clone(),
            self.total,
            self.bytes.clone(),
            self.enabled,
        );
        Arc::new(move |e: Event| match e {
            Event::BlobProgress { bytes: n, .. } if terminal => {
                if let Ok(mut b) = bytes.lock() {
                    *b += n;
                    eprint!("\r{:.1} MB transferred ", *b as f64 / 1e6);
                }
            }
            Event::ImageDone {
                target,
                status,
                error,
                ..
            } => {
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                let word = match status {
                    ImageStatus::Copied => "imported",
                    ImageStatus::Present => "present",
                    ImageStatus::Failed => "FAILED",
                };
                let tail = error.map(|e| format!(": {e}")).unwrap_or_default();
                eprintln!(
                    "{}[{n}/{total}] {word} {target}{tail}",
                    if terminal { "\r" } else { "" }
                );
            }
            _ => {}
        })
    }

    fn finish(&self) {}
}

/// One image of `berth agent status`.
#[derive(Serialize)]
struct StatusRow {
    source: String,
    role: String,
    /// Where it is taken from (the rewritten target).
    target: String,
    in_containerd: bool,
    /// The containerd name found (the source name, else the target name).
    name: Option<String>,
    digest: Option<String>,
    unpacked: bool,
    problem: Option<String>,
    /// Whether the edge registry holds it (only with --edge-registry).
    edge_registry: Option<EdgeState>,
}

#[derive(Serialize)]
struct EdgeState {
    present: bool,
    digest: Option<String>,
    error: Option<String>,
}

fn status(a: StatusArgs) -> Result<ExitCode, Failure> {
    let plan = agent_plan(&a.plan)?;
    let opts = options(&a.containerd)?;
    let rt = runtime()?;
    let cd = rt.block_on(Containerd::connect(opts))?;
    let client = match &plan.edge {
        Some(_) => Some(Client::new(plan.configs.clone()).map_err(|e| anyhow!("{e}"))?),
        None => None,
    };
    let mut rows = Vec::new();
    let mut seen = BTreeSet::new();
    for r in &plan.rows {
        if !seen.insert(r.source.clone()) {
            continue;
        }
        let mut found = None;
        for name in [&r.source, &r.target] {
            if let Some(s) = rt.block_on(image_state(&cd, name))? {
                found = Some(s);
                break;
            }
        }
        let edge = match (&client, &plan.edge) {
            (Some(c), Some(host)) => {
                let t = Reference::parse(&r.target)?;
                if t.domain() != host {
                    Some(EdgeState {
                        present: false,
                        digest: None,
                        error: Some(
                            "the rewrite does not send this image to the edge registry".into(),
                        ),
                    })
                } else {
                    let reference = t
                        .digest()
                        .map(|d| d.to_string())
                        .or_else(|| t.tag().map(str::to_string))
                        .unwrap_or_else(|| "latest".into());
                    Some(
                        match rt
                            .block_on(c.registry(t.domain()).head_manifest(t.path(), &reference))
                        {
                            Ok(Some(h)) => EdgeState {
                                present: true,
                                digest: h.digest.map(|d| d.to_string()),
                                error: None,
                            },
                            Ok(None) => EdgeState {
                                present: false,
                                digest: None,
                                error: None,
                            },
                            Err(e) => EdgeState {
                                present: false,
                                digest: None,
                                error: Some(e.to_string()),
                            },
                        },
                    )
                }
            }
            _ => None,
        };
        rows.push(StatusRow {
            source: r.source.clone(),
            role: crate::plan::json_word(&r.role),
            target: r.target.clone(),
            in_containerd: found.is_some(),
            name: found.as_ref().map(|s| s.record.name.clone()),
            digest: found.as_ref().map(|s| s.record.digest.to_string()),
            unpacked: found.as_ref().is_some_and(|s| s.unpacked),
            problem: found.as_ref().and_then(|s| s.problem.clone()),
            edge_registry: edge,
        });
    }
    let missing = rows
        .iter()
        .filter(|r| !r.in_containerd || !r.unpacked)
        .count();
    match a.output {
        Output::Json => {
            #[derive(Serialize)]
            struct Out<'a> {
                images: &'a [StatusRow],
            }
            println!("{}", serde_json::to_string_pretty(&Out { images: &rows })?);
        }
        Output::Table => {
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let state = match (r.in_containerd, r.unpacked) {
                        (true, true) => "yes".to_string(),
                        (true, false) => {
                            format!("incomplete ({})", r.problem.clone().unwrap_or_default())
                        }
                        (false, _) => "no".to_string(),
                    };
                    let mut row = vec![
                        state,
                        r.name.clone().unwrap_or_else(|| r.source.clone()),
                        r.digest.clone().unwrap_or_default(),
                        r.target.clone(),
                    ];
                    if let Some(e) = &r.edge_registry {
                        row.push(match (&e.error, e.present) {
                            (Some(err), _) => format!("error: {err}"),
                            (None, true) => "yes".into(),
                            (None, false) => "no".into(),
                        });
                    }
                    row
                })
                .collect();
            let mut headers = vec!["IN CONTAINERD", "IMAGE", "DIGEST", "FROM"];
            if plan.edge.is_some() {
                headers.push("EDGE REGISTRY");
            }
            print_table(&headers, &table);
        }
    }
    eprintln!(
        "{} of {} image(s) in containerd {} namespace {}",
        rows.len() - missing,
        rows.len(),
        cd.socket().display(),
        cd.namespace()
    );
    Ok(if missing > 0 {
        ExitCode::from(EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_registry_urls() {
        assert_eq!(
            edge_host("https://edge:5000/").unwrap(),
            ("edge:5000".into(), false)
        );
        assert_eq!(
            edge_host("http://10.0.0.1:5000").unwrap(),
            ("10.0.0.1:5000".into(), true)
        );
        assert_eq!(
            edge_host("edge.local").unwrap(),
            ("edge.local".into(), false)
        );
        assert!(edge_host("ftp://x").is_err());
    }

    #[test]
    fn the_edge_trusts_its_own_ca() {
        let ud = UserData::parse(
            "#cloud-config\nstylus:\n  externalRegistries:\n    registries:\n      - domain: ext.example.com\n",
            "user-data.yaml",
        )
        .unwrap();
        let c = registry_configs(&ud, Some(("edge:5000", false)), Some("EDGE-CA"));
        let (_, edge) = c.select("edge:5000", "spectro-images/x").unwrap();
        assert_eq!(edge.ca_pems, vec!["EDGE-CA".to_string()]);
        assert!(!edge.insecure);
        let c = registry_configs(&ud, Some(("edge:5000", true)), None);
        let (_, edge) = c.select("edge:5000", "x").unwrap();
        assert!(edge.insecure && edge.ca_pems.is_empty());
    }
}
