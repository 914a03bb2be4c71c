//! `berth`: the command line. Library crates do the work; this crate parses flags, reads
//! files, prints tables or JSON, and sets exit codes (0 clean, 1 findings, 2 bad input).

/// `eprintln!` unless `--quiet`: progress, notes and summaries (errors and warnings always).
macro_rules! say {
    ($($t:tt)*) => { if !$crate::quiet() { eprintln!($($t)*) } };
}

mod agent;
mod bundle;
mod inputs;
mod node;
mod plan;
mod serve;
mod transfer;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::OnceLock;

use anyhow::Context;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

/// Exit status for bad input or usage (clap uses it too).
const EXIT_BAD_INPUT: u8 = 2;
/// Exit status when findings of severity `error` remain, or an image failed.
const EXIT_FINDINGS: u8 = 1;
/// Exit status after Ctrl-C (128 + SIGINT, as shells report it).
const EXIT_INTERRUPTED: u8 = 130;

#[derive(Parser)]
#[command(
    name = "berth",
    version = env!("BERTH_VERSION"),
    about = "Get every container image an edge Kubernetes cluster needs into a private registry, and onto the edge hosts.",
    long_about = "Berth reads Palette cluster profiles and the installer's user data (the `stylus` section of \
#cloud-config) and computes, with one rewrite function, where every image lives. It mirrors the \
images into the external registry (mirror, verify, copy), runs the edge registry (serve, gc, fsck), \
puts images into containerd and configures the node on the edge host (agent, webhook, \
credential-provider, node-config), and builds air-gap content bundles (bundle). Because every \
command uses the same rewrite function, what is uploaded is exactly where the edge agent looks.\n\n\
Environment: BERTH_USER_DATA, BERTH_PROFILE, BERTH_EDGE_REGISTRY, BERTH_EDGE_PROJECT, BERTH_EDGE_CA, BERTH_EDGE_CREDS, \
BERTH_DATA, BERTH_QUIET, BERTH_LOG_LEVEL stand for their flags (a flag wins).\n\n\
Exit status: 0 clean; 1 findings of severity error; 2 bad input or usage; 130 interrupted (Ctrl-C)."
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options of every command.
#[derive(Args)]
struct Global {
    /// Print no progress, notes, summaries or tables; errors and warnings still (and the
    /// result of `-o json`). The exit status tells the rest.
    #[arg(short, long, global = true, env = "BERTH_QUIET", value_parser = clap::builder::BoolishValueParser::new())]
    quiet: bool,
    /// More log detail on stderr: -v info, -vv debug, -vvv trace (Berth's own crates).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Log level of Berth's crates on stderr (others: errors only). Default: RUST_LOG, else
    /// warn (serve: info); with --quiet, error.
    #[arg(long, global = true, value_name = "LEVEL", env = "BERTH_LOG_LEVEL",
          value_parser = ["off", "error", "warn", "info", "debug", "trace"])]
    log_level: Option<String>,
    /// Output format of the commands that print a result (images, rewrite, lint, mirror,
    /// verify, copy, agent, gc, fsck, bundle): a table (`text`), or JSON.
    #[arg(short, long, global = true, default_value = "table", value_parser = output_format)]
    output: Output,
}

static GLOBAL: OnceLock<Global> = OnceLock::new();

/// Whether `--quiet` was given.
fn quiet() -> bool {
    GLOBAL.get().is_some_and(|g| g.quiet)
}

/// Whether `-o json` was given (else the table).
fn json_out() -> bool {
    GLOBAL.get().is_some_and(|g| g.output == Output::Json)
}

/// The log on stderr: `-v` or `--log-level` for Berth's crates (others: errors only), else
/// RUST_LOG, else `default`.
fn init_logs(json: bool, default: &str) {
    let g = GLOBAL.get();
    let level = match g.map_or(0, |g| g.verbose) {
        0 => g.and_then(|g| g.log_level.clone()),
        v => Some(["info", "debug", "trace"][usize::from(v.min(3)) - 1].to_string()),
    };
    let filter = match level.as_deref() {
        Some(l @ ("off" | "error")) => l.to_string(),
        Some(l) => format!("error,berth={l}"),
        None if quiet() => "error".to_string(),
        None => std::env::var("RUST_LOG").unwrap_or_else(|_| default.to_string()),
    };
    let filter = tracing_subscriber::EnvFilter::try_new(filter);
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter.unwrap_or_else(|_| default.into()))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match json {
        true => b.json().try_init(),
        false => b.try_init(),
    };
}

#[derive(Subcommand)]
enum Command {
    /// List every image of the profiles with where it lives after rewriting: normalized,
    /// deduplicated, with its layer, role and every place it was found.
    Images(ImagesArgs),
    /// Print where each image reference lives after rewriting, one per line.
    Rewrite(RewriteArgs),
    /// Check profiles: AlwaysPullImages, invalid references, unrendered templates, unlisted
    /// images, implicit :latest.
    Lint(LintArgs),
    /// Copy every image of the profiles to its rewritten target, byte for byte (digests kept,
    /// indexes whole, blobs moved once, resumable). Exit 1 if any image failed.
    Mirror(transfer::MirrorArgs),
    /// Check that every image of the profiles is at its target (with --deep, every blob); print
    /// what is missing and the command that copies it. Exit 1 when anything is missing.
    Verify(transfer::VerifyArgs),
    /// Copy one image between transports: docker://REF, oci:DIR[:REF], oci-archive:FILE[:REF],
    /// docker-archive:FILE[:REF].
    Copy(transfer::CopyArgs),
    /// The admission webhook that rewrites pods' images over HTTPS at /mutate; `berth webhook
    /// manifest` prints the configuration installing it.
    Webhook(node::WebhookArgs),
    /// A kubelet image credential provider for the user data's registries; `berth
    /// credential-provider config` prints kubelet's CredentialProviderConfig.
    CredentialProvider(node::CredentialProviderArgs),
    /// Write the node's registry configuration (containerd hosts.toml, k3s/RKE2
    /// registries.yaml, CRI drop-in), atomically.
    NodeConfig(agent::NodeConfigArgs),
    /// On the edge host: put the profiles' images into containerd (`apply`) and show where
    /// each image is (`status`).
    #[command(subcommand)]
    Agent(agent::AgentCommand),
    /// Run the edge registry (TLS, htpasswd, /metrics), pulling through to the external
    /// registry on a miss. Defaults: 127.0.0.1:5000, ./berth-data.
    Serve(serve::ServeArgs),
    /// Remove what nothing references from the edge registry's store (safe against pushes).
    Gc(serve::GcArgs),
    /// Re-hash the edge registry's blobs, quarantining damaged ones. Exit 1 on damage.
    Fsck(serve::StoreArgs),
    /// Air-gap content bundles (a signed .tar.zst OCI layout): build, inspect, verify, push,
    /// serve read-only, extract for the agent's preload directory.
    #[command(subcommand)]
    Bundle(bundle::BundleCommand),
    /// Print a shell completion script: `source <(berth completion bash)`; zsh: save as
    /// `_berth` in a directory of $fpath; fish: as ~/.config/fish/completions/berth.fish.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff; `berth man | man -l -`), or write a page per command.
    Man {
        /// Write berth.1 and a page for every subcommand (berth-mirror.1, …) into DIR.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// The rewrite settings: user data and the edge registry in front.
#[derive(Args, Clone)]
struct RedirectArgs {
    /// Palette user data (#cloud-config) with stylus.registryCredentials or stylus.externalRegistries.
    #[arg(long, value_name = "FILE", env = "BERTH_USER_DATA")]
    user_data: Option<PathBuf>,
    #[command(flatten)]
    edge: inputs::EdgeTarget,
}

#[derive(Args)]
struct ImagesArgs {
    /// Cluster profile files (YAML or JSON); their layers are taken in order.
    /// Repeatable: `--profile A B` or `--profile A --profile B`.
    #[arg(long = "profile", value_name = "FILE", required_unless_present_any = ["example", "chart"], num_args = 1.., env = "BERTH_PROFILE")]
    profiles: Vec<PathBuf>,
    #[command(flatten)]
    redirect: RedirectArgs,
    #[command(flatten)]
    inputs: inputs::ProfileInputs,
    /// Use the built-in example profile, or `export`: the example Palette export (and,
    /// without --user-data, the example user data).
    #[arg(long, conflicts_with = "profiles", num_args = 0..=1, default_missing_value = "profile", value_parser = ["profile", "export"])]
    example: Option<String>,
    /// List one chart's images alone: a chart directory, .tgz or oci://HOST/PATH/NAME:VERSION.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["profiles", "example"])]
    chart: Option<PathBuf>,
    #[arg(long, value_name = "FILE", requires = "chart", hide_short_help = true)]
    values: Vec<PathBuf>,
    #[arg(long, value_name = "K=V", requires = "chart", hide_short_help = true)]
    set: Vec<String>,
    /// Print every place the plan found image REF (template, object and field, flag or variable).
    #[arg(long, value_name = "REF")]
    explain: Option<String>,
}

#[derive(Args)]
struct RewriteArgs {
    /// Image references, e.g. quay.io/kairos/core:v1 or nginx.
    #[arg(value_name = "REF", required = true)]
    references: Vec<String>,
    #[command(flatten)]
    redirect: RedirectArgs,
}

#[derive(Args)]
struct LintArgs {
    /// Cluster profile files (YAML or JSON). Repeatable: `--profile A B` or `--profile A --profile B`.
    #[arg(long = "profile", value_name = "FILE", required = true, num_args = 1.., env = "BERTH_PROFILE")]
    profiles: Vec<PathBuf>,
    /// Palette user data: also check that its rules cover every image and its registries
    /// every rule's target.
    #[arg(long, value_name = "FILE")]
    user_data: Option<PathBuf>,
    /// Remove AlwaysPullImages from the Kubernetes layer in place, changing nothing else.
    #[arg(long)]
    fix: bool,
}

/// `-o`/`--output`.
#[derive(ValueEnum, Clone, Copy, PartialEq, Eq)]
enum Output {
    #[value(alias = "text")]
    Table,
    Json,
}

/// `-o`, which once named the bundle of `bundle build`: a path there gets the fix.
fn output_format(s: &str) -> Result<Output, String> {
    Output::from_str(s, true).map_err(|_| {
        format!("`{s}` is not an output format (table, json); `bundle build` writes its bundle to --out {s}")
    })
}

/// The async runtime the library crates run on.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    let rt = tokio::runtime::Runtime::new();
    anyhow::Context::context(rt, "cannot start the async runtime")
}

/// Exit 1 when `failed`, else 0.
fn exit_status(failed: bool) -> ExitCode {
    ExitCode::from(if failed { EXIT_FINDINGS } else { 0 })
}

/// The serde name of a unit enum value (`"provider"`).
fn json_word<T: serde::Serialize>(v: &T) -> String {
    let v = serde_json::to_value(v).ok();
    v.and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Prints `value` as pretty JSON on stdout.
fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// `json` as JSON, or the table of `headers` and `rows`.
fn show<T: serde::Serialize>(
    json: &T,
    headers: &[&str],
    rows: Vec<Vec<String>>,
) -> anyhow::Result<()> {
    match json_out() {
        true => print_json(json),
        false if quiet() => Ok(()),
        false => print_table(headers, &rows),
    }
}

/// Columns padded to their widest cell; the last one unpadded.
fn print_table(headers: &[&str], rows: &[Vec<String>]) -> anyhow::Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let headers = headers.iter().map(|h| h.to_string()).collect();
    for r in std::iter::once(&headers).chain(rows) {
        let pad = |(c, w): (&String, &usize)| format!("{c:<w$}");
        let cells: Vec<String> = r.iter().zip(&widths).map(pad).collect();
        println!("{}", cells.join("  ").trim_end());
    }
    Ok(())
}

/// `berth man`: the page of `berth` on stdout, or every page into `dir`.
fn man(dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    match dir {
        None => clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?,
        Some(d) => std::fs::create_dir_all(&d)
            .and_then(|()| clap_mangen::generate_to(Cli::command(), &d))
            .with_context(|| format!("cannot write the man pages into {}", d.display()))?,
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = GLOBAL.set(cli.global);
    if !matches!(cli.command, Command::Serve(_)) {
        init_logs(false, "error,berth=warn");
    }
    let result = match cli.command {
        Command::Images(a) => plan::images(a),
        Command::Rewrite(a) => plan::rewrite(a),
        Command::Lint(a) => plan::lint(a),
        Command::Mirror(a) => transfer::mirror(a),
        Command::Verify(a) => transfer::verify(a),
        Command::Copy(a) => transfer::copy(a),
        Command::Webhook(a) => node::webhook(a),
        Command::CredentialProvider(a) => node::credential_provider(a),
        Command::NodeConfig(a) => agent::node_config(a),
        Command::Agent(c) => agent::run(c),
        Command::Serve(a) => serve::serve(a),
        Command::Gc(a) => serve::gc(a),
        Command::Fsck(a) => serve::fsck(a),
        Command::Bundle(c) => bundle::run(c),
        Command::Completion { shell } => {
            let out = &mut std::io::stdout();
            clap_complete::generate(shell, &mut Cli::command(), "berth", out);
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { dir } => man(dir),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let _ = std::io::stdout().flush();
            // A damaged bundle, or an image a bundle cannot hold, is a finding, not bad input.
            match e.downcast_ref::<berth_bundle::BundleError>() {
                Some(b) if b.is_damage() => eprintln!("berth: bundle refused: {b}"),
                Some(b @ berth_bundle::BundleError::Image { .. }) => eprintln!("berth: error: {b}"),
                _ => {
                    eprintln!("berth: error: {}", berth_oci::error_chain(e.as_ref()));
                    return ExitCode::from(EXIT_BAD_INPUT);
                }
            }
            ExitCode::from(EXIT_FINDINGS)
        }
    }
}
