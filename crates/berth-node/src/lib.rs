//! The node-side pieces of the Berth agent that need no container runtime:
//!
//! - [`webhook`]: the image-redirecting mutating admission webhook (`admission.k8s.io/v1`),
//!   its HTTPS server and the `MutatingWebhookConfiguration` that installs it;
//! - [`credential_provider`]: the kubelet image credential provider
//!   (`credentialprovider.kubelet.k8s.io/v1`) and its `CredentialProviderConfig`;
//! - [`registries`]: containerd `hosts.toml` files, the CRI `config.toml` drop-in and the
//!   k3s/RKE2 `registries.yaml`, derived from the one rewrite function;
//! - [`files`]: atomic writes of rendered files.
//!
//! Every image decision goes through `berth_rewrite::Rewriter`, so a pod the webhook mutates,
//! a pull containerd redirects and an image `berth mirror` uploads agree. Passwords appear only
//! where they are the point (the credential provider's `auth`, `registries.yaml`, the CRI
//! drop-in) and never in errors, logs or `Debug`.

pub mod credential_provider;
pub mod files;
pub mod registries;
pub mod signatures;
mod text;
pub mod webhook;

/// Why a node-side operation failed. No variant carries a password.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("{0}")]
    Request(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("{0}")]
    Listen(String),
    #[error("cannot listen or serve: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: berth_atomic::Error,
    },
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Policy(#[from] berth_policy::PolicyError),
    #[error(transparent)]
    Registry(#[from] berth_client::ClientError),
}
