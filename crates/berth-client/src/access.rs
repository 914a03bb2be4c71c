//! Where [`RegistryConfigs`] come from: the registry settings of the user data and the edge
//! registry (made in `berth-userdata` and `berth-plan`), and skopeo-style access settings
//! (credentials, auth files, cert dirs, TLS verification) for the registries a command
//! talks to.

use std::collections::BTreeSet;
use std::path::PathBuf;

use berth_userdata::{RegistrySetting, RegistrySettings};

use crate::config::{Credentials, RegistryConfig, RegistryConfigs};
use crate::loaders::{self, AuthFileSources, LoadError};
use crate::side::Side;

impl From<&RegistrySetting> for RegistryConfig {
    fn from(s: &RegistrySetting) -> RegistryConfig {
        RegistryConfig {
            credentials: s
                .login
                .as_ref()
                .map(|l| Credentials::new(l.username.clone(), l.password.clone())),
            insecure: s.insecure,
            ca_pems: s.ca_pems.clone(),
        }
    }
}

impl From<&RegistrySettings> for RegistryConfigs {
    /// Each entry on its side: the user data's by their field, the edge registry's as the
    /// edge; a registry neither describes is an external one the user data does not describe.
    fn from(s: &RegistrySettings) -> RegistryConfigs {
        let mut configs = RegistryConfigs::new().with_side(Side::External { field: None });
        for e in s.entries() {
            let side = match &e.field {
                Some(f) => Side::External {
                    field: Some(f.clone()),
                },
                None => Side::Edge,
            };
            configs.insert_on(&e.key, e.into(), side);
        }
        configs
    }
}

/// Where credentials files are read from.
#[derive(Clone, Debug, Default)]
pub enum AuthFiles {
    /// None.
    #[default]
    None,
    /// This file only.
    File(PathBuf),
    /// The first of the usual places that exist ([`AuthFileSources::paths`]).
    Usual(AuthFileSources),
}

impl AuthFiles {
    /// `file` when given, else the usual places of this environment.
    pub fn file_or_usual(file: Option<PathBuf>) -> AuthFiles {
        match file {
            Some(f) => AuthFiles::File(f),
            None => AuthFiles::Usual(AuthFileSources::from_env()),
        }
    }
}

/// How to reach a set of registries, as skopeo's `--src-*`/`--dest-*` flags say it.
#[derive(Clone, Debug)]
pub struct Access {
    /// `USER:PASS` for every registry, or `REGISTRY=USER:PASS` for one. A scoped entry wins
    /// over an unscoped one, which wins over the auth files.
    pub creds: Vec<String>,
    pub auth_files: AuthFiles,
    /// A containers cert dir: `DIR/*.crt` for every registry, `DIR/HOST[:PORT]/*.crt` for one.
    pub cert_dir: Option<PathBuf>,
    /// `false` allows plain HTTP and certificates that do not verify.
    pub tls_verify: bool,
}

impl Default for Access {
    fn default() -> Access {
        Access {
            creds: Vec::new(),
            auth_files: AuthFiles::None,
            cert_dir: None,
            tls_verify: true,
        }
    }
}

/// Why access settings could not be loaded. Never contains a password.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(
        "{dir}: no *.crt certificates found (put CA certificates in DIR/*.crt or DIR/HOST[:PORT]/*.crt)"
    )]
    EmptyCertDir { dir: PathBuf },
}

/// CA certificates from `path`: a PEM file (one or more certificates), or a cert dir's
/// `*.crt` files.
pub fn read_cas(path: &std::path::Path) -> Result<Vec<String>, LoadError> {
    if path.is_dir() {
        loaders::load_cert_dir(path)
    } else {
        Ok(vec![loaders::read_ca_pem(path)?])
    }
}

/// Splits `[REGISTRY=]USER:PASS`. A scope is recognized when the part before the first `=`
/// looks like a registry host (has a `.`, or is `localhost[:PORT]`).
pub fn parse_scoped_creds(s: &str) -> Result<(Option<String>, Credentials), LoadError> {
    let (scope, creds) = match s.split_once('=') {
        Some((reg, rest))
            if !reg.is_empty()
                && (reg.contains('.') || reg == "localhost" || reg.starts_with("localhost:")) =>
        {
            (Some(reg.to_string()), rest)
        }
        _ => (None, s),
    };
    Ok((scope, loaders::parse_creds(creds)?))
}

/// The credentials among `creds` (`[REGISTRY=]USER:PASS` each) for `host`: the entry scoped
/// to it, else an unscoped one.
pub fn creds_for(creds: &[String], host: &str) -> Result<Option<Credentials>, LoadError> {
    let parsed: Vec<_> = creds.iter().map(|c| parse_scoped_creds(c)).collect();
    let parsed = parsed.into_iter().collect::<Result<Vec<_>, _>>()?;
    let scoped = parsed.iter().find(|(s, _)| s.as_deref() == Some(host));
    let any = scoped.or_else(|| parsed.iter().find(|(s, _)| s.is_none()));
    Ok(any.map(|(_, c)| c.clone()))
}

impl Access {
    pub fn new(
        creds: Vec<String>,
        auth_files: AuthFiles,
        cert_dir: Option<PathBuf>,
        tls_verify: bool,
    ) -> Access {
        Access {
            creds,
            auth_files,
            cert_dir,
            tls_verify,
        }
    }

    /// Settings for each of `hosts` (`host[:port]`), as source registries (for another side,
    /// [`RegistryConfigs::with_side`]).
    pub fn configs(&self, hosts: &BTreeSet<String>) -> Result<RegistryConfigs, AccessError> {
        let mut all_cas = Vec::new();
        let mut host_cas = Vec::new();
        if let Some(dir) = &self.cert_dir {
            // A dir holding only per-host subdirectories has no top-level certificates.
            all_cas = loaders::load_cert_dir(dir).unwrap_or_default();
            for h in hosts {
                let sub = dir.join(h);
                if sub.is_dir() {
                    host_cas.push((h.clone(), loaders::load_cert_dir(&sub)?));
                }
            }
            if all_cas.is_empty() && host_cas.is_empty() {
                return Err(AccessError::EmptyCertDir { dir: dir.clone() });
            }
        }
        let file_creds = match &self.auth_files {
            AuthFiles::None => Vec::new(),
            AuthFiles::File(f) => loaders::read_auth_file(f)?,
            // A broken file in a default place is not this command's business.
            AuthFiles::Usual(s) => loaders::load_auth_files(s).unwrap_or_default(),
        };
        creds_for(&self.creds, "")?; // every entry parses, whatever the hosts
        let mut configs = RegistryConfigs::new().with_side(Side::Source);
        for h in hosts {
            let mut ca_pems = all_cas.clone();
            for (_, cas) in host_cas.iter().filter(|(k, _)| k == h) {
                ca_pems.extend(cas.iter().cloned());
            }
            let credentials = creds_for(&self.creds, h)?.or_else(|| {
                file_creds
                    .iter()
                    .find(|(k, _)| k == h || (h == "docker.io" && k.contains("index.docker.io")))
                    .map(|(_, c)| c.clone())
            });
            configs.insert(
                h,
                RegistryConfig {
                    credentials,
                    insecure: !self.tls_verify,
                    ca_pems,
                },
            );
        }
        Ok(configs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_plan::{EdgeAccess, EdgeRegistry, Login};

    #[test]
    fn plan_settings_become_configs() {
        let mut edge = EdgeAccess::new(EdgeRegistry::parse("http://edge:5000", None).unwrap());
        edge.login = Some(Login::new("u", "pw"));
        edge.ca_pems.push("CA".into());
        let c = RegistryConfigs::from(&berth_plan::registry_settings(None, Some(&edge)));
        let (key, cfg) = c.select("edge:5000", "spectro-images/x").unwrap();
        assert_eq!(key, "edge:5000");
        assert!(cfg.insecure);
        assert_eq!(cfg.ca_pems, ["CA"]);
        assert_eq!(cfg.credentials, Some(Credentials::new("u", "pw")));
        assert!(c.select("other:5000", "x").is_none());
        assert_eq!(c.side("edge:5000"), &Side::Edge);
        assert_eq!(c.side("other:5000"), &Side::External { field: None });
    }

    #[test]
    fn flags_scoped_first_then_unscoped_then_auth_files() {
        let dir = tempfile::tempdir().unwrap();
        let auth = dir.path().join("auth.json");
        std::fs::write(
            &auth,
            r#"{"auths":{"c.example":{"username":"file","password":"x"}}}"#,
        )
        .unwrap();
        let hosts: BTreeSet<String> = ["a.example", "b.example", "c.example"]
            .map(String::from)
            .into();
        let user = |a: &Access, h: &str| {
            a.configs(&hosts)
                .unwrap()
                .select(h, "r")
                .and_then(|(_, c)| c.credentials.as_ref().map(|c| c.username.clone()))
        };
        let mut a = Access {
            creds: vec!["a.example=scoped:pw".into()],
            auth_files: AuthFiles::File(auth.clone()),
            tls_verify: false,
            ..Access::default()
        };
        assert_eq!(user(&a, "a.example").as_deref(), Some("scoped"));
        assert_eq!(user(&a, "b.example"), None);
        assert_eq!(user(&a, "c.example").as_deref(), Some("file"));
        assert!(
            a.configs(&hosts)
                .unwrap()
                .select("b.example", "r")
                .unwrap()
                .1
                .insecure
        );
        a.creds.push("all:pw".into());
        assert_eq!(user(&a, "b.example").as_deref(), Some("all"));
        assert_eq!(user(&a, "c.example").as_deref(), Some("all"));
        assert_eq!(user(&a, "a.example").as_deref(), Some("scoped"));
        let bad = Access {
            creds: vec!["nopassword".into()],
            ..Access::default()
        };
        assert!(
            bad.configs(&hosts)
                .unwrap_err()
                .to_string()
                .contains("USER:PASSWORD")
        );
    }

    #[test]
    fn an_empty_cert_dir_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let a = Access {
            cert_dir: Some(dir.path().to_path_buf()),
            ..Access::default()
        };
        let e = a
            .configs(&BTreeSet::from(["x.example".to_string()]))
            .unwrap_err();
        assert!(matches!(e, AccessError::EmptyCertDir { .. }));
        assert!(
            e.to_string().contains(&dir.path().display().to_string()),
            "{e}"
        );
    }
}
