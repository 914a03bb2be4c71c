//! The store on a real filesystem: atomic verified writes, dedupe, gc, fsck.

use std::fs;
use std::path::Path;
use std::time::Duration;

use berth_reference::Digest;
use berth_store::{FsckFinding, GcOptions, ManifestPush, Store, StoreError, sha256};

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = vec![];
    for e in fs::read_dir(dir).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            out.extend(files_under(&e.path()));
        } else {
            out.push(e.path().display().to_string());
        }
    }
    out
}

async fn put(store: &Store, repo: &str, bytes: &[u8]) -> Digest {
    let d = sha256(bytes);
    let mut w = store.writer().await.unwrap();
    for c in bytes.chunks(7) {
        w.write(c).await.unwrap();
    }
    w.commit(&d, Some(repo)).await.unwrap();
    d
}

fn push_manifest(
    store: &Store,
    repo: &str,
    tag: Option<&str>,
    config: &Digest,
    layers: &[Digest],
) -> Digest {
    let layers_json: Vec<String> = layers
        .iter()
        .map(|l| format!(r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{l}","size":1}}"#))
        .collect();
    let m = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":1}},"layers":[{}]}}"#,
        layers_json.join(",")
    );
    let d = sha256(m.as_bytes());
    let mut blobs = vec![config.clone()];
    blobs.extend(layers.iter().cloned());
    store
        .put_manifest(
            repo,
            &ManifestPush {
                digest: &d,
                bytes: m.as_bytes(),
                media_type: "application/vnd.oci.image.manifest.v1+json",
                tag,
                subject: None,
                blobs: &blobs,
                manifests: &[],
            },
        )
        .map_err(|e| format!("{e:?}"))
        .unwrap();
    d
}

fn backdate(path: &Path) {
    let old = std::time::SystemTime::now() - Duration::from_secs(7200);
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(old)
        .unwrap();
}

#[tokio::test]
async fn mismatched_stream_leaves_nothing_visible() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_server(dir.path()).unwrap();
    let claimed = sha256(b"the real content");
    let mut w = store.writer().await.unwrap();
    w.write(b"other content").await.unwrap();
    let err = w.commit(&claimed, Some("a/b")).await.unwrap_err();
    assert!(matches!(err, StoreError::DigestMismatch { .. }), "{err}");
    assert!(files_under(&dir.path().join("blobs")).is_empty());
    assert!(files_under(&dir.path().join("tmp")).is_empty());
    assert!(!store.has_layer("a/b", &claimed));
    // A writer dropped mid-stream (client gone) leaves nothing either.
    let mut w = store.upload_writer("abc").await.unwrap();
    w.write(b"partial").await.unwrap();
    drop(w);
    assert!(files_under(&dir.path().join("uploads")).is_empty());
}

#[tokio::test]
async fn unhashed_writer_commits_only_what_the_caller_hashed_to_the_digest() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_server(dir.path()).unwrap();
    let content = vec![7u8; (3 << 20) + 5];
    let d = sha256(&content);
    // The caller's digest of other bytes than the claimed ones: refused, nothing visible.
    let mut w = store.writer_unhashed().await.unwrap();
    w.write(&content).await.unwrap();
    let err = w
        .commit_hashed(&d, sha256(b"other"), Some("a/b"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::DigestMismatch { .. }), "{err}");
    assert!(files_under(&dir.path().join("blobs")).is_empty());
    assert!(files_under(&dir.path().join("tmp")).is_empty());
    // A plain commit of an unhashed writer reads the file back: damaged content is refused.
    let mut w = store.writer_unhashed().await.unwrap();
    w.write(&content[1..]).await.unwrap();
    let err = w.commit(&d, Some("a/b")).await.unwrap_err();
    assert!(matches!(err, StoreError::DigestMismatch { .. }), "{err}");
    assert!(files_under(&dir.path().join("blobs")).is_empty());
    // The right digest: stored (in 1 MiB batches, written back as they go) and linked.
    let mut w = store.writer_unhashed().await.unwrap();
    for c in content.chunks(100_000) {
        w.write(c).await.unwrap();
    }
    assert_eq!(
        w.matches(&d).await.unwrap(),
        None,
        "an unhashed writer cannot tell"
    );
    assert_eq!(
        w.commit_hashed(&d, d.clone(), Some("a/b")).await.unwrap(),
        content.len() as u64
    );
    assert!(store.has_layer("a/b", &d));
    assert_eq!(fs::read(store.blob_path(&d)).unwrap(), content);
    assert!(files_under(&dir.path().join("tmp")).is_empty());
}

#[tokio::test]
async fn stale_temp_files_are_cleaned_at_open_and_a_second_server_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open_server(dir.path()).unwrap());
    fs::write(dir.path().join("tmp/left-by-a-crash"), b"partial").unwrap();
    fs::write(dir.path().join("uploads/0123"), b"partial").unwrap();
    let s = Store::open_server(dir.path()).unwrap();
    assert!(files_under(&dir.path().join("tmp")).is_empty());
    assert!(files_under(&dir.path().join("uploads")).is_empty());
    let err = Store::open_server(dir.path()).err().unwrap();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    drop(s);
}

#[tokio::test]
async fn one_copy_across_repositories() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_server(dir.path()).unwrap();
    let a = put(&store, "team/a", b"shared layer").await;
    let b = put(&store, "team/b", b"shared layer").await;
    assert_eq!(a, b);
    assert_eq!(files_under(&dir.path().join("blobs")).len(), 1);
    assert!(store.has_layer("team/a", &a) && store.has_layer("team/b", &a));
    assert!(!store.has_layer("team/c", &a));
    assert!(store.link_layer("team/c", &a).unwrap());
    assert!(store.has_layer("team/c", &a));
    let path = store.blob_path(&a);
    assert!(path.ends_with(format!("blobs/sha256/{}/{}", &a.hex()[..2], a.hex())));
    assert_eq!(fs::read(path).unwrap(), b"shared layer");
    assert_eq!(store.repositories(), vec!["team/a", "team/b", "team/c"]);
}

#[tokio::test]
async fn manifest_push_requires_its_blobs_in_the_repository() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_server(dir.path()).unwrap();
    let cfg = put(&store, "x", b"{}").await;
    let layer = sha256(b"never uploaded");
    let m = r#"{"schemaVersion":2}"#;
    let d = sha256(m.as_bytes());
    let missing = store
        .put_manifest(
            "x",
            &ManifestPush {
                digest: &d,
                bytes: m.as_bytes(),
                media_type: "application/vnd.oci.image.manifest.v1+json",
                tag: Some("v1"),
                subject: None,
                blobs: &[cfg.clone(), layer.clone()],
                manifests: &[],
            },
        )
        .unwrap_err()
        .unwrap();
    assert_eq!(missing, layer);
    assert!(store.resolve_tag("x", "v1").is_none());
    // Not visible from another repository either.
    let err = push_manifest_result(&store, "y", &cfg);
    assert!(err.is_err());
}

fn push_manifest_result(store: &Store, repo: &str, cfg: &Digest) -> Result<(), ()> {
    let m = b"{}";
    let d = sha256(m);
    store
        .put_manifest(
            repo,
            &ManifestPush {
                digest: &d,
                bytes: m,
                media_type: "application/vnd.oci.image.manifest.v1+json",
                tag: None,
                subject: None,
                blobs: std::slice::from_ref(cfg),
                manifests: &[],
            },
        )
        .map_err(|_| ())
}

#[tokio::test]
async fn gc_keeps_referenced_and_removes_unreferenced() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_server(dir.path()).unwrap();
    let cfg = put(&store, "app", b"config").await;
    let l1 = put(&store, "app", b"layer one").await;
    let m1 = push_manifest(&store, "app", Some("v1"), &cfg, std::slice::from_ref(&l1));
    // An orphan: stored, then its only link deleted (DELETE blob).
    let orphan = put(&store, "app", b"orphan").await;
    store.unlink_layer("app", &orphan).unwrap();
    // An untagged manifest with its own layer.
    let l2 = put(&store, "app", b"layer two").await;
    let m2 = push_manifest(&store, "app", None, &cfg, std::slice::from_ref(&l2));
    // A young orphan (a push in progress) survives the grace period.
    let young = put(&store, "other", b"young").await;
    store.unlink_layer("other", &young).unwrap();

    for p in files_under(&dir.path().join("blobs")) {
        backdate(Path::new(&p));
    }
    backdate(&store.blob_path(&young)); // then make it young again
    fs::File::options()
        .write(true)
        .open(store.blob_path(&young))
        .unwrap()
        .set_modified(std::time::SystemTime::now())
        .unwrap();

    let r = store.gc(&GcOptions::default()).unwrap();
    assert_eq!(r.blobs_removed, 1, "{r:?}");
    assert!(store.blob_size(&orphan).is_none());
    for d in [&cfg, &l1, &m1, &l2, &m2, &young] {
        assert!(store.blob_size(d).is_some(), "{d} kept");
    }
    assert_eq!(r.blobs_young, 1);

    // With delete_untagged (and old links), the untagged manifest and its layer go.
    for p in files_under(&dir.path().join("repos")) {
        backdate(Path::new(&p));
    }
    let r = store
        .gc(&GcOptions {
            delete_untagged: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(r.manifests_removed, 1, "{r:?}");
    assert!(store.blob_size(&m2).is_none() && store.blob_size(&l2).is_none());
    for d in [&cfg, &l1, &m1] {
        assert!(store.blob_size(d).is_some(), "{d} kept");
    }
    assert_eq!(store.resolve_tag("app", "v1"), Some(m1));
}

#[tokio::test]
async fn fsck_quarantines_a_flipped_byte() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_server(dir.path()).unwrap();
    let cfg = put(&store, "app", b"config").await;
    let l1 = put(&store, "app", &vec![7u8; 100_000]).await;
    push_manifest(&store, "app", Some("v1"), &cfg, std::slice::from_ref(&l1));
    assert!(store.fsck().unwrap().is_clean());

    let p = store.blob_path(&l1);
    let mut bytes = fs::read(&p).unwrap();
    bytes[50_000] ^= 0x01;
    fs::write(&p, bytes).unwrap();

    let r = store.fsck().unwrap();
    assert!(!r.is_clean());
    let corrupt: Vec<_> = r
        .findings
        .iter()
        .filter_map(|f| match f {
            FsckFinding::Corrupt {
                digest,
                quarantined,
                ..
            } => Some((digest.clone(), quarantined.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(corrupt.len(), 1, "{:?}", r.findings);
    assert_eq!(corrupt[0].0, l1);
    assert!(corrupt[0].1.starts_with(dir.path().join("quarantine")) && corrupt[0].1.is_file());
    assert!(!p.exists(), "a damaged blob is never served again");
    assert!(
        r.findings
            .iter()
            .any(|f| matches!(f, FsckFinding::Missing { digest, .. } if *digest == l1))
    );
    assert!(!store.has_layer("app", &l1));
}

#[test]
fn names_and_tags() {
    use berth_store::{validate_repository, validate_tag};
    for ok in ["a", "team/app", "a.b/c-d/e__f", "x0/y1"] {
        assert!(validate_repository(ok).is_ok(), "{ok}");
    }
    for bad in [
        "",
        "..",
        "a/../b",
        "a/%2e%2e/b",
        "A",
        "a//b",
        "/a",
        "a/",
        "a/.b",
        "_x",
    ] {
        assert!(validate_repository(bad).is_err(), "{bad}");
    }
    for ok in ["v1", "latest", "_x", "1.2.3-rc.1", "A"] {
        assert!(validate_tag(ok).is_ok(), "{ok}");
    }
    for bad in ["", ".x", "-x", "a/b", "a:b", &"x".repeat(129)] {
        assert!(validate_tag(bad).is_err(), "{bad}");
    }
}
