//! Why a chart could not be fetched. Every message names the chart, its version, where it
//! was fetched from, and what to change; none holds a password.

use berth_client::{AccessError, ClientError, VerifyError};

/// `chart NAME VERSION` (or `chart NAME` when no version was asked for).
fn chart_at(name: &str, version: &str) -> String {
    match version {
        "" => format!("chart {name}"),
        v => format!("chart {name} {v}"),
    }
}

fn list(items: &[String]) -> String {
    match items.len() {
        0 => "none".into(),
        n if n > 20 => format!("{}, … ({n} in all)", items[..20].join(", ")),
        _ => items.join(", "),
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PullError {
    #[error(
        "{}: the repository `{repo}` is neither an https:// chart repository nor an oci:// registry location: fix the pack's `repo`, or put NAME-VERSION.tgz into the charts directory by hand (helm pull -d DIR)",
        chart_at(.chart, .version)
    )]
    UnsupportedRepo {
        chart: String,
        version: String,
        repo: String,
    },
    #[error("{}: fetching {url}: {source}", chart_at(.chart, .version))]
    Fetch {
        chart: String,
        version: String,
        url: String,
        #[source]
        source: Box<ClientError>,
    },
    #[error(
        "{}: {url} is not there (HTTP 404): `{repo}` is not a chart repository, or not this one; fix the pack's `repo`",
        chart_at(.chart, .version)
    )]
    NotFound {
        chart: String,
        version: String,
        repo: String,
        url: String,
    },
    #[error(
        "{}: {url} is not a chart repository index: {detail}; fix the pack's `repo`",
        chart_at(.chart, .version)
    )]
    BadIndex {
        chart: String,
        version: String,
        url: String,
        detail: String,
    },
    #[error(
        "chart {chart}: the chart repository {repo} has no chart of that name (it has: {}); fix the pack's chart `name` or `repo`",
        list(.charts)
    )]
    NoSuchChart {
        chart: String,
        repo: String,
        charts: Vec<String>,
    },
    #[error(
        "{}: {repo} has no such version (it has: {}); fix the pack's chart `version`",
        chart_at(.chart, .version),
        list(.versions)
    )]
    NoSuchVersion {
        chart: String,
        version: String,
        repo: String,
        versions: Vec<String>,
    },
    #[error(
        "{}: the index of {repo} gives no URL for it; or put NAME-VERSION.tgz into the charts directory by hand (helm pull -d DIR)",
        chart_at(.chart, .version)
    )]
    NoUrl {
        chart: String,
        version: String,
        repo: String,
    },
    #[error(
        "{}: {url} has sha256 {actual}, but the repository's index.yaml says {expected}: the download is damaged or the index is stale; nothing was saved",
        chart_at(.chart, .version)
    )]
    DigestMismatch {
        chart: String,
        version: String,
        url: String,
        expected: String,
        actual: String,
    },
    #[error(
        "{}: {reference} is not a Helm chart: its manifest has no layer of media type {} ({detail})",
        chart_at(.chart, .version),
        crate::CHART_LAYER
    )]
    NotAChart {
        chart: String,
        version: String,
        reference: String,
        detail: String,
    },
    #[error("{}: {url}: {source}", chart_at(.chart, .version))]
    Verify {
        chart: String,
        version: String,
        url: String,
        #[source]
        source: Box<VerifyError>,
    },
    #[error("{}: reading {url}: {source}", chart_at(.chart, .version))]
    Read {
        chart: String,
        version: String,
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {url} is larger than {max} bytes; or put NAME-VERSION.tgz into the charts directory by hand (helm pull -d DIR)", chart_at(.chart, .version))]
    TooLarge {
        chart: String,
        version: String,
        url: String,
        max: usize,
    },
    #[error(
        "{}: what {url} holds is not that chart: {detail}; fix the pack's chart `name`, `version` or `repo`",
        chart_at(.chart, .version)
    )]
    WrongChart {
        chart: String,
        version: String,
        url: String,
        detail: String,
    },
    #[error("`{reference}` is not an oci://HOST/PATH/NAME:VERSION chart reference: {detail}")]
    BadReference { reference: String, detail: String },
    #[error("{}: saving it: {source}", chart_at(.chart, .version))]
    Save {
        chart: String,
        version: String,
        #[source]
        source: berth_atomic::Error,
    },
    #[error("the chart repositories' settings: {0}")]
    Settings(#[source] Box<ClientError>),
    #[error("chart repositories (--chart-creds, --chart-ca): {0}")]
    Access(#[source] AccessError),
    #[error(transparent)]
    Chart(#[from] berth_chart::ChartError),
    #[error(transparent)]
    Profile(#[from] berth_profile::ProfileError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}
