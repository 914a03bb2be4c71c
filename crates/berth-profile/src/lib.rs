//! Cluster profiles: parse (YAML or JSON), render Palette `{{.spectro...}}` macros, extract the
//! container images with their roles, lint, and remove `AlwaysPullImages` without touching
//! anything else in the file.
//!
//! Pure: no file or network I/O. Functions take text plus the file's display name.

mod error;
mod extract;
mod fix;
mod generate;
mod profile;
mod render;
mod value;

pub use error::ProfileError;
pub use extract::{Extraction, Finding, ImageUse, Severity, extract_images, lint};
pub use fix::{Fix, fix_always_pull_images};
pub use generate::generate_large_profile;
pub use profile::{Layer, LayerType, Manifest, Profile, Role, Values};
pub use value::Value;
