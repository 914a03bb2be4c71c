//! `berth mirror`, `berth verify`, `berth copy`: the transfer engine on the plan, or on two ends.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use berth_client::{Access, AuthFiles, RegistryConfigs};
use berth_node::signatures;
use berth_plan::{Plan, PlanEntry};
use berth_profile::Finding;
use berth_transfer::{
    CancellationToken, CopyOptions, ImageReport, ImageStatus, Report, Side, VerifyResult,
    VerifySummary,
};
use clap::Args;

use crate::inputs::{self, EdgeCreds, EdgeTls};
use crate::plan::print_findings;
use crate::progress::Progress;
use crate::{Output, RedirectArgs, exit_status, json_word, runtime, show};

/// How to reach source registries (as skopeo names them).
#[derive(Args, Clone, Default)]
pub struct SourceArgs {
    /// Credentials for source registries: USER:PASS for every source registry, or
    /// REGISTRY=USER:PASS for one (repeatable).
    #[arg(long = "src-creds", value_name = "[REGISTRY=]USER:PASS")]
    src_creds: Vec<String>,
    /// A containers auth.json / Docker config.json with source credentials. Default: the
    /// first of $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json,
    /// ~/.config/containers/auth.json, ~/.docker/config.json that exists.
    #[arg(long = "src-authfile", value_name = "FILE")]
    src_authfile: Option<PathBuf>,
    /// CA certificates for source registries: DIR/*.crt for every source, DIR/HOST[:PORT]/*.crt
    /// for one (the containers cert-dir convention).
    #[arg(long = "src-cert-dir", value_name = "DIR")]
    src_cert_dir: Option<PathBuf>,
    /// Verify the TLS certificates of source registries. `false` also allows plain HTTP.
    #[arg(long = "src-tls-verify", value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    src_tls_verify: bool,
}

impl SourceArgs {
    /// These options as a command line repeats them (credentials by name only).
    fn repeated(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.src_creds.is_empty() {
            out.push("--src-creds USER:PASS".to_string());
        }
        if let Some(f) = &self.src_authfile {
            out.push(format!("--src-authfile {}", f.display()));
        }
        if let Some(d) = &self.src_cert_dir {
            out.push(format!("--src-cert-dir {}", d.display()));
        }
        if !self.src_tls_verify {
            out.push("--src-tls-verify=false".to_string());
        }
        out
    }
}

/// How to reach `berth copy`'s destination registry (as skopeo names it).
#[derive(Args, Clone, Default)]
pub struct DestArgs {
    /// Credentials for the destination registry: USER:PASS, or REGISTRY=USER:PASS
    /// (repeatable).
    #[arg(long = "dest-creds", value_name = "[REGISTRY=]USER:PASS")]
    dest_creds: Vec<String>,
    /// CA certificates for the destination: DIR/*.crt or DIR/HOST[:PORT]/*.crt.
    #[arg(long = "dest-cert-dir", value_name = "DIR")]
    dest_cert_dir: Option<PathBuf>,
    /// Verify the destination's TLS certificate. `false` also allows plain HTTP.
    #[arg(long = "dest-tls-verify", value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    dest_tls_verify: bool,
}

/// Which images go where: profiles, the rewrite settings, and how to reach both ends.
#[derive(Args)]
pub struct PlanArgs {
    /// Cluster profile files (YAML or JSON). Repeatable: `--profile A B` or `--profile A --profile B`.
    #[arg(long = "profile", value_name = "FILE", required = true, num_args = 1.., env = "BERTH_PROFILE")]
    profiles: Vec<PathBuf>,
    #[command(flatten)]
    redirect: RedirectArgs,
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    edge_tls: EdgeTls,
    #[command(flatten)]
    edge_creds: EdgeCreds,
    /// Parallel transfers or checks, across images and blobs.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: u16,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

#[derive(Args)]
pub struct MirrorArgs {
    #[command(flatten)]
    plan: PlanArgs,
    /// Print the plan (source → target) and copy nothing.
    #[arg(long)]
    dry_run: bool,
    /// Go on with the other images after one fails (the exit status is still 1).
    #[arg(long)]
    keep_going: bool,
}

#[derive(Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    plan: PlanArgs,
    /// Also check that every blob of every manifest is at the target.
    #[arg(long)]
    deep: bool,
    /// Also report each image's signature state under this policy (docs/policy.md).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
}

#[derive(Args)]
pub struct CopyArgs {
    /// Source: docker://REF, oci:DIR[:REF], oci-archive:FILE[:REF] or docker-archive:FILE[:REF].
    #[arg(value_name = "SRC")]
    src: String,
    /// Destination, in the same transports.
    #[arg(value_name = "DST")]
    dst: String,
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    dest: DestArgs,
    /// Parallel blob transfers.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: u16,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

impl SourceArgs {
    /// Registry settings for these source hosts.
    pub fn configs(&self, hosts: &BTreeSet<String>) -> Result<RegistryConfigs> {
        let files = AuthFiles::file_or_usual(self.src_authfile.clone());
        let (creds, dir) = (self.src_creds.clone(), self.src_cert_dir.clone());
        let access = Access::new(creds, files, dir, self.src_tls_verify);
        access.configs(hosts).context("source registries (--src-*)")
    }
}

/// The plan of `args`, and how to reach the registries on both ends.
fn planned(args: &PlanArgs, command: Option<&str>) -> Result<(Plan, CopyOptions)> {
    let (tls, creds) = (&args.edge_tls, &args.edge_creds);
    let (rewriter, destinations) = args.redirect.targets(tls, creds, command)?;
    let plan = Plan::build(&inputs::profiles(&args.profiles)?, &rewriter)?;
    let sources = args.source.configs(&plan.source_hosts())?;
    Ok((plan, copy_options(args.jobs, sources, destinations)))
}

/// `jobs` parallel transfers with these settings of the two ends.
pub fn copy_options(jobs: u16, sources: RegistryConfigs, dests: RegistryConfigs) -> CopyOptions {
    CopyOptions::new(usize::from(jobs), sources, dests)
}

pub fn mirror(args: MirrorArgs) -> Result<ExitCode> {
    let output = args.plan.output;
    let (plan, mut options) = planned(&args.plan, Some("mirror"))?;
    options.keep_going = args.keep_going;
    print_findings(&plan.findings);
    let (moved, _) = plan.split_redirected();
    if args.dry_run {
        let pair = |e: &&PlanEntry| {
            BTreeMap::from([
                ("source", e.source.to_string()),
                ("target", e.target.to_string()),
            ])
        };
        let images: Vec<BTreeMap<_, _>> = moved.iter().map(pair).collect();
        let rows = images.iter().map(|p| p.values().cloned().collect());
        let rows = rows.collect();
        let json = BTreeMap::from([("images", &images)]);
        show(output, &json, &["SOURCE", "TARGET"], rows)?;
        say!("dry run: {} image(s) would be copied", moved.len());
        return Ok(ExitCode::SUCCESS);
    }
    let progress = Progress::new(output, moved.len(), "copied", false);
    let (sink, cancel) = (Some(progress.sink()), options.cancel.clone());
    let report = interruptible(&cancel, berth_transfer::mirror(&plan, options, sink))?;
    progress.finish();
    print_report(&report, output)?;
    Ok(finished(&report, &cancel))
}

/// Runs the engine's `work`, Ctrl-C cancelling `cancel` (the engine aborts its uploads and
/// cancels their sessions); a second Ctrl-C exits at once.
fn interruptible(cancel: &CancellationToken, work: impl Future<Output = Report>) -> Result<Report> {
    let c = cancel.clone();
    let on_ctrl_c = async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if c.is_cancelled() {
                std::process::exit(crate::EXIT_INTERRUPTED.into());
            }
            eprintln!("berth: interrupted: cancelling the uploads in flight (Ctrl-C again quits)");
            c.cancel();
        }
    };
    Ok(runtime()?.block_on(async {
        tokio::spawn(on_ctrl_c);
        work.await
    }))
}

/// 130 after Ctrl-C (the report printed says what was copied), else 1 when an image failed.
fn finished(report: &Report, cancel: &CancellationToken) -> ExitCode {
    if cancel.is_cancelled() {
        eprintln!("berth: interrupted, the uploads in flight cancelled; a rerun copies the rest");
        return ExitCode::from(crate::EXIT_INTERRUPTED);
    }
    exit_status(report.failed() > 0)
}

const REPORT_HEADERS: &[&str] = &["STATUS", "SOURCE", "TARGET", "DIGEST"];

/// The engine's report: a table (errors on stderr) or JSON, and a summary on stderr.
pub fn print_report(report: &Report, output: Output) -> Result<()> {
    let row = |i: &ImageReport| {
        let (s, t, d) = (i.source.clone(), i.target.clone(), i.digest.clone());
        vec![json_word(&i.status), s, t, d.unwrap_or_default()]
    };
    let rows = report.images.iter().map(row).collect();
    show(output, report, REPORT_HEADERS, rows)?;
    let failed = |i: &&ImageReport| i.status != ImageStatus::Cancelled;
    let table = report.images.iter().filter(|_| output == Output::Table);
    for i in table.filter(failed) {
        if let Some(e) = &i.error {
            eprintln!("error: {}: {e}", i.source);
        }
    }
    say!("{report}");
    Ok(())
}

pub fn verify(args: VerifyArgs) -> Result<ExitCode> {
    if let Some(p) = &args.plan.redirect.user_data {
        inputs::refuse_empty(&inputs::user_data(p)?, "verify")?;
    }
    let (plan, options) = planned(&args.plan, None)?;
    let findings = plan.findings_with_lints(&inputs::profiles(&args.plan.profiles)?)?;
    let results = runtime()?.block_on(berth_transfer::verify_plan(&plan, &options, args.deep));
    let pairs = plan
        .entries
        .iter()
        .map(|e| (e.source.clone(), e.target.clone()));
    let configs = options.destination_registries.clone();
    let signed = match &args.policy {
        Some(p) => runtime()?.block_on(signatures::check_all(p, configs, pairs.collect()))?,
        None => Vec::new(),
    };
    #[derive(serde::Serialize)]
    struct Out<'a> {
        images: &'a [VerifyResult],
        findings: &'a [Finding],
        signatures: &'a [berth_policy::Decision],
    }
    let row = |r: &VerifyResult| vec![json_word(&r.status), r.target.clone(), r.detail()];
    let (images, output) = (&results, args.plan.output);
    let json = Out {
        images,
        findings: &findings,
        signatures: &signed,
    };
    let rows = results.iter().map(row).collect();
    show(output, &json, &["STATUS", "TARGET", "MISSING"], rows)?;
    if output == Output::Table {
        print_findings(&findings);
        signed
            .iter()
            .for_each(|d| eprintln!("{}: {d}", d.verdict.word()));
    }
    let summary = VerifySummary {
        results: &results,
        deep: args.deep,
    };
    eprint!("{summary}");
    if summary.missing() > 0 {
        let cmd = args.plan.mirror_command();
        eprintln!("to copy what is missing, run: {cmd}");
    }
    Ok(exit_status(
        summary.failed() || signed.iter().any(|d| !d.allowed()),
    ))
}

impl PlanArgs {
    /// `berth mirror` with these options (credentials by name only).
    fn mirror_command(&self) -> String {
        let (edge, tls) = (&self.redirect.edge, &self.edge_tls);
        let mut cmd = vec!["berth mirror".to_string()];
        let path = |flag: &str, p: &PathBuf| format!("--{flag} {}", p.display());
        cmd.extend(self.profiles.iter().map(|p| path("profile", p)));
        cmd.extend(self.redirect.user_data.iter().map(|u| path("user-data", u)));
        let (url, project) = (&edge.edge_registry, &edge.edge_project);
        cmd.extend(url.iter().map(|v| format!("--edge-registry {v}")));
        cmd.extend(project.iter().map(|v| format!("--edge-project {v}")));
        cmd.extend(self.source.repeated());
        cmd.extend(tls.edge_ca.iter().map(|c| path("edge-ca", c)));
        cmd.extend(tls.edge_insecure.then(|| "--edge-insecure".into()));
        let creds = !self.edge_creds.edge_creds.is_empty();
        cmd.extend(creds.then(|| "--edge-creds USER:PASS".into()));
        cmd.join(" ")
    }
}

pub fn copy(args: CopyArgs) -> Result<ExitCode> {
    let src = berth_transfer::endpoint(&args.src, Side::Source)?;
    let dst = berth_transfer::endpoint(&args.dst, Side::Destination)?;
    let d = &args.dest;
    let (creds, dir) = (d.dest_creds.clone(), d.dest_cert_dir.clone());
    let access = Access::new(creds, AuthFiles::None, dir, d.dest_tls_verify);
    let destinations = access.configs(&dst.registry_hosts()).context("--dest-*")?;
    let destinations = destinations.with_side(berth_client::Side::Destination);
    let options = copy_options(
        args.jobs,
        args.source.configs(&src.registry_hosts())?,
        destinations,
    );
    let progress = Progress::new(args.output, 1, "copied", false);
    let (sink, cancel) = (Some(progress.sink()), options.cancel.clone());
    let work = berth_transfer::copy_images(vec![(src, dst)], options, sink);
    let report = interruptible(&cancel, work)?;
    progress.finish();
    print_report(&report, args.output)?;
    Ok(finished(&report, &cancel))
}
