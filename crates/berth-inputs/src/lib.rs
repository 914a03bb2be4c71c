//! What Berth's commands read before any work, and what they make of it: the profiles (Berth's
//! format, Palette exports, the built-in examples) with their variables (`--var`, `--vars`)
//! and the charts of their Helm packs (`--charts DIR`); the user data; the edge registry's
//! address, CA files and credentials; and from those the rewrite function and the settings of
//! the registries images go to ([`targets`]). Every front end (the command line, the site
//! page) reads its inputs through here, so they agree on what a file means.
//!
//! Errors name the file or the flag, and keep their source.

use std::path::{Path, PathBuf};

use berth_chart::{Chart, ChartError, ImageScope};
use berth_chartrepo::{PullError, RepoAccess};
use berth_client::loaders::LoadError;
use berth_client::{RegistryConfigs, creds_for, read_cas};
use berth_plan::{Charts, EdgeAccess, EdgeRegistry, EdgeRegistryError, Login, Plan, PlanError};
use berth_profile::{Profile, ProfileError};
use berth_rewrite::Rewriter;
use berth_userdata::{UserData, UserDataError};

/// The example Palette export `--example export` reads (an edge-native cluster with a Helm
/// add-on pack, podinfo, whose chart is embedded too).
pub const EXAMPLE_EXPORT: &str = include_str!("../../../examples/palette-export.json");
const EXAMPLE_CHART: &[u8] = include_bytes!("../../../examples/charts/podinfo-6.14.1.tgz");

/// Why the inputs could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    UserData(#[from] UserDataError),
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error(transparent)]
    Chart(#[from] ChartError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A chart that could not be fetched from its repository (`--pull-charts`, `oci://`).
    #[error(transparent)]
    Pull(#[from] PullError),
    #[error("--edge-registry: {0}")]
    EdgeRegistry(#[from] EdgeRegistryError),
    /// CA files or credentials of a flag (`--edge-ca`, `--edge-creds`).
    #[error("{flag}: {source}")]
    Load {
        flag: &'static str,
        #[source]
        source: LoadError,
    },
    /// User data from which `command` gets no registry setting at all.
    #[error("berth {command}: {why}")]
    NothingToDo { command: String, why: String },
    /// A profile `lint --fix` changed could not be written back.
    #[error(transparent)]
    Write(#[from] berth_atomic::Error),
    /// Neither user data nor an edge registry: `command` cannot know where images go.
    #[error(
        "berth {0} needs --user-data (the external registry) or --edge-registry (the edge registry) to know where images go"
    )]
    NoDestination(String),
}

/// The text of `path`.
pub fn read(path: &Path) -> Result<String, InputError> {
    std::fs::read_to_string(path).map_err(|source| InputError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The user data in `path`.
pub fn user_data(path: &Path) -> Result<UserData, InputError> {
    let text = read(path)?;
    Ok(UserData::parse(&text, &path.display().to_string())?)
}

/// Refuses user data that `command` cannot work with: no registry setting comes out of it.
pub fn refuse_empty(ud: &UserData, command: &str) -> Result<(), InputError> {
    match ud.why_empty() {
        Some(why) => Err(InputError::NothingToDo {
            command: command.to_string(),
            why,
        }),
        None => Ok(()),
    }
}

/// Every profile in these files: Berth's format, a Palette export, or a list of exports.
pub fn profiles(paths: &[PathBuf]) -> Result<Vec<Profile>, InputError> {
    let mut out = Vec::new();
    for p in paths {
        let text = read(p)?;
        let name = p.display().to_string();
        out.extend(berth_profile::parse_profiles(&text, &name)?);
    }
    Ok(out)
}

/// The profiles of `paths` (one per file, as `lint` takes them) and, with `fix`, the files
/// whose Kubernetes layer enabled AlwaysPullImages, fixed (berth-profile's
/// `fix_always_pull_images`, which changes nothing else). Every file is read, checked and
/// fixed before any is written, so a bad file leaves all untouched; each is replaced
/// atomically. Returns the profiles (as fixed) and the files changed.
pub fn fix_and_read(
    paths: &[PathBuf],
    fix: bool,
) -> Result<(Vec<Profile>, Vec<PathBuf>), InputError> {
    let mut texts = Vec::new();
    for p in paths {
        texts.push((p, read(p)?, p.display().to_string()));
    }
    let mut changed = Vec::new();
    if fix {
        let fix = |(_, t, name): &(&PathBuf, String, String)| {
            berth_profile::fix_always_pull_images(t, name)
        };
        let fixed = texts.iter().map(fix).collect::<Result<Vec<_>, _>>()?;
        for ((p, text, _), fix) in texts.iter_mut().zip(fixed) {
            if fix.text != *text {
                berth_atomic::replace(p.as_path(), fix.text.as_bytes())?;
                changed.push(p.to_path_buf());
                *text = fix.text;
            }
        }
    }
    let parse = |(_, t, name): &(&PathBuf, String, String)| Profile::parse(t, name);
    let profiles = texts.iter().map(parse).collect::<Result<Vec<_>, _>>()?;
    Ok((profiles, changed))
}

/// Where the profiles come from and what completes them.
#[derive(Debug, Clone, Default)]
pub struct ProfileSource<'a> {
    /// Profile files; ignored with `example`.
    pub paths: &'a [PathBuf],
    /// `profile` (the built-in example profile) or `export` (the example Palette export).
    pub example: Option<&'a str>,
    /// `--vars FILE`: a YAML mapping of variables.
    pub vars_file: Option<&'a Path>,
    /// `--var NAME=VALUE`, over the file's.
    pub vars: &'a [String],
    /// `--charts DIR`: NAME-VERSION.tgz files or NAME/ chart directories.
    pub charts: Option<&'a Path>,
    /// `--pull-charts`: the packs' charts missing from `charts` are fetched from their
    /// repositories into it first (berth-chartrepo), reached with these settings.
    pub pull: Option<&'a RepoAccess>,
    /// `.Capabilities.KubeVersion` for the charts.
    pub kube_version: &'a str,
    /// The charts' images: all, or the Pod templates' only.
    pub images: ImageScope,
}

impl ProfileSource<'_> {
    /// The profiles with their variables set, and the charts of their Helm packs that
    /// `charts` (and, for the example export, the embedded podinfo chart) holds.
    pub fn read(&self) -> Result<(Vec<Profile>, Charts), InputError> {
        let text = self.vars_file.map(read).transpose()?;
        let name = self.vars_file.map(|p| p.display().to_string());
        let vars = name.as_deref().zip(text.as_deref());
        let vars = berth_profile::variable_overrides(vars, self.vars)?;
        let mut ps = match self.example {
            Some("export") => berth_profile::parse_profiles(EXAMPLE_EXPORT, "<example export>")?,
            Some(_) => vec![Profile::example()?],
            None => profiles(self.paths)?,
        };
        ps.iter_mut().for_each(|p| p.set_variables(&vars));
        if let (Some(dir), Some(access)) = (self.charts, self.pull) {
            berth_chartrepo::pull_missing_blocking(&ps, Some(dir), access)?;
        }
        let mut charts = Charts::collect(&ps, self.kube_version, |s| match self.charts {
            _ if self.example.is_some() && s.name == "podinfo" => {
                Chart::from_tgz(EXAMPLE_CHART, "podinfo").map(Some)
            }
            Some(dir) => berth_chart::fs::find_in(dir, &s.name, &s.version),
            None => Ok(None),
        })?;
        charts.images = self.images;
        Ok((ps, charts))
    }
}

/// The plan of one chart alone (`berth images --chart PATH`: a directory, a `.tgz`, or
/// `oci://HOST/PATH/NAME:VERSION` fetched with `access`), rendered with `values` files and
/// `set` (`K=V`) over its defaults.
pub fn chart_plan(
    path: &Path,
    access: &RepoAccess,
    values: &[PathBuf],
    set: &[String],
    kube_version: &str,
    images: ImageScope,
    rewriter: &Rewriter,
) -> Result<Plan, InputError> {
    let mut opts = berth_chart::fs::options(values, set, kube_version)?;
    opts.images = images;
    let chart = berth_chartrepo::load_blocking(path, access)?;
    let x = berth_plan::chart_extraction(&chart, &opts)?;
    Ok(Plan::from_images(&x.images, x.findings, rewriter)?)
}

/// The edge registry as the flags give it.
#[derive(Debug, Clone, Default)]
pub struct EdgeFlags<'a> {
    /// `[https://|http://]HOST[:PORT][/PROJECT]`.
    pub registry: Option<&'a str>,
    pub project: Option<&'a str>,
    /// A PEM file or a directory of `*.crt`.
    pub ca: Option<&'a Path>,
    pub insecure: bool,
    /// `USER:PASS`, or `REGISTRY=USER:PASS` for one host.
    pub creds: &'a [String],
}

impl EdgeFlags<'_> {
    /// The parsed address, if given.
    pub fn parse(&self) -> Result<Option<EdgeRegistry>, InputError> {
        let Some(url) = self.registry else {
            return Ok(None);
        };
        Ok(Some(EdgeRegistry::parse(url, self.project)?))
    }

    /// The address with its TLS settings and login, if given.
    pub fn access(&self) -> Result<Option<EdgeAccess>, InputError> {
        let Some(registry) = self.parse()? else {
            return Ok(None);
        };
        let load = |flag| move |source| InputError::Load { flag, source };
        let cas = self
            .ca
            .map(read_cas)
            .transpose()
            .map_err(load("--edge-ca"))?;
        let creds = creds_for(self.creds, registry.host()).map_err(load("--edge-creds"))?;
        Ok(Some(EdgeAccess {
            insecure: self.insecure,
            registry,
            ca_pems: cas.unwrap_or_default(),
            login: creds.map(|c| Login::new(c.username, c.password)),
        }))
    }
}

/// Where images go: the rewrite function and the settings of the destination registries, from
/// the user data (`user_data`; the example user data when `example` and none is given) and
/// the edge registry in front. `command`, when given, needs one of them and refuses user data
/// it can do nothing with; otherwise `warn` gets why the user data redirects nothing.
pub fn targets(
    user_data_file: Option<&Path>,
    edge: &EdgeFlags,
    command: Option<&str>,
    example: bool,
    warn: &mut dyn FnMut(&str),
) -> Result<(Rewriter, RegistryConfigs), InputError> {
    if let Some(c) = command.filter(|_| user_data_file.is_none() && edge.registry.is_none()) {
        return Err(InputError::NoDestination(c.to_string()));
    }
    let ud = match user_data_file {
        Some(p) => Some(user_data(p)?),
        None if example => Some(UserData::example()?),
        None => None,
    };
    match (command, &ud) {
        (Some(c), Some(u)) => refuse_empty(u, c)?,
        (None, Some(u)) => u.why_empty().iter().for_each(|w| warn(w)),
        _ => {}
    }
    let edge = edge.access()?;
    let (rewriter, settings) = berth_plan::targets(ud.as_ref(), edge.as_ref());
    Ok((rewriter, (&settings).into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_named() {
        let e = user_data(Path::new("/nonexistent/user-data.yaml")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot read /nonexistent/user-data.yaml: "),
            "{e}"
        );
    }

    #[test]
    fn fix_writes_nothing_when_one_file_is_bad() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.yaml");
        let always = "name: p\nlayers:\n  - name: k3s\n    type: k8s\n    values: |\n      cluster:\n        config: |\n          kube-apiserver-arg:\n            - enable-admission-plugins=NodeRestriction,AlwaysPullImages\n";
        std::fs::write(&good, always).unwrap();
        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, "name: [unclosed\n").unwrap();
        let paths = [good.clone(), bad.clone()];
        assert!(fix_and_read(&paths, true).is_err());
        assert_eq!(std::fs::read_to_string(&good).unwrap(), always);
        let (profiles, changed) = fix_and_read(&paths[..1], true).unwrap();
        assert_eq!((profiles.len(), changed), (1, vec![good.clone()]));
        let fixed = std::fs::read_to_string(&good).unwrap();
        assert!(!fixed.contains("AlwaysPullImages"), "{fixed}");
        assert!(fixed.contains("NodeRestriction"), "{fixed}");
        let (_, changed) = fix_and_read(&paths[..1], true).unwrap();
        assert!(changed.is_empty());
    }

    #[test]
    fn a_command_without_destination_is_refused() {
        let e = targets(
            None,
            &EdgeFlags::default(),
            Some("mirror"),
            false,
            &mut |_| {},
        );
        let e = e.err().unwrap().to_string();
        assert!(e.contains("berth mirror needs --user-data"), "{e}");
    }

    #[test]
    fn the_edge_registry_flags_name_themselves() {
        let dir = tempfile::tempdir().unwrap();
        let flags = EdgeFlags {
            registry: Some("edge.example.test:5000"),
            ca: Some(&dir.path().join("missing.crt")),
            ..EdgeFlags::default()
        };
        let e = flags.access().unwrap_err().to_string();
        assert!(e.starts_with("--edge-ca: "), "{e}");
        let bad = EdgeFlags {
            registry: Some("ftp://edge.example.test"),
            ..EdgeFlags::default()
        };
        let e = bad.parse().unwrap_err().to_string();
        assert!(e.starts_with("--edge-registry: "), "{e}");
    }

    #[test]
    fn the_example_export_reads_with_its_chart() {
        let src = ProfileSource {
            example: Some("export"),
            kube_version: "v1.34.0",
            ..ProfileSource::default()
        };
        let (profiles, charts) = src.read().unwrap();
        assert!(!profiles.is_empty());
        assert!(!charts.is_empty());
    }
}
