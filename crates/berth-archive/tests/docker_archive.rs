//! docker-archive: synthesized manifests, `docker save`-style links, skopeo both ways.

mod common;

use std::collections::BTreeMap;
use std::io::Read;

use berth_archive::{DockerArchive, OciArchive};
use berth_oci::media::DOCKER_MANIFEST;
use berth_testkit::images::build_set;
use berth_transfer::{Destination, OciLayout, Source};
use common::{copy, skopeo};
use serde_json::Value;

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// The entries of a tar file: name → bytes (links as `-> target`).
fn tar_entries(path: &std::path::Path) -> BTreeMap<String, Vec<u8>> {
    let mut ar = tar::Archive::new(std::fs::File::open(path).unwrap());
    let mut out = BTreeMap::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut b = Vec::new();
        if let Some(l) = e.link_name().unwrap() {
            b = format!("-> {}", l.display()).into_bytes();
        } else {
            e.read_to_end(&mut b).unwrap();
        }
        out.insert(name, b);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn berth_writes_docker_archives_skopeo_and_berth_read_them() {
    let tmp = tempfile::tempdir().unwrap();
    let f = build_set(&tmp.path().join("fixture"));
    let src = OciLayout::open(&f.layout.dir).unwrap();
    let file = tmp.path().join("app.tar");
    for (name, tag, as_tag) in [
        ("app", "1", "example.com/team/app:1"),
        ("base", "2", "base:2"),
    ] {
        let r = f.get(name, tag);
        let dst = DockerArchive::create(&file, Some(as_tag)).unwrap();
        copy(&src, &r.ref_name, &dst, "").await.unwrap();
    }
    let entries = tar_entries(&file);
    let manifest: Value = serde_json::from_slice(&entries["manifest.json"]).unwrap();
    assert_eq!(manifest.as_array().unwrap().len(), 2, "{manifest}");
    let app = f.get("app", "1");
    let m = &app.manifests[0];
    let e = &manifest[0];
    assert_eq!(e["RepoTags"], serde_json::json!(["example.com/team/app:1"]));
    let hex = |d: &str| d.strip_prefix("sha256:").unwrap().to_string();
    assert_eq!(e["Config"], format!("{}.json", hex(&m.config.digest)));
    let layers: Vec<String> = m
        .layers
        .iter()
        .map(|l| format!("{}.tar.gz", hex(&l.digest)))
        .collect();
    assert_eq!(e["Layers"], serde_json::json!(layers));
    // Layers kept as the source has them (gzip), config byte for byte.
    for (l, file_name) in m.layers.iter().zip(&layers) {
        assert_eq!(entries[file_name], f.layout.read_blob(&l.digest));
    }
    assert_eq!(
        entries[&format!("{}.json", hex(&m.config.digest))],
        f.layout.read_blob(&m.config.digest)
    );

    // Berth reads it back: the synthesized manifest points at the stored files.
    let back = DockerArchive::open(&file, Some("example.com/team/app:1")).unwrap();
    let man = back.get_manifest("").await.unwrap().unwrap();
    assert_eq!(man.media_type, DOCKER_MANIFEST);
    let v: Value = serde_json::from_slice(&man.bytes).unwrap();
    assert_eq!(v["config"]["digest"], m.config.digest.as_str());
    let got: Vec<(&str, &str)> = v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["digest"].as_str().unwrap(),
                l["mediaType"].as_str().unwrap(),
            )
        })
        .collect();
    let want: Vec<(&str, &str)> = m
        .layers
        .iter()
        .map(|l| {
            (
                l.digest.as_str(),
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
            )
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        back.get_manifest(&man.digest.to_string())
            .await
            .unwrap()
            .unwrap()
            .bytes,
        man.bytes
    );
    let layout = tmp.path().join("back");
    let dst = OciLayout::create(&layout).unwrap();
    copy(&back, "", &dst, "app").await.unwrap();
    for d in std::iter::once(&m.config).chain(&m.layers) {
        let hex = d.digest.strip_prefix("sha256:").unwrap();
        assert_eq!(
            std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap(),
            f.layout.read_blob(&d.digest)
        );
    }
    // `@1` and a familiar name select the second image.
    let two = DockerArchive::open(&file, Some("@1")).unwrap();
    let by_name = DockerArchive::open(&file, Some("docker.io/library/base:2")).unwrap();
    assert_eq!(
        two.get_manifest("").await.unwrap(),
        by_name.get_manifest("").await.unwrap()
    );
    let all = DockerArchive::open(&file, None).unwrap();
    let e = all.get_manifest("").await.unwrap_err().to_string();
    assert!(e.contains("holds 2 images") && e.contains("base:2"), "{e}");

    // skopeo reads it (and checks every layer against the config's diff_ids on copy).
    let raw = skopeo(&[
        "inspect",
        "--config",
        "--raw",
        &format!("docker-archive:{}:example.com/team/app:1", file.display()),
    ]);
    assert_eq!(berth_testkit::sha256_digest(&raw), m.config.digest);
    let out = tmp.path().join("skopeo-out");
    skopeo(&[
        "copy",
        &format!("docker-archive:{}:base:2", file.display()),
        &format!("oci:{}:x", out.display()),
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn berth_reads_docker_archives_skopeo_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let f = build_set(&tmp.path().join("fixture"));
    let app = f.get("app", "1");
    let file = tmp.path().join("skopeo-docker.tar");
    let src = f.skopeo_source(app, &tmp.path().join("dir-export"));
    skopeo(&[
        "copy",
        &src,
        &format!("docker-archive:{}:registry.test/app:1", file.display()),
    ]);

    let a = DockerArchive::open(&file, Some("registry.test/app:1")).unwrap();
    assert_eq!(
        a.repo_tags().await.unwrap(),
        vec![vec!["registry.test/app:1".to_string()]]
    );
    let man = a.get_manifest("").await.unwrap().unwrap();
    let v: Value = serde_json::from_slice(&man.bytes).unwrap();
    let m = &app.manifests[0];
    // skopeo stores the config as is and the layers uncompressed: their digests are the
    // config's diff_ids.
    assert_eq!(v["config"]["digest"], m.config.digest.as_str());
    let layers: Vec<&str> = v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    assert_eq!(
        layers,
        m.diff_ids.iter().map(String::as_str).collect::<Vec<_>>()
    );
    for l in v["layers"].as_array().unwrap() {
        assert_eq!(
            l["mediaType"],
            "application/vnd.docker.image.rootfs.diff.tar"
        );
    }
    // Every blob streams out and verifies; the uncompressed layers equal the fixture's.
    let layout = tmp.path().join("back");
    let dst = OciLayout::create(&layout).unwrap();
    copy(&a, "", &dst, "app").await.unwrap();
    for (gz, diff) in m.layers.iter().zip(&m.diff_ids) {
        let plain = std::fs::read(
            layout
                .join("blobs/sha256")
                .join(diff.strip_prefix("sha256:").unwrap()),
        )
        .unwrap();
        assert_eq!(plain, gunzip(&f.layout.read_blob(&gz.digest)));
    }
    // And on into an oci-archive, byte for byte (skopeo's oci transports skip index
    // entries with Docker media types, so Berth reads it back).
    let oci = tmp.path().join("converted.tar");
    let dst = OciArchive::create(&oci, Some("app")).unwrap();
    copy(&a, "", &dst, "").await.unwrap();
    let again = OciArchive::open(&oci, None)
        .unwrap()
        .get_manifest("app")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again, man);
}

/// `docker save` (classic format) shares a layer between images with a symbolic link
/// `<id2>/layer.tar -> ../<id1>/layer.tar`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_save_links_are_followed_inside_the_archive() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("saved.tar");
    let layer = b"not really a tar, but bytes are bytes".repeat(1000);
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let manifest = br#"[{"Config":"cfg.json","RepoTags":["one:1"],"Layers":["aaa/layer.tar"]},
                        {"Config":"cfg.json","RepoTags":["two:1"],"Layers":["bbb/layer.tar"]}]"#;
    let mut b = tar::Builder::new(std::fs::File::create(&file).unwrap());
    let mut add = |path: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, path, data).unwrap();
    };
    add("manifest.json", manifest);
    add("cfg.json", config);
    add("aaa/layer.tar", &layer);
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "bbb/layer.tar", "../aaa/layer.tar")
        .unwrap();
    b.finish().unwrap();
    drop(b);

    let two = DockerArchive::open(&file, Some("two:1")).unwrap();
    let one = DockerArchive::open(&file, Some("one:1")).unwrap();
    let m2 = two.get_manifest("").await.unwrap().unwrap();
    assert_eq!(m2.bytes, one.get_manifest("").await.unwrap().unwrap().bytes);
    let layout = tmp.path().join("l");
    let dst = OciLayout::create(&layout).unwrap();
    copy(&two, "", &dst, "two").await.unwrap();
    let d = berth_testkit::sha256_digest(&layer);
    assert_eq!(
        std::fs::read(layout.join("blobs/sha256").join(&d[7..])).unwrap(),
        layer
    );

    // Writing into this archive keeps `one:1` readable (the link becomes a plain file).
    let w = DockerArchive::create(&file, Some("three:1")).unwrap();
    copy(&two, "", &w, "").await.unwrap();
    for r in ["one:1", "two:1", "three:1"] {
        let a = DockerArchive::open(&file, Some(r)).unwrap();
        let m = a.get_manifest("").await.unwrap().unwrap();
        let layout = tmp.path().join(format!("l-{r}"));
        copy(&a, "", &OciLayout::create(&layout).unwrap(), "x")
            .await
            .unwrap();
        assert_eq!(m.bytes, m2.bytes, "{r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_is_refused_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let f = build_set(&tmp.path().join("fixture"));
    let src = OciLayout::open(&f.layout.dir).unwrap();
    let file = tmp.path().join("multi.tar");
    let dst = DockerArchive::create(&file, Some("multi:1")).unwrap();
    let e = copy(&src, &f.get("multi", "1").ref_name, &dst, "")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("multi-platform index (2 manifests)")
            && e.contains("single-platform")
            && e.contains("oci-archive"),
        "{e}"
    );
    assert!(!file.exists());
    assert!(
        DockerArchive::create(
            &file,
            Some("x@sha256:0000000000000000000000000000000000000000000000000000000000000000")
        )
        .is_err()
    );
    // One platform of it, by digest, is fine.
    let child = &f.get("multi", "1").manifests[1].manifest.digest;
    copy(&src, child, &dst, "").await.unwrap();
    assert!(dst.manifest_digest("multi:1").await.unwrap().is_none());
    let a = DockerArchive::open(&file, None).unwrap();
    assert_eq!(
        a.repo_tags().await.unwrap(),
        vec![vec!["multi:1".to_string()]]
    );
}
