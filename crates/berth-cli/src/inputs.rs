//! What commands read: user data, profiles, and the edge-registry flags every command spells
//! alike (`--edge-registry`, `--edge-project`, `--edge-ca`, `--edge-insecure`, `--edge-creds`;
//! the old `--local-registry`, `--project`, `--dest-cert-dir`, `--dest-tls-verify`,
//! `--dest-creds` are hidden aliases). Errors name the file or flag.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use berth_chart::Chart;
use berth_client::{RegistryConfigs, read_cas};
use berth_plan::{Charts, EdgeAccess, EdgeRegistry, Login, Plan};
use berth_profile::Profile;
use berth_rewrite::Rewriter;
use berth_userdata::UserData;
use clap::Args;

use crate::RedirectArgs;

pub const EXAMPLE_PROFILE: &str = include_str!("../../../examples/retail-edge.yaml");
pub const EXAMPLE_USER_DATA: &str = include_str!("../../../examples/user-data.yaml");
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
    /// The Kubernetes version charts are rendered for (.Capabilities.KubeVersion).
    #[arg(long, value_name = "V", default_value = "v1.34.0")]
    pub kube_version: String,
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
            Some(_) => vec![Profile::parse(EXAMPLE_PROFILE, "<example profile>")?],
            None => profiles(paths)?,
        };
        ps.iter_mut().for_each(|p| p.set_variables(&vars));
        let charts = Charts::collect(&ps, &self.kube_version, |s| match &self.charts {
            _ if ex.is_some() && s.name == "podinfo" => {
                Chart::from_tgz(EXAMPLE_CHART, "podinfo").map(Some)
            }
            Some(dir) => berth_chart::fs::find_in(dir, &s.name, &s.version),
            None => Ok(None),
        });
        Ok((ps, charts?))
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

/// How to trust the edge registry.
#[derive(Args, Clone, Default)]
pub struct EdgeTls {
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
}

/// How to log in to the edge registry.
#[derive(Args, Clone, Default)]
pub struct EdgeCreds {
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

impl EdgeTarget {
    /// The parsed address, if given.
    pub fn parse(&self) -> Result<Option<EdgeRegistry>> {
        let Some(url) = &self.edge_registry else {
            return Ok(None);
        };
        let r = EdgeRegistry::parse(url, self.edge_project.as_deref());
        Ok(Some(r.map_err(|e| anyhow!("--edge-registry: {e}"))?))
    }

    /// The address with its TLS settings and login, if given.
    pub fn access(&self, tls: &EdgeTls, creds: &EdgeCreds) -> Result<Option<EdgeAccess>> {
        let Some(registry) = self.parse()? else {
            return Ok(None);
        };
        let ca_pems = tls.edge_ca.as_deref().map(read_cas).transpose();
        let ca_pems = ca_pems.context("--edge-ca")?.unwrap_or_default();
        let mut login = None;
        for c in &creds.edge_creds {
            let (scope, c) = berth_client::parse_scoped_creds(c).context("--edge-creds")?;
            if scope.is_none_or(|s| s == registry.host()) {
                login = Some(Login::new(c.username, c.password));
            }
        }
        Ok(Some(EdgeAccess {
            insecure: tls.edge_insecure || tls.dest_tls_verify == Some(false),
            registry,
            ca_pems,
            login,
        }))
    }
}

/// The plan of one chart alone (`berth images --chart`), rendered with --values and --set.
pub(crate) fn chart_plan(p: &Path, a: &crate::ImagesArgs, rw: &Rewriter) -> Result<Plan> {
    let opts = berth_chart::fs::options(&a.values, &a.set, &a.inputs.kube_version)?;
    let x = berth_plan::chart_extraction(&berth_chart::fs::load_path(p)?, &opts)?;
    Ok(Plan::from_images(&x.images, x.findings, rw)?)
}

pub fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

pub fn user_data(path: &Path) -> Result<UserData> {
    let text = read(path)?;
    Ok(UserData::parse(&text, &path.display().to_string())?)
}

/// User data that `command` cannot work with: no registry setting comes out of it.
pub fn refuse_empty(ud: &UserData, command: &str) -> Result<()> {
    match ud.why_empty() {
        Some(why) => bail!("berth {command}: {why}"),
        None => Ok(()),
    }
}

/// Every profile in these files: Berth's format, a Palette export, or a list of exports.
pub fn profiles(paths: &[PathBuf]) -> Result<Vec<Profile>> {
    let mut out = Vec::new();
    for p in paths {
        out.extend(berth_profile::parse_profiles(
            &read(p)?,
            &p.display().to_string(),
        )?);
    }
    Ok(out)
}

/// The rewrite function for these flags (`example` supplies the example user data).
pub fn rewriter(args: &RedirectArgs, example: bool) -> Result<Rewriter> {
    let ud = match (&args.user_data, example) {
        (Some(p), _) => {
            let ud = user_data(p)?;
            ud.why_empty()
                .iter()
                .for_each(|w| eprintln!("warning: {w}"));
            Some(ud)
        }
        (None, true) => Some(UserData::parse(EXAMPLE_USER_DATA, "<example user data>")?),
        (None, false) => None,
    };
    let edge = args.edge.parse()?;
    Ok(Rewriter::new(ud.as_ref(), edge.map(|e| e.local().clone())))
}

impl RedirectArgs {
    /// The rewrite function and the settings of the registries images go to (the user
    /// data's and the edge registry). `command`, when given, needs one of them.
    pub fn targets(
        &self,
        tls: &EdgeTls,
        creds: &EdgeCreds,
        command: Option<&str>,
    ) -> Result<(Rewriter, RegistryConfigs)> {
        if let Some(c) =
            command.filter(|_| self.user_data.is_none() && self.edge.edge_registry.is_none())
        {
            bail!(
                "berth {c} needs --user-data (the external registry) or --edge-registry (the edge registry) to know where images go"
            );
        }
        let ud = self.user_data.as_deref().map(user_data).transpose()?;
        if let (Some(c), Some(u)) = (command, &ud) {
            refuse_empty(u, c)?;
        }
        let edge = self.edge.access(tls, creds)?;
        let local = edge.as_ref().map(|e| e.registry.local().clone());
        let settings = berth_plan::registry_settings(ud.as_ref(), edge.as_ref());
        Ok((Rewriter::new(ud.as_ref(), local), (&settings).into()))
    }
}
