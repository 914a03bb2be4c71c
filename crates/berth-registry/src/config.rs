//! The server's settings: embedded defaults, a YAML file (`deny_unknown_fields`), flags.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::RegistryError;

/// Everything `berth serve` needs. Every field has a default, so an empty file (or none)
/// runs a registry on 127.0.0.1:5000 with data in `./berth-data`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub listen: String,
    /// The data directory (blobs, repositories, TLS material when generated).
    pub data: PathBuf,
    /// `text` or `json` logs.
    pub log_format: LogFormat,
    pub tls: TlsConfig,
    pub auth: AuthConfig,
    pub limits: Limits,
    pub proxy: ProxyConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:5000".into(),
            data: PathBuf::from("berth-data"),
            log_format: LogFormat::Text,
            tls: TlsConfig::default(),
            auth: AuthConfig::default(),
            limits: Limits::default(),
            proxy: ProxyConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// TLS: a certificate and key, or a generated CA and leaf kept in `<data>/tls/`.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain (leaf first).
    pub cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// Generate a CA and a leaf certificate in `<data>/tls/` (reused on restart).
    pub self_signed: bool,
    /// Names and addresses the generated certificate is for, besides localhost,
    /// 127.0.0.1, ::1, the host name and the listen address.
    pub hosts: Vec<String>,
}

/// Who may pull and push.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// An htpasswd file with bcrypt entries (`htpasswd -B`). Without one, anyone may pull
    /// and push (which is why the default listen address is loopback).
    pub htpasswd: Option<PathBuf>,
    /// With htpasswd: allow pulls without credentials.
    pub anonymous_pull: bool,
    /// With htpasswd: challenge clients with `Bearer` and the `/token` endpoint (true), or
    /// with `Basic` (false). Both are accepted on every request either way.
    pub token: bool,
    /// Lifetime of issued tokens, in seconds.
    pub token_ttl_seconds: u64,
    /// The token realm in challenges; default `<scheme>://<Host header>/token`.
    pub realm: Option<String>,
    /// The service name in challenges and tokens.
    pub service: String,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            htpasswd: None,
            anonymous_pull: false,
            token: true,
            token_ttl_seconds: 300,
            realm: None,
            service: "berth".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest manifest accepted, in bytes.
    pub manifest_bytes: usize,
    /// Upload sessions idle for longer than this are dropped (seconds).
    pub upload_idle_seconds: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            manifest_bytes: 4 << 20,
            upload_idle_seconds: 3600,
        }
    }
}

/// Pull-through caching of upstream registries.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// Palette user data: its external registry (with credentials and CA) becomes an upstream.
    pub user_data: Option<PathBuf>,
    /// A tag is checked upstream at most once per this many seconds.
    pub tag_ttl_seconds: u64,
    /// The same as a duration (`30s`, `5m`, `1h`, or seconds); overrides `tag_ttl_seconds`.
    pub tag_recheck: Option<String>,
    /// The project (first path component) of path-addressed pulls:
    /// `/v2/<project>/<host_port>/<repo>`.
    pub project: String,
    /// More upstreams.
    pub upstreams: Vec<Upstream>,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            user_data: None,
            tag_ttl_seconds: 300,
            tag_recheck: None,
            project: "spectro-images".into(),
            upstreams: vec![],
        }
    }
}

/// One upstream registry.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Upstream {
    /// `host[:port]` as clients name it (`?ns=`, or the `<host_port>` path component).
    #[serde(alias = "host")]
    pub registry: String,
    /// Where to fetch from instead (`host[:port][/prefix]`), e.g. a mirror; default the
    /// registry itself.
    #[serde(alias = "url")]
    pub endpoint: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// PEM CA file for the upstream.
    #[serde(alias = "ca")]
    pub ca_file: Option<PathBuf>,
    /// Plain HTTP / no certificate verification.
    pub insecure: bool,
}

impl Config {
    /// Reads a YAML config file; unknown fields are errors that name the file and field.
    pub fn from_file(path: &Path) -> Result<Config, RegistryError> {
        let text = std::fs::read_to_string(path).map_err(|source| RegistryError::Io {
            action: "read config file",
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_yaml(&text).map_err(|reason| RegistryError::Config {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Parses YAML text (an empty document is the defaults).
    pub fn from_yaml(text: &str) -> Result<Config, String> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        serde_saphyr::from_str(text).map_err(|e| e.to_string())
    }
}

/// `30s`, `5m`, `1h`, `2d` or plain seconds.
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    let (n, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&s[..i], s[i..].trim()),
        None => (s, ""),
    };
    let n: u64 = n.parse().ok()?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return None,
    };
    Some(std::time::Duration::from_secs(n.checked_mul(mult)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_upstream_aliases() {
        assert_eq!(parse_duration("5m").unwrap().as_secs(), 300);
        assert_eq!(parse_duration("90").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("2h").unwrap().as_secs(), 7200);
        assert!(parse_duration("5 weeks").is_none());
        assert!(parse_duration("").is_none());
        let c = Config::from_yaml(
            "proxy:\n  tag_recheck: 5m\n  upstreams:\n  - host: reg:5000\n    url: mirror/pre\n    ca: /ca.pem\n    insecure: true\n",
        )
        .unwrap();
        assert_eq!(c.proxy.tag_recheck.as_deref(), Some("5m"));
        assert_eq!(c.proxy.upstreams[0].registry, "reg:5000");
        assert_eq!(c.proxy.upstreams[0].endpoint.as_deref(), Some("mirror/pre"));
        assert_eq!(
            c.proxy.upstreams[0].ca_file.as_deref(),
            Some(Path::new("/ca.pem"))
        );
    }
}
