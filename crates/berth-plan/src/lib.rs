//! The plan, computed from the inputs alone: what every command that moves images agrees on.
//!
//! - [`Plan`]: every image of the profiles ([`berth_profile::ImageUse`]) with its target
//!   after the one rewrite function ([`berth_rewrite::Rewriter`]), its role, layer and
//!   provenance (where it was found). `berth images`, `mirror`, `verify` and the edge agent
//!   read the same plan.
//! - [`EdgeRegistry`]: the one parser of the edge registry's address,
//!   `[https://|http://]HOST[:PORT][/PROJECT]`, for every command that takes one.
//! - [`registry_settings`]: user data and the edge registry as per-registry login, CAs and
//!   `insecure` ([`RegistrySettings`], of `berth-userdata`), made in this one place;
//!   `berth-client` converts it to its configuration.
//!
//! - [`extract`], [`Charts`]: the charts of the profiles' Helm packs (loaded by the caller,
//!   from anywhere) rendered with each pack's values; their images join the plan with
//!   provenance `rendered` / `annotation`, and disagreements with the pack are findings.
//! - [`PlanChart`]: each of those charts as the Helm OCI artifact `mirror` pushes
//!   (`berth-helmoci`), at the rewritten target of its source reference.
//! - [`coverage`]: where the user data's settings do not cover a target (an image no rule
//!   matches, a rule's target outside every `registries[].domain`), as findings.
//!
//! Pure: no I/O. The caller reads files and passes their contents.

mod charts;
pub mod coverage;
mod edge;
mod helm;
mod plan;
mod settings;

pub use berth_profile::Finding;
pub use berth_userdata::RegistrySettings;
pub use charts::PlanChart;
pub use edge::{EdgeRegistry, EdgeRegistryError};
pub use helm::{ChartRenderError, Charts, chart_extraction, extract};
pub use plan::{Plan, PlanEntry, PlanError, Unrewritable, lint, role_rank};
pub use settings::{EdgeAccess, Login, RegistrySetting, registry_settings, targets};
