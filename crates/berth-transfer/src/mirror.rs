//! Mirroring a [`Plan`]: every image whose target differs from its source is copied there,
//! every such chart pushed as its Helm OCI artifact; [`verify_plan`] checks that every image
//! and chart of the plan is at its target.

use berth_oci::units;
use berth_plan::Plan;

use crate::{
    CopyOptions, Endpoint, EventSink, ImageStatus, Report, VerifyReport, charts, copy_images,
    verify,
};

/// The engine's jobs for `entries`: source registry → target registry.
fn pairs<'a>(
    entries: impl IntoIterator<Item = &'a berth_plan::PlanEntry>,
) -> Vec<(Endpoint, Endpoint)> {
    entries
        .into_iter()
        .map(|e| {
            (
                Endpoint::Registry(e.source.clone()),
                Endpoint::Registry(e.target.clone()),
            )
        })
        .collect()
}

/// Copies every redirected image of `plan` to its target, and pushes every redirected chart
/// as its Helm OCI artifact (the report's `charts`); what the rewrite leaves where it is
/// ([`Plan::split_redirected`], [`Plan::moved_charts`]) has nowhere to go.
pub async fn mirror(plan: &Plan, options: CopyOptions, events: Option<EventSink>) -> Report {
    let (moved, _) = plan.split_redirected();
    let mut jobs = pairs(moved);
    let images = jobs.len();
    let mut unpushable = Vec::new();
    for c in plan.moved_charts() {
        match &c.artifact {
            Ok(a) => jobs.push(charts::pair(c, a)),
            Err(why) => unpushable.push(charts::unpushable(c, why)),
        }
    }
    let mut report = copy_images(jobs, options, events).await;
    report.charts = report.images.split_off(images);
    report.charts.extend(unpushable);
    report
}

/// Whether every image of `plan` is at its target (with `deep`, every blob too), and every
/// redirected chart (by the digest of its packaged `.tgz`), with the plan's findings.
pub async fn verify_plan(plan: &Plan, options: &CopyOptions, deep: bool) -> VerifyReport {
    VerifyReport {
        images: verify(pairs(&plan.entries), options, deep).await,
        charts: charts::verify(&plan.moved_charts(), options, deep).await,
        findings: plan.findings.clone(),
        deep,
    }
}

/// The one-line summary: images copied, present, failed (and cancelled); blobs; bytes,
/// time, rate.
impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = |s| self.images.iter().filter(|i| i.status == s).count();
        let b = &self.blobs;
        write!(
            f,
            "images: {} copied, {} already present, {} failed",
            count(ImageStatus::Copied),
            count(ImageStatus::Present),
            count(ImageStatus::Failed),
        )?;
        match count(ImageStatus::Cancelled) {
            0 => {}
            n => write!(f, ", {n} cancelled")?,
        }
        if !self.charts.is_empty() {
            let count = |s| self.charts.iter().filter(|i| i.status == s).count();
            write!(
                f,
                "; charts: {} pushed, {} already present, {} failed",
                count(ImageStatus::Copied),
                count(ImageStatus::Present),
                count(ImageStatus::Failed),
            )?;
        }
        match self.images.iter().map(|i| i.attached).sum::<u64>() {
            0 => {}
            n => write!(f, "; {n} attached artifact(s) at the targets")?,
        }
        write!(
            f,
            "; blobs: {} copied, {} skipped, {} mounted; {} in {} ({})",
            b.copied,
            b.skipped,
            b.mounted,
            units::size(self.bytes),
            units::seconds(self.seconds),
            units::rate(self.bytes, self.seconds),
        )
    }
}
