//! The testkit's images: deterministic, valid, pushed byte for byte by skopeo.

use std::time::Instant;

use berth_testkit::Distribution;
use berth_testkit::images::{self, Fixture, Kind};
use berth_testkit::skopeo::{self, SkopeoOpts};
use serde_json::Value;

fn digests(f: &Fixture) -> Vec<(String, String, Vec<String>)> {
    f.refs
        .iter()
        .map(|r| (r.ref_name.clone(), r.digest.clone(), r.blobs()))
        .collect()
}

#[test]
fn build_set_is_deterministic_and_well_formed() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let fa = images::build_set(a.path());
    eprintln!(
        "build_set took {:?} ({} bytes of blobs)",
        t.elapsed(),
        fa.total_blob_bytes()
    );
    let fb = images::build_set(b.path());
    assert_eq!(digests(&fa), digests(&fb));
    assert_eq!(
        std::fs::read(a.path().join("index.json")).unwrap(),
        std::fs::read(b.path().join("index.json")).unwrap()
    );

    let kinds: Vec<(&str, &str, Kind)> = fa
        .refs
        .iter()
        .map(|r| (r.name.as_str(), r.tag.as_str(), r.kind))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("base", "1", Kind::OciManifest),
            ("base", "2", Kind::OciManifest),
            ("app", "1", Kind::DockerSchema2),
            ("multi", "1", Kind::OciIndex),
            ("multi", "1-docker", Kind::DockerList),
        ]
    );
    // Shared layers.
    let b1 = fa.get("base", "1");
    let b2 = fa.get("base", "2");
    let app = fa.get("app", "1");
    assert_eq!(b1.manifests[0].layers.len(), 1);
    assert_eq!(b2.manifests[0].layers.len(), 2);
    assert_eq!(
        b2.manifests[0].layers[0].digest,
        b1.manifests[0].layers[0].digest
    );
    assert_eq!(app.manifests[0].layers.len(), 3);
    assert_eq!(
        app.manifests[0].layers[1].digest,
        b2.manifests[0].layers[1].digest
    );
    let multi = fa.get("multi", "1");
    assert_eq!(multi.manifests.len(), 2);
    assert_eq!(multi.manifests[0].platform, "linux/amd64");
    assert_eq!(multi.manifests[1].platform, "linux/arm64/v8");
    assert_eq!(
        multi.manifests[0].layers[1].digest,
        multi.manifests[1].layers[1].digest
    );

    // Every blob exists with the right digest and size; JSON media types are right.
    for r in &fa.refs {
        let top = fa.layout.read_blob(&r.digest);
        assert_eq!(berth_testkit::sha256_digest(&top), r.digest);
        assert_eq!(top.len() as u64, r.size);
        let v: Value = serde_json::from_slice(&top).unwrap();
        assert_eq!(v["mediaType"], r.kind.media_type());
        for m in &r.manifests {
            let mb = fa.layout.read_blob(&m.manifest.digest);
            let mv: Value = serde_json::from_slice(&mb).unwrap();
            assert_eq!(mv["config"]["digest"], m.config.digest.as_str());
            for d in std::iter::once(&m.config).chain(m.layers.iter()) {
                let p = fa.layout.blob_path(&d.digest);
                assert_eq!(std::fs::metadata(&p).unwrap().len(), d.size, "{}", d.digest);
            }
            let cfg: Value =
                serde_json::from_slice(&fa.layout.read_blob(&m.config.digest)).unwrap();
            let diff_ids: Vec<&str> = cfg["rootfs"]["diff_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap())
                .collect();
            assert_eq!(diff_ids, m.diff_ids);
            let docker = r.kind == Kind::DockerSchema2 || r.kind == Kind::DockerList;
            let want = if docker {
                images::MT_DOCKER_LAYER_GZIP
            } else {
                images::MT_OCI_LAYER_GZIP
            };
            assert!(m.layers.iter().all(|l| l.media_type == want));
        }
    }
    // The layer really is a gzip'd tar of real files with a whiteout.
    let app_layer = &app.manifests[0].layers[2];
    let gz = std::fs::File::open(fa.layout.blob_path(&app_layer.digest)).unwrap();
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(gz));
    let names: Vec<String> = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().any(|n| n.ends_with(".wh.GPL-1")), "{names:?}");
    assert!(names.len() > 10);
}

#[test]
fn push_to_plain_registry_keeps_digests() {
    let dir = tempfile::tempdir().unwrap();
    let f = images::build_set(dir.path());
    let reg = Distribution::plain();
    let t = Instant::now();
    images::push_with_skopeo(&f, &reg, "library");
    eprintln!("push_with_skopeo of the set took {:?}", t.elapsed());
    let opts = SkopeoOpts::insecure();
    for r in &f.refs {
        let dst = images::docker_reference(&reg, "library", r);
        let raw = skopeo::inspect_raw(&dst, &opts);
        assert_eq!(raw, f.layout.read_blob(&r.digest), "{dst}");
        assert_eq!(skopeo::digest_of(&dst, &opts), r.digest);
        if r.kind.is_index() {
            for m in &r.manifests {
                let child = format!(
                    "docker://{}@{}",
                    images::repository(&reg, "library", r),
                    m.manifest.digest
                );
                assert_eq!(skopeo::digest_of(&child, &opts), m.manifest.digest);
            }
        }
    }
    assert_eq!(
        skopeo::list_tags(&format!("docker://{}/library/multi", reg.host()), &opts),
        vec!["1".to_string(), "1-docker".to_string()]
    );
}

#[test]
fn push_to_tls_registry_with_auth() {
    let dir = tempfile::tempdir().unwrap();
    let f = images::build_set(dir.path());
    let reg = Distribution::tls_htpasswd("berth", "pw");
    images::push_with_skopeo(&f, &reg, "edge/docker.io/library");
    let r = f.get("app", "1");
    let dst = images::docker_reference(&reg, "edge/docker.io/library", r);
    let opts = SkopeoOpts::for_registry(&reg);
    assert_eq!(skopeo::digest_of(&dst, &opts), r.digest);
    let cfg = skopeo::inspect_config_raw(&dst, &opts);
    assert_eq!(cfg, f.layout.read_blob(&r.manifests[0].config.digest));
}

#[test]
fn build_big_is_streamed_and_deterministic() {
    let a = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let f = images::build_big(a.path(), 8);
    eprintln!("build_big(8 MiB) took {:?}", t.elapsed());
    let r = f.get("big", "1");
    let big = &r.manifests[0].layers[1];
    // Incompressible: the gzip is at least as large as the data.
    assert!(big.size >= 8 << 20, "{}", big.size);
    let b = tempfile::tempdir().unwrap();
    let g = images::build_big(b.path(), 8);
    assert_eq!(g.get("big", "1").digest, r.digest);
}

/// `cargo test -p berth-testkit --test images -- --ignored --nocapture` (about 210 MiB).
#[test]
#[ignore = "slow: builds a 210 MiB layer"]
fn build_big_210_mib() {
    let a = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let f = images::build_big(a.path(), 210);
    eprintln!("build_big(210 MiB) took {:?}", t.elapsed());
    assert!(f.get("big", "1").manifests[0].layers[1].size >= 210 << 20);
}
