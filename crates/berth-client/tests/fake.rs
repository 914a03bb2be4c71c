//! The client against in-process fake registries that misbehave on purpose: token auth
//! with scopes, redirects to another host, 429 with Retry-After, a registry refusing
//! one-request uploads, mounts answered with 202.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use berth_client::{
    ByteStream, Client, ClientError, Credentials, MountResult, RegistryConfig, RegistryConfigs,
    RetryPolicy, VerifyingStream, sha256_of,
};
use bytes::Bytes;
use futures_util::StreamExt;

#[derive(Default)]
struct Fake {
    /// (method, path+query, authorization header) of every request.
    log: Vec<(String, String, Option<String>)>,
    token_scopes: Vec<Vec<String>>,
    uploads: HashMap<String, Vec<u8>>,
    blobs: HashMap<String, Vec<u8>>,
    manifest_429_left: u32,
    refuse_monolithic: bool,
    deleted: Vec<String>,
    storage_port: u16,
}

type S = Arc<Mutex<Fake>>;

async fn serve(router: Router) -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(l, router).await.unwrap() });
    port
}

fn query_param(uri: &Uri, k: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|kv| {
        let (a, b) = kv.split_once('=')?;
        (a == k).then(|| b.replace("%3A", ":").replace("%2F", "/"))
    })
}

async fn registry(
    State(s): State<S>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let auth = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_string());
    let path = uri.path().to_string();
    s.lock()
        .unwrap()
        .log
        .push((method.to_string(), uri.to_string(), auth.clone()));
    let port = headers
        .get("host")
        .unwrap()
        .to_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    if path == "/token" {
        if auth.as_deref() != Some("Basic dXNlcjpwYXNz") {
            return (StatusCode::UNAUTHORIZED, "bad creds").into_response();
        }
        let scopes: Vec<String> = uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter_map(|kv| kv.strip_prefix("scope="))
            .map(|v| {
                v.replace("%3A", ":")
                    .replace("%2F", "/")
                    .replace("%2C", ",")
            })
            .collect();
        let token = format!("tok-{}", scopes.len());
        s.lock().unwrap().token_scopes.push(scopes);
        return axum::Json(serde_json::json!({"token": token, "expires_in": 300})).into_response();
    }
    let challenge = format!(r#"Bearer realm="http://127.0.0.1:{port}/token",service="fake""#);
    if !auth
        .as_deref()
        .is_some_and(|a| a.starts_with("Bearer tok-"))
    {
        return (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", challenge)],
            "",
        )
            .into_response();
    }
    if path == "/v2/" {
        return StatusCode::OK.into_response();
    }
    if path.contains("/manifests/") {
        let mut st = s.lock().unwrap();
        if st.manifest_429_left > 0 {
            st.manifest_429_left -= 1;
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "0")],
                "slow down",
            )
                .into_response();
        }
        return (
            StatusCode::OK,
            [("content-type", "application/vnd.oci.image.manifest.v1+json")],
            r#"{"schemaVersion":2}"#,
        )
            .into_response();
    }
    if method == Method::GET && path.contains("/blobs/sha256:") {
        let sp = s.lock().unwrap().storage_port;
        return (
            StatusCode::TEMPORARY_REDIRECT,
            [("location", format!("http://127.0.0.1:{sp}/storage{path}"))],
            "",
        )
            .into_response();
    }
    if method == Method::POST && path.ends_with("/blobs/uploads/") {
        let id = format!("u{}", s.lock().unwrap().uploads.len());
        s.lock().unwrap().uploads.insert(id.clone(), Vec::new());
        let repo = path
            .trim_start_matches("/v2/")
            .trim_end_matches("/blobs/uploads/")
            .to_string();
        if let Some(d) = query_param(&uri, "mount") {
            // Mount refused: an upload session is opened instead.
            let _ = d;
        }
        return (
            StatusCode::ACCEPTED,
            [(
                "location",
                format!("/v2/{repo}/blobs/uploads/{id}?_state=abc"),
            )],
            "",
        )
            .into_response();
    }
    if path.contains("/blobs/uploads/u") {
        let id = path.rsplit('/').next().unwrap().to_string();
        if method == Method::DELETE {
            s.lock().unwrap().deleted.push(id);
            return StatusCode::NO_CONTENT.into_response();
        }
        let mut data = Vec::new();
        let mut stream = body.into_data_stream();
        while let Some(c) = stream.next().await {
            match c {
                Ok(c) => data.extend_from_slice(&c),
                Err(_) => return StatusCode::BAD_REQUEST.into_response(),
            }
        }
        let mut st = s.lock().unwrap();
        if method == Method::PATCH {
            let range = headers
                .get("content-range")
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            let start: usize = range.split('-').next().unwrap().parse().unwrap();
            let buf = st.uploads.get_mut(&id).unwrap();
            assert_eq!(start, buf.len(), "chunk out of order");
            buf.extend_from_slice(&data);
            let repo = path
                .trim_start_matches("/v2/")
                .split("/blobs/")
                .next()
                .unwrap()
                .to_string();
            return (
                StatusCode::ACCEPTED,
                [(
                    "location",
                    format!("/v2/{repo}/blobs/uploads/{id}?_state=next"),
                )],
                "",
            )
                .into_response();
        }
        if method == Method::PUT {
            if st.refuse_monolithic && !data.is_empty() {
                return (StatusCode::PAYLOAD_TOO_LARGE, "too large").into_response();
            }
            let digest = query_param(&uri, "digest").unwrap();
            let mut all = st.uploads.remove(&id).unwrap();
            all.extend_from_slice(&data);
            if sha256_of(&all).to_string() != digest {
                return (StatusCode::BAD_REQUEST, "DIGEST_INVALID").into_response();
            }
            st.blobs.insert(digest, all);
            return StatusCode::CREATED.into_response();
        }
    }
    StatusCode::NOT_FOUND.into_response()
}

async fn storage(State(s): State<S>, uri: Uri, headers: HeaderMap) -> Response {
    let auth = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_string());
    s.lock()
        .unwrap()
        .log
        .push(("STORAGE".into(), uri.to_string(), auth));
    Bytes::from_static(b"blob-bytes").into_response()
}

async fn start() -> (S, u16) {
    let s: S = Arc::default();
    let sp = serve(Router::new().fallback(storage).with_state(s.clone())).await;
    s.lock().unwrap().storage_port = sp;
    let port = serve(Router::new().fallback(registry).with_state(s.clone())).await;
    (s, port)
}

fn client(port: u16) -> Client {
    let mut c = RegistryConfigs::new();
    c.insert(
        &format!("127.0.0.1:{port}"),
        RegistryConfig {
            credentials: Some(Credentials::new("user", "pass")),
            insecure: true,
            ca_pems: vec![],
        },
    );
    Client::new(c).unwrap().with_retry(RetryPolicy {
        attempts: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    })
}

#[tokio::test]
async fn token_scopes_and_redirect_without_credentials() {
    let (s, port) = start().await;
    let reg = client(port).registry(&format!("127.0.0.1:{port}"));
    let d = sha256_of(b"blob-bytes");
    let dl = reg.get_blob("team/app", &d).await.unwrap();
    let bytes: Vec<u8> = dl.stream.map(|c| c.unwrap().to_vec()).concat().await;
    assert_eq!(bytes, b"blob-bytes");
    let st = s.lock().unwrap();
    let storage: Vec<_> = st.log.iter().filter(|l| l.0 == "STORAGE").collect();
    assert_eq!(storage.len(), 1);
    assert_eq!(
        storage[0].2, None,
        "credentials leaked to another host: {:?}",
        storage[0]
    );
    assert!(
        st.token_scopes
            .iter()
            .any(|s| s == &vec!["repository:team/app:pull".to_string()]),
        "{:?}",
        st.token_scopes
    );
}

#[tokio::test]
async fn mount_asks_for_source_pull_scope_and_cancels_on_202() {
    let (s, port) = start().await;
    let reg = client(port).registry(&format!("127.0.0.1:{port}"));
    let d = sha256_of(b"x");
    assert_eq!(
        reg.mount_blob("dst/repo", &d, "src/repo").await.unwrap(),
        MountResult::NotMounted
    );
    let st = s.lock().unwrap();
    let last = st.token_scopes.last().unwrap();
    assert!(
        last.contains(&"repository:src/repo:pull".to_string()),
        "{last:?}"
    );
    assert!(
        last.contains(&"repository:dst/repo:pull,push".to_string()),
        "{last:?}"
    );
    assert_eq!(st.deleted.len(), 1, "the 202 session must be cancelled");
}

#[tokio::test]
async fn retries_429_honouring_retry_after() {
    let (s, port) = start().await;
    s.lock().unwrap().manifest_429_left = 2;
    let reg = client(port).registry(&format!("127.0.0.1:{port}"));
    let m = reg.get_manifest("a", "1", &[]).await.unwrap();
    assert_eq!(m.digest, sha256_of(br#"{"schemaVersion":2}"#));
    let gets = s
        .lock()
        .unwrap()
        .log
        .iter()
        .filter(|l| l.1.contains("/manifests/"))
        .count();
    // 401 once (no token yet is not the case: token fetched first), then 429, 429, 200.
    assert!(gets >= 3, "{gets}");
    s.lock().unwrap().manifest_429_left = 5;
    let e = reg.get_manifest("a", "1", &[]).await.unwrap_err();
    assert!(matches!(e, ClientError::Status { status: 429, .. }), "{e}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
}

fn stream_of(data: &[u8], frame: usize) -> ByteStream {
    let frames: Vec<_> = data
        .chunks(frame)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures_util::stream::iter(frames))
}

#[tokio::test]
async fn monolithic_refused_then_chunked_in_8_mib_pieces() {
    let (s, port) = start().await;
    s.lock().unwrap().refuse_monolithic = true;
    let reg = client(port).registry(&format!("127.0.0.1:{port}"));
    let data: Vec<u8> = (0..(20u32 << 20)).map(|i| (i % 251) as u8).collect();
    let d = sha256_of(&data);
    let e = reg
        .push_blob("r", &d, data.len() as u64, stream_of(&data, 16 << 10))
        .await
        .unwrap_err();
    assert!(
        matches!(e, ClientError::MonolithicRefused { .. }) && e.is_retryable(),
        "{e}"
    );
    reg.push_blob("r", &d, data.len() as u64, stream_of(&data, 16 << 10))
        .await
        .unwrap();
    let st = s.lock().unwrap();
    assert_eq!(st.blobs.get(&d.to_string()).map(Vec::len), Some(data.len()));
    let patches = st.log.iter().filter(|l| l.0 == "PATCH").count();
    assert_eq!(
        patches, 3,
        "16 KiB frames must be re-chunked to 8 MiB PATCHes"
    );
}

#[tokio::test]
async fn corrupted_stream_is_never_committed() {
    let (s, port) = start().await;
    let reg = client(port).registry(&format!("127.0.0.1:{port}"));
    let good: Vec<u8> = vec![7u8; 3 << 20];
    let mut bad = good.clone();
    bad[1 << 20] ^= 1;
    let d = sha256_of(&good);
    let v = VerifyingStream::new(
        stream_of(&bad, 64 << 10),
        d.clone(),
        Some(good.len() as u64),
    )
    .unwrap();
    let e = reg
        .push_blob("r", &d, good.len() as u64, v.boxed())
        .await
        .unwrap_err();
    assert!(e.verify_error().is_some(), "{e}");
    assert!(!e.is_retryable());
    assert!(e.to_string().contains(&d.to_string()), "{e}");
    assert!(s.lock().unwrap().blobs.is_empty());
}

#[tokio::test]
async fn wrong_credentials_for_token_are_named_without_the_password() {
    let (_s, port) = start().await;
    let mut c = RegistryConfigs::new();
    c.insert(
        &format!("127.0.0.1:{port}"),
        RegistryConfig {
            credentials: Some(Credentials::new("user", "Sup3r-Secret")),
            insecure: true,
            ca_pems: vec![],
        },
    );
    let e = Client::new(c)
        .unwrap()
        .registry(&format!("127.0.0.1:{port}"))
        .head_blob("a", &sha256_of(b""))
        .await
        .unwrap_err();
    let msg = format!("{e} {e:?}");
    assert!(
        matches!(e, ClientError::CredentialsRejected { .. }),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("127.0.0.1:{port}")) && !msg.contains("Sup3r-Secret"),
        "{msg}"
    );
}
