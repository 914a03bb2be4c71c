//! Profile files as bundle entries.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::{BundleError, ProfileFile};

/// [`profile_files`] of the files at `paths`, read now, with their profiles' `names`.
pub fn read_profile_files(
    paths: &[PathBuf],
    names: impl IntoIterator<Item = String>,
) -> Result<Vec<ProfileFile>, BundleError> {
    let mut files = Vec::new();
    for (path, name) in paths.iter().zip(names) {
        let bytes = std::fs::read(path)
            .map_err(|e| BundleError::io(&path.display().to_string(), "cannot read", e))?;
        files.push((path.as_path(), name, bytes));
    }
    Ok(profile_files(files))
}

/// Bundle entries for profile files, in order: `(path, profile name, bytes)`. Each is stored
/// under its file name made safe (letters, digits, `.`, `-`, `_`; no leading `.`), or
/// `profile-N.yaml` when nothing is left; a name already taken gets its index in front.
pub fn profile_files(files: Vec<(&Path, String, Vec<u8>)>) -> Vec<ProfileFile> {
    let mut taken = BTreeSet::new();
    let mut out = Vec::with_capacity(files.len());
    for (i, (path, name, bytes)) in files.into_iter().enumerate() {
        let base = path.file_name().unwrap_or_default().to_string_lossy();
        let clean: String = base
            .chars()
            .map(|c| match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' | '_' => c,
                _ => '_',
            })
            .collect();
        let mut file = match clean.trim_start_matches('.') {
            "" => format!("profile-{i}.yaml"),
            c => c.to_string(),
        };
        if !taken.insert(file.clone()) {
            file = format!("{i:02}-{file}");
            taken.insert(file.clone());
        }
        out.push(ProfileFile { file, name, bytes });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_unique_names() {
        let f = |p: &'static str| (Path::new(p), "n".to_string(), Vec::new());
        let names: Vec<String> = profile_files(vec![
            f("/a/edge profile.yaml"),
            f("/b/edge profile.yaml"),
            f("/c/.hidden"),
            f("/d/..."),
            f("/e/ünï.yaml"),
        ])
        .into_iter()
        .map(|p| p.file)
        .collect();
        assert_eq!(
            names,
            [
                "edge_profile.yaml",
                "01-edge_profile.yaml",
                "hidden",
                "profile-3.yaml",
                "_n_.yaml"
            ]
        );
    }
}
