//! The image-redirecting mutating admission webhook (`admission.k8s.io/v1`).
//!
//! For a Pod CREATE (and an UPDATE of the `pods/ephemeralcontainers` subresource, which is how
//! `kubectl debug` adds containers), every image of `containers`, `initContainers` and
//! `ephemeralContainers` goes through [`berth_rewrite::Rewriter::rewrite`]; each image it
//! changes becomes one JSONPatch `replace` of `/spec/<list>/<index>/image`. The rewrite is
//! idempotent, so a pod seen twice (reinvocation, a retried request) gets no patch the second
//! time, and an image the rewrite leaves alone gets no operation (a short name such as `nginx`
//! is not spelt out when it is not redirected).
//!
//! **Opt-out.** Namespaces labelled `stylus.io/imageswap=disable` never reach the webhook: the
//! generated configuration's `namespaceSelector` excludes them ([`manifest`]), which is how
//! Kubernetes intends namespace scoping (an admission request carries no namespace labels).
//! [`namespace_opted_out`] decides the same from labels for callers that have them.
//! `stylus.imageRedirectWebhook.enable: false` makes the rewrite the identity: every pod is
//! allowed unchanged.
//!
//! **Failures.** An image that does not parse or cannot be rewritten is, with
//! [`FailurePolicy::Ignore`] (fail open), left as it is with a warning in `response.warnings`
//! and a log line, while the pod's other images are still redirected; with
//! [`FailurePolicy::Fail`] the pod is denied with a message naming each container and image.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use berth_rewrite::{OPT_OUT_LABEL, OPT_OUT_VALUE, Rewriter};
use json_patch::{Patch, PatchOperation, ReplaceOperation, jsonptr::PointerBuf};
use k8s_openapi::api::core::v1::Pod;
use kube_core::DynamicObject;
use kube_core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

use crate::NodeError;
use crate::signatures::Gate;
use crate::text::q;
use berth_reference::Reference;

/// What the API server does when the webhook cannot be reached, and what the webhook does with
/// an image it cannot rewrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Fail open: allow the pod, leave the image, warn.
    Ignore,
    /// Fail closed: deny the pod.
    Fail,
}

impl FailurePolicy {
    /// The `failurePolicy` value of a `MutatingWebhookConfiguration`.
    pub fn as_k8s(self) -> &'static str {
        match self {
            FailurePolicy::Ignore => "Ignore",
            FailurePolicy::Fail => "Fail",
        }
    }
}

/// True when a namespace with these labels is opted out (`stylus.io/imageswap=disable`).
pub fn namespace_opted_out(labels: &BTreeMap<String, String>) -> bool {
    labels.get(OPT_OUT_LABEL).map(String::as_str) == Some(OPT_OUT_VALUE)
}

/// Which container lists a request may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Pod CREATE: every list.
    AllContainers,
    /// UPDATE of `pods/ephemeralcontainers`: only `ephemeralContainers` can change.
    EphemeralOnly,
}

/// One image the webhook redirects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// `containers`, `initContainers` or `ephemeralContainers`.
    pub list: &'static str,
    pub index: usize,
    pub container: String,
    pub from: String,
    pub to: String,
}

impl Change {
    /// The JSON pointer of the image field: `/spec/containers/0/image`.
    pub fn pointer(&self) -> String {
        format!("/spec/{}/{}/image", self.list, self.index)
    }
}

/// One image the webhook could not rewrite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub list: &'static str,
    pub index: usize,
    pub container: String,
    pub image: String,
    pub reason: String,
}

impl Failure {
    fn describe(&self) -> String {
        format!(
            "container {} ({}[{}]) image {}: {}",
            q(&self.container),
            self.list,
            self.index,
            q(&self.image),
            self.reason
        )
    }
}

/// What the rewrite does to one pod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mutation {
    pub changes: Vec<Change>,
    pub failures: Vec<Failure>,
}

impl Mutation {
    /// One `replace` per change.
    pub fn patch(&self) -> Patch {
        Patch(
            self.changes
                .iter()
                .map(|c| {
                    PatchOperation::Replace(ReplaceOperation {
                        path: PointerBuf::from_tokens([
                            "spec".to_string(),
                            c.list.to_string(),
                            c.index.to_string(),
                            "image".to_string(),
                        ]),
                        value: serde_json::Value::String(c.to.clone()),
                    })
                })
                .collect(),
        )
    }
}

/// The webhook's decision logic: the rewrite function and a failure policy.
#[derive(Debug, Clone)]
pub struct Mutator {
    rewriter: Rewriter,
    policy: FailurePolicy,
    /// The signature policy every image must pass (`berth webhook --policy`).
    gate: Option<Arc<Gate>>,
}

/// A finished admission decision: the review to send back and the lines to log.
#[derive(Debug)]
pub struct Decision {
    pub review: AdmissionReview<DynamicObject>,
    pub log: Vec<String>,
}

impl Decision {
    /// The response body as `admission.k8s.io/v1` specifies it: `patch` is a base64 string
    /// (kube-core serializes the bytes as a JSON array of numbers, which Go's decoder also
    /// takes, but the API documents base64).
    pub fn to_json(&self) -> Result<Vec<u8>, NodeError> {
        use base64::Engine as _;
        let mut v = serde_json::to_value(&self.review)
            .map_err(|e| NodeError::Request(format!("cannot encode the response: {e}")))?;
        if let Some(patch) = v.pointer_mut("/response/patch")
            && let Some(items) = patch.as_array()
        {
            let bytes: Vec<u8> = items
                .iter()
                .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect::<Option<_>>()
                .ok_or_else(|| NodeError::Request("the patch is not bytes".into()))?;
            *patch =
                serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
        }
        serde_json::to_vec(&v)
            .map_err(|e| NodeError::Request(format!("cannot encode the response: {e}")))
    }
}

impl Mutator {
    pub fn new(rewriter: Rewriter, policy: FailurePolicy) -> Mutator {
        Mutator {
            rewriter,
            policy,
            gate: None,
        }
    }

    /// The same mutator denying pods with an image the signature policy refuses.
    pub fn with_gate(self, gate: Arc<Gate>) -> Mutator {
        Mutator {
            gate: Some(gate),
            ..self
        }
    }

    pub fn rewriter(&self) -> &Rewriter {
        &self.rewriter
    }

    pub fn policy(&self) -> FailurePolicy {
        self.policy
    }

    /// The changes the rewrite makes to `pod`'s images.
    pub fn mutate(&self, pod: &Pod, scope: Scope) -> Mutation {
        let mut m = Mutation::default();
        let Some(spec) = &pod.spec else {
            return m;
        };
        let mut images: Vec<(&'static str, usize, &str, Option<&str>)> = Vec::new();
        if scope == Scope::AllContainers {
            for (i, c) in spec.containers.iter().enumerate() {
                images.push(("containers", i, &c.name, c.image.as_deref()));
            }
            for (i, c) in spec.init_containers.iter().flatten().enumerate() {
                images.push(("initContainers", i, &c.name, c.image.as_deref()));
            }
        }
        for (i, c) in spec.ephemeral_containers.iter().flatten().enumerate() {
            images.push(("ephemeralContainers", i, &c.name, c.image.as_deref()));
        }
        for (list, index, name, image) in images {
            let Some(image) = image else { continue };
            let failure = |reason: String| Failure {
                list,
                index,
                container: name.to_string(),
                image: image.to_string(),
                reason,
            };
            let parsed = match berth_reference::Reference::parse(image) {
                Ok(r) => r,
                Err(e) => {
                    m.failures.push(failure(e.to_string()));
                    continue;
                }
            };
            match self.rewriter.rewrite(&parsed) {
                Ok(target) if target == parsed => {}
                Ok(target) => m.changes.push(Change {
                    list,
                    index,
                    container: name.to_string(),
                    from: image.to_string(),
                    to: target.to_string(),
                }),
                Err(e) => m.failures.push(failure(e.to_string())),
            }
        }
        m
    }

    /// The response to one admission request.
    pub fn decide(
        &self,
        req: &AdmissionRequest<DynamicObject>,
    ) -> (AdmissionResponse, Vec<String>) {
        let mut log = Vec::new();
        let mut resp = AdmissionResponse::from(req);
        let who = format!(
            "{}/{} ({})",
            req.namespace.as_deref().unwrap_or("-"),
            if req.name.is_empty() {
                "<generated>"
            } else {
                &req.name
            },
            req.uid
        );
        let scope = match (&req.operation, req.sub_resource.as_deref()) {
            (Operation::Create, None) => Scope::AllContainers,
            (Operation::Update, Some("ephemeralcontainers")) => Scope::EphemeralOnly,
            _ => return (resp, log),
        };
        if req.kind.kind != "Pod" {
            return (resp, log);
        }
        let pod: Pod = match req
            .object
            .as_ref()
            .map(serde_json::to_value)
            .transpose()
            .and_then(|v| v.map(serde_json::from_value).transpose())
        {
            Ok(Some(p)) => p,
            Ok(None) => return (resp, log),
            Err(e) => {
                let msg = format!("berth: the pod object does not decode: {e}");
                log.push(format!("{who}: {msg}"));
                return match self.policy {
                    FailurePolicy::Ignore => {
                        resp.warnings = Some(vec![msg]);
                        (resp, log)
                    }
                    FailurePolicy::Fail => (resp.deny(msg), log),
                };
            }
        };
        let m = self.mutate(&pod, scope);
        for f in &m.failures {
            log.push(format!("{who}: image not redirected: {}", f.describe()));
        }
        if !m.failures.is_empty() && self.policy == FailurePolicy::Fail {
            let list: Vec<String> = m.failures.iter().map(Failure::describe).collect();
            let mut resp = resp.deny(format!(
                "berth: cannot redirect the pod's images (failurePolicy Fail): {}",
                list.join("; ")
            ));
            resp.result.code = 403;
            return (resp, log);
        }
        if !m.failures.is_empty() {
            resp.warnings = Some(
                m.failures
                    .iter()
                    .map(|f| format!("berth: image left as it is: {}", f.describe()))
                    .collect(),
            );
        }
        for c in &m.changes {
            log.push(format!(
                "{who}: {}[{}] {}: {} -> {}",
                c.list,
                c.index,
                q(&c.container),
                c.from,
                c.to
            ));
        }
        if m.changes.is_empty() {
            return (resp, log);
        }
        match resp.clone().with_patch(m.patch()) {
            Ok(r) => (r, log),
            Err(e) => {
                log.push(format!("{who}: cannot serialize the patch: {e}"));
                (resp, log)
            }
        }
    }

    /// Decodes an `AdmissionReview` body and decides it, without the signature policy.
    pub fn review(&self, body: &[u8]) -> Result<Decision, NodeError> {
        let req = Self::request(body)?;
        let (resp, log) = self.decide(&req);
        Ok(Decision {
            review: resp.into_review(),
            log,
        })
    }

    /// Decodes an `AdmissionReview` body and decides it; with a signature policy, a pod
    /// whose image fails it is denied (`allowed: false`, the message naming each image and
    /// why). An image whose signatures cannot be read is denied too: the policy fails closed.
    pub async fn review_checked(&self, body: &[u8]) -> Result<Decision, NodeError> {
        let req = Self::request(body)?;
        let (resp, mut log) = self.decide(&req);
        let (Some(gate), true) = (&self.gate, resp.allowed) else {
            return Ok(Decision {
                review: resp.into_review(),
                log,
            });
        };
        let mut refused = Vec::new();
        for (what, source, target) in self.images(&req) {
            match gate.check(&source, &target).await {
                Ok(d) if d.allowed() => {}
                Ok(d) => refused.push(format!("{what}: {}", d.verdict)),
                Err(e) => refused.push(format!("{what}: cannot check its signatures: {e}")),
            }
        }
        if refused.is_empty() {
            return Ok(Decision {
                review: resp.into_review(),
                log,
            });
        }
        let msg = format!(
            "berth: signature policy {}: {}",
            gate.policy().file,
            refused.join("; ")
        );
        log.push(format!("{} ({}): denied: {msg}", req.name, req.uid));
        let mut denied = AdmissionResponse::from(&req).deny(msg);
        denied.result.code = 403;
        Ok(Decision {
            review: denied.into_review(),
            log,
        })
    }

    /// Each image of the pod a request creates (or adds): a description, the reference as
    /// written (its source, which signatures name) and where it will be pulled from.
    fn images(&self, req: &AdmissionRequest<DynamicObject>) -> Vec<(String, Reference, Reference)> {
        let scope = match req.sub_resource.as_deref() {
            Some("ephemeralcontainers") => Scope::EphemeralOnly,
            _ => Scope::AllContainers,
        };
        let pod: Option<Pod> = req
            .object
            .as_ref()
            .and_then(|o| serde_json::to_value(o).ok())
            .and_then(|v| serde_json::from_value(v).ok());
        let Some(spec) = pod.and_then(|p| p.spec) else {
            return Vec::new();
        };
        let mut all: Vec<(&str, String, Option<String>)> = Vec::new();
        if scope == Scope::AllContainers {
            let init = spec.init_containers.unwrap_or_default();
            all.extend(
                init.into_iter()
                    .map(|c| ("initContainers", c.name, c.image)),
            );
            all.extend(
                spec.containers
                    .into_iter()
                    .map(|c| ("containers", c.name, c.image)),
            );
        }
        let eph = spec.ephemeral_containers.unwrap_or_default();
        all.extend(
            eph.into_iter()
                .map(|c| ("ephemeralContainers", c.name, c.image)),
        );
        all.into_iter()
            .filter_map(|(list, name, image)| {
                let source = Reference::parse(image.as_deref()?).ok()?;
                let target = self
                    .rewriter
                    .rewrite(&source)
                    .unwrap_or_else(|_| source.clone());
                Some((
                    format!("{list} {} image {source}", q(&name)),
                    source,
                    target,
                ))
            })
            .collect()
    }

    fn request(body: &[u8]) -> Result<AdmissionRequest<DynamicObject>, NodeError> {
        let review: AdmissionReview<DynamicObject> = serde_json::from_slice(body)
            .map_err(|e| NodeError::Request(format!("the body is not an AdmissionReview: {e}")))?;
        if review.types.api_version != "admission.k8s.io/v1"
            || review.types.kind != "AdmissionReview"
        {
            return Err(NodeError::Request(format!(
                "expected apiVersion admission.k8s.io/v1, kind AdmissionReview; got {} {}",
                review.types.api_version, review.types.kind
            )));
        }
        review
            .try_into()
            .map_err(|_| NodeError::Request("the AdmissionReview has no request".into()))
    }
}

/// Where log lines go (the binary prints them to stderr).
pub type Logger = Arc<dyn Fn(&str) + Send + Sync>;

#[derive(Clone)]
struct AppState {
    mutator: Arc<Mutator>,
    log: Logger,
}

/// The HTTP routes: `POST /mutate`, `GET /healthz`.
pub fn router(mutator: Arc<Mutator>, log: Logger) -> Router {
    Router::new()
        .route("/mutate", post(mutate_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .layer(DefaultBodyLimit::max(16 * 1024 * 1024))
        .with_state(AppState { mutator, log })
}

async fn mutate_handler(State(state): State<AppState>, body: Bytes) -> Response {
    match state.mutator.review_checked(&body).await {
        Ok(d) => {
            for line in &d.log {
                (state.log)(line);
            }
            match d.to_json() {
                Ok(bytes) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
                Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
            }
        }
        Err(e) => {
            (state.log)(&format!("bad request: {e}"));
            (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response()
        }
    }
}

/// A rustls server configuration from a PEM certificate chain and a PEM private key, with the
/// aws-lc-rs provider the rest of Berth uses; HTTP/2 and HTTP/1.1 by ALPN.
pub fn tls_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<rustls::ServerConfig>, NodeError> {
    let certs: Vec<_> = rustls_pemfile::certs(&mut &cert_pem[..])
        .collect::<Result<_, _>>()
        .map_err(|e| NodeError::Tls(format!("the certificate file does not parse: {e}")))?;
    if certs.is_empty() {
        return Err(NodeError::Tls(
            "the certificate file has no `-----BEGIN CERTIFICATE-----` block".into(),
        ));
    }
    let key = rustls_pemfile::private_key(&mut &key_pem[..])
        .map_err(|e| NodeError::Tls(format!("the key file does not parse: {e}")))?
        .ok_or_else(|| NodeError::Tls("the key file has no private key in PEM form".into()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| NodeError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| NodeError::Tls(format!("the key does not match the certificate: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves the webhook over HTTPS on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    mutator: Arc<Mutator>,
    log: Logger,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), NodeError> {
    let acceptor = TlsAcceptor::from(tls);
    let app = router(mutator, log.clone());
    tokio::pin!(shutdown);
    loop {
        let (stream, peer): (_, SocketAddr) = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    log(&format!("accept: {e}"));
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        let log = log.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(
                std::time::Duration::from_secs(10),
                acceptor.accept(stream),
            )
            .await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    log(&format!("TLS handshake with {peer}: {e}"));
                    return;
                }
                Err(_) => {
                    log(&format!("TLS handshake with {peer}: timed out"));
                    return;
                }
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            if let Err(e) = builder
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await
            {
                log(&format!("connection from {peer}: {e}"));
            }
        });
    }
}

/// What `berth webhook` serves with, besides the rewrite rules.
pub struct WebhookServer {
    /// The serving certificate chain and its private key (PEM files).
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
    /// Default: `0.0.0.0` and the user data's `stylus.imageRedirectWebhook.port`, or 8443.
    pub listen: Option<SocketAddr>,
    pub failure_policy: FailurePolicy,
    /// A signature policy file every pod's images must pass.
    pub policy: Option<std::path::PathBuf>,
}

impl WebhookServer {
    /// Serves the user data's rewrite (with the edge registry `local` in front) at
    /// `https://LISTEN/mutate` until SIGINT or SIGTERM, logging what it does through `log`.
    pub async fn run(
        self,
        user_data: &berth_userdata::UserData,
        local: Option<berth_rewrite::LocalRegistry>,
        log: Logger,
    ) -> Result<(), NodeError> {
        let read = |p: &std::path::Path| {
            std::fs::read(p)
                .map_err(|e| NodeError::Config(format!("cannot read {}: {e}", p.display())))
        };
        let tls = tls_config(&read(self.cert.as_path())?, &read(self.key.as_path())?)?;
        let port = match user_data.webhook.port {
            0 => 8443,
            p => p,
        };
        let listen = self
            .listen
            .unwrap_or(SocketAddr::from(([0, 0, 0, 0], port)));
        let rewriter = Rewriter::new(Some(user_data), local);
        if !rewriter.enabled() {
            let off = "stylus.imageRedirectWebhook.enable is false: every pod is allowed unchanged";
            log(&format!("{}: {off}", user_data.file));
        }
        let rules = &user_data.redirect;
        log(&format!(
            "rules: {rules}; listening on https://{listen}/mutate"
        ));
        let mut mutator = Mutator::new(rewriter, self.failure_policy);
        if let Some(p) = &self.policy {
            let settings = berth_userdata::RegistrySettings::new(Some(user_data));
            let client = berth_client::Client::new((&settings).into())?;
            let ttl = std::time::Duration::from_secs(300);
            let gate = Gate::new(crate::signatures::load_policy(p)?, client, ttl);
            log(&format!(
                "signature policy {}: verdicts kept 5 minutes",
                p.display()
            ));
            mutator = mutator.with_gate(Arc::new(gate));
        }
        let mutator = Arc::new(mutator);
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| NodeError::Listen(format!("cannot listen on {listen}: {e}")))?;
        serve(listener, tls, mutator, log, shutdown_signal()).await
    }
}

/// Completes on SIGINT or SIGTERM (how kubelet and systemd stop the webhook).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// How the generated configuration reaches the webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A Service in the cluster (and the Service itself is printed).
    Service {
        namespace: String,
        name: String,
        /// The Service port (443).
        port: u16,
        /// The port `berth webhook` listens on in the pod.
        target_port: u16,
    },
    /// A URL the API server calls directly, e.g. `https://127.0.0.1:8443/mutate` when the
    /// webhook runs on the control-plane host.
    Url(String),
}

/// What [`manifest`] prints.
#[derive(Debug, Clone)]
pub struct ManifestOptions {
    /// `metadata.name` of the configuration.
    pub name: String,
    pub endpoint: Endpoint,
    /// The webhook's own namespace, excluded so the webhook never blocks itself.
    pub own_namespace: String,
    /// PEM of the CA that signed the serving certificate (becomes `caBundle`).
    pub ca_bundle_pem: Option<String>,
    pub failure_policy: FailurePolicy,
    pub timeout_seconds: u8,
}

impl Default for ManifestOptions {
    fn default() -> ManifestOptions {
        ManifestOptions {
            name: "berth-image-redirect".into(),
            endpoint: Endpoint::Service {
                namespace: "berth-system".into(),
                name: "berth-webhook".into(),
                port: 443,
                target_port: 8443,
            },
            own_namespace: "berth-system".into(),
            ca_bundle_pem: None,
            failure_policy: FailurePolicy::Ignore,
            timeout_seconds: 10,
        }
    }
}

impl Endpoint {
    /// `url` when given (see [`Endpoint::url`]), else the Service `name` in `namespace` on
    /// port 443, forwarding to the webhook's `target_port`.
    pub fn url_or_service(
        url: Option<&str>,
        namespace: &str,
        name: &str,
        target_port: u16,
    ) -> Result<Endpoint, NodeError> {
        match url {
            Some(u) => Endpoint::url(u),
            None => Ok(Endpoint::Service {
                namespace: namespace.to_string(),
                name: name.to_string(),
                port: 443,
                target_port,
            }),
        }
    }

    /// A URL the API server calls: it must be `https://`.
    pub fn url(url: &str) -> Result<Endpoint, NodeError> {
        match url.starts_with("https://") {
            true => Ok(Endpoint::Url(url.to_string())),
            false => Err(NodeError::Config(format!(
                "--url {url}: the API server calls webhooks over HTTPS; give https://HOST[:PORT]/mutate"
            ))),
        }
    }
}

impl ManifestOptions {
    /// `ca_bundle_pem` from the text of the file `name`, which must hold PEM certificates.
    pub fn ca_bundle(&mut self, name: &str, pem: String) -> Result<(), NodeError> {
        berth_userdata::split_pem(&pem).map_err(|m| NodeError::Config(format!("{name}: {m}")))?;
        self.ca_bundle_pem = Some(pem);
        Ok(())
    }
}

/// The label the generated Service selects the webhook's pods by.
pub const APP_LABEL: &str = "app.kubernetes.io/name";

/// The `MutatingWebhookConfiguration` (and, for a Service endpoint, the `Service`) that
/// install the webhook, as YAML.
pub fn manifest(o: &ManifestOptions) -> String {
    use base64::Engine as _;
    let mut y = String::new();
    y.push_str("# Generated by `berth webhook manifest`.\n");
    y.push_str("apiVersion: admissionregistration.k8s.io/v1\n");
    y.push_str("kind: MutatingWebhookConfiguration\n");
    y.push_str("metadata:\n");
    y.push_str(&format!("  name: {}\n", q(&o.name)));
    y.push_str("webhooks:\n");
    y.push_str("  - name: \"image-redirect.berth.stylus.io\"\n");
    y.push_str("    admissionReviewVersions: [\"v1\"]\n");
    y.push_str("    sideEffects: None\n");
    y.push_str(&format!(
        "    failurePolicy: {}\n",
        o.failure_policy.as_k8s()
    ));
    y.push_str("    matchPolicy: Equivalent\n");
    y.push_str("    reinvocationPolicy: IfNeeded\n");
    y.push_str(&format!("    timeoutSeconds: {}\n", o.timeout_seconds));
    y.push_str("    clientConfig:\n");
    match &o.endpoint {
        Endpoint::Service {
            namespace,
            name,
            port,
            ..
        } => {
            y.push_str("      service:\n");
            y.push_str(&format!("        namespace: {}\n", q(namespace)));
            y.push_str(&format!("        name: {}\n", q(name)));
            y.push_str("        path: \"/mutate\"\n");
            y.push_str(&format!("        port: {port}\n"));
        }
        Endpoint::Url(url) => y.push_str(&format!("      url: {}\n", q(url))),
    }
    if let Some(pem) = &o.ca_bundle_pem {
        let b64 = base64::engine::general_purpose::STANDARD.encode(pem.as_bytes());
        y.push_str(&format!("      caBundle: {}\n", q(&b64)));
    }
    y.push_str("    rules:\n");
    y.push_str("      - apiGroups: [\"\"]\n");
    y.push_str("        apiVersions: [\"v1\"]\n");
    y.push_str("        operations: [\"CREATE\"]\n");
    y.push_str("        resources: [\"pods\"]\n");
    y.push_str("        scope: \"Namespaced\"\n");
    y.push_str("      - apiGroups: [\"\"]\n");
    y.push_str("        apiVersions: [\"v1\"]\n");
    y.push_str("        operations: [\"UPDATE\"]\n");
    y.push_str("        resources: [\"pods/ephemeralcontainers\"]\n");
    y.push_str("        scope: \"Namespaced\"\n");
    y.push_str("    namespaceSelector:\n");
    y.push_str("      matchExpressions:\n");
    y.push_str(&format!("        - key: {}\n", q(OPT_OUT_LABEL)));
    y.push_str("          operator: NotIn\n");
    y.push_str(&format!("          values: [{}]\n", q(OPT_OUT_VALUE)));
    y.push_str("        - key: \"kubernetes.io/metadata.name\"\n");
    y.push_str("          operator: NotIn\n");
    y.push_str(&format!("          values: [{}]\n", q(&o.own_namespace)));
    if let Endpoint::Service {
        namespace,
        name,
        port,
        target_port,
    } = &o.endpoint
    {
        y.push_str("---\n");
        y.push_str("apiVersion: v1\n");
        y.push_str("kind: Service\n");
        y.push_str("metadata:\n");
        y.push_str(&format!("  name: {}\n", q(name)));
        y.push_str(&format!("  namespace: {}\n", q(namespace)));
        y.push_str("spec:\n");
        y.push_str("  type: ClusterIP\n");
        y.push_str("  selector:\n");
        y.push_str(&format!("    {}: {}\n", q(APP_LABEL), q(name)));
        y.push_str("  ports:\n");
        y.push_str("    - name: \"https\"\n");
        y.push_str("      protocol: TCP\n");
        y.push_str(&format!("      port: {port}\n"));
        y.push_str(&format!("      targetPort: {target_port}\n"));
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_or_a_service() {
        let e = Endpoint::url_or_service(None, "ns", "svc", 9443).unwrap();
        let want = Endpoint::Service {
            namespace: "ns".into(),
            name: "svc".into(),
            port: 443,
            target_port: 9443,
        };
        assert_eq!(format!("{e:?}"), format!("{want:?}"));
        let u = Endpoint::url_or_service(Some("https://10.0.0.1:8443/mutate"), "ns", "svc", 1);
        assert!(matches!(u.unwrap(), Endpoint::Url(u) if u == "https://10.0.0.1:8443/mutate"));
        let plain = Endpoint::url_or_service(Some("http://10.0.0.1/mutate"), "ns", "svc", 1);
        assert!(plain.unwrap_err().to_string().contains("HTTPS"));
    }

    #[test]
    fn opt_out_label() {
        let mut l = BTreeMap::new();
        assert!(!namespace_opted_out(&l));
        l.insert(OPT_OUT_LABEL.to_string(), "enable".to_string());
        assert!(!namespace_opted_out(&l));
        l.insert(OPT_OUT_LABEL.to_string(), "disable".to_string());
        assert!(namespace_opted_out(&l));
    }
}
