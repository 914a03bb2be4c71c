//! `berth webhook` (the admission webhook, berth-node) and `berth webhook manifest`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use berth_node::webhook::{self, Endpoint, FailurePolicy, ManifestOptions, Mutator};
use berth_rewrite::Rewriter;
use clap::{Args, Subcommand, ValueEnum};

use crate::inputs;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct WebhookArgs {
    #[command(subcommand)]
    command: Option<WebhookCommand>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum WebhookCommand {
    /// Print the MutatingWebhookConfiguration (pods CREATE, sideEffects None, opted-out and own
    /// namespaces excluded) and the Service that install the webhook, as YAML.
    Manifest(ManifestArgs),
}

#[derive(Args)]
struct ServeArgs {
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
    #[arg(long, value_enum, default_value_t = Policy::Ignore)]
    failure_policy: Policy,
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
    #[arg(long, value_enum, default_value_t = Policy::Ignore)]
    failure_policy: Policy,
}

#[derive(ValueEnum, Clone, Copy, PartialEq, Eq)]
enum Policy {
    Ignore,
    Fail,
}

impl From<Policy> for FailurePolicy {
    fn from(p: Policy) -> FailurePolicy {
        match p {
            Policy::Ignore => FailurePolicy::Ignore,
            Policy::Fail => FailurePolicy::Fail,
        }
    }
}

pub fn run(args: WebhookArgs) -> Result<ExitCode> {
    match args.command {
        Some(WebhookCommand::Manifest(m)) => manifest(m),
        None => serve(args.serve),
    }
}

fn manifest(a: ManifestArgs) -> Result<ExitCode> {
    let mut ca_bundle_pem = None;
    if let Some(p) = &a.ca_bundle {
        let pem = inputs::read(p)?;
        berth_userdata::split_pem(&pem).map_err(|m| anyhow!("{}: {m}", p.display()))?;
        ca_bundle_pem = Some(pem);
    }
    let endpoint = match a.url {
        Some(url) if !url.starts_with("https://") => bail!(
            "--url {url}: the API server calls webhooks over HTTPS; give https://HOST[:PORT]/mutate"
        ),
        Some(url) => Endpoint::Url(url),
        None => Endpoint::Service {
            namespace: a.namespace.clone(),
            name: a.service,
            port: 443,
            target_port: a.target_port,
        },
    };
    let o = ManifestOptions {
        endpoint,
        own_namespace: a.namespace,
        ca_bundle_pem,
        failure_policy: a.failure_policy.into(),
        ..ManifestOptions::default()
    };
    print!("{}", webhook::manifest(&o));
    Ok(ExitCode::SUCCESS)
}

fn serve(a: ServeArgs) -> Result<ExitCode> {
    let (Some(ud_path), Some(cert), Some(key)) = (a.user_data, a.tls_cert, a.tls_key) else {
        bail!("berth webhook needs --user-data, --tls-cert and --tls-key");
    };
    let ud = inputs::user_data(&ud_path)?;
    let local = a.edge.parse()?.map(|e| e.local().clone());
    let read =
        |p: &PathBuf| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()));
    let tls = webhook::tls_config(&read(&cert)?, &read(&key)?)?;
    let port = if ud.webhook.port == 0 {
        8443
    } else {
        ud.webhook.port
    };
    let listen = a.listen.unwrap_or(SocketAddr::from(([0, 0, 0, 0], port)));
    let rewriter = Rewriter::new(Some(&ud), local);
    let log: webhook::Logger = Arc::new(|line: &str| eprintln!("berth webhook: {line}"));
    if !rewriter.enabled() {
        let off = "stylus.imageRedirectWebhook.enable is false: every pod is allowed unchanged";
        log(&format!("{}: {off}", ud.file));
    }
    log(&format!(
        "rules: {}; listening on https://{listen}/mutate",
        ud.redirect
    ));
    let mutator = Arc::new(Mutator::new(rewriter, a.failure_policy.into()));
    crate::runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await;
        let listener = listener.with_context(|| format!("cannot listen on {listen}"))?;
        anyhow::Ok(webhook::serve(listener, tls, mutator, log, webhook::shutdown_signal()).await?)
    })?;
    Ok(ExitCode::SUCCESS)
}
