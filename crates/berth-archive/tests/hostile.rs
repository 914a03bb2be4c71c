//! Crafted and damaged archives: refused with a message naming the archive and the entry;
//! nothing is written outside the destination, nothing unverified inside it.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use berth_archive::{DockerArchive, OciArchive};
use berth_testkit::images::build_set;
use berth_transfer::{Destination, OciLayout, Source};
use common::{copy, files_under};

/// A tar entry written with raw header bytes (so names the `tar` builder refuses, like
/// `../x` or `/abs`, can be made).
fn raw_entry(out: &mut Vec<u8>, name: &str, kind: tar::EntryType, link: &str, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    {
        let u = h.as_ustar_mut().unwrap();
        u.name[..name.len()].copy_from_slice(name.as_bytes());
        u.linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

fn finish(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0u8; 1024]);
}

/// An oci-archive with one image (real blob entries) plus one extra entry.
fn oci_with(extra: &dyn Fn(&mut Vec<u8>)) -> Vec<u8> {
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let cd = berth_testkit::sha256_digest(config);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{}}},"layers":[]}}"#,
        config.len()
    );
    let md = berth_testkit::sha256_digest(manifest.as_bytes());
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{md}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"x"}}}}]}}"#,
        manifest.len()
    );
    let mut out = Vec::new();
    raw_entry(
        &mut out,
        "oci-layout",
        tar::EntryType::Regular,
        "",
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    );
    raw_entry(
        &mut out,
        "index.json",
        tar::EntryType::Regular,
        "",
        index.as_bytes(),
    );
    raw_entry(
        &mut out,
        &format!("blobs/sha256/{}", &md[7..]),
        tar::EntryType::Regular,
        "",
        manifest.as_bytes(),
    );
    extra(&mut out);
    raw_entry(
        &mut out,
        &format!("blobs/sha256/{}", &cd[7..]),
        tar::EntryType::Regular,
        "",
        config,
    );
    finish(&mut out);
    out
}

struct Case {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    archive: PathBuf,
}

fn case(bytes: &[u8]) -> Case {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("work");
    std::fs::create_dir_all(root.join("in")).unwrap();
    let archive = root.join("in/archive.tar");
    std::fs::write(&archive, bytes).unwrap();
    Case {
        root,
        archive,
        _tmp: tmp,
    }
}

/// Reads `x` from the archive into a layout; returns the error text. Checks that the only
/// files are the archive and the (empty of blobs) layout.
async fn refused(c: &Case) -> String {
    let src = OciArchive::open(&c.archive, Some("x")).unwrap();
    let layout = c.root.join("out");
    let dst = OciLayout::create(&layout).unwrap();
    let e = copy(&src, "", &dst, "x").await.unwrap_err().to_string();
    let files = files_under(&c.root);
    let expected: Vec<PathBuf> = ["in/archive.tar", "out/index.json", "out/oci-layout"]
        .iter()
        .map(PathBuf::from)
        .collect();
    assert_eq!(files, expected, "{e}");
    e
}

fn assert_names(e: &str, archive: &Path, entry: &str, reason: &str) {
    assert!(
        e.contains(&format!("oci-archive:{}", archive.display())),
        "{e}"
    );
    assert!(e.contains(&format!("entry `{entry}`")), "{e}");
    assert!(e.contains(reason), "{e}");
}

#[tokio::test]
async fn the_crafted_archive_is_fine_without_the_extra_entry() {
    let c = case(&oci_with(&|_| {}));
    let src = OciArchive::open(&c.archive, Some("x")).unwrap();
    let dst = OciLayout::create(c.root.join("out")).unwrap();
    copy(&src, "", &dst, "x").await.unwrap();
}

#[tokio::test]
async fn dot_dot_entries_are_refused() {
    let c = case(&oci_with(&|o| {
        raw_entry(o, "../escaped", tar::EntryType::Regular, "", b"evil")
    }));
    let e = refused(&c).await;
    assert_names(&e, &c.archive, "../escaped", "`..` path component");
    assert!(!c.root.join("escaped").exists() && !c.root.join("in/../escaped").exists());
    let c = case(&oci_with(&|o| {
        raw_entry(o, "blobs/../../x", tar::EntryType::Regular, "", b"evil")
    }));
    assert_names(&refused(&c).await, &c.archive, "blobs/../../x", "`..`");
}

#[tokio::test]
async fn absolute_entries_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("abs-target");
    let name = target.to_string_lossy().into_owned();
    let c = case(&oci_with(&|o| {
        raw_entry(o, &name, tar::EntryType::Regular, "", b"evil")
    }));
    assert_names(&refused(&c).await, &c.archive, &name, "absolute path");
    assert!(!target.exists());
}

#[tokio::test]
async fn links_leaving_the_archive_are_refused() {
    let c = case(&oci_with(&|o| {
        raw_entry(
            o,
            "blobs/sha256/evil",
            tar::EntryType::Symlink,
            "/etc/passwd",
            b"",
        )
    }));
    assert_names(
        &refused(&c).await,
        &c.archive,
        "blobs/sha256/evil",
        "symbolic link to the absolute path `/etc/passwd`",
    );
    let c = case(&oci_with(&|o| {
        raw_entry(
            o,
            "blobs/evil",
            tar::EntryType::Symlink,
            "../../etc/passwd",
            b"",
        )
    }));
    assert_names(
        &refused(&c).await,
        &c.archive,
        "blobs/evil",
        "symbolic link leaving the archive",
    );
    let c = case(&oci_with(&|o| {
        raw_entry(o, "evil", tar::EntryType::Link, "../outside", b"")
    }));
    assert_names(&refused(&c).await, &c.archive, "evil", "hard link");
    let c = case(&oci_with(&|o| {
        raw_entry(o, "dev", tar::EntryType::Char, "", b"")
    }));
    assert_names(&refused(&c).await, &c.archive, "dev", "device");
    let c = case(&oci_with(&|o| {
        raw_entry(o, "index.json", tar::EntryType::Regular, "", b"{}")
    }));
    assert_names(
        &refused(&c).await,
        &c.archive,
        "index.json",
        "appears twice",
    );
}

#[tokio::test]
async fn truncated_archives_are_refused() {
    let good = oci_with(&|o| raw_entry(o, "padding", tar::EntryType::Regular, "", &[7u8; 5000]));
    for cut in [good.len() - 1024, good.len() - 1500, 1200, 700] {
        let c = case(&good[..cut]);
        let e = refused(&c).await;
        assert!(
            e.contains(&format!("oci-archive:{}", c.archive.display())) && e.contains("truncated"),
            "cut {cut}: {e}"
        );
    }
    // Compressed and truncated.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&good).unwrap();
    let gz = gz.finish().unwrap();
    let c = case(&gz[..gz.len() / 2]);
    let e = refused(&c).await;
    assert!(e.contains("gzip stream is corrupt or truncated"), "{e}");
    let z = zstd::encode_all(&good[..], 3).unwrap();
    let c = case(&z[..z.len() - 10]);
    let e = refused(&c).await;
    assert!(e.contains("zstd stream is corrupt or truncated"), "{e}");
    let c = case(b"");
    assert!(refused(&c).await.contains("empty"));
    let c = case(&[0xfd, b'7', b'z', b'X', b'Z', 0, 1, 2]);
    assert!(refused(&c).await.contains("compressed with xz"));
}

/// A layer whose bytes were changed in the archive never becomes visible at the destination.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_blobs_fail_verification_and_are_not_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let f = build_set(&tmp.path().join("fixture"));
    let r = f.get("base", "1");
    let file = tmp.path().join("a.tar");
    let src = OciLayout::open(&f.layout.dir).unwrap();
    copy(
        &src,
        &r.ref_name,
        &OciArchive::create(&file, None).unwrap(),
        "b",
    )
    .await
    .unwrap();
    let layer = &r.manifests[0].layers[0].digest;
    let original = f.layout.read_blob(layer);
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes
        .windows(original.len())
        .position(|w| w == original.as_slice())
        .unwrap();
    bytes[at + original.len() / 2] ^= 0x55;
    std::fs::write(&file, &bytes).unwrap();
    let out = tmp.path().join("out");
    let dst = OciLayout::create(&out).unwrap();
    let e = copy(&OciArchive::open(&file, None).unwrap(), "b", &dst, "b")
        .await
        .unwrap_err();
    assert!(e.verify_error().is_some(), "{e}");
    assert!(
        !dst.has_blob(&berth_reference::Digest::parse(layer).unwrap())
            .await
            .unwrap()
    );
    assert!(!out.join("blobs/sha256").join(&layer[7..]).exists());

    // The same into an archive: nothing is written at all.
    let out = tmp.path().join("out.tar");
    let e = copy(
        &OciArchive::open(&file, None).unwrap(),
        "b",
        &OciArchive::create(&out, None).unwrap(),
        "b",
    )
    .await
    .unwrap_err();
    assert!(e.verify_error().is_some(), "{e}");
    assert!(!out.exists());
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 3, "{left:?}");
}

#[tokio::test]
async fn wrong_kind_of_archive_and_wrong_targets_are_explained() {
    let c = case(&oci_with(&|_| {}));
    let e = DockerArchive::open(&c.archive, None)
        .unwrap()
        .get_manifest("")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no manifest.json") && e.contains("oci-archive:FILE"),
        "{e}"
    );
    // A file that is not an archive is never overwritten.
    let other = c.root.join("notes.txt");
    std::fs::write(&other, "precious").unwrap();
    let w = OciArchive::create(&other, Some("x")).unwrap();
    let src = OciArchive::open(&c.archive, Some("x")).unwrap();
    let e = copy(&src, "", &w, "x").await.unwrap_err().to_string();
    assert!(
        e.contains("cannot be updated as an oci-archive") && e.contains("remove it"),
        "{e}"
    );
    assert_eq!(std::fs::read_to_string(&other).unwrap(), "precious");
    assert!(
        OciArchive::open(c.root.join("missing.tar"), None)
            .unwrap_err()
            .to_string()
            .contains("no such file")
    );
    let src = OciArchive::open(&c.archive, None).unwrap();
    assert!(src.get_manifest("x").await.unwrap().is_some());
}
