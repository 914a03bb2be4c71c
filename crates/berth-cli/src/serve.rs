//! `berth serve`, `berth gc`, `berth fsck`: the edge registry (berth-registry on
//! berth-store) and the maintenance of its data directory.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use berth_registry::{Config, LogFormat, Server};
use berth_store::{GcOptions, Store};
use clap::{Args, ValueEnum};

use crate::{EXIT_FINDINGS, Failure};

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
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Palette user data: its registries (host, credentials, CA, insecure) become
    /// pull-through upstreams, and its redirect (prefix or mapping rules) sends pulls of
    /// other hosts (`?ns=docker.io`, `/v2/spectro-images/docker.io/...`) to them.
    #[arg(long, value_name = "FILE")]
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
pub fn settings(args: &ServeArgs) -> anyhow::Result<Config> {
    let mut cfg = match &args.config {
        Some(p) => Config::from_file(p)?,
        None => Config::default(),
    };
    if let Some(l) = &args.listen {
        cfg.listen = l.clone();
    }
    if let Some(d) = &args.data {
        cfg.data = d.clone();
    }
    if let Some(u) = &args.user_data {
        cfg.proxy.user_data = Some(u.clone());
    }
    if let Some(t) = &args.tag_recheck {
        if berth_registry::parse_duration(t).is_none() {
            bail!("--tag-recheck `{t}` is not a duration (30s, 5m, 1h or seconds)");
        }
        cfg.proxy.tag_recheck = Some(t.clone());
    }
    if let Some(h) = &args.htpasswd {
        cfg.auth.htpasswd = Some(h.clone());
    }
    if args.anonymous_pull {
        cfg.auth.anonymous_pull = true;
    }
    if let (Some(c), Some(k)) = (&args.tls_cert, &args.tls_key) {
        cfg.tls.cert = Some(c.clone());
        cfg.tls.key = Some(k.clone());
        cfg.tls.self_signed = false;
    }
    if args.tls_self_signed {
        cfg.tls.cert = None;
        cfg.tls.key = None;
        cfg.tls.self_signed = true;
    }
    if let Some(f) = args.log_format {
        cfg.log_format = match f {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        };
    }
    if cfg.auth.anonymous_pull && cfg.auth.htpasswd.is_none() {
        bail!("anonymous_pull needs an htpasswd file (without one, everything is anonymous)");
    }
    Ok(cfg)
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => b.json().try_init(),
        LogFormat::Text => b.try_init(),
    };
}

pub fn serve(args: ServeArgs) -> Result<ExitCode, Failure> {
    let cfg = settings(&args)?;
    init_logs(cfg.log_format);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    rt.block_on(async {
        let server = Server::bind(cfg).await?;
        let scheme = if server.state().tls() {
            "https"
        } else {
            "http"
        };
        println!("berth: serving {scheme}://{}", server.local_addr());
        server.run(berth_registry::shutdown_signal()).await?;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `30s`, `15m`, `2h`, `1d` or plain seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, 's')) => (&s[..i], 1),
        Some((i, 'm')) => (&s[..i], 60),
        Some((i, 'h')) => (&s[..i], 3600),
        Some((i, 'd')) => (&s[..i], 86400),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .map(|n| Duration::from_secs(n * mult))
        .map_err(|_| format!("`{s}` is not a duration: use e.g. 30s, 15m, 2h or 1d"))
}

/// An existing data directory (gc and fsck never create one).
fn open_data(data: &std::path::Path) -> anyhow::Result<Store> {
    if !data.join("blobs").is_dir() {
        bail!(
            "`{}` is not a berth data directory (no blobs/): give the registry's --data",
            data.display()
        );
    }
    Ok(Store::open(data)?)
}

#[derive(Args)]
pub struct GcArgs {
    /// The registry's data directory.
    #[arg(long, value_name = "DIR", default_value = "berth-data")]
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
}

pub fn gc(args: GcArgs) -> Result<ExitCode, Failure> {
    let store = open_data(&args.data)?;
    let r = store.gc(&GcOptions {
        grace: args.grace,
        delete_untagged: args.delete_untagged,
        dry_run: args.dry_run,
    })?;
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    println!(
        "{verb} {} blobs ({} bytes), {} untagged manifests, {} layer links; kept {} blobs ({} younger than the grace period)",
        r.blobs_removed,
        r.bytes_removed,
        r.manifests_removed,
        r.layer_links_removed,
        r.blobs_kept + r.blobs_young,
        r.blobs_young
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct FsckArgs {
    /// The registry's data directory.
    #[arg(long, value_name = "DIR", default_value = "berth-data")]
    data: PathBuf,
}

pub fn fsck(args: FsckArgs) -> Result<ExitCode, Failure> {
    let store = open_data(&args.data)?;
    let r = store.fsck()?;
    for f in &r.findings {
        println!("{f}");
    }
    println!(
        "checked {} blobs ({} bytes): {}",
        r.blobs_checked,
        r.bytes_checked,
        if r.is_clean() {
            "no damage".to_string()
        } else {
            format!("{} problems", r.findings.len())
        }
    );
    Ok(if r.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FINDINGS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("soon").is_err());
    }

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: ServeArgs,
    }

    #[test]
    fn pull_through_flags() {
        use clap::Parser;
        let c = Cli::try_parse_from(["serve", "--user-data", "/ud.yaml", "--tag-recheck", "5m"])
            .unwrap();
        let cfg = settings(&c.args).unwrap();
        assert_eq!(cfg.proxy.user_data, Some(PathBuf::from("/ud.yaml")));
        assert_eq!(cfg.proxy.tag_recheck.as_deref(), Some("5m"));
        let c = Cli::try_parse_from(["serve", "--tag-recheck", "soon"]).unwrap();
        assert!(settings(&c.args).is_err());
    }
}
