//! Cluster profiles: parse (YAML or JSON), render Palette `{{.spectro...}}` macros, extract the
//! container images with their roles, lint, and remove `AlwaysPullImages` without touching
//! anything else in the file.
//!
//! Pure: no file or network I/O. Functions take text plus the file's display name.

mod charts;
mod error;
mod extract;
mod fix;
mod generate;
mod palette;
mod palette_findings;
mod profile;
mod render;
mod value;

pub use charts::{ChartSpec, chart_specs};
pub use error::ProfileError;
pub use extract::{
    Extraction, Finding, ImageUse, Provenance, RenderedManifest, Severity, extract_images, lint,
    rendered_manifests,
};
pub use fix::{Fix, fix_always_pull_images};
pub use generate::generate_large_profile;
pub use palette::{
    PackInfo, PackType, ProfileFormat, detect_format, parse_export, parse_profiles,
    variable_overrides,
};
pub use profile::{EXAMPLE, Layer, LayerType, Manifest, Profile, Role, Values};
pub use value::Value;
