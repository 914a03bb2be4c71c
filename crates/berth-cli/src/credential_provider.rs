//! `berth credential-provider`: the kubelet image credential provider, and
//! `berth credential-provider config`: kubelet's CredentialProviderConfig for it.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use berth_node::credential_provider;
use clap::{Args, Subcommand};

use crate::{Failure, inputs};

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct CredentialProviderArgs {
    #[command(subcommand)]
    command: Option<ProviderCommand>,
    /// Palette user data (#cloud-config) with the registries' credentials.
    #[arg(long, value_name = "FILE", required = true)]
    user_data: Option<PathBuf>,
    /// How long kubelet may keep an answer (a Go duration).
    #[arg(long, value_name = "DURATION", default_value = credential_provider::DEFAULT_CACHE_DURATION)]
    cache_duration: String,
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
    /// defaultCacheDuration (mandatory for kubelet).
    #[arg(long, value_name = "DURATION", default_value = credential_provider::DEFAULT_CACHE_DURATION)]
    cache_duration: String,
}

pub fn run(args: CredentialProviderArgs) -> Result<ExitCode, Failure> {
    match args.command {
        Some(ProviderCommand::Config(c)) => {
            let ud = inputs::user_data(&c.user_data)?;
            let path = std::path::absolute(&c.user_data).unwrap_or(c.user_data.clone());
            let yaml = credential_provider::provider_config(
                &ud,
                &path.display().to_string(),
                &c.cache_duration,
            )?;
            print!("{yaml}");
            Ok(ExitCode::SUCCESS)
        }
        None => {
            let Some(path) = args.user_data else {
                return Err(
                    anyhow::anyhow!("berth credential-provider needs --user-data FILE").into(),
                );
            };
            let ud = inputs::user_data(&path)?;
            let mut input = String::new();
            std::io::stdin()
                .read_to_string(&mut input)
                .context("cannot read the request from standard input")?;
            match credential_provider::respond_json(&ud, &input, &args.cache_duration) {
                Ok(json) => {
                    println!("{json}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("berth credential-provider: {e}");
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}
