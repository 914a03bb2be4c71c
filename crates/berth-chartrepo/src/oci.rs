//! Charts in OCI registries, as `helm push` leaves them: a manifest whose layer of media type
//! [`CHART_LAYER`](crate::CHART_LAYER) is the chart's `.tgz`, tagged with the chart's version
//! (`+` written `_`). Read through `berth-client`; the layer is verified against its digest
//! and size as it streams in.

use berth_client::{Client, VerifyingStream};
use berth_oci::Descriptor;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use serde::Deserialize;

use crate::{ChartRef, Fetched, MAX_CHART_BYTES, PullError};

/// `oci://HOST/PATH[/NAME]` split: the registry host and the repository of chart `name`
/// (`PATH/NAME`; a location already ending in `/NAME` is the chart's own repository).
pub fn location(repo: &str, name: &str) -> Option<(String, String)> {
    let rest = repo.strip_prefix("oci://")?.trim_end_matches('/');
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    if host.is_empty() {
        return None;
    }
    let repository = match path {
        "" => name.to_string(),
        p if p == name || p.ends_with(&format!("/{name}")) => p.to_string(),
        p => format!("{p}/{name}"),
    };
    Some((host.to_string(), repository))
}

#[derive(Deserialize)]
struct Layers {
    #[serde(default)]
    layers: Vec<Descriptor>,
}

pub async fn fetch(client: &Client, chart: &ChartRef) -> Result<Fetched, PullError> {
    let (name, want) = (chart.name.clone(), chart.version.clone());
    let Some((host, repository)) = location(&chart.repo, &chart.name) else {
        return Err(PullError::UnsupportedRepo {
            chart: name,
            version: want,
            repo: chart.repo.clone(),
        });
    };
    let registry = client.registry(&host);
    let at = |tag: &str| format!("oci://{host}/{repository}:{tag}");
    let fetch_err = |url: String| {
        let (chart, version) = (name.clone(), want.clone());
        move |source| PullError::Fetch {
            chart,
            version,
            url,
            source: Box::new(source),
        }
    };
    let version = match want.as_str() {
        "" => {
            let tags = registry
                .tags_list(&repository)
                .await
                .map_err(fetch_err(at("")))?;
            let versions: Vec<String> = tags.iter().map(|t| t.replace('_', "+")).collect();
            match crate::index::latest(versions.iter().map(String::as_str)) {
                Some(v) => v.to_string(),
                None => {
                    return Err(PullError::NoSuchVersion {
                        chart: name,
                        version: want,
                        repo: at(""),
                        versions: crate::index::newest_first(versions.iter().map(String::as_str)),
                    });
                }
            }
        }
        v => v.to_string(),
    };
    let tag = version.replace('+', "_");
    let reference = at(&tag);
    let manifest = registry
        .get_manifest(&repository, &tag, &[])
        .await
        .map_err(fetch_err(reference.clone()))?;
    let not_chart = |detail: String| PullError::NotAChart {
        chart: name.clone(),
        version: version.clone(),
        reference: reference.clone(),
        detail,
    };
    let layers: Layers = serde_json::from_slice(&manifest.bytes)
        .map_err(|e| not_chart(format!("{} that does not parse: {e}", manifest.media_type)))?;
    let types: Vec<String> = layers
        .layers
        .iter()
        .map(|l| l.media_type.clone().unwrap_or_default())
        .collect();
    let Some(layer) = layers
        .layers
        .iter()
        .find(|l| l.media_type.as_deref() == Some(crate::CHART_LAYER))
    else {
        let what = match types.is_empty() {
            true => format!("a {} without layers", manifest.media_type),
            false => format!("its layers are {}", types.join(", ")),
        };
        return Err(not_chart(what));
    };
    let too_large = || PullError::TooLarge {
        chart: name.clone(),
        version: version.clone(),
        url: reference.clone(),
        max: MAX_CHART_BYTES,
    };
    if layer.size > MAX_CHART_BYTES as u64 {
        return Err(too_large());
    }
    let download = registry
        .get_blob(&repository, &layer.digest)
        .await
        .map_err(fetch_err(reference.clone()))?;
    let verified = VerifyingStream::new(download.stream, layer.digest.clone(), Some(layer.size));
    let mut stream = verified
        .map_err(|source| PullError::Verify {
            chart: name.clone(),
            version: version.clone(),
            url: reference.clone(),
            source: Box::new(source),
        })?
        .boxed();
    let mut body = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| match berth_client::VerifyError::from_io(&e) {
            Some(v) => PullError::Verify {
                chart: name.clone(),
                version: version.clone(),
                url: reference.clone(),
                source: Box::new(v.clone()),
            },
            None => PullError::Read {
                chart: name.clone(),
                version: version.clone(),
                url: reference.clone(),
                source: e,
            },
        })?;
        if body.len() + chunk.len() > MAX_CHART_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    let bytes: Bytes = body.freeze();
    Ok(Fetched {
        name,
        version,
        url: reference,
        digest: layer.digest.to_string(),
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::location;

    #[test]
    fn locations_name_the_chart_repository() {
        let l = |r: &str| location(r, "podinfo");
        let pair = |h: &str, r: &str| Some((h.to_string(), r.to_string()));
        assert_eq!(
            l("oci://reg.example/charts"),
            pair("reg.example", "charts/podinfo")
        );
        assert_eq!(
            l("oci://reg.example:5000/charts/"),
            pair("reg.example:5000", "charts/podinfo")
        );
        assert_eq!(
            l("oci://reg.example/charts/podinfo"),
            pair("reg.example", "charts/podinfo")
        );
        assert_eq!(l("oci://reg.example"), pair("reg.example", "podinfo"));
        assert_eq!(l("https://reg.example"), None);
        assert_eq!(l("oci:///x"), None);
    }
}
