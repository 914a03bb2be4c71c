//! `berth serve`, `berth gc`, `berth fsck`: the edge registry (berth-registry) and its store.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use berth_registry::{Config, LogFormat, Server};
use berth_store::{GcOptions, Store};
use clap::{Args, ValueEnum};

use crate::Output;

#[derive(ValueEnum, Clone, Copy)]
pub enum LogFormatArg {
    Text,
    Json,
}

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
    #[arg(long, value_enum)]
    log_format: Option<LogFormatArg>,
}

/// The settings: embedded defaults, then the file, then the flags.
fn settings(args: &ServeArgs) -> Result<Config> {
    let mut cfg = match &args.config {
        Some(p) => Config::from_file(p)?,
        None => Config::default(),
    };
    cfg.listen = args.listen.clone().unwrap_or(cfg.listen);
    cfg.data = args.data.clone().unwrap_or(cfg.data);
    cfg.proxy.user_data = args.user_data.clone().or(cfg.proxy.user_data);
    if let Some(t) = &args.tag_recheck {
        if berth_registry::parse_duration(t).is_none() {
            bail!("--tag-recheck `{t}` is not a duration (30s, 5m, 1h or seconds)");
        }
        cfg.proxy.tag_recheck = Some(t.clone());
    }
    cfg.auth.htpasswd = args.htpasswd.clone().or(cfg.auth.htpasswd);
    cfg.auth.anonymous_pull |= args.anonymous_pull;
    if args.tls_self_signed || args.tls_cert.is_some() {
        cfg.tls.self_signed = args.tls_self_signed;
        (cfg.tls.cert, cfg.tls.key) = (args.tls_cert.clone(), args.tls_key.clone());
    }
    cfg.log_format = match args.log_format {
        Some(LogFormatArg::Text) => LogFormat::Text,
        Some(LogFormatArg::Json) => LogFormat::Json,
        None => cfg.log_format,
    };
    if cfg.auth.anonymous_pull && cfg.auth.htpasswd.is_none() {
        bail!("anonymous_pull needs an htpasswd file (without one, everything is anonymous)");
    }
    Ok(cfg)
}

pub fn serve(args: ServeArgs) -> Result<ExitCode> {
    let cfg = settings(&args)?;
    crate::init_logs(matches!(cfg.log_format, LogFormat::Json), "info");
    crate::runtime()?.block_on(async {
        let server = Server::bind(cfg).await?;
        let scheme = if server.state().tls() {
            "https"
        } else {
            "http"
        };
        println!("berth: serving {scheme}://{}", server.local_addr());
        anyhow::Ok(server.run(berth_registry::shutdown_signal()).await?)
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `30s`, `15m`, `2h`, `1d` or plain seconds: the one duration syntax of every flag.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    berth_registry::parse_duration(s)
        .ok_or_else(|| format!("`{s}` is not a duration: use e.g. 30s, 15m, 2h or 1d"))
}

/// An existing data directory (gc and fsck never create one).
fn open_data(data: &std::path::Path) -> Result<Store> {
    if !data.join("blobs").is_dir() {
        let data = data.display();
        bail!("`{data}` is not a berth data directory (no blobs/): give the registry's --data");
    }
    Ok(Store::open(data)?)
}

#[derive(Args)]
pub struct GcArgs {
    /// The registry's data directory.
    #[arg(long, default_value = "berth-data", env = "BERTH_DATA")]
    data: PathBuf,
    /// Keep anything younger than this (pushes in progress), e.g. 30m, 2h.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    grace: Duration,
    /// Also remove manifests no tag reaches (directly, through an index, or as a referrer).
    #[arg(long)]
    delete_untagged: bool,
    /// Print what would be removed; remove nothing.
    #[arg(long)]
    dry_run: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

pub fn gc(a: GcArgs) -> Result<ExitCode> {
    let (grace, delete_untagged, dry_run) = (a.grace, a.delete_untagged, a.dry_run);
    let r = open_data(&a.data)?.gc(&GcOptions {
        grace,
        delete_untagged,
        dry_run,
    })?;
    let verb = if a.dry_run { "would remove" } else { "removed" };
    if a.output == Output::Json {
        crate::print_json(&r)?;
    }
    say!("{verb} {r}");
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct FsckArgs {
    /// The registry's data directory.
    #[arg(long, default_value = "berth-data", env = "BERTH_DATA")]
    data: PathBuf,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

pub fn fsck(args: FsckArgs) -> Result<ExitCode> {
    let r = open_data(&args.data)?.fsck()?;
    match args.output {
        Output::Json => crate::print_json(&r)?,
        Output::Table => r.findings.iter().for_each(|f| println!("{f}")),
    }
    say!("{r}");
    Ok(crate::exit_status(!r.is_clean()))
}
