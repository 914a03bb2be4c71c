//! A chart repository's `index.yaml`, Helm's format: `entries.NAME[]`, each with a `version`,
//! the `urls` of its `.tgz` (absolute, or relative to the repository URL) and its `digest`
//! (the sha256 of the `.tgz`, hex). Pure: text in, entries out.

use std::collections::BTreeMap;

use reqwest::Url;
use serde::Deserialize;

/// The parts of `index.yaml` a fetch needs (every other field is ignored).
#[derive(Debug, Default, Deserialize)]
pub struct Index {
    #[serde(default)]
    pub entries: BTreeMap<String, Option<Vec<Entry>>>,
}

/// One version of one chart.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Entry {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub urls: Vec<String>,
    /// The sha256 of the `.tgz` (hex, sometimes `sha256:`-prefixed); Helm leaves it out of
    /// indexes it did not write.
    #[serde(default)]
    pub digest: Option<String>,
}

/// Why the index has no entry for a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Missing {
    /// No chart of that name; the charts it has, sorted.
    Chart { charts: Vec<String> },
    /// The chart, but not that version (none without a prerelease part when no version was
    /// asked for); its versions, newest first.
    Version { versions: Vec<String> },
}

impl Index {
    /// Parses `index.yaml` (YAML or JSON). Large repositories' indexes are tens of MB.
    pub fn parse(text: &str) -> Result<Index, String> {
        let options = serde_saphyr::options! {
            budget: serde_saphyr::budget! {
                max_events: 100_000_000,
                max_nodes: 50_000_000,
                max_total_scalar_bytes: 512 * 1024 * 1024,
            },
        };
        serde_saphyr::from_str_with_options::<Index>(text, options).map_err(|e| e.to_string())
    }

    /// The entry of `name` at `version`: the same string, else the same semantic version
    /// (`v1.2.3` is `1.2.3`). An empty `version` is the newest without a prerelease part,
    /// as `helm pull` without `--version` takes.
    pub fn find(&self, name: &str, version: &str) -> Result<&Entry, Missing> {
        let Some(Some(list)) = self.entries.get(name) else {
            return Err(Missing::Chart {
                charts: self.entries.keys().cloned().collect(),
            });
        };
        let found = if version.is_empty() {
            latest(list.iter().map(|e| e.version.as_str()))
                .and_then(|v| list.iter().find(|e| e.version == v))
        } else {
            let same = |e: &&Entry| {
                parse_version(&e.version).is_some_and(|a| Some(a) == parse_version(version))
            };
            list.iter()
                .find(|e| e.version == version)
                .or_else(|| list.iter().find(same))
        };
        found.ok_or_else(|| Missing::Version {
            versions: newest_first(list.iter().map(|e| e.version.as_str())),
        })
    }
}

/// A version as Helm reads it: semantic, with an optional `v`.
pub fn parse_version(v: &str) -> Option<semver::Version> {
    semver::Version::parse(v.strip_prefix('v').unwrap_or(v)).ok()
}

/// The newest version without a prerelease part.
pub fn latest<'a>(versions: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    versions
        .filter_map(|v| {
            parse_version(v)
                .filter(|p| p.pre.is_empty())
                .map(|p| (p, v))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, v)| v)
}

/// The versions, newest first (those that are not semantic versions last, by name).
pub fn newest_first<'a>(versions: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut v: Vec<(Option<semver::Version>, &str)> =
        versions.map(|s| (parse_version(s), s)).collect();
    v.sort_by(|a, b| match (&a.0, &b.0) {
        (Some(x), Some(y)) => y.cmp(x),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.1.cmp(b.1),
    });
    v.dedup_by(|a, b| a.1 == b.1);
    v.into_iter().map(|(_, s)| s.to_string()).collect()
}

/// `url` of an index entry against the repository URL, as Helm resolves it: an absolute URL
/// as it is, else relative to the repository URL taken as a directory (its query kept).
pub fn resolve(repo: &Url, url: &str) -> Result<Url, String> {
    if let Ok(abs) = Url::parse(url) {
        return Ok(abs);
    }
    let mut base = repo.clone();
    base.set_path(&format!("{}/", repo.path().trim_end_matches('/')));
    let mut out = base.join(url).map_err(|e| format!("`{url}`: {e}"))?;
    out.set_query(repo.query());
    Ok(out)
}

/// The URL of the repository's index: `REPO/index.yaml`.
pub fn index_url(repo: &Url) -> Url {
    resolve(repo, "index.yaml").unwrap_or_else(|_| repo.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = "apiVersion: v1\nentries:\n  podinfo:\n  - name: podinfo\n    version: 6.14.1\n    digest: abc\n    urls:\n    - podinfo-6.14.1.tgz\n  - name: podinfo\n    version: 6.15.0-rc.1\n    urls: [https://other.example/podinfo-6.15.0-rc.1.tgz]\n  - name: podinfo\n    version: 6.9.0\n    urls: [podinfo-6.9.0.tgz]\n    created: 2024-01-01T00:00:00Z\n    maintainers: [{name: x}]\n  empty: null\ngenerated: x\n";

    #[test]
    fn exact_then_semantic_then_latest_stable() {
        let i = Index::parse(INDEX).unwrap();
        assert_eq!(
            i.find("podinfo", "6.14.1").unwrap().digest.as_deref(),
            Some("abc")
        );
        assert_eq!(i.find("podinfo", "v6.9.0").unwrap().version, "6.9.0");
        assert_eq!(i.find("podinfo", "").unwrap().version, "6.14.1");
        assert_eq!(
            i.find("podinfo", "6.14.2").unwrap_err(),
            Missing::Version {
                versions: vec!["6.15.0-rc.1".into(), "6.14.1".into(), "6.9.0".into()]
            }
        );
        assert_eq!(
            i.find("nginx", "1").unwrap_err(),
            Missing::Chart {
                charts: vec!["empty".into(), "podinfo".into()]
            }
        );
        assert!(matches!(i.find("empty", "1"), Err(Missing::Chart { .. })));
    }

    #[test]
    fn urls_resolve_as_helm_resolves_them() {
        let repo = Url::parse("https://h.example:8443/charts").unwrap();
        let r = |u: &str| resolve(&repo, u).unwrap().to_string();
        assert_eq!(r("a-1.tgz"), "https://h.example:8443/charts/a-1.tgz");
        assert_eq!(
            r("sub/a-1.tgz"),
            "https://h.example:8443/charts/sub/a-1.tgz"
        );
        assert_eq!(
            r("https://cdn.example/a-1.tgz"),
            "https://cdn.example/a-1.tgz"
        );
        assert_eq!(
            index_url(&repo).as_str(),
            "https://h.example:8443/charts/index.yaml"
        );
        let slash = Url::parse("https://h.example/charts/").unwrap();
        assert_eq!(
            index_url(&slash).as_str(),
            "https://h.example/charts/index.yaml"
        );
        let root = Url::parse("https://h.example").unwrap();
        assert_eq!(index_url(&root).as_str(), "https://h.example/index.yaml");
    }
}
