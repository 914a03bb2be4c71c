//! Test support: a driver that calls the ends exactly as `berth_transfer::copy_images`
//! does (walk, blobs through `VerifyingStream`, child manifests by digest, the top
//! manifest last under the target reference), since `copy_images` only takes registry and
//! layout `Endpoint`s today; and an isolated skopeo.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_ends::manifest::{Descriptor, Parsed, parse};
use berth_ends::{Destination, Source, TransferError};
use berth_oci::{Manifest, VerifyingStream};
use berth_reference::Digest;
use berth_testkit::images::Fixture;

/// Copies `src_ref` of `source` to `dest` under `dst_ref`; returns the top digest.
pub async fn copy(
    source: &dyn Source,
    src_ref: &str,
    dest: &dyn Destination,
    dst_ref: &str,
) -> Result<Digest, TransferError> {
    let top = source
        .get_manifest(src_ref)
        .await?
        .ok_or_else(|| TransferError::BadManifest {
            source_name: source.name(),
            reference: src_ref.into(),
            detail: "not found at the source".into(),
        })?;
    let mut blobs: BTreeMap<Digest, Descriptor> = BTreeMap::new();
    let mut children: Vec<Manifest> = Vec::new();
    match parse(&top, &source.name(), src_ref)? {
        Parsed::Image(ds) => blobs.extend(ds.into_iter().map(|d| (d.digest.clone(), d))),
        Parsed::Index(ds) => {
            for d in ds {
                let child = source
                    .get_manifest(&d.digest.to_string())
                    .await?
                    .expect("child manifest");
                assert_eq!(child.bytes.len() as u64, d.size);
                match parse(&child, &source.name(), &d.digest.to_string())? {
                    Parsed::Image(bs) => {
                        blobs.extend(bs.into_iter().map(|d| (d.digest.clone(), d)))
                    }
                    Parsed::Index(_) => panic!("nested index"),
                }
                children.push(child);
            }
        }
    }
    for (digest, d) in blobs {
        if dest.has_blob(&digest).await? {
            continue;
        }
        let stream = source.open_blob(&digest).await?;
        let verified = VerifyingStream::new(stream, digest.clone(), Some(d.size))
            .expect("sha256")
            .boxed();
        dest.put_blob(&digest, d.size, verified).await?;
    }
    for c in &children {
        if dest.manifest_digest(&c.digest.to_string()).await?.is_none() {
            dest.put_manifest(&c.digest.to_string(), c).await?;
        }
    }
    dest.put_manifest(dst_ref, &top).await?;
    Ok(top.digest)
}

/// Every file under `dir`, relative, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// Checks that `layout` (a Berth OCI layout) has `ref_name` at the fixture's digest and
/// every manifest and blob of the fixture ref with the original bytes.
pub fn assert_layout_has(layout: &Path, fixture: &Fixture, name: &str, tag: &str, ref_name: &str) {
    let r = fixture.get(name, tag);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == ref_name)
        .unwrap_or_else(|| panic!("{ref_name} not in {index}"));
    assert_eq!(entry["digest"], r.digest.as_str());
    assert_eq!(entry["mediaType"], r.media_type());
    assert_eq!(entry["size"], r.size);
    for d in r.manifest_digests().iter().chain(r.blobs().iter()) {
        let hex = d.strip_prefix("sha256:").unwrap();
        let got = std::fs::read(layout.join("blobs/sha256").join(hex))
            .unwrap_or_else(|e| panic!("{d} missing: {e}"));
        assert_eq!(berth_testkit::sha256_digest(&got), *d, "content of {d}");
        assert_eq!(got, fixture.layout.read_blob(d), "bytes of {d}");
    }
}

/// `skopeo ARGS…` with a cleared environment and a private policy/registries config.
pub fn skopeo(args: &[&str]) -> Vec<u8> {
    let skopeo = berth_testkit::require_tool("skopeo", "skopeo");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("policy.json"),
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    std::fs::write(d.join("registries.conf"), "").unwrap();
    std::fs::write(d.join("containers.conf"), "").unwrap();
    std::fs::create_dir(d.join("registries.d")).unwrap();
    std::fs::create_dir(d.join("tmp")).unwrap();
    let out = Command::new(skopeo)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", d)
        .env("TMPDIR", d.join("tmp"))
        .env("CONTAINERS_REGISTRIES_CONF", d.join("registries.conf"))
        .env("CONTAINERS_CONF", d.join("containers.conf"))
        .arg("--policy")
        .arg(d.join("policy.json"))
        .arg("--registries.d")
        .arg(d.join("registries.d"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
