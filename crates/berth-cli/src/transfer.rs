//! `berth mirror`, `berth verify`, `berth copy`: the transfer engine, driven from profiles
//! and user data (mirror, verify) or from two transport references (copy).

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::{Context, anyhow, bail};
use berth_client::{Credentials, RegistryConfig, RegistryConfigs, loaders};
use berth_reference::Reference;
use berth_rewrite::Rewriter;
use berth_transfer::{
    CopyOptions, Endpoint, Event, EventSink, ImageStatus, Report, VerifyResult, VerifyStatus,
};
use berth_userdata::UserData;
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::plan::{PlannedImage, finding_line, plan, print_table};
use crate::{EXIT_FINDINGS, Failure, Output, RedirectArgs, inputs};

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

/// How to reach destination registries other than the ones in user data (the edge registry,
/// `berth copy` targets).
#[derive(Args, Clone, Default)]
pub struct DestArgs {
    /// Credentials for the destination registry: USER:PASS, or REGISTRY=USER:PASS.
    #[arg(long = "dest-creds", value_name = "[REGISTRY=]USER:PASS")]
    dest_creds: Vec<String>,
    /// CA certificates for the destination: DIR/*.crt (containers cert-dir convention).
    #[arg(long = "dest-cert-dir", value_name = "DIR")]
    dest_cert_dir: Option<PathBuf>,
    /// Verify the destination's TLS certificate. `false` also allows plain HTTP.
    #[arg(long = "dest-tls-verify", value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    dest_tls_verify: bool,
}

/// Which images go where: profiles, the rewrite settings, and how to reach both ends.
#[derive(Args)]
pub struct PlanArgs {
    /// Cluster profile files (YAML or JSON).
    #[arg(long = "profile", value_name = "FILE", required = true)]
    profiles: Vec<PathBuf>,
    #[command(flatten)]
    redirect: RedirectArgs,
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    dest: DestArgs,
    /// Parallel transfers or checks, across images and blobs.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: u16,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Table)]
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
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

/// Splits `[REGISTRY=]USER:PASS`. A scope is recognized when the part before the first `=`
/// looks like a registry host (has a `.`, or is `localhost[:PORT]`).
fn scoped_creds(s: &str) -> anyhow::Result<(Option<String>, Credentials)> {
    let (scope, creds) = match s.split_once('=') {
        Some((reg, rest))
            if !reg.is_empty()
                && (reg.contains('.') || reg == "localhost" || reg.starts_with("localhost:")) =>
        {
            (Some(reg.to_string()), rest)
        }
        _ => (None, s),
    };
    let c = loaders::parse_creds(creds).map_err(|e| anyhow!("--src-creds/--dest-creds: {e}"))?;
    Ok((scope, c))
}

impl SourceArgs {
    /// Registry settings for these source hosts.
    pub(crate) fn configs(&self, hosts: &BTreeSet<String>) -> anyhow::Result<RegistryConfigs> {
        let mut configs = RegistryConfigs::new();
        let mut all_cas = Vec::new();
        let mut per_host_cas: BTreeMap<String, Vec<String>> = BTreeMap::new();
        if let Some(dir) = &self.src_cert_dir {
            all_cas = loaders::load_cert_dir(dir).unwrap_or_default();
            for h in hosts {
                let sub = dir.join(h);
                if sub.is_dir() {
                    per_host_cas.insert(
                        h.clone(),
                        loaders::load_cert_dir(&sub)
                            .with_context(|| format!("--src-cert-dir {}", sub.display()))?,
                    );
                }
            }
            if all_cas.is_empty() && per_host_cas.is_empty() {
                bail!(
                    "--src-cert-dir {}: no *.crt certificates found (put CA certificates in DIR/*.crt or DIR/HOST[:PORT]/*.crt)",
                    dir.display()
                );
            }
        }
        let file_creds = match &self.src_authfile {
            Some(f) => loaders::read_auth_file(f)
                .with_context(|| format!("--src-authfile {}", f.display()))?,
            None => {
                loaders::load_auth_files(&loaders::AuthFileSources::from_env()).unwrap_or_default()
            }
        };
        let mut flag_creds = Vec::new();
        for c in &self.src_creds {
            flag_creds.push(scoped_creds(c)?);
        }
        for h in hosts {
            let mut cfg = RegistryConfig {
                insecure: !self.src_tls_verify,
                ..RegistryConfig::default()
            };
            cfg.ca_pems.extend(all_cas.iter().cloned());
            cfg.ca_pems
                .extend(per_host_cas.get(h).cloned().unwrap_or_default());
            cfg.credentials = flag_creds
                .iter()
                .find(|(s, _)| s.as_deref() == Some(h.as_str()))
                .or_else(|| flag_creds.iter().find(|(s, _)| s.is_none()))
                .map(|(_, c)| c.clone())
                .or_else(|| {
                    file_creds
                        .iter()
                        .find(|(k, _)| {
                            k == h || (h == "docker.io" && k.contains("index.docker.io"))
                        })
                        .map(|(_, c)| c.clone())
                });
            configs.insert(h, cfg);
        }
        Ok(configs)
    }
}

impl DestArgs {
    pub(crate) fn apply(&self, configs: &mut RegistryConfigs, host: &str) -> anyhow::Result<()> {
        let cas = match &self.dest_cert_dir {
            Some(d) => loaders::load_cert_dir(d)
                .with_context(|| format!("--dest-cert-dir {}", d.display()))?,
            None => Vec::new(),
        };
        let mut creds = None;
        for c in &self.dest_creds {
            let (scope, c) = scoped_creds(c)?;
            if scope.is_none() || scope.as_deref() == Some(host) {
                creds = Some(c);
            }
        }
        let e = configs.entry(host);
        if !self.dest_tls_verify {
            e.insecure = true;
        }
        e.ca_pems.extend(cas);
        if creds.is_some() {
            e.credentials = creds;
        }
        Ok(())
    }
}

/// Destination registry settings from user data: each registry entry keyed by its domain.
pub(crate) fn user_data_configs(ud: Option<&UserData>) -> RegistryConfigs {
    let mut configs = RegistryConfigs::new();
    for r in ud.map(|u| u.registries.as_slice()).unwrap_or_default() {
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
    configs
}

struct Planned {
    rows: Vec<PlannedImage>,
    findings: Vec<berth_profile::Finding>,
    options: CopyOptions,
    pairs: Vec<(Endpoint, Endpoint)>,
}

fn planned(args: &PlanArgs) -> Result<Planned, Failure> {
    let PlanArgs {
        redirect,
        source,
        dest,
        jobs,
        ..
    } = args;
    let profiles = inputs::profiles(&args.profiles)?;
    let ud = match &redirect.user_data {
        Some(p) => Some(inputs::user_data(p)?),
        None => None,
    };
    let rewriter: Rewriter = inputs::rewriter(redirect, false)?;
    let (rows, findings) = plan(&profiles, &rewriter)?;
    let mut pairs = Vec::new();
    let mut hosts = BTreeSet::new();
    for r in &rows {
        let s = Reference::parse(&r.source)?;
        let t = Reference::parse(&r.target)?;
        hosts.insert(s.domain().to_string());
        pairs.push((Endpoint::Registry(s), Endpoint::Registry(t)));
    }
    let mut dst = user_data_configs(ud.as_ref());
    if let Some(local) = rewriter.local() {
        dest.apply(&mut dst, local.host())?;
    } else if !dest.dest_creds.is_empty() || dest.dest_cert_dir.is_some() || !dest.dest_tls_verify {
        return Err(anyhow!(
            "--dest-creds, --dest-cert-dir and --dest-tls-verify apply to the edge registry: give --local-registry (the external registry's settings come from --user-data)"
        )
        .into());
    }
    let options = CopyOptions {
        jobs: usize::from(*jobs),
        source_registries: source.configs(&hosts)?,
        destination_registries: dst,
        ..CopyOptions::default()
    };
    Ok(Planned {
        rows,
        findings,
        options,
        pairs,
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub fn mirror(args: MirrorArgs) -> Result<ExitCode, Failure> {
    let output = args.plan.output;
    if args.plan.redirect.user_data.is_none() && args.plan.redirect.local_registry.is_none() {
        return Err(anyhow!(
            "berth mirror needs --user-data (the external registry) or --local-registry (the edge registry) to know where images go"
        )
        .into());
    }
    let mut p = planned(&args.plan)?;
    p.options.keep_going = args.keep_going;
    // Images that nothing redirects have nowhere to go.
    let (pairs, unmoved): (Vec<_>, Vec<_>) = p.pairs.into_iter().partition(|(s, t)| s != t);
    for (s, _) in &unmoved {
        eprintln!("note: {s} is not redirected by the user data's rules; nothing to copy");
    }
    if args.dry_run {
        let rows: Vec<Vec<String>> = p
            .rows
            .iter()
            .filter(|r| r.source != r.target)
            .map(|r| vec![r.source.clone(), r.target.clone()])
            .collect();
        match output {
            Output::Json => {
                #[derive(Serialize)]
                struct Dry<'a> {
                    images: Vec<BTreeMap<&'a str, &'a str>>,
                }
                let images = p
                    .rows
                    .iter()
                    .filter(|r| r.source != r.target)
                    .map(|r| {
                        BTreeMap::from([
                            ("source", r.source.as_str()),
                            ("target", r.target.as_str()),
                        ])
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&Dry { images })?);
            }
            Output::Table => print_table(&["SOURCE", "TARGET"], &rows),
        }
        eprintln!("dry run: {} image(s) would be copied", rows.len());
        return Ok(ExitCode::SUCCESS);
    }
    let total = pairs.len();
    let progress = Progress::new(
        output == Output::Table && std::io::stderr().is_terminal(),
        total,
    );
    let report = runtime()?.block_on(berth_transfer::copy_images(
        pairs,
        p.options,
        Some(progress.sink()),
    ));
    progress.finish();
    print_report(&report, output)?;
    for f in p.findings {
        eprintln!("{}", finding_line(&f));
    }
    Ok(if report.failed() > 0 {
        ExitCode::from(EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    })
}

pub(crate) fn print_report(report: &Report, output: Output) -> anyhow::Result<()> {
    let copied = report
        .images
        .iter()
        .filter(|i| i.status == ImageStatus::Copied)
        .count();
    let present = report
        .images
        .iter()
        .filter(|i| i.status == ImageStatus::Present)
        .count();
    let failed = report.failed();
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(report)?),
        Output::Table => {
            let rows: Vec<Vec<String>> = report
                .images
                .iter()
                .map(|i| {
                    vec![
                        crate::plan::json_word(&i.status),
                        i.source.clone(),
                        i.target.clone(),
                        i.digest.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            print_table(&["STATUS", "SOURCE", "TARGET", "DIGEST"], &rows);
            for i in report.images.iter().filter(|i| i.error.is_some()) {
                eprintln!(
                    "error: {}: {}",
                    i.source,
                    i.error.as_deref().unwrap_or_default()
                );
            }
        }
    }
    let mb = report.bytes as f64 / 1e6;
    eprintln!(
        "images: {copied} copied, {present} already present, {failed} failed; blobs: {} copied, {} skipped, {} mounted; {mb:.1} MB in {:.2} s ({:.1} MB/s)",
        report.blobs.copied,
        report.blobs.skipped,
        report.blobs.mounted,
        report.seconds,
        if report.seconds > 0.0 {
            mb / report.seconds
        } else {
            0.0
        }
    );
    Ok(())
}

pub fn verify(args: VerifyArgs) -> Result<ExitCode, Failure> {
    let output = args.plan.output;
    let p = planned(&args.plan)?;
    let profiles = inputs::profiles(&args.plan.profiles)?;
    let mut findings = berth_profile::lint(&profiles)?;
    findings.retain(|f| {
        !p.findings
            .iter()
            .any(|g| g.rule == f.rule && g.path == f.path && g.layer == f.layer)
    });
    findings.splice(0..0, p.findings.iter().cloned());
    let results: Vec<VerifyResult> =
        runtime()?.block_on(berth_transfer::verify(p.pairs, &p.options, args.deep));
    let bad: Vec<&VerifyResult> = results
        .iter()
        .filter(|r| r.status != VerifyStatus::Present)
        .collect();
    match output {
        Output::Json => {
            #[derive(Serialize)]
            struct Out<'a> {
                images: &'a [VerifyResult],
                findings: &'a [berth_profile::Finding],
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&Out {
                    images: &results,
                    findings: &findings
                })?
            );
        }
        Output::Table => {
            let rows: Vec<Vec<String>> = results
                .iter()
                .map(|r| {
                    vec![
                        crate::plan::json_word(&r.status),
                        r.target.clone(),
                        r.missing.join("; "),
                    ]
                })
                .collect();
            print_table(&["STATUS", "TARGET", "MISSING"], &rows);
            for f in &findings {
                eprintln!("{}", finding_line(f));
            }
        }
    }
    eprintln!(
        "{} of {} image(s) present at their targets{}",
        results.len() - bad.len(),
        results.len(),
        if args.deep { " (blobs checked)" } else { "" }
    );
    if !bad.is_empty() {
        let mut cmd = String::from("berth mirror");
        for p in &args.plan.profiles {
            cmd.push_str(&format!(" --profile {}", p.display()));
        }
        if let Some(u) = &args.plan.redirect.user_data {
            cmd.push_str(&format!(" --user-data {}", u.display()));
        }
        if let Some(l) = &args.plan.redirect.local_registry {
            cmd.push_str(&format!(" --local-registry {l}"));
        }
        eprintln!("to copy what is missing, run: {cmd}");
        return Ok(ExitCode::from(EXIT_FINDINGS));
    }
    Ok(ExitCode::SUCCESS)
}

/// Parses a transport reference.
pub fn endpoint(s: &str, side: crate::archive::Side) -> anyhow::Result<Endpoint> {
    if let Some(r) = s.strip_prefix("docker://") {
        return Ok(Endpoint::Registry(Reference::parse(r)?));
    }
    if let Some(rest) = s.strip_prefix("oci:") {
        let (dir, reference) = split_path_ref(rest);
        return Ok(Endpoint::Layout {
            dir: PathBuf::from(dir),
            reference: reference.unwrap_or("latest").to_string(),
        });
    }
    for t in ["oci-archive:", "docker-archive:"] {
        if s.starts_with(t) {
            return crate::archive::endpoint(s, side);
        }
    }
    bail!(
        "`{s}`: unknown transport; use docker://REF, oci:DIR[:REF], oci-archive:FILE[:REF] or docker-archive:FILE[:REF]"
    )
}

/// `DIR[:REF]`: like skopeo, the directory ends at the first `:`.
pub fn split_path_ref(s: &str) -> (&str, Option<&str>) {
    match s.split_once(':') {
        Some((p, r)) if !r.is_empty() => (p, Some(r)),
        Some((p, _)) => (p, None),
        None => (s, None),
    }
}

pub fn copy(args: CopyArgs) -> Result<ExitCode, Failure> {
    let src = endpoint(&args.src, crate::archive::Side::Source)?;
    let dst = endpoint(&args.dst, crate::archive::Side::Destination)?;
    let mut hosts = BTreeSet::new();
    if let Endpoint::Registry(r) = &src {
        hosts.insert(r.domain().to_string());
    }
    let mut dst_configs = RegistryConfigs::new();
    if let Endpoint::Registry(r) = &dst {
        args.dest.apply(&mut dst_configs, r.domain())?;
    }
    let options = CopyOptions {
        jobs: usize::from(args.jobs),
        source_registries: args.source.configs(&hosts)?,
        destination_registries: dst_configs,
        ..CopyOptions::default()
    };
    let progress = Progress::new(
        args.output == Output::Table && std::io::stderr().is_terminal(),
        1,
    );
    let report = runtime()?.block_on(berth_transfer::copy_images(
        vec![(src, dst)],
        options,
        Some(progress.sink()),
    ));
    progress.finish();
    print_report(&report, args.output)?;
    Ok(if report.failed() > 0 {
        ExitCode::from(EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    })
}

/// Progress bars on a terminal: overall bytes, and one bar per image in flight.
pub(crate) struct Progress {
    multi: MultiProgress,
    overall: ProgressBar,
    images: Arc<Mutex<BTreeMap<usize, ProgressBar>>>,
    enabled: bool,
}

impl Progress {
    pub(crate) fn new(enabled: bool, images: usize) -> Progress {
        let multi = MultiProgress::with_draw_target(if enabled {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        let overall = multi.add(ProgressBar::new(0));
        overall.set_style(
            ProgressStyle::with_template(
                "{prefix:>8} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        overall.set_prefix("total");
        overall.set_message(format!("0/{images} images"));
        Progress {
            multi,
            overall,
            images: Arc::new(Mutex::new(BTreeMap::new())),
            enabled,
        }
    }

    pub(crate) fn sink(&self) -> EventSink {
        let multi = self.multi.clone();
        let overall = self.overall.clone();
        let bars = self.images.clone();
        let done = Arc::new(Mutex::new((0usize, 0usize)));
        Arc::new(move |e: Event| {
            let Ok(mut bars) = bars.lock() else { return };
            match e {
                Event::ImageStarted {
                    image,
                    target,
                    total_bytes,
                    ..
                } => {
                    overall.inc_length(total_bytes);
                    let pb = multi.add(ProgressBar::new(total_bytes));
                    pb.set_style(
                        ProgressStyle::with_template(
                            "  {bar:20} {bytes:>10}/{total_bytes:<10} {msg}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    pb.set_message(target);
                    bars.insert(image, pb);
                }
                Event::BlobProgress { image, bytes, .. } => {
                    overall.inc(bytes);
                    if let Some(pb) = bars.get(&image) {
                        pb.inc(bytes);
                    }
                }
                Event::BlobRestarted {
                    image, discarded, ..
                } => {
                    overall.set_position(overall.position().saturating_sub(discarded));
                    if let Some(pb) = bars.get(&image) {
                        pb.set_position(pb.position().saturating_sub(discarded));
                    }
                }
                Event::BlobDone {
                    image,
                    size,
                    outcome,
                    ..
                } => {
                    if outcome != berth_transfer::BlobOutcome::Copied {
                        overall.inc(size);
                        if let Some(pb) = bars.get(&image) {
                            pb.inc(size);
                        }
                    }
                }
                Event::ImageDone { image, status, .. } => {
                    if let Some(pb) = bars.remove(&image) {
                        pb.finish_and_clear();
                        multi.remove(&pb);
                    }
                    if let Ok(mut d) = done.lock() {
                        d.0 += 1;
                        if status == ImageStatus::Failed {
                            d.1 += 1;
                        }
                        overall.set_message(format!("{} image(s) done, {} failed", d.0, d.1));
                    }
                }
            }
        })
    }

    pub(crate) fn finish(&self) {
        if self.enabled {
            self.overall.finish_and_clear();
        }
    }
}
