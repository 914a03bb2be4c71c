//! Fetching Helm charts from where Helm keeps them, as `helm pull` does:
//!
//! - an HTTP(S) **chart repository**: `REPO/index.yaml` ([`index`]) names each version's
//!   `.tgz` (relative to the repository or absolute) and its sha256, which the download must
//!   match;
//! - an **OCI registry** (`oci://HOST/PATH`): the manifest tagged with the version, whose
//!   layer of media type [`CHART_LAYER`] is the `.tgz`, verified by digest as it streams in
//!   (through `berth-client`).
//!
//! Credentials and TLS are Berth's registry settings ([`RegistryConfigs`]: Basic credentials,
//! extra CAs, `insecure` only when asked), built from `--chart-*` flags by [`RepoAccess`].
//! Credentials go only to the repository's own origin; errors ([`PullError`]) name the chart,
//! version and URL and what to change, and never hold a secret.
//!
//! [`pull_missing`] is `--pull-charts`: every Helm pack's chart a charts directory lacks is
//! fetched and saved into it as `NAME-VERSION.tgz`, atomically (`helm pull -d DIR`), after
//! checking that it loads and is that chart.

mod error;
mod http;
pub mod index;
mod oci;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use berth_chart::Chart;
use berth_client::{Access, AuthFiles, Client, RegistryConfigs, Side, read_cas};
use berth_profile::Profile;
use bytes::Bytes;
use reqwest::Url;

pub use error::PullError;
pub use http::host_port;
pub use oci::location as oci_location;

/// The media type of a Helm chart's `.tgz` in an OCI registry.
pub const CHART_LAYER: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
/// The largest chart `.tgz` fetched.
pub const MAX_CHART_BYTES: usize = 128 << 20;
/// The largest `index.yaml` read.
pub const MAX_INDEX_BYTES: usize = 256 << 20;

/// A chart to fetch: its name, version (empty: the newest without a prerelease part) and
/// repository (`https://…` chart repository, or `oci://HOST/PATH`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ChartRef {
    pub name: String,
    pub version: String,
    pub repo: String,
}

impl ChartRef {
    /// `oci://HOST/PATH/NAME:VERSION` (as `berth images --chart` takes it).
    pub fn parse_oci(reference: &str) -> Result<ChartRef, PullError> {
        let bad = |detail: &str| PullError::BadReference {
            reference: reference.to_string(),
            detail: detail.to_string(),
        };
        let rest = reference
            .strip_prefix("oci://")
            .ok_or_else(|| bad("no oci:// prefix"))?;
        let (path, version) = match rest.rsplit_once(':') {
            Some((p, v)) if !v.contains('/') => (p, v),
            _ => {
                return Err(bad(
                    "no :VERSION (helm push tags charts with their version)",
                ));
            }
        };
        let (repo, name) = path
            .rsplit_once('/')
            .ok_or_else(|| bad("no /NAME after the host"))?;
        if name.is_empty() || version.is_empty() || repo.is_empty() {
            return Err(bad("HOST, NAME and VERSION must not be empty"));
        }
        Ok(ChartRef {
            name: name.into(),
            version: version.into(),
            repo: format!("oci://{repo}"),
        })
    }

    /// `host[:port]` of the repository, when it is a URL Berth fetches from.
    pub fn host(&self) -> Option<String> {
        if let Some((host, _)) = oci::location(&self.repo, &self.name) {
            return Some(host);
        }
        let url = Url::parse(&self.repo).ok()?;
        matches!(url.scheme(), "https" | "http").then(|| host_port(&url))
    }

    /// `NAME-VERSION.tgz`, the file `helm pull` writes.
    pub fn file_name(name: &str, version: &str) -> String {
        format!("{name}-{version}.tgz")
    }
}

/// A fetched chart: the `.tgz` exactly as served, its resolved version and where it came from.
#[derive(Clone, Debug)]
pub struct Fetched {
    pub name: String,
    pub version: String,
    /// The `.tgz`'s URL, or the `oci://` reference.
    pub url: String,
    /// `sha256:…` of the bytes (checked against the index or the manifest).
    pub digest: String,
    pub bytes: Bytes,
}

/// How to reach chart repositories, as the `--chart-*` flags say it.
#[derive(Clone, Debug, Default)]
pub struct RepoAccess {
    /// `USER:PASS` for every repository, or `HOST=USER:PASS` for one.
    pub creds: Vec<String>,
    /// Where else credentials are read from (containers auth.json, Docker config.json).
    pub auth_files: AuthFiles,
    /// CA certificates trusted besides the system roots: a PEM file, or a directory of `*.crt`.
    pub ca: Option<PathBuf>,
    /// Allow plain HTTP and certificates that do not verify.
    pub insecure: bool,
}

impl RepoAccess {
    /// The flags' settings, with the auth files in their usual places.
    pub fn new(creds: &[String], ca: &Option<PathBuf>, insecure: bool) -> RepoAccess {
        RepoAccess {
            creds: creds.to_vec(),
            auth_files: AuthFiles::file_or_usual(None),
            ca: ca.clone(),
            insecure,
        }
    }

    /// Settings for the repositories of `charts`.
    pub fn configs<'a>(
        &self,
        charts: impl IntoIterator<Item = &'a ChartRef>,
    ) -> Result<RegistryConfigs, PullError> {
        let hosts: BTreeSet<String> = charts.into_iter().filter_map(ChartRef::host).collect();
        let access = Access::new(
            self.creds.clone(),
            self.auth_files.clone(),
            None,
            !self.insecure,
        );
        let mut configs = access.configs(&hosts).map_err(PullError::Access)?;
        if let Some(ca) = &self.ca {
            let pems = read_cas(ca).map_err(|e| PullError::Access(e.into()))?;
            for h in &hosts {
                configs.entry(h).ca_pems.extend(pems.iter().cloned());
            }
        }
        Ok(configs.with_side(Side::Charts))
    }
}

/// Fetches charts with one set of settings; indexes are read once per repository.
pub struct Puller {
    http: http::Http,
    oci: Client,
    indexes: tokio::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<index::Index>>>,
}

impl Puller {
    /// A puller for `configs` (see [`RepoAccess::configs`]). Fails when a CA does not parse.
    pub fn new(configs: RegistryConfigs) -> Result<Puller, PullError> {
        let configs = configs.with_side(Side::Charts);
        let oci = Client::new(configs.clone()).map_err(|e| PullError::Settings(Box::new(e)))?;
        Ok(Puller {
            http: http::Http::new(configs),
            oci,
            indexes: Default::default(),
        })
    }

    /// The chart's `.tgz`, verified (index digest, or OCI layer digest).
    pub async fn fetch(&self, chart: &ChartRef) -> Result<Fetched, PullError> {
        if chart.repo.starts_with("oci://") {
            return oci::fetch(&self.oci, chart).await;
        }
        match Url::parse(&chart.repo) {
            Ok(u) if matches!(u.scheme(), "https" | "http") && u.host_str().is_some() => {
                self.fetch_http(chart, &u).await
            }
            _ => Err(PullError::UnsupportedRepo {
                chart: chart.name.clone(),
                version: chart.version.clone(),
                repo: chart.repo.clone(),
            }),
        }
    }

    async fn index(
        &self,
        chart: &ChartRef,
        repo: &Url,
    ) -> Result<std::sync::Arc<index::Index>, PullError> {
        let mut cache = self.indexes.lock().await;
        if let Some(i) = cache.get(repo.as_str()) {
            return Ok(i.clone());
        }
        let url = index::index_url(repo);
        let (c, v) = (chart.name.clone(), chart.version.clone());
        let bad = |detail: String| PullError::BadIndex {
            chart: c.clone(),
            version: v.clone(),
            url: url.to_string(),
            detail,
        };
        let got = self.http.get(&url, repo, MAX_INDEX_BYTES).await;
        let body = match got.map_err(|source| PullError::Fetch {
            chart: c.clone(),
            version: v.clone(),
            url: url.to_string(),
            source: Box::new(source),
        })? {
            http::Got::Body(b) => b,
            http::Got::NotFound => {
                return Err(PullError::NotFound {
                    chart: c.clone(),
                    version: v.clone(),
                    repo: chart.repo.clone(),
                    url: url.to_string(),
                });
            }
            http::Got::TooLarge => return Err(bad(format!("larger than {MAX_INDEX_BYTES} bytes"))),
        };
        let text = std::str::from_utf8(&body).map_err(|e| bad(format!("not UTF-8 text: {e}")))?;
        let parsed = std::sync::Arc::new(index::Index::parse(text).map_err(bad)?);
        cache.insert(repo.to_string(), parsed.clone());
        Ok(parsed)
    }

    async fn fetch_http(&self, chart: &ChartRef, repo: &Url) -> Result<Fetched, PullError> {
        let index = self.index(chart, repo).await?;
        let entry = index
            .find(&chart.name, &chart.version)
            .map_err(|m| match m {
                index::Missing::Chart { charts } => PullError::NoSuchChart {
                    chart: chart.name.clone(),
                    repo: chart.repo.clone(),
                    charts,
                },
                index::Missing::Version { versions } => PullError::NoSuchVersion {
                    chart: chart.name.clone(),
                    version: chart.version.clone(),
                    repo: chart.repo.clone(),
                    versions,
                },
            })?;
        let (name, version) = (chart.name.clone(), entry.version.clone());
        let no_url = || PullError::NoUrl {
            chart: name.clone(),
            version: version.clone(),
            repo: chart.repo.clone(),
        };
        let first = entry.urls.first().ok_or_else(no_url)?;
        let url = index::resolve(repo, first).map_err(|_| no_url())?;
        let got = self.http.get(&url, repo, MAX_CHART_BYTES).await;
        let at = url.to_string();
        let bytes = match got.map_err(|source| PullError::Fetch {
            chart: name.clone(),
            version: version.clone(),
            url: at.clone(),
            source: Box::new(source),
        })? {
            http::Got::Body(b) => b,
            http::Got::NotFound => {
                return Err(PullError::NotFound {
                    chart: name,
                    version,
                    repo: chart.repo.clone(),
                    url: at,
                });
            }
            http::Got::TooLarge => {
                return Err(PullError::TooLarge {
                    chart: name,
                    version,
                    url: at,
                    max: MAX_CHART_BYTES,
                });
            }
        };
        let digest = berth_oci::sha256_of(&bytes).to_string();
        let actual = digest.trim_start_matches("sha256:").to_string();
        if let Some(expected) = entry.digest.as_deref().filter(|d| !d.is_empty()) {
            let expected = expected.trim_start_matches("sha256:").to_ascii_lowercase();
            if expected != actual {
                return Err(PullError::DigestMismatch {
                    chart: name,
                    version,
                    url: at,
                    expected,
                    actual,
                });
            }
        }
        Ok(Fetched {
            name,
            version,
            url: at,
            digest,
            bytes,
        })
    }

    /// Fetches `chart`, checks that it loads and is that chart (name, and version when one
    /// was asked for), and saves it as `DIR/NAME-VERSION.tgz` atomically (creating `dir`).
    pub async fn pull_into(&self, chart: &ChartRef, dir: &Path) -> Result<PathBuf, PullError> {
        let f = self.fetch(chart).await?;
        check(&f)?;
        let path = dir.join(ChartRef::file_name(&f.name, &f.version));
        let save = |source| PullError::Save {
            chart: f.name.clone(),
            version: f.version.clone(),
            source,
        };
        berth_atomic::create_dir_all_synced(dir).map_err(save)?;
        berth_atomic::write(&path, &f.bytes).map_err(save)?;
        Ok(path)
    }
}

/// The fetched bytes are the chart asked for.
fn check(f: &Fetched) -> Result<Chart, PullError> {
    let wrong = |detail: String| PullError::WrongChart {
        chart: f.name.clone(),
        version: f.version.clone(),
        url: f.url.clone(),
        detail,
    };
    let chart = Chart::from_tgz(&f.bytes, &f.url).map_err(|e| wrong(e.to_string()))?;
    let (name, version) = (chart.name.clone(), chart.version());
    let same = version == f.version
        || index::parse_version(&version)
            .is_some_and(|v| Some(v) == index::parse_version(&f.version));
    if name != f.name || !same {
        return Err(wrong(format!("its Chart.yaml says {name} {version}")));
    }
    Ok(chart)
}

/// The charts of the profiles' Helm packs that `dir` lacks (as `berth_chart::fs::find_in`
/// looks for them) and that name a repository, each once.
pub fn missing(profiles: &[Profile], dir: &Path) -> Result<Vec<ChartRef>, PullError> {
    let mut out = BTreeSet::new();
    for s in berth_profile::chart_specs(profiles)? {
        if s.repo.is_empty() {
            continue;
        }
        if dir.is_dir() && berth_chart::fs::find_in(dir, &s.name, &s.version)?.is_some() {
            continue;
        }
        out.insert(ChartRef {
            name: s.name,
            version: s.version,
            repo: s.repo,
        });
    }
    Ok(out.into_iter().collect())
}

/// `--pull-charts`: fetches every chart [`missing`] from `dir` into it; the paths written.
/// Nothing touches the network when nothing is missing.
pub async fn pull_missing(
    profiles: &[Profile],
    dir: &Path,
    access: &RepoAccess,
) -> Result<Vec<PathBuf>, PullError> {
    let wanted = missing(profiles, dir)?;
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let puller = Puller::new(access.configs(&wanted)?)?;
    let mut written = Vec::new();
    for c in &wanted {
        written.push(puller.pull_into(c, dir).await?);
    }
    Ok(written)
}

/// A chart given on the command line: `oci://HOST/PATH/NAME:VERSION` (fetched, verified),
/// else a chart directory or `.tgz` on disk.
pub async fn load(reference: &str, access: &RepoAccess) -> Result<Chart, PullError> {
    if !reference.starts_with("oci://") {
        return Ok(berth_chart::fs::load_path(Path::new(reference))?);
    }
    let chart = ChartRef::parse_oci(reference)?;
    let puller = Puller::new(access.configs([&chart])?)?;
    check(&puller.fetch(&chart).await?)
}

fn runtime() -> Result<tokio::runtime::Runtime, PullError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    rt.map_err(PullError::Runtime)
}

/// [`pull_missing`] for callers without an async runtime (not to be called inside one), into
/// `dir` when given (`--pull-charts` was, with `--charts DIR`); nothing without it.
pub fn pull_missing_blocking(
    profiles: &[Profile],
    dir: Option<&Path>,
    access: &RepoAccess,
) -> Result<Vec<PathBuf>, PullError> {
    match dir {
        Some(dir) => runtime()?.block_on(pull_missing(profiles, dir, access)),
        None => Ok(Vec::new()),
    }
}

/// [`load`] for callers without an async runtime (not to be called inside one).
pub fn load_blocking(reference: &Path, access: &RepoAccess) -> Result<Chart, PullError> {
    runtime()?.block_on(load(&reference.to_string_lossy(), access))
}
