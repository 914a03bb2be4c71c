//! `berth serve`, `berth gc`, `berth fsck`: the edge registry (berth-registry) and its store.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use berth_registry::{Config, LogFormat, Server};
use berth_store::{GcOptions, Store};
use clap::Args;
use clap::builder::TypedValueParser;

#[derive(Args)]
pub struct ServeArgs {
    /// YAML settings (see docs/serve.md); flags override it. Without it, embedded defaults:
    /// listen 127.0.0.1:5000, data ./berth-data, no TLS, no auth.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on, e.g. 0.0.0.0:5000.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// The data directory (blobs, repositories, generated TLS material).
    #[arg(long, value_name = "DIR", env = "BERTH_DATA")]
    data: Option<PathBuf>,
    /// Palette user data: its registries become pull-through upstreams, and its rules send
    /// pulls of other hosts (`?ns=docker.io`, `/v2/spectro-images/docker.io/...`) to them.
    #[arg(long, value_name = "FILE", env = "BERTH_USER_DATA")]
    user_data: Option<PathBuf>,
    /// Pull-through: re-check a cached tag upstream at most this often (30s, 5m, 1h).
    #[arg(long, value_name = "DURATION")]
    tag_recheck: Option<String>,
    /// htpasswd file with bcrypt entries (`htpasswd -B`): pushes need a user of it, and
    /// pulls too unless --anonymous-pull.
    #[arg(long, value_name = "FILE")]
    htpasswd: Option<PathBuf>,
    /// With --htpasswd: allow pulls without credentials.
    #[arg(long)]
    anonymous_pull: bool,
    /// PEM certificate chain for TLS (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for TLS (with --tls-cert).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// TLS with a CA and certificate generated into DATA/tls/ (reused on restart); clients
    /// trust DATA/tls/ca.crt.
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    tls_self_signed: bool,
    /// Log format.
    #[arg(long, value_parser = log_format())]
    log_format: Option<LogFormat>,
}

/// `text` or `json`.
fn log_format() -> impl TypedValueParser<Value = LogFormat> {
    let words = clap::builder::PossibleValuesParser::new(["text", "json"]);
    words.map(|w| [LogFormat::Text, LogFormat::Json][usize::from(w == "json")])
}

pub fn serve(a: ServeArgs) -> Result<ExitCode> {
    // What the flags set over the file.
    let flags = berth_registry::Overrides {
        listen: a.listen,
        data: a.data,
        user_data: a.user_data,
        tag_recheck: a.tag_recheck,
        htpasswd: a.htpasswd,
        anonymous_pull: a.anonymous_pull,
        tls_cert: a.tls_cert,
        tls_key: a.tls_key,
        tls_self_signed: a.tls_self_signed,
        log_format: a.log_format,
    };
    let cfg = Config::load(a.config.as_deref(), flags)?;
    crate::init_logs(matches!(cfg.log_format, LogFormat::Json), "info");
    crate::runtime()?.block_on(async {
        let server = Server::bind(cfg).await?;
        println!("berth: serving {}", server.url());
        anyhow::Ok(server.run(berth_registry::shutdown_signal()).await?)
    })?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct GcArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Keep anything younger than this (pushes in progress), e.g. 30m, 2h.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = berth_registry::parse_duration)]
    grace: Duration,
    /// Also remove manifests no tag reaches (directly, through an index, or as a referrer).
    #[arg(long)]
    delete_untagged: bool,
    /// Print what would be removed; remove nothing.
    #[arg(long)]
    dry_run: bool,
}

pub fn gc(a: GcArgs) -> Result<ExitCode> {
    let (grace, delete_untagged, dry_run) = (a.grace, a.delete_untagged, a.dry_run);
    let opts = GcOptions {
        grace,
        delete_untagged,
        dry_run,
    };
    let r = Store::open_existing(&a.store.data)?.gc(&opts)?;
    if crate::json_out() {
        crate::print_json(&r)?;
    }
    say!("{r}");
    Ok(ExitCode::SUCCESS)
}

/// The edge registry's store.
#[derive(Args)]
pub struct StoreArgs {
    /// The registry's data directory.
    #[arg(long, default_value = "berth-data", env = "BERTH_DATA")]
    data: PathBuf,
}

pub fn fsck(args: StoreArgs) -> Result<ExitCode> {
    let r = Store::open_existing(&args.data)?.fsck()?;
    match crate::json_out() {
        true => crate::print_json(&r)?,
        false => r.findings.iter().for_each(|f| println!("{f}")),
    }
    say!("{r}");
    Ok(crate::exit_status(!r.is_clean()))
}
