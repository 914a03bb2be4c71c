//! oci-archive: through the ends, against testkit's real images and skopeo.

mod common;

use std::io::Write;
use std::path::Path;

use berth_archive::OciArchive;
use berth_testkit::images::{Fixture, build_set};
use berth_transfer::{OciLayout, Source};
use common::{assert_layout_has, copy, skopeo};

const REFS: [(&str, &str); 5] = [
    ("base", "1"),
    ("base", "2"),
    ("app", "1"),
    ("multi", "1"),
    ("multi", "1-docker"),
];

/// Writes every fixture ref into one oci-archive at `file`.
async fn archive_all(f: &Fixture, file: &Path) {
    let src = OciLayout::open(&f.layout.dir).unwrap();
    for (name, tag) in REFS {
        let r = f.get(name, tag);
        let dst = OciArchive::create(file, Some(&r.ref_name)).unwrap();
        let d = copy(&src, &r.ref_name, &dst, &r.ref_name).await.unwrap();
        assert_eq!(d.to_string(), r.digest);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layout_to_archive_to_layout_keeps_every_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let f = build_set(&tmp.path().join("fixture"));
    let file = tmp.path().join("out/images.tar");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    archive_all(&f, &file).await;
    // Only the archive is left beside it: staging directories and temp files are gone.
    let left: Vec<_> = std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("images.tar")]);

    let back = tmp.path().join("back");
    let dst = OciLayout::create(&back).unwrap();
    for (name, tag) in REFS {
        let r = f.get(name, tag);
        let src = OciArchive::open(&file, Some(&r.ref_name)).unwrap();
        let d = copy(&src, &src.reference(), &dst, &r.ref_name)
            .await
            .unwrap();
        assert_eq!(d.to_string(), r.digest, "{name}:{tag}");
        assert_layout_has(&back, &f, name, tag, &r.ref_name);
    }
    let src = OciArchive::open(&file, None).unwrap();
    assert_eq!(src.ref_names().await.unwrap().len(), REFS.len());
    let e = src.get_manifest("").await.unwrap_err().to_string();
    assert!(
        e.contains("holds 5 images") && e.contains("base_1") && e.contains("oci-archive:FILE:REF"),
        "{e}"
    );
    assert!(src.get_manifest("nope").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn written_archives_are_deterministic_and_reruns_see_the_image() {
    let tmp = tempfile::tempdir().unwrap();
    let f = build_set(&tmp.path().join("fixture"));
    let src = OciLayout::open(&f.layout.dir).unwrap();
    let r = f.get("multi", "1");
    let (a, b) = (tmp.path().join("a.tar"), tmp.path().join("b.tar"));
    for file in [&a, &b] {
        let dst = OciArchive::create(file, None).unwrap();
        copy(&src, &r.ref_name, &dst, "multi:1").await.unwrap();
    }
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    // Entries: sorted, mtime 0, uid/gid 0.
    let mut ar = tar::Archive::new(std::fs::File::open(&a).unwrap());
    let mut names = Vec::new();
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        assert_eq!(
            (
                e.header().mtime().unwrap(),
                e.header().uid().unwrap(),
                e.header().gid().unwrap()
            ),
            (0, 0, 0)
        );
        names.push(e.path().unwrap().to_string_lossy().into_owned());
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert!(names.contains(&"oci-layout".to_string()) && names.contains(&"index.json".to_string()));

    // A new writer on the same file sees what is there; the other ref is kept on update.
    let dst = OciArchive::create(&a, None).unwrap();
    use berth_transfer::Destination;
    assert_eq!(
        dst.manifest_digest("multi:1")
            .await
            .unwrap()
            .unwrap()
            .to_string(),
        r.digest
    );
    let base = f.get("base", "1");
    copy(&src, &base.ref_name, &dst, "base:1").await.unwrap();
    let reread = OciArchive::open(&a, None).unwrap();
    assert_eq!(reread.ref_names().await.unwrap(), vec!["multi:1", "base:1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_reads_what_berth_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let f = build_set(&tmp.path().join("fixture"));
    let file = tmp.path().join("images.tar");
    archive_all(&f, &file).await;
    for (name, tag) in [("base", "2"), ("multi", "1")] {
        let r = f.get(name, tag);
        let raw = skopeo(&[
            "inspect",
            "--raw",
            &format!("oci-archive:{}:{}", file.display(), r.ref_name),
        ]);
        assert_eq!(berth_testkit::sha256_digest(&raw), r.digest, "{name}:{tag}");
    }
    // skopeo unpacks and verifies every blob when it copies out of the archive.
    let out = tmp.path().join("skopeo-layout");
    let r = f.get("multi", "1");
    skopeo(&[
        "copy",
        "--all",
        "--preserve-digests",
        &format!("oci-archive:{}:{}", file.display(), r.ref_name),
        &format!("oci:{}:{}", out.display(), r.ref_name),
    ]);
    assert_layout_has(&out, &f, "multi", "1", &r.ref_name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn berth_reads_what_skopeo_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let f = build_set(&tmp.path().join("fixture"));
    let file = tmp.path().join("skopeo.tar");
    let r = f.get("multi", "1");
    skopeo(&[
        "copy",
        "--all",
        "--preserve-digests",
        &f.oci_reference(r),
        &format!("oci-archive:{}:{}", file.display(), r.ref_name),
    ]);
    let back = tmp.path().join("back");
    let dst = OciLayout::create(&back).unwrap();
    let src = OciArchive::open(&file, Some(&r.ref_name)).unwrap();
    copy(&src, "", &dst, &r.ref_name).await.unwrap();
    assert_layout_has(&back, &f, "multi", "1", &r.ref_name);

    // Without a ref name skopeo writes an unnamed entry; the only entry is the default.
    let file2 = tmp.path().join("unnamed.tar");
    let b = f.get("base", "1");
    skopeo(&[
        "copy",
        "--preserve-digests",
        &f.oci_reference(b),
        &format!("oci-archive:{}", file2.display()),
    ]);
    let src = OciArchive::open(&file2, None).unwrap();
    assert_eq!(
        src.get_manifest("")
            .await
            .unwrap()
            .unwrap()
            .digest
            .to_string(),
        b.digest
    );
}

/// The same archive compressed whole, under a name that says nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_and_zstd_archives_are_read() {
    let tmp = tempfile::tempdir().unwrap();
    let f = build_set(&tmp.path().join("fixture"));
    let file = tmp.path().join("images.tar");
    archive_all(&f, &file).await;
    let plain = std::fs::read(&file).unwrap();
    let gz = tmp.path().join("images.bin1");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    enc.write_all(&plain).unwrap();
    enc.finish().unwrap();
    let zst = tmp.path().join("images.bin2");
    std::fs::write(&zst, zstd::encode_all(&plain[..], 3).unwrap()).unwrap();
    for (i, file) in [gz, zst].iter().enumerate() {
        let back = tmp.path().join(format!("back{i}"));
        let dst = OciLayout::create(&back).unwrap();
        for (name, tag) in [("base", "2"), ("multi", "1")] {
            let r = f.get(name, tag);
            let src = OciArchive::open(file, Some(&r.ref_name)).unwrap();
            copy(&src, "", &dst, &r.ref_name).await.unwrap();
            assert_layout_has(&back, &f, name, tag, &r.ref_name);
        }
    }
}
