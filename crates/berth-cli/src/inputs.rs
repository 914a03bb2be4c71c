//! What commands read: user data, profiles, and the edge-registry flags every command spells
//! alike (`--edge-registry`, `--edge-project`, `--edge-ca`, `--edge-insecure`, `--edge-creds`;
//! the old `--local-registry`, `--project`, `--dest-cert-dir`, `--dest-tls-verify`,
//! `--dest-creds` are hidden aliases). Errors name the file or flag.

use std::path::{Path, PathBuf};

use anyhow::Result;
use berth_chart::ImageScope;
use berth_chartrepo::RepoAccess;
use berth_client::RegistryConfigs;
use berth_inputs::{EdgeFlags, ProfileSource};
use berth_plan::{Charts, EdgeAccess, EdgeRegistry, Plan};
use berth_profile::Profile;
use berth_rewrite::Rewriter;
use berth_userdata::UserData;
use clap::Args;

use crate::RedirectArgs;

pub use berth_inputs::{read, refuse_empty, user_data};

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
        let access = self.chart_access();
        let source = ProfileSource {
            pull: Some(&access).filter(|_| self.pull_charts),
            paths,
            example: ex,
            vars_file: self.vars.as_deref(),
            vars: &self.var,
            charts: self.charts.as_deref(),
            kube_version: &self.kube_version,
            images: self.scope(),
        };
        Ok(source.read()?)
    }

    pub fn chart_access(&self) -> RepoAccess {
        RepoAccess::new(&self.chart_creds, &self.chart_ca, self.chart_insecure)
    }

    pub fn scope(&self) -> ImageScope {
        match self.images.as_str() {
            "pod" => ImageScope::Pod,
            _ => ImageScope::All,
        }
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
    fn flags<'a>(&'a self, login: &'a EdgeLogin) -> EdgeFlags<'a> {
        EdgeFlags {
            registry: self.edge_registry.as_deref(),
            project: self.edge_project.as_deref(),
            ca: login.edge_ca.as_deref(),
            insecure: login.edge_insecure || login.dest_tls_verify == Some(false),
            creds: &login.edge_creds,
        }
    }

    /// The parsed address, if given.
    pub fn parse(&self) -> Result<Option<EdgeRegistry>> {
        Ok(self.flags(&EdgeLogin::default()).parse()?)
    }

    /// The address with its TLS settings and login, if given.
    pub fn access(&self, login: &EdgeLogin) -> Result<Option<EdgeAccess>> {
        Ok(self.flags(login).access()?)
    }
}

/// The plan of one chart alone (`berth images --chart`), rendered with --values and --set.
pub(crate) fn chart_plan(p: &Path, a: &crate::ImagesArgs, rw: &Rewriter) -> Result<Plan> {
    let (i, access) = (&a.inputs, a.inputs.chart_access());
    let (k, scope) = (&i.kube_version, i.scope());
    Ok(berth_inputs::chart_plan(
        p, &access, &a.values, &a.set, k, scope, rw,
    )?)
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
        let (ud, edge) = (self.user_data.as_deref(), self.edge.flags(login));
        let mut warn = |w: &str| eprintln!("warning: {w}");
        Ok(berth_inputs::targets(
            ud, &edge, command, example, &mut warn,
        )?)
    }
}
