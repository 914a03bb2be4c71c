//! `berth mirror`, `berth verify`, `berth copy`: the transfer engine on the plan, or on two
//! ends; the progress display of every command that moves images.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use berth_client::{Access, AuthFiles, RegistryConfigs};
use berth_node::signatures;
use berth_plan::Plan;
use berth_progress::{Display, Progress};
use berth_transfer::{
    CancellationToken, CopyOptions, EventSink, ImageReport, ImageStatus, Report, Side,
    VerifyReport, VerifyResult,
};
use clap::Args;
use serde_json::json;

use crate::inputs::{self, EdgeLogin};
use crate::{RedirectArgs, exit_status, json_out, json_word, runtime, show};

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
    /// Copy (verify) what is attached to each image: signatures, attestations, SBOMs, referrers.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    referrers: bool,
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
    inputs: inputs::ProfileInputs,
    #[command(flatten)]
    redirect: RedirectArgs,
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    edge_login: EdgeLogin,
    /// Parallel transfers or checks, across images and blobs.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: u16,
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
/// The plan, the engine's options, and the profiles read for it (verify lints them).
fn planned(
    args: &PlanArgs,
    command: Option<&str>,
) -> Result<(Plan, CopyOptions, Vec<berth_profile::Profile>)> {
    let (rewriter, destinations) = args.redirect.targets(&args.edge_login, command, false)?;
    let (profiles, charts) = args.inputs.read(&args.profiles, None)?;
    let plan = Plan::build_with(&profiles, &charts, &rewriter)?;
    let sources = args.source.configs(&plan.source_hosts())?;
    let mut options = CopyOptions::new(args.jobs.into(), sources, destinations);
    options.referrers = args.source.referrers;
    Ok((plan, options, profiles))
}

pub fn mirror(args: MirrorArgs) -> Result<ExitCode> {
    let (plan, mut options, _) = planned(&args.plan, Some("mirror"))?;
    options.keep_going = args.keep_going;
    plan.findings.iter().for_each(|f| eprintln!("{f}"));
    let moves = plan.moves();
    if args.dry_run {
        let row = |(s, t): &(String, String)| vec![s.clone(), t.clone()];
        let rows: Vec<_> = moves.iter().map(row).collect();
        let pair = |r: &Vec<String>| json!({"source": r[0], "target": r[1]});
        let images: Vec<_> = rows.iter().map(pair).collect();
        show(&json!({ "images": images }), &["SOURCE", "TARGET"], rows)?;
        say!("dry run: {} image(s) and chart(s) to copy", moves.len());
        return Ok(ExitCode::SUCCESS);
    }
    let cancel = options.cancel.clone();
    run_engine(moves.len(), cancel, |sink| {
        berth_transfer::mirror(&plan, options, sink)
    })
}

/// Runs the engine's `work` on `images` images with the progress display, Ctrl-C cancelling
/// `cancel` (the engine aborts its uploads and cancels their sessions; a second Ctrl-C exits
/// at once), and prints the report. Exit 130 after Ctrl-C (the report says what was
/// copied), else 1 when an image failed.
fn run_engine<F: Future<Output = Report>>(
    images: usize,
    cancel: CancellationToken,
    work: impl FnOnce(Option<EventSink>) -> F,
) -> Result<ExitCode> {
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
    let progress = progress(images, "copied", false);
    let work = work(Some(progress.sink()));
    let report = runtime()?.block_on(async {
        tokio::spawn(on_ctrl_c);
        work.await
    });
    progress.finish();
    print_report(&report)?;
    if cancel.is_cancelled() {
        eprintln!("berth: interrupted, the uploads in flight cancelled; a rerun copies the rest");
        return Ok(ExitCode::from(crate::EXIT_INTERRUPTED));
    }
    Ok(exit_status(report.failed() > 0))
}

const REPORT_HEADERS: &[&str] = &["STATUS", "SOURCE", "TARGET", "DIGEST"];

/// The engine's report: a table (errors on stderr) or JSON, and a summary on stderr.
pub fn print_report(report: &Report) -> Result<()> {
    let row = |i: &ImageReport| {
        let (s, t, d) = (i.source.clone(), i.target.clone(), i.digest.clone());
        vec![json_word(&i.status), s, t, d.unwrap_or_default()]
    };
    let rows = report.all().map(row).collect();
    show(report, REPORT_HEADERS, rows)?;
    let failed = |i: &&ImageReport| i.status != ImageStatus::Cancelled;
    let table = report.all().filter(|_| !json_out());
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
    let (plan, options, profiles) = planned(&args.plan, None)?;
    let findings = plan.findings_with_lints(&profiles)?;
    let work = berth_transfer::verify_plan(&plan, &options, args.deep);
    let report = VerifyReport {
        findings,
        ..runtime()?.block_on(work)
    };
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
        #[serde(flatten)]
        report: &'a VerifyReport,
        signatures: &'a [berth_policy::Decision],
    }
    let row = |r: &VerifyResult| vec![json_word(&r.status), r.target.clone(), r.detail()];
    let rows = report.all().map(row).collect();
    let out = Out {
        report: &report,
        signatures: &signed,
    };
    show(&out, &["STATUS", "TARGET", "MISSING"], rows)?;
    if !json_out() {
        report.findings.iter().for_each(|f| eprintln!("{f}"));
        let word = |d: &berth_policy::Decision| d.verdict.word();
        signed.iter().for_each(|d| eprintln!("{}: {d}", word(d)));
    }
    eprint!("{report}");
    if report.missing() > 0 {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let cmd = berth_transfer::mirror_command(&args);
        eprintln!("to copy what is missing, run: {cmd}");
    }
    Ok(exit_status(
        report.failed() || signed.iter().any(|d| !d.allowed()),
    ))
}

pub fn copy(args: CopyArgs) -> Result<ExitCode> {
    let src = berth_transfer::endpoint(&args.src, Side::Source)?;
    let dst = berth_transfer::endpoint(&args.dst, Side::Destination)?;
    let d = &args.dest;
    let (creds, dir) = (d.dest_creds.clone(), d.dest_cert_dir.clone());
    let access = Access::new(creds, AuthFiles::None, dir, d.dest_tls_verify);
    let destinations = access.configs(&dst.registry_hosts()).context("--dest-*")?;
    let destinations = destinations.with_side(berth_client::Side::Destination);
    let sources = args.source.configs(&src.registry_hosts())?;
    let mut options = CopyOptions::new(args.jobs.into(), sources, destinations);
    options.referrers = args.source.referrers;
    let cancel = options.cancel.clone();
    run_engine(1, cancel, |sink| {
        berth_transfer::copy_images(vec![(src, dst)], options, sink)
    })
}

/// Progress on stderr while `images` images move (berth-progress): on a terminal, a bar of
/// the bytes moved with a line per finished image above it; without a terminal, those lines
/// only where they are the command's log (`log`: the agent).
pub fn progress(images: usize, copied: &'static str, log: bool) -> Progress {
    let bar = !crate::json_out() && !crate::quiet() && std::io::stderr().is_terminal();
    let lines = bar || (log && !crate::quiet());
    Progress::new(images, copied, Display { bar, lines })
}
