//! Per-registry settings (credentials, TLS) and how one is chosen for a request.

use berth_secret::Secret;

use crate::side::Side;

/// A user name and password for a registry. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: impl Into<Secret>) -> Credentials {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &self.password)
            .finish()
    }
}

/// How to talk to one registry (or one part of it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegistryConfig {
    pub credentials: Option<Credentials>,
    /// Allow plain HTTP and TLS certificates that do not verify.
    pub insecure: bool,
    /// Extra trusted CA certificates (PEM), on top of the system roots.
    pub ca_pems: Vec<String>,
}

/// Settings keyed by `host[:port][/path]`. For a request to `registry/repository` the entry
/// whose key is the longest prefix of it, at a path-component boundary, applies. Each entry
/// has the [`Side`] its errors name (and a registry without an entry the default side).
#[derive(Clone, Debug, Default)]
pub struct RegistryConfigs {
    entries: Vec<(String, RegistryConfig)>,
    sides: Vec<(String, Side)>,
    side: Side,
}

/// Normalizes a key the way people write registry names in auth files: no scheme, no
/// trailing `/`, and Docker Hub's aliases (`index.docker.io`, `registry-1.docker.io`,
/// `https://index.docker.io/v1/`) as `docker.io`.
pub fn normalize_key(key: &str) -> String {
    let mut k = key.trim();
    for scheme in ["https://", "http://"] {
        if let Some(rest) = k.strip_prefix(scheme) {
            k = rest;
        }
    }
    let k = k.trim_end_matches('/');
    let (host, path) = match k.split_once('/') {
        Some((h, p)) => (h, Some(p)),
        None => (k, None),
    };
    let host = host.to_ascii_lowercase();
    let host = match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_string()
        }
        _ => host,
    };
    match path {
        // Docker's own key for Docker Hub is `https://index.docker.io/v1/`.
        Some("v1") | Some("v2") if host == "docker.io" => host,
        Some(p) if !p.is_empty() => format!("{host}/{p}"),
        _ => host,
    }
}

impl RegistryConfigs {
    pub fn new() -> RegistryConfigs {
        RegistryConfigs::default()
    }

    /// Adds (or replaces) the entry for `key` (`host[:port][/path]`).
    pub fn insert(&mut self, key: &str, config: RegistryConfig) {
        let key = normalize_key(key);
        self.entries.retain(|(k, _)| *k != key);
        self.entries.push((key, config));
    }

    /// Adds (or replaces) the entry for `key`, on `side`.
    pub fn insert_on(&mut self, key: &str, config: RegistryConfig, side: Side) {
        self.insert(key, config);
        let key = normalize_key(key);
        self.sides.retain(|(k, _)| *k != key);
        self.sides.push((key, side));
    }

    /// These settings, every entry (and any other registry) on `side`.
    pub fn with_side(mut self, side: Side) -> RegistryConfigs {
        self.sides.clear();
        self.side = side;
        self
    }

    /// The side errors about `registry` (`host[:port]`) name: that of its entry (the host's
    /// own, else the first under a path of it), else the default.
    pub fn side(&self, registry: &str) -> &Side {
        let host = normalize_key(registry);
        let under = format!("{host}/");
        self.sides
            .iter()
            .find(|(k, _)| *k == host)
            .or_else(|| self.sides.iter().find(|(k, _)| k.starts_with(&under)))
            .map_or(&self.side, |(_, s)| s)
    }

    /// Adds the entry only if there is none for `key` yet.
    pub fn insert_if_absent(&mut self, key: &str, config: RegistryConfig) {
        let key = normalize_key(key);
        if !self.entries.iter().any(|(k, _)| *k == key) {
            self.entries.push((key, config));
        }
    }

    /// Mutable access to the entry for `key`, created empty if missing.
    pub fn entry(&mut self, key: &str) -> &mut RegistryConfig {
        let key = normalize_key(key);
        let i = match self.entries.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                self.entries.push((key, RegistryConfig::default()));
                self.entries.len() - 1
            }
        };
        &mut self.entries[i].1
    }

    pub fn entries(&self) -> impl Iterator<Item = (&str, &RegistryConfig)> {
        self.entries.iter().map(|(k, c)| (k.as_str(), c))
    }

    /// The entry for a request to `repository` on `registry`: the longest key that is a
    /// prefix of `registry/repository` ending at a `/` boundary (or equal to it).
    pub fn select(&self, registry: &str, repository: &str) -> Option<(&str, &RegistryConfig)> {
        let registry = normalize_key(registry);
        let target = if repository.is_empty() {
            registry
        } else {
            format!("{registry}/{repository}")
        };
        self.entries
            .iter()
            .filter(|(k, _)| {
                target == *k
                    || (target.starts_with(k.as_str())
                        && target.as_bytes().get(k.len()) == Some(&b'/'))
            })
            .max_by_key(|(k, _)| k.len())
            .map(|(k, c)| (k.as_str(), c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(user: &str) -> RegistryConfig {
        RegistryConfig {
            credentials: Some(Credentials::new(user, "pw")),
            ..Default::default()
        }
    }

    #[test]
    fn longest_prefix_at_component_boundary() {
        let mut c = RegistryConfigs::new();
        c.insert("reg.example:5000", cfg("host"));
        c.insert("reg.example:5000/team", cfg("team"));
        c.insert("reg.example:5000/team/app", cfg("app"));
        c.insert("https://index.docker.io/v1/", cfg("hub"));
        let user = |r: &str, p: &str| {
            c.select(r, p)
                .and_then(|(_, c)| c.credentials.as_ref().map(|c| c.username.clone()))
        };
        assert_eq!(
            user("reg.example:5000", "team/app/x").as_deref(),
            Some("app")
        );
        assert_eq!(user("reg.example:5000", "team/app").as_deref(), Some("app"));
        // `team/application` is not under `team/app`.
        assert_eq!(
            user("reg.example:5000", "team/application").as_deref(),
            Some("team")
        );
        assert_eq!(user("reg.example:5000", "teams/x").as_deref(), Some("host"));
        assert_eq!(user("reg.example:5000", "other").as_deref(), Some("host"));
        // Another port is another registry.
        assert_eq!(user("reg.example:5001", "team/app"), None);
        assert_eq!(user("reg.example", "team/app"), None);
        // `reg.example:50000` must not match `reg.example:5000`.
        assert_eq!(user("reg.example:50000", "x"), None);
        assert_eq!(user("docker.io", "library/nginx").as_deref(), Some("hub"));
        assert_eq!(
            user("index.docker.io", "library/nginx").as_deref(),
            Some("hub")
        );
    }

    #[test]
    fn sides_by_host_then_by_path_then_default() {
        let mut c = RegistryConfigs::new().with_side(Side::External { field: None });
        let ext = |i: usize| Side::External {
            field: Some(format!("stylus.externalRegistries.registries[{i}]")),
        };
        c.insert_on("ext.example/spectro", cfg("a"), ext(0));
        c.insert_on("Edge:5000", cfg("b"), Side::Edge);
        assert_eq!(c.side("ext.example"), &ext(0));
        assert_eq!(c.side("edge:5000"), &Side::Edge);
        assert_eq!(c.side("other"), &Side::External { field: None });
        assert_eq!(c.with_side(Side::Source).side("edge:5000"), &Side::Source);
    }

    #[test]
    fn debug_hides_password() {
        let c = Credentials::new("u", "hunter2");
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!format!("{:?}", cfg("x")).contains("pw\""));
    }
}
