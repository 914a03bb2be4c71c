//! The plan's charts: pushed by the engine as Helm OCI artifacts (an
//! [`berth_helmoci::ArtifactSource`] as the source end, the target registry as the
//! destination), and checked at their targets by the digest of the chart layer: a chart is
//! present when its tag holds a Helm chart whose packaged `.tgz` is the plan's, whoever
//! pushed it (`helm push` stamps another creation time, so another manifest digest).

use std::sync::Arc;

use berth_client::Client;
use berth_ends::{Destination, Source};
use berth_helmoci::{ArtifactSource, ChartArtifact, chart_layer};
use berth_plan::PlanChart;

use crate::{
    CopyOptions, Endpoint, ImageReport, ImageStatus, RegistryEnd, VerifyResult, VerifyStatus,
};

/// Chart `c`'s artifact `a` as the source end of a copy (named by its source reference,
/// addressed by its tag).
pub fn chart_endpoint(c: &PlanChart, a: &ChartArtifact) -> Endpoint {
    let name = c.source.to_string();
    Endpoint::Ends {
        source: Some(Arc::new(ArtifactSource::new(name.clone(), a.clone()))),
        name,
        reference: a.tag(),
        destination: None,
    }
}

/// The engine's job for a chart: its artifact → its target.
pub(crate) fn pair(c: &PlanChart, a: &ChartArtifact) -> (Endpoint, Endpoint) {
    (chart_endpoint(c, a), Endpoint::Registry(c.target.clone()))
}

/// A chart that cannot be pushed, as a failed entry of the report.
pub(crate) fn unpushable(c: &PlanChart, why: &str) -> ImageReport {
    ImageReport {
        source: c.source.to_string(),
        target: c.target.to_string(),
        digest: None,
        status: ImageStatus::Failed,
        error: Some(why.to_string()),
        attached: 0,
    }
}

/// Whether each chart is at its target: the tag must hold a Helm chart artifact whose chart
/// layer has the digest of the plan's `.tgz` (with `deep`, its config and layer blobs must
/// be there too). Targets are read as stored, as images are.
pub(crate) async fn verify(
    charts: &[&PlanChart],
    opts: &CopyOptions,
    deep: bool,
) -> Vec<VerifyResult> {
    let client = Client::new(opts.destination_registries.clone())
        .map(|c| c.with_retry(opts.retry).local_only());
    let mut out = Vec::new();
    for c in charts {
        let mut r = VerifyResult {
            source: c.source.to_string(),
            target: c.target.to_string(),
            status: VerifyStatus::Error,
            missing: Vec::new(),
            expected: c.digest.clone(),
            found: None,
            compared: true,
            source_error: None,
            error: None,
        };
        match (&client, &c.artifact) {
            (Err(e), _) => r.error = Some(e.to_string()),
            (_, Err(why)) => r.error = Some(why.clone()),
            (Ok(client), Ok(a)) => check(client, c, a, deep, &mut r).await,
        }
        out.push(r);
    }
    out
}

async fn check(
    client: &Client,
    c: &PlanChart,
    a: &ChartArtifact,
    deep: bool,
    r: &mut VerifyResult,
) {
    let end = RegistryEnd::new(client.registry(c.target.domain()), c.target.path());
    let tag = a.tag();
    let m = match Source::get_manifest(&end, &tag).await {
        Ok(Some(m)) => m,
        Ok(None) => {
            r.status = VerifyStatus::Missing;
            r.missing
                .push(format!("chart {}: manifest {tag} not found", c.chart));
            return;
        }
        Err(e) => {
            r.error = Some(e.to_string());
            return;
        }
    };
    let Some(layer) = chart_layer(&m) else {
        r.status = VerifyStatus::Differs;
        r.missing.push(format!(
            "chart {}: the tag holds {}, which is not a Helm chart (no {} layer)",
            c.chart,
            m.digest,
            berth_helmoci::CHART_LAYER_MEDIA_TYPE
        ));
        return;
    };
    r.found = Some(layer.digest.clone());
    if layer.digest != a.layer_digest() {
        r.status = VerifyStatus::Differs;
        return;
    }
    if deep {
        let mut blobs = vec![layer.digest];
        if let Ok(berth_oci::Kind::Image { config, .. }) = m.walk().map(|w| w.kind) {
            blobs.push(config.digest);
        }
        for b in blobs {
            match Destination::has_blob(&end, &b).await {
                Ok(true) => {}
                Ok(false) => r.missing.push(format!("blob {b}")),
                Err(e) => r.missing.push(format!("blob {b}: {e}")),
            }
        }
    }
    r.status = match r.missing.is_empty() {
        true => VerifyStatus::Present,
        false => VerifyStatus::Incomplete,
    };
}
