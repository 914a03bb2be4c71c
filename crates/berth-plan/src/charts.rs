//! The charts of the plan: every Helm pack chart the caller loaded, as the Helm OCI artifact
//! (`berth-helmoci`) that `mirror` pushes, `verify` checks and `bundle build` carries, at the
//! rewritten target of the chart's source reference
//! ([`berth_helmoci::chart_reference`]: `oci://HOST/PATH` → `HOST/PATH/NAME:VERSION`, a
//! chart repository `https://HOST/PATH` → `HOST/PATH/NAME:VERSION`).

use berth_helmoci::{ChartArtifact, chart_reference};
use berth_profile::{Finding, Profile, Severity, chart_specs};
use berth_reference::{Digest, Reference};
use berth_rewrite::Rewriter;
use serde::Serialize;

use crate::{Charts, PlanError};

/// One chart of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanChart {
    /// Where the chart lives as an OCI artifact, and where it goes.
    pub source: Reference,
    pub target: Reference,
    /// `NAME VERSION` (Chart.yaml's).
    pub chart: String,
    /// The profile file and pack that install it.
    pub file: String,
    pub layer: String,
    /// The digest of the packaged chart (the artifact's layer), when there is one.
    pub digest: Option<Digest>,
    /// The artifact, or why the chart cannot be pushed (a chart given as a directory).
    #[serde(skip)]
    pub artifact: Result<ChartArtifact, String>,
}

impl PlanChart {
    /// Whether the rewrite sends it somewhere else.
    pub fn redirected(&self) -> bool {
        self.source != self.target
    }
}

/// The charts `charts` holds for the packs of `profiles`, each once (by source reference),
/// and a finding for each that has no place in a registry (no `repo`, a repo that names no
/// registry host, a reference the rewrite refuses).
pub(crate) fn plan_charts(
    profiles: &[Profile],
    charts: &Charts,
    rewriter: &Rewriter,
) -> Result<(Vec<PlanChart>, Vec<Finding>), PlanError> {
    let (mut out, mut findings) = (Vec::<PlanChart>::new(), Vec::new());
    for spec in chart_specs(profiles)? {
        let Some(chart) = charts.get(&spec) else {
            continue;
        };
        let artifact = match &chart.archive {
            Some(a) => {
                ChartArtifact::from_archive(a.bytes(), &chart.origin).map_err(|e| e.to_string())
            }
            None => Err(format!(
                "chart {} was given as a directory ({}): Berth pushes a chart as its packaged .tgz, byte for byte, and does not package directories (`helm package` rewrites Chart.yaml and stamps times); run `helm package {}` and put the .tgz in the --charts directory",
                chart.name, chart.origin, chart.origin
            )),
        };
        let (name, version) = match &artifact {
            Ok(a) => (a.name.clone(), a.version.clone()),
            Err(_) => (chart.name.clone(), chart.version()),
        };
        let mut problem = |message: String| {
            findings.push(Finding {
                rule: "chart-not-mirrored".into(),
                severity: Severity::Error,
                file: spec.file.clone(),
                layer: spec.layer.clone(),
                path: spec.path.clone(),
                message,
            })
        };
        let source = match chart_reference(&spec.repo, &name, &version) {
            Ok(s) => s,
            Err(e) => {
                problem(format!("{e}; the chart is not mirrored"));
                continue;
            }
        };
        let target = match rewriter.rewrite(&source) {
            Ok(t) => t,
            Err(e) => {
                problem(format!(
                    "chart {name} {version} at {source}: {e}; the chart is not mirrored"
                ));
                continue;
            }
        };
        if out.iter().any(|c| c.source == source) {
            continue;
        }
        out.push(PlanChart {
            digest: artifact.as_ref().ok().map(ChartArtifact::layer_digest),
            source,
            target,
            chart: format!("{name} {version}"),
            file: spec.file.clone(),
            layer: spec.layer.clone(),
            artifact,
        });
    }
    Ok((out, findings))
}
