//! Pull-through caching of upstream registries.
//!
//! A pull names an upstream with containerd's `?ns=<host>` query parameter, or with the
//! path `/v2/<project>/<host_port>/<repo>`. Both are cached in the local repository
//! `<project>/<host_port>/<repo>`. Manifests fetched by tag are stored with the tag (an
//! index with all its child manifests); blobs are fetched on their first miss, once per
//! digest however many clients ask at the same time. A digest already held never goes
//! upstream; a tag is re-checked at most once per `tag_ttl_seconds`, and the cached tag
//! is served when the upstream fails.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod blobs;
mod manifests;

use axum::http::StatusCode;
use berth_client::{
    Client, ClientError, Credentials, RegistryConfig, RegistryConfigs, RetryPolicy, normalize_key,
};
use berth_reference::Digest;

use crate::config::ProxyConfig;
use crate::metrics::Metrics;
use crate::{ApiError, RegistryError, State};

pub(crate) use blobs::get_blob;
pub(crate) use manifests::get_manifest;

/// Where a pull goes upstream.
#[derive(Debug, Clone)]
pub struct UpstreamRoute {
    /// The repository in the local store that caches it.
    pub local_name: String,
    /// The upstream registry as clients name it (`host[:port]`).
    pub registry: String,
    /// The repository at the upstream (before any endpoint prefix).
    pub repository: String,
}

/// Where an upstream is fetched from.
#[derive(Debug, Clone)]
struct Target {
    /// `host[:port]` the client connects to.
    host: String,
    /// Repository prefix at that host (an endpoint's path), without slashes around it.
    prefix: String,
}

type Flights = Mutex<HashMap<Digest, Arc<tokio::sync::Mutex<()>>>>;

pub struct Proxy {
    client: Client,
    upstreams: HashMap<String, Target>,
    project: String,
    /// The user data's redirect (prefix or mapping rules): hosts that are not upstreams
    /// themselves are fetched from where it sends them.
    rewriter: Option<berth_rewrite::Rewriter>,
    tag_ttl: Duration,
    checked: Mutex<HashMap<(String, String), Instant>>,
    flights: Flights,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("upstreams", &self.upstreams.keys().collect::<Vec<_>>())
            .field("project", &self.project)
            .finish()
    }
}

fn split_endpoint(e: &str) -> (String, String) {
    let e = e
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_matches('/');
    match e.split_once('/') {
        Some((h, p)) => (h.to_string(), p.trim_matches('/').to_string()),
        None => (e.to_string(), String::new()),
    }
}

impl Proxy {
    /// The upstreams of the settings (user data registries and `upstreams`); `None` when
    /// there are none.
    pub fn from_config(cfg: &ProxyConfig) -> Result<Option<Proxy>, RegistryError> {
        let mut configs = RegistryConfigs::new();
        let mut upstreams = HashMap::new();
        let mut rewriter = None;
        if let Some(path) = &cfg.user_data {
            let text = std::fs::read_to_string(path).map_err(|source| RegistryError::Io {
                action: "read user data",
                path: path.clone(),
                source,
            })?;
            let ud = berth_userdata::UserData::parse(&text, &path.display().to_string())
                .map_err(|e| RegistryError::Upstream(e.to_string()))?;
            let settings = berth_userdata::RegistrySettings::new(Some(&ud));
            for (r, setting) in ud.registries.iter().zip(settings.entries()) {
                let rc = RegistryConfig::from(setting);
                let host = normalize_key(r.host());
                configs.insert_if_absent(&host, rc.clone());
                let field = Some(r.field.clone());
                configs.insert_on(&r.domain, rc, berth_client::Side::External { field });
                upstreams.entry(host.clone()).or_insert(Target {
                    host,
                    prefix: String::new(),
                });
            }
            let rw = berth_rewrite::Rewriter::new(Some(&ud), None);
            if rw.enabled() {
                rewriter = Some(rw);
            }
        }
        for u in &cfg.upstreams {
            let key = normalize_key(&u.registry);
            if key.is_empty() || key.contains('/') {
                return Err(RegistryError::Upstream(format!(
                    "upstream `{}`: `registry` must be host[:port]",
                    u.registry
                )));
            }
            let (host, prefix) = split_endpoint(u.endpoint.as_deref().unwrap_or(&key));
            let mut ca_pems = vec![];
            if let Some(ca) = &u.ca_file {
                ca_pems.push(
                    std::fs::read_to_string(ca).map_err(|source| RegistryError::Io {
                        action: "read upstream CA file",
                        path: ca.clone(),
                        source,
                    })?,
                );
            }
            let credentials = match (&u.username, &u.password) {
                (Some(n), p) => Some(Credentials::new(n.clone(), p.clone().unwrap_or_default())),
                (None, Some(_)) => {
                    return Err(RegistryError::Upstream(format!(
                        "upstream `{key}`: a password needs a username"
                    )));
                }
                (None, None) => None,
            };
            configs.insert(
                &host,
                RegistryConfig {
                    credentials,
                    insecure: u.insecure,
                    ca_pems,
                },
            );
            upstreams.insert(key, Target { host, prefix });
        }
        if upstreams.is_empty() && rewriter.is_none() {
            return Ok(None);
        }
        let tag_ttl = match &cfg.tag_recheck {
            Some(t) => crate::config::parse_duration(t)
                .map_err(|e| RegistryError::Upstream(format!("proxy.tag_recheck {e}")))?,
            None => Duration::from_secs(cfg.tag_ttl_seconds),
        };
        let client = Client::new(configs)
            .map_err(|e| RegistryError::Upstream(e.to_string()))?
            .with_retry(RetryPolicy::none());
        Ok(Some(Proxy {
            client,
            upstreams,
            project: cfg.project.trim_matches('/').to_string(),
            rewriter,
            tag_ttl,
            checked: Mutex::new(HashMap::new()),
            flights: Mutex::new(HashMap::new()),
        }))
    }

    /// The upstream a pull of `name` (with `?ns=`) goes to, if any.
    ///
    /// The path form `<project>/<host_port>/<repo>` names its upstream itself and wins over
    /// `?ns=`: containerd appends `?ns=<upstream host>` to every request to a mirror, also to
    /// a mirror written as `https://edge/v2/<project>/<host_port>` with `override_path`
    /// (what `berth node-config` writes), where `ns` is the host the pull named.
    pub fn route(&self, name: &str, ns: Option<&str>) -> Option<UpstreamRoute> {
        if let Some(r) = self.path_route(name) {
            return Some(r);
        }
        let key = normalize_key(ns.filter(|n| !n.is_empty())?);
        if !self.serves(&key) {
            return None;
        }
        let hp = berth_rewrite::encode_host_component(&key)?;
        Some(UpstreamRoute {
            local_name: format!("{}/{hp}/{name}", self.project),
            registry: key,
            repository: name.to_string(),
        })
    }

    /// The path form: `<project>/<host_port>/<repo>` of a served upstream.
    fn path_route(&self, name: &str) -> Option<UpstreamRoute> {
        let rest = name.strip_prefix(&self.project)?.strip_prefix('/')?;
        let (hp, repo) = rest.split_once('/')?;
        let host = berth_rewrite::decode_host_component(hp);
        if repo.is_empty() || !self.serves(&host) {
            return None;
        }
        Some(UpstreamRoute {
            local_name: name.to_string(),
            registry: host,
            repository: repo.to_string(),
        })
    }

    /// Whether pulls of `host` go upstream.
    fn serves(&self, host: &str) -> bool {
        self.upstreams.contains_key(host) || self.rewriter.is_some()
    }

    /// The registry and repository to fetch `u` from.
    fn upstream(&self, u: &UpstreamRoute) -> (berth_client::Registry, String) {
        if !self.upstreams.contains_key(&u.registry)
            && let Some(rw) = &self.rewriter
            && let Ok(r) = rw.rewrite_str(&format!("{}/{}", u.registry, u.repository))
        {
            let name = r.name();
            if let Some((host, repo)) = name.split_once('/') {
                return (self.client.registry(host), repo.to_string());
            }
        }
        let t = self.upstreams.get(&u.registry).cloned().unwrap_or(Target {
            host: u.registry.clone(),
            prefix: String::new(),
        });
        let repo = if t.prefix.is_empty() {
            u.repository.clone()
        } else {
            format!("{}/{}", t.prefix, u.repository)
        };
        (self.client.registry(&t.host), repo)
    }

    fn flight(&self, d: &Digest) -> Arc<tokio::sync::Mutex<()>> {
        self.flights
            .lock()
            .expect("lock")
            .entry(d.clone())
            .or_default()
            .clone()
    }
}

fn proxy_of(st: &State) -> Result<&Proxy, ApiError> {
    st.proxy
        .as_ref()
        .ok_or_else(|| ApiError::internal("pull-through caching is not configured"))
}

fn upstream_error(st: &State, u: &UpstreamRoute, e: &ClientError) -> ApiError {
    match e {
        ClientError::ManifestNotFound { .. } | ClientError::BlobNotFound { .. } => {}
        _ => Metrics::add(&st.metrics.upstream_errors, 1),
    }
    tracing::warn!(upstream = %u.registry, repository = %u.repository, error = %e, "upstream request failed");
    match e {
        ClientError::ManifestNotFound { reference, .. } => {
            ApiError::manifest_unknown(&u.local_name, reference)
        }
        ClientError::BlobNotFound { digest, .. } => ApiError::blob_unknown(&u.local_name, digest),
        e => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "UNKNOWN",
            format!("upstream {}: {e}", u.registry),
        ),
    }
}

/// Tags at the upstream, or the cached ones when it cannot be reached.
pub(crate) async fn tags(st: &Arc<State>, u: &UpstreamRoute) -> Result<Vec<String>, ApiError> {
    let p = proxy_of(st)?;
    let (reg, repo) = p.upstream(u);
    match reg.tags_list(&repo).await {
        Ok(mut t) => {
            t.sort();
            Ok(t)
        }
        Err(e) => {
            let err = upstream_error(st, u, &e);
            st.writable()?.tags(&u.local_name).ok_or(err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Upstream;

    #[test]
    fn user_data_upstreams_and_mapping() {
        let dir = tempfile::tempdir().unwrap();
        let ud = dir.path().join("user-data");
        std::fs::write(
            &ud,
            "#cloud-config\nstylus:\n  registryCredentials:\n    domain: 10.10.254.254:8000/spectro-images\n    username: ubuntu\n    password: \"s3cret\"\n    insecure: true\n",
        )
        .unwrap();
        let cfg = ProxyConfig {
            user_data: Some(ud),
            ..ProxyConfig::default()
        };
        let p = Proxy::from_config(&cfg).unwrap().unwrap();
        assert!(!format!("{p:?}").contains("s3cret"));
        // The external registry itself, path-addressed.
        let r = p
            .route("spectro-images/10.10.254.254_8000/spectro-images/x", None)
            .unwrap();
        let (reg, repo) = p.upstream(&r);
        assert_eq!(reg.name(), "10.10.254.254:8000");
        assert_eq!(repo, "spectro-images/x");
        // Another host, through the user data's redirect.
        let r = p.route("library/nginx", Some("docker.io")).unwrap();
        assert_eq!(r.local_name, "spectro-images/docker.io/library/nginx");
        let (reg, repo) = p.upstream(&r);
        assert_eq!(reg.name(), "10.10.254.254:8000");
        assert_eq!(repo, "spectro-images/docker.io/library/nginx");
    }

    #[test]
    fn routes() {
        let cfg = ProxyConfig {
            upstreams: vec![Upstream {
                registry: "reg.example:5000".into(),
                ..Upstream::default()
            }],
            ..ProxyConfig::default()
        };
        let p = Proxy::from_config(&cfg).unwrap().unwrap();
        let r = p.route("lib/app", Some("reg.example:5000")).unwrap();
        assert_eq!(r.local_name, "spectro-images/reg.example_5000/lib/app");
        assert_eq!(r.repository, "lib/app");
        let r = p
            .route("spectro-images/reg.example_5000/lib/app", None)
            .unwrap();
        assert_eq!(r.registry, "reg.example:5000");
        assert_eq!(r.repository, "lib/app");
        assert!(p.route("lib/app", Some("other.example")).is_none());
        assert!(p.route("spectro-images/other_1/x", None).is_none());
        assert!(p.route("lib/app", None).is_none());
        assert_eq!(
            split_endpoint("https://mirror:443/pre/fix/"),
            ("mirror:443".into(), "pre/fix".into())
        );
    }
}
