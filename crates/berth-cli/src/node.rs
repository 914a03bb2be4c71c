//! `berth webhook` (the admission webhook) and `berth webhook manifest`; `berth
//! credential-provider` (kubelet's image credential provider) and `... config`: berth-node.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use berth_node::credential_provider;
use berth_node::webhook::{self, Endpoint, FailurePolicy, ManifestOptions, WebhookServer};
use berth_transfer::units::go_duration;
use clap::builder::TypedValueParser;
use clap::{Args, Subcommand};

use crate::inputs;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct WebhookArgs {
    #[command(subcommand)]
    command: Option<WebhookCommand>,
    #[command(flatten)]
    serve: WebhookServeArgs,
}

#[derive(Subcommand)]
enum WebhookCommand {
    /// Print the MutatingWebhookConfiguration (pods CREATE, sideEffects None, opted-out and own
    /// namespaces excluded) and the Service that install the webhook, as YAML.
    Manifest(ManifestArgs),
}

#[derive(Args)]
struct WebhookServeArgs {
    /// Palette user data (#cloud-config): the rewrite rules and stylus.imageRedirectWebhook.
    #[arg(long, value_name = "FILE", required = true)]
    user_data: Option<PathBuf>,
    #[command(flatten)]
    edge: inputs::EdgeTarget,
    /// The serving certificate chain (PEM).
    #[arg(long, value_name = "FILE", required = true)]
    tls_cert: Option<PathBuf>,
    /// The serving certificate's private key (PEM).
    #[arg(long, value_name = "FILE", required = true)]
    tls_key: Option<PathBuf>,
    /// Address to listen on. Default: 0.0.0.0 and stylus.imageRedirectWebhook.port, or 8443.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// An image that cannot be rewritten: `ignore` allows the pod with a warning and leaves the
    /// image; `fail` denies the pod.
    #[arg(long, value_parser = policy(), default_value = "ignore")]
    failure_policy: FailurePolicy,
    /// Deny pods with an image this signature policy refuses (docs/policy.md).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
}

#[derive(Args)]
struct ManifestArgs {
    /// The webhook's namespace (excluded from the webhook).
    #[arg(long, value_name = "NS", default_value = "berth-system")]
    namespace: String,
    /// The Service name (it selects pods labelled app.kubernetes.io/name=NAME).
    #[arg(long, value_name = "NAME", default_value = "berth-webhook")]
    service: String,
    /// The port `berth webhook` listens on in its pod (the Service's targetPort).
    #[arg(long, value_name = "PORT", default_value_t = 8443)]
    target_port: u16,
    /// Call the webhook at this URL instead of through a Service (e.g. on the control-plane
    /// host: https://127.0.0.1:8443/mutate); no Service is printed.
    #[arg(long, value_name = "URL", conflicts_with = "service")]
    url: Option<String>,
    /// The CA certificate (PEM) that signed the serving certificate (becomes caBundle).
    #[arg(long, value_name = "FILE")]
    ca_bundle: Option<PathBuf>,
    /// What the API server does when the webhook cannot be reached.
    #[arg(long, value_parser = policy(), default_value = "ignore")]
    failure_policy: FailurePolicy,
}

/// `ignore` or `fail`.
fn policy() -> impl TypedValueParser<Value = FailurePolicy> {
    let words = clap::builder::PossibleValuesParser::new(["ignore", "fail"]);
    words.map(|w| [FailurePolicy::Ignore, FailurePolicy::Fail][usize::from(w == "fail")])
}

pub fn webhook(args: WebhookArgs) -> Result<ExitCode> {
    match args.command {
        Some(WebhookCommand::Manifest(m)) => manifest(m),
        None => serve_webhook(args.serve),
    }
}

fn manifest(a: ManifestArgs) -> Result<ExitCode> {
    let (url, port) = (a.url.as_deref(), a.target_port);
    let endpoint = Endpoint::url_or_service(url, &a.namespace, &a.service, port)?;
    let mut o = ManifestOptions {
        endpoint,
        own_namespace: a.namespace,
        failure_policy: a.failure_policy,
        ..ManifestOptions::default()
    };
    if let Some(p) = &a.ca_bundle {
        o.ca_bundle(&p.display().to_string(), inputs::read(p)?)?;
    }
    print!("{}", webhook::manifest(&o));
    Ok(ExitCode::SUCCESS)
}

fn serve_webhook(a: WebhookServeArgs) -> Result<ExitCode> {
    let (Some(ud_path), Some(cert), Some(key)) = (a.user_data, a.tls_cert, a.tls_key) else {
        bail!("berth webhook needs --user-data, --tls-cert and --tls-key");
    };
    let ud = inputs::user_data(&ud_path)?;
    let local = a.edge.parse()?.map(|e| e.local().clone());
    let server = WebhookServer {
        cert,
        key,
        listen: a.listen,
        failure_policy: a.failure_policy,
        policy: a.policy,
    };
    let log: webhook::Logger = Arc::new(|line: &str| eprintln!("berth webhook: {line}"));
    crate::runtime()?.block_on(server.run(&ud, local, log))?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct CredentialProviderArgs {
    #[command(subcommand)]
    command: Option<ProviderCommand>,
    #[command(flatten)]
    args: ProviderArgs,
}

#[derive(Subcommand)]
enum ProviderCommand {
    /// Print kubelet's CredentialProviderConfig (for --image-credential-provider-config) that
    /// runs this provider for the hosts of every registry with credentials.
    Config(ProviderArgs),
}

#[derive(Args)]
struct ProviderArgs {
    /// Palette user data (#cloud-config) with the registries' credentials (`config`: the file
    /// as the node sees it, written, made absolute, into `args`).
    #[arg(long, value_name = "FILE", required = true)]
    user_data: Option<PathBuf>,
    /// How long kubelet may keep an answer (`config`: defaultCacheDuration): 30s, 10m, 2h, 1d.
    #[arg(long, value_name = "DURATION", default_value = credential_provider::DEFAULT_CACHE_DURATION, value_parser = berth_registry::parse_duration)]
    cache_duration: Duration,
}

pub fn credential_provider(a: CredentialProviderArgs) -> Result<ExitCode> {
    let config = a.command.is_some();
    let args = match a.command {
        Some(ProviderCommand::Config(c)) => c,
        None => a.args,
    };
    let Some(path) = args.user_data else {
        bail!("berth credential-provider needs --user-data FILE");
    };
    let (ud, cache) = (inputs::user_data(&path)?, go_duration(args.cache_duration));
    if config {
        let path = std::path::absolute(&path)
            .unwrap_or(path)
            .display()
            .to_string();
        let config = credential_provider::provider_config(&ud, &path, &cache);
        print!("{}", config?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut input = String::new();
    let stdin = std::io::stdin().read_to_string(&mut input);
    stdin.context("cannot read the request from standard input")?;
    match credential_provider::respond_json(&ud, &input, &cache) {
        Ok(json) => println!("{json}"),
        Err(e) => {
            eprintln!("berth credential-provider: {e}");
            return Ok(ExitCode::from(crate::EXIT_FINDINGS));
        }
    }
    Ok(ExitCode::SUCCESS)
}
