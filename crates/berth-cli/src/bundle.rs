//! `berth bundle`: air-gap content bundles (berth-bundle), built from profiles like
//! `berth mirror`, pushed to their rewritten targets through the same transfer engine, served
//! read-only as a registry, or extracted as an OCI layout for the agent to preload.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use berth_bundle::{BuildOptions, BundleError, Extracted, ProfileFile, ServeOptions};
use berth_client::RegistryConfigs;
use berth_reference::Reference;
use berth_rewrite::{LocalRegistry, Rewriter};
use berth_transfer::CopyOptions;
use clap::{Args, Subcommand};
use serde::Serialize;

use crate::plan::print_table;
use crate::transfer::{DestArgs, SourceArgs};
use crate::{EXIT_FINDINGS, Failure, Output, RedirectArgs, inputs};

/// `berth bundle ...`
#[derive(Subcommand)]
pub enum BundleCommand {
    /// Build a bundle (.tar.zst): every image of the profiles with all its platforms (or
    /// those of --platform) as one OCI image layout, the profiles, and bundle.json. Same
    /// inputs, same bytes.
    Build(BuildArgs),
    /// Print what a bundle holds (reads only its first entry).
    Inspect(InspectArgs),
    /// Re-hash every blob and check every manifest's references; exit 1 naming the damaged
    /// entry.
    Verify(VerifyArgs),
    /// Copy every image of a bundle to its rewritten target (as `berth mirror` does).
    Push(PushArgs),
    /// Serve a bundle read-only as an OCI registry (plain HTTP).
    Serve(ServeArgs),
    /// Extract a bundle as an OCI image layout directory (verified; nothing is written
    /// unless everything checks out).
    Extract(ExtractArgs),
    /// Make an ed25519 key pair: PREFIX.key (PKCS#8 PEM, mode 0600) and PREFIX.pub.
    Keygen(KeygenArgs),
}

#[derive(Args)]
pub struct BuildArgs {
    /// Cluster profile files (YAML or JSON); they are stored in the bundle under profiles/.
    #[arg(long = "profile", value_name = "FILE", required = true)]
    profiles: Vec<PathBuf>,
    /// The bundle to write (BUNDLE.tar.zst; with --split-size, BUNDLE.tar.zst.partNN).
    #[arg(short = 'o', long = "out", value_name = "BUNDLE")]
    out: PathBuf,
    #[command(flatten)]
    source: SourceArgs,
    /// Keep only these platforms of multi-platform images (OS/ARCH[/VARIANT], repeatable).
    /// Their indexes are rewritten, so their digests change (a warning names each).
    #[arg(long = "platform", value_name = "OS/ARCH", value_parser = berth_bundle::parse_platform)]
    platforms: Vec<String>,
    /// Split into parts of at most SIZE (e.g. 3G, 700M): BUNDLE.part00, .part01, …
    #[arg(long, value_name = "SIZE", value_parser = berth_bundle::parts::parse_size)]
    split_size: Option<u64>,
    /// zstd compression level (1-22).
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=22))]
    level: i32,
    /// zstd worker threads (default: every core). The bytes do not depend on it.
    #[arg(long, value_name = "N")]
    threads: Option<u32>,
    /// An older bundle whose blobs are reused instead of fetched again.
    #[arg(long, value_name = "OLD.tar.zst")]
    existing: Option<PathBuf>,
    /// Sign bundle.json with this ed25519 key (PEM, or a raw 32-byte seed).
    #[arg(long, value_name = "KEY")]
    signing_key: Option<PathBuf>,
    /// Parallel transfers.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: u16,
    /// Output format of the summary.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

#[derive(Args)]
pub struct InspectArgs {
    /// BUNDLE.tar.zst, or BUNDLE.tar.zst.part00.
    #[arg(value_name = "BUNDLE")]
    bundle: PathBuf,
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

#[derive(Args)]
pub struct VerifyArgs {
    #[arg(value_name = "BUNDLE")]
    bundle: PathBuf,
    /// Also require a signature by this ed25519 public key.
    #[arg(long, value_name = "PUB")]
    public_key: Option<PathBuf>,
}

#[derive(Args)]
pub struct PushArgs {
    #[arg(value_name = "BUNDLE")]
    bundle: PathBuf,
    #[command(flatten)]
    redirect: RedirectArgs,
    #[command(flatten)]
    dest: DestArgs,
    /// Refuse the bundle unless it is signed by this ed25519 public key.
    #[arg(long, value_name = "PUB")]
    public_key: Option<PathBuf>,
    /// Where to extract the bundle while pushing (needs room for the uncompressed bundle;
    /// default $TMPDIR, else /tmp).
    #[arg(long, value_name = "DIR")]
    tmp_dir: Option<PathBuf>,
    /// Parallel transfers.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: u16,
    /// Go on with the other images after one fails (the exit status is still 1).
    #[arg(long)]
    keep_going: bool,
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

#[derive(Args)]
pub struct ServeArgs {
    #[arg(value_name = "BUNDLE")]
    bundle: PathBuf,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5000")]
    listen: SocketAddr,
    /// User data whose rewrite rules name the images (as the agent computes them with the
    /// edge registry in front: <project>/<registry>/<path>).
    #[arg(long, value_name = "FILE")]
    user_data: Option<PathBuf>,
    /// The first path component of every served repository.
    #[arg(long, value_name = "NAME", default_value = berth_rewrite::DEFAULT_PROJECT)]
    project: String,
    /// Refuse the bundle unless it is signed by this ed25519 public key.
    #[arg(long, value_name = "PUB")]
    public_key: Option<PathBuf>,
    /// Where to extract the bundle while serving (default $TMPDIR, else /tmp).
    #[arg(long, value_name = "DIR")]
    tmp_dir: Option<PathBuf>,
    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

#[derive(Args)]
pub struct ExtractArgs {
    #[arg(value_name = "BUNDLE")]
    bundle: PathBuf,
    /// The OCI image layout directory to create (must not exist, or be empty).
    #[arg(long, value_name = "DIR")]
    to: PathBuf,
    /// Refuse the bundle unless it is signed by this ed25519 public key.
    #[arg(long, value_name = "PUB")]
    public_key: Option<PathBuf>,
}

#[derive(Args)]
pub struct KeygenArgs {
    /// Writes PREFIX.key and PREFIX.pub (never overwritten).
    #[arg(long, value_name = "PREFIX")]
    out: PathBuf,
}

/// Runs a `berth bundle` subcommand.
pub fn run(cmd: BundleCommand) -> Result<ExitCode, Failure> {
    match cmd {
        BundleCommand::Build(a) => build(a),
        BundleCommand::Inspect(a) => inspect(a),
        BundleCommand::Verify(a) => verify(a),
        BundleCommand::Push(a) => push(a),
        BundleCommand::Serve(a) => serve(a),
        BundleCommand::Extract(a) => extract(a),
        BundleCommand::Keygen(a) => {
            let (k, p) = berth_bundle::sign::keygen(&a.out)?;
            eprintln!(
                "wrote {} (private: keep it off the site) and {} (give it to push/serve/extract --public-key)",
                k.display(),
                p.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A damaged bundle is a finding (exit 1), named; anything else is bad input (exit 2).
fn outcome<T>(r: Result<T, BundleError>) -> Result<Result<T, ExitCode>, Failure> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(e) if e.is_damage() => {
            eprintln!("berth: bundle refused: {e}");
            Ok(Err(ExitCode::from(EXIT_FINDINGS)))
        }
        Err(e) => Err(e.into()),
    }
}

fn public_key(p: &Option<PathBuf>) -> anyhow::Result<Option<berth_bundle::sign::PublicKey>> {
    Ok(match p {
        Some(p) => Some(berth_bundle::sign::read_public_key(p)?),
        None => None,
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn profile_file_name(p: &Path, i: usize) -> String {
    let base = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let clean: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let clean = clean.trim_start_matches('.').to_string();
    if clean.is_empty() {
        format!("profile-{i}.yaml")
    } else {
        clean
    }
}

fn build(args: BuildArgs) -> Result<ExitCode, Failure> {
    let profiles = inputs::profiles(&args.profiles)?;
    let extraction = berth_profile::extract_images(&profiles)?;
    let images: Vec<Reference> = extraction.images.iter().map(|i| i.source.clone()).collect();
    let hosts: BTreeSet<String> = images.iter().map(|r| r.domain().to_string()).collect();
    let mut files = Vec::new();
    let mut names = BTreeSet::new();
    for (i, (path, profile)) in args.profiles.iter().zip(&profiles).enumerate() {
        let mut file = profile_file_name(path, i);
        if !names.insert(file.clone()) {
            file = format!("{i:02}-{file}");
            names.insert(file.clone());
        }
        files.push(ProfileFile {
            file,
            name: profile.name.clone(),
            bytes: std::fs::read(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
        });
    }
    let signing_key = match &args.signing_key {
        Some(k) => Some(berth_bundle::sign::read_signing_key(k)?),
        None => None,
    };
    let mut opts = BuildOptions {
        images,
        profiles: files,
        platforms: args.platforms.clone(),
        split_size: args.split_size,
        level: args.level,
        existing: args.existing.clone(),
        signing_key,
        copy: CopyOptions {
            jobs: usize::from(args.jobs),
            source_registries: args.source.configs(&hosts)?,
            ..CopyOptions::default()
        },
        ..BuildOptions::default()
    };
    if let Some(t) = args.threads {
        opts.threads = t.max(1);
    }
    let total = opts.images.len();
    let progress = crate::transfer::Progress::new(
        args.output == Output::Table && std::io::stderr().is_terminal(),
        total,
    );
    let result = runtime()?.block_on(berth_bundle::build(&args.out, opts, Some(progress.sink())));
    progress.finish();
    let report = match result {
        Ok(r) => r,
        Err(e @ BundleError::Image { .. }) => {
            eprintln!("berth: error: {e}");
            return Ok(ExitCode::from(EXIT_FINDINGS));
        }
        Err(e) => return Err(e.into()),
    };
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    match args.output {
        Output::Json => {
            #[derive(Serialize)]
            struct Out<'a> {
                files: Vec<String>,
                compressed_size: u64,
                manifest: &'a berth_bundle::BundleManifest,
                fetch: &'a berth_transfer::Report,
                reused_blobs: u64,
                warnings: &'a [String],
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&Out {
                    files: report
                        .files
                        .iter()
                        .map(|f| f.display().to_string())
                        .collect(),
                    compressed_size: report.compressed_size,
                    manifest: &report.manifest,
                    fetch: &report.fetch,
                    reused_blobs: report.reused_blobs,
                    warnings: &report.warnings,
                })?
            );
        }
        Output::Table => print_images(&report.manifest),
    }
    for f in &extraction.findings {
        eprintln!("{}", crate::plan::finding_line(f));
    }
    eprintln!(
        "bundle {}: {} image(s), {} blob(s), {:.1} MB of content → {:.1} MB in {} file(s); fetched {} blob(s) ({:.1} MB), reused {} from --existing",
        args.out.display(),
        report.manifest.images.len(),
        report.manifest.blobs.len(),
        report.manifest.total_size as f64 / 1e6,
        report.compressed_size as f64 / 1e6,
        report.files.len(),
        report.fetch.blobs.copied,
        report.fetch.bytes as f64 / 1e6,
        report.reused_blobs
    );
    Ok(ExitCode::SUCCESS)
}

fn print_images(m: &berth_bundle::BundleManifest) {
    let rows: Vec<Vec<String>> = m
        .images
        .iter()
        .map(|i| {
            vec![
                i.source.clone(),
                i.digest.clone(),
                i.media_type.clone(),
                i.size.to_string(),
            ]
        })
        .collect();
    print_table(&["SOURCE", "DIGEST", "MEDIA TYPE", "SIZE"], &rows);
}

fn inspect(args: InspectArgs) -> Result<ExitCode, Failure> {
    let h = match outcome(berth_bundle::head(&args.bundle))? {
        Ok(h) => h,
        Err(code) => return Ok(code),
    };
    match args.output {
        Output::Json => {
            #[derive(Serialize)]
            struct Out<'a> {
                #[serde(flatten)]
                manifest: &'a berth_bundle::BundleManifest,
                signed: bool,
                parts: Vec<String>,
                compressed_size: u64,
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&Out {
                    manifest: &h.manifest,
                    signed: h.signature.is_some(),
                    parts: h.parts.iter().map(|p| p.display().to_string()).collect(),
                    compressed_size: h.compressed_size,
                })?
            );
        }
        Output::Table => {
            print_images(&h.manifest);
            let m = &h.manifest;
            eprintln!(
                "format {}; from {}; platforms: {}; {} blob(s), {:.1} MB of content, {:.1} MB compressed in {} file(s); {}",
                m.format_version,
                m.created_from.join(", "),
                if m.platforms.is_empty() {
                    "all".to_string()
                } else {
                    m.platforms.join(", ")
                },
                m.blobs.len(),
                m.total_size as f64 / 1e6,
                h.compressed_size as f64 / 1e6,
                h.parts.len(),
                if h.signature.is_some() {
                    "signed (check with verify --public-key)"
                } else {
                    "not signed"
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(args: VerifyArgs) -> Result<ExitCode, Failure> {
    let key = public_key(&args.public_key)?;
    let c = match outcome(berth_bundle::scan(
        &args.bundle,
        key.as_ref(),
        &mut |_, _, _| Ok(()),
    ))? {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    eprintln!(
        "{}: good: {} image(s), {} blob(s) re-hashed, every reference present{}",
        args.bundle.display(),
        c.head.manifest.images.len(),
        c.head.manifest.blobs.len(),
        if c.signature_verified {
            ", signature matches the public key"
        } else if c.head.signature.is_some() {
            " (signed; give --public-key to check the signature)"
        } else {
            " (not signed)"
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn push(args: PushArgs) -> Result<ExitCode, Failure> {
    if args.redirect.user_data.is_none() && args.redirect.local_registry.is_none() {
        return Err(anyhow!(
            "berth bundle push needs --user-data (the external registry) or --local-registry (the edge registry) to know where images go"
        )
        .into());
    }
    let key = public_key(&args.public_key)?;
    let rewriter: Rewriter = inputs::rewriter(&args.redirect, false)?;
    let ud = match &args.redirect.user_data {
        Some(p) => Some(inputs::user_data(p)?),
        None => None,
    };
    let mut dst: RegistryConfigs = crate::transfer::user_data_configs(ud.as_ref());
    if let Some(local) = rewriter.local() {
        args.dest.apply(&mut dst, local.host())?;
    }
    let bundle = match outcome(Extracted::open(
        &args.bundle,
        key.as_ref(),
        args.tmp_dir.as_deref(),
    ))? {
        Ok(b) => b,
        Err(code) => return Ok(code),
    };
    let options = CopyOptions {
        jobs: usize::from(args.jobs),
        keep_going: args.keep_going,
        destination_registries: dst,
        ..CopyOptions::default()
    };
    let target = |r: &Reference| rewriter.rewrite(r).map_err(|e| e.to_string());
    let progress = crate::transfer::Progress::new(
        args.output == Output::Table && std::io::stderr().is_terminal(),
        bundle.contents.head.manifest.images.len(),
    );
    let (report, unmoved) = runtime()?.block_on(berth_bundle::push(
        &bundle,
        &target,
        options,
        Some(progress.sink()),
    ))?;
    progress.finish();
    for s in &unmoved {
        eprintln!("note: {s} is not redirected by the user data's rules; nothing to copy");
    }
    crate::transfer::print_report(&report, args.output)?;
    Ok(if report.failed() > 0 {
        ExitCode::from(EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    })
}

fn serve(args: ServeArgs) -> Result<ExitCode, Failure> {
    let key = public_key(&args.public_key)?;
    // TLS material first: a bad certificate should not cost an extraction.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => Some(berth_registry::tls::server_config(c, k)?),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let ud = match &args.user_data {
        Some(p) => Some(inputs::user_data(p)?),
        None => None,
    };
    // Only the path matters: the host is whatever clients use to reach this server.
    let rewriter = Rewriter::new(
        ud.as_ref(),
        Some(LocalRegistry::new("localhost", Some(&args.project))?),
    );
    let bundle = match outcome(Extracted::open(
        &args.bundle,
        key.as_ref(),
        args.tmp_dir.as_deref(),
    ))? {
        Ok(b) => Arc::new(b),
        Err(code) => return Ok(code),
    };
    let rt = runtime()?;
    let listener = rt.block_on(berth_bundle::listen(args.listen))?;
    for img in &bundle.contents.head.manifest.images {
        if let Ok(r) = Reference::parse(&img.source)
            && let Ok(t) = rewriter.rewrite(&r)
        {
            eprintln!(
                "serving {} as {}/{}",
                img.source,
                args.listen,
                t.name().split_once('/').map_or("", |x| x.1)
            );
        }
    }
    eprintln!(
        "berth bundle serve: {scheme}://{}/v2/ (read-only; Ctrl-C stops)",
        args.listen
    );
    let opts = ServeOptions {
        name: Box::new(move |r: &Reference| rewriter.rewrite(r).map_err(|e| e.to_string())),
    };
    let app = berth_bundle::router(bundle, opts)?;
    rt.block_on(berth_registry::serve_app(
        listener,
        tls,
        app,
        berth_bundle::stop_signal(),
    ));
    Ok(ExitCode::SUCCESS)
}

fn extract(args: ExtractArgs) -> Result<ExitCode, Failure> {
    let key = public_key(&args.public_key)?;
    let c = match outcome(berth_bundle::extract(&args.bundle, &args.to, key.as_ref()))? {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    eprintln!(
        "extracted {} image(s), {} blob(s) into the OCI layout {}{}",
        c.head.manifest.images.len(),
        c.head.manifest.blobs.len(),
        args.to.display(),
        if c.signature_verified {
            " (signature verified)"
        } else {
            ""
        }
    );
    Ok(ExitCode::SUCCESS)
}
