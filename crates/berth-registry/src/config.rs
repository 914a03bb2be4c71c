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

/// What `berth serve`'s flags set over the file: `None` and `false` keep the file's value.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data: Option<PathBuf>,
    pub user_data: Option<PathBuf>,
    /// A duration as [`parse_duration`] reads it.
    pub tag_recheck: Option<String>,
    pub htpasswd: Option<PathBuf>,
    pub anonymous_pull: bool,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_self_signed: bool,
    pub log_format: Option<LogFormat>,
}

impl Config {
    /// `berth serve`'s settings: the embedded defaults, then `file`, then the flags. A value
    /// that cannot work is refused before anything is created, naming the file (and the
    /// line, where the YAML parser gives one) or the flag.
    pub fn load(file: Option<&Path>, flags: Overrides) -> Result<Config, RegistryError> {
        let mut cfg = match file {
            Some(p) => {
                let cfg = Config::from_file(p)?;
                if let Some(t) = &cfg.proxy.tag_recheck {
                    parse_duration(t).map_err(|e| RegistryError::Config {
                        path: p.to_path_buf(),
                        reason: format!("proxy.tag_recheck {e}"),
                    })?;
                }
                cfg
            }
            None => Config::default(),
        };
        if let Some(t) = flags.tag_recheck {
            parse_duration(&t).map_err(|e| RegistryError::Flag(format!("--tag-recheck {e}")))?;
            cfg.proxy.tag_recheck = Some(t);
        }
        cfg.listen = flags.listen.unwrap_or(cfg.listen);
        cfg.data = flags.data.unwrap_or(cfg.data);
        cfg.proxy.user_data = flags.user_data.or(cfg.proxy.user_data);
        cfg.auth.htpasswd = flags.htpasswd.or(cfg.auth.htpasswd);
        cfg.auth.anonymous_pull |= flags.anonymous_pull;
        if flags.tls_self_signed || flags.tls_cert.is_some() {
            cfg.tls.self_signed = flags.tls_self_signed;
            (cfg.tls.cert, cfg.tls.key) = (flags.tls_cert, flags.tls_key);
        }
        cfg.log_format = flags.log_format.unwrap_or(cfg.log_format);
        let together = if cfg.auth.anonymous_pull && cfg.auth.htpasswd.is_none() {
            "anonymous_pull (--anonymous-pull) needs an htpasswd file (auth.htpasswd, --htpasswd): without one, everything is anonymous"
        } else if cfg.tls.cert.is_some() != cfg.tls.key.is_some() {
            "TLS needs a certificate and its key (tls.cert and tls.key, --tls-cert and --tls-key)"
        } else {
            return Ok(cfg);
        };
        Err(match file {
            Some(p) => RegistryError::Config {
                path: p.to_path_buf(),
                reason: format!("with the flags given: {together}"),
            },
            None => RegistryError::Flag(together.into()),
        })
    }
}

/// `30s`, `5m`, `1h`, `2d` or plain seconds. The error names the value and the forms.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("`{s}` is not a duration: use e.g. 30s, 15m, 2h, 1d or seconds");
    let t = s.trim();
    let (n, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&t[..i], t[i..].trim()),
        None => (t, ""),
    };
    let n: u64 = n.parse().map_err(|_| bad())?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(bad()),
    };
    let secs = n.checked_mul(mult).ok_or_else(bad)?;
    Ok(std::time::Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_upstream_aliases() {
        assert_eq!(parse_duration("5m").unwrap().as_secs(), 300);
        assert_eq!(parse_duration("90").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("2h").unwrap().as_secs(), 7200);
        assert!(parse_duration("5 weeks").unwrap_err().contains("`5 weeks`"));
        assert!(parse_duration("").is_err());
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
