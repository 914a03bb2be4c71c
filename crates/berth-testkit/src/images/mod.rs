//! Test images built from real files of this machine, written as an OCI image layout.
//!
//! - Layers are deterministic tar archives (GNU headers, names sorted, mtime 0,
//!   uid/gid 0, no user/group names, modes as found, symlinks and hardlinks kept) of real
//!   system directories, gzip-compressed with a deterministic header (no name, mtime 0).
//! - Configs and manifests are compact JSON with sorted keys, written as exact bytes.
//! - All digests are sha256; rebuilding on the same machine gives identical digests.
//!
//! [`build_set`] makes a small set (a few MB, well under a second);
//! [`build_big`] one image with an incompressible seeded-PRNG layer of N MiB, streamed.
//! Docker-typed images (schema2, manifest list) are built directly with Docker media
//! types, so `skopeo copy --preserve-digests` pushes them byte for byte.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

mod layer;
mod sets;

use layer::Layer;
pub use sets::{
    PROFILE_IMAGES, build_big, build_profile, build_set, docker_reference, push_with_skopeo,
    repository,
};

use crate::sha256_digest;
use crate::skopeo;

pub const MT_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MT_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MT_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MT_OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MT_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MT_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const MT_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const MT_DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// The annotation naming a ref in `index.json` (`oci:DIR:NAME`).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

const CREATED: &str = "2024-01-01T00:00:00Z";

/// Manifest family of a ref.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `application/vnd.oci.image.manifest.v1+json`
    OciManifest,
    /// `application/vnd.docker.distribution.manifest.v2+json`
    DockerSchema2,
    /// `application/vnd.oci.image.index.v1+json`
    OciIndex,
    /// `application/vnd.docker.distribution.manifest.list.v2+json`
    DockerList,
}

impl Kind {
    pub fn media_type(self) -> &'static str {
        match self {
            Kind::OciManifest => MT_OCI_MANIFEST,
            Kind::DockerSchema2 => MT_DOCKER_MANIFEST,
            Kind::OciIndex => MT_OCI_INDEX,
            Kind::DockerList => MT_DOCKER_LIST,
        }
    }
    /// An index / manifest list (rather than a single image manifest).
    pub fn is_index(self) -> bool {
        matches!(self, Kind::OciIndex | Kind::DockerList)
    }
    /// Docker media types (schema2 / manifest list).
    pub fn is_docker(self) -> bool {
        matches!(self, Kind::DockerSchema2 | Kind::DockerList)
    }
}

/// A content descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    /// `"sha256:<hex>"`.
    pub digest: String,
    pub size: u64,
}

/// One single-platform image manifest: the ref itself for a manifest, or one entry of an
/// index / manifest list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageManifest {
    /// `"linux/amd64"`, `"linux/arm64/v8"`.
    pub platform: String,
    pub manifest: Descriptor,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    /// `rootfs.diff_ids` of the config (sha256 of the uncompressed tars).
    pub diff_ids: Vec<String>,
}

/// A ref of the fixture layout: `index.json` names it `<name>_<tag>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixtureRef {
    pub name: String,
    pub tag: String,
    /// `org.opencontainers.image.ref.name` in `index.json`: `"<name>_<tag>"`.
    pub ref_name: String,
    pub kind: Kind,
    /// Digest of the top manifest / index bytes.
    pub digest: String,
    pub size: u64,
    /// The image manifest (1 entry) or the index's entries, in index order.
    pub manifests: Vec<ImageManifest>,
}

impl FixtureRef {
    pub fn media_type(&self) -> &'static str {
        self.kind.media_type()
    }
    /// Every distinct blob digest (configs and layers), sorted; manifests not included.
    pub fn blobs(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .manifests
            .iter()
            .flat_map(|m| {
                std::iter::once(m.config.digest.clone())
                    .chain(m.layers.iter().map(|l| l.digest.clone()))
            })
            .collect();
        v.sort();
        v.dedup();
        v
    }
    /// The top digest and, for an index, its child manifests' digests.
    pub fn manifest_digests(&self) -> Vec<String> {
        let mut v = vec![self.digest.clone()];
        if self.kind.is_index() {
            v.extend(self.manifests.iter().map(|m| m.manifest.digest.clone()));
        }
        v
    }
}

/// An OCI image layout directory: `oci-layout`, `index.json`, `blobs/sha256/<hex>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OciLayout {
    pub dir: PathBuf,
}

impl OciLayout {
    /// Create (or reuse) a layout at `dir`.
    pub fn create(dir: &Path) -> OciLayout {
        std::fs::create_dir_all(dir.join("blobs").join("sha256"))
            .unwrap_or_else(|e| panic!("create OCI layout at {}: {e}", dir.display()));
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
            .expect("write oci-layout");
        OciLayout {
            dir: dir.to_path_buf(),
        }
    }
    /// `blobs/sha256/<hex>` for `"sha256:<hex>"`.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest
            .strip_prefix("sha256:")
            .unwrap_or_else(|| panic!("not a sha256 digest: {digest}"));
        self.dir.join("blobs").join("sha256").join(hex)
    }
    pub fn read_blob(&self, digest: &str) -> Vec<u8> {
        std::fs::read(self.blob_path(digest))
            .unwrap_or_else(|e| panic!("read blob {digest} from {}: {e}", self.dir.display()))
    }
    /// `"oci:DIR:REF_NAME"`, for skopeo.
    pub fn reference(&self, ref_name: &str) -> String {
        skopeo::oci_ref(&self.dir, ref_name)
    }
    /// Store bytes as a blob; returns its digest and size.
    pub fn put_blob(&self, bytes: &[u8]) -> (String, u64) {
        let digest = sha256_digest(bytes);
        let path = self.blob_path(&digest);
        if !path.exists() {
            let tmp = self.tmp_path();
            std::fs::write(&tmp, bytes).expect("write blob");
            std::fs::rename(&tmp, &path).expect("rename blob");
        }
        (digest, bytes.len() as u64)
    }
    fn tmp_path(&self) -> PathBuf {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.dir
            .join("blobs")
            .join(format!(".tmp-{}-{n}", std::process::id()))
    }
    /// Export one ref as a containers `dir:` transport directory at `dest` (created):
    /// `version`, `manifest.json` (the top manifest/index bytes), `<hex>.manifest.json`
    /// per child of an index, and `<hex>` per config/layer blob (hard links when
    /// possible). Returns `"dir:DEST"`.
    ///
    /// skopeo's `oci:` transport ignores `index.json` entries with Docker media types
    /// ("no descriptor found for reference"), so Docker-typed refs travel this way.
    pub fn export_dir_transport(&self, r: &FixtureRef, dest: &Path) -> String {
        std::fs::create_dir_all(dest).expect("create dir: transport directory");
        std::fs::write(dest.join("version"), "Directory Transport Version: 1.1\n")
            .expect("write version");
        std::fs::write(dest.join("manifest.json"), self.read_blob(&r.digest))
            .expect("write manifest.json");
        let link = |digest: &str, name: String| {
            let dst = dest.join(name);
            if !dst.exists() && std::fs::hard_link(self.blob_path(digest), &dst).is_err() {
                std::fs::copy(self.blob_path(digest), &dst).expect("copy blob");
            }
        };
        if r.kind.is_index() {
            for m in &r.manifests {
                let hex = m.manifest.digest.trim_start_matches("sha256:");
                link(&m.manifest.digest, format!("{hex}.manifest.json"));
            }
        }
        for b in r.blobs() {
            let hex = b.trim_start_matches("sha256:").to_string();
            link(&b, hex);
        }
        format!("dir:{}", dest.display())
    }

    fn put_json(&self, v: &Value) -> (String, u64) {
        self.put_blob(canonical_json(v).as_bytes())
    }
}

/// A layout plus the refs built into it.
#[derive(Clone, Debug)]
pub struct Fixture {
    pub layout: OciLayout,
    pub refs: Vec<FixtureRef>,
}

impl Fixture {
    /// The ref `name:tag`; panics if absent.
    pub fn get(&self, name: &str, tag: &str) -> &FixtureRef {
        self.refs
            .iter()
            .find(|r| r.name == name && r.tag == tag)
            .unwrap_or_else(|| panic!("fixture has no {name}:{tag}"))
    }
    /// `"oci:DIR:<name>_<tag>"`.
    pub fn oci_reference(&self, r: &FixtureRef) -> String {
        self.layout.reference(&r.ref_name)
    }
    /// A skopeo source reference for `r`: `"oci:DIR:REF"` for OCI-typed refs; for
    /// Docker-typed refs (which skopeo's `oci:` transport skips) a `dir:` export made
    /// under `scratch` (see [`OciLayout::export_dir_transport`]).
    pub fn skopeo_source(&self, r: &FixtureRef, scratch: &Path) -> String {
        if r.kind.is_docker() {
            self.layout.export_dir_transport(r, scratch)
        } else {
            self.oci_reference(r)
        }
    }

    /// Sum of the sizes of all distinct blobs in the layout (manifests included).
    pub fn total_blob_bytes(&self) -> u64 {
        let mut seen = std::collections::HashSet::new();
        let mut total = 0;
        for r in &self.refs {
            if seen.insert(r.digest.clone()) {
                total += r.size;
            }
            for m in &r.manifests {
                for d in std::iter::once(&m.manifest)
                    .chain(std::iter::once(&m.config))
                    .chain(m.layers.iter())
                {
                    if seen.insert(d.digest.clone()) {
                        total += d.size;
                    }
                }
            }
        }
        total
    }
}

// ---------------------------------------------------------------------------------------
// Configs, manifests, indexes

/// Compact JSON with object keys sorted (independent of serde_json's `preserve_order`).
pub fn canonical_json(v: &Value) -> String {
    fn w(v: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(k).unwrap());
                    out.push(':');
                    w(&m[k], out);
                }
                out.push('}');
            }
            Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    w(x, out);
                }
                out.push(']');
            }
            other => out.push_str(&serde_json::to_string(other).unwrap()),
        }
    }
    let mut s = String::new();
    w(v, &mut s);
    s
}

fn platform_json(platform: &str) -> Value {
    let mut parts = platform.split('/');
    let os = parts.next().unwrap();
    let arch = parts.next().expect("platform os/arch");
    let mut p = json!({"os": os, "architecture": arch});
    if let Some(v) = parts.next() {
        p["variant"] = json!(v);
    }
    p
}

fn desc_json(d: &Descriptor) -> Value {
    json!({"mediaType": d.media_type, "digest": d.digest, "size": d.size})
}

/// Write config + manifest for one platform. `docker` selects Docker media types.
fn build_image(
    layout: &OciLayout,
    title: &str,
    platform: &str,
    layers: &[&Layer],
    docker: bool,
) -> ImageManifest {
    let mut config = json!({
        "created": CREATED,
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["/bin/sh"],
            "WorkingDir": "/",
            "Labels": {"org.opencontainers.image.title": title, "berth-testkit": "1"},
        },
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
        "history": layers.iter().map(|l| json!({"created": CREATED, "created_by": format!("berth-testkit layer {}", l.label)})).collect::<Vec<_>>(),
    });
    for (k, v) in platform_json(platform).as_object().unwrap() {
        config[k] = v.clone();
    }
    let (cfg_digest, cfg_size) = layout.put_json(&config);
    let (mt, cfg_mt, layer_mt) = if docker {
        (MT_DOCKER_MANIFEST, MT_DOCKER_CONFIG, MT_DOCKER_LAYER_GZIP)
    } else {
        (MT_OCI_MANIFEST, MT_OCI_CONFIG, MT_OCI_LAYER_GZIP)
    };
    let config_desc = Descriptor {
        media_type: cfg_mt.into(),
        digest: cfg_digest,
        size: cfg_size,
    };
    let layer_descs: Vec<Descriptor> = layers
        .iter()
        .map(|l| Descriptor {
            media_type: layer_mt.into(),
            digest: l.digest.clone(),
            size: l.size,
        })
        .collect();
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": mt,
        "config": desc_json(&config_desc),
        "layers": layer_descs.iter().map(desc_json).collect::<Vec<_>>(),
    });
    if !docker {
        manifest["annotations"] = json!({"org.opencontainers.image.created": CREATED});
    }
    let (digest, size) = layout.put_json(&manifest);
    ImageManifest {
        platform: platform.into(),
        manifest: Descriptor {
            media_type: mt.into(),
            digest,
            size,
        },
        config: config_desc,
        layers: layer_descs,
        diff_ids: layers.iter().map(|l| l.diff_id.clone()).collect(),
    }
}

fn single(name: &str, tag: &str, kind: Kind, m: ImageManifest) -> FixtureRef {
    FixtureRef {
        name: name.into(),
        tag: tag.into(),
        ref_name: format!("{name}_{tag}"),
        kind,
        digest: m.manifest.digest.clone(),
        size: m.manifest.size,
        manifests: vec![m],
    }
}

fn index(
    layout: &OciLayout,
    name: &str,
    tag: &str,
    kind: Kind,
    ms: Vec<ImageManifest>,
) -> FixtureRef {
    let idx = json!({
        "schemaVersion": 2,
        "mediaType": kind.media_type(),
        "manifests": ms.iter().map(|m| {
            let mut d = desc_json(&m.manifest);
            d["platform"] = platform_json(&m.platform);
            d
        }).collect::<Vec<_>>(),
    });
    let (digest, size) = layout.put_json(&idx);
    FixtureRef {
        name: name.into(),
        tag: tag.into(),
        ref_name: format!("{name}_{tag}"),
        kind,
        digest,
        size,
        manifests: ms,
    }
}

/// Write `index.json` naming every ref (`org.opencontainers.image.ref.name`).
fn write_index_json(layout: &OciLayout, refs: &[FixtureRef]) {
    let top = json!({
        "schemaVersion": 2,
        "mediaType": MT_OCI_INDEX,
        "manifests": refs.iter().map(|r| json!({
            "mediaType": r.media_type(),
            "digest": r.digest,
            "size": r.size,
            "annotations": {ANNOTATION_REF_NAME: r.ref_name},
        })).collect::<Vec<_>>(),
    });
    std::fs::write(layout.dir.join("index.json"), canonical_json(&top)).expect("write index.json");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_compactly() {
        let v = json!({"b": 1, "a": {"d": [1, "x"], "c": null}});
        assert_eq!(canonical_json(&v), r#"{"a":{"c":null,"d":[1,"x"]},"b":1}"#);
    }
}
