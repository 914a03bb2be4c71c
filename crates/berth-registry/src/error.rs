use std::path::PathBuf;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{action} `{path}`: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file `{path}`: {reason}")]
    Config { path: PathBuf, reason: String },
    /// A flag's value, or flags that do not go together.
    #[error("{0}")]
    Flag(String),
    #[error("`{listen}` is not a listen address: {reason} (use HOST:PORT, e.g. 127.0.0.1:5000)")]
    Listen { listen: String, reason: String },
    #[error(
        "cannot listen on {listen}: {source} (is another server on that port? stop it, or choose another address: --listen HOST:PORT, or `listen:` in the config file)"
    )]
    Bind {
        listen: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot use the data directory `{path}`: {source} (give a directory this user can create and write: --data DIR, or `data:` in the config file)"
    )]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("htpasswd file `{path}` line {line}: {reason}")]
    Htpasswd {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("upstream settings: {0}")]
    Upstream(String),
    #[error(transparent)]
    Store(#[from] berth_store::StoreError),
}

/// An OCI distribution error response: `{"errors":[{"code","message","detail"}]}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub detail: Option<serde_json::Value>,
    pub challenge: Option<String>,
    pub headers: Vec<(header::HeaderName, String)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            detail: None,
            challenge: None,
            headers: vec![],
        }
    }
    pub fn detail(mut self, d: serde_json::Value) -> ApiError {
        self.detail = Some(d);
        self
    }
    pub fn header(mut self, name: header::HeaderName, value: String) -> ApiError {
        self.headers.push((name, value));
        self
    }
    pub fn name_invalid(name: &str, reason: &str) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "NAME_INVALID",
            format!("invalid repository name `{name}`: {reason}"),
        )
    }
    pub fn name_unknown(name: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            format!("repository `{name}` is not known to this registry"),
        )
    }
    pub fn blob_unknown(name: &str, digest: &impl std::fmt::Display) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
            format!("blob {digest} is not in repository `{name}`"),
        )
        .detail(json!({ "digest": digest.to_string() }))
    }
    pub fn manifest_unknown(name: &str, reference: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            format!("manifest `{reference}` is not in repository `{name}`"),
        )
        .detail(json!({ "name": name, "reference": reference }))
    }
    pub fn digest_invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "DIGEST_INVALID", message)
    }
    pub fn upload_unknown(id: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
            format!(
                "upload `{id}` is not in progress (finished, cancelled, expired, or the server restarted): start a new upload"
            ),
        )
    }
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "internal error");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", e.to_string())
    }
    pub fn unsupported(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "UNSUPPORTED", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut e = json!({ "code": self.code, "message": self.message });
        if let Some(d) = self.detail {
            e["detail"] = d;
        }
        let body = serde_json::to_vec(&json!({ "errors": [e] })).unwrap_or_default();
        let mut r = (
            self.status,
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            body,
        )
            .into_response();
        if let Some(c) = self.challenge
            && let Ok(v) = HeaderValue::from_str(&c)
        {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        for (n, v) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&v) {
                r.headers_mut().insert(n, v);
            }
        }
        r.headers_mut().insert(
            "Docker-Distribution-API-Version",
            HeaderValue::from_static("registry/2.0"),
        );
        r
    }
}
