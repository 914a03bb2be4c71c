//! User data as registry settings: for each registry, the login, the CA certificates to
//! trust and whether TLS may be skipped. The one place this conversion is made (`berth-plan`
//! adds the edge registry); the network client turns [`RegistrySettings`] into its own
//! configuration (`berth_client::RegistryConfigs: From<&RegistrySettings>`).

use berth_secret::Secret;

use crate::UserData;

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

/// Settings for every registry the user data names (and, added by `berth-plan`, the edge
/// registry).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistrySettings {
    entries: Vec<RegistrySetting>,
}

impl RegistrySettings {
    /// Each user-data registry by its `domain`: its login when it has one, its
    /// certificates, `insecure`.
    pub fn new(user_data: Option<&UserData>) -> RegistrySettings {
        let registries = user_data
            .map(|u| u.registries.as_slice())
            .unwrap_or_default();
        let entries = registries
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
        RegistrySettings { entries }
    }

    /// Adds a registry in front of the others (the edge registry) by its `host`, or
    /// updates the entry it already has: `insecure` when asked, trusting `ca_pems` and every
    /// CA already known (its certificate may come from the same CA as the external
    /// registry's), with `login` when one is given.
    pub fn add_front(
        &mut self,
        host: &str,
        insecure: bool,
        ca_pems: &[String],
        login: Option<Login>,
    ) {
        let known: Vec<String> = self
            .entries
            .iter()
            .flat_map(|e| e.ca_pems.clone())
            .collect();
        let i = match self.entries.iter().position(|e| same_key(&e.key, host)) {
            Some(i) => i,
            None => {
                self.entries.push(RegistrySetting {
                    key: host.to_string(),
                    ..RegistrySetting::default()
                });
                self.entries.len() - 1
            }
        };
        let e = &mut self.entries[i];
        // The edge's flags (--edge-ca, --edge-insecure, --edge-creds) are what fix it.
        e.field = None;
        e.insecure |= insecure;
        for ca in known.iter().chain(ca_pems) {
            if !e.ca_pems.contains(ca) {
                e.ca_pems.push(ca.clone());
            }
        }
        if login.is_some() {
            e.login = login;
        }
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
        let s = RegistrySettings::new(Some(&ud));
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
        let s = RegistrySettings::new(Some(&ud));
        assert_eq!(s.get("ext.example.com").unwrap().login, None);
        assert_eq!(RegistrySettings::new(None).entries(), &[]);
    }
}
