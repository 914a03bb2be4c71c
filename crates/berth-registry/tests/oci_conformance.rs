//! Every case the OCI distribution-spec conformance suite makes (opencontainers/
//! distribution-spec `conformance/`, the `main` program of 2026), in process
//! (`tower::ServiceExt::oneshot`) so a regression names the request that broke: ping, the
//! empty repository, blob uploads of every kind in sha256 and sha512 (monolithic `POST`,
//! `POST` + `PUT`, chunks in and out of order with a `PATCH` or `PUT` last chunk, streamed,
//! cancelled, mounted from a repository, without one, and from one that lacks the blob), `Range`
//! reads, empty blobs, bad digests, then the suite's data sets (images, indexes, nested and
//! empty indexes, artifacts, subjects and referrers, data fields, non-distributable layers,
//! custom fields, no layers, sha512, a large manifest, a bad manifest digest) pushed, listed,
//! read with `HEAD` and `GET`, queried for referrers and deleted, and the manifest errors.
//! The suite itself runs in `conformance_suite.rs`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use berth_registry::{Config, State, router};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
const LAYER_GZ: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const EXAMPLE1: &str = "application/vnd.example.oci.conformance.v1";
const EXAMPLE2: &str = "application/vnd.example.oci.conformance.v2";
const REPO: &str = "conformance/repo1";
const REPO2: &str = "conformance/repo2";

struct Reg {
    app: Router,
    _dir: tempfile::TempDir,
}

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Resp {
    fn h(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
    fn code(&self) -> String {
        let v: Value = serde_json::from_slice(&self.body).unwrap_or(Value::Null);
        v["errors"][0]["code"].as_str().unwrap_or("").to_string()
    }
}

fn registry() -> Reg {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        data: dir.path().join("data"),
        ..Default::default()
    };
    Reg {
        app: router(State::new(cfg, false).unwrap()),
        _dir: dir,
    }
}

const ACCEPT_MANIFESTS: &[(&str, &str)] = &[("Accept", OCI_INDEX), ("Accept", OCI_MANIFEST)];

impl Reg {
    async fn call(&self, method: &str, uri: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let r = self
            .app
            .clone()
            .oneshot(b.body(Body::from(body.to_vec())).unwrap())
            .await
            .unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        let body = r.into_body().collect().await.unwrap().to_bytes().to_vec();
        Resp {
            status,
            headers,
            body,
        }
    }
    async fn get(&self, uri: &str) -> Resp {
        self.call("GET", uri, &[], b"").await
    }
    async fn head(&self, uri: &str) -> Resp {
        self.call("HEAD", uri, &[], b"").await
    }
    async fn delete(&self, uri: &str) -> Resp {
        self.call("DELETE", uri, &[], b"").await
    }

    /// `POST` to start an upload: `202` and its location.
    async fn start(&self, repo: &str) -> String {
        let r = self
            .call("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], b"")
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        assert!(!r.h("location").is_empty());
        r.h("location").to_string()
    }

    /// The suite's check after a push: `201` with the blob's digest, and its location
    /// serves the blob.
    async fn created_blob(&self, r: &Resp, digest: &str, bytes: &[u8]) {
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.h("docker-content-digest"), digest);
        let at = self.get(r.h("location")).await;
        assert_eq!(at.status, StatusCode::OK, "{}", r.h("location"));
        assert_eq!(at.body, bytes);
    }

    async fn push_post_only(&self, repo: &str, digest: &str, bytes: &[u8]) -> Resp {
        let len = bytes.len().to_string();
        self.call(
            "POST",
            &format!("/v2/{repo}/blobs/uploads/?digest={digest}"),
            &[
                ("Content-Type", "application/octet-stream"),
                ("Content-Length", &len),
            ],
            bytes,
        )
        .await
    }

    async fn push_post_put(&self, repo: &str, digest: &str, bytes: &[u8]) -> Resp {
        let loc = self.start(repo).await;
        let len = bytes.len().to_string();
        self.call(
            "PUT",
            &format!("{loc}?digest={digest}"),
            &[
                ("Content-Type", "application/octet-stream"),
                ("Content-Length", &len),
            ],
            bytes,
        )
        .await
    }

    async fn push_stream(&self, repo: &str, digest: &str, bytes: &[u8]) -> Resp {
        let loc = self.start(repo).await;
        let r = self
            .call(
                "PATCH",
                &loc,
                &[("Content-Type", "application/octet-stream")],
                bytes,
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        assert_eq!(r.h("range"), format!("0-{}", bytes.len().saturating_sub(1)));
        self.call(
            "PUT",
            &format!("{}?digest={digest}", r.h("location")),
            &[("Content-Length", "0")],
            b"",
        )
        .await
    }

    /// Three chunks with `Content-Range` (the last one `PUT` with `put_last`); with
    /// `out_of_order`, each chunk is first sent at the wrong offset (`416`, the upload's
    /// `Range` read back with `GET`, `204`).
    async fn push_chunked(
        &self,
        repo: &str,
        digest: &str,
        bytes: &[u8],
        put_last: bool,
        out_of_order: bool,
    ) -> Resp {
        let mut loc = self.start(repo).await;
        let chunk = (bytes.len() / 3 + 1).max(1024).min(bytes.len().max(1));
        let mut next = 0usize;
        while next < bytes.len() {
            let end = (next + chunk).min(bytes.len()) - 1;
            let last = end == bytes.len() - 1;
            if out_of_order {
                let bad = if next + chunk >= bytes.len() {
                    0
                } else {
                    next + chunk
                };
                if bad != next {
                    let bad_end = (bad + chunk).min(bytes.len()) - 1;
                    let range = format!("{bad}-{bad_end}");
                    // A misplaced last chunk is `PUT` when the last chunk is.
                    let (method, uri) = if put_last && bad_end == bytes.len() - 1 {
                        ("PUT", format!("{loc}?digest={digest}"))
                    } else {
                        ("PATCH", loc.clone())
                    };
                    let r = self
                        .call(
                            method,
                            &uri,
                            &[("Content-Range", &range)],
                            &bytes[bad..=bad_end],
                        )
                        .await;
                    assert_eq!(
                        r.status,
                        StatusCode::RANGE_NOT_SATISFIABLE,
                        "{method} {range}"
                    );
                    let s = self.get(&loc).await;
                    assert_eq!(s.status, StatusCode::NO_CONTENT);
                    if next > 0 {
                        assert_eq!(s.h("range"), format!("0-{}", next - 1));
                    }
                    loc = s.h("location").to_string();
                }
            }
            let range = format!("{next}-{end}");
            if put_last && last {
                return self
                    .call(
                        "PUT",
                        &format!("{loc}?digest={digest}"),
                        &[("Content-Range", &range)],
                        &bytes[next..=end],
                    )
                    .await;
            }
            let r = self
                .call(
                    "PATCH",
                    &loc,
                    &[("Content-Range", &range)],
                    &bytes[next..=end],
                )
                .await;
            assert_eq!(r.status, StatusCode::ACCEPTED, "PATCH {range}");
            assert_eq!(r.h("range"), format!("0-{end}"));
            loc = r.h("location").to_string();
            next = end + 1;
        }
        self.call(
            "PUT",
            &format!("{loc}?digest={digest}"),
            &[("Content-Length", "0")],
            b"",
        )
        .await
    }

    /// `HEAD` and `GET` of a stored blob, as the suite checks them.
    async fn blob_is_served(&self, repo: &str, digest: &str, bytes: &[u8]) {
        let uri = format!("/v2/{repo}/blobs/{digest}");
        let h = self.head(&uri).await;
        assert_eq!(h.status, StatusCode::OK, "HEAD {uri}");
        assert!(h.body.is_empty());
        assert_eq!(h.h("content-length"), bytes.len().to_string());
        assert_eq!(h.h("docker-content-digest"), digest);
        let g = self.get(&uri).await;
        assert_eq!(g.status, StatusCode::OK, "GET {uri}");
        assert_eq!(g.h("content-length"), bytes.len().to_string());
        assert_eq!(g.h("docker-content-digest"), digest);
        assert_eq!(g.body, bytes);
    }

    /// `DELETE` answers `202`, and the blob is gone at once.
    async fn blob_deleted(&self, repo: &str, digest: &str) {
        let uri = format!("/v2/{repo}/blobs/{digest}");
        assert_eq!(
            self.delete(&uri).await.status,
            StatusCode::ACCEPTED,
            "DELETE {uri}"
        );
        assert_eq!(
            self.head(&uri).await.status,
            StatusCode::NOT_FOUND,
            "HEAD {uri}"
        );
    }
}

/// Reproducible bytes that differ between calls.
fn random(n: usize) -> Vec<u8> {
    static SEED: AtomicU64 = AtomicU64::new(0x2545_f491_4f6c_dd1d);
    let mut x = SEED.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[derive(Clone, Copy, Debug)]
enum Algo {
    Sha256,
    Sha512,
}

fn digest(algo: Algo, bytes: &[u8]) -> String {
    let like = match algo {
        Algo::Sha256 => format!("sha256:{}", "0".repeat(64)),
        Algo::Sha512 => format!("sha512:{}", "0".repeat(128)),
    };
    berth_store::digest_like(bytes, &like.parse().unwrap())
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn ping_and_an_empty_repository() {
    let reg = registry();
    let r = reg.get("/v2/").await;
    assert_eq!(r.status, StatusCode::OK);
    // The tags of a repository nothing was pushed to: 404 (or an empty list).
    let r = reg.get(&format!("/v2/{REPO}/tags/list")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "NAME_UNKNOWN");
    // Referrers of an unknown subject: an empty OCI index.
    let subject = digest(Algo::Sha256, &random(32));
    let r = reg.get(&format!("/v2/{REPO}/referrers/{subject}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.h("content-type"), OCI_INDEX);
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["schemaVersion"], 2);
    assert_eq!(v["mediaType"], OCI_INDEX);
    assert_eq!(v["manifests"], json!([]));
}

async fn blob_uploads(algo: Algo) {
    let reg = registry();
    let missing = digest(algo, &random(512));
    let r = reg.get(&format!("/v2/{REPO}/blobs/{missing}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "get-missing");

    let b = random(512);
    let d = digest(algo, &b);
    let r = reg.push_post_only(REPO, &d, &b).await;
    reg.created_blob(&r, &d, &b).await;
    reg.blob_is_served(REPO, &d, &b).await;
    reg.blob_deleted(REPO, &d).await;

    let b = random(512);
    let d = digest(algo, &b);
    let r = reg.push_post_put(REPO, &d, &b).await;
    reg.created_blob(&r, &d, &b).await;
    reg.blob_is_served(REPO, &d, &b).await;
    reg.blob_deleted(REPO, &d).await;

    let b = random(512);
    let d = digest(algo, &b);
    let r = reg.push_stream(REPO, &d, &b).await;
    reg.created_blob(&r, &d, &b).await;
    reg.blob_is_served(REPO, &d, &b).await;
    reg.blob_deleted(REPO, &d).await;

    // One chunk, then three chunks: PATCHed and PUT, in order and out of order.
    for (size, put_last, out_of_order) in [
        (512, false, false),
        (1024 * 3 - 5, false, false),
        (1024 * 3 - 5, true, false),
        (1024 * 3 - 5, false, true),
        (1024 * 3 - 5, true, true),
    ] {
        let b = random(size);
        let d = digest(algo, &b);
        let r = reg.push_chunked(REPO, &d, &b, put_last, out_of_order).await;
        reg.created_blob(&r, &d, &b).await;
        reg.blob_is_served(REPO, &d, &b).await;
        reg.blob_deleted(REPO, &d).await;
    }

    // Cancelled: `204`, and the upload is gone.
    let loc = reg.start(REPO).await;
    let r = reg
        .call("DELETE", &loc, &[("Content-Length", "0")], b"")
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(reg.get(&loc).await.status, StatusCode::NOT_FOUND);

    // The well-known contents.
    for b in [&b""[..], &b"{}"[..]] {
        let d = digest(algo, b);
        let r = reg.push_post_put(REPO, &d, b).await;
        reg.created_blob(&r, &d, b).await;
        reg.blob_is_served(REPO, &d, b).await;
        reg.blob_deleted(REPO, &d).await;
    }
}

#[tokio::test]
async fn blob_uploads_of_every_kind_sha256() {
    blob_uploads(Algo::Sha256).await;
}

#[tokio::test]
async fn blob_uploads_of_every_kind_sha512() {
    blob_uploads(Algo::Sha512).await;
}

async fn mounts(algo: Algo) {
    let reg = registry();
    // From a repository that has the blob.
    let b = random(512);
    let d = digest(algo, &b);
    reg.created_blob(&reg.push_post_only(REPO2, &d, &b).await, &d, &b)
        .await;
    let r = reg
        .call(
            "POST",
            &format!("/v2/{REPO}/blobs/uploads/?mount={d}&from={REPO2}"),
            &[],
            b"",
        )
        .await;
    reg.created_blob(&r, &d, &b).await;
    reg.blob_is_served(REPO, &d, &b).await;
    reg.blob_deleted(REPO, &d).await;
    reg.blob_deleted(REPO2, &d).await;

    // Without `from`: any blob the registry holds.
    let b = random(512);
    let d = digest(algo, &b);
    reg.created_blob(&reg.push_post_only(REPO2, &d, &b).await, &d, &b)
        .await;
    let r = reg
        .call(
            "POST",
            &format!("/v2/{REPO}/blobs/uploads/?mount={d}"),
            &[],
            b"",
        )
        .await;
    reg.created_blob(&r, &d, &b).await;
    reg.blob_is_served(REPO, &d, &b).await;
    reg.blob_deleted(REPO, &d).await;
    reg.blob_deleted(REPO2, &d).await;

    // From a repository without it (and without `from`, a blob stored nowhere): an upload
    // starts instead, which a PUT completes.
    let b = random(512);
    let d = digest(algo, &b);
    for q in [format!("mount={d}&from={REPO2}"), format!("mount={d}")] {
        let r = reg
            .call("POST", &format!("/v2/{REPO}/blobs/uploads/?{q}"), &[], b"")
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{q}");
        assert!(!r.h("location").is_empty());
    }
    let r = reg
        .call(
            "POST",
            &format!("/v2/{REPO}/blobs/uploads/?mount={d}&from={REPO2}"),
            &[],
            b"",
        )
        .await;
    let put = reg
        .call("PUT", &format!("{}?digest={d}", r.h("location")), &[], &b)
        .await;
    reg.created_blob(&put, &d, &b).await;
    assert_eq!(
        reg.head(&format!("/v2/{REPO2}/blobs/{d}")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn blob_mounts_sha256() {
    mounts(Algo::Sha256).await;
}

#[tokio::test]
async fn blob_mounts_sha512() {
    mounts(Algo::Sha512).await;
}

#[tokio::test]
async fn blob_range_requests() {
    for algo in [Algo::Sha256, Algo::Sha512] {
        let reg = registry();
        let b = random(2048);
        let d = digest(algo, &b);
        reg.created_blob(&reg.push_post_only(REPO, &d, &b).await, &d, &b)
            .await;
        let uri = format!("/v2/{REPO}/blobs/{d}");
        for (range, from, to) in [
            ("bytes=500-1499", 500, 1499),
            ("bytes=500-", 500, 2047),
            ("bytes=-500", 1548, 2047),
            ("bytes=2000-5000", 2000, 2047),
        ] {
            let r = reg.call("GET", &uri, &[("Range", range)], b"").await;
            assert_eq!(r.status, StatusCode::PARTIAL_CONTENT, "{range}");
            assert_eq!(
                r.h("content-length"),
                (to - from + 1).to_string(),
                "{range}"
            );
            assert_eq!(r.h("content-range"), format!("bytes {from}-{to}/2048"));
            assert_eq!(r.body, &b[from..=to], "{range}");
        }
        for range in ["bytes=500-0", "bytes=5000-10000"] {
            let r = reg.call("GET", &uri, &[("Range", range)], b"").await;
            assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
            assert_eq!(r.h("content-range"), "bytes */2048");
        }
        reg.blob_deleted(REPO, &d).await;
    }
}

#[tokio::test]
async fn bad_digests_are_refused_by_every_upload() {
    for algo in [Algo::Sha256, Algo::Sha512] {
        let reg = registry();
        let fresh = || {
            let b = random(1024 * 3 - 5);
            let d = digest(algo, &b);
            let mut bad = b;
            bad.extend_from_slice(b"oh no");
            (d, bad)
        };
        let (d, b) = fresh();
        assert_eq!(
            reg.push_post_only(REPO, &d, &b).await.status,
            StatusCode::BAD_REQUEST
        );
        let (d, b) = fresh();
        assert_eq!(
            reg.push_post_put(REPO, &d, &b).await.status,
            StatusCode::BAD_REQUEST
        );
        let (d, b) = fresh();
        let r = reg.push_chunked(REPO, &d, &b, false, false).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.code(), "DIGEST_INVALID");
        let (d, b) = fresh();
        let r = reg.push_chunked(REPO, &d, &b, true, false).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let (d, b) = fresh();
        assert_eq!(
            reg.push_stream(REPO, &d, &b).await.status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            reg.head(&format!("/v2/{REPO}/blobs/{d}")).await.status,
            StatusCode::NOT_FOUND
        );
    }
}

/// One of the suite's data sets: blobs, manifests in push order, tags, and the referrers
/// each subject should list.
#[derive(Default)]
struct Data {
    algo: Option<Algo>,
    blobs: BTreeMap<String, Vec<u8>>,
    /// `(digest, bytes, media type, subject)`.
    manifests: Vec<(String, Vec<u8>, String, Option<String>)>,
    tags: BTreeMap<String, String>,
    referrers: BTreeMap<String, Vec<Value>>,
}

/// What varies between the suite's manifests.
#[derive(Default, Clone)]
struct Gen {
    artifact_type: Option<&'static str>,
    config_media_type: Option<&'static str>,
    layers: Option<usize>,
    layer_media_type: Option<&'static str>,
    layer_bytes: Option<&'static [u8]>,
    annotations: Option<Value>,
    subject: Option<Value>,
    tag: Option<&'static str>,
    data_field: bool,
    extra_field: bool,
    platform: Option<(&'static str, &'static str)>,
}

impl Data {
    fn algo(&self) -> Algo {
        self.algo.unwrap_or(Algo::Sha256)
    }
    fn desc(&self, media_type: &str, bytes: &[u8], data_field: bool) -> Value {
        let mut d = json!({"mediaType": media_type, "digest": digest(self.algo(), bytes), "size": bytes.len()});
        if data_field {
            use base64::Engine;
            d["data"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
        }
        d
    }
    fn blob(&mut self, media_type: &str, bytes: Vec<u8>, g: &Gen) -> Value {
        let d = self.desc(media_type, &bytes, g.data_field);
        self.blobs
            .insert(d["digest"].as_str().unwrap().into(), bytes);
        d
    }
    fn add_manifest(&mut self, mut v: Value, g: &Gen) -> Value {
        if g.extra_field {
            let r = digest(Algo::Sha256, &random(8));
            v[format!("org.example.{}", &r[7..19])] = json!(&r[19..40]);
        }
        let bytes = serde_json::to_vec(&v).unwrap();
        let mt = v["mediaType"].as_str().unwrap().to_string();
        let desc = self.desc(&mt, &bytes, g.data_field);
        let dg = desc["digest"].as_str().unwrap().to_string();
        let subject = v["subject"]["digest"].as_str().map(String::from);
        if let Some(s) = &subject {
            let at = v["artifactType"]
                .as_str()
                .or(v["config"]["mediaType"].as_str());
            let mut r = json!({"mediaType": mt, "digest": dg, "size": bytes.len()});
            if let Some(at) = at {
                r["artifactType"] = json!(at);
            }
            if !v["annotations"].is_null() {
                r["annotations"] = v["annotations"].clone();
            }
            self.referrers.entry(s.clone()).or_default().push(r);
        }
        self.manifests.push((dg.clone(), bytes, mt, subject));
        if let Some(t) = g.tag {
            self.tags.insert(t.into(), dg);
        }
        desc
    }
    /// An image: layers, a config, the manifest.
    fn image(&mut self, g: &Gen) -> Value {
        let mut layers = vec![];
        for i in 0..g.layers.unwrap_or(2) {
            let mt = g.layer_media_type.unwrap_or(LAYER_GZ);
            let bytes = match g.layer_bytes {
                Some(b) => b.to_vec(),
                None => {
                    let mut b = format!("conformance layer {i}\n").into_bytes();
                    b.extend(random(200));
                    b
                }
            };
            layers.push(self.blob(mt, bytes, g));
        }
        let config = match g.config_media_type {
            Some(mt) if mt != OCI_CONFIG => self.blob(mt, b"{}".to_vec(), g),
            _ => {
                let (os, arch) = g.platform.unwrap_or(("linux", "amd64"));
                let mut c = json!({
                    "author": "OCI Conformance Test", "os": os, "architecture": arch,
                    "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l["digest"].clone()).collect::<Vec<_>>()},
                });
                if g.extra_field {
                    c["org.example.custom"] = json!("x");
                }
                self.blob(OCI_CONFIG, serde_json::to_vec(&c).unwrap(), g)
            }
        };
        let mut m = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers});
        self.decorate(&mut m, g);
        self.add_manifest(m, g)
    }
    fn decorate(&self, m: &mut Value, g: &Gen) {
        if let Some(a) = g.artifact_type {
            m["artifactType"] = json!(a);
        }
        if let Some(a) = &g.annotations {
            m["annotations"] = a.clone();
        }
        if let Some(s) = &g.subject {
            m["subject"] = s.clone();
        }
    }
    /// An index of `children` (descriptors with platforms).
    fn index(&mut self, children: Vec<Value>, g: &Gen) -> Value {
        let mut m = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children});
        self.decorate(&mut m, g);
        self.add_manifest(m, g)
    }
    /// An index of one image per platform (amd64, arm64).
    fn index_full(&mut self, g: &Gen) -> Value {
        let mut children = vec![];
        for arch in ["amd64", "arm64"] {
            // As the suite does: the images share the index's settings (a subject too),
            // the tag goes to the index, which is made last.
            let img = Gen {
                tag: None,
                platform: Some(("linux", arch)),
                ..g.clone()
            };
            let mut d = self.image(&img);
            d["platform"] = json!({"os": "linux", "architecture": arch});
            children.push(d);
        }
        self.index(children, g)
    }
}

fn uniq_annotations() -> Value {
    json!({
        "org.opencontainers.conformance": "hello conformance test",
        format!("org.example.{}", digest(Algo::Sha256, &random(8))[7..20].to_string()): "uniq",
    })
}

/// The suite's data sets, by name.
fn data_sets() -> Vec<(&'static str, Data)> {
    let mut sets = vec![];
    let mut d = Data::default();
    d.image(&Gen {
        tag: Some("image"),
        ..Gen::default()
    });
    sets.push(("image", d));

    let mut d = Data::default();
    d.image(&Gen {
        tag: Some("image-uncompressed"),
        layer_media_type: Some(LAYER_TAR),
        ..Gen::default()
    });
    sets.push(("image-uncompressed", d));

    let mut d = Data::default();
    let large: serde_json::Map<String, Value> = (0..390)
        .map(|i| (format!("large-annotation-{i}"), json!("A".repeat(10_000))))
        .collect();
    d.image(&Gen {
        tag: Some("large-manifest"),
        annotations: Some(Value::Object(large)),
        ..Gen::default()
    });
    sets.push(("large-manifest", d));

    let mut d = Data::default();
    d.index_full(&Gen {
        tag: Some("index"),
        ..Gen::default()
    });
    sets.push(("index", d));

    let mut d = Data::default();
    let a = d.index_full(&Gen::default());
    let b = d.index_full(&Gen::default());
    d.index(
        vec![a, b],
        &Gen {
            tag: Some("index-of-index"),
            ..Gen::default()
        },
    );
    sets.push(("nested-index", d));

    let mut d = Data::default();
    d.index(
        vec![],
        &Gen {
            tag: Some("index"),
            ..Gen::default()
        },
    );
    sets.push(("empty-index", d));

    let artifact = Gen {
        artifact_type: Some(EXAMPLE1),
        config_media_type: Some(OCI_EMPTY),
        layers: Some(1),
        layer_media_type: Some(EXAMPLE1),
        ..Gen::default()
    };
    let mut d = Data::default();
    d.image(&Gen {
        tag: Some("artifact"),
        ..artifact.clone()
    });
    sets.push(("artifact", d));

    let mut d = Data::default();
    d.index_full(&Gen {
        tag: Some("artifact-index"),
        ..artifact.clone()
    });
    sets.push(("artifact-index", d));

    let mut d = Data::default();
    d.image(&Gen {
        tag: Some("artifact-without-layers"),
        layer_bytes: Some(b"{}"),
        layer_media_type: Some(OCI_EMPTY),
        ..artifact.clone()
    });
    sets.push(("artifact-without-layers", d));

    let mut d = Data::default();
    let subject = d.image(&Gen {
        tag: Some("image"),
        ..Gen::default()
    });
    d.image(&Gen {
        subject: Some(subject.clone()),
        ..Gen::default()
    });
    d.image(&Gen {
        annotations: Some(uniq_annotations()),
        subject: Some(subject.clone()),
        tag: Some("tagged-artifact1"),
        ..artifact.clone()
    });
    d.image(&Gen {
        artifact_type: Some(EXAMPLE2),
        layer_media_type: Some("application/octet-stream"),
        annotations: Some(uniq_annotations()),
        subject: Some(subject),
        tag: Some("tagged-artifact2"),
        ..artifact.clone()
    });
    sets.push(("artifacts-with-subject", d));

    let mut d = Data::default();
    let subject = d.index_full(&Gen {
        tag: Some("index"),
        ..Gen::default()
    });
    d.index_full(&Gen {
        annotations: Some(uniq_annotations()),
        subject: Some(subject),
        tag: Some("tagged-artifact"),
        ..artifact.clone()
    });
    sets.push(("index-with-subject", d));

    let mut d = Data::default();
    let absent = json!({"mediaType": OCI_MANIFEST, "size": 123, "digest": digest(Algo::Sha256, b"missing content")});
    d.image(&Gen {
        annotations: Some(uniq_annotations()),
        subject: Some(absent),
        tag: Some("tagged-artifact"),
        ..artifact.clone()
    });
    sets.push(("missing-subject", d));

    let mut d = Data::default();
    d.image(&Gen {
        tag: Some("data-field"),
        data_field: true,
        ..Gen::default()
    });
    sets.push(("data-field", d));

    // Two non-distributable layers that are never pushed, and a normal one.
    let mut d = Data::default();
    let g = Gen::default();
    let foreign = |mt: &str, size: usize| {
        let dg = digest(Algo::Sha256, &random(256));
        json!({"mediaType": mt, "digest": dg, "size": size, "urls": [format!("https://store.example.com/blobs/sha256/{}", &dg[7..])]})
    };
    let layers = vec![
        foreign(
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            123_456,
        ),
        foreign(
            "application/vnd.oci.image.layer.nondistributable.v1.tar",
            12_345,
        ),
        d.blob(LAYER_GZ, random(176), &g),
    ];
    let config = d.blob(
        OCI_CONFIG,
        br#"{"architecture":"amd64","os":"linux"}"#.to_vec(),
        &g,
    );
    let m =
        json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers});
    d.add_manifest(
        m,
        &Gen {
            tag: Some("non-distributable-image"),
            ..g
        },
    );
    sets.push(("non-distributable-layers", d));

    let mut d = Data::default();
    d.index_full(&Gen {
        tag: Some("custom-fields"),
        extra_field: true,
        ..Gen::default()
    });
    sets.push(("custom-fields", d));

    let mut d = Data::default();
    d.image(&Gen {
        tag: Some("no-layers"),
        layers: Some(0),
        ..Gen::default()
    });
    sets.push(("no-layers", d));

    // sha512 content is pushed by digest only.
    let mut d = Data {
        algo: Some(Algo::Sha512),
        ..Data::default()
    };
    d.index_full(&Gen::default());
    sets.push(("sha512", d));
    sets
}

/// The suite's run of one data set: push, list, head, pull, referrers, delete.
async fn push_list_pull_delete(reg: &Reg, name: &str, d: &Data) {
    for (dg, b) in &d.blobs {
        reg.created_blob(&reg.push_post_only(REPO, dg, b).await, dg, b)
            .await;
    }
    for (dg, b, mt, subject) in &d.manifests {
        let r = reg
            .call(
                "PUT",
                &format!("/v2/{REPO}/manifests/{dg}"),
                &[("Content-Type", mt)],
                b,
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "{name}: PUT {dg}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.h("docker-content-digest"), dg, "{name}");
        if let Some(s) = subject {
            assert_eq!(r.h("oci-subject"), s, "{name}");
        }
        let at = reg
            .call("GET", r.h("location"), ACCEPT_MANIFESTS, b"")
            .await;
        assert_eq!(at.status, StatusCode::OK, "{name}: GET {}", r.h("location"));
        assert_eq!(at.h("content-type"), mt);
        assert_eq!(at.h("content-length"), b.len().to_string());
        assert_eq!(&at.body, b);
    }
    for (tag, dg) in &d.tags {
        let (_, b, mt, _) = d.manifests.iter().find(|m| &m.0 == dg).unwrap();
        let r = reg
            .call(
                "PUT",
                &format!("/v2/{REPO}/manifests/{tag}"),
                &[("Content-Type", mt)],
                b,
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{name}: PUT {tag}");
        assert_eq!(r.h("docker-content-digest"), dg);
    }
    // Tags list, and `last`.
    let r = reg.get(&format!("/v2/{REPO}/tags/list")).await;
    assert_eq!(r.status, StatusCode::OK);
    let listed: Vec<String> =
        serde_json::from_value(serde_json::from_slice::<Value>(&r.body).unwrap()["tags"].clone())
            .unwrap();
    for t in d.tags.keys() {
        assert!(
            listed.contains(t),
            "{name}: tag {t} missing from {listed:?}"
        );
    }
    if listed.len() >= 2 {
        let mut sorted = listed.clone();
        sorted.sort();
        let half = sorted.len() / 2;
        let last = &sorted[half - 1];
        let r = reg.get(&format!("/v2/{REPO}/tags/list?last={last}")).await;
        let rest: Vec<String> = serde_json::from_value(
            serde_json::from_slice::<Value>(&r.body).unwrap()["tags"].clone(),
        )
        .unwrap();
        assert_eq!(rest, sorted[half..], "{name}: last={last}");
    }
    // HEAD and GET by tag and digest, and every blob.
    let refs: Vec<(String, &String)> = d
        .tags
        .iter()
        .map(|(t, dg)| (t.clone(), dg))
        .chain(d.manifests.iter().map(|m| (m.0.clone(), &m.0)))
        .collect();
    for (reference, dg) in refs {
        let (_, b, mt, _) = d.manifests.iter().find(|m| &m.0 == dg).unwrap();
        let uri = format!("/v2/{REPO}/manifests/{reference}");
        let h = reg.call("HEAD", &uri, ACCEPT_MANIFESTS, b"").await;
        assert_eq!(h.status, StatusCode::OK, "{name}: HEAD {uri}");
        assert!(h.body.is_empty());
        assert_eq!(h.h("content-type"), mt);
        assert_eq!(h.h("content-length"), b.len().to_string());
        assert_eq!(h.h("docker-content-digest"), dg);
        let g = reg.call("GET", &uri, ACCEPT_MANIFESTS, b"").await;
        assert_eq!(g.status, StatusCode::OK, "{name}: GET {uri}");
        assert_eq!(g.h("content-type"), mt);
        assert_eq!(g.h("docker-content-digest"), dg);
        assert_eq!(&g.body, b);
    }
    for (dg, b) in &d.blobs {
        reg.blob_is_served(REPO, dg, b).await;
    }
    // Referrers, whole and filtered by each artifact type.
    for (subject, want) in &d.referrers {
        let r = reg.get(&format!("/v2/{REPO}/referrers/{subject}")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.h("content-type"), OCI_INDEX);
        let got: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(got["schemaVersion"], 2);
        assert_eq!(got["mediaType"], OCI_INDEX);
        let listed = got["manifests"].as_array().unwrap();
        for w in want {
            assert!(
                listed.iter().any(|l| same_referrer(l, w)),
                "{name}: {w} not in {listed:?}"
            );
        }
        let types: std::collections::BTreeSet<&str> = want
            .iter()
            .filter_map(|w| w["artifactType"].as_str())
            .collect();
        for at in types {
            let r = reg
                .get(&format!(
                    "/v2/{REPO}/referrers/{subject}?artifactType={}",
                    at.replace('+', "%2B")
                ))
                .await;
            assert_eq!(r.h("oci-filters-applied"), "artifactType");
            let got: Value = serde_json::from_slice(&r.body).unwrap();
            let listed = got["manifests"].as_array().unwrap();
            assert!(
                listed.iter().all(|l| l["artifactType"] == at),
                "{name}: {at}: {listed:?}"
            );
            for w in want.iter().filter(|w| w["artifactType"] == at) {
                assert!(
                    listed.iter().any(|l| same_referrer(l, w)),
                    "{name}: {w} not in {listed:?}"
                );
            }
        }
    }
    // Delete: tags (gone at once), manifests last pushed first, blobs.
    for tag in d.tags.keys() {
        let uri = format!("/v2/{REPO}/manifests/{tag}");
        assert_eq!(
            reg.delete(&uri).await.status,
            StatusCode::ACCEPTED,
            "{name}: DELETE {uri}"
        );
        let h = reg.call("HEAD", &uri, ACCEPT_MANIFESTS, b"").await;
        assert_eq!(h.status, StatusCode::NOT_FOUND, "{name}: HEAD {uri}");
    }
    for (dg, ..) in d.manifests.iter().rev() {
        let uri = format!("/v2/{REPO}/manifests/{dg}");
        assert_eq!(
            reg.delete(&uri).await.status,
            StatusCode::ACCEPTED,
            "{name}: DELETE {uri}"
        );
        let h = reg.call("HEAD", &uri, ACCEPT_MANIFESTS, b"").await;
        assert_eq!(h.status, StatusCode::NOT_FOUND, "{name}: HEAD {uri}");
    }
    for dg in d.blobs.keys() {
        reg.blob_deleted(REPO, dg).await;
    }
}

fn same_referrer(got: &Value, want: &Value) -> bool {
    ["digest", "mediaType", "size", "artifactType"]
        .iter()
        .all(|k| got[k] == want[k])
        && want["annotations"]
            .as_object()
            .is_none_or(|a| a.iter().all(|(k, v)| got["annotations"][k] == *v))
}

#[tokio::test]
async fn every_data_set_is_pushed_listed_pulled_referred_to_and_deleted() {
    let reg = registry();
    let sets = data_sets();
    assert_eq!(sets.len(), 17);
    for (name, d) in &sets {
        push_list_pull_delete(&reg, name, d).await;
    }
}

#[tokio::test]
async fn a_manifest_whose_digest_is_not_that_of_its_bytes_is_refused() {
    let reg = registry();
    let mut d = Data::default();
    d.image(&Gen::default());
    for (dg, b) in &d.blobs {
        reg.push_post_only(REPO, dg, b).await;
    }
    let (dg, b, mt, _) = &d.manifests[0];
    let mut spaced = b.clone();
    spaced.extend_from_slice(b"  ");
    let r = reg
        .call(
            "PUT",
            &format!("/v2/{REPO}/manifests/{dg}"),
            &[("Content-Type", mt)],
            &spaced,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "DIGEST_INVALID");
    // A digest that is not one: refused on push, unknown on pull.
    let r = reg
        .call(
            "PUT",
            &format!("/v2/{REPO}/manifests/sha256:baddigeststring"),
            &[("Content-Type", mt)],
            b,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = reg
        .call(
            "GET",
            &format!("/v2/{REPO}/manifests/sha256:baddigeststring"),
            ACCEPT_MANIFESTS,
            b"",
        )
        .await;
    assert!(
        matches!(r.status, StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST),
        "{}",
        r.status
    );
}

#[tokio::test]
async fn missing_manifests_and_names_that_are_no_tag_are_unknown() {
    let reg = registry();
    let missing = digest(Algo::Sha256, &random(1024));
    for reference in [
        missing.as_str(),
        "missing-k7b2x9q4m1",
        ".INVALID_MANIFEST_NAME",
        "-x",
        &"a".repeat(129),
    ] {
        let uri = format!("/v2/{REPO}/manifests/{reference}");
        for method in ["GET", "HEAD", "DELETE"] {
            let r = reg.call(method, &uri, ACCEPT_MANIFESTS, b"").await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {reference}");
            if method != "HEAD" {
                assert_eq!(r.code(), "MANIFEST_UNKNOWN", "{method} {reference}");
            }
        }
    }
    // A push to a name that is no tag is the client's mistake.
    let r = reg
        .call(
            "PUT",
            &format!("/v2/{REPO}/manifests/.INVALID_MANIFEST_NAME"),
            &[("Content-Type", OCI_MANIFEST)],
            b"{}",
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "TAG_INVALID");
}
