//! What commands read: user data, profiles, and the edge-registry flags every command spells
//! alike (`--edge-registry`, `--edge-project`, `--edge-ca`, `--edge-insecure`, `--edge-creds`;
//! the old `--local-registry`, `--project`, `--dest-cert-dir`, `--dest-tls-verify`,
//! `--dest-creds` are hidden aliases). Errors name the file or flag.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use berth_chart::{Chart, ImageScope};
use berth_client::{RegistryConfigs, creds_for, read_cas};
use berth_plan::{Charts, EdgeAccess, EdgeRegistry, Login, Plan};
use berth_profile::Profile;
use berth_rewrite::Rewriter;
use berth_userdata::UserData;
use clap::Args;

use crate::RedirectArgs;

pub const EXAMPLE_EXPORT: &str = include_str!("../../../examples/palette-export.json");
const EXAMPLE_CHART: &[u8] = include_bytes!("../../../examples/charts/podinfo-6.14.1.tgz");

/// What completes the profiles: their variables and the charts of their Helm packs.
#[derive(Args, Clone, Default)]
pub struct ProfileInputs {
    /// Set a profile variable ({{.spectro.var.NAME}}) over its default. Repeatable.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub var: Vec<String>,
    /// A YAML mapping of profile variables (NAME: VALUE); --var wins over it.
    #[arg(long, value_name = "FILE")]
    pub vars: Option<PathBuf>,
    /// The charts of the profiles' Helm packs, rendered with each pack's values: a directory
    /// of NAME-VERSION.tgz or NAME/ chart directories, as `helm pull [--untar]` writes them.
    #[arg(long, value_name = "DIR")]
    pub charts: Option<PathBuf>,
    /// Fetch charts missing from --charts DIR from their `repo` into DIR (as `helm pull -d`).
    #[arg(long, requires = "charts")]
    pub pull_charts: bool,
    /// Chart repositories' credentials: [HOST=]USER:PASS (repeatable), else auth.json's.
    #[arg(long, value_name = "[HOST=]USER:PASS", hide_env_values = true)]
    pub chart_creds: Vec<String>,
    /// Chart repositories' CA certificates: a PEM file, or a directory of *.crt files.
    #[arg(long, value_name = "FILE|DIR")]
    pub chart_ca: Option<PathBuf>,
    /// Do not verify chart repositories' TLS certificates (and allow plain HTTP).
    #[arg(long)]
    pub chart_insecure: bool,
    /// The Kubernetes version charts are rendered for (.Capabilities.KubeVersion).
    #[arg(long, value_name = "V", default_value = "v1.34.0")]
    pub kube_version: String,
    /// The charts' images: `all` (Pod templates, and references in container args and env,
    /// ConfigMaps, custom resources) or `pod` (Pod templates' `image` only, as Helm renders).
    #[arg(long, value_name = "SET", default_value = "all", value_parser = ["all", "pod"])]
    pub images: String,
}

impl ProfileInputs {
    /// The profiles of `paths` (or example `ex`) with the variables set, and the
    /// charts `--charts` (and the example's podinfo chart) has for their Helm packs.
    pub fn read(&self, paths: &[PathBuf], ex: Option<&str>) -> Result<(Vec<Profile>, Charts)> {
        let text = self.vars.as_deref().map(read).transpose()?;
        let name = self.vars.as_ref().map(|p| p.display().to_string());
        let vars = name.as_deref().zip(text.as_deref());
        let vars = berth_profile::variable_overrides(vars, &self.var)?;
        let mut ps = match ex {
            Some("export") => berth_profile::parse_profiles(EXAMPLE_EXPORT, "<example export>")?,
            Some(_) => vec![Profile::example()?],
            None => profiles(paths)?,
        };
        ps.iter_mut().for_each(|p| p.set_variables(&vars));
        let pull = self.charts.as_deref().filter(|_| self.pull_charts);
        berth_chartrepo::pull_missing_blocking(&ps, pull, &self.chart_access())?;
        let mut charts = Charts::collect(&ps, &self.kube_version, |s| match &self.charts {
            _ if ex.is_some() && s.name == "podinfo" => {
                Chart::from_tgz(EXAMPLE_CHART, "podinfo").map(Some)
            }
            Some(dir) => berth_chart::fs::find_in(dir, &s.name, &s.version),
            None => Ok(None),
        })?;
        charts.images = self.scope();
        Ok((ps, charts))
    }

    pub fn chart_access(&self) -> berth_chartrepo::RepoAccess {
        berth_chartrepo::RepoAccess::new(&self.chart_creds, &self.chart_ca, self.chart_insecure)
    }

    pub fn scope(&self) -> ImageScope {
        [ImageScope::All, ImageScope::Pod][usize::from(self.images == "pod")]
    }
}

/// Where the edge registry is: the prefix of every target.
#[derive(Args, Clone, Default)]
pub struct EdgeTarget {
    /// The edge registry that fronts every image: [https://|http://]HOST[:PORT][/PROJECT].
    /// Targets become HOST[:PORT]/<project>/<registry>/<path>.
    #[arg(
        long,
        alias = "local-registry",
        value_name = "URL",
        env = "BERTH_EDGE_REGISTRY"
    )]
    pub edge_registry: Option<String>,
    /// The edge registry's project, the first path component (default spectro-images).
    #[arg(
        long,
        alias = "project",
        value_name = "NAME",
        requires = "edge_registry",
        env = "BERTH_EDGE_PROJECT"
    )]
    pub edge_project: Option<String>,
}

/// How to trust and log in to the edge registry.
#[derive(Args, Clone, Default)]
pub struct EdgeLogin {
    /// CA certificate(s) of the edge registry (e.g. `berth serve`'s DATA/tls/ca.crt): a PEM
    /// file, or a directory of *.crt files.
    #[arg(
        long,
        alias = "dest-cert-dir",
        value_name = "FILE|DIR",
        requires = "edge_registry",
        env = "BERTH_EDGE_CA"
    )]
    pub edge_ca: Option<PathBuf>,
    /// Do not verify the edge registry's TLS certificate.
    #[arg(long, requires = "edge_registry")]
    pub edge_insecure: bool,
    /// The old spelling of --edge-insecure: `--dest-tls-verify=false`.
    #[arg(long = "dest-tls-verify", hide = true, value_name = "BOOL", action = clap::ArgAction::Set, requires = "edge_registry")]
    pub dest_tls_verify: Option<bool>,
    /// Credentials for the edge registry: USER:PASS, or REGISTRY=USER:PASS for one host
    /// (repeatable).
    #[arg(
        long,
        alias = "dest-creds",
        value_name = "USER:PASS",
        requires = "edge_registry",
        env = "BERTH_EDGE_CREDS",
        hide_env_values = true
    )]
    pub edge_creds: Vec<String>,
}

/// What the edge host's commands read: the user data, the profiles, and the edge registry
/// tried first (`http://` for plain HTTP; --edge-ca also goes into hosts.toml).
#[derive(Args, Clone)]
pub struct NodeInputs {
    /// Palette user data (#cloud-config): rules, registries, certificates, credentials.
    #[arg(long, value_name = "FILE", env = "BERTH_USER_DATA")]
    pub user_data: PathBuf,
    /// Cluster profile files (YAML or JSON). Repeatable: `--profile A B` or `--profile A --profile B`.
    #[arg(long = "profile", value_name = "FILE", required = true, num_args = 1.., env = "BERTH_PROFILE")]
    pub profiles: Vec<PathBuf>,
    #[command(flatten)]
    pub edge: EdgeTarget,
    #[command(flatten)]
    pub login: EdgeLogin,
    #[command(flatten)]
    pub profile: ProfileInputs,
}

impl NodeInputs {
    /// The user data (refused when `command` could do nothing with it), the profiles and the
    /// edge registry.
    pub fn read(
        &self,
        command: &str,
    ) -> Result<(UserData, Vec<Profile>, Charts, Option<EdgeAccess>)> {
        let ud = user_data(&self.user_data)?;
        refuse_empty(&ud, command)?;
        let edge = self.edge.access(&self.login)?;
        let (profiles, charts) = self.profile.read(&self.profiles, None)?;
        Ok((ud, profiles, charts, edge))
    }
}

impl EdgeTarget {
    /// The parsed address, if given.
    pub fn parse(&self) -> Result<Option<EdgeRegistry>> {
        let parse = |url: &String| EdgeRegistry::parse(url, self.edge_project.as_deref());
        let r = self.edge_registry.as_ref().map(parse).transpose();
        r.map_err(|e| anyhow!("--edge-registry: {e}"))
    }

    /// The address with its TLS settings and login, if given.
    pub fn access(&self, login: &EdgeLogin) -> Result<Option<EdgeAccess>> {
        let Some(registry) = self.parse()? else {
            return Ok(None);
        };
        let cas = login.edge_ca.as_deref().map(read_cas).transpose();
        let creds = creds_for(&login.edge_creds, registry.host()).context("--edge-creds")?;
        Ok(Some(EdgeAccess {
            insecure: login.edge_insecure || login.dest_tls_verify == Some(false),
            registry,
            ca_pems: cas.context("--edge-ca")?.unwrap_or_default(),
            login: creds.map(|c| Login::new(c.username, c.password)),
        }))
    }
}

/// The plan of one chart alone (`berth images --chart`), rendered with --values and --set.
pub(crate) fn chart_plan(p: &Path, a: &crate::ImagesArgs, rw: &Rewriter) -> Result<Plan> {
    let mut opts = berth_chart::fs::options(&a.values, &a.set, &a.inputs.kube_version)?;
    opts.images = a.inputs.scope();
    let chart = berth_chartrepo::load_blocking(p, &a.inputs.chart_access())?;
    let x = berth_plan::chart_extraction(&chart, &opts)?;
    Ok(Plan::from_images(&x.images, x.findings, rw)?)
}

pub fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

pub fn user_data(path: &Path) -> Result<UserData> {
    Ok(UserData::parse(&read(path)?, &path.display().to_string())?)
}

/// User data that `command` cannot work with: no registry setting comes out of it.
pub fn refuse_empty(ud: &UserData, command: &str) -> Result<()> {
    ud.why_empty()
        .map_or(Ok(()), |why| Err(anyhow!("berth {command}: {why}")))
}

/// Every profile in these files: Berth's format, a Palette export, or a list of exports.
pub fn profiles(paths: &[PathBuf]) -> Result<Vec<Profile>> {
    let each = |p: &PathBuf| -> Result<_> {
        let name = p.display().to_string();
        Ok(berth_profile::parse_profiles(&read(p)?, &name)?)
    };
    Ok(paths.iter().map(each).collect::<Result<Vec<_>>>()?.concat())
}

impl RedirectArgs {
    /// The rewrite function and the settings of the registries images go to (the user
    /// data's and the edge registry). `command`, when given, needs one of them and refuses
    /// user data it can do nothing with (else a warning says so); `example` stands for
    /// --user-data with the example user data.
    pub fn targets(
        &self,
        login: &EdgeLogin,
        command: Option<&str>,
        example: bool,
    ) -> Result<(Rewriter, RegistryConfigs)> {
        let neither = self.user_data.is_none() && self.edge.edge_registry.is_none();
        if let Some(c) = command.filter(|_| neither) {
            bail!(
                "berth {c} needs --user-data (the external registry) or --edge-registry (the edge registry) to know where images go"
            );
        }
        let ud = match &self.user_data {
            Some(p) => Some(user_data(p)?),
            None if example => Some(UserData::example()?),
            None => None,
        };
        match (command, &ud) {
            (Some(c), Some(u)) => refuse_empty(u, c)?,
            (None, Some(u)) => u.why_empty().iter().for_each(|w| eprintln!("warning: {w}")),
            _ => {}
        }
        let edge = self.edge.access(login)?;
        let (rewriter, settings) = berth_plan::targets(ud.as_ref(), edge.as_ref());
        Ok((rewriter, (&settings).into()))
    }
}
