//! User data (and the edge registry) as registry settings: for each registry, the login, the
//! CA certificates to trust and whether TLS may be skipped. The one place this conversion is
//! made; the network client turns [`RegistrySettings`] into its own configuration
//! (`berth_client::RegistryConfigs: From<&RegistrySettings>`), so this crate stays free of
//! any network code.

use berth_secret::Secret;
use berth_userdata::UserData;

use crate::EdgeRegistry;

/// A user name and password. `Debug` shows `<redacted>` for the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub username: String,
    pub password: Secret,
}

impl Login {
    pub fn new(username: impl Into<String>, password: impl Into<Secret>) -> Login {
        Login {
            username: username.into(),
            password: password.into(),
        }
    }
}

/// How to talk to one registry (or the repositories under a path of it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistrySetting {
    /// `host[:port][/path]`: the setting applies to the repositories under it.
    pub key: String,
    pub login: Option<Login>,
    /// Allow plain HTTP and TLS certificates that do not verify.
    pub insecure: bool,
    /// CA certificates (PEM) trusted besides the system roots.
    pub ca_pems: Vec<String>,
    /// The user-data field that describes the registry (`stylus.externalRegistries.registries[0]`,
    /// `stylus.registryCredentials`); `None` for the edge registry, set by its flags. Errors
    /// name it as the place to fix.
    pub field: Option<String>,
}

/// How to reach the edge registry, besides its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeAccess {
    pub registry: EdgeRegistry,
    /// Its own CA certificates (PEM), e.g. the one `berth serve --tls-self-signed` made.
    pub ca_pems: Vec<String>,
    /// Skip TLS verification (plain HTTP, given as `http://`, is allowed anyway).
    pub insecure: bool,
    pub login: Option<Login>,
}

impl EdgeAccess {
    /// The edge registry with no CA, login or `insecure` of its own.
    pub fn new(registry: EdgeRegistry) -> EdgeAccess {
        EdgeAccess {
            registry,
            ca_pems: Vec::new(),
            insecure: false,
            login: None,
        }
    }
}

/// Settings for every registry the user data names, and the edge registry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistrySettings {
    entries: Vec<RegistrySetting>,
}

impl RegistrySettings {
    /// Each user-data registry by its `domain` (login when it has one, its certificates,
    /// `insecure`); then the edge registry by its host: `insecure` when it is plain HTTP or
    /// marked so, trusting its own CAs and the user data's (the edge's certificate may come
    /// from the same CA as the external registry's), with its login when one is given.
    pub fn new(user_data: Option<&UserData>, edge: Option<&EdgeAccess>) -> RegistrySettings {
        let registries = user_data
            .map(|u| u.registries.as_slice())
            .unwrap_or_default();
        let mut entries: Vec<RegistrySetting> = registries
            .iter()
            .map(|r| RegistrySetting {
                key: r.domain.clone(),
                login: r
                    .has_credentials()
                    .then(|| Login::new(r.username.clone(), r.password.clone())),
                insecure: r.insecure,
                ca_pems: r.certificates.clone(),
                field: Some(r.field.clone()),
            })
            .collect();
        if let Some(edge) = edge {
            let host = edge.registry.host();
            let i = match entries.iter().position(|e| same_key(&e.key, host)) {
                Some(i) => i,
                None => {
                    entries.push(RegistrySetting {
                        key: host.to_string(),
                        ..RegistrySetting::default()
                    });
                    entries.len() - 1
                }
            };
            let e = &mut entries[i];
            // The edge's flags (--edge-ca, --edge-insecure, --edge-creds) are what fix it.
            e.field = None;
            e.insecure |= edge.insecure || edge.registry.plain_http();
            let cas = registries.iter().flat_map(|r| r.certificates.iter());
            for ca in cas.chain(&edge.ca_pems) {
                if !e.ca_pems.contains(ca) {
                    e.ca_pems.push(ca.clone());
                }
            }
            if edge.login.is_some() {
                e.login = edge.login.clone();
            }
        }
        RegistrySettings { entries }
    }

    pub fn entries(&self) -> &[RegistrySetting] {
        &self.entries
    }

    /// The entry whose key is exactly `key` (`host[:port][/path]`, host case ignored).
    pub fn get(&self, key: &str) -> Option<&RegistrySetting> {
        self.entries.iter().find(|e| same_key(&e.key, key))
    }
}

fn same_key(a: &str, b: &str) -> bool {
    let norm = |k: &str| {
        let k = k.trim().trim_end_matches('/');
        match k.split_once('/') {
            Some((h, p)) => format!("{}/{p}", h.to_ascii_lowercase()),
            None => k.to_ascii_lowercase(),
        }
    };
    norm(a) == norm(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_data(text: &str) -> UserData {
        UserData::parse(text, "user-data.yaml").unwrap()
    }

    #[test]
    fn user_data_registries_by_domain() {
        let ud = user_data(
            "#cloud-config\nstylus:\n  registryCredentials:\n    domain: 10.10.254.254:8000/spectro-images\n    username: ubuntu\n    password: s3cret\n    insecure: true\n",
        );
        let s = RegistrySettings::new(Some(&ud), None);
        assert_eq!(s.entries().len(), 1);
        let e = s.get("10.10.254.254:8000/spectro-images").unwrap();
        assert_eq!(e.login, Some(Login::new("ubuntu", "s3cret")));
        assert!(e.insecure && e.ca_pems.is_empty());
        assert_eq!(e.field.as_deref(), Some("stylus.registryCredentials"));
        assert!(!format!("{s:?}").contains("s3cret"));
        // A registry without credentials has no login.
        let ud = user_data(
            "#cloud-config\nstylus:\n  externalRegistries:\n    registries:\n      - domain: ext.example.com\n",
        );
        let s = RegistrySettings::new(Some(&ud), None);
        assert_eq!(s.get("ext.example.com").unwrap().login, None);
        assert_eq!(RegistrySettings::new(None, None).entries(), &[]);
    }

    #[test]
    fn the_edge_trusts_its_own_ca_and_the_user_datas() {
        let ud = user_data(
            "#cloud-config\nstylus:\n  externalRegistries:\n    registries:\n      - domain: ext.example.com\n",
        );
        let mut edge = EdgeAccess::new(EdgeRegistry::parse("edge:5000", None).unwrap());
        edge.ca_pems.push("EDGE-CA".into());
        let s = RegistrySettings::new(Some(&ud), Some(&edge));
        let e = s.get("edge:5000").unwrap();
        assert_eq!(e.ca_pems, vec!["EDGE-CA".to_string()]);
        assert!(!e.insecure && e.login.is_none() && e.field.is_none());
        let field = s.get("ext.example.com").unwrap().field.as_deref();
        assert_eq!(field, Some("stylus.externalRegistries.registries[0]"));

        let plain = EdgeAccess::new(EdgeRegistry::parse("http://edge:5000", None).unwrap());
        let s = RegistrySettings::new(Some(&ud), Some(&plain));
        let e = s.get("EDGE:5000").unwrap();
        assert!(e.insecure && e.ca_pems.is_empty());

        let mut marked = EdgeAccess::new(EdgeRegistry::parse("edge:5000", None).unwrap());
        marked.insecure = true;
        marked.login = Some(Login::new("edge", "pw"));
        let s = RegistrySettings::new(None, Some(&marked));
        let e = s.get("edge:5000").unwrap();
        assert!(e.insecure);
        assert_eq!(e.login, Some(Login::new("edge", "pw")));
    }

    #[test]
    fn an_edge_that_is_also_in_the_user_data_is_one_entry() {
        let ud = user_data(
            "#cloud-config\nstylus:\n  externalRegistries:\n    registries:\n      - domain: edge:5000\n        username: u\n        password: p\n",
        );
        let mut edge = EdgeAccess::new(EdgeRegistry::parse("https://Edge:5000", None).unwrap());
        edge.ca_pems = vec!["EDGE-CA".into(), "EDGE-CA".into()];
        let s = RegistrySettings::new(Some(&ud), Some(&edge));
        assert_eq!(s.entries().len(), 1);
        let e = &s.entries()[0];
        assert_eq!(
            e.login,
            Some(Login::new("u", "p")),
            "the user data's login stays"
        );
        assert_eq!(e.ca_pems, vec!["EDGE-CA".to_string()], "each CA once");
    }
}
