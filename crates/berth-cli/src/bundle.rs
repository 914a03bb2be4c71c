//! `berth bundle`: air-gap content bundles (berth-bundle), built from profiles like
//! `berth mirror`, pushed to their rewritten targets through the same transfer engine, served
//! read-only as a registry, or extracted as an OCI layout for the agent to preload. A damaged
//! bundle (or an image that cannot be fetched) ends with exit 1 (see `main`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use berth_bundle::sign::{self, PublicKey};
use berth_bundle::{BuildOptions, BundleManifest, BundleServer, Extracted, ServeOptions};
use berth_client::RegistryConfigs;
use berth_reference::Reference;
use berth_transfer::CopyOptions;
use clap::{Args, Subcommand};

use crate::inputs::EdgeLogin;
use crate::transfer::{SourceArgs, print_report, progress};
use crate::{RedirectArgs, exit_status, inputs, json_out, runtime, show};

/// `berth bundle ...`
#[derive(Subcommand)]
pub enum BundleCommand {
    /// Build a bundle (.tar.zst): every image of the profiles (all platforms, or --platform's),
    /// the profiles and bundle.json. Same inputs, same bytes.
    Build(BuildArgs),
    /// Print what a bundle holds (reads only its first entry).
    Inspect(InspectArgs),
    /// Re-hash every blob and check every reference; exit 1 naming the damaged entry.
    Verify(BundleIn),
    /// Copy every image of a bundle to its rewritten target (as `berth mirror` does).
    Push(PushArgs),
    /// Serve a bundle read-only as an OCI registry (plain HTTP).
    Serve(ServeArgs),
    /// Extract a bundle as an OCI image layout (nothing written unless all checks out).
    Extract(ExtractArgs),
    /// Make an ed25519 key pair: PREFIX.key (PKCS#8 PEM, mode 0600) and PREFIX.pub.
    Keygen(KeygenArgs),
}

#[derive(Args)]
pub struct BuildArgs {
    /// Cluster profile files (YAML or JSON), stored in the bundle under profiles/.
    /// Repeatable: `--profile A B` or `--profile A --profile B`.
    #[arg(long = "profile", value_name = "FILE", required = true, num_args = 1.., env = "BERTH_PROFILE")]
    profiles: Vec<PathBuf>,
    #[command(flatten)]
    inputs: inputs::ProfileInputs,
    /// The bundle to write (BUNDLE.tar.zst; with --split-size, BUNDLE.tar.zst.partNN).
    #[arg(long = "out", value_name = "BUNDLE")]
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
}

#[derive(Args)]
pub struct InspectArgs {
    /// BUNDLE.tar.zst, or BUNDLE.tar.zst.part00.
    #[arg(value_name = "BUNDLE")]
    bundle: PathBuf,
}

/// A bundle to read, and the key it must be signed with.
#[derive(Args)]
pub struct BundleIn {
    /// BUNDLE.tar.zst, or BUNDLE.tar.zst.part00.
    #[arg(value_name = "BUNDLE")]
    bundle: PathBuf,
    /// Refuse the bundle unless it is signed by this ed25519 public key.
    #[arg(long, value_name = "PUB")]
    public_key: Option<PathBuf>,
}

#[derive(Args)]
pub struct PushArgs {
    #[command(flatten)]
    input: BundleIn,
    #[command(flatten)]
    redirect: RedirectArgs,
    #[command(flatten)]
    edge_login: EdgeLogin,
    /// Where to extract the bundle while pushing (default $TMPDIR, else /tmp).
    #[arg(long, value_name = "DIR")]
    tmp_dir: Option<PathBuf>,
    /// Parallel transfers.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: u16,
    /// Go on with the other images after one fails (the exit status is still 1).
    #[arg(long)]
    keep_going: bool,
}

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    input: BundleIn,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5000")]
    listen: SocketAddr,
    /// User data whose rewrite rules name the images (as the agent computes them with the
    /// edge registry in front: <project>/<registry>/<path>).
    #[arg(long, value_name = "FILE")]
    user_data: Option<PathBuf>,
    /// The first path component of every served repository, as the edge registry's project.
    #[arg(long, alias = "project", value_name = "NAME", default_value = berth_rewrite::DEFAULT_PROJECT)]
    edge_project: String,
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
    #[command(flatten)]
    input: BundleIn,
    /// The OCI image layout directory to create (must not exist, or be empty).
    #[arg(long, value_name = "DIR")]
    to: PathBuf,
}

#[derive(Args)]
pub struct KeygenArgs {
    /// Writes PREFIX.key and PREFIX.pub (never overwritten).
    #[arg(long, value_name = "PREFIX")]
    out: PathBuf,
}

/// Runs a `berth bundle` subcommand.
pub fn run(cmd: BundleCommand) -> Result<ExitCode> {
    match cmd {
        BundleCommand::Build(a) => build(a),
        BundleCommand::Inspect(a) => inspect(a),
        BundleCommand::Verify(a) => verify(a),
        BundleCommand::Push(a) => push(a),
        BundleCommand::Serve(a) => serve(a),
        BundleCommand::Extract(a) => extract(a),
        BundleCommand::Keygen(a) => {
            let (k, p) = sign::keygen(&a.out)?;
            let (k, p) = (k.display(), p.display());
            say!(
                "wrote {k} (private: keep it off the site) and {p} (give it to push/serve/extract --public-key)"
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

impl BundleIn {
    fn key(&self) -> Result<Option<PublicKey>> {
        let key = self.public_key.as_deref().map(sign::read_public_key);
        Ok(key.transpose()?)
    }

    /// The bundle extracted (verified) into a temporary directory.
    fn open(&self, tmp_dir: Option<&std::path::Path>) -> Result<Extracted> {
        let key = self.key()?;
        Ok(Extracted::open(&self.bundle, key.as_ref(), tmp_dir)?)
    }
}

fn build(args: BuildArgs) -> Result<ExitCode> {
    let (profiles, charts) = args.inputs.read(&args.profiles, None)?;
    let plan = berth_plan::Plan::of_sources(&profiles, &charts)?;
    let names = profiles.iter().map(|p| p.name.clone());
    let key = args.signing_key.as_deref().map(sign::read_signing_key);
    let sources = args.source.configs(&plan.source_hosts())?;
    let mut opts = BuildOptions {
        profiles: berth_bundle::read_profile_files(&args.profiles, names)?,
        platforms: args.platforms.clone(),
        split_size: args.split_size,
        level: args.level,
        existing: args.existing.clone(),
        signing_key: key.transpose()?,
        copy: CopyOptions::new(args.jobs.into(), sources, RegistryConfigs::new()),
        images: plan.entries.iter().map(|e| e.source.clone()).collect(),
        charts: plan.charts,
        ..BuildOptions::default()
    };
    if let Some(t) = args.threads {
        opts.threads = t.max(1);
    }
    let progress = progress(opts.images.len(), "copied", false);
    let result = runtime()?.block_on(berth_bundle::build(&args.out, opts, Some(progress.sink())));
    progress.finish();
    let r = result?;
    r.warnings.iter().for_each(|w| eprintln!("warning: {w}"));
    show(&r, IMAGE_HEADERS, image_rows(&r.manifest))?;
    plan.findings.iter().for_each(|f| eprintln!("{f}"));
    say!("bundle {}: {r}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

const IMAGE_HEADERS: &[&str] = &["SOURCE", "DIGEST", "MEDIA TYPE", "SIZE"];

fn image_rows(m: &BundleManifest) -> Vec<Vec<String>> {
    let row = |i: &berth_bundle::ImageEntry| {
        let (s, d, t) = (i.source.clone(), i.digest.clone(), i.media_type.clone());
        vec![s, d, t, i.size.to_string()]
    };
    m.images.iter().map(row).collect()
}

fn inspect(args: InspectArgs) -> Result<ExitCode> {
    let h = berth_bundle::head(&args.bundle)?;
    show(&h, IMAGE_HEADERS, image_rows(&h.manifest))?;
    if !json_out() {
        say!("{h}");
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(args: BundleIn) -> Result<ExitCode> {
    let c = berth_bundle::scan(&args.bundle, args.key()?.as_ref(), &mut |_, _, _| Ok(()))?;
    say!("{}: good: {c}", args.bundle.display());
    Ok(ExitCode::SUCCESS)
}

fn push(args: PushArgs) -> Result<ExitCode> {
    let (rewriter, destination_registries) =
        args.redirect
            .targets(&args.edge_login, Some("bundle push"), false)?;
    let bundle = args.input.open(args.tmp_dir.as_deref())?;
    let (jobs, empty) = (args.jobs.into(), RegistryConfigs::new());
    let mut options = CopyOptions::new(jobs, empty, destination_registries);
    options.keep_going = args.keep_going;
    let target = |r: &Reference| rewriter.rewrite(r).map_err(|e| e.to_string());
    let n = bundle.contents.head.manifest.images.len();
    let progress = progress(n, "copied", false);
    let sink = Some(progress.sink());
    let (report, unmoved) =
        runtime()?.block_on(berth_bundle::push(&bundle, &target, options, sink))?;
    progress.finish();
    for s in &unmoved {
        say!("note: {s} is not redirected by the user data's rules; nothing to copy");
    }
    print_report(&report)?;
    Ok(exit_status(report.failed() > 0))
}

fn serve(args: ServeArgs) -> Result<ExitCode> {
    args.input.key()?;
    // TLS material first: a bad certificate should not cost an extraction.
    let tls = args.tls_cert.as_deref().zip(args.tls_key.as_deref());
    let tls = tls.map(|(c, k)| berth_registry::tls::server_config(c, k));
    let tls = tls.transpose()?;
    let ud = args.user_data.as_deref().map(inputs::user_data);
    let opts = ServeOptions::edge(ud.transpose()?.as_ref(), &args.edge_project)?;
    let bundle = Arc::new(args.input.open(args.tmp_dir.as_deref())?);
    let rt = runtime()?;
    let server = rt.block_on(BundleServer::bind(bundle, args.listen, opts, tls))?;
    for (source, repository) in &server.served {
        eprintln!("serving {source} as {}/{repository}", args.listen);
    }
    let url = server.url();
    eprintln!("berth bundle serve: {url} (read-only; Ctrl-C stops)");
    rt.block_on(server.run(berth_registry::shutdown_signal()));
    Ok(ExitCode::SUCCESS)
}

fn extract(args: ExtractArgs) -> Result<ExitCode> {
    let c = berth_bundle::extract(&args.input.bundle, &args.to, args.input.key()?.as_ref())?;
    say!("extracted into the OCI layout {}: {c}", args.to.display());
    Ok(ExitCode::SUCCESS)
}
