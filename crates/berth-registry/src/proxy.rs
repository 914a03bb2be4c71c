//! Pull-through caching of upstream registries.

use std::sync::Arc;

use axum::http::HeaderMap;
use axum::response::Response;
use berth_reference::Digest;

use crate::config::ProxyConfig;
use crate::{ApiError, RegistryError, State};

/// Where a pull goes upstream.
#[derive(Debug, Clone)]
pub struct UpstreamRoute {
    /// The repository in the local store that caches it.
    pub local_name: String,
    pub registry: String,
    pub repository: String,
}

pub struct Proxy {}

impl Proxy {
    pub fn from_config(cfg: &ProxyConfig) -> Result<Option<Proxy>, RegistryError> {
        if cfg.user_data.is_some() || !cfg.upstreams.is_empty() {
            return Err(RegistryError::Upstream(
                "pull-through caching is not available in this build".into(),
            ));
        }
        Ok(None)
    }

    pub fn route(&self, _name: &str, _ns: Option<&str>) -> Option<UpstreamRoute> {
        None
    }
}

pub(crate) async fn get_manifest(
    _st: &Arc<State>,
    u: &UpstreamRoute,
    reference: &str,
    _headers: &HeaderMap,
    _head: bool,
) -> Result<Response, ApiError> {
    Err(ApiError::manifest_unknown(&u.local_name, reference))
}

pub(crate) async fn get_blob(
    _st: &Arc<State>,
    u: &UpstreamRoute,
    d: &Digest,
    _headers: &HeaderMap,
    _head: bool,
) -> Result<Response, ApiError> {
    Err(ApiError::blob_unknown(&u.local_name, d))
}

pub(crate) async fn tags(_st: &Arc<State>, u: &UpstreamRoute) -> Result<Vec<String>, ApiError> {
    Err(ApiError::name_unknown(&u.local_name))
}
