//! berth-client against a verified HTTPS registry that wants Bearer tokens: with
//! credentials and a trusted certificate the client skips the `/v2/` probe and sends Basic
//! on its first request; the registry's 401 with a Bearer challenge must switch it to the
//! token flow (credentials sent only to the realm of that host, over TLS), and later
//! requests reuse the token. The fake registry is served over TLS by `serve_app`, with a
//! CA + leaf made by `openssl` (berth-testkit).

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use berth_client::{Client, ClientError, Credentials, RegistryConfig, RegistryConfigs};
use berth_testkit::Certs;

const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;
/// `user:pass`, base64.
const BASIC: &str = "Basic dXNlcjpwYXNz";

#[derive(Default)]
struct Log {
    /// (method, path and query, Authorization header) of every request, in order.
    requests: Vec<(String, String, Option<String>)>,
    tokens_issued: usize,
}

type S = Arc<Mutex<Log>>;

async fn fake(State(s): State<S>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let mut st = s.lock().unwrap();
    st.requests
        .push((method.to_string(), uri.to_string(), auth.clone()));
    if uri.path() == "/token" {
        if auth.as_deref() != Some(BASIC) {
            return (StatusCode::UNAUTHORIZED, "bad credentials").into_response();
        }
        st.tokens_issued += 1;
        let token = format!("tok-{}", st.tokens_issued);
        return (
            [("content-type", "application/json")],
            serde_json::json!({"token": token, "expires_in": 300}).to_string(),
        )
            .into_response();
    }
    if !auth
        .as_deref()
        .is_some_and(|a| a.starts_with("Bearer tok-"))
    {
        let challenge = format!(
            r#"Bearer realm="https://{host}/token",service="fake",scope="repository:team/app:pull""#
        );
        return (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", challenge)],
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
        )
            .into_response();
    }
    if uri.path() == "/v2/" {
        return StatusCode::OK.into_response();
    }
    if uri.path().starts_with("/v2/team/app/manifests/") {
        return (
            StatusCode::OK,
            [("content-type", "application/vnd.oci.image.manifest.v1+json")],
            MANIFEST,
        )
            .into_response();
    }
    StatusCode::NOT_FOUND.into_response()
}

async fn start(certs: &Certs) -> (S, u16) {
    let s: S = Arc::default();
    let app = Router::new().fallback(fake).with_state(s.clone());
    let tls = berth_registry::tls::server_config(&certs.cert_path, &certs.key_path).unwrap();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(berth_registry::serve_app(
        l,
        Some(tls),
        app,
        std::future::pending(),
    ));
    (s, port)
}

fn client(port: u16, ca: &str, pass: &str) -> Client {
    let mut c = RegistryConfigs::new();
    c.insert(
        &format!("127.0.0.1:{port}"),
        RegistryConfig {
            credentials: Some(Credentials::new("user", pass)),
            insecure: false,
            ca_pems: vec![ca.to_string()],
        },
    );
    Client::new(c).unwrap()
}

#[tokio::test]
async fn basic_first_then_bearer_over_verified_tls() {
    let certs = Certs::generate(&[]);
    let (s, port) = start(&certs).await;
    let reg = client(port, &certs.ca_pem, "pass").registry(&format!("127.0.0.1:{port}"));

    let m = reg.get_manifest("team/app", "1", &[]).await.unwrap();
    assert_eq!(m.bytes.as_ref(), MANIFEST.as_bytes());
    let again = reg.get_manifest("team/app", "2", &[]).await.unwrap();
    assert_eq!(again.bytes.as_ref(), MANIFEST.as_bytes());

    let st = s.lock().unwrap();
    let r = &st.requests;
    // No /v2/ probe: the first request is the manifest itself, with Basic.
    assert_eq!(r[0].1, "/v2/team/app/manifests/1", "{r:#?}");
    assert_eq!(r[0].2.as_deref(), Some(BASIC), "{r:#?}");
    // The Bearer challenge sends it to the realm with the credentials and the scope...
    assert!(r[1].1.starts_with("/token?"), "{r:#?}");
    assert!(
        r[1].1.contains("repository%3Ateam%2Fapp%3Apull")
            || r[1].1.contains("repository:team/app:pull"),
        "{r:#?}"
    );
    assert_eq!(r[1].2.as_deref(), Some(BASIC), "{r:#?}");
    // ...and the request is repeated with the token.
    assert_eq!(r[2].1, "/v2/team/app/manifests/1", "{r:#?}");
    assert_eq!(r[2].2.as_deref(), Some("Bearer tok-1"), "{r:#?}");
    // The second manifest reuses the token: no new token, no Basic.
    assert_eq!(st.tokens_issued, 1, "{r:#?}");
    let rest = &r[3..];
    assert!(!rest.is_empty(), "{r:#?}");
    for (_, path, auth) in rest {
        assert_eq!(auth.as_deref(), Some("Bearer tok-1"), "{path}: {r:#?}");
    }
}

#[tokio::test]
async fn wrong_password_for_the_token_names_the_registry_not_the_password() {
    let certs = Certs::generate(&[]);
    let (_s, port) = start(&certs).await;
    let secret = "not-the-Password-42";
    let reg = client(port, &certs.ca_pem, secret).registry(&format!("127.0.0.1:{port}"));
    let e = reg.get_manifest("team/app", "1", &[]).await.unwrap_err();
    let text = format!("{e} / {e:?}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(!text.contains(secret), "the password leaked: {text}");
    assert!(
        matches!(e, ClientError::CredentialsRejected { .. }),
        "{e:?}"
    );
}
