//! Reading the files commands take: user data, profiles. Errors name the file.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use berth_profile::Profile;
use berth_rewrite::{LocalRegistry, Rewriter};
use berth_userdata::UserData;

use crate::RedirectArgs;

pub const EXAMPLE_PROFILE: &str = include_str!("../../../examples/retail-edge.yaml");
pub const EXAMPLE_USER_DATA: &str = include_str!("../../../examples/user-data.yaml");

pub fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

pub fn user_data(path: &Path) -> Result<UserData> {
    let text = read(path)?;
    Ok(UserData::parse(&text, &path.display().to_string())?)
}

pub fn profiles(paths: &[PathBuf]) -> Result<Vec<Profile>> {
    paths
        .iter()
        .map(|p| {
            let text = read(p)?;
            Ok(Profile::parse(&text, &p.display().to_string())?)
        })
        .collect()
}

/// The rewrite function for these flags (`example` supplies the example user data).
pub fn rewriter(args: &RedirectArgs, example: bool) -> Result<Rewriter> {
    let ud = match (&args.user_data, example) {
        (Some(p), _) => Some(user_data(p)?),
        (None, true) => Some(UserData::parse(EXAMPLE_USER_DATA, "<example user data>")?),
        (None, false) => None,
    };
    let local = match &args.local_registry {
        Some(h) => Some(LocalRegistry::new(h, Some(&args.project))?),
        None => None,
    };
    Ok(Rewriter::new(ud.as_ref(), local))
}

/// Writes `text` to `path` atomically: a temporary file beside it, fsync, rename.
pub fn write_atomic(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.berth-tmp-{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        if let Ok(meta) = std::fs::metadata(path) {
            f.set_permissions(meta.permissions())?;
        }
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}
