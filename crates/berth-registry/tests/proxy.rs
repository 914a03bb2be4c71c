//! Pull-through caching against real peers: CNCF Distribution (TLS + htpasswd) behind
//! berth, skopeo pulling through path addressing, the upstream stopped afterwards; a
//! counting reverse proxy in front of Distribution for single-flight blob fetches and
//! containerd's `?ns=` addressing.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use berth_registry::{Config, ProxyConfig, Upstream};
use berth_testkit::Distribution;
use berth_testkit::images::{self, FixtureRef};
use berth_testkit::sha256_digest;
use berth_testkit::skopeo::{self, SkopeoOpts};
use support::Running;

/// `berth serve` in this process (4 runtime threads).
fn start(cfg: Config) -> Running {
    support::start(cfg, 4)
}

fn config(data: PathBuf, upstream: Upstream, tag_ttl_seconds: u64) -> Config {
    Config {
        listen: "127.0.0.1:0".into(),
        data,
        proxy: ProxyConfig {
            upstreams: vec![upstream],
            tag_ttl_seconds,
            ..ProxyConfig::default()
        },
        ..Default::default()
    }
}

/// Pulls `reference` (tag or digest) out of berth with skopeo into a fresh directory.
fn pull(src: &str, r: &FixtureRef, out: &Path) {
    std::fs::create_dir_all(out).unwrap();
    let dst = if r.kind.is_docker() {
        format!("dir:{}", out.display())
    } else {
        skopeo::oci_ref(out, "x")
    };
    skopeo::copy(
        src,
        &SkopeoOpts::insecure(),
        &dst,
        &SkopeoOpts::insecure(),
        &[],
    );
}

fn check(berth: &str, r: &FixtureRef, tmp: &Path, round: &str) {
    let o = SkopeoOpts::insecure();
    let by_tag = format!("{berth}/{}:{}", r.name, r.tag);
    let by_digest = format!("{berth}/{}@{}", r.name, r.digest);
    pull(&by_tag, r, &tmp.join(round).join(&r.ref_name).join("tag"));
    pull(
        &by_digest,
        r,
        &tmp.join(round).join(&r.ref_name).join("digest"),
    );
    assert_eq!(
        sha256_digest(&skopeo::inspect_raw(&by_tag, &o)),
        r.digest,
        "{round}: {by_tag}"
    );
    assert_eq!(
        sha256_digest(&skopeo::inspect_raw(&by_digest, &o)),
        r.digest,
        "{round}: {by_digest}"
    );
    for m in &r.manifests {
        let by_child = format!("{berth}/{}@{}", r.name, m.manifest.digest);
        assert_eq!(
            sha256_digest(&skopeo::inspect_raw(&by_child, &o)),
            m.manifest.digest
        );
    }
}

#[test]
fn pull_through_tls_htpasswd_upstream_then_upstream_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = images::build_set(&tmp.path().join("fixture"));
    let mut dst = Distribution::tls_htpasswd("up", "Upstream-Pw-1");
    images::push_with_skopeo(&fixture, &dst, "lib");
    let (user, pass) = dst.credentials().unwrap();
    let reg = start(config(
        tmp.path().join("data"),
        Upstream {
            registry: dst.host(),
            username: Some(user),
            password: Some(pass),
            ca_file: Some(dst.certs().unwrap().ca_path.clone()),
            ..Upstream::default()
        },
        // Every tag pull goes upstream, so the fallback to the cached tag is exercised.
        0,
    ));
    let hp = dst.host().replace(':', "_");
    let berth = format!(
        "docker://127.0.0.1:{}/spectro-images/{hp}/lib",
        reg.addr.port()
    );
    for r in &fixture.refs {
        check(&berth, r, tmp.path(), "online");
    }
    dst.stop();
    for r in &fixture.refs {
        check(&berth, r, tmp.path(), "offline");
    }
    // Something never pulled is not there.
    let missing = format!("{berth}/never:1");
    let out = std::process::Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", &missing])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// A reverse proxy that counts blob GETs and delays them (so concurrent misses overlap).
async fn counting_proxy(upstream: String, blob_gets: Arc<AtomicUsize>) -> SocketAddr {
    use axum::body::Body;
    use axum::extract::Request;
    use axum::response::Response;
    let client = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |req: Request| {
        let client = client.clone();
        let upstream = upstream.clone();
        let blob_gets = blob_gets.clone();
        async move {
            let pq = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default();
            let is_blob_get =
                req.method() == axum::http::Method::GET && pq.contains("/blobs/sha256:");
            if is_blob_get {
                blob_gets.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).unwrap();
            let mut rb = client.request(method, format!("{upstream}{pq}"));
            for (k, v) in req.headers() {
                if k != "host" {
                    rb = rb.header(k.as_str(), v.as_bytes());
                }
            }
            let body = axum::body::to_bytes(req.into_body(), usize::MAX)
                .await
                .unwrap();
            let resp = rb.body(body.to_vec()).send().await.unwrap();
            let mut out = Response::builder().status(resp.status().as_u16());
            for (k, v) in resp.headers() {
                out = out.header(k.as_str(), v.as_bytes());
            }
            out.body(Body::from(resp.bytes().await.unwrap())).unwrap()
        }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    addr
}

async fn push_blob(c: &reqwest::Client, base: &str, repo: &str, data: &[u8]) -> String {
    let d = sha256_digest(data);
    let r = c
        .post(format!("{base}/v2/{repo}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let loc = if loc.starts_with("http") {
        loc
    } else {
        format!("{base}{loc}")
    };
    let sep = if loc.contains('?') { '&' } else { '?' };
    let r = c
        .put(format!("{loc}{sep}digest={d}"))
        .header("content-type", "application/octet-stream")
        .body(data.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    d
}

#[test]
fn concurrent_blob_misses_fetch_once_and_ns_addressing() {
    let tmp = tempfile::tempdir().unwrap();
    let dst = Distribution::plain();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let blob_gets = Arc::new(AtomicUsize::new(0));
    let c = reqwest::Client::new();
    let (proxy, layer, cfgd, man, man_d) = rt.block_on(async {
        let proxy = counting_proxy(dst.url(), blob_gets.clone()).await;
        let base = dst.url();
        let data: Vec<u8> = (0..4usize << 20).map(|i| (i * 7 % 253) as u8).collect();
        let layer = push_blob(&c, &base, "test/app", &data).await;
        let cfg = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let cfgd = push_blob(&c, &base, "test/app", cfg).await;
        let man = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfgd, "size": cfg.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": data.len()}],
        })
        .to_string();
        let r = c
            .put(format!("{base}/v2/test/app/manifests/v1"))
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(man.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let man_d = sha256_digest(man.as_bytes());
        (proxy, layer, cfgd, man, man_d)
    });
    let up = format!("127.0.0.1:{}", proxy.port());
    let reg = start(config(
        tmp.path().join("data"),
        Upstream {
            registry: up.clone(),
            insecure: true,
            ..Upstream::default()
        },
        300,
    ));
    let berth = format!("http://{}", reg.addr);
    let hp = up.replace(':', "_");
    rt.block_on(async {
        // 50 concurrent GETs of an uncached blob: one upstream fetch.
        let url = format!("{berth}/v2/spectro-images/{hp}/test/app/blobs/{layer}");
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let c = c.clone();
                let url = url.clone();
                tokio::spawn(async move {
                    let r = c.get(&url).send().await.unwrap();
                    assert_eq!(r.status(), 200);
                    sha256_digest(&r.bytes().await.unwrap())
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), layer);
        }
        assert_eq!(blob_gets.load(Ordering::SeqCst), 1, "upstream blob GETs");

        // `?ns=`: the repository is the upstream's, cached under the same local name.
        let r = c
            .get(format!("{berth}/v2/test/app/manifests/v1?ns={up}"))
            .header("accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["docker-content-digest"].to_str().unwrap(),
            man_d
        );
        assert_eq!(r.text().await.unwrap(), man);
        let r = c
            .get(format!("{berth}/v2/test/app/blobs/{cfgd}?ns={up}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(sha256_digest(&r.bytes().await.unwrap()), cfgd);
        assert_eq!(blob_gets.load(Ordering::SeqCst), 2);
        // Held digests never go upstream again, through either addressing.
        let r = c
            .head(format!("{berth}/v2/test/app/blobs/{layer}?ns={up}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = c
            .get(format!(
                "{berth}/v2/spectro-images/{hp}/test/app/manifests/{man_d}"
            ))
            .header("accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        // The path form wins over `?ns=`: containerd adds `?ns=<the host the pull named>`
        // to a mirror written as `https://berth/v2/spectro-images/<host_port>`.
        let r = c
            .get(format!(
                "{berth}/v2/spectro-images/{hp}/test/app/manifests/v1?ns=quay.io"
            ))
            .header("accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), man);
        assert_eq!(blob_gets.load(Ordering::SeqCst), 2);
        // Without `?ns=` the plain local repository is not the cache.
        let r = c
            .get(format!("{berth}/v2/test/app/manifests/v1"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        let m = c
            .get(format!("{berth}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let val = |n: &str| -> u64 {
            m.lines()
                .find_map(|l| l.strip_prefix(&format!("{n} ")))
                .unwrap()
                .parse()
                .unwrap()
        };
        assert_eq!(val("berth_cache_misses_total"), 3, "{m}");
        assert!(val("berth_cache_hits_total") >= 51, "{m}");
        assert_eq!(val("berth_upstream_errors_total"), 0, "{m}");
    });
    drop(dst);
}

/// An upstream that serves the wrong bytes for every blob: the client never receives a
/// complete body, nothing is stored, and the failure is counted.
#[test]
fn damaged_upstream_blob_is_not_served_whole_nor_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let gets = Arc::new(AtomicUsize::new(0));
    let up = rt.block_on(async {
        let gets = gets.clone();
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let gets = gets.clone();
            async move {
                if req.uri().path().contains("/blobs/") {
                    gets.fetch_add(1, Ordering::SeqCst);
                    let data: Vec<u8> = (0..(1usize << 20)).map(|i| (i % 13) as u8).collect();
                    return axum::response::Response::builder()
                        .status(200)
                        .header("content-length", data.len().to_string())
                        .body(axum::body::Body::from(data))
                        .unwrap();
                }
                axum::response::Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from("{}"))
                    .unwrap()
            }
        });
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        addr
    });
    let up = format!("127.0.0.1:{}", up.port());
    let reg = start(config(
        tmp.path().join("data"),
        Upstream {
            registry: up.clone(),
            insecure: true,
            ..Upstream::default()
        },
        300,
    ));
    let wanted = sha256_digest(b"the real content");
    let url = format!("http://{}/v2/x/y/blobs/{wanted}?ns={up}", reg.addr);
    rt.block_on(async {
        let c = reqwest::Client::new();
        for round in 1..=2 {
            let complete = match c.get(&url).send().await {
                Ok(r) if r.status() == 200 => r.bytes().await.is_ok(),
                _ => false,
            };
            assert!(!complete, "round {round}: a damaged blob was served whole");
            assert_eq!(gets.load(Ordering::SeqCst), round, "not cached");
        }
        let m = c
            .get(format!("http://{}/metrics", reg.addr))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(m.contains("berth_upstream_errors_total 2"), "{m}");
    });
}

/// `Cache-Control: only-if-cached` (what mirror and verify send to their targets): berth
/// serve answers from its store only, so content it would fetch from upstream is "not
/// found" (and nothing is fetched), content it stores is found, and a push makes it found.
#[test]
fn only_if_cached_answers_from_the_store_only() {
    let tmp = tempfile::tempdir().unwrap();
    let up_reg = Distribution::plain();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let blob_gets = Arc::new(AtomicUsize::new(0));
    let c = reqwest::Client::new();
    let (proxy, layer, cfgd, man) = rt.block_on(async {
        let proxy = counting_proxy(up_reg.url(), blob_gets.clone()).await;
        let base = up_reg.url();
        let layer = push_blob(&c, &base, "test/app", b"a layer of real bytes").await;
        let cfg = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let cfgd = push_blob(&c, &base, "test/app", cfg).await;
        let man = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfgd, "size": cfg.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": 21}],
        })
        .to_string();
        let r = c
            .put(format!("{base}/v2/test/app/manifests/v1"))
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(man.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        (proxy, layer, cfgd, man)
    });
    let up = format!("127.0.0.1:{}", proxy.port());
    let reg = start(config(
        tmp.path().join("data"),
        Upstream {
            registry: up.clone(),
            insecure: true,
            ..Upstream::default()
        },
        300,
    ));
    let repo = format!("spectro-images/{}/test/app", up.replace(':', "_"));
    let base = format!("http://{}/v2/{repo}", reg.addr);
    rt.block_on(async {
        let head = |path: String, local: bool| {
            let mut rb = c
                .head(format!("{base}/{path}"))
                .header("accept", "application/vnd.oci.image.manifest.v1+json");
            if local {
                rb = rb.header("cache-control", "max-age=0, only-if-cached");
            }
            async move { rb.send().await.unwrap().status().as_u16() }
        };
        let blob = format!("blobs/{layer}");
        // Not stored: not found, and upstream is not asked for it.
        assert_eq!(head("manifests/v1".into(), true).await, 404);
        assert_eq!(head(blob.clone(), true).await, 404);
        assert_eq!(blob_gets.load(Ordering::SeqCst), 0);
        // Without the directive the pull-through answers (and stores the manifest).
        assert_eq!(head("manifests/v1".into(), false).await, 200);
        // The manifest is stored now, its blobs not: not servable offline, so not "stored".
        assert_eq!(head("manifests/v1".into(), true).await, 404);
        assert_eq!(head(blob.clone(), false).await, 200);
        // The HEAD through the pull-through fetched and stored the blob; with the config
        // too, the manifest is whole.
        assert_eq!(head(blob, true).await, 200);
        assert_eq!(head("manifests/v1".into(), true).await, 404);
        assert_eq!(head(format!("blobs/{cfgd}"), false).await, 200);
        assert_eq!(head("manifests/v1".into(), true).await, 200);
        // A blob only a push brings: not found before, found after.
        let data = b"only ever pushed to the edge";
        let other = format!("blobs/{}", sha256_digest(data));
        assert_eq!(head(other.clone(), true).await, 404);
        push_blob(&c, &format!("http://{}", reg.addr), &repo, data).await;
        assert_eq!(head(other, true).await, 200);
        assert!(man.contains(&layer));
    });
}
