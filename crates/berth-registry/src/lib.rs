//! The edge registry: an OCI distribution-spec v1.1 server on [`berth_store`].
//!
//! - API: `/v2/`, manifests (GET/HEAD/PUT/DELETE by tag or digest, OCI and Docker types,
//!   content negotiation), blobs (GET/HEAD with Range, DELETE), uploads (monolithic,
//!   chunked with `Content-Range`, streamed; cross-repository mount), tags list and
//!   `_catalog` with pagination, referrers (`subject`, `artifactType` filter).
//! - Bodies are streamed to disk and verified; manifests are limited in size.
//! - Access: htpasswd (bcrypt) Basic auth and `/token` bearer tokens, anonymous pull on
//!   request; TLS from files or a generated CA.
//! - `/metrics` (Prometheus text), a `tracing` line per request.
//! - Pull-through caching of upstream registries ([`proxy`]).

// `ApiError` is the HTTP error response itself (status, code, headers); it is built once
// per failed request and returned straight away, so its size does not matter.
#![allow(clippy::result_large_err)]

mod auth;
mod config;
mod content;
mod error;
mod metrics;
pub mod proxy;
mod response;
mod routes;
pub mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::{any, get};
use berth_store::{BlobWriter, Store};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;

pub use auth::load_htpasswd;
pub use config::{
    AuthConfig, Config, Limits, LogFormat, Overrides, ProxyConfig, TlsConfig, Upstream,
    parse_duration,
};
pub use content::ReadOnlyContent;
pub use error::{ApiError, RegistryError};
pub use routes::{Route, parse_route};

/// An upload in progress.
pub(crate) struct Session {
    repo: String,
    writer: Option<BlobWriter>,
    touched: Instant,
}

/// The server's shared state.
pub struct State {
    /// What reads are served from: the store, or a read-only backend.
    pub(crate) content: Arc<dyn ReadOnlyContent>,
    /// The store pushes, deletes and pull-through caching write to; `None` when read-only.
    pub(crate) store: Option<Store>,
    pub(crate) cfg: Config,
    pub(crate) auth: auth::Auth,
    pub(crate) metrics: metrics::Metrics,
    pub(crate) tls: bool,
    pub(crate) uploads: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Session>>>>,
    pub(crate) proxy: Option<proxy::Proxy>,
}

impl State {
    /// Opens the data directory (as the only server on it) and loads the settings.
    pub fn new(cfg: Config, tls: bool) -> Result<Arc<State>, RegistryError> {
        let store = Store::open_server(&cfg.data)?;
        Self::with_store(cfg, store, tls)
    }

    /// A state on an already opened store (tests).
    pub fn with_store(cfg: Config, store: Store, tls: bool) -> Result<Arc<State>, RegistryError> {
        let auth = auth::Auth::new(&cfg.auth)?;
        let proxy = proxy::Proxy::from_config(&cfg.proxy)?;
        Ok(Arc::new(State {
            content: Arc::new(store.clone()),
            store: Some(store),
            auth,
            metrics: metrics::Metrics::default(),
            tls,
            uploads: Mutex::new(HashMap::new()),
            proxy,
            cfg,
        }))
    }

    /// A read-only registry serving `content` (`berth bundle serve`): the routes of `berth
    /// serve` without auth, uploads or pull-through caching; writes answer `405`.
    pub fn read_only(content: Arc<dyn ReadOnlyContent>, tls: bool) -> Arc<State> {
        Arc::new(State {
            content,
            store: None,
            auth: auth::Auth::disabled(),
            metrics: metrics::Metrics::default(),
            tls,
            uploads: Mutex::new(HashMap::new()),
            proxy: None,
            cfg: Config::default(),
        })
    }

    /// Whether the server speaks TLS.
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// The store (`None` for a read-only registry).
    pub fn store(&self) -> Option<&Store> {
        self.store.as_ref()
    }

    /// The store writes go to; `405 UNSUPPORTED` for a read-only registry.
    pub(crate) fn writable(&self) -> Result<&Store, ApiError> {
        self.store.as_ref().ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "UNSUPPORTED",
                "this registry is read-only",
            )
        })
    }

    /// Drops upload sessions idle for longer than `limits.upload_idle_seconds` (their
    /// partial files are removed).
    pub fn expire_uploads(&self) -> usize {
        let idle = Duration::from_secs(self.cfg.limits.upload_idle_seconds);
        let mut u = self.uploads.lock().expect("lock");
        let before = u.len();
        u.retain(|_, s| match s.try_lock() {
            Ok(g) => g.touched.elapsed() < idle,
            Err(_) => true,
        });
        before - u.len()
    }
}

/// The HTTP application (also used in-process by tests with `tower::ServiceExt::oneshot`).
pub fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/v2/", get(routes::base))
        .route("/v2", get(routes::base))
        .route("/v2/_catalog", get(routes::catalog))
        .route("/token", get(routes::token))
        .route("/metrics", get(routes::metrics))
        .route("/v2/{*rest}", any(routes::dispatch))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            routes::observe,
        ))
        .with_state(state)
}

/// A bound, not yet serving, registry.
pub struct Server {
    listener: tokio::net::TcpListener,
    state: Arc<State>,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Server {
    /// Binds the listen address, then creates the data directory, reads TLS material and
    /// opens the store. A server that cannot start leaves no new directory behind.
    pub async fn bind(cfg: Config) -> Result<Server, RegistryError> {
        let addr: SocketAddr =
            cfg.listen
                .parse()
                .map_err(|e: std::net::AddrParseError| RegistryError::Listen {
                    listen: cfg.listen.clone(),
                    reason: e.to_string(),
                })?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| RegistryError::Bind {
                listen: cfg.listen.clone(),
                source,
            })?;
        let created = cfg.data.ancestors().take_while(|a| !a.exists()).last();
        let created = created.map(std::path::Path::to_path_buf);
        let opened = Self::open(cfg);
        if let (Err(_), Some(dir)) = (&opened, &created) {
            let _ = std::fs::remove_dir_all(dir);
        }
        let (state, tls) = opened?;
        Ok(Server {
            listener,
            state,
            tls,
        })
    }

    /// The data directory (created), the TLS material and the state on the store.
    #[allow(clippy::type_complexity)]
    fn open(cfg: Config) -> Result<(Arc<State>, Option<Arc<rustls::ServerConfig>>), RegistryError> {
        let data = cfg.data.clone();
        let data_dir = |source| RegistryError::DataDir {
            path: data.clone(),
            source,
        };
        std::fs::create_dir_all(&cfg.data).map_err(data_dir)?;
        let tls = tls::from_config(&cfg.tls, &cfg.data, &cfg.listen)?;
        let state = State::new(cfg, tls.is_some()).map_err(|e| match e {
            RegistryError::Store(berth_store::StoreError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                data_dir(source)
            }
            e => e,
        })?;
        Ok((state, tls))
    }

    /// `http://ADDR` or `https://ADDR`: where clients reach the server.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr())
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// Serves until `shutdown` completes.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), RegistryError> {
        let app = router(self.state.clone());
        let state = self.state.clone();
        tracing::info!(
            listen = %self.local_addr(),
            tls = self.tls.is_some(),
            data = %state.cfg.data.display(),
            auth = state.auth.enabled(),
            "berth registry serving"
        );
        let janitor = {
            let state = state.clone();
            tokio::spawn(async move {
                let mut t = tokio::time::interval(Duration::from_secs(60));
                loop {
                    t.tick().await;
                    let n = state.expire_uploads();
                    if n > 0 {
                        tracing::info!(expired = n, "dropped idle upload sessions");
                    }
                }
            })
        };
        serve_app(self.listener, self.tls, app, shutdown).await;
        janitor.abort();
        Ok(())
    }
}

/// Serves `app` on `listener` (over TLS with `tls`: HTTP/1.1 and HTTP/2 by ALPN) until
/// `shutdown` completes: the connection handling of `berth serve`, also used by `berth
/// bundle serve`.
pub async fn serve_app(
    listener: tokio::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let acceptor = tls.clone();
        tokio::spawn(async move {
            let svc = TowerToHyperService::new(app);
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let r = match acceptor {
                Some(acc) => {
                    let tls = match tokio::time::timeout(Duration::from_secs(15), acc.accept(tcp))
                        .await
                    {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    };
                    builder
                        .serve_connection_with_upgrades(TokioIo::new(tls), svc)
                        .await
                }
                None => {
                    builder
                        .serve_connection_with_upgrades(TokioIo::new(tcp), svc)
                        .await
                }
            };
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}
