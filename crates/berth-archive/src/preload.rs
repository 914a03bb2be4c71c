//! Preloaded images: every OCI layout directory, `oci-archive` and `docker-archive` (plain,
//! gzip or zstd, recognised by content, never by file name) in a directory, each image
//! under its original names (`org.opencontainers.image.ref.name` / `RepoTags`, normalized
//! to full references as `ctr` shows them).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_ends::Source;

use crate::{DockerArchive, OciArchive, OciLayout, REF_NAME};

/// The image name containerd and the kubelet use for a reference: fully qualified, as
/// `ctr images ls` shows it (`nginx:1` → `docker.io/library/nginx:1`).
fn image_name(reference: &str) -> Result<String, berth_reference::ReferenceError> {
    Ok(berth_reference::Reference::parse(reference)?.to_string())
}

/// One image found in the preload directory.
#[derive(Clone)]
pub struct Preloaded {
    /// Where it is: `oci-archive:FILE:REF`, `docker-archive:FILE:@N`, `oci:DIR:REF`.
    pub origin: String,
    /// containerd image names (normalized, deduplicated); the first is the main one.
    pub names: Vec<String>,
    /// The layout or archive it is in, as a transfer source.
    pub source: Arc<dyn Source>,
    /// Its reference in that source (a ref name, `@N` for a docker-archive's N-th image).
    pub reference: String,
}

impl std::fmt::Debug for Preloaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Preloaded")
            .field("origin", &self.origin)
            .field("names", &self.names)
            .field("reference", &self.reference)
            .finish_non_exhaustive()
    }
}

/// A file or directory of the preload directory that could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreloadProblem {
    pub path: PathBuf,
    pub detail: String,
}

/// What [`scan`] found.
#[derive(Debug, Default)]
pub struct PreloadScan {
    pub images: Vec<Preloaded>,
    pub problems: Vec<PreloadProblem>,
}

/// Normalizes names, dropping the invalid ones (reported) and duplicates.
fn names(raw: &[String], origin: &str, problems: &mut Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in raw {
        match image_name(r) {
            Ok(n) if !out.contains(&n) => out.push(n),
            Ok(_) => {}
            Err(e) => problems.push(format!(
                "{origin}: name `{r}` is not an image reference: {e}"
            )),
        }
    }
    out
}

/// Adds the image `reference` of `source` under the names of `raw` that are image
/// references; an image with none is left out (each bad name is a problem).
fn add(
    images: &mut Vec<Preloaded>,
    problems: &mut Vec<String>,
    source: &Arc<dyn Source>,
    origin: String,
    raw: &[String],
    reference: String,
) {
    let names = names(raw, &origin, problems);
    if !names.is_empty() {
        let source = source.clone();
        images.push(Preloaded {
            origin,
            names,
            source,
            reference,
        });
    }
}

/// Lists the images of every layout and archive directly in `dir` (sorted by file name;
/// hidden entries are skipped). Archives are indexed here (a compressed one is
/// decompressed once into an unlinked temporary file).
pub async fn scan(dir: &Path) -> Result<PreloadScan, std::io::Error> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with('.'))
        })
        .collect();
    entries.sort();
    let mut scan = PreloadScan::default();
    for path in entries {
        let mut problems = Vec::new();
        if path.is_dir() {
            if path.join("oci-layout").is_file() {
                layout(&path, &mut scan.images, &mut problems);
            } else {
                problems
                    .push("a directory that is not an OCI layout (no `oci-layout` file)".into());
            }
        } else if path.is_file() {
            archive(&path, &mut scan.images, &mut problems).await;
        }
        scan.problems
            .extend(problems.into_iter().map(|detail| PreloadProblem {
                path: path.clone(),
                detail,
            }));
    }
    Ok(scan)
}

fn layout(dir: &Path, images: &mut Vec<Preloaded>, problems: &mut Vec<String>) {
    let index = match std::fs::read(dir.join("index.json"))
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => {
            problems.push(format!("OCI layout: cannot read index.json: {e}"));
            return;
        }
    };
    let layout: Arc<dyn Source> = match OciLayout::open(dir.to_path_buf()) {
        Ok(l) => Arc::new(l),
        Err(e) => {
            problems.push(format!("OCI layout: {e}"));
            return;
        }
    };
    for (i, m) in index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let Some(r) = m["annotations"][REF_NAME].as_str() else {
            problems.push(format!(
                "OCI layout: index.json entry {i} has no {REF_NAME}; it is not imported"
            ));
            continue;
        };
        let origin = format!("oci:{}:{r}", dir.display());
        add(
            images,
            problems,
            &layout,
            origin,
            &[r.to_string()],
            r.to_string(),
        );
    }
}

async fn archive(path: &Path, images: &mut Vec<Preloaded>, problems: &mut Vec<String>) {
    let oci_err = match OciArchive::open(path, None) {
        Ok(a) => match a.ref_names().await {
            Ok(refs) => {
                let a: Arc<dyn Source> = Arc::new(a);
                for (i, r) in refs.iter().enumerate() {
                    if r == "(unnamed)" {
                        problems.push(format!("oci-archive: index.json entry {i} has no {REF_NAME}; it is not imported"));
                        continue;
                    }
                    let origin = format!("oci-archive:{}:{r}", path.display());
                    let raw = std::slice::from_ref(r);
                    add(images, problems, &a, origin, raw, r.clone());
                }
                return;
            }
            Err(e) => e.to_string(),
        },
        Err(e) => e.to_string(),
    };
    let docker_err = match DockerArchive::open(path, None) {
        Ok(a) => match a.repo_tags().await {
            Ok(tags) => {
                let a: Arc<dyn Source> = Arc::new(a);
                for (i, t) in tags.iter().enumerate() {
                    if t.is_empty() {
                        problems.push(format!(
                            "docker-archive: image @{i} has no RepoTags; it is not imported"
                        ));
                        continue;
                    }
                    let origin = format!("docker-archive:{}:@{i}", path.display());
                    add(images, problems, &a, origin, t, format!("@{i}"));
                }
                return;
            }
            Err(e) => e.to_string(),
        },
        Err(e) => e.to_string(),
    };
    problems.push(format!(
        "neither an oci-archive ({oci_err}) nor a docker-archive ({docker_err})"
    ));
}
