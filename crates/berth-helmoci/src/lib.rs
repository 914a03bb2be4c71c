//! Helm charts as OCI artifacts, the way `helm push` (Helm v4) uploads them, from a packaged
//! chart's bytes alone:
//!
//! - the config blob `application/vnd.cncf.helm.config.v1+json`: Chart.yaml as Helm reads
//!   it (`chart.Metadata`), written as Go's `json.Marshal` writes it ([`Metadata`]);
//! - one layer `application/vnd.cncf.helm.chart.content.v1.tar+gzip`: the `.tgz` bytes
//!   unchanged, so its digest is the archive's;
//! - the OCI image manifest (no `mediaType` field, as Helm writes it) with Helm's
//!   annotations: `org.opencontainers.image.{description,title,version,url,created,source,authors}`
//!   from Chart.yaml, then the chart's own annotations (except `title` and `version`).
//!
//! `helm push` stamps `org.opencontainers.image.created` with the `.tgz` file's
//! modification time (RFC 3339, in the local time zone). A file's time is not part of its
//! bytes, so Berth takes the newest modification time of the archive's entries instead
//! (what `helm package` wrote: the chart files' times), in UTC: the same archive always
//! gives the same manifest and digest. With the file's time set to that instant and `TZ=UTC`,
//! `helm push` writes exactly the same manifest (the tests compare them byte for byte); the
//! config and layer are always Helm's.
//!
//! [`chart_reference`] says where a chart lives in a registry (its source reference, which
//! the rewrite function sends to a target); [`ArtifactSource`] serves an artifact to the
//! transfer engine as a [`berth_ends::Source`].
//!
//! Pure: no I/O.

mod end;
mod metadata;

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;

use berth_oci::{Manifest, media, sha256_of};
use berth_reference::{Digest, Reference};
use bytes::Bytes;

pub use end::ArtifactSource;
pub use metadata::{Dependency, Maintainer, Metadata, go_string};

/// Helm's config media type.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.helm.config.v1+json";
/// Helm's chart layer media type.
pub const CHART_LAYER_MEDIA_TYPE: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";

/// Why a chart could not be made an artifact, or placed in a registry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HelmOciError {
    /// The archive is not a packaged chart Helm would push.
    #[error("chart {chart}: {message}")]
    Archive { chart: String, message: String },
    /// The chart's `repo` gives no registry location.
    #[error("chart {chart}: repo `{repo}`: {message}")]
    Repo {
        chart: String,
        repo: String,
        message: String,
    },
}

/// A packaged chart as `helm push` uploads it.
#[derive(Clone, PartialEq, Eq)]
pub struct ChartArtifact {
    /// Chart.yaml's `name` and `version`.
    pub name: String,
    pub version: String,
    /// The config blob (Helm's JSON of Chart.yaml).
    pub config: Bytes,
    /// The chart layer: the `.tgz` exactly as given.
    pub layer: Bytes,
    /// The manifest, as Helm writes it.
    pub manifest: Manifest,
    /// `org.opencontainers.image.created` (RFC 3339, UTC).
    pub created: String,
}

impl fmt::Debug for ChartArtifact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ChartArtifact({}:{} manifest {}, layer {} bytes)",
            self.name,
            self.version,
            self.manifest.digest,
            self.layer.len()
        )
    }
}

impl ChartArtifact {
    /// The artifact of the packaged chart `tgz` (`origin` names it in errors).
    pub fn from_archive(tgz: &[u8], origin: &str) -> Result<ChartArtifact, HelmOciError> {
        let err = |message: String| HelmOciError::Archive {
            chart: origin.to_string(),
            message,
        };
        let read = read_archive(tgz).map_err(err)?;
        let chart_yaml = read
            .chart_yaml
            .ok_or_else(|| err("the archive has no CHART/Chart.yaml: not a packaged chart (`helm package` makes one)".into()))?;
        let md = Metadata::parse(&chart_yaml, read.requirements.as_deref()).map_err(err)?;
        let created = rfc3339_utc(read.newest_mtime);
        let config = Bytes::from(md.to_go_json());
        let layer = Bytes::copy_from_slice(tgz);
        let manifest_json = manifest_json(&config, &layer, &annotations(&md, &created));
        let manifest = Manifest {
            digest: sha256_of(manifest_json.as_bytes()),
            bytes: Bytes::from(manifest_json),
            media_type: media::OCI_MANIFEST.to_string(),
        };
        Ok(ChartArtifact {
            name: md.name,
            version: md.version,
            config,
            layer,
            manifest,
            created,
        })
    }

    /// The tag Helm pushes the chart under: its version, `+` written `_`.
    pub fn tag(&self) -> String {
        self.version.replace('+', "_")
    }

    pub fn config_digest(&self) -> Digest {
        sha256_of(&self.config)
    }

    /// The digest of the `.tgz`, which the registry keeps.
    pub fn layer_digest(&self) -> Digest {
        sha256_of(&self.layer)
    }
}

/// The chart's layer in an artifact manifest, if it is a Helm chart's.
pub fn chart_layer(manifest: &Manifest) -> Option<berth_oci::Descriptor> {
    match manifest.walk().ok()?.kind {
        berth_oci::Kind::Image { layers, .. } => layers
            .into_iter()
            .find(|l| l.media_type.as_deref() == Some(CHART_LAYER_MEDIA_TYPE)),
        _ => None,
    }
}

/// Where chart `name` at `version` from `repo` lives in a registry (its source reference):
/// `oci://HOST/PATH` → `HOST/PATH/NAME:TAG`; a chart repository `https://HOST[:PORT][/PATH]`
/// (or `http://`) → `HOST[:PORT][/PATH]/NAME:TAG`, as if the repository were a registry of
/// the same name. TAG is the version with `+` written `_`, as Helm tags it.
pub fn chart_reference(repo: &str, name: &str, version: &str) -> Result<Reference, HelmOciError> {
    let chart = format!("{name} {version}");
    let err = |message: &str| HelmOciError::Repo {
        chart: chart.clone(),
        repo: repo.to_string(),
        message: message.to_string(),
    };
    if version.is_empty() {
        return Err(err(
            "the chart has no version, so it has no tag; give the pack's chart entry a `version`",
        ));
    }
    let rest = ["oci://", "https://", "http://"]
        .iter()
        .find_map(|s| repo.strip_prefix(s))
        .ok_or_else(|| {
            err(match repo.is_empty() {
                true => "the pack's chart entry has no `repo`, so the chart has no registry location; give it `repo: oci://HOST/PATH` or the chart repository's URL",
                false => "expected oci://HOST/PATH or an http(s) chart repository URL",
            })
        })?;
    if rest.contains(['?', '#', '@']) {
        return Err(err(
            "a query, fragment or user name in the URL cannot be part of a registry reference",
        ));
    }
    let rest = rest.trim_end_matches('/');
    let host = rest.split('/').next().unwrap_or_default();
    let text = format!("{rest}/{name}:{}", version.replace('+', "_"));
    let r = Reference::parse(&text).map_err(|e| err(&format!("`{text}`: {e}")))?;
    if r.domain() != host {
        return Err(err(&format!(
            "`{host}` is not a registry host name (it needs a `.` or a port, or be `localhost`)"
        )));
    }
    Ok(r)
}

/// Helm's manifest annotations (`generateOCIAnnotations`).
fn annotations(md: &Metadata, created: &str) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    let mut add = |k: &str, v: &str| {
        if !v.trim().is_empty() {
            a.insert(format!("org.opencontainers.image.{k}"), v.to_string());
        }
    };
    add("description", &md.description);
    add("title", &md.name);
    add("version", &md.version);
    add("url", &md.home);
    add("created", created);
    if let Some(s) = md.sources.first() {
        add("source", s);
    }
    if !md.maintainers.is_empty() {
        let authors: Vec<String> = md
            .maintainers
            .iter()
            .map(|m| match m.email.is_empty() {
                true => m.name.clone(),
                false => format!("{} ({})", m.name, m.email),
            })
            .collect();
        add("authors", &authors.join(", "));
    }
    for (k, v) in &md.annotations {
        if k != "org.opencontainers.image.title" && k != "org.opencontainers.image.version" {
            a.insert(k.clone(), v.clone());
        }
    }
    a
}

/// The manifest as Go's `json.Marshal` of `ocispec.Manifest` writes it.
fn manifest_json(config: &[u8], layer: &[u8], annotations: &BTreeMap<String, String>) -> String {
    let desc = |mt: &str, b: &[u8]| {
        format!(
            r#"{{"mediaType":{},"digest":"{}","size":{}}}"#,
            go_string(mt),
            sha256_of(b),
            b.len()
        )
    };
    let ann: Vec<String> = annotations
        .iter()
        .map(|(k, v)| format!("{}:{}", go_string(k), go_string(v)))
        .collect();
    format!(
        r#"{{"schemaVersion":2,"config":{},"layers":[{}],"annotations":{{{}}}}}"#,
        desc(CONFIG_MEDIA_TYPE, config),
        desc(CHART_LAYER_MEDIA_TYPE, layer),
        ann.join(",")
    )
}

/// What the artifact needs from the archive.
struct ArchiveFacts {
    chart_yaml: Option<String>,
    requirements: Option<String>,
    newest_mtime: u64,
}

/// Chart.yaml and requirements.yaml of the chart's top directory, and the newest entry time.
fn read_archive(tgz: &[u8]) -> Result<ArchiveFacts, String> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tgz));
    let mut out = ArchiveFacts {
        chart_yaml: None,
        requirements: None,
        newest_mtime: 0,
    };
    let entries = archive
        .entries()
        .map_err(|e| format!("not a gzip'd tar: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("not a gzip'd tar: {e}"))?;
        if let Ok(t) = entry.header().mtime() {
            out.newest_mtime = out.newest_mtime.max(t);
        }
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry
            .path()
            .map_err(|e| format!("bad tar path: {e}"))?
            .to_string_lossy()
            .into_owned();
        let slot = match path.split_once('/').map(|(_, rel)| rel) {
            Some("Chart.yaml") => &mut out.chart_yaml,
            Some("requirements.yaml") => &mut out.requirements,
            _ => continue,
        };
        let mut text = String::new();
        entry
            .read_to_string(&mut text)
            .map_err(|e| format!("{path}: {e}"))?;
        if slot.is_none() {
            *slot = Some(text);
        }
    }
    Ok(out)
}

/// Seconds since the epoch as RFC 3339 in UTC (`2026-01-02T03:04:05Z`).
fn rfc3339_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let s = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s % 3600 / 60,
        s % 60
    )
}

#[cfg(test)]
mod tests;
