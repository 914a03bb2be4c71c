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
use crate::side::Side;

mod blobs;
mod manifests;
mod pages;
mod referrers;
pub use referrers::ReferrersListing;
mod tags;
mod uploads;
use berth_oci::{ByteStream, VerifyError, digest_of, sha256_of};

pub use berth_oci::media::{
    DOCKER_LIST, DOCKER_MANIFEST, DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED, MAX_MANIFEST_BYTES,
    OCI_INDEX, OCI_MANIFEST,
};

/// Manifest media types Berth copies, for `Accept`.
pub const MANIFEST_ACCEPT: &[&str] = berth_oci::media::MANIFEST_TYPES;
/// Chunk size of a chunked (PATCH) upload.
pub const CHUNK_SIZE: usize = 8 << 20;

pub use berth_oci::Manifest;

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
    /// The `Cache-Control` of reads (GET, HEAD): `only-if-cached` (a caching registry, the
    /// edge registry with pull-through, answers from what it stores, never from upstream) or
    /// `no-store` (it may ask upstream, but stores nothing of the answer).
    cache_control: Option<&'static str>,
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

/// The HTTP client for the registry (or other server, such as a Helm chart repository) whose
/// settings are `cfg` under `key`: its CAs trusted besides the system roots, or nothing
/// verified when `insecure`; redirects are not followed (callers follow them by hand, so
/// that credentials go only where they belong). Fails when a CA does not parse.
pub fn http_client(
    key: &str,
    cfg: Option<&RegistryConfig>,
) -> Result<reqwest::Client, ClientError> {
    build_http(key, cfg)
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

pub(crate) use berth_oci::error_chain;

/// The TLS error behind a request error, if there is one (reqwest keeps it inside an
/// `io::Error`, whose `source()` skips it).
fn rustls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if let Some(r) = c.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(inner) = c
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            let inner: &(dyn std::error::Error + 'static) = inner;
            if let Some(r) = rustls_error(inner) {
                return Some(r);
            }
        }
        cur = c.source();
    }
    None
}

/// The innermost message of an error chain (`Connection refused (os error 111)`).
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// A request error as a [`ClientError`] naming `registry` and its side: a plain-HTTP server
/// answering the TLS hello, a TLS failure (with the issuer of an untrusted certificate), or
/// a connection failure.
pub fn map_send_error(registry: &str, side: &Side, e: &reqwest::Error) -> ClientError {
    let (registry, side) = (registry.to_string(), side.clone());
    match rustls_error(e) {
        Some(rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)) => {
            ClientError::PlainHttp { registry, side }
        }
        Some(rustls::Error::InvalidCertificate(rustls::CertificateError::Other(o)))
            if o.0
                .downcast_ref::<crate::tls::UntrustedCertificate>()
                .is_some() =>
        {
            ClientError::Tls {
                registry,
                detail: o.0.to_string(),
                side,
            }
        }
        Some(r) => ClientError::Tls {
            registry,
            detail: r.to_string(),
            side,
        },
        None => {
            let detail = error_chain(e);
            let d = detail.to_ascii_lowercase();
            if d.contains("certificate") || d.contains("tls") || d.contains("handshake") {
                ClientError::Tls {
                    registry,
                    detail,
                    side,
                }
            } else {
                ClientError::Connect {
                    registry,
                    detail: root_cause(e),
                    side,
                }
            }
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
                cache_control: None,
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
        let inner = self.unshared();
        Client {
            inner: Arc::new(Inner { retry, ..inner }),
        }
    }

    /// The same client asking caches for what they store only: every read carries
    /// `Cache-Control: only-if-cached` (RFC 9111), so a pull-through registry such as
    /// `berth serve` answers "not found" for content it would fetch from upstream instead
    /// of fetching it. Registries without a cache ignore the header. Mirror and verify
    /// read their targets this way, so seeding the edge registry stores the images.
    pub fn local_only(self) -> Client {
        self.with_cache_control("only-if-cached")
    }

    /// The same client asking caches to store nothing of what it reads: every read carries
    /// `Cache-Control: no-store` (RFC 9111), so a pull-through registry such as `berth serve`
    /// answers through its upstream without keeping the answer. Verify asks the edge registry
    /// so whether its upstream has an image, leaving its store as it was.
    pub fn no_store(self) -> Client {
        self.with_cache_control("no-store")
    }

    fn with_cache_control(self, value: &'static str) -> Client {
        let inner = self.unshared();
        Client {
            inner: Arc::new(Inner {
                cache_control: Some(value),
                ..inner
            }),
        }
    }

    fn unshared(self) -> Inner {
        Arc::try_unwrap(self.inner).unwrap_or_else(|arc| Inner {
            configs: arc.configs.clone(),
            retry: arc.retry,
            cache_control: arc.cache_control,
            http: Mutex::new(arc.http.lock().expect("lock").clone()),
            hosts: Mutex::new(HashMap::new()),
            probing: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            chunked: Mutex::new(HashMap::new()),
        })
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

impl<'a> Ctx<'a> {
    /// A read of `repo`: its pull scope.
    fn pull(repo: &'a str, what: String) -> Ctx<'a> {
        Ctx {
            repo,
            scopes: vec![Registry::pull_scope(repo)],
            what,
        }
    }

    /// A write to `repo`: its push (and pull) scope.
    fn push(repo: &'a str, what: String) -> Ctx<'a> {
        Ctx {
            repo,
            scopes: vec![Registry::push_scope(repo)],
            what,
        }
    }
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
        let side = self.side();
        match (status, user) {
            (StatusCode::UNAUTHORIZED, Some(username)) => ClientError::CredentialsRejected {
                registry: self.name.clone(),
                username,
                what: what.to_string(),
                side,
            },
            (StatusCode::UNAUTHORIZED, None) => ClientError::AuthRequired {
                registry: self.name.clone(),
                what: what.to_string(),
                side,
            },
            (_, user) => ClientError::Denied {
                registry: self.name.clone(),
                what: what.to_string(),
                who: user.map_or("anonymous access".to_string(), |u| format!("user `{u}`")),
                side,
            },
        }
    }

    /// Which registry this is to the user (source, external, edge), for errors.
    fn side(&self) -> Side {
        self.inner().configs.side(&self.name).clone()
    }

    /// A request error, naming this registry and its side.
    pub(crate) fn send_error(&self, e: &reqwest::Error) -> ClientError {
        map_send_error(&self.name, &self.side(), e)
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
                        let err = self.send_error(&e);
                        // A TLS failure of a verified registry (or a plain-HTTP one) will
                        // not heal by retrying.
                        let tls =
                            matches!(err, ClientError::Tls { .. } | ClientError::PlainHttp { .. });
                        if tls && !insecure {
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
                            let err = self.send_error(&e);
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
                let body = resp.bytes().await.map_err(|e| self.send_error(&e))?;
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
            if let Some(cc) = self.inner().cache_control
                && (method == Method::GET || method == Method::HEAD)
            {
                rb = rb.header(header::CACHE_CONTROL, cc);
            }
            if let Some(a) = &auth {
                rb = rb.header(header::AUTHORIZATION, a.clone());
            }
            match build(rb).send().await {
                Err(e) => {
                    let err = self.send_error(&e);
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
}
fn content_length(h: &HeaderMap) -> Option<u64> {
    h.get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

pub use berth_oci::media_type_from_json;
