//! `berth credential-provider` (kubelet's image credential provider) and `... config`.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use berth_node::credential_provider;
use berth_transfer::units::go_duration;
use clap::{Args, Subcommand};

use crate::inputs;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct CredentialProviderArgs {
    #[command(subcommand)]
    command: Option<ProviderCommand>,
    /// Palette user data (#cloud-config) with the registries' credentials.
    #[arg(long, value_name = "FILE", required = true)]
    user_data: Option<PathBuf>,
    /// How long kubelet may keep an answer (30s, 10m, 2h, 1d).
    #[arg(long, value_name = "DURATION", default_value = credential_provider::DEFAULT_CACHE_DURATION, value_parser = berth_registry::parse_duration)]
    cache_duration: Duration,
}

#[derive(Subcommand)]
enum ProviderCommand {
    /// Print kubelet's CredentialProviderConfig (for --image-credential-provider-config) that
    /// runs this provider for the hosts of every registry with credentials.
    Config(ConfigArgs),
}

#[derive(Args)]
struct ConfigArgs {
    /// The user data file as the node sees it (written, made absolute, into `args`).
    #[arg(long, value_name = "FILE")]
    user_data: PathBuf,
    /// defaultCacheDuration (mandatory for kubelet): 30s, 10m, 2h, 1d.
    #[arg(long, value_name = "DURATION", default_value = credential_provider::DEFAULT_CACHE_DURATION, value_parser = berth_registry::parse_duration)]
    cache_duration: Duration,
}

pub fn run(args: CredentialProviderArgs) -> Result<ExitCode> {
    if let Some(ProviderCommand::Config(c)) = args.command {
        let ud = inputs::user_data(&c.user_data)?;
        let path = std::path::absolute(&c.user_data).unwrap_or(c.user_data.clone());
        let (path, cache) = (path.display().to_string(), go_duration(c.cache_duration));
        let config = credential_provider::provider_config(&ud, &path, &cache)?;
        print!("{config}");
        return Ok(ExitCode::SUCCESS);
    }
    let Some(path) = args.user_data else {
        bail!("berth credential-provider needs --user-data FILE");
    };
    let ud = inputs::user_data(&path)?;
    let mut input = String::new();
    let stdin = std::io::stdin().read_to_string(&mut input);
    stdin.context("cannot read the request from standard input")?;
    match credential_provider::respond_json(&ud, &input, &go_duration(args.cache_duration)) {
        Ok(json) => println!("{json}"),
        Err(e) => {
            eprintln!("berth credential-provider: {e}");
            return Ok(ExitCode::from(crate::EXIT_FINDINGS));
        }
    }
    Ok(ExitCode::SUCCESS)
}
