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

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use flate2::Compression;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::skopeo::{self, SkopeoOpts};
use crate::{Distribution, hex, sha256_digest};

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
// Layers

/// A built layer (blob in the layout).
#[derive(Clone, Debug)]
struct Layer {
    digest: String,
    size: u64,
    diff_id: String,
    label: String,
}

/// What a layer holds.
enum Source<'a> {
    /// Real directories/files, relative to `/`. Missing ones are skipped (at least one
    /// must exist).
    Paths(&'a [&'a str]),
    /// Real paths plus empty OCI whiteout files (`dir/.wh.name`).
    PathsWithWhiteouts(&'a [&'a str], &'a [&'a str]),
    /// `models/weights.bin`: `mib` MiB from a seeded PRNG (incompressible, reproducible).
    Random { mib: usize, seed: u64 },
}

/// Writer adaptor: sha256 + byte count of what passes through.
struct HashCount<W> {
    inner: W,
    hash: Sha256,
    n: u64,
}

impl<W: Write> Write for HashCount<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let k = self.inner.write(buf)?;
        self.hash.update(&buf[..k]);
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W> HashCount<W> {
    fn new(inner: W) -> Self {
        HashCount {
            inner,
            hash: Sha256::new(),
            n: 0,
        }
    }
    fn finish(self) -> (W, String, u64) {
        (
            self.inner,
            format!("sha256:{}", hex(&self.hash.finalize())),
            self.n,
        )
    }
}

/// A deterministic, incompressible byte stream of a given length: the native-endian
/// words of wyrand (`fastrand`, seeded), which as a dependency is compiled optimised and
/// runs at GB/s even in debug test builds. Independent of the callers' read sizes.
struct Prng {
    rng: fastrand::Rng,
    left: u64,
    tail: [u8; 8],
    pos: usize,
}

impl Prng {
    fn new(seed: u64, len: u64) -> Prng {
        Prng {
            rng: fastrand::Rng::with_seed(seed),
            left: len,
            tail: [0; 8],
            pos: 8,
        }
    }
}

impl Read for Prng {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let want = (out.len() as u64).min(self.left) as usize;
        let mut i = 0;
        while i < want && self.pos < 8 {
            out[i] = self.tail[self.pos];
            self.pos += 1;
            i += 1;
        }
        let words = (want - i) & !7;
        // fill() draws one u64 per 8 bytes.
        self.rng.fill(&mut out[i..i + words]);
        i += words;
        if i < want {
            self.rng.fill(&mut self.tail);
            self.pos = 0;
            while i < want {
                out[i] = self.tail[self.pos];
                self.pos += 1;
                i += 1;
            }
        }
        self.left -= want as u64;
        Ok(want)
    }
}

enum Entry {
    Dir(u32),
    File(PathBuf, std::fs::Metadata),
    Symlink(PathBuf, u32),
    Empty,
}

fn collect(abs: &Path, rel: &str, out: &mut BTreeMap<String, Entry>) {
    let meta = match std::fs::symlink_metadata(abs) {
        Ok(m) => m,
        Err(_) => return,
    };
    let ft = meta.file_type();
    let mode = meta.mode() & 0o7777;
    if ft.is_symlink() {
        out.insert(rel.to_string(), Entry::Symlink(abs.to_path_buf(), mode));
    } else if ft.is_dir() {
        out.insert(format!("{rel}/"), Entry::Dir(mode));
        let mut names: Vec<_> = std::fs::read_dir(abs)
            .unwrap_or_else(|e| panic!("read_dir {}: {e}", abs.display()))
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        names.sort();
        for n in names {
            let n = n.to_string_lossy().into_owned();
            collect(&abs.join(&n), &format!("{rel}/{n}"), out);
        }
    } else if ft.is_file() {
        out.insert(rel.to_string(), Entry::File(abs.to_path_buf(), meta));
    }
    // sockets, fifos, devices: skipped
}

fn add_parents(rel: &str, out: &mut BTreeMap<String, Entry>) {
    let mut acc = String::new();
    let parts: Vec<&str> = rel.trim_end_matches('/').split('/').collect();
    for p in &parts[..parts.len().saturating_sub(1)] {
        acc.push_str(p);
        acc.push('/');
        out.entry(acc.clone()).or_insert(Entry::Dir(0o755));
    }
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size);
    h
}

/// Build one layer into the layout, streaming tar -> sha256 (diff_id) -> gzip -> sha256.
fn build_layer(layout: &OciLayout, label: &str, source: &Source, level: Compression) -> Layer {
    let tmp = layout.tmp_path();
    let file = BufWriter::with_capacity(1 << 20, File::create(&tmp).expect("create layer"));
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(HashCount::new(file), level);
    let mut tb = tar::Builder::new(HashCount::new(gz));
    tb.mode(tar::HeaderMode::Complete);
    tb.follow_symlinks(false);

    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    let mut random = None;
    let (paths, whiteouts): (&[&str], &[&str]) = match source {
        Source::Paths(p) => (p, &[]),
        Source::PathsWithWhiteouts(p, w) => (p, w),
        Source::Random { mib, seed } => {
            random = Some((*mib, *seed));
            (&[], &[])
        }
    };
    for p in paths {
        let rel = p.trim_matches('/');
        let before = entries.len();
        collect(&Path::new("/").join(rel), rel, &mut entries);
        if entries.len() > before {
            add_parents(rel, &mut entries);
        }
    }
    if !paths.is_empty() && entries.is_empty() {
        panic!(
            "berth-testkit: none of the layer {label}'s source paths exist on this machine: {paths:?}"
        );
    }
    for w in whiteouts {
        add_parents(w, &mut entries);
        entries.insert(w.to_string(), Entry::Empty);
    }
    if random.is_some() {
        entries.insert("models/".into(), Entry::Dir(0o755));
    }

    let mut links: HashMap<(u64, u64), String> = HashMap::new();
    for (path, e) in &entries {
        match e {
            Entry::Dir(mode) => {
                let mut h = header(tar::EntryType::Directory, *mode, 0);
                tb.append_data(&mut h, path, io::empty()).expect("tar dir");
            }
            Entry::Empty => {
                let mut h = header(tar::EntryType::Regular, 0o644, 0);
                tb.append_data(&mut h, path, io::empty())
                    .expect("tar whiteout");
            }
            Entry::Symlink(abs, mode) => {
                let target = std::fs::read_link(abs).expect("read_link");
                let mut h = header(tar::EntryType::Symlink, *mode, 0);
                tb.append_link(&mut h, path, &target).expect("tar symlink");
            }
            Entry::File(abs, meta) => {
                let mode = meta.mode() & 0o7777;
                if meta.nlink() > 1 {
                    let key = (meta.dev(), meta.ino());
                    if let Some(first) = links.get(&key) {
                        let mut h = header(tar::EntryType::Link, mode, 0);
                        tb.append_link(&mut h, path, first).expect("tar hardlink");
                        continue;
                    }
                    links.insert(key, path.clone());
                }
                let f = File::open(abs).unwrap_or_else(|e| panic!("open {}: {e}", abs.display()));
                let mut h = header(tar::EntryType::Regular, mode, meta.len());
                tb.append_data(&mut h, path, f.take(meta.len()))
                    .unwrap_or_else(|e| panic!("tar {}: {e}", abs.display()));
            }
        }
    }
    if let Some((mib, seed)) = random {
        let len = (mib as u64) << 20;
        let mut h = header(tar::EntryType::Regular, 0o644, len);
        tb.append_data(&mut h, "models/weights.bin", Prng::new(seed, len))
            .expect("tar random");
    }

    let tar_hc = tb.into_inner().expect("finish tar");
    let (gz, diff_id, _tar_len) = tar_hc.finish();
    let file_hc = gz.finish().expect("finish gzip");
    let (mut file, digest, size) = file_hc.finish();
    file.flush().expect("flush layer");
    drop(file);
    let dst = layout.blob_path(&digest);
    std::fs::rename(&tmp, &dst).expect("rename layer blob");
    Layer {
        digest,
        size,
        diff_id,
        label: label.to_string(),
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

fn python_lib() -> String {
    let mut found: Vec<String> = std::fs::read_dir("/usr/lib")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| {
                    n.starts_with("python3.")
                        && Path::new("/usr/lib").join(n).join("email").is_dir()
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    match found.pop() {
        Some(n) => format!("usr/lib/{n}"),
        None => panic!(
            "berth-testkit: test images use /usr/lib/python3.*/ as real files; \
             install it with `apt-get install -y libpython3-stdlib`"
        ),
    }
}

/// The `os` layer both sets build on: zoneinfo, common-licenses, mime (≈ 1.2 MB gzip).
fn os_layer(layout: &OciLayout, lvl: Compression) -> Layer {
    build_layer(
        layout,
        "os",
        &Source::Paths(&[
            "usr/share/zoneinfo",
            "usr/share/common-licenses",
            "usr/share/mime",
        ]),
        lvl,
    )
}

/// The small standard set, in the layout at `dir` (created if needed):
///
/// | ref | kind | layers |
/// |---|---|---|
/// | `base:1` | OCI manifest | os |
/// | `base:2` | OCI manifest | os, libs (shares `os` with base:1) |
/// | `app:1` | Docker schema2 | os, libs, app (app has an OCI whiteout) |
/// | `multi:1` | OCI index | linux/amd64 [os, shared], linux/arm64/v8 [arm, shared] |
/// | `multi:1-docker` | Docker manifest list | same layers, Docker-typed children |
///
/// Layers (gzip): os ≈ 1.2 MB (zoneinfo, common-licenses, mime), libs ≈ 0.4 MB
/// (python email, json), app ≈ 0.4 MB (perl5), shared ≈ 0.4 MB (python asyncio),
/// arm ≈ 0.4 MB (python unittest, logging).
pub fn build_set(dir: &Path) -> Fixture {
    let layout = OciLayout::create(dir);
    let py = python_lib();
    let lvl = Compression::new(6);
    let p = |s: &str| format!("{py}/{s}");
    let (py_email, py_json, py_asyncio, py_unittest, py_logging) = (
        p("email"),
        p("json"),
        p("asyncio"),
        p("unittest"),
        p("logging"),
    );
    let os = os_layer(&layout, lvl);
    let libs = build_layer(&layout, "libs", &Source::Paths(&[&py_email, &py_json]), lvl);
    let app = build_layer(
        &layout,
        "app",
        &Source::PathsWithWhiteouts(
            &["usr/share/perl5", "usr/share/perl"],
            &["usr/share/common-licenses/.wh.GPL-1"],
        ),
        lvl,
    );
    let shared = build_layer(&layout, "shared", &Source::Paths(&[&py_asyncio]), lvl);
    let arm = build_layer(
        &layout,
        "arm",
        &Source::Paths(&[&py_unittest, &py_logging]),
        lvl,
    );

    let amd = "linux/amd64";
    let arm64 = "linux/arm64/v8";
    let mut refs = vec![
        single(
            "base",
            "1",
            Kind::OciManifest,
            build_image(&layout, "base:1", amd, &[&os], false),
        ),
        single(
            "base",
            "2",
            Kind::OciManifest,
            build_image(&layout, "base:2", amd, &[&os, &libs], false),
        ),
        single(
            "app",
            "1",
            Kind::DockerSchema2,
            build_image(&layout, "app:1", amd, &[&os, &libs, &app], true),
        ),
    ];
    for (tag, kind) in [("1", Kind::OciIndex), ("1-docker", Kind::DockerList)] {
        let docker = kind.is_docker();
        let ms = vec![
            build_image(&layout, "multi:1", amd, &[&os, &shared], docker),
            build_image(&layout, "multi:1", arm64, &[&arm, &shared], docker),
        ];
        refs.push(index(&layout, "multi", tag, kind, ms));
    }
    write_index_json(&layout, &refs);
    Fixture { layout, refs }
}

/// One image `big:1` (OCI manifest, linux/amd64) in the layout at `dir`: a small real
/// layer plus `models/weights.bin`, `mib` MiB from a seeded PRNG (incompressible, same
/// bytes every build), streamed to disk (memory use is constant). The gzip uses level 1.
pub fn build_big(dir: &Path, mib: usize) -> Fixture {
    let layout = OciLayout::create(dir);
    let small = build_layer(
        &layout,
        "os-small",
        &Source::Paths(&["usr/share/common-licenses"]),
        Compression::new(6),
    );
    let big = build_layer(
        &layout,
        &format!("random-{mib}mib"),
        &Source::Random {
            mib,
            seed: 20240101,
        },
        Compression::none(),
    );
    let m = build_image(&layout, "big:1", "linux/amd64", &[&small, &big], false);
    let refs = vec![single("big", "1", Kind::OciManifest, m)];
    write_index_json(&layout, &refs);
    Fixture { layout, refs }
}

/// The images of a profile-shaped set: name, the size in MiB of its own application layer
/// (incompressible), and whether it is a two-platform OCI index.
pub const PROFILE_IMAGES: &[(&str, usize, bool)] = &[
    ("cni-agent", 80, false),
    ("csi-node", 60, false),
    ("ingress", 45, true),
    ("monitoring", 40, false),
    ("logging", 30, false),
    ("cni-operator", 25, false),
    ("registry-ui", 20, false),
    ("kube-vip", 18, false),
    ("coredns", 15, true),
    ("metrics-server", 12, false),
    ("local-path", 10, false),
    ("webhook", 8, false),
    ("snapshot-ctl", 6, false),
    ("node-exporter", 5, true),
    ("cert-manager", 4, false),
    ("klipper-lb", 3, false),
    ("sidecar", 2, false),
    ("pause", 1, false),
];

/// A set shaped like an edge cluster profile ([`PROFILE_IMAGES`]): 18 images of 1–80 MiB
/// (three of them two-platform OCI indexes), every one on a shared base layer of real files
/// (zoneinfo, licenses, mime) plus a small layer of real files and its own incompressible
/// application layer (seeded, the same bytes every build; the arm64 children get their own).
/// About 430 MB of distinct blobs; most bytes in a few large layers, most images small.
pub fn build_profile(dir: &Path) -> Fixture {
    let layout = OciLayout::create(dir);
    let py = python_lib();
    let lvl = Compression::new(6);
    let base = os_layer(&layout, lvl);
    let extras = ["json", "email", "asyncio", "unittest", "logging", "http"];
    let extra_layers: Vec<Layer> = extras
        .iter()
        .map(|e| {
            build_layer(
                &layout,
                &format!("py-{e}"),
                &Source::Paths(&[&format!("{py}/{e}")]),
                lvl,
            )
        })
        .collect();
    let mut refs = Vec::new();
    for (i, &(name, mib, multi)) in PROFILE_IMAGES.iter().enumerate() {
        let extra = &extra_layers[i % extra_layers.len()];
        let own = |seed: u64| {
            build_layer(
                &layout,
                &format!("{name}-{mib}mib-{seed}"),
                &Source::Random { mib, seed },
                Compression::none(),
            )
        };
        let amd = own(1000 + i as u64);
        let title = format!("{name}:1");
        if multi {
            let arm = own(2000 + i as u64);
            let ms = vec![
                build_image(&layout, &title, "linux/amd64", &[&base, extra, &amd], false),
                build_image(
                    &layout,
                    &title,
                    "linux/arm64/v8",
                    &[&base, extra, &arm],
                    false,
                ),
            ];
            refs.push(index(&layout, name, "1", Kind::OciIndex, ms));
        } else {
            let m = build_image(&layout, &title, "linux/amd64", &[&base, extra, &amd], false);
            refs.push(single(name, "1", Kind::OciManifest, m));
        }
    }
    write_index_json(&layout, &refs);
    Fixture { layout, refs }
}

/// Push every ref of `f` to `reg` as `HOST/PREFIX/NAME:TAG` (no prefix when empty) with
/// `skopeo copy --all --preserve-digests`, byte for byte (Docker-typed refs stay Docker;
/// they are copied from a temporary `dir:` export, see [`Fixture::skopeo_source`]).
/// Panics if a digest at the registry differs from the layout's.
pub fn push_with_skopeo(f: &Fixture, reg: &Distribution, repo_prefix: &str) {
    let opts = SkopeoOpts::for_registry(reg);
    let tmp = tempfile::Builder::new()
        .prefix("berth-push-")
        .tempdir()
        .expect("create temp dir");
    for r in &f.refs {
        let dst = docker_reference(reg, repo_prefix, r);
        let src = f.skopeo_source(r, &tmp.path().join(&r.ref_name));
        skopeo::copy_all(&src, &dst, &opts);
        let got = skopeo::digest_of(&dst, &opts);
        assert_eq!(
            got, r.digest,
            "berth-testkit: skopeo changed the manifest of {dst} while pushing"
        );
    }
}

/// `"docker://HOST/PREFIX/NAME:TAG"` for a ref pushed by [`push_with_skopeo`].
pub fn docker_reference(reg: &Distribution, repo_prefix: &str, r: &FixtureRef) -> String {
    format!(
        "docker://{}",
        repository(reg, repo_prefix, r) + ":" + &r.tag
    )
}

/// `"HOST/PREFIX/NAME"` (or `"HOST/NAME"` with an empty prefix).
pub fn repository(reg: &Distribution, repo_prefix: &str, r: &FixtureRef) -> String {
    let prefix = repo_prefix.trim_matches('/');
    if prefix.is_empty() {
        format!("{}/{}", reg.host(), r.name)
    } else {
        format!("{}/{prefix}/{}", reg.host(), r.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_compactly() {
        let v = json!({"b": 1, "a": {"d": [1, "x"], "c": null}});
        assert_eq!(canonical_json(&v), r#"{"a":{"c":null,"d":[1,"x"]},"b":1}"#);
    }

    #[test]
    fn prng_is_seeded_and_chunking_independent() {
        let mut a = Vec::new();
        Prng::new(7, 1000).read_to_end(&mut a).unwrap();
        let mut b = Vec::new();
        let mut p = Prng::new(7, 1000);
        let mut buf = [0u8; 13];
        loop {
            let n = p.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            b.extend_from_slice(&buf[..n]);
        }
        assert_eq!(a.len(), 1000);
        assert_eq!(a, b);
        let mut c = Vec::new();
        Prng::new(8, 1000).read_to_end(&mut c).unwrap();
        assert_ne!(a, c);
    }
}
