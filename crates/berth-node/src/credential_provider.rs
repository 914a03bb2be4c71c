//! The kubelet image credential provider (`credentialprovider.kubelet.k8s.io/v1`).
//!
//! kubelet runs `berth credential-provider --user-data FILE` for every image that matches
//! the configuration's `matchImages`, writes a `CredentialProviderRequest` on its standard
//! input and reads a `CredentialProviderResponse` from its standard output. Berth answers with
//! the username and password of the user-data registry entry whose `domain` is the longest
//! prefix of the image (the same choice as every other Berth command), keyed by that domain,
//! so pulls kubelet starts on its own (an upgrade pod running the provider image, which has no
//! pull secret) authenticate too. An image under no registry gets an empty `auth`.
//!
//! The provider answers for the names it is asked about: an image whose reference names the
//! external registry (what the webhook writes into pods). It never returns a registry's
//! password under another registry's name.

use std::collections::BTreeMap;

use berth_userdata::{Registry, UserData};
use serde::{Deserialize, Serialize};

use crate::NodeError;
use crate::text::q;

/// The API version this provider speaks (and the one the generated configuration asks for).
pub const API_VERSION: &str = "credentialprovider.kubelet.k8s.io/v1";
/// How long kubelet keeps an answer, unless the response says otherwise.
pub const DEFAULT_CACHE_DURATION: &str = "10m";

/// A `CredentialProviderRequest`. Later kubelet fields (service-account tokens) are ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    pub api_version: String,
    pub kind: String,
    pub image: String,
}

/// A `CredentialProviderResponse`. Its `Debug` hides passwords.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    pub api_version: String,
    pub kind: String,
    pub cache_key_type: CacheKeyType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_duration: Option<String>,
    pub auth: BTreeMap<String, AuthConfig>,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("cache_key_type", &self.cache_key_type)
            .field("cache_duration", &self.cache_duration)
            .field("auth", &self.auth.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// `Image`, `Registry` or `Global`: what kubelet keys its cache of the answer by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CacheKeyType {
    Image,
    Registry,
}

/// A username and password. The password is serialized (that is the point of the response)
/// and hidden from `Debug`.
#[derive(Serialize)]
pub struct AuthConfig {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("username", &self.username)
            .field("password", &berth_secret::REDACTED)
            .finish()
    }
}

/// Parses a request; the error says what is wrong and never echoes more than the field names.
pub fn parse_request(input: &str) -> Result<Request, NodeError> {
    let req: Request = serde_json::from_str(input).map_err(|e| {
        NodeError::Request(format!(
            "the standard input is not a CredentialProviderRequest ({e}); expected {{\"apiVersion\":\"{API_VERSION}\",\"kind\":\"CredentialProviderRequest\",\"image\":\"...\"}}"
        ))
    })?;
    if req.kind != "CredentialProviderRequest" {
        return Err(NodeError::Request(format!(
            "kind is {}, expected CredentialProviderRequest",
            q(&req.kind)
        )));
    }
    if !req
        .api_version
        .starts_with("credentialprovider.kubelet.k8s.io/")
    {
        return Err(NodeError::Request(format!(
            "apiVersion is {}, expected {API_VERSION}",
            q(&req.api_version)
        )));
    }
    Ok(req)
}

/// The registry entry (with credentials) that serves `image`, if any. An image that does not
/// parse matches nothing (the pull fails on its own).
pub fn registry_for_image<'u>(user_data: &'u UserData, image: &str) -> Option<&'u Registry> {
    let name = berth_reference::Reference::parse(image).ok()?.name();
    user_data
        .registry_for(&name)
        .filter(|r| r.has_credentials())
}

/// The response for `request`: the matching registry's credentials, or an empty `auth`.
pub fn respond(user_data: &UserData, request: &Request, cache_duration: &str) -> Response {
    let mut auth = BTreeMap::new();
    let mut key_type = CacheKeyType::Image;
    if let Some(reg) = registry_for_image(user_data, &request.image) {
        auth.insert(
            reg.domain.clone(),
            AuthConfig {
                username: reg.username.clone(),
                password: reg.password.expose().to_string(),
            },
        );
        // Caching by registry host is right only when the host has one entry and no path.
        let shared = user_data
            .registries
            .iter()
            .filter(|r| r.host() == reg.host())
            .count()
            > 1;
        if !reg.domain.contains('/') && !shared {
            key_type = CacheKeyType::Registry;
        }
    }
    Response {
        api_version: request.api_version.clone(),
        kind: "CredentialProviderResponse".into(),
        cache_key_type: key_type,
        cache_duration: Some(cache_duration.to_string()),
        auth,
    }
}

/// Reads a request from text and writes the response JSON.
pub fn respond_json(
    user_data: &UserData,
    input: &str,
    cache_duration: &str,
) -> Result<String, NodeError> {
    let req = parse_request(input)?;
    serde_json::to_string(&respond(user_data, &req, cache_duration))
        .map_err(|e| NodeError::Request(format!("cannot encode the response: {e}")))
}

/// The kubelet `CredentialProviderConfig` (file given to `--image-credential-provider-config`)
/// that runs this provider for the hosts of every user-data registry with credentials. The
/// binary must be named `berth` in `--image-credential-provider-bin-dir`.
pub fn provider_config(
    user_data: &UserData,
    user_data_path: &str,
    cache_duration: &str,
) -> Result<String, NodeError> {
    let mut hosts: Vec<String> = user_data
        .registries
        .iter()
        .filter(|r| r.has_credentials())
        .map(|r| r.host().to_string())
        .collect();
    hosts.sort();
    hosts.dedup();
    if hosts.is_empty() {
        return Err(NodeError::Config(format!(
            "{}: no registry in stylus.registryCredentials or stylus.externalRegistries.registries has a username or password; kubelet needs no credential provider",
            user_data.file
        )));
    }
    let mut y = String::new();
    y.push_str("# Generated by `berth credential-provider config`.\n");
    y.push_str("# kubelet: --image-credential-provider-config=<this file> --image-credential-provider-bin-dir=<dir holding `berth`>\n");
    y.push_str("apiVersion: kubelet.config.k8s.io/v1\n");
    y.push_str("kind: CredentialProviderConfig\n");
    y.push_str("providers:\n");
    y.push_str("  - name: berth\n");
    y.push_str("    matchImages:\n");
    for h in &hosts {
        y.push_str(&format!("      - {}\n", q(h)));
    }
    y.push_str(&format!(
        "    defaultCacheDuration: {}\n",
        q(cache_duration)
    ));
    y.push_str(&format!("    apiVersion: {API_VERSION}\n"));
    y.push_str("    args:\n");
    y.push_str("      - credential-provider\n");
    y.push_str("      - --user-data\n");
    y.push_str(&format!("      - {}\n", q(user_data_path)));
    Ok(y)
}
