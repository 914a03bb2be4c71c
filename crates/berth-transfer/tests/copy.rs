//! The transfer engine against real Distribution registries (berth-testkit): a plain
//! source and a TLS + htpasswd destination under a prefix path, with skopeo as the
//! independent judge of digests.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_client::{Client, Credentials, MANIFEST_ACCEPT, RegistryConfig, RegistryConfigs};
use berth_reference::{Digest, Reference};
use berth_testkit::images::{self, Fixture, FixtureRef};
use berth_testkit::skopeo::{self, SkopeoOpts};
use berth_testkit::{Distribution, sha256_digest};
use berth_transfer::{
    BlobOutcome, CopyOptions, Endpoint, Event, EventSink, ImageStatus, VerifyStatus, copy_images,
    verify,
};

const USER: &str = "berth";
const PASS: &str = "Corr3ct-Horse-Pw";

fn source_with(fixture: &Fixture) -> Distribution {
    let reg = Distribution::plain();
    images::push_with_skopeo(fixture, &reg, "library");
    reg
}

fn opts(src: &Distribution, dst: &Distribution, password: &str) -> CopyOptions {
    let mut s = RegistryConfigs::new();
    s.insert(
        &src.host(),
        RegistryConfig {
            insecure: true,
            ..Default::default()
        },
    );
    let mut d = RegistryConfigs::new();
    d.insert(
        &dst.host(),
        RegistryConfig {
            credentials: Some(Credentials::new(USER, password)),
            insecure: false,
            ca_pems: vec![dst.certs().expect("tls").ca_pem.clone()],
        },
    );
    CopyOptions {
        jobs: 4,
        source_registries: s,
        destination_registries: d,
        retry: berth_client::RetryPolicy {
            attempts: 4,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
        },
        ..Default::default()
    }
}

fn pair(
    src: &Distribution,
    dst: &Distribution,
    prefix: &str,
    r: &FixtureRef,
) -> (Endpoint, Endpoint) {
    let s = Reference::parse(&format!("{}/library/{}:{}", src.host(), r.name, r.tag)).unwrap();
    let d = Reference::parse(&format!("{}/{prefix}/{}:{}", dst.host(), r.name, r.tag)).unwrap();
    (Endpoint::Registry(s), Endpoint::Registry(d))
}

/// Every manifest digest of `r` at `repo` (a `docker://HOST/REPO` without tag), by skopeo.
fn assert_digests_at(dst: &Distribution, repo: &str, r: &FixtureRef) {
    let o = SkopeoOpts::for_registry(dst);
    let raw = skopeo::inspect_raw(&format!("{repo}:{}", r.tag), &o);
    assert_eq!(sha256_digest(&raw), r.digest, "{repo}:{}", r.tag);
    for d in r.manifest_digests() {
        let raw = skopeo::inspect_raw(&format!("{repo}@{d}"), &o);
        assert_eq!(sha256_digest(&raw), d, "{repo}@{d}");
    }
}

fn distinct_blobs(f: &Fixture) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for r in &f.refs {
        for im in &r.manifests {
            m.insert(im.config.digest.clone(), im.config.size);
            for l in &im.layers {
                m.insert(l.digest.clone(), l.size);
            }
        }
    }
    m
}

fn dst_client(dst: &Distribution, password: &str) -> Client {
    let mut d = RegistryConfigs::new();
    d.insert(
        &dst.host(),
        RegistryConfig {
            credentials: Some(Credentials::new(USER, password)),
            insecure: false,
            ca_pems: vec![dst.certs().unwrap().ca_pem.clone()],
        },
    );
    Client::new(d).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_set_keeps_every_digest_moves_shared_blobs_once_and_reruns_as_present() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = images::build_set(dir.path());
    let src = source_with(&fixture);
    let dst = Distribution::tls_htpasswd(USER, PASS);
    let pairs: Vec<_> = fixture
        .refs
        .iter()
        .map(|r| pair(&src, &dst, "edge/docker.io/library", r))
        .collect();

    let events: Arc<Mutex<Vec<Event>>> = Arc::default();
    let ev = events.clone();
    let sink: EventSink = Arc::new(move |e| ev.lock().unwrap().push(e));
    let report = copy_images(pairs.clone(), opts(&src, &dst, PASS), Some(sink)).await;
    for i in &report.images {
        assert_eq!(i.status, ImageStatus::Copied, "{i:?}");
    }
    for r in &fixture.refs {
        let repo = format!("docker://{}/edge/docker.io/library/{}", dst.host(), r.name);
        assert_digests_at(&dst, &repo, r);
        let got = report
            .images
            .iter()
            .find(|i| i.target.ends_with(&format!("/{}:{}", r.name, r.tag)))
            .unwrap();
        assert_eq!(got.digest.as_deref(), Some(r.digest.as_str()));
    }
    // Shared layers cross repositories (base, app, multi): each distinct blob is uploaded
    // once; other repositories get it by mount (or find it present).
    let blobs = distinct_blobs(&fixture);
    assert_eq!(
        report.blobs.copied as usize,
        blobs.len(),
        "{:?}",
        report.blobs
    );
    assert_eq!(report.bytes, blobs.values().sum::<u64>());
    assert!(report.blobs.mounted > 0, "{:?}", report.blobs);
    let ev = events.lock().unwrap().clone();
    let copied_events = ev
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::BlobDone {
                    outcome: BlobOutcome::Copied,
                    ..
                }
            )
        })
        .count();
    assert_eq!(copied_events, blobs.len());
    let progress: u64 = ev
        .iter()
        .map(|e| match e {
            Event::BlobProgress { bytes, .. } => *bytes,
            _ => 0,
        })
        .sum();
    assert_eq!(progress, report.bytes);
    assert_eq!(
        ev.iter()
            .filter(|e| matches!(e, Event::ImageDone { .. }))
            .count(),
        pairs.len()
    );

    let again = copy_images(pairs.clone(), opts(&src, &dst, PASS), None).await;
    for i in &again.images {
        assert_eq!(i.status, ImageStatus::Present, "{i:?}");
    }
    assert_eq!(again.bytes, 0);
    assert_eq!(again.blobs.copied + again.blobs.mounted, 0);
    let json = serde_json::to_value(&again).unwrap();
    assert_eq!(json["images"][0]["status"], "present");
    assert!(json["blobs"]["copied"].is_u64() && json["seconds"].is_f64());

    let v = verify(pairs.clone(), &opts(&src, &dst, PASS), true).await;
    assert!(v.iter().all(|r| r.status == VerifyStatus::Present), "{v:?}");
    assert!(
        v.iter().all(|r| r.compared && r.expected == r.found),
        "{v:?}"
    );

    // A tag replaced at the target (base:2 now points to base:1's manifest) is `differs`,
    // with both digests; the other images are untouched.
    let (b1, b2) = (fixture.get("base", "1"), fixture.get("base", "2"));
    let reg = dst_client(&dst, PASS).registry(&dst.host());
    let m1 = reg
        .get_manifest("edge/docker.io/library/base", &b1.digest, MANIFEST_ACCEPT)
        .await
        .unwrap();
    reg.put_manifest(
        "edge/docker.io/library/base",
        &b2.tag,
        m1.bytes.clone(),
        &m1.media_type,
    )
    .await
    .unwrap();
    let b2_pair = pair(&src, &dst, "edge/docker.io/library", b2);
    let v = verify(vec![b2_pair.clone()], &opts(&src, &dst, PASS), false).await;
    assert_eq!(v[0].status, VerifyStatus::Differs, "{v:?}");
    assert_eq!(
        v[0].expected.as_ref().map(|d| d.to_string()),
        Some(b2.digest.clone())
    );
    assert_eq!(
        v[0].found.as_ref().map(|d| d.to_string()),
        Some(b1.digest.clone())
    );
    // A source that cannot be read: not compared, and said why; the target alone looks fine.
    let mut no_src = opts(&src, &dst, PASS);
    no_src.source_registries = RegistryConfigs::new();
    let v = verify(vec![b2_pair.clone()], &no_src, false).await;
    assert!(!v[0].compared && v[0].source_error.is_some(), "{v:?}");
    assert_eq!(v[0].status, VerifyStatus::Present, "{v:?}");
    // mirror puts it right
    let fixed = copy_images(vec![b2_pair.clone()], opts(&src, &dst, PASS), None).await;
    assert_eq!(fixed.images[0].status, ImageStatus::Copied, "{fixed:?}");
    let v = verify(vec![b2_pair], &opts(&src, &dst, PASS), false).await;
    assert_eq!(v[0].status, VerifyStatus::Present, "{v:?}");

    // A missing child manifest / blob is found by verify.
    let multi = fixture.get("multi", "1");
    let client = dst_client(&dst, PASS);
    let repo_dir = dst
        .data_dir()
        .join("docker/registry/v2/repositories/edge/docker.io/library/multi/_manifests/revisions/sha256")
        .join(multi.manifests[1].manifest.digest.trim_start_matches("sha256:"));
    std::fs::remove_dir_all(&repo_dir).unwrap();
    let reg = client.registry(&dst.host());
    assert!(
        reg.head_manifest(
            "edge/docker.io/library/multi",
            &multi.manifests[1].manifest.digest
        )
        .await
        .unwrap()
        .is_none()
    );
    let multi_pair = pair(&src, &dst, "edge/docker.io/library", multi);
    let v = verify(vec![multi_pair.clone()], &opts(&src, &dst, PASS), false).await;
    assert_eq!(v[0].status, VerifyStatus::Incomplete, "{v:?}");
    assert!(
        v[0].missing
            .iter()
            .any(|m| m.contains(&multi.manifests[1].manifest.digest)),
        "{v:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_names_the_registry_and_never_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = images::build_set(dir.path());
    let src = source_with(&fixture);
    let dst = Distribution::tls_htpasswd(USER, PASS);
    let wrong = "Wr0ng-Secret-Xyz";
    let pairs = vec![pair(&src, &dst, "edge", fixture.get("base", "1"))];
    let report = copy_images(pairs, opts(&src, &dst, wrong), None).await;
    let img = &report.images[0];
    assert_eq!(img.status, ImageStatus::Failed);
    let err = img.error.clone().unwrap();
    assert!(err.contains(&dst.host()), "{err}");
    assert!(err.contains("rejected") && err.contains(USER), "{err}");
    assert!(!err.contains(wrong), "{err}");
    let json = serde_json::to_string(&report).unwrap();
    assert!(!json.contains(wrong));
    // The client's ping says the same.
    let e = dst_client(&dst, wrong)
        .registry(&dst.host())
        .ping()
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains(&dst.host()) && !format!("{e} {e:?}").contains(wrong),
        "{e}"
    );
    // And without a trusted CA, a TLS error that says what to do.
    let e = Client::new(RegistryConfigs::new())
        .unwrap()
        .registry(&dst.host())
        .ping()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&dst.host())
            && e.contains("--src-cert-dir")
            && e.contains("registries[].certificates")
            && e.contains("--edge-ca")
            && e.contains("insecure"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oci_layout_round_trip_keeps_digests() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = images::build_set(dir.path());
    let src = source_with(&fixture);
    let dst = Distribution::tls_htpasswd(USER, PASS);
    let out = tempfile::tempdir().unwrap();
    let layout = out.path().join("layout");
    let o = opts(&src, &dst, PASS);

    let to_layout: Vec<_> = fixture
        .refs
        .iter()
        .map(|r| {
            let (s, _) = pair(&src, &dst, "x", r);
            (
                s,
                Endpoint::Layout {
                    dir: layout.clone(),
                    reference: format!("{}_{}", r.name, r.tag),
                },
            )
        })
        .collect();
    let rep = copy_images(to_layout.clone(), o.clone(), None).await;
    assert!(
        rep.images.iter().all(|i| i.status == ImageStatus::Copied),
        "{rep:?}"
    );
    // skopeo reads the layout we wrote (OCI-typed refs; skopeo's oci: skips Docker types).
    for r in fixture.refs.iter().filter(|r| !r.kind.is_docker()) {
        let raw = skopeo::inspect_raw(
            &format!("oci:{}:{}_{}", layout.display(), r.name, r.tag),
            &SkopeoOpts::insecure(),
        );
        assert_eq!(sha256_digest(&raw), r.digest);
    }
    // No temp files left, every blob named by its digest.
    for e in std::fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        assert!(!name.starts_with('.'), "{name}");
        let bytes = std::fs::read(e.path()).unwrap();
        assert_eq!(sha256_digest(&bytes), format!("sha256:{name}"));
    }
    let again = copy_images(to_layout, o.clone(), None).await;
    assert!(
        again
            .images
            .iter()
            .all(|i| i.status == ImageStatus::Present),
        "{again:?}"
    );

    let from_layout: Vec<_> = fixture
        .refs
        .iter()
        .map(|r| {
            let (_, d) = pair(&src, &dst, "from-layout", r);
            (
                Endpoint::Layout {
                    dir: layout.clone(),
                    reference: format!("{}_{}", r.name, r.tag),
                },
                d,
            )
        })
        .collect();
    let rep = copy_images(from_layout.clone(), o.clone(), None).await;
    assert!(
        rep.images.iter().all(|i| i.status == ImageStatus::Copied),
        "{rep:?}"
    );
    for r in &fixture.refs {
        assert_digests_at(
            &dst,
            &format!("docker://{}/from-layout/{}", dst.host(), r.name),
            r,
        );
    }
    let v = verify(from_layout, &o, true).await;
    assert!(v.iter().all(|r| r.status == VerifyStatus::Present), "{v:?}");
}

/// Peak resident memory of this process, from /proc.
fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// `big_` in the name: filter it out with `--skip big_` when in a hurry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_layer_of_210_mib_into_tls_auth_registry() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = images::build_big(dir.path(), 210);
    let src = source_with(&fixture);
    let dst = Distribution::tls_htpasswd(USER, PASS);
    let r = fixture.get("big", "1");
    let t = Instant::now();
    let rep = copy_images(
        vec![pair(&src, &dst, "edge/big", r)],
        opts(&src, &dst, PASS),
        None,
    )
    .await;
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(rep.images[0].status, ImageStatus::Copied, "{rep:?}");
    assert_digests_at(&dst, &format!("docker://{}/edge/big/big", dst.host()), r);
    let mb = rep.bytes as f64 / 1e6;
    eprintln!(
        "big: {mb:.1} MB in {secs:.2} s = {:.0} MB/s into TLS+htpasswd Distribution; test process VmHWM {} MiB",
        mb / secs,
        vm_hwm_kib() / 1024
    );
    assert!(rep.bytes > 200 << 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destination_stopped_mid_transfer_is_retried_or_fails_and_a_rerun_completes() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = images::build_big(dir.path(), 120);
    let src = source_with(&fixture);
    let dst = Arc::new(Mutex::new(Distribution::tls_htpasswd(USER, PASS)));
    let r = fixture.get("big", "1").clone();
    let (p, o) = {
        let d = dst.lock().unwrap();
        (pair(&src, &d, "edge/big", &r), opts(&src, &d, PASS))
    };
    let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let st = started.clone();
    let sink: EventSink = Arc::new(move |e| {
        if matches!(e, Event::BlobProgress { .. }) {
            st.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let job = tokio::spawn(copy_images(vec![p.clone()], o.clone(), Some(sink)));
    while !started.load(std::sync::atomic::Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    let d2 = dst.clone();
    tokio::task::spawn_blocking(move || {
        d2.lock().unwrap().stop();
        std::thread::sleep(Duration::from_millis(800));
        d2.lock().unwrap().start();
    })
    .await
    .unwrap();
    let first = job.await.unwrap();
    eprintln!("interrupted run: {:?}", first.images[0]);
    assert_ne!(first.images[0].status, ImageStatus::Present);
    let second = copy_images(vec![p.clone()], o.clone(), None).await;
    assert!(
        matches!(
            second.images[0].status,
            ImageStatus::Copied | ImageStatus::Present
        ),
        "{second:?}"
    );
    {
        let d = dst.lock().unwrap();
        assert_digests_at(&d, &format!("docker://{}/edge/big/big", d.host()), &r);
    }
    let v = verify(vec![p], &o, true).await;
    assert_eq!(v[0].status, VerifyStatus::Present, "{v:?}");
}

type Answer = Box<
    dyn Fn(&axum::http::Method, &axum::http::Uri) -> Option<axum::response::Response> + Send + Sync,
>;
type Mutate = Box<dyn Fn(&axum::http::Method, &axum::http::Uri, &mut Vec<u8>) + Send + Sync>;

/// A pass-through proxy in front of a real registry: `answer` may answer a request itself,
/// `mutate` may change a response body on its way back.
async fn proxy(upstream: String, answer: Answer, mutate: Mutate) -> u16 {
    use axum::body::Body;
    use axum::http::{HeaderMap, Method, Uri};
    use axum::response::{IntoResponse, Response};
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (answer, mutate) = (Arc::new(answer), Arc::new(mutate));
    let handler = move |method: Method, uri: Uri, headers: HeaderMap, body: Body| {
        let (http, upstream) = (http.clone(), upstream.clone());
        let (answer, mutate) = (answer.clone(), mutate.clone());
        async move {
            if let Some(r) = answer(&method, &uri) {
                return r;
            }
            let body = axum::body::to_bytes(body, 64 << 20).await.unwrap();
            let mut req = http
                .request(method.clone(), format!("{upstream}{uri}"))
                .body(body);
            for (k, v) in &headers {
                if k != "host" {
                    req = req.header(k, v);
                }
            }
            let resp = req.send().await.unwrap();
            let mut out = Response::builder().status(resp.status().as_u16());
            for (k, v) in resp.headers() {
                out = out.header(k, v);
            }
            let mut bytes = resp.bytes().await.unwrap().to_vec();
            mutate(&method, &uri, &mut bytes);
            out.body(Body::from(bytes)).unwrap().into_response()
        }
    };
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        axum::serve(l, axum::Router::new().fallback(handler))
            .await
            .unwrap()
    });
    port
}

/// A proxy in front of a real registry that flips one byte of one blob.
async fn corrupting_proxy(upstream: String, victim: String) -> u16 {
    let suffix = format!("/blobs/{victim}");
    proxy(
        upstream,
        Box::new(|_, _| None),
        Box::new(move |method, uri, bytes| {
            if method == axum::http::Method::GET
                && uri.path().ends_with(&suffix)
                && !bytes.is_empty()
            {
                let mid = bytes.len() / 2;
                bytes[mid] ^= 0x01;
            }
        }),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_blob_fails_the_image_and_leaves_nothing_at_the_destination() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = images::build_set(dir.path());
    let src = source_with(&fixture);
    let dst = Distribution::tls_htpasswd(USER, PASS);
    let app = fixture.get("app", "1");
    let base = fixture.get("base", "1");
    // The app layer (the last one) is corrupted in flight; base:1 does not use it.
    let victim = app.manifests[0].layers.last().unwrap().digest.clone();
    let port = corrupting_proxy(src.url(), victim.clone()).await;
    let proxy = format!("127.0.0.1:{port}");
    let mut o = opts(&src, &dst, PASS);
    o.source_registries.insert(
        &proxy,
        RegistryConfig {
            insecure: true,
            ..Default::default()
        },
    );
    o.keep_going = true;
    let ep = |r: &FixtureRef| {
        (
            Endpoint::Registry(
                Reference::parse(&format!("{proxy}/library/{}:{}", r.name, r.tag)).unwrap(),
            ),
            Endpoint::Registry(
                Reference::parse(&format!("{}/edge/{}:{}", dst.host(), r.name, r.tag)).unwrap(),
            ),
        )
    };
    let rep = copy_images(vec![ep(app), ep(base)], o, None).await;
    let a = &rep.images[0];
    assert_eq!(a.status, ImageStatus::Failed, "{rep:?}");
    let err = a.error.clone().unwrap();
    assert!(err.contains(&victim) && err.contains("corrupt"), "{err}");
    // keep_going: the other image still made it.
    assert_eq!(rep.images[1].status, ImageStatus::Copied, "{rep:?}");
    let reg = dst_client(&dst, PASS).registry(&dst.host());
    let victim = Digest::parse(&victim).unwrap();
    assert_eq!(reg.head_blob("edge/app", &victim).await.unwrap(), None);
    assert!(reg.head_manifest("edge/app", "1").await.unwrap().is_none());
    // Nor anywhere in the registry's storage.
    let blob_dir = dst
        .data_dir()
        .join("docker/registry/v2/blobs/sha256")
        .join(&victim.hex()[..2])
        .join(victim.hex());
    assert!(!blob_dir.exists(), "{}", blob_dir.display());
}

/// A proxy in front of a real registry that claims (HEAD 200) to hold one blob it does not
/// have in the repository, as a registry with a cross-repository blob cache may.
async fn lying_proxy(upstream: String, victim: String, size: u64) -> u16 {
    let suffix = format!("/blobs/{victim}");
    proxy(
        upstream,
        Box::new(move |method, uri| {
            (method == axum::http::Method::HEAD && uri.path().ends_with(&suffix)).then(|| {
                axum::response::Response::builder()
                    .status(200)
                    .header("content-length", size)
                    .header("docker-content-digest", victim.clone())
                    .body(axum::body::Body::empty())
                    .unwrap()
            })
        }),
        Box::new(|_, _, _| {}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_a_registry_wrongly_claims_is_moved_when_the_manifest_push_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = images::build_set(dir.path());
    let src = source_with(&fixture);
    let dst = Distribution::plain();
    let base = fixture.get("base", "1");
    let layer = base.manifests[0].layers[0].clone();
    let port = lying_proxy(dst.url(), layer.digest.clone(), layer.size).await;
    let proxy = format!("127.0.0.1:{port}");
    let mut s = RegistryConfigs::new();
    s.insert(
        &src.host(),
        RegistryConfig {
            insecure: true,
            ..Default::default()
        },
    );
    let mut d = RegistryConfigs::new();
    d.insert(
        &proxy,
        RegistryConfig {
            insecure: true,
            ..Default::default()
        },
    );
    let o = CopyOptions {
        jobs: 2,
        source_registries: s,
        destination_registries: d,
        ..Default::default()
    };
    let pair = (
        Endpoint::Registry(Reference::parse(&format!("{}/library/base:1", src.host())).unwrap()),
        Endpoint::Registry(Reference::parse(&format!("{proxy}/edge/base:1")).unwrap()),
    );
    let rep = copy_images(vec![pair], o, None).await;
    assert_eq!(rep.images[0].status, ImageStatus::Copied, "{rep:?}");
    assert_eq!(rep.images[0].digest.as_deref(), Some(base.digest.as_str()));
    // The layer is really in the repository now (asked of the registry itself, not the proxy).
    let raw = skopeo::inspect_raw(
        &format!("docker://{}/edge/base:1", dst.host()),
        &SkopeoOpts::insecure(),
    );
    assert_eq!(sha256_digest(&raw), base.digest);
    let mut cfg = RegistryConfigs::new();
    cfg.insert(
        &dst.host(),
        RegistryConfig {
            insecure: true,
            ..Default::default()
        },
    );
    let reg = Client::new(cfg).unwrap().registry(&dst.host());
    let d = Digest::parse(&layer.digest).unwrap();
    assert_eq!(
        reg.head_blob("edge/base", &d).await.unwrap(),
        Some(layer.size)
    );
}

/// Cancelling a copy mid-blob (the source slowed to 512 KiB/s by a proxy): the upload is
/// aborted and its session cancelled at the destination, the image reported `cancelled`, no
/// manifest pushed; a copy cancelled before it starts attempts nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_copy_closes_its_upload_sessions_and_says_what_was_not_copied() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = images::build_big(dir.path(), 8);
    let src = source_with(&fixture);
    let slow = berth_testkit::Throttle::start(&src.host(), 512 << 10);
    let dst = Distribution::tls_htpasswd(USER, PASS);
    let s = Reference::parse(&format!("{}/library/big:1", slow.host())).unwrap();
    let d = Reference::parse(&format!("{}/edge/big:1", dst.host())).unwrap();
    let pairs = vec![(Endpoint::Registry(s), Endpoint::Registry(d))];
    let mut o = opts(&src, &dst, PASS);
    let insecure = RegistryConfig {
        insecure: true,
        ..Default::default()
    };
    o.source_registries.insert(&slow.host(), insecure);
    let cancel = o.cancel.clone();
    let moved = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sink: EventSink = Arc::new(move |e| {
        if let Event::BlobProgress { bytes, .. } = e {
            let before = moved.fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
            if before + bytes > 1 << 20 {
                cancel.cancel();
            }
        }
    });
    let started = Instant::now();
    let report = copy_images(pairs.clone(), o.clone(), Some(sink)).await;
    assert!(started.elapsed() < Duration::from_secs(10), "{report:?}");
    assert_eq!(
        report.images[0].status,
        ImageStatus::Cancelled,
        "{report:?}"
    );
    assert!(
        report.images[0]
            .error
            .as_deref()
            .unwrap()
            .contains("cancelled")
    );
    // The session was cancelled (DELETE); Distribution 2.8 refuses it once bytes were written.
    let log = std::fs::read_to_string(dst.log_path()).unwrap();
    assert!(
        log.contains("http.request.method=DELETE"),
        "no DELETE of the upload session"
    );
    assert!(report.to_string().contains("1 cancelled"), "{report}");
    let at = dst_client(&dst, PASS).registry(&dst.host());
    let head = at.head_manifest("edge/big", "1").await.unwrap();
    assert!(head.is_none(), "{head:?}");

    // Cancelled before it starts: nothing is read or written.
    let report = copy_images(pairs, o, None).await;
    assert_eq!(report.images[0].status, ImageStatus::Cancelled);
    assert_eq!((report.blobs.copied, report.bytes), (0, 0));
}
