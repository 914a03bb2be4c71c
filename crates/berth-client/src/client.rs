//! The registry client: one [`Client`] for a set of [`RegistryConfigs`], and a [`Registry`]
//! handle per registry host.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use berth_reference::Digest;
use berth_secret::Secret;
use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, TryStreamExt};
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, Response, StatusCode, Url};

use crate::auth::{Challenge, TokenResponse, parse_www_authenticate};
use crate::config::{RegistryConfig, RegistryConfigs, normalize_key};
use crate::error::ClientError;
use crate::retry::{RetryPolicy, parse_retry_after};
use crate::verify::{ByteStream, VerifyError, digest_of, sha256_of};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// Manifest media types Berth copies, for `Accept`. Schema 1 is accepted only so that it
/// can be reported clearly as unsupported.
pub const MANIFEST_ACCEPT: &[&str] = &[
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_LIST,
    DOCKER_SCHEMA1_SIGNED,
    DOCKER_SCHEMA1,
];

/// Largest manifest accepted (the OCI distribution spec's recommended limit is 4 MiB).
pub const MAX_MANIFEST_BYTES: usize = 8 << 20;
/// Chunk size of a chunked (PATCH) upload.
pub const CHUNK_SIZE: usize = 8 << 20;

/// A manifest exactly as the registry served it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub bytes: Bytes,
    pub media_type: String,
    /// The digest of `bytes` (verified when fetched by digest).
    pub digest: Digest,
}

/// What a `HEAD` on a manifest tells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestHead {
    pub digest: Option<Digest>,
    pub media_type: Option<String>,
    pub size: Option<u64>,
}

/// A blob being downloaded.
pub struct BlobDownload {
    /// `Content-Length`, when the registry sent one.
    pub size: Option<u64>,
    pub stream: ByteStream,
}

/// Result of a cross-repository mount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MountResult {
    Mounted,
    /// The registry refused (202); the upload session it opened was cancelled.
    NotMounted,
}

#[derive(Clone)]
struct HostInfo {
    base: Url,
    challenge: Option<Challenge>,
}

struct Token {
    value: Secret,
    expires: Instant,
}

struct Inner {
    configs: RegistryConfigs,
    retry: RetryPolicy,
    http: Mutex<HashMap<String, reqwest::Client>>,
    hosts: Mutex<HashMap<String, HostInfo>>,
    /// One probe of `/v2/` per host at a time: concurrent first requests wait for it.
    probing: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    tokens: Mutex<HashMap<(String, String, String), Token>>,
    chunked: Mutex<HashMap<String, bool>>,
}

/// A registry client. Cheap to clone; clones share connections, tokens and learned facts.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("configs", &self.inner.configs)
            .finish()
    }
}

fn build_http(key: &str, cfg: Option<&RegistryConfig>) -> Result<reqwest::Client, ClientError> {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(300))
        .pool_idle_timeout(Duration::from_secs(60))
        .http1_only();
    let config_error = |detail: String| ClientError::Config {
        key: key.to_string(),
        detail,
    };
    let mut certs = Vec::new();
    let insecure = cfg.is_some_and(|c| c.insecure);
    for pem in cfg.map(|c| c.ca_pems.as_slice()).unwrap_or_default() {
        let before = certs.len();
        for c in rustls_pemfile::certs(&mut pem.as_bytes()) {
            certs.push(
                c.map_err(|e| config_error(format!("a CA certificate does not parse: {e}")))?,
            );
        }
        if certs.len() == before {
            return Err(config_error("a CA entry holds no PEM certificate".into()));
        }
    }
    let tls = crate::tls::client_config(certs, insecure).map_err(config_error)?;
    b = b.tls_backend_preconfigured(tls);
    b.build().map_err(|e| ClientError::Config {
        key: key.to_string(),
        detail: error_chain(&e),
    })
}

/// The error and its sources, joined (reqwest hides the interesting part in sources).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

fn is_tls_error(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    d.contains("certificate")
        || d.contains("tls")
        || d.contains("handshake")
        || d.contains("invalidcontenttype")
}

fn map_send_error(registry: &str, e: &reqwest::Error) -> ClientError {
    let detail = error_chain(e);
    if is_tls_error(&detail) {
        ClientError::Tls {
            registry: registry.to_string(),
            detail,
        }
    } else {
        ClientError::Connect {
            registry: registry.to_string(),
            detail,
        }
    }
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

fn retry_after(resp: &Response) -> Option<Duration> {
    resp.headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()))
}

fn sensitive(v: String) -> HeaderValue {
    let mut h = HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""));
    h.set_sensitive(true);
    h
}

impl Client {
    /// A client for `configs`. Fails if a CA certificate does not parse.
    pub fn new(configs: RegistryConfigs) -> Result<Client, ClientError> {
        let mut http = HashMap::new();
        http.insert(String::new(), build_http("", None)?);
        for (k, c) in configs.entries() {
            http.insert(k.to_string(), build_http(k, Some(c))?);
        }
        Ok(Client {
            inner: Arc::new(Inner {
                configs,
                retry: RetryPolicy::default(),
                http: Mutex::new(http),
                hosts: Mutex::new(HashMap::new()),
                probing: Mutex::new(HashMap::new()),
                tokens: Mutex::new(HashMap::new()),
                chunked: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The same client with another retry policy (use before sharing it).
    pub fn with_retry(self, retry: RetryPolicy) -> Client {
        let inner = Arc::try_unwrap(self.inner).unwrap_or_else(|arc| Inner {
            configs: arc.configs.clone(),
            retry,
            http: Mutex::new(arc.http.lock().expect("lock").clone()),
            hosts: Mutex::new(HashMap::new()),
            probing: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            chunked: Mutex::new(HashMap::new()),
        });
        Client {
            inner: Arc::new(Inner { retry, ..inner }),
        }
    }

    pub fn configs(&self) -> &RegistryConfigs {
        &self.inner.configs
    }

    /// A handle on one registry (`host[:port]`, `docker.io` for Docker Hub).
    pub fn registry(&self, registry: &str) -> Registry {
        let name = normalize_key(registry);
        let host = if name == "docker.io" {
            "registry-1.docker.io".to_string()
        } else {
            name.clone()
        };
        Registry {
            client: self.clone(),
            name,
            host,
        }
    }
}

/// One registry, reached through a [`Client`].
#[derive(Clone)]
pub struct Registry {
    client: Client,
    name: String,
    host: String,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Registry({})", self.name)
    }
}

struct Ctx<'a> {
    repo: &'a str,
    scopes: Vec<String>,
    what: String,
}

impl Registry {
    /// The registry's name as configured (`docker.io` for Docker Hub).
    pub fn name(&self) -> &str {
        &self.name
    }

    fn inner(&self) -> &Inner {
        &self.client.inner
    }

    fn config(&self, repo: &str) -> (String, Option<RegistryConfig>) {
        match self.inner().configs.select(&self.name, repo) {
            Some((k, c)) => (k.to_string(), Some(c.clone())),
            None => (String::new(), None),
        }
    }

    fn http(&self, key: &str) -> reqwest::Client {
        let map = self.inner().http.lock().expect("lock");
        map.get(key)
            .or_else(|| map.get(""))
            .cloned()
            .expect("default client")
    }

    fn username(&self, repo: &str) -> Option<String> {
        self.config(repo)
            .1
            .and_then(|c| c.credentials.map(|c| c.username))
    }

    fn auth_error(&self, repo: &str, status: StatusCode, what: &str) -> ClientError {
        let user = self.username(repo);
        match (status, user) {
            (StatusCode::UNAUTHORIZED, Some(username)) => ClientError::CredentialsRejected {
                registry: self.name.clone(),
                username,
                what: what.to_string(),
            },
            (StatusCode::UNAUTHORIZED, None) => ClientError::AuthRequired {
                registry: self.name.clone(),
                what: what.to_string(),
            },
            (_, user) => ClientError::Denied {
                registry: self.name.clone(),
                what: what.to_string(),
                who: user.map_or("anonymous access".to_string(), |u| format!("user `{u}`")),
            },
        }
    }

    /// Reads an error response into a [`ClientError`].
    async fn status_error(&self, repo: &str, resp: Response, what: &str) -> ClientError {
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return self.auth_error(repo, status, what);
        }
        let body = resp.bytes().await.unwrap_or_default();
        let mut detail = String::from_utf8_lossy(&body[..body.len().min(400)])
            .trim()
            .to_string();
        if detail.is_empty() {
            detail = status.canonical_reason().unwrap_or("no detail").to_string();
        }
        ClientError::Status {
            registry: self.name.clone(),
            what: what.to_string(),
            status: status.as_u16(),
            detail,
        }
    }

    /// Finds the scheme (https, or http for an insecure registry) and the auth challenge.
    async fn host_info(&self, repo: &str) -> Result<HostInfo, ClientError> {
        if let Some(h) = self.inner().hosts.lock().expect("lock").get(&self.host) {
            return Ok(h.clone());
        }
        let gate = self
            .inner()
            .probing
            .lock()
            .expect("lock")
            .entry(self.host.clone())
            .or_default()
            .clone();
        let _probe = gate.lock().await;
        if let Some(h) = self.inner().hosts.lock().expect("lock").get(&self.host) {
            return Ok(h.clone());
        }
        let (key, cfg) = self.config(repo);
        let insecure = cfg.as_ref().is_some_and(|c| c.insecure);
        // A verified HTTPS registry we hold credentials for needs no `/v2/` probe: the first
        // request carries Basic credentials (to this host only), and a Bearer challenge in a
        // 401 answer switches to the token flow (`send`). One round trip less per host.
        if !insecure && cfg.as_ref().is_some_and(|c| c.credentials.is_some()) {
            let base = self.base_url("https")?;
            return Ok(self.learned(HostInfo {
                base,
                challenge: Some(Challenge::Basic),
            }));
        }
        let http = self.http(&key);
        let retry = self.inner().retry;
        let mut last = None;
        for attempt in 0..retry.attempts {
            if attempt > 0 {
                tokio::time::sleep(retry.backoff(attempt - 1)).await;
            }
            let mut schemes = vec!["https"];
            if insecure {
                schemes.push("http");
            }
            for scheme in schemes {
                let base = self.base_url(scheme)?;
                let url = base.join("v2/").expect("valid url");
                match http.get(url).send().await {
                    Ok(resp) => {
                        let status = resp.status();
                        let challenge = if status == StatusCode::UNAUTHORIZED {
                            let ch = resp
                                .headers()
                                .get(header::WWW_AUTHENTICATE)
                                .and_then(|v| v.to_str().ok())
                                .and_then(parse_www_authenticate);
                            Some(ch.unwrap_or(Challenge::Basic))
                        } else if status.is_success() {
                            None
                        } else if status.is_server_error()
                            || status == StatusCode::TOO_MANY_REQUESTS
                        {
                            last = Some(self.status_error(repo, resp, "GET /v2/").await);
                            break;
                        } else {
                            return Err(ClientError::Status {
                                registry: self.name.clone(),
                                what: "GET /v2/ (is this a registry?)".into(),
                                status: status.as_u16(),
                                detail: status.canonical_reason().unwrap_or("").into(),
                            });
                        };
                        return Ok(self.learned(HostInfo { base, challenge }));
                    }
                    Err(e) => {
                        let err = map_send_error(&self.name, &e);
                        // A TLS failure of a verified registry will not heal by retrying.
                        if matches!(err, ClientError::Tls { .. }) && !insecure {
                            return Err(err);
                        }
                        last = Some(err);
                    }
                }
            }
        }
        Err(last.expect("at least one attempt"))
    }

    /// `SCHEME://HOST/`.
    fn base_url(&self, scheme: &str) -> Result<Url, ClientError> {
        Url::parse(&format!("{scheme}://{}/", self.host)).map_err(|e| ClientError::Protocol {
            registry: self.name.clone(),
            what: "registry address".into(),
            detail: e.to_string(),
        })
    }

    /// Remembers what `/v2/` (or the configuration) said of this host.
    fn learned(&self, info: HostInfo) -> HostInfo {
        self.inner()
            .hosts
            .lock()
            .expect("lock")
            .insert(self.host.clone(), info.clone());
        info
    }

    fn forget_host(&self) {
        self.inner().hosts.lock().expect("lock").remove(&self.host);
    }

    /// The `Authorization` header for a request to `repo` needing `scopes`.
    async fn authorization(
        &self,
        info: &HostInfo,
        repo: &str,
        scopes: &[String],
        fresh: bool,
    ) -> Result<Option<HeaderValue>, ClientError> {
        let (key, cfg) = self.config(repo);
        let creds = cfg.and_then(|c| c.credentials);
        match &info.challenge {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(creds.map(|c| {
                let raw = format!("{}:{}", c.username, c.password.expose());
                sensitive(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                ))
            })),
            Some(Challenge::Bearer { realm, service, .. }) => {
                let mut scopes = scopes.to_vec();
                scopes.sort();
                scopes.dedup();
                let tkey = (self.host.clone(), key.clone(), scopes.join(" "));
                if !fresh
                    && let Some(t) = self.inner().tokens.lock().expect("lock").get(&tkey)
                    && t.expires > Instant::now()
                {
                    return Ok(Some(sensitive(format!("Bearer {}", t.value.expose()))));
                }
                let mut url = Url::parse(realm).map_err(|e| ClientError::Protocol {
                    registry: self.name.clone(),
                    what: "token realm".into(),
                    detail: format!("`{realm}` is not a URL: {e}"),
                })?;
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(s) = service {
                        q.append_pair("service", s);
                    }
                    for s in &scopes {
                        q.append_pair("scope", s);
                    }
                }
                let what = format!("a token for {}", scopes.join(" "));
                let http = self.http(&key);
                let retry = self.inner().retry;
                let mut attempt = 0;
                let resp = loop {
                    let mut rb = http.get(url.clone());
                    if let Some(c) = &creds {
                        rb = rb.basic_auth(&c.username, Some(c.password.expose()));
                    }
                    match rb.send().await {
                        Ok(r)
                            if (r.status().is_server_error()
                                || r.status() == StatusCode::TOO_MANY_REQUESTS)
                                && attempt + 1 < retry.attempts =>
                        {
                            tokio::time::sleep(retry.delay(attempt, retry_after(&r))).await;
                        }
                        Ok(r) => break r,
                        Err(e) => {
                            let err = map_send_error(&self.name, &e);
                            if !err.is_retryable() || attempt + 1 >= retry.attempts {
                                return Err(err);
                            }
                            tokio::time::sleep(retry.backoff(attempt)).await;
                        }
                    }
                    attempt += 1;
                };
                if !resp.status().is_success() {
                    return Err(self.status_error(repo, resp, &what).await);
                }
                let body = resp
                    .bytes()
                    .await
                    .map_err(|e| map_send_error(&self.name, &e))?;
                let tr: TokenResponse =
                    serde_json::from_slice(&body).map_err(|e| ClientError::Protocol {
                        registry: self.name.clone(),
                        what,
                        detail: format!("the token endpoint answered no token JSON ({e})"),
                    })?;
                let token = tr
                    .token
                    .or(tr.access_token)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| ClientError::Protocol {
                        registry: self.name.clone(),
                        what: "token".into(),
                        detail: "the token endpoint answered without a token".into(),
                    })?;
                let ttl = Duration::from_secs(tr.expires_in.unwrap_or(60).max(10));
                let value = Secret::new(token);
                let header = sensitive(format!("Bearer {}", value.expose()));
                self.inner().tokens.lock().expect("lock").insert(
                    tkey,
                    Token {
                        value,
                        expires: Instant::now() + ttl - Duration::from_secs(5),
                    },
                );
                Ok(Some(header))
            }
        }
    }

    /// Sends a request built by `build` (called again for each attempt), authenticating,
    /// re-authenticating once on 401, and retrying connection errors, 5xx and 429.
    async fn send(
        &self,
        ctx: &Ctx<'_>,
        method: Method,
        url: impl Fn(&Url) -> Url,
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<Response, ClientError> {
        let retry = self.inner().retry;
        let (key, _) = self.config(ctx.repo);
        let http = self.http(&key);
        let mut info = self.host_info(ctx.repo).await?;
        let mut auth = self
            .authorization(&info, ctx.repo, &ctx.scopes, false)
            .await?;
        let mut reauthed = false;
        let mut attempt = 0;
        loop {
            let mut rb = http.request(method.clone(), url(&info.base));
            if let Some(a) = &auth {
                rb = rb.header(header::AUTHORIZATION, a.clone());
            }
            match build(rb).send().await {
                Err(e) => {
                    let err = map_send_error(&self.name, &e);
                    attempt += 1;
                    if !err.is_retryable() || attempt >= retry.attempts {
                        return Err(err);
                    }
                    tokio::time::sleep(retry.backoff(attempt - 1)).await;
                    // The registry may have come back with other settings.
                    self.forget_host();
                    info = self.host_info(ctx.repo).await?;
                    auth = self
                        .authorization(&info, ctx.repo, &ctx.scopes, false)
                        .await?;
                }
                Ok(resp) => {
                    let status = resp.status();
                    if status == StatusCode::UNAUTHORIZED && !reauthed {
                        reauthed = true;
                        if let Some(ch) = resp
                            .headers()
                            .get(header::WWW_AUTHENTICATE)
                            .and_then(|v| v.to_str().ok())
                            .and_then(parse_www_authenticate)
                        {
                            let changed = info.challenge.as_ref().map(std::mem::discriminant)
                                != Some(std::mem::discriminant(&ch));
                            if changed || info.challenge.is_none() {
                                info.challenge = Some(ch);
                                info = self.learned(info);
                            }
                        }
                        let fresh = self
                            .authorization(&info, ctx.repo, &ctx.scopes, true)
                            .await?;
                        if fresh.is_some() {
                            auth = fresh;
                            continue;
                        }
                        return Err(self.auth_error(ctx.repo, status, &ctx.what));
                    }
                    if (status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS)
                        && attempt + 1 < retry.attempts
                    {
                        let d = retry.delay(attempt, retry_after(&resp));
                        attempt += 1;
                        tokio::time::sleep(d).await;
                        continue;
                    }
                    return Ok(resp);
                }
            }
        }
    }

    fn pull_scope(repo: &str) -> String {
        format!("repository:{repo}:pull")
    }

    fn push_scope(repo: &str) -> String {
        format!("repository:{repo}:pull,push")
    }

    /// `GET /v2/`: checks the registry answers and the credentials are accepted.
    pub async fn ping(&self) -> Result<(), ClientError> {
        self.forget_host();
        let ctx = Ctx {
            repo: "",
            scopes: vec![],
            what: "GET /v2/".into(),
        };
        let resp = self
            .send(&ctx, Method::GET, |b| b.join("v2/").expect("url"), |r| r)
            .await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(self.status_error("", resp, &ctx.what).await)
        }
    }

    fn url(base: &Url, path: &str) -> Url {
        base.join(path).expect("valid registry url")
    }

    /// Fetches a manifest by tag or digest, exactly as served. When fetched by digest, the
    /// bytes are checked against it. Docker schema 1 is refused with [`ClientError::Schema1`].
    pub async fn get_manifest(
        &self,
        repo: &str,
        reference: &str,
        accept: &[&str],
    ) -> Result<Manifest, ClientError> {
        let ctx = Ctx {
            repo,
            scopes: vec![Self::pull_scope(repo)],
            what: format!("pulling manifest {repo}:{reference}"),
        };
        let accept = if accept.is_empty() {
            MANIFEST_ACCEPT
        } else {
            accept
        };
        let accept_value = accept.join(", ");
        let path = format!("v2/{repo}/manifests/{reference}");
        let resp = self
            .send(
                &ctx,
                Method::GET,
                |b| Self::url(b, &path),
                |r| r.header(header::ACCEPT, &accept_value),
            )
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(ClientError::ManifestNotFound {
                registry: self.name.clone(),
                repository: repo.into(),
                reference: reference.into(),
            });
        }
        if !resp.status().is_success() {
            return Err(self.status_error(repo, resp, &ctx.what).await);
        }
        let ct = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(';').next().unwrap_or("").trim().to_string());
        let mut body = BytesMut::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| map_send_error(&self.name, &e))?;
            if body.len() + chunk.len() > MAX_MANIFEST_BYTES {
                return Err(ClientError::Protocol {
                    registry: self.name.clone(),
                    what: ctx.what.clone(),
                    detail: format!("the manifest is larger than {MAX_MANIFEST_BYTES} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        let bytes = body.freeze();
        let media_type = match ct {
            Some(ct) if !ct.is_empty() && ct != "application/json" && ct != "text/plain" => ct,
            _ => media_type_from_json(&bytes).unwrap_or_else(|| OCI_MANIFEST.to_string()),
        };
        if media_type == DOCKER_SCHEMA1 || media_type == DOCKER_SCHEMA1_SIGNED {
            return Err(ClientError::Schema1 {
                registry: self.name.clone(),
                repository: repo.into(),
                reference: reference.into(),
                media_type,
            });
        }
        let digest = match Digest::parse(reference) {
            Ok(expected) => {
                let actual =
                    digest_of(&bytes, &expected).map_err(|source| ClientError::Verify {
                        registry: self.name.clone(),
                        repository: repo.into(),
                        reference: reference.into(),
                        source: Box::new(source),
                    })?;
                if actual != expected {
                    return Err(ClientError::Verify {
                        registry: self.name.clone(),
                        repository: repo.into(),
                        reference: reference.into(),
                        source: Box::new(VerifyError::DigestMismatch { expected, actual }),
                    });
                }
                expected
            }
            Err(_) => sha256_of(&bytes),
        };
        Ok(Manifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// `HEAD` a manifest: `None` when it is not there.
    pub async fn head_manifest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<Option<ManifestHead>, ClientError> {
        let ctx = Ctx {
            repo,
            scopes: vec![Self::pull_scope(repo)],
            what: format!("checking manifest {repo}:{reference}"),
        };
        let accept_value = MANIFEST_ACCEPT.join(", ");
        let path = format!("v2/{repo}/manifests/{reference}");
        let resp = self
            .send(
                &ctx,
                Method::HEAD,
                |b| Self::url(b, &path),
                |r| r.header(header::ACCEPT, &accept_value),
            )
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(self.status_error(repo, resp, &ctx.what).await);
        }
        let h = resp.headers();
        Ok(Some(ManifestHead {
            digest: h
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| Digest::parse(v).ok()),
            media_type: h
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            size: content_length(h),
        }))
    }

    /// Pushes manifest bytes unchanged under `reference` (a tag or its digest).
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        bytes: Bytes,
        media_type: &str,
    ) -> Result<Digest, ClientError> {
        let ctx = Ctx {
            repo,
            scopes: vec![Self::push_scope(repo)],
            what: format!("pushing manifest {repo}:{reference}"),
        };
        let path = format!("v2/{repo}/manifests/{reference}");
        let resp = self
            .send(
                &ctx,
                Method::PUT,
                |b| Self::url(b, &path),
                |r| {
                    r.header(header::CONTENT_TYPE, media_type)
                        .body(bytes.clone())
                },
            )
            .await?;
        if !resp.status().is_success() {
            return Err(self.status_error(repo, resp, &ctx.what).await);
        }
        Ok(sha256_of(&bytes))
    }

    /// `HEAD` a blob: its size, or `None` when it is not there.
    pub async fn head_blob(&self, repo: &str, digest: &Digest) -> Result<Option<u64>, ClientError> {
        let ctx = Ctx {
            repo,
            scopes: vec![Self::pull_scope(repo)],
            what: format!("checking blob {digest} in {repo}"),
        };
        let path = format!("v2/{repo}/blobs/{digest}");
        let mut resp = self
            .send(&ctx, Method::HEAD, |b| Self::url(b, &path), |r| r)
            .await?;
        // A HEAD may be redirected to storage too; follow it without credentials elsewhere.
        let mut hops = 0;
        while resp.status().is_redirection() && hops < 5 {
            hops += 1;
            resp = self.follow_redirect(repo, &ctx, Method::HEAD, resp).await?;
        }
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(self.status_error(repo, resp, &ctx.what).await);
        }
        Ok(Some(content_length(resp.headers()).unwrap_or(0)))
    }

    /// The absolute URL a response's `Location` header points to (`kind` names it in errors).
    fn location(&self, ctx: &Ctx<'_>, resp: &Response, kind: &str) -> Result<Url, ClientError> {
        let location = resp
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ClientError::Protocol {
                registry: self.name.clone(),
                what: ctx.what.clone(),
                detail: format!("HTTP {} without a Location header", resp.status()),
            })?;
        resp.url()
            .join(location)
            .map_err(|e| ClientError::Protocol {
                registry: self.name.clone(),
                what: ctx.what.clone(),
                detail: format!("bad {kind} Location `{location}`: {e}"),
            })
    }

    async fn follow_redirect(
        &self,
        repo: &str,
        ctx: &Ctx<'_>,
        method: Method,
        resp: Response,
    ) -> Result<Response, ClientError> {
        let target = self.location(ctx, &resp, "redirect")?;
        let info = self.host_info(repo).await?;
        let (key, _) = self.config(repo);
        let mut rb = self.http(&key).request(method, target.clone());
        if same_origin(&target, &info.base)
            && let Some(a) = self.authorization(&info, repo, &ctx.scopes, false).await?
        {
            rb = rb.header(header::AUTHORIZATION, a);
        }
        rb.send().await.map_err(|e| map_send_error(&self.name, &e))
    }

    /// Downloads a blob as a stream (not verified here: wrap it in
    /// [`crate::VerifyingStream`]). Redirects are followed; credentials go only to the
    /// registry's own origin.
    pub async fn get_blob(&self, repo: &str, digest: &Digest) -> Result<BlobDownload, ClientError> {
        let ctx = Ctx {
            repo,
            scopes: vec![Self::pull_scope(repo)],
            what: format!("pulling blob {digest} from {repo}"),
        };
        let path = format!("v2/{repo}/blobs/{digest}");
        let mut resp = self
            .send(&ctx, Method::GET, |b| Self::url(b, &path), |r| r)
            .await?;
        let mut hops = 0;
        while resp.status().is_redirection() {
            hops += 1;
            if hops > 10 {
                return Err(ClientError::Protocol {
                    registry: self.name.clone(),
                    what: ctx.what.clone(),
                    detail: "more than 10 redirects".into(),
                });
            }
            resp = self.follow_redirect(repo, &ctx, Method::GET, resp).await?;
        }
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(ClientError::BlobNotFound {
                registry: self.name.clone(),
                repository: repo.into(),
                digest: digest.clone(),
            });
        }
        if !resp.status().is_success() {
            return Err(self.status_error(repo, resp, &ctx.what).await);
        }
        let size = content_length(resp.headers());
        let name = self.name.clone();
        let stream = resp.bytes_stream().map_err(move |e| {
            std::io::Error::other(format!("reading from registry {name}: {}", error_chain(&e)))
        });
        Ok(BlobDownload {
            size,
            stream: Box::pin(stream),
        })
    }

    /// Resolves an upload `Location` (relative or absolute) and the auth header to send to it.
    async fn upload_target(
        &self,
        repo: &str,
        ctx: &Ctx<'_>,
        resp: &Response,
    ) -> Result<(Url, Option<HeaderValue>), ClientError> {
        let url = self.location(ctx, resp, "upload")?;
        let info = self.host_info(repo).await?;
        let auth = if same_origin(&url, &info.base) {
            self.authorization(&info, repo, &ctx.scopes, false).await?
        } else {
            None
        };
        Ok((url, auth))
    }

    async fn cancel_upload(&self, repo: &str, url: &Url, auth: &Option<HeaderValue>) {
        let (key, _) = self.config(repo);
        let mut rb = self.http(&key).delete(url.clone());
        if let Some(a) = auth {
            rb = rb.header(header::AUTHORIZATION, a.clone());
        }
        let _ = rb.send().await;
    }

    async fn start_upload(
        &self,
        repo: &str,
        ctx: &Ctx<'_>,
        query: &str,
    ) -> Result<Response, ClientError> {
        let path = format!("v2/{repo}/blobs/uploads/{query}");
        self.send(
            ctx,
            Method::POST,
            |b| Self::url(b, &path),
            |r| r.header(header::CONTENT_LENGTH, "0"),
        )
        .await
    }

    /// Uploads a blob of `size` bytes from `stream`: one streamed `PUT ?digest=` after the
    /// `POST`, or, once this registry refused that, chunked `PATCH`es of [`CHUNK_SIZE`]. If
    /// the stream fails (for example a [`crate::VerifyingStream`] detecting corruption), the
    /// upload is never completed and its session is cancelled. Not retried here: the caller
    /// reopens the source and calls again.
    pub async fn push_blob(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        stream: ByteStream,
    ) -> Result<(), ClientError> {
        let ctx = Ctx {
            repo,
            scopes: vec![Self::push_scope(repo)],
            what: format!("pushing blob {digest} to {repo}"),
        };
        let resp = self.start_upload(repo, &ctx, "").await?;
        if resp.status() != StatusCode::ACCEPTED && !resp.status().is_success() {
            return Err(self.status_error(repo, resp, &ctx.what).await);
        }
        let (url, auth) = self.upload_target(repo, &ctx, &resp).await?;
        let chunked = *self
            .inner()
            .chunked
            .lock()
            .expect("lock")
            .get(&self.host)
            .unwrap_or(&false);
        // The stream's own error, kept aside: reqwest reports only "body error".
        let slot: Arc<Mutex<Option<std::io::Error>>> = Arc::new(Mutex::new(None));
        let slot2 = slot.clone();
        let stream = stream.map_err(move |e| {
            let msg = e.to_string();
            *slot2.lock().expect("lock") = Some(e);
            std::io::Error::other(msg)
        });
        let result = if chunked {
            self.push_chunked(
                repo,
                &ctx,
                digest,
                url.clone(),
                auth.clone(),
                Box::pin(stream),
            )
            .await
        } else {
            let mut put = url.clone();
            put.query_pairs_mut()
                .append_pair("digest", &digest.to_string());
            let (key, _) = self.config(repo);
            let mut rb = self
                .http(&key)
                .put(put)
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .header(header::CONTENT_LENGTH, size.to_string())
                .body(reqwest::Body::wrap_stream(stream));
            if let Some(a) = &auth {
                rb = rb.header(header::AUTHORIZATION, a.clone());
            }
            match rb.send().await {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => {
                    let status = r.status();
                    let err = self.status_error(repo, r, &ctx.what).await;
                    let refused = matches!(status.as_u16(), 405 | 411 | 413 | 416)
                        || (status == StatusCode::BAD_REQUEST
                            && !err.to_string().contains("DIGEST_INVALID"));
                    if refused && slot.lock().expect("lock").is_none() {
                        self.inner()
                            .chunked
                            .lock()
                            .expect("lock")
                            .insert(self.host.clone(), true);
                        Err(ClientError::MonolithicRefused {
                            registry: self.name.clone(),
                            digest: digest.clone(),
                            status: status.as_u16(),
                        })
                    } else {
                        Err(err)
                    }
                }
                Err(e) => Err(map_send_error(&self.name, &e)),
            }
        };
        match result {
            Ok(()) => Ok(()),
            Err(e) => {
                self.cancel_upload(repo, &url, &auth).await;
                match slot.lock().expect("lock").take() {
                    Some(source) => Err(ClientError::Body {
                        registry: self.name.clone(),
                        repository: repo.into(),
                        digest: digest.clone(),
                        source,
                    }),
                    None => Err(e),
                }
            }
        }
    }

    async fn push_chunked(
        &self,
        repo: &str,
        ctx: &Ctx<'_>,
        digest: &Digest,
        mut url: Url,
        mut auth: Option<HeaderValue>,
        mut stream: ByteStream,
    ) -> Result<(), ClientError> {
        let (key, _) = self.config(repo);
        let http = self.http(&key);
        let mut offset: u64 = 0;
        let mut buf = BytesMut::with_capacity(CHUNK_SIZE);
        let mut ended = false;
        while !ended {
            while buf.len() < CHUNK_SIZE {
                match stream.next().await {
                    Some(Ok(b)) => buf.extend_from_slice(&b),
                    Some(Err(e)) => {
                        return Err(ClientError::Body {
                            registry: self.name.clone(),
                            repository: repo.into(),
                            digest: digest.clone(),
                            source: e,
                        });
                    }
                    None => {
                        ended = true;
                        break;
                    }
                }
            }
            let chunk = if buf.len() > CHUNK_SIZE {
                buf.split_to(CHUNK_SIZE).freeze()
            } else {
                buf.split().freeze()
            };
            if chunk.is_empty() {
                continue;
            }
            let end = offset + chunk.len() as u64 - 1;
            let mut rb = http
                .patch(url.clone())
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .header(header::CONTENT_RANGE, format!("{offset}-{end}"))
                .header(header::CONTENT_LENGTH, chunk.len().to_string())
                .body(chunk.clone());
            if let Some(a) = &auth {
                rb = rb.header(header::AUTHORIZATION, a.clone());
            }
            let resp = rb
                .send()
                .await
                .map_err(|e| map_send_error(&self.name, &e))?;
            if resp.status() != StatusCode::ACCEPTED && !resp.status().is_success() {
                return Err(self.status_error(repo, resp, &ctx.what).await);
            }
            offset = end + 1;
            if resp.headers().contains_key(header::LOCATION) {
                (url, auth) = self.upload_target(repo, ctx, &resp).await?;
            }
        }
        let mut put = url;
        put.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let mut rb = http.put(put).header(header::CONTENT_LENGTH, "0");
        if let Some(a) = &auth {
            rb = rb.header(header::AUTHORIZATION, a.clone());
        }
        let resp = rb
            .send()
            .await
            .map_err(|e| map_send_error(&self.name, &e))?;
        if !resp.status().is_success() {
            return Err(self.status_error(repo, resp, &ctx.what).await);
        }
        Ok(())
    }

    /// Asks the registry to mount `digest` from `from_repo` into `repo` (the token asks for
    /// `pull` on `from_repo` too). 201 → [`MountResult::Mounted`]; 202 → the session it
    /// opened is cancelled and [`MountResult::NotMounted`] returned.
    pub async fn mount_blob(
        &self,
        repo: &str,
        digest: &Digest,
        from_repo: &str,
    ) -> Result<MountResult, ClientError> {
        let ctx = Ctx {
            repo,
            scopes: vec![Self::push_scope(repo), Self::pull_scope(from_repo)],
            what: format!("mounting blob {digest} from {from_repo} into {repo}"),
        };
        let query = format!("?mount={digest}&from={from_repo}");
        let resp = self.start_upload(repo, &ctx, &query).await?;
        match resp.status() {
            StatusCode::CREATED => Ok(MountResult::Mounted),
            StatusCode::ACCEPTED => {
                if let Ok((url, auth)) = self.upload_target(repo, &ctx, &resp).await {
                    self.cancel_upload(repo, &url, &auth).await;
                }
                Ok(MountResult::NotMounted)
            }
            _ => Err(self.status_error(repo, resp, &ctx.what).await),
        }
    }

    /// All tags of `repo` (following `Link` pagination).
    pub async fn tags_list(&self, repo: &str) -> Result<Vec<String>, ClientError> {
        #[derive(serde::Deserialize)]
        struct Tags {
            tags: Option<Vec<String>>,
        }
        let ctx = Ctx {
            repo,
            scopes: vec![Self::pull_scope(repo)],
            what: format!("listing tags of {repo}"),
        };
        let mut out = Vec::new();
        let mut next = format!("v2/{repo}/tags/list?n=1000");
        for _ in 0..10_000 {
            let resp = self
                .send(&ctx, Method::GET, |b| Self::url(b, &next), |r| r)
                .await?;
            if resp.status() == StatusCode::NOT_FOUND {
                return Err(ClientError::ManifestNotFound {
                    registry: self.name.clone(),
                    repository: repo.into(),
                    reference: "(any tag)".into(),
                });
            }
            if !resp.status().is_success() {
                return Err(self.status_error(repo, resp, &ctx.what).await);
            }
            let link = resp
                .headers()
                .get(header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| {
                    l.split_once('<')
                        .and_then(|(_, r)| r.split_once('>'))
                        .map(|(u, _)| u.to_string())
                });
            let body = resp
                .bytes()
                .await
                .map_err(|e| map_send_error(&self.name, &e))?;
            let t: Tags = serde_json::from_slice(&body).map_err(|e| ClientError::Protocol {
                registry: self.name.clone(),
                what: ctx.what.clone(),
                detail: format!("bad tag list JSON: {e}"),
            })?;
            out.extend(t.tags.unwrap_or_default());
            match link {
                Some(l) => next = l.trim_start_matches('/').to_string(),
                None => return Ok(out),
            }
        }
        Ok(out)
    }
}

fn content_length(h: &HeaderMap) -> Option<u64> {
    h.get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// The `mediaType` field of a manifest, if it has one.
pub fn media_type_from_json(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct M {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        #[serde(rename = "schemaVersion")]
        schema_version: Option<u32>,
        manifests: Option<serde_json::Value>,
    }
    let m: M = serde_json::from_slice(bytes).ok()?;
    match (m.media_type, m.schema_version, m.manifests) {
        (Some(mt), _, _) => Some(mt),
        (None, Some(1), _) => Some(DOCKER_SCHEMA1_SIGNED.to_string()),
        (None, _, Some(_)) => Some(OCI_INDEX.to_string()),
        (None, _, None) => Some(OCI_MANIFEST.to_string()),
    }
}
