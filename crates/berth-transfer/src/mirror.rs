//! Mirroring a [`Plan`]: every image whose target differs from its source is copied there;
//! [`verify_plan`] checks that every image of the plan is at its target.

use berth_oci::units;
use berth_plan::Plan;

use crate::{
    CopyOptions, Endpoint, EventSink, ImageStatus, Report, VerifyReport, copy_images, verify,
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

/// Copies every redirected image of `plan` to its target; images the rewrite leaves where
/// they are ([`Plan::split_redirected`]) have nowhere to go.
pub async fn mirror(plan: &Plan, options: CopyOptions, events: Option<EventSink>) -> Report {
    let (moved, _) = plan.split_redirected();
    copy_images(pairs(moved), options, events).await
}

/// Whether every image of `plan` is at its target (with `deep`, every blob too), with the
/// plan's findings.
pub async fn verify_plan(plan: &Plan, options: &CopyOptions, deep: bool) -> VerifyReport {
    VerifyReport {
        images: verify(pairs(&plan.entries), options, deep).await,
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
            self.failed(),
        )?;
        match count(ImageStatus::Cancelled) {
            0 => {}
            n => write!(f, ", {n} cancelled")?,
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
