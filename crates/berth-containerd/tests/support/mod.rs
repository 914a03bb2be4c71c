//! Test support: a private containerd 1.6 per test (`berth_testkit::containerd`: own root,
//! state and socket under a temporary directory, CRI disabled, `native` snapshotter), `ctr`
//! to judge the results, and a busybox image written as an OCI layout by hand (tar + gzip +
//! sha256 + JSON).
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

use berth_testkit::{require_tool, sha256_digest};
use serde_json::json;

pub use berth_testkit::containerd::Containerd as TestContainerd;

/// What [`busybox_layout`] wrote.
pub struct BusyboxImage {
    pub layout: PathBuf,
    pub ref_name: String,
    pub manifest_digest: String,
    pub layer_digest: String,
    pub diff_id: String,
    pub config_digest: String,
}

fn put_blob(layout: &Path, bytes: &[u8]) -> (String, u64) {
    let d = sha256_digest(bytes);
    let p = layout
        .join("blobs/sha256")
        .join(d.trim_start_matches("sha256:"));
    std::fs::write(p, bytes).unwrap();
    (d, bytes.len() as u64)
}

/// An OCI layout at `layout` with one image named `ref_name`: one layer holding Debian's
/// static busybox as `bin/busybox` and a symlink `bin/sh`, `Cmd ["/bin/busybox","echo",
/// "hello from berth"]`, linux/amd64. Needs `/bin/busybox` (`apt-get install -y busybox-static`).
pub fn busybox_layout(layout: &Path, ref_name: &str) -> BusyboxImage {
    let busybox = require_tool("/bin/busybox", "busybox-static");
    let bytes = std::fs::read(busybox).unwrap();
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    dir.set_mtime(0);
    tar.append_data(&mut dir, "bin/", std::io::empty()).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o755);
    h.set_size(bytes.len() as u64);
    h.set_mtime(0);
    tar.append_data(&mut h, "bin/busybox", bytes.as_slice())
        .unwrap();
    let mut l = tar::Header::new_gnu();
    l.set_entry_type(tar::EntryType::Symlink);
    l.set_mode(0o777);
    l.set_size(0);
    l.set_mtime(0);
    tar.append_link(&mut l, "bin/sh", "busybox").unwrap();
    let raw = tar.into_inner().unwrap();
    let diff_id = sha256_digest(&raw);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    gz.write_all(&raw).unwrap();
    let gz = gz.finish().unwrap();
    let (layer_digest, layer_size) = put_blob(layout, &gz);
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/busybox", "echo", "hello from berth"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    });
    let (config_digest, config_size) = put_blob(layout, config.to_string().as_bytes());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer_size}],
    });
    let (manifest_digest, manifest_size) = put_blob(layout, manifest.to_string().as_bytes());
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": ref_name},
        }],
    });
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    BusyboxImage {
        layout: layout.to_path_buf(),
        ref_name: ref_name.to_string(),
        manifest_digest,
        layer_digest,
        diff_id,
        config_digest,
    }
}
