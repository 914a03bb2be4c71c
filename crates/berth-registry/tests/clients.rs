//! Real clients against a running berth registry on 127.0.0.1: skopeo (TLS with a generated
//! CA + htpasswd, `copy --all` in and back out with equal digests), the berth transfer
//! engine, curl for blob throughput, and a registry process killed with SIGKILL mid-push.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_client::{Credentials, RegistryConfig, RegistryConfigs};
use berth_reference::Reference;
use berth_registry::{Config, Server};
use berth_testkit::images::{self, FixtureRef};
use berth_testkit::sha256_digest;
use berth_testkit::skopeo::{self, SkopeoOpts};
use berth_transfer::{CopyOptions, Endpoint, ImageStatus, copy_images};
use support::Running;

const USER: &str = "edge";
const PASS: &str = "Edge-Registry-Pw1";

/// `berth serve` in this process (2 runtime threads).
fn start(cfg: Config) -> Running {
    support::start(cfg, 2)
}

fn htpasswd(dir: &Path) -> PathBuf {
    let p = dir.join("htpasswd");
    std::fs::write(&p, format!("{USER}:{}\n", bcrypt::hash(PASS, 6).unwrap())).unwrap();
    p
}

fn assert_digests(reference: &str, r: &FixtureRef, o: &SkopeoOpts) {
    let raw = skopeo::inspect_raw(&format!("{reference}:{}", r.tag), o);
    assert_eq!(sha256_digest(&raw), r.digest, "{reference}:{}", r.tag);
    for d in r.manifest_digests() {
        let raw = skopeo::inspect_raw(&format!("{reference}@{d}"), o);
        assert_eq!(sha256_digest(&raw), d, "{reference}@{d}");
    }
}

#[test]
fn skopeo_copy_all_in_and_out_over_tls_with_htpasswd() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = images::build_set(&tmp.path().join("fixture"));
    let cfg = Config {
        listen: "127.0.0.1:0".into(),
        data: tmp.path().join("data"),
        tls: berth_registry::TlsConfig {
            self_signed: true,
            ..Default::default()
        },
        auth: berth_registry::AuthConfig {
            htpasswd: Some(htpasswd(tmp.path())),
            ..Default::default()
        },
        ..Default::default()
    };
    let reg = start(cfg);
    // A containers cert dir with only the generated CA.
    let certs = tmp.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    std::fs::copy(reg.data.join("tls/ca.crt"), certs.join("ca.crt")).unwrap();
    let opts = SkopeoOpts {
        tls_verify: true,
        cert_dir: Some(certs.clone()),
        creds: Some((USER.into(), PASS.into())),
    };
    let host = format!("127.0.0.1:{}", reg.addr.port());
    for r in &fixture.refs {
        let src = fixture.skopeo_source(r, &tmp.path().join("scratch").join(&r.ref_name));
        let dst = format!("docker://{host}/library/{}", r.name);
        skopeo::copy(
            &src,
            &SkopeoOpts::insecure(),
            &format!("{dst}:{}", r.tag),
            &opts,
            &[],
        );
        assert_digests(&dst, r, &opts);
        // And back out into a fresh layout, digests unchanged.
        let out = tmp.path().join("out").join(&r.ref_name);
        std::fs::create_dir_all(&out).unwrap();
        // (skopeo's oci: transport takes OCI types only; Docker types go to dir:)
        let out_ref = if r.kind.is_docker() {
            format!("dir:{}", out.display())
        } else {
            skopeo::oci_ref(&out, "x")
        };
        skopeo::copy(
            &format!("{dst}:{}", r.tag),
            &opts,
            &out_ref,
            &SkopeoOpts::insecure(),
            &[],
        );
        let raw = skopeo::inspect_raw(&out_ref, &SkopeoOpts::insecure());
        assert_eq!(sha256_digest(&raw), r.digest, "{out_ref}");
    }
    let tags = skopeo::list_tags(
        &format!("docker://{host}/library/{}", fixture.refs[0].name),
        &opts,
    );
    assert!(tags.contains(&fixture.refs[0].tag), "{tags:?}");
    // Shared blobs are stored once.
    let store = berth_store::Store::open(&reg.data).unwrap();
    let (_, count) = store.blob_usage();
    let mut distinct = std::collections::HashSet::new();
    for r in &fixture.refs {
        distinct.insert(r.digest.clone());
        distinct.extend(r.blobs());
        distinct.extend(r.manifest_digests());
    }
    assert_eq!(count as usize, distinct.len());
    assert!(store.fsck().unwrap().is_clean());

    // Wrong password and no TLS trust both fail.
    let bad = SkopeoOpts {
        creds: Some((USER.into(), "nope".into())),
        ..opts.clone()
    };
    let r = &fixture.refs[0];
    let failed = std::panic::catch_unwind(|| {
        skopeo::inspect_raw(
            &format!("docker://{host}/library/{}:{}", r.name, r.tag),
            &bad,
        )
    });
    assert!(failed.is_err(), "a wrong password must be refused");
}

#[test]
fn transfer_engine_copies_into_berth_and_reruns_move_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = images::build_set(&tmp.path().join("fixture"));
    let reg = start(Config {
        listen: "127.0.0.1:0".into(),
        data: tmp.path().join("data"),
        ..Default::default()
    });
    let host = format!("127.0.0.1:{}", reg.addr.port());
    let mut dst = RegistryConfigs::new();
    dst.insert(
        &host,
        RegistryConfig {
            insecure: true,
            credentials: None::<Credentials>,
            ca_pems: vec![],
        },
    );
    let pairs: Vec<(Endpoint, Endpoint)> = fixture
        .refs
        .iter()
        .map(|r| {
            (
                Endpoint::Layout {
                    dir: fixture.layout.dir.clone(),
                    reference: r.ref_name.clone(),
                },
                Endpoint::Registry(
                    Reference::parse(&format!("{host}/mirror/{}:{}", r.name, r.tag)).unwrap(),
                ),
            )
        })
        .collect();
    let opts = CopyOptions {
        destination_registries: dst,
        ..Default::default()
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let report = rt.block_on(copy_images(pairs.clone(), opts.clone(), None));
    assert_eq!(report.failed(), 0, "{report:?}");
    assert!(report.blobs.copied > 0);
    for r in &fixture.refs {
        assert_digests(
            &format!("docker://{host}/mirror/{}", r.name),
            r,
            &SkopeoOpts::insecure(),
        );
    }
    let again = rt.block_on(copy_images(pairs, opts, None));
    assert_eq!(again.failed(), 0);
    assert_eq!(again.blobs.copied, 0, "{again:?}");
    assert!(again.images.iter().all(|i| i.status != ImageStatus::Failed));
}

#[test]
fn blob_get_throughput_with_curl() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = start(Config {
        listen: "127.0.0.1:0".into(),
        data: tmp.path().join("data"),
        ..Default::default()
    });
    let mib = 256;
    let data: Vec<u8> = (0..mib * 1024 * 1024usize)
        .map(|i| (i * 31 % 251) as u8)
        .collect();
    let file = tmp.path().join("blob");
    std::fs::write(&file, &data).unwrap();
    let d = sha256_digest(&data);
    drop(data);
    let base = format!("http://{}", reg.addr);
    let t = Instant::now();
    let out = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "POST",
            "--data-binary",
        ])
        .arg(format!("@{}", file.display()))
        .arg(format!("{base}/v2/bench/blobs/uploads/?digest={d}"))
        .output()
        .unwrap();
    let up = t.elapsed().as_secs_f64();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "201",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t = Instant::now();
    let out = Command::new("curl")
        .args(["-sS", "-o"])
        .arg(tmp.path().join("down"))
        .args(["-w", "%{http_code}"])
        .arg(format!("{base}/v2/bench/blobs/{d}"))
        .output()
        .unwrap();
    let down = t.elapsed().as_secs_f64();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
    assert_eq!(
        sha256_digest(&std::fs::read(tmp.path().join("down")).unwrap()),
        d
    );
    eprintln!(
        "blob {mib} MiB: upload {:.0} MB/s, download {:.0} MB/s",
        mib as f64 * 1.048576 / up,
        mib as f64 * 1.048576 / down
    );
}

/// The registry as a separate process: this test binary again, running only
/// [`child_registry_process`] with `BERTH_TEST_SERVE_CONFIG` set.
fn spawn_process(config: &Path) -> (Child, u16) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_registry_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("BERTH_TEST_SERVE_CONFIG", config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let port = loop {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 {
            panic!("the registry process ended before listening");
        }
        // (libtest may print `test child_registry_process ... ` on the same line)
        if let Some((_, addr)) = line.trim().split_once("listening on ") {
            break addr.rsplit(':').next().unwrap().parse().unwrap();
        }
    };
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    (child, port)
}

/// Not a test on its own: the body of the registry process of [`spawn_process`].
#[test]
fn child_registry_process() {
    let Some(config) = std::env::var_os("BERTH_TEST_SERVE_CONFIG") else {
        return;
    };
    let cfg = Config::from_file(Path::new(&config)).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let server = Server::bind(cfg).await.unwrap();
        println!("listening on {}", server.local_addr());
        server.run(std::future::pending()).await.unwrap();
    });
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().unwrap().is_dir() {
            out.extend(files(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[test]
fn sigkill_during_pushes_leaves_a_consistent_store() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = images::build_big(&tmp.path().join("big"), 96);
    let r = &fixture.refs[0];
    let data = tmp.path().join("data");
    let config = tmp.path().join("berth.yaml");
    std::fs::write(
        &config,
        format!("listen: 127.0.0.1:0\ndata: {}\n", data.display()),
    )
    .unwrap();

    for round in 0..3 {
        let (mut child, port) = spawn_process(&config);
        let dst = format!("docker://127.0.0.1:{port}/big/img:{}", r.tag);
        let src = fixture.oci_reference(r);
        let pusher = std::thread::spawn(move || {
            std::panic::catch_unwind(|| {
                skopeo::copy(
                    &src,
                    &SkopeoOpts::insecure(),
                    &dst,
                    &SkopeoOpts::insecure(),
                    &[],
                )
            })
            .is_ok()
        });
        // Kill once the big layer is partly uploaded (or at a different moment each round).
        let deadline = Instant::now() + Duration::from_secs(60);
        let want = [1u64 << 20, 16 << 20, 48 << 20][round];
        loop {
            let partial: u64 = files(&data.join("uploads"))
                .iter()
                .chain(files(&data.join("tmp")).iter())
                .filter_map(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
                .sum();
            if partial >= want || Instant::now() > deadline || pusher.is_finished() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let _ = pusher.join();

        // Before any restart: every visible blob is whole and correct.
        let store = berth_store::Store::open(&data).unwrap();
        let report = store.fsck().unwrap();
        assert!(report.is_clean(), "round {round}: {:?}", report.findings);
        for b in files(&data.join("blobs")) {
            assert!(
                std::fs::metadata(&b).unwrap().len() > 0
                    || b.ends_with(
                        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
                    )
            );
        }
    }
    // Restart: leftovers are cleaned, the push completes, digests are equal.
    let (mut child, port) = spawn_process(&config);
    assert!(files(&data.join("uploads")).is_empty());
    assert!(files(&data.join("tmp")).is_empty());
    let dst = format!("docker://127.0.0.1:{port}/big/img");
    skopeo::copy(
        &fixture.oci_reference(r),
        &SkopeoOpts::insecure(),
        &format!("{dst}:{}", r.tag),
        &SkopeoOpts::insecure(),
        &[],
    );
    assert_digests(&dst, r, &SkopeoOpts::insecure());
    child.kill().unwrap();
    child.wait().unwrap();
    let report = berth_store::Store::open(&data).unwrap().fsck().unwrap();
    assert!(report.is_clean(), "{:?}", report.findings);
    assert!(report.bytes_checked > 96 << 20);
}

#[test]
fn sigkill_during_pull_through_fills_leaves_a_consistent_store() {
    // The upstream (plain Distribution) holds a 96 MiB image; berth is killed while its
    // pull-through fill of the big layer is on disk in part, three times, at different
    // points. Each time nothing partial is visible; then a restart serves the whole image.
    let tmp = tempfile::tempdir().unwrap();
    let fixture = images::build_big(&tmp.path().join("big"), 96);
    let r = &fixture.refs[0];
    let upstream = berth_testkit::Distribution::plain();
    images::push_with_skopeo(&fixture, &upstream, "library");
    let data = tmp.path().join("data");
    let config = tmp.path().join("berth.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:0\ndata: {}\nproxy:\n  upstreams:\n  - registry: {}\n    insecure: true\n",
            data.display(),
            upstream.host()
        ),
    )
    .unwrap();
    let path = |port: u16| {
        format!(
            "docker://127.0.0.1:{port}/spectro-images/{}/library/{}",
            upstream.host().replace(':', "_"),
            r.name
        )
    };
    let mut mid_fill = 0;
    for round in 0..3 {
        let (mut child, port) = spawn_process(&config);
        let src = format!("{}:{}", path(port), r.tag);
        let out = tmp.path().join(format!("pulled-{round}"));
        let puller = std::thread::spawn(move || {
            std::panic::catch_unwind(|| {
                skopeo::copy(
                    &src,
                    &SkopeoOpts::insecure(),
                    &format!("oci:{}:x", out.display()),
                    &SkopeoOpts::insecure(),
                    &[],
                )
            })
            .is_ok()
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let want = [1u64 << 20, 24 << 20, 64 << 20][round];
        loop {
            let partial: u64 = files(&data.join("tmp"))
                .iter()
                .filter_map(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
                .sum();
            if partial >= want {
                mid_fill += 1;
                break;
            }
            if Instant::now() > deadline || puller.is_finished() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let _ = puller.join();
        let report = berth_store::Store::open(&data).unwrap().fsck().unwrap();
        assert!(report.is_clean(), "round {round}: {:?}", report.findings);
        let big_layer = &r.manifests[0].layers[1].digest;
        let hex = big_layer.trim_start_matches("sha256:");
        for b in files(&data.join("blobs")) {
            assert!(
                !b.ends_with(hex) || std::fs::metadata(&b).unwrap().len() > 90 << 20,
                "round {round}: a partial big layer is visible at {}",
                b.display()
            );
        }
    }
    assert!(mid_fill > 0, "no round was killed in the middle of a fill");
    // Restart: the fill completes (from upstream), the image pulls whole, the store is clean.
    let (mut child, port) = spawn_process(&config);
    assert!(files(&data.join("tmp")).is_empty());
    assert_digests(&path(port), r, &SkopeoOpts::insecure());
    skopeo::copy(
        &format!("{}:{}", path(port), r.tag),
        &SkopeoOpts::insecure(),
        &format!("oci:{}:x", tmp.path().join("pulled-final").display()),
        &SkopeoOpts::insecure(),
        &[],
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let report = berth_store::Store::open(&data).unwrap().fsck().unwrap();
    assert!(report.is_clean(), "{:?}", report.findings);
    assert!(report.bytes_checked > 96 << 20, "{report:?}");
}
