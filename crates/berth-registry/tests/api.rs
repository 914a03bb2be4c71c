//! The distribution API in-process (`tower::ServiceExt::oneshot`): edge cases of uploads,
//! manifests, names, pagination, referrers, mounts and auth.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use base64::Engine;
use berth_registry::{Config, State, router};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

struct T {
    app: Router,
    _dir: tempfile::TempDir,
    state: Arc<State>,
}

fn server(f: impl FnOnce(&mut Config, &std::path::Path)) -> T {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config {
        data: dir.path().join("data"),
        ..Default::default()
    };
    f(&mut cfg, dir.path());
    let state = State::new(cfg, false).unwrap();
    T {
        app: router(state.clone()),
        _dir: dir,
        state,
    }
}

fn plain() -> T {
    server(|_, _| {})
}

fn sha(b: &[u8]) -> String {
    berth_store::sha256(b).to_string()
}

impl T {
    async fn req(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Response<Body> {
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        self.app
            .clone()
            .oneshot(b.body(body.into()).unwrap())
            .await
            .unwrap()
    }
    async fn get(&self, uri: &str) -> Response<Body> {
        self.req("GET", uri, &[], Body::empty()).await
    }
    async fn push_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let d = sha(bytes);
        let r = self
            .req(
                "POST",
                &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
                &[],
                bytes.to_vec(),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        d
    }
    async fn push_image(&self, repo: &str, tag: &str, layer: &[u8]) -> (String, Vec<u8>) {
        let cfg = self.push_blob(repo, b"{\"architecture\":\"amd64\"}").await;
        let l = self.push_blob(repo, layer).await;
        let m = manifest(&cfg, &[&l], None);
        let r = self
            .req(
                "PUT",
                &format!("/v2/{repo}/manifests/{tag}"),
                &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
                m.clone(),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED, "{}", text(r).await);
        (sha(&m), m)
    }
}

fn manifest(config: &str, layers: &[&str], subject: Option<(&str, usize)>) -> Vec<u8> {
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 1},
        "layers": layers.iter().map(|l| json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": l, "size": 1})).collect::<Vec<_>>(),
    });
    if let Some((s, size)) = subject {
        m["subject"] = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": s, "size": size});
        m["artifactType"] = json!("application/vnd.example.sbom");
    }
    serde_json::to_vec(&m).unwrap()
}

async fn bytes(r: Response<Body>) -> Vec<u8> {
    r.into_body().collect().await.unwrap().to_bytes().to_vec()
}
async fn text(r: Response<Body>) -> String {
    String::from_utf8_lossy(&bytes(r).await).into_owned()
}
async fn code(r: Response<Body>) -> String {
    let v: Value = serde_json::from_slice(&bytes(r).await).unwrap();
    v["errors"][0]["code"].as_str().unwrap().to_string()
}
fn hdr<'a>(r: &'a Response<Body>, h: &str) -> &'a str {
    r.headers()
        .get(h)
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

#[tokio::test]
async fn base_endpoint() {
    let t = plain();
    let r = t.get("/v2/").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(hdr(&r, "docker-distribution-api-version"), "registry/2.0");
}

#[tokio::test]
async fn chunked_upload_with_content_range_and_416_out_of_order() {
    let t = plain();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let d = sha(&data);
    let r = t
        .req("POST", "/v2/team/app/blobs/uploads/", &[], Body::empty())
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let loc = hdr(&r, "location").to_string();
    assert!(loc.starts_with("/v2/team/app/blobs/uploads/"), "{loc}");
    assert_eq!(hdr(&r, "range"), "0-0");

    let r = t
        .req(
            "PATCH",
            &loc,
            &[
                ("Content-Range", "0-99999"),
                ("Content-Type", "application/octet-stream"),
            ],
            data[..100_000].to_vec(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(hdr(&r, "range"), "0-99999");

    // Out of order: a chunk starting past the end.
    let r = t
        .req(
            "PATCH",
            &loc,
            &[("Content-Range", "200000-299999")],
            data[200_000..].to_vec(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(hdr(&r, "range"), "0-99999");
    assert_eq!(code(r).await, "BLOB_UPLOAD_INVALID");

    let r = t
        .req(
            "PATCH",
            &loc,
            &[("Content-Range", "100000-199999")],
            data[100_000..200_000].to_vec(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = t.get(&loc).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(hdr(&r, "range"), "0-199999");

    // Not yet visible.
    assert_eq!(
        t.req(
            "HEAD",
            &format!("/v2/team/app/blobs/{d}"),
            &[],
            Body::empty()
        )
        .await
        .status(),
        StatusCode::NOT_FOUND
    );

    // Last chunk with the PUT.
    let r = t
        .req(
            "PUT",
            &format!("{loc}?digest={d}"),
            &[],
            data[200_000..].to_vec(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(hdr(&r, "docker-content-digest"), d);
    assert_eq!(hdr(&r, "location"), format!("/v2/team/app/blobs/{d}"));

    let r = t
        .req(
            "HEAD",
            &format!("/v2/team/app/blobs/{d}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(hdr(&r, "content-length"), "300000");
    assert_eq!(
        bytes(t.get(&format!("/v2/team/app/blobs/{d}")).await).await,
        data
    );

    // Range requests.
    let r = t
        .req(
            "GET",
            &format!("/v2/team/app/blobs/{d}"),
            &[("Range", "bytes=10-19")],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(hdr(&r, "content-range"), "bytes 10-19/300000");
    assert_eq!(bytes(r).await, &data[10..20]);
    let r = t
        .req(
            "GET",
            &format!("/v2/team/app/blobs/{d}"),
            &[("Range", "bytes=400000-")],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);

    // The session is gone after the PUT.
    assert_eq!(code(t.get(&loc).await).await, "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test]
async fn monolithic_upload_and_wrong_digest() {
    let t = plain();
    let d = t.push_blob("a", b"hello").await;
    assert_eq!(
        bytes(t.get(&format!("/v2/a/blobs/{d}")).await).await,
        b"hello"
    );

    let wrong = sha(b"something else");
    let r = t
        .req(
            "POST",
            &format!("/v2/a/blobs/uploads/?digest={wrong}"),
            &[],
            b"hello!".to_vec(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code(r).await, "DIGEST_INVALID");
    assert_eq!(
        t.get(&format!("/v2/a/blobs/{wrong}")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert!(
        t.state
            .store()
            .unwrap()
            .blob_size(&wrong.parse().unwrap())
            .is_none()
    );
    assert!(
        t.state
            .store()
            .unwrap()
            .blob_size(&sha(b"hello!").parse().unwrap())
            .is_none()
    );

    // Session upload finished with a wrong digest.
    let r = t
        .req("POST", "/v2/a/blobs/uploads/", &[], Body::empty())
        .await;
    let loc = hdr(&r, "location").to_string();
    let r = t
        .req(
            "PUT",
            &format!("{loc}?digest={wrong}"),
            &[],
            b"data".to_vec(),
        )
        .await;
    assert_eq!(code(r).await, "DIGEST_INVALID");
    let r = t
        .req(
            "PUT",
            &format!("{loc}?digest=sha256:nothex"),
            &[],
            b"data".to_vec(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND); // session already ended
    let r = t.get("/v2/a/blobs/sha256:abc").await;
    assert_eq!(code(r).await, "DIGEST_INVALID");
}

#[tokio::test]
async fn manifests_by_tag_and_digest_with_negotiation() {
    let t = plain();
    let (d, m) = t.push_image("library/app", "v1", b"layer").await;
    let r = t
        .req("GET", "/v2/library/app/manifests/v1", &[("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")], Body::empty())
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(hdr(&r, "docker-content-digest"), d);
    assert_eq!(
        hdr(&r, "content-type"),
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(bytes(r).await, m);
    let r = t
        .req(
            "HEAD",
            &format!("/v2/library/app/manifests/{d}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(hdr(&r, "content-length"), m.len().to_string());
    assert!(bytes(r).await.is_empty());
    // A client that only takes Docker lists does not get an OCI manifest.
    let r = t
        .req(
            "GET",
            "/v2/library/app/manifests/v1",
            &[(
                "Accept",
                "application/vnd.docker.distribution.manifest.list.v2+json",
            )],
            Body::empty(),
        )
        .await;
    assert_eq!(code(r).await, "MANIFEST_UNKNOWN");
    // Unknown tag / manifest in another repository.
    assert_eq!(
        code(t.get("/v2/library/app/manifests/v2").await).await,
        "MANIFEST_UNKNOWN"
    );
    assert_eq!(
        code(t.get(&format!("/v2/other/manifests/{d}")).await).await,
        "MANIFEST_UNKNOWN"
    );

    // PUT by digest checks the digest.
    let r = t
        .req(
            "PUT",
            &format!("/v2/library/app/manifests/{}", sha(b"x")),
            &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
            m.clone(),
        )
        .await;
    assert_eq!(code(r).await, "DIGEST_INVALID");
    // A manifest whose layer was never pushed.
    let cfg = t.push_blob("library/app", b"cfg2").await;
    let bad = manifest(&cfg, &[&sha(b"never pushed")], None);
    let r = t
        .req(
            "PUT",
            "/v2/library/app/manifests/bad",
            &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
            bad,
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code(r).await, "MANIFEST_BLOB_UNKNOWN");
    // Not JSON.
    let r = t
        .req(
            "PUT",
            "/v2/library/app/manifests/bad",
            &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
            b"{not json".to_vec(),
        )
        .await;
    assert_eq!(code(r).await, "MANIFEST_INVALID");

    // An index over it (Docker list type).
    let idx = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": m.len(), "platform": {"architecture": "amd64", "os": "linux"}}]
    })).unwrap();
    let r = t
        .req(
            "PUT",
            "/v2/library/app/manifests/multi",
            &[(
                "Content-Type",
                "application/vnd.docker.distribution.manifest.list.v2+json",
            )],
            idx.clone(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = t.get("/v2/library/app/manifests/multi").await;
    assert_eq!(
        hdr(&r, "content-type"),
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    assert_eq!(bytes(r).await, idx);

    // DELETE by tag removes the tag only; by digest removes the manifest and its tags.
    assert_eq!(
        t.req(
            "DELETE",
            "/v2/library/app/manifests/multi",
            &[],
            Body::empty()
        )
        .await
        .status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        t.get("/v2/library/app/manifests/multi").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.req(
            "DELETE",
            &format!("/v2/library/app/manifests/{d}"),
            &[],
            Body::empty()
        )
        .await
        .status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        t.get("/v2/library/app/manifests/v1").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.req(
            "DELETE",
            &format!("/v2/library/app/manifests/{d}"),
            &[],
            Body::empty()
        )
        .await
        .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn oversized_manifest_is_refused() {
    let t = server(|c, _| c.limits.manifest_bytes = 1000);
    let big = serde_json::to_vec(&json!({"schemaVersion": 2, "pad": "x".repeat(2000)})).unwrap();
    let r = t
        .req(
            "PUT",
            "/v2/a/manifests/v1",
            &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
            big.clone(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(code(r).await, "MANIFEST_INVALID");
    // Without a Content-Length (a stream), the limit holds too.
    let stream = futures_util::stream::iter(
        big.chunks(100)
            .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let r = t
        .req(
            "PUT",
            "/v2/a/manifests/v1",
            &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
            Body::from_stream(stream),
        )
        .await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Default limit is 4 MiB.
    assert_eq!(Config::default().limits.manifest_bytes, 4 << 20);
}

#[tokio::test]
async fn path_tricks_in_names_are_refused() {
    let t = plain();
    for path in [
        "/v2/../etc/manifests/latest",
        "/v2/a/../b/manifests/latest",
        "/v2/a/%2e%2e/b/manifests/latest",
        "/v2/%2e%2e/manifests/latest",
        "/v2/Upper/manifests/latest",
        "/v2/a//b/manifests/latest",
        "/v2/a/.hidden/blobs/uploads/",
        "/v2/_tags/manifests/x",
    ] {
        let method = if path.ends_with("uploads/") {
            "POST"
        } else {
            "GET"
        };
        let r = t.req(method, path, &[], Body::empty()).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(code(r).await, "NAME_INVALID", "{path}");
    }
    // `..` is no tag: it names no manifest (a push to it is refused).
    let r = t.get("/v2/a/manifests/..").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(code(r).await, "MANIFEST_UNKNOWN");
    let r = t
        .req("PUT", "/v2/a/manifests/..", &[], b"{}".to_vec())
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code(r).await, "TAG_INVALID");
    assert!(
        std::fs::read_dir(t.state.store().unwrap().root().join("repos"))
            .unwrap()
            .next()
            .is_none()
    );
}

#[tokio::test]
async fn tags_list_and_catalog_pagination() {
    let t = plain();
    for tag in ["v3", "v1", "latest", "v2"] {
        t.push_image("team/app", tag, b"l").await;
    }
    t.push_image("team/base", "v1", b"l").await;
    t.push_image("alpha", "v1", b"l").await;
    let r = t.get("/v2/team/app/tags/list").await;
    let v: Value = serde_json::from_slice(&bytes(r).await).unwrap();
    assert_eq!(
        v,
        json!({"name": "team/app", "tags": ["latest", "v1", "v2", "v3"]})
    );
    let r = t.get("/v2/team/app/tags/list?n=2").await;
    assert_eq!(
        hdr(&r, "link"),
        "</v2/team/app/tags/list?last=v1&n=2>; rel=\"next\""
    );
    let v: Value = serde_json::from_slice(&bytes(r).await).unwrap();
    assert_eq!(v["tags"], json!(["latest", "v1"]));
    let r = t.get("/v2/team/app/tags/list?n=2&last=v1").await;
    assert_eq!(hdr(&r, "link"), "");
    let v: Value = serde_json::from_slice(&bytes(r).await).unwrap();
    assert_eq!(v["tags"], json!(["v2", "v3"]));
    assert_eq!(
        code(t.get("/v2/team/app/tags/list?n=x").await).await,
        "PAGINATION_NUMBER_INVALID"
    );
    assert_eq!(
        code(t.get("/v2/nothing/tags/list").await).await,
        "NAME_UNKNOWN"
    );

    let v: Value = serde_json::from_slice(&bytes(t.get("/v2/_catalog").await).await).unwrap();
    assert_eq!(v["repositories"], json!(["alpha", "team/app", "team/base"]));
    let r = t.get("/v2/_catalog?n=1&last=alpha").await;
    assert_eq!(
        hdr(&r, "link"),
        "</v2/_catalog?last=team/app&n=1>; rel=\"next\""
    );
    let v: Value = serde_json::from_slice(&bytes(r).await).unwrap();
    assert_eq!(v["repositories"], json!(["team/app"]));
}

#[tokio::test]
async fn referrers_with_subject_and_filter() {
    let t = plain();
    let (d, m) = t.push_image("app", "v1", b"layer").await;
    let cfg = t.push_blob("app", b"{}").await;
    let sbom = manifest(&cfg, &[], Some((&d, m.len())));
    let r = t
        .req(
            "PUT",
            &format!("/v2/app/manifests/{}", sha(&sbom)),
            &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
            sbom.clone(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(hdr(&r, "oci-subject"), d);
    let r = t.get(&format!("/v2/app/referrers/{d}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        hdr(&r, "content-type"),
        "application/vnd.oci.image.index.v1+json"
    );
    let v: Value = serde_json::from_slice(&bytes(r).await).unwrap();
    assert_eq!(v["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(v["manifests"][0]["digest"], json!(sha(&sbom)));
    assert_eq!(
        v["manifests"][0]["artifactType"],
        json!("application/vnd.example.sbom")
    );
    assert_eq!(v["manifests"][0]["size"], json!(sbom.len()));
    let r = t
        .get(&format!(
            "/v2/app/referrers/{d}?artifactType=application/vnd.example.sig"
        ))
        .await;
    assert_eq!(hdr(&r, "oci-filters-applied"), "artifactType");
    let v: Value = serde_json::from_slice(&bytes(r).await).unwrap();
    assert_eq!(v["manifests"], json!([]));
    let v: Value = serde_json::from_slice(
        &bytes(t.get(&format!("/v2/app/referrers/{}", sha(b"none"))).await).await,
    )
    .unwrap();
    assert_eq!(v["manifests"], json!([]));
}

#[tokio::test]
async fn cross_repository_mount() {
    let t = plain();
    let d = t.push_blob("src/repo", b"shared").await;
    let r = t
        .req(
            "POST",
            &format!("/v2/dst/repo/blobs/uploads/?mount={d}&from=src/repo"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(hdr(&r, "location"), format!("/v2/dst/repo/blobs/{d}"));
    assert_eq!(
        bytes(t.get(&format!("/v2/dst/repo/blobs/{d}")).await).await,
        b"shared"
    );
    // Absent in `from`: an upload session instead.
    let other = sha(b"not there");
    let r = t
        .req(
            "POST",
            &format!("/v2/dst/repo/blobs/uploads/?mount={other}&from=src/repo"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert!(hdr(&r, "location").starts_with("/v2/dst/repo/blobs/uploads/"));
    // DELETE blob removes it from one repository only.
    assert_eq!(
        t.req(
            "DELETE",
            &format!("/v2/dst/repo/blobs/{d}"),
            &[],
            Body::empty()
        )
        .await
        .status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        t.get(&format!("/v2/dst/repo/blobs/{d}")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.get(&format!("/v2/src/repo/blobs/{d}")).await.status(),
        StatusCode::OK
    );
}

fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

fn with_htpasswd(anonymous_pull: bool) -> T {
    server(|c, dir| {
        let p = dir.join("htpasswd");
        std::fs::write(
            &p,
            format!("alice:{}\n", bcrypt::hash("s3cret-pw", 5).unwrap()),
        )
        .unwrap();
        c.auth.htpasswd = Some(p);
        c.auth.anonymous_pull = anonymous_pull;
    })
}

#[tokio::test]
async fn auth_challenges_wrong_credentials_and_tokens() {
    let t = with_htpasswd(false);
    let r = t
        .req("GET", "/v2/", &[("Host", "reg.local:5000")], Body::empty())
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        hdr(&r, "www-authenticate"),
        "Bearer realm=\"http://reg.local:5000/token\",service=\"berth\""
    );
    let r = t
        .req(
            "GET",
            "/v2/team/app/manifests/v1",
            &[("Host", "reg.local:5000")],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        hdr(&r, "www-authenticate"),
        "Bearer realm=\"http://reg.local:5000/token\",service=\"berth\",scope=\"repository:team/app:pull\""
    );
    assert_eq!(code(r).await, "UNAUTHORIZED");

    let r = t
        .req(
            "GET",
            "/v2/",
            &[("Authorization", &basic("alice", "Guess-Pw-9731"))],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body = text(r).await;
    assert!(!body.contains("Guess-Pw-9731"), "{body}");
    let r = t
        .req(
            "GET",
            "/v2/",
            &[("Authorization", &basic("mallory", "s3cret-pw"))],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        t.req(
            "GET",
            "/v2/",
            &[("Authorization", &basic("alice", "s3cret-pw"))],
            Body::empty()
        )
        .await
        .status(),
        StatusCode::OK
    );

    // Token endpoint.
    assert_eq!(
        t.get("/token?service=berth&scope=repository:team/app:pull,push")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        t.req(
            "GET",
            "/token?service=berth",
            &[("Authorization", &basic("alice", "bad"))],
            Body::empty()
        )
        .await
        .status(),
        StatusCode::UNAUTHORIZED
    );
    let r = t
        .req(
            "GET",
            "/token?service=berth&scope=repository:team/app:pull,push",
            &[("Authorization", &basic("alice", "s3cret-pw"))],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = serde_json::from_slice(&bytes(r).await).unwrap();
    let tok = v["token"].as_str().unwrap().to_string();
    assert_eq!(v["expires_in"], json!(300));
    let bearer = format!("Bearer {tok}");
    let d = sha(b"pushed with a token");
    let r = t
        .req(
            "POST",
            &format!("/v2/team/app/blobs/uploads/?digest={d}"),
            &[("Authorization", &bearer)],
            b"pushed with a token".to_vec(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = t
        .req(
            "GET",
            &format!("/v2/team/app/blobs/{d}"),
            &[("Authorization", "Bearer forged")],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Push without credentials.
    let r = t
        .req("POST", "/v2/team/app/blobs/uploads/", &[], Body::empty())
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(hdr(&r, "www-authenticate").contains("scope=\"repository:team/app:pull,push\""));
}

#[tokio::test]
async fn anonymous_pull_but_authenticated_push() {
    let t = with_htpasswd(true);
    let auth = basic("alice", "s3cret-pw");
    let d = sha(b"x");
    let r = t
        .req(
            "POST",
            &format!("/v2/a/blobs/uploads/?digest={d}"),
            &[("Authorization", &auth)],
            b"x".to_vec(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        t.get(&format!("/v2/a/blobs/{d}")).await.status(),
        StatusCode::OK
    );
    let r = t
        .req(
            "POST",
            &format!("/v2/a/blobs/uploads/?digest={d}"),
            &[],
            b"x".to_vec(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // An anonymous token pulls but does not push.
    let v: Value = serde_json::from_slice(
        &bytes(t.get("/token?service=berth&scope=repository:a:pull").await).await,
    )
    .unwrap();
    let bearer = format!("Bearer {}", v["token"].as_str().unwrap());
    assert_eq!(
        t.req(
            "GET",
            &format!("/v2/a/blobs/{d}"),
            &[("Authorization", &bearer)],
            Body::empty()
        )
        .await
        .status(),
        StatusCode::OK
    );
    assert_eq!(
        t.req(
            "POST",
            "/v2/a/blobs/uploads/",
            &[("Authorization", &bearer)],
            Body::empty()
        )
        .await
        .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn metrics_count_requests_and_bytes() {
    let t = plain();
    t.push_image("m", "v1", b"some layer bytes").await;
    t.get("/v2/m/manifests/v1").await;
    t.get("/v2/m/manifests/nope").await;
    let body = text(t.get("/metrics").await).await;
    assert!(
        body.contains(
            "berth_http_requests_total{method=\"GET\",route=\"manifest\",status=\"200\"} 1"
        ),
        "{body}"
    );
    assert!(
        body.contains(
            "berth_http_requests_total{method=\"GET\",route=\"manifest\",status=\"404\"} 1"
        ),
        "{body}"
    );
    assert!(body.contains("berth_storage_blobs 3"), "{body}");
    assert!(!body.contains("berth_bytes_received_total 0\n"), "{body}");
}

#[test]
fn config_file_rejects_unknown_fields() {
    let c = Config::from_yaml("listen: 0.0.0.0:5443\nauth:\n  anonymous_pull: true\n").unwrap();
    assert_eq!(c.listen, "0.0.0.0:5443");
    assert!(c.auth.anonymous_pull);
    assert_eq!(Config::from_yaml("").unwrap(), Config::default());
    let e = Config::from_yaml("listne: x\n").unwrap_err();
    assert!(e.contains("listne"), "{e}");
    let e = Config::from_yaml("auth:\n  htpassword: x\n").unwrap_err();
    assert!(e.contains("htpassword"), "{e}");
}
