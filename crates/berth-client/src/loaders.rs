//! Loading credentials and certificates the way other container tools store them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use berth_secret::Secret;
use serde::Deserialize;

use crate::config::{Credentials, normalize_key};

/// Why credentials or certificates could not be loaded. Never contains a password.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "invalid credentials `{shown}`: expected USER:PASSWORD (for example --src-creds alice:PASSWORD)"
    )]
    BadCreds { shown: String },
    #[error("cannot read `{path}`: {source}; check the path and its permissions")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` is not a valid registry auth file: {reason}; fix or remove it")]
    BadAuthFile { path: PathBuf, reason: String },
    #[error(
        "`{path}` holds no PEM certificate; a cert dir's `*.crt` files must be PEM CA certificates"
    )]
    BadCert { path: PathBuf },
}

/// Parses `USER:PASSWORD` (the password may contain `:`).
pub fn parse_creds(s: &str) -> Result<Credentials, LoadError> {
    match s.split_once(':') {
        Some((u, p)) if !u.is_empty() => Ok(Credentials::new(u, Secret::new(p))),
        _ => Err(LoadError::BadCreds {
            // Never echo a password: show the user part only.
            shown: format!("{}:<redacted>", s.split(':').next().unwrap_or_default()),
        }),
    }
}

/// Where auth files are looked for. [`AuthFileSources::from_env`] reads the process
/// environment; tests build it by hand.
#[derive(Clone, Debug, Default)]
pub struct AuthFileSources {
    /// `REGISTRY_AUTH_FILE`: when set, the only containers auth file read.
    pub registry_auth_file: Option<PathBuf>,
    /// `XDG_RUNTIME_DIR` (`$XDG_RUNTIME_DIR/containers/auth.json`).
    pub xdg_runtime_dir: Option<PathBuf>,
    /// `HOME` (`~/.config/containers/auth.json`, `~/.docker/config.json`).
    pub home: Option<PathBuf>,
    /// `DOCKER_CONFIG` (directory holding `config.json`), instead of `~/.docker`.
    pub docker_config: Option<PathBuf>,
}

impl AuthFileSources {
    pub fn from_env() -> AuthFileSources {
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        AuthFileSources {
            registry_auth_file: var("REGISTRY_AUTH_FILE"),
            xdg_runtime_dir: var("XDG_RUNTIME_DIR"),
            home: var("HOME"),
            docker_config: var("DOCKER_CONFIG"),
        }
    }

    /// The files to read, highest precedence first.
    pub fn paths(&self) -> Vec<PathBuf> {
        let mut v = Vec::new();
        if let Some(f) = &self.registry_auth_file {
            v.push(f.clone());
        } else {
            if let Some(d) = &self.xdg_runtime_dir {
                v.push(d.join("containers/auth.json"));
            }
            if let Some(h) = &self.home {
                v.push(h.join(".config/containers/auth.json"));
            }
        }
        match (&self.docker_config, &self.home) {
            (Some(d), _) => v.push(d.join("config.json")),
            (None, Some(h)) => v.push(h.join(".docker/config.json")),
            _ => {}
        }
        v
    }
}

#[derive(Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// Reads one auth file (`auth.json` or Docker's `config.json`): `auths` entries with a
/// base64 `auth` (`user:password`) or `username`/`password`. Keys are normalized
/// (`https://index.docker.io/v1/` → `docker.io`). Entries without credentials (for example
/// those kept by a credential helper) are left out.
pub fn read_auth_file(path: &Path) -> Result<Vec<(String, Credentials)>, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |reason: String| LoadError::BadAuthFile {
        path: path.to_path_buf(),
        reason,
    };
    let file: AuthFile = serde_json::from_str(&text).map_err(|e| bad(format!("{e}")))?;
    let mut out = Vec::new();
    for (key, entry) in file.auths {
        let creds = if let Some(auth) = entry.auth.filter(|a| !a.is_empty()) {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| bad(format!("the `auth` of `{key}` is not base64")))?;
            let s = String::from_utf8(raw)
                .map_err(|_| bad(format!("the `auth` of `{key}` is not UTF-8")))?;
            parse_creds(&s).map_err(|_| {
                bad(format!(
                    "the `auth` of `{key}` is not base64 of USER:PASSWORD"
                ))
            })?
        } else if let (Some(u), Some(p)) = (entry.username, entry.password) {
            Credentials::new(u, Secret::new(p))
        } else {
            continue;
        };
        out.push((normalize_key(&key), creds));
    }
    Ok(out)
}

/// Reads every auth file in `sources` that exists, highest precedence first; for a key in
/// several files the first one wins.
pub fn load_auth_files(sources: &AuthFileSources) -> Result<Vec<(String, Credentials)>, LoadError> {
    let mut out: Vec<(String, Credentials)> = Vec::new();
    for path in sources.paths() {
        if !path.is_file() {
            continue;
        }
        for (k, c) in read_auth_file(&path)? {
            if !out.iter().any(|(k2, _)| *k2 == k) {
                out.push((k, c));
            }
        }
    }
    Ok(out)
}

/// Reads a containers-style cert dir: every `*.crt` file is a PEM CA certificate (bundle).
/// `*.cert`/`*.key` client pairs are not used. Files are returned in name order.
pub fn load_cert_dir(dir: &Path) -> Result<Vec<String>, LoadError> {
    let rd = std::fs::read_dir(dir).map_err(|source| LoadError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = Vec::new();
    for e in rd {
        let e = e.map_err(|source| LoadError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let p = e.path();
        if p.extension().is_some_and(|x| x == "crt") {
            files.push(p);
        }
    }
    files.sort();
    files.into_iter().map(|p| read_ca_pem(&p)).collect()
}

/// Reads one PEM file and checks it holds at least one certificate.
pub fn read_ca_pem(path: &Path) -> Result<String, LoadError> {
    let pem = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let n = rustls_pemfile::certs(&mut pem.as_bytes())
        .filter(|c| c.is_ok())
        .count();
    if n == 0 {
        return Err(LoadError::BadCert {
            path: path.to_path_buf(),
        });
    }
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creds_parse_and_hide() {
        let c = parse_creds("me:pa:ss").unwrap();
        assert_eq!(c.username, "me");
        assert_eq!(c.password.expose(), "pa:ss");
        let e = parse_creds("nopassword").unwrap_err().to_string();
        assert!(e.contains("USER:PASSWORD"), "{e}");
        let e = parse_creds(":s3cr3t").unwrap_err().to_string();
        assert!(!e.contains("s3cr3t"), "{e}");
    }

    #[test]
    fn auth_files_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let reg = dir.path().join("reg.json");
        let b64 = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        std::fs::write(
            &reg,
            format!(r#"{{"auths":{{"reg.example:5000":{{"auth":"{b64}"}},"https://index.docker.io/v1/":{{"auth":"{b64}"}}}}}}"#),
        )
        .unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".docker")).unwrap();
        std::fs::write(
            home.join(".docker/config.json"),
            r#"{"auths":{"reg.example:5000":{"username":"bob","password":"x"},"other.example":{"username":"carol","password":"y"},"helper.example":{}},"credsStore":"desktop"}"#,
        )
        .unwrap();
        let src = AuthFileSources {
            registry_auth_file: Some(reg),
            home: Some(home),
            ..Default::default()
        };
        let all = load_auth_files(&src).unwrap();
        let get = |k: &str| {
            all.iter()
                .find(|(k2, _)| k2 == k)
                .map(|(_, c)| c.username.clone())
        };
        assert_eq!(get("reg.example:5000").as_deref(), Some("alice"));
        assert_eq!(get("docker.io").as_deref(), Some("alice"));
        assert_eq!(get("other.example").as_deref(), Some("carol"));
        assert_eq!(get("helper.example"), None);
        assert_eq!(
            all.iter()
                .find(|(k, _)| k == "reg.example:5000")
                .unwrap()
                .1
                .password
                .expose(),
            "s3cret"
        );
    }

    #[test]
    fn bad_auth_file_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("auth.json");
        std::fs::write(&p, r#"{"auths":{"r":{"auth":"!!!"}}}"#).unwrap();
        let e = read_auth_file(&p).unwrap_err().to_string();
        assert!(e.contains("auth.json") && e.contains("base64"), "{e}");
    }

    #[test]
    fn cert_dir_reads_crt_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("client.key"), "junk").unwrap();
        assert!(load_cert_dir(dir.path()).unwrap().is_empty());
        std::fs::write(dir.path().join("ca.crt"), "not pem").unwrap();
        let e = load_cert_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("ca.crt"), "{e}");
    }
}
