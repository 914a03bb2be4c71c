//! berth-containerd against a real containerd 1.6 (started per test, CRI off, native
//! snapshotter) and a real Distribution with TLS and htpasswd; `ctr` judges the results:
//! the image list and digests, the snapshots, and a container started from an import.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use berth_archive::preload;
use berth_client::{Credentials, RegistryConfig, RegistryConfigs};
use berth_containerd::{
    Containerd, ContainerdEnd, ContainerdError, ContainerdOptions, Platform, image_state,
};
use berth_reference::{Digest, Reference};
use berth_testkit::images::{self, Fixture};
use berth_testkit::skopeo::{self, SkopeoOpts};
use berth_testkit::{Distribution, sha256_digest};
use berth_transfer::{CopyOptions, Endpoint, ImageStatus, Report, copy_images};
use support::{TestContainerd, busybox_layout};

const NS: &str = "k8s.io";

/// One runtime for every test: a containerd channel lives on the runtime that made it.
fn rt() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

async fn connect(c: &TestContainerd) -> Arc<Containerd> {
    Arc::new(
        Containerd::connect(ContainerdOptions {
            socket: c.socket.clone(),
            namespace: NS.into(),
            snapshotter: "native".into(),
            platform: Platform::parse("linux/amd64").unwrap(),
        })
        .await
        .unwrap(),
    )
}

/// A pair: `source` into containerd under `name` (and `also`).
fn into_containerd(
    cd: &Arc<Containerd>,
    source: Endpoint,
    name: &str,
    also: Vec<String>,
) -> (Endpoint, Endpoint) {
    let mut end = ContainerdEnd::new(cd.clone()).also_named(also);
    if let Endpoint::Registry(r) = &source {
        end = end.distribution_source(r.domain(), r.path());
    }
    (
        source,
        Endpoint::Ends {
            name: format!("containerd:{name}"),
            reference: name.to_string(),
            source: None,
            destination: Some(Arc::new(end)),
        },
    )
}

fn registry_configs(reg: &Distribution, password: &str) -> RegistryConfigs {
    let (user, _) = reg.credentials().unwrap();
    let mut c = RegistryConfigs::new();
    c.insert(
        &reg.host(),
        RegistryConfig {
            credentials: Some(Credentials::new(user, password.to_string())),
            insecure: false,
            ca_pems: vec![reg.certs().unwrap().ca_pem.clone()],
        },
    );
    c
}

fn assert_all(report: &Report, status: ImageStatus) {
    for i in &report.images {
        assert_eq!(
            i.status, status,
            "{} → {}: {:?}",
            i.source, i.target, i.error
        );
    }
}

/// The fixture set and busybox in a TLS + htpasswd registry under `edge/library/`.
struct Remote {
    _work: tempfile::TempDir,
    reg: Distribution,
    f: Fixture,
    busybox_digest: String,
    busybox_diff_id: String,
}

fn remote() -> Remote {
    let work = tempfile::tempdir().unwrap();
    let reg = Distribution::tls_htpasswd("edge", "edge-pass");
    let f = images::build_set(&work.path().join("set"));
    images::push_with_skopeo(&f, &reg, "edge/library");
    let bb = busybox_layout(&work.path().join("busybox"), "busybox_1");
    skopeo::copy(
        &skopeo::oci_ref(&bb.layout, &bb.ref_name),
        &SkopeoOpts::insecure(),
        &format!("docker://{}/edge/library/busybox:1", reg.host()),
        &SkopeoOpts::for_registry(&reg),
        &[],
    );
    Remote {
        _work: work,
        reg,
        f,
        busybox_digest: bb.manifest_digest,
        busybox_diff_id: bb.diff_id,
    }
}

/// (source in the registry, containerd name, expected digest) of every remote image.
fn remote_images(r: &Remote) -> Vec<(String, String, String)> {
    let mut v: Vec<(String, String, String)> =
        r.f.refs
            .iter()
            .map(|x| {
                (
                    format!("{}/edge/library/{}:{}", r.reg.host(), x.name, x.tag),
                    format!("docker.io/library/{}:{}", x.name, x.tag),
                    x.digest.clone(),
                )
            })
            .collect();
    v.push((
        format!("{}/edge/library/busybox:1", r.reg.host()),
        "docker.io/library/busybox:1".into(),
        r.busybox_digest.clone(),
    ));
    v
}

fn import_remote(cd: &Arc<Containerd>, r: &Remote, password: &str) -> Report {
    let pairs = remote_images(r)
        .into_iter()
        .map(|(src, name, _)| {
            into_containerd(
                cd,
                Endpoint::Registry(Reference::parse(&src).unwrap()),
                &name,
                vec![src.clone()],
            )
        })
        .collect();
    let opts = CopyOptions {
        jobs: 4,
        keep_going: true,
        source_registries: registry_configs(&r.reg, password),
        ..CopyOptions::default()
    };
    rt().block_on(async {
        cd.begin_lease().await.unwrap();
        let report = copy_images(pairs, opts, None).await;
        if report.failed() == 0 {
            cd.end_lease().await.unwrap();
        } else {
            cd.keep_lease();
        }
        report
    })
}

#[test]
fn registry_images_land_in_containerd_unpacked_and_run_then_a_rerun_moves_nothing() {
    let r = remote();
    let c = TestContainerd::start();
    let cd = rt().block_on(connect(&c));

    let started = Instant::now();
    let report = import_remote(&cd, &r, "edge-pass");
    let took = started.elapsed();
    assert_all(&report, ImageStatus::Copied);
    eprintln!(
        "import of {} images ({} blob bytes) into containerd: {:.2} s",
        report.images.len(),
        report.bytes,
        took.as_secs_f64()
    );

    // ctr lists every image, under the source name and the target name, with the digest.
    let listed: HashMap<String, String> = c.images(NS).into_iter().collect();
    for (src, name, digest) in remote_images(&r) {
        assert_eq!(listed.get(&name), Some(&digest), "{name} in {listed:?}");
        assert_eq!(listed.get(&src), Some(&digest), "{src} in {listed:?}");
    }
    assert_eq!(listed.len(), 2 * remote_images(&r).len(), "{listed:?}");

    // Unpacked: the chain IDs of every amd64 image are committed snapshots; the arm64 half
    // of the multi-platform index is neither stored nor unpacked.
    let snaps = c.snapshots(NS);
    for x in &r.f.refs {
        for m in &x.manifests {
            let diff_ids: Vec<Digest> = m
                .diff_ids
                .iter()
                .map(|d| Digest::parse(d).unwrap())
                .collect();
            let top = berth_containerd::unpack::chain_ids(&diff_ids)
                .last()
                .unwrap()
                .to_string();
            assert_eq!(
                snaps.contains(&top),
                m.platform == "linux/amd64",
                "{} {}: {top} in {snaps:?}",
                x.ref_name,
                m.platform
            );
        }
    }
    assert!(snaps.contains(&r.busybox_diff_id), "{snaps:?}");
    // Content: every top manifest (indexes whole), and the host platform's manifest, config
    // and layers; the arm64 half of the index is declined, as `ctr images pull` does.
    let content = c.content(NS);
    let pieces = |m: &berth_testkit::images::ImageManifest| -> Vec<String> {
        std::iter::once(&m.manifest.digest)
            .chain(std::iter::once(&m.config.digest))
            .chain(m.layers.iter().map(|l| &l.digest))
            .cloned()
            .collect()
    };
    let host: std::collections::HashSet<String> =
        r.f.refs
            .iter()
            .flat_map(|x| x.manifests.iter())
            .filter(|m| m.platform == "linux/amd64")
            .flat_map(pieces)
            .collect();
    let mut declined = 0;
    for x in &r.f.refs {
        assert!(content.contains(&x.digest), "{} missing", x.ref_name);
        for m in &x.manifests {
            for b in pieces(m) {
                let want = host.contains(&b);
                declined += usize::from(!want);
                assert_eq!(
                    content.contains(&b),
                    want,
                    "{b} of {} {}",
                    x.ref_name,
                    m.platform
                );
            }
        }
    }
    assert!(declined > 0, "the set has a foreign platform to decline");

    // containerd's labels, as its own pull writes them.
    rt().block_on(async {
        let busybox = image_state(&cd, "docker.io/library/busybox:1")
            .await
            .unwrap()
            .unwrap();
        assert!(busybox.unpacked && busybox.problem.is_none(), "{busybox:?}");
        let manifest = cd
            .content_info(&busybox.record.digest)
            .await
            .unwrap()
            .unwrap();
        let config = Digest::parse(&manifest["containerd.io/gc.ref.content.config"]).unwrap();
        let layer = Digest::parse(&manifest["containerd.io/gc.ref.content.l.0"]).unwrap();
        assert_eq!(
            manifest.get(&format!(
                "containerd.io/distribution.source.{}",
                r.reg.host()
            )),
            Some(&"edge/library/busybox".to_string())
        );
        let cfg = cd.content_info(&config).await.unwrap().unwrap();
        assert_eq!(
            cfg["containerd.io/gc.ref.snapshot.native"],
            r.busybox_diff_id
        );
        let l = cd.content_info(&layer).await.unwrap().unwrap();
        assert_eq!(l["containerd.io/uncompressed"], r.busybox_diff_id);
        let multi = r.f.get("multi", "1");
        let idx = cd
            .content_info(&Digest::parse(&multi.digest).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            idx["containerd.io/gc.ref.content.m.1"],
            multi.manifests[1].manifest.digest
        );
    });

    // A garbage collection keeps everything (the lease is gone; the labels hold it).
    // (`images rm --sync` runs the collector before it returns.)
    c.ctr_ok(
        NS,
        &[
            "images",
            "tag",
            "docker.io/library/base:1",
            "docker.io/library/gc-trigger:1",
        ],
    );
    c.ctr_ok(
        NS,
        &["images", "rm", "--sync", "docker.io/library/gc-trigger:1"],
    );
    let after_gc = c.content(NS);
    let gone: Vec<&String> = content.iter().filter(|d| !after_gc.contains(d)).collect();
    assert!(
        gone.is_empty(),
        "gc removed {gone:?}\n{}",
        c.ctr_ok(NS, &["content", "ls"])
    );
    c.ctr_ok(NS, &["images", "check"]);

    // ctr runs a container from the imported image: our snapshots, no unpack by ctr.
    if let Some(out) = c.run(NS, "docker.io/library/busybox:1", "berth-t1", &[]) {
        assert!(out.contains("hello from berth"), "{out}");
    }
    if let Some(out) = c.run(
        NS,
        "docker.io/library/busybox:1",
        "berth-t2",
        &["/bin/sh", "-c", "echo sh works; ls /bin"],
    ) {
        assert!(out.contains("sh works") && out.contains("busybox"), "{out}");
    }

    // Rerun: everything present, no blob moved.
    let again = import_remote(&cd, &r, "edge-pass");
    assert_all(&again, ImageStatus::Present);
    assert_eq!((again.blobs.copied, again.bytes), (0, 0), "{again:?}");

    // A deleted record or snapshot is brought back by a rerun, moving no blob.
    c.ctr_ok(NS, &["images", "rm", "docker.io/library/base:2"]);
    let again = import_remote(&cd, &r, "edge-pass");
    let base2 = again
        .images
        .iter()
        .find(|i| i.target.contains("base:2"))
        .unwrap();
    assert_eq!(base2.status, ImageStatus::Copied, "{again:?}");
    assert_eq!(again.blobs.copied, 0, "{again:?}");
    assert_eq!(
        c.images(NS)
            .into_iter()
            .find(|(n, _)| n == "docker.io/library/base:2")
            .map(|x| x.1),
        Some(r.f.get("base", "2").digest.clone())
    );
}

#[test]
fn compare_with_ctr_pull() {
    // The same images with `ctr images pull` (TLS via hosts.toml, basic auth), for the
    // numbers in the report; both must succeed.
    let r = remote();
    let ours = TestContainerd::start();
    let cd = rt().block_on(connect(&ours));
    let t = Instant::now();
    assert_all(&import_remote(&cd, &r, "edge-pass"), ImageStatus::Copied);
    let berth_s = t.elapsed().as_secs_f64();

    let theirs = TestContainerd::start();
    let hosts = theirs.dir.path().join("certs.d").join(r.reg.host());
    std::fs::create_dir_all(&hosts).unwrap();
    std::fs::write(
        hosts.join("hosts.toml"),
        format!(
            "[host.\"https://{}\"]\n  capabilities = [\"pull\", \"resolve\"]\n  ca = \"{}\"\n",
            r.reg.host(),
            r.reg.certs().unwrap().ca_path.display()
        ),
    )
    .unwrap();
    let hosts_dir = theirs.dir.path().join("certs.d");
    let t = Instant::now();
    for (src, _, _) in remote_images(&r) {
        theirs.ctr_ok(
            NS,
            &[
                "images",
                "pull",
                "--hosts-dir",
                hosts_dir.to_str().unwrap(),
                "--user",
                "edge:edge-pass",
                "--snapshotter",
                "native",
                &src,
            ],
        );
    }
    let ctr_s = t.elapsed().as_secs_f64();
    eprintln!(
        "{} images: berth-containerd {berth_s:.2} s (host platform stored and unpacked), ctr images pull {ctr_s:.2} s (host platform only)",
        remote_images(&r).len()
    );
}

#[test]
fn preloaded_archives_and_layouts_are_imported_under_their_names_without_a_registry() {
    let work = tempfile::tempdir().unwrap();
    let f = images::build_set(&work.path().join("set"));
    let pre = work.path().join("preload");
    std::fs::create_dir_all(&pre).unwrap();
    let bb = busybox_layout(&work.path().join("bb"), "busybox_1");
    let none = SkopeoOpts::insecure();
    // oci-archive of busybox, named as the cluster asks for it; then zstd-compressed.
    let plain = work.path().join("busybox.tar");
    skopeo::copy(
        &skopeo::oci_ref(&bb.layout, &bb.ref_name),
        &none,
        &format!("oci-archive:{}:registry.k8s.io/pause:3.9", plain.display()),
        &none,
        &[],
    );
    let zst = zstd::encode_all(std::fs::File::open(&plain).unwrap(), 3).unwrap();
    std::fs::write(pre.join("pause.tar.zst"), zst).unwrap();
    // docker-archive (gzip) of app:1 with two tags.
    let app = f.get("app", "1");
    let scratch = work.path().join("scratch");
    let dock = work.path().join("app.tar");
    skopeo::copy(
        &f.skopeo_source(app, &scratch),
        &none,
        &format!("docker-archive:{}:quay.io/team/app:1", dock.display()),
        &none,
        &[],
    );
    let gz = {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&std::fs::read(&dock).unwrap()).unwrap();
        e.finish().unwrap()
    };
    std::fs::write(pre.join("app.tar.gz"), gz).unwrap();
    // An OCI layout directory with the multi-platform index, under a short name.
    let multi = f.get("multi", "1");
    skopeo::copy(
        &f.oci_reference(multi),
        &none,
        &format!("oci:{}:multi:1", pre.join("layout").display()),
        &none,
        &[],
    );
    // A corrupt archive: reported, the others still imported.
    let mut truncated = std::fs::read(&plain).unwrap();
    truncated.truncate(truncated.len() / 2);
    std::fs::write(pre.join("broken.tar"), truncated).unwrap();

    let c = TestContainerd::start();
    let cd = rt().block_on(connect(&c));
    let scan = rt().block_on(preload::scan(&pre)).unwrap();
    assert_eq!(scan.problems.len(), 1, "{:?}", scan.problems);
    assert!(
        scan.problems[0].path.ends_with("broken.tar"),
        "{:?}",
        scan.problems
    );
    let mut names: Vec<String> = scan.images.iter().flat_map(|i| i.names.clone()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "docker.io/library/multi:1",
            "quay.io/team/app:1",
            "registry.k8s.io/pause:3.9"
        ]
    );
    let pairs = scan
        .images
        .iter()
        .map(|p| {
            into_containerd(
                &cd,
                Endpoint::preloaded(p),
                &p.names[0],
                p.names[1..].to_vec(),
            )
        })
        .collect();
    let report = rt().block_on(async {
        cd.begin_lease().await.unwrap();
        let r = copy_images(pairs, CopyOptions::default(), None).await;
        cd.end_lease().await.unwrap();
        r
    });
    assert_all(&report, ImageStatus::Copied);
    let listed: HashMap<String, String> = c.images(NS).into_iter().collect();
    assert_eq!(
        listed.get("registry.k8s.io/pause:3.9"),
        Some(&bb.manifest_digest)
    );
    assert_eq!(listed.get("docker.io/library/multi:1"), Some(&multi.digest));
    // docker-archive holds no manifest: the digest is that of the synthesized one.
    assert!(listed.contains_key("quay.io/team/app:1"), "{listed:?}");
    if let Some(out) = c.run(NS, "registry.k8s.io/pause:3.9", "berth-pre", &[]) {
        assert!(out.contains("hello from berth"), "{out}");
    }
    c.ctr_ok(NS, &["images", "check"]);
}

#[test]
fn bad_inputs_fail_cleanly_and_leave_nothing_half_imported() {
    // A missing socket names the socket and the fix.
    let e = rt()
        .block_on(Containerd::connect(ContainerdOptions {
            socket: "/nonexistent/containerd.sock".into(),
            ..ContainerdOptions::default()
        }))
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ContainerdError::NoSocket { .. }), "{msg}");
    assert!(
        msg.contains("/nonexistent/containerd.sock") && msg.contains("--containerd-socket"),
        "{msg}"
    );

    let r = remote();
    let c = TestContainerd::start();
    let cd = rt().block_on(connect(&c));

    // Wrong password: every image fails with the registry's answer; nothing in containerd.
    let report = import_remote(&cd, &r, "wrong-pass");
    assert_all(&report, ImageStatus::Failed);
    let err = report.images[0].error.clone().unwrap();
    assert!(
        err.contains("401")
            || err.to_lowercase().contains("unauthorized")
            || err.contains("credentials"),
        "{err}"
    );
    assert!(c.images(NS).is_empty());
    assert!(c.content(NS).is_empty(), "{:?}", c.content(NS));

    // A layout whose layer bytes do not match their digest: refused, nothing committed.
    let work = tempfile::tempdir().unwrap();
    let bb = busybox_layout(&work.path().join("bb"), "busybox_1");
    let blob = bb
        .layout
        .join("blobs/sha256")
        .join(bb.layer_digest.trim_start_matches("sha256:"));
    let mut bytes = std::fs::read(&blob).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&blob, &bytes).unwrap();
    let pair = into_containerd(
        &cd,
        Endpoint::Layout {
            dir: bb.layout.clone(),
            reference: bb.ref_name.clone(),
        },
        "docker.io/library/corrupt:1",
        vec![],
    );
    let report = rt().block_on(copy_images(vec![pair], CopyOptions::default(), None));
    assert_all(&report, ImageStatus::Failed);
    let err = report.images[0].error.clone().unwrap();
    assert!(
        err.contains(&bb.layer_digest) && err.contains("corrupted"),
        "{err}"
    );
    assert!(c.images(NS).is_empty());
    assert!(!c.content(NS).contains(&bb.layer_digest));
    assert!(
        c.ctr_ok(NS, &["content", "active"]).lines().count() <= 1,
        "an ingest was left behind"
    );

    // Straight to containerd, without the engine's check: containerd's commit refuses a
    // digest mismatch, and the write is aborted.
    let end = ContainerdEnd::new(cd.clone());
    let good = b"the right bytes".to_vec();
    let digest = Digest::parse(&sha256_digest(&good)).unwrap();
    let wrong: berth_oci::ByteStream = Box::pin(futures_util::stream::once(async {
        Ok(bytes::Bytes::from_static(b"the wrong bytes"))
    }));
    use berth_transfer::Destination;
    let e = rt()
        .block_on(end.put_blob(&digest, good.len() as u64, wrong))
        .unwrap_err();
    assert!(e.to_string().contains(&digest.to_string()), "{e}");
    assert!(!rt().block_on(end.has_blob(&digest)).unwrap());
    assert!(c.ctr_ok(NS, &["content", "active"]).lines().count() <= 1);
    // ...and the right bytes then go in.
    let right: berth_oci::ByteStream = Box::pin(futures_util::stream::once(async move {
        Ok(bytes::Bytes::from(good))
    }));
    rt().block_on(end.put_blob(&digest, 15, right)).unwrap();
    assert!(rt().block_on(end.has_blob(&digest)).unwrap());
}

/// Two writers of the same blob at once (two images sharing a layer, imported in parallel):
/// the second waits for the first's lock on the ref, as containerd's own clients do, and
/// both succeed and the blob is there. (Before, the second failed
/// with containerd's "ref ... locked" and aborted the first's ingest.)
#[test]
fn concurrent_writers_of_one_blob_both_succeed() {
    use futures_util::StreamExt;
    let c = TestContainerd::start();
    rt().block_on(async {
        let cd = connect(&c).await;
        let bytes = bytes::Bytes::from(vec![7u8; 3 << 20]);
        let digest = Digest::parse(&sha256_digest(&bytes)).unwrap();
        // The first stream is slow: 12 chunks of 256 KiB, 50 ms apart, so its lock is held
        // while the second starts.
        let slow = {
            let chunks: Vec<bytes::Bytes> = (0..12)
                .map(|i| bytes.slice(i * (256 << 10)..(i + 1) * (256 << 10)))
                .collect();
            futures_util::stream::iter(chunks)
                .then(|c| async move {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    Ok::<_, std::io::Error>(c)
                })
                .boxed()
        };
        let size = bytes.len() as u64;
        let first = cd.write_content(&digest, size, slow, HashMap::new());
        let second = async {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            cd.write_bytes(&digest, bytes.clone(), HashMap::new()).await
        };
        let (a, b) = tokio::join!(first, second);
        assert!(a.is_ok(), "{:?}", a.err());
        assert!(b.is_ok(), "{:?}", b.err());
        // containerd checked the digest and size at the commit.
        assert!(cd.content_info(&digest).await.unwrap().is_some());
    });
}
