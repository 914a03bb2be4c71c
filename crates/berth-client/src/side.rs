//! Which registry a setting is for, as the user knows it: a source registry, `berth copy`'s
//! destination, a registry of the user data, or the edge registry. What fixes a TLS,
//! plain-HTTP, credentials or address problem differs by side, so errors name the side and
//! that side's option (or user-data field) only.

use std::fmt;

/// The side of a registry, for errors that say what to change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Side {
    /// Not known: every side's option is listed.
    #[default]
    Unknown,
    /// A registry images are read from (`--src-*`).
    Source,
    /// `berth copy`'s destination (`--dest-*`).
    Destination,
    /// A registry of the user data: `field` is where it is described
    /// (`stylus.externalRegistries.registries[0]`, `stylus.registryCredentials`), `None`
    /// when no entry describes it (a mapping rule's target outside every `domain`).
    External { field: Option<String> },
    /// The edge registry (`--edge-*`).
    Edge,
    /// A Helm chart repository or registry charts are fetched from (`--chart-*`).
    Charts,
}

const CREDENTIALS_ENTRY: &str = "stylus.registryCredentials";
const NEW_ENTRY: &str = "stylus.externalRegistries.registries[]";

impl Side {
    /// `the source registry`, `the edge registry`, ...; `the registry` when not known.
    pub fn name(&self) -> &'static str {
        match self {
            Side::Unknown => "the registry",
            Side::Source => "the source registry",
            Side::Destination => "the destination registry",
            Side::External { .. } => "the external registry",
            Side::Edge => "the edge registry",
            Side::Charts => "the chart repository",
        }
    }

    /// The user-data entry of an external registry (`None` when no entry describes it).
    fn entry(&self) -> Option<&str> {
        match self {
            Side::External { field } => field.as_deref(),
            _ => None,
        }
    }

    /// How to allow plain HTTP (or skip TLS verification) for this side.
    pub fn insecure_fix(&self) -> String {
        match self {
            Side::Unknown => "--src-tls-verify=false for a source registry, `insecure: true` in the user data's entry for the external registry, --edge-insecure (or an http:// --edge-registry) for the edge registry".into(),
            Side::Source => "give --src-tls-verify=false".into(),
            Side::Destination => "give --dest-tls-verify=false".into(),
            Side::External { field: None } => {
                format!("describe it under `{NEW_ENTRY}` with its `domain` and `insecure: true`")
            }
            Side::External { field: Some(f) } => format!("set `{f}.insecure: true` in the user data"),
            Side::Edge => "give --edge-insecure (or --edge-registry http://HOST)".into(),
            Side::Charts => "give --chart-insecure".into(),
        }
    }

    /// How to trust this side's CA.
    pub fn ca_fix(&self, registry: &str) -> String {
        match self {
            Side::Unknown => "trust its CA: a source registry with --src-cert-dir DIR, the external registry with its PEM text in the user data (`stylus.externalRegistries.registries[].certificates`), the edge registry with --edge-ca FILE; for a test registry only, --src-tls-verify=false, `insecure: true` or --edge-insecure".into(),
            Side::Source => format!("trust its CA with --src-cert-dir DIR (DIR/{registry}/ca.crt, or DIR/ca.crt for every source); for a test registry only, --src-tls-verify=false"),
            Side::Destination => format!("trust its CA with --dest-cert-dir DIR (DIR/{registry}/ca.crt); for a test registry only, --dest-tls-verify=false"),
            Side::External { .. } if self.entry() == Some(CREDENTIALS_ENTRY) => format!("`{CREDENTIALS_ENTRY}` has no CA field: describe the registry under `{NEW_ENTRY}` with its CA's PEM text in `certificates`; for a test registry only, `{CREDENTIALS_ENTRY}.insecure: true`"),
            Side::External { field: Some(f) } => format!("put its CA's PEM text in `{f}.certificates` in the user data; for a test registry only, `{f}.insecure: true`"),
            Side::External { field: None } => format!("describe it under `{NEW_ENTRY}` with its `domain` and its CA's PEM text in `certificates`"),
            Side::Edge => "trust its CA with --edge-ca FILE (berth serve's DATA/tls/ca.crt); for a test registry only, --edge-insecure".into(),
            Side::Charts => "trust its CA with --chart-ca FILE|DIR; for a test repository only, --chart-insecure".into(),
        }
    }

    /// Where this side's credentials are set.
    pub fn credentials_fix(&self) -> String {
        match self {
            Side::Unknown => "--src-creds or --src-authfile for a source registry, `username` and `password` of the user data's entry for the external registry, --edge-creds for the edge registry".into(),
            Side::Source => "--src-creds USER:PASS (or REGISTRY=USER:PASS), or --src-authfile FILE".into(),
            Side::Destination => "--dest-creds USER:PASS".into(),
            Side::External { field: Some(f) } => format!("`{f}.username` and `{f}.password` in the user data (with `encodedPassword: true` the password is base64)"),
            Side::External { field: None } => format!("an entry under `{NEW_ENTRY}` with its `domain`, `username` and `password`"),
            Side::Edge => "--edge-creds USER:PASS".into(),
            Side::Charts => "--chart-creds USER:PASS (or HOST=USER:PASS), or an auth.json / Docker config.json in its usual place".into(),
        }
    }

    /// Where this side's address comes from.
    pub fn address_fix(&self) -> String {
        match self {
            Side::Unknown => "the image reference".into(),
            Side::Source => "the image references of the profiles".into(),
            Side::Destination => "the destination reference".into(),
            Side::External { field: Some(f) } => {
                format!("`{f}.domain` and the mapping rules in the user data")
            }
            Side::External { field: None } => "the mapping rules in the user data".into(),
            Side::Edge => "--edge-registry".into(),
            Side::Charts => "the `repo` of the pack's chart, or --chart".into(),
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_side_names_its_own_option_only() {
        let ext = Side::External {
            field: Some("stylus.externalRegistries.registries[0]".into()),
        };
        assert_eq!(
            ext.ca_fix("r:1"),
            "put its CA's PEM text in `stylus.externalRegistries.registries[0].certificates` in the user data; for a test registry only, `stylus.externalRegistries.registries[0].insecure: true`"
        );
        assert!(
            Side::Source
                .ca_fix("r:1")
                .contains("--src-cert-dir DIR (DIR/r:1/ca.crt")
        );
        assert!(!Side::Source.ca_fix("r:1").contains("--edge"));
        assert!(Side::Edge.insecure_fix().contains("--edge-insecure"));
        assert!(!Side::Edge.credentials_fix().contains("--src"));
        let rc = Side::External {
            field: Some(CREDENTIALS_ENTRY.into()),
        };
        assert!(
            rc.ca_fix("r").contains("has no CA field"),
            "{}",
            rc.ca_fix("r")
        );
        assert!(Side::Unknown.ca_fix("r").contains("--edge-ca"));
    }
}
