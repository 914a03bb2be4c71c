//! `berth`: the command line. Library crates do the work; this crate reads files, parses
//! flags, prints tables or JSON, and maps outcomes to exit codes:
//! 0 clean, 1 findings of severity `error` (or failed images), 2 bad input or usage.

mod agent;
mod archive;
mod bundle;
mod credential_provider;
mod inputs;
mod node_config;
mod plan;
mod serve;
mod transfer;
mod webhook;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Exit status for bad input or usage (clap uses it too).
const EXIT_BAD_INPUT: u8 = 2;
/// Exit status when findings of severity `error` remain, or an image failed.
const EXIT_FINDINGS: u8 = 1;

#[derive(Parser)]
#[command(
    name = "berth",
    version,
    about = "Get every container image an edge Kubernetes cluster needs into a private registry, and onto the edge hosts.",
    long_about = "Berth reads Palette cluster profiles and the installer's user data (the `stylus` section of \
#cloud-config) and computes, with one rewrite function, where every image lives. It mirrors the \
images into the external registry (mirror, verify, copy), runs the edge registry (serve, gc, fsck), \
puts images into containerd and configures the node on the edge host (agent, webhook, \
credential-provider, node-config), and builds air-gap content bundles (bundle). Because every \
command uses the same rewrite function, what is uploaded is exactly where the edge agent looks.\n\nExit status: 0 clean; 1 findings of severity error; 2 bad input or usage."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List every image of the profiles with where it lives after rewriting.
    ///
    /// Macros are rendered, references normalized (`nginx` → `docker.io/library/nginx:latest`) and
    /// deduplicated; each image says the layer, role (provider, core, infra, addon) and every place
    /// it was found. `target` equals `source` when nothing redirects it.
    Images(ImagesArgs),
    /// Print where each image reference lives after rewriting, one per line.
    Rewrite(RewriteArgs),
    /// Check profiles: AlwaysPullImages, invalid references, unrendered templates, images not
    /// listed in pack.content.images, implicit :latest.
    Lint(LintArgs),
    /// Copy every image of the profiles to its rewritten target (the external registry, or the
    /// edge registry), byte for byte: digests kept, multi-arch indexes whole, blobs moved once,
    /// present blobs skipped, resumable. Exit 1 if any image failed.
    Mirror(transfer::MirrorArgs),
    /// Check that every image of the profiles is at its target: the tag resolves, every child
    /// manifest of an index is there, and with --deep every blob. Prints what is missing, the
    /// command that copies it, and the profile lints. Exit 1 when anything is missing.
    Verify(transfer::VerifyArgs),
    /// Copy one image between transports: docker://REF, oci:DIR[:REF], oci-archive:FILE[:REF],
    /// docker-archive:FILE[:REF].
    Copy(transfer::CopyArgs),
    /// The image-redirect admission webhook (Pods: containers, initContainers,
    /// ephemeralContainers rewritten with the one rewrite function, as a JSONPatch), served
    /// over HTTPS at /mutate; `berth webhook manifest` prints the configuration installing it.
    Webhook(webhook::WebhookArgs),
    /// A kubelet image credential provider: answers a CredentialProviderRequest on stdin with
    /// the external registry's credentials, so pulls kubelet starts itself authenticate too;
    /// `berth credential-provider config` prints kubelet's CredentialProviderConfig.
    CredentialProvider(credential_provider::CredentialProviderArgs),
    /// Write the node's registry configuration: containerd hosts.toml per upstream host, the
    /// k3s/RKE2 registries.yaml, and the containerd CRI credentials drop-in, atomically.
    NodeConfig(node_config::NodeConfigArgs),
    /// On the edge host: put the profile's images into containerd (provider first, preloaded
    /// archives straight in, the rest from the external or edge registry) and write the node's
    /// registry configuration; `berth agent status` shows where each image is.
    #[command(subcommand)]
    Agent(agent::AgentCommand),
    /// Run the edge registry: an OCI distribution registry on the edge host (content-addressed
    /// store, TLS, htpasswd and token auth, /metrics), pulling through to the external registry
    /// on a miss and serving on when it is gone. Runs on defaults with no flags
    /// (127.0.0.1:5000, ./berth-data).
    Serve(serve::ServeArgs),
    /// Remove blobs and uploads of the edge registry's store that nothing references (mark and
    /// sweep; safe against concurrent pushes).
    Gc(serve::GcArgs),
    /// Re-hash every blob of the edge registry's store, report and quarantine damaged ones.
    /// Exit 1 when damage is found.
    Fsck(serve::FsckArgs),
    /// Air-gap content bundles (.tar.zst of an OCI layout with the profile and a signed
    /// manifest): build from profiles, inspect, verify, push to the external registry, serve as
    /// a read-only registry, extract for the agent's preload directory.
    #[command(subcommand)]
    Bundle(bundle::BundleCommand),
}

#[derive(Args, Clone)]
struct RedirectArgs {
    /// Palette user data (#cloud-config) with stylus.registryCredentials or stylus.externalRegistries.
    #[arg(long, value_name = "FILE")]
    user_data: Option<PathBuf>,
    /// The edge (local) registry that fronts every image: targets become
    /// HOST[:PORT]/<project>/<registry>/<path>.
    #[arg(long, value_name = "HOST[:PORT]")]
    local_registry: Option<String>,
    /// The edge registry's project (first path component).
    #[arg(long, value_name = "NAME", default_value = berth_rewrite::DEFAULT_PROJECT, requires = "local_registry")]
    project: String,
}

#[derive(Args)]
struct ImagesArgs {
    /// Cluster profile files (YAML or JSON); their layers are taken in order.
    #[arg(
        long = "profile",
        value_name = "FILE",
        required_unless_present = "example"
    )]
    profiles: Vec<PathBuf>,
    #[command(flatten)]
    redirect: RedirectArgs,
    /// Use the built-in example profile (and, without --user-data, the example user data).
    #[arg(long, conflicts_with = "profiles")]
    example: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
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
    /// Cluster profile files (YAML or JSON).
    #[arg(long = "profile", value_name = "FILE", required = true)]
    profiles: Vec<PathBuf>,
    /// Remove AlwaysPullImages from the Kubernetes layer in place, changing nothing else in the
    /// file (comments, order, quoting, indentation stay byte for byte).
    #[arg(long)]
    fix: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

#[derive(ValueEnum, Clone, Copy, PartialEq, Eq)]
enum Output {
    Table,
    Json,
}

/// An outcome the CLI reports: bad input (exit 2) or a finished command with its status.
pub enum Failure {
    BadInput(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure::BadInput(e.into())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Images(a) => plan::images(a),
        Command::Rewrite(a) => plan::rewrite(a),
        Command::Lint(a) => plan::lint(a),
        Command::Mirror(a) => transfer::mirror(a),
        Command::Verify(a) => transfer::verify(a),
        Command::Copy(a) => transfer::copy(a),
        Command::Webhook(a) => webhook::run(a),
        Command::CredentialProvider(a) => credential_provider::run(a),
        Command::NodeConfig(a) => node_config::run(a),
        Command::Agent(c) => agent::run(c),
        Command::Serve(a) => serve::serve(a),
        Command::Gc(a) => serve::gc(a),
        Command::Fsck(a) => serve::fsck(a),
        Command::Bundle(c) => bundle::run(c),
    };
    match result {
        Ok(code) => code,
        Err(Failure::BadInput(e)) => {
            let _ = std::io::stdout().flush();
            eprintln!("berth: error: {e:#}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}
