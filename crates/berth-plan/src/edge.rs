//! The edge registry's address, as every command takes it:
//! `[https://|http://]HOST[:PORT][/PROJECT]`.
//!
//! - No scheme, or `https://`: HTTPS. `http://`: plain HTTP. Any other scheme is refused.
//! - `HOST` is a DNS name, an IPv4 address or a bracketed IPv6 address (`[fd00::5]:5000`).
//! - `/PROJECT` (one or more path components) is the first part of every repository on it;
//!   it may instead be given apart (`--edge-project`), and both must then agree. Without
//!   either it is `spectro-images`.
//! - Credentials (`user:pass@`), queries and fragments are refused; an error never repeats
//!   an address that held a password.

use std::fmt;
use std::str::FromStr;

use berth_rewrite::{DEFAULT_PROJECT, LocalRegistry};

/// What to write instead, in every message.
const FORM: &str = "give [https://|http://]HOST[:PORT][/PROJECT], e.g. 10.0.0.5:5000 or https://edge.local:5000/spectro-images";

/// Why an edge-registry address was refused. Every message names the value (unless it held
/// a password) and the form to use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EdgeRegistryError {
    #[error("the edge registry address is empty; {FORM}")]
    Empty,
    #[error(
        "edge registry `{value}`: `{scheme}://` is not a registry scheme; use https:// (the default) or http:// for plain HTTP"
    )]
    Scheme { value: String, scheme: String },
    #[error(
        "the edge registry address holds credentials (`USER:PASSWORD@`); give them apart (--edge-creds), never in the address"
    )]
    Credentials,
    #[error("edge registry `{value}`: a query or fragment (`?`, `#`) has no meaning here; {FORM}")]
    Query { value: String },
    #[error(
        "edge registry `{value}`: `{host}` looks like an IPv6 address without brackets; write [{host}] (with a port: [{host}]:5000)"
    )]
    Ipv6Brackets { value: String, host: String },
    #[error("edge registry `{value}`: {reason}; {FORM}")]
    Host { value: String, reason: String },
    #[error("edge registry `{value}`: project `{project}`: {reason}")]
    Project {
        value: String,
        project: String,
        reason: String,
    },
    #[error(
        "edge registry `{value}` names the project `{in_address}` but the project is also given as `{given}`; give it once"
    )]
    ProjectConflict {
        value: String,
        in_address: String,
        given: String,
    },
}

/// A parsed edge-registry address: host, project and scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeRegistry {
    local: LocalRegistry,
    plain_http: bool,
}

impl EdgeRegistry {
    /// Parses `value`; `project` is the project given apart (`None`: the address's, else
    /// `spectro-images`).
    pub fn parse(value: &str, project: Option<&str>) -> Result<EdgeRegistry, EdgeRegistryError> {
        let v = value.trim();
        if v.is_empty() {
            return Err(EdgeRegistryError::Empty);
        }
        // `@` belongs in no part of the address: it can only be `USER:PASSWORD@`.
        if v.contains('@') {
            return Err(EdgeRegistryError::Credentials);
        }
        let (plain_http, rest) = match v.split_once("://") {
            Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
                "https" => (false, rest),
                "http" => (true, rest),
                _ => {
                    return Err(EdgeRegistryError::Scheme {
                        value: v.to_string(),
                        scheme: scheme.to_string(),
                    });
                }
            },
            None => (false, v),
        };
        let (authority, path) = match rest.split_once('/') {
            Some((a, p)) => (a, p.trim_matches('/')),
            None => (rest, ""),
        };
        if rest.contains(['?', '#']) {
            return Err(EdgeRegistryError::Query {
                value: v.to_string(),
            });
        }
        let bad_host = |reason: String| EdgeRegistryError::Host {
            value: v.to_string(),
            reason,
        };
        if authority.is_empty() {
            return Err(bad_host("the host is missing".into()));
        }
        if !authority.starts_with('[') && authority.matches(':').count() > 1 {
            return Err(EdgeRegistryError::Ipv6Brackets {
                value: v.to_string(),
                host: authority.to_string(),
            });
        }
        berth_reference::validate_domain(authority).map_err(bad_host)?;
        let in_address = (!path.is_empty()).then_some(path);
        let project = match (in_address, project) {
            (Some(a), Some(g)) if a != g => {
                return Err(EdgeRegistryError::ProjectConflict {
                    value: v.to_string(),
                    in_address: a.to_string(),
                    given: g.to_string(),
                });
            }
            (Some(a), _) => a,
            (None, Some(g)) => g,
            (None, None) => DEFAULT_PROJECT,
        };
        for c in project.split('/') {
            berth_reference::validate_path_component(c).map_err(|reason| {
                EdgeRegistryError::Project {
                    value: v.to_string(),
                    project: project.to_string(),
                    reason,
                }
            })?;
        }
        let local =
            LocalRegistry::new(authority, Some(project)).map_err(|e| bad_host(e.to_string()))?;
        Ok(EdgeRegistry { local, plain_http })
    }

    /// `host[:port]`.
    pub fn host(&self) -> &str {
        self.local.host()
    }

    pub fn project(&self) -> &str {
        self.local.project()
    }

    /// Whether it is reached over plain HTTP (`http://`).
    pub fn plain_http(&self) -> bool {
        self.plain_http
    }

    /// The rewrite function's view of it: `<host>/<project>/...`.
    pub fn local(&self) -> &LocalRegistry {
        &self.local
    }

    /// `https://host[:port]` or `http://host[:port]`.
    pub fn url(&self) -> String {
        let scheme = if self.plain_http { "http" } else { "https" };
        format!("{scheme}://{}", self.host())
    }
}

impl fmt::Display for EdgeRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.url(), self.project())
    }
}

impl FromStr for EdgeRegistry {
    type Err = EdgeRegistryError;

    fn from_str(s: &str) -> Result<EdgeRegistry, EdgeRegistryError> {
        EdgeRegistry::parse(s, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(v: &str, project: Option<&str>) -> (String, String, bool) {
        let e = EdgeRegistry::parse(v, project).unwrap_or_else(|e| panic!("{v}: {e}"));
        (
            e.host().to_string(),
            e.project().to_string(),
            e.plain_http(),
        )
    }

    fn s(h: &str, p: &str, plain: bool) -> (String, String, bool) {
        (h.to_string(), p.to_string(), plain)
    }

    #[test]
    fn host_port_project_with_or_without_scheme() {
        let d = DEFAULT_PROJECT;
        assert_eq!(ok("edge.local", None), s("edge.local", d, false));
        assert_eq!(ok("edge.local:5000", None), s("edge.local:5000", d, false));
        assert_eq!(ok(" https://edge:5000/ ", None), s("edge:5000", d, false));
        assert_eq!(ok("HTTPS://edge:5000", None), s("edge:5000", d, false));
        assert_eq!(
            ok("http://10.0.0.1:5000", None),
            s("10.0.0.1:5000", d, true)
        );
        assert_eq!(
            ok("10.0.0.1:5000/images", None),
            s("10.0.0.1:5000", "images", false)
        );
        assert_eq!(
            ok("http://edge/team/images/", None),
            s("edge", "team/images", true)
        );
        assert_eq!(ok("edge:5000", Some("mine")), s("edge:5000", "mine", false));
        // The same project twice is fine.
        assert_eq!(ok("edge/mine", Some("mine")), s("edge", "mine", false));
        let e: EdgeRegistry = "http://edge:5000/p".parse().unwrap();
        assert_eq!(e.url(), "http://edge:5000");
        assert_eq!(e.to_string(), "http://edge:5000/p");
        assert_eq!(e.local().prefix(), "edge:5000/p");
    }

    #[test]
    fn ipv6_hosts_need_brackets() {
        let d = DEFAULT_PROJECT;
        assert_eq!(ok("[::1]:5000", None), s("[::1]:5000", d, false));
        assert_eq!(ok("http://[fd00::5]/p", None), s("[fd00::5]", "p", true));
        assert_eq!(
            ok("https://[2001:db8::1]:443", None),
            s("[2001:db8::1]:443", d, false)
        );
        let e = EdgeRegistry::parse("fd00::5", None).unwrap_err();
        assert!(matches!(e, EdgeRegistryError::Ipv6Brackets { .. }), "{e:?}");
        assert!(e.to_string().contains("[fd00::5]"), "{e}");
        let e = EdgeRegistry::parse("[fd00::5:5000", None).unwrap_err();
        assert!(matches!(e, EdgeRegistryError::Host { .. }), "{e:?}");
        assert!(e.to_string().contains("closing `]`"), "{e}");
        let e = EdgeRegistry::parse("[not-an-ip]:5000", None).unwrap_err();
        assert!(e.to_string().contains("not an IPv6 address"), "{e}");
    }

    #[test]
    fn bad_addresses_are_named_with_the_fix() {
        let err = |v: &str| EdgeRegistry::parse(v, None).unwrap_err();
        assert_eq!(err("  "), EdgeRegistryError::Empty);
        let e = err("ftp://edge");
        assert!(matches!(e, EdgeRegistryError::Scheme { ref scheme, .. } if scheme == "ftp"));
        assert!(e.to_string().contains("ftp://edge") && e.to_string().contains("http://"));
        assert!(matches!(err("https://"), EdgeRegistryError::Host { .. }));
        assert!(matches!(err("/project"), EdgeRegistryError::Host { .. }));
        let e = err("edge:port");
        assert!(
            e.to_string().contains("`port`") && e.to_string().contains("HOST[:PORT]"),
            "{e}"
        );
        assert!(err("edge:70000").to_string().contains("70000"));
        assert!(err("edge_1:5000").to_string().contains("edge_1"));
        assert!(matches!(err("edge?x=1"), EdgeRegistryError::Query { .. }));
        assert!(matches!(
            err("edge/Images"),
            EdgeRegistryError::Project { .. }
        ));
        assert!(matches!(
            err("edge/a//b"),
            EdgeRegistryError::Project { .. }
        ));
        let e = EdgeRegistry::parse("edge/a", Some("b")).unwrap_err();
        assert!(
            matches!(e, EdgeRegistryError::ProjectConflict { .. }),
            "{e:?}"
        );
        assert!(e.to_string().contains("`a`") && e.to_string().contains("`b`"));
        let e = EdgeRegistry::parse("edge", Some("Bad Project")).unwrap_err();
        assert!(matches!(e, EdgeRegistryError::Project { .. }), "{e:?}");
    }

    #[test]
    fn a_password_in_the_address_is_never_repeated() {
        for v in [
            "https://admin:hunter2@edge:5000",
            "admin:hunter2@edge:5000",
            "ftp://admin:hunter2@edge",
            "admin:pass/word@edge",
        ] {
            let e = EdgeRegistry::parse(v, None).unwrap_err();
            assert_eq!(e, EdgeRegistryError::Credentials, "{v}");
            assert!(!e.to_string().contains("hunter2") && !format!("{e:?}").contains("hunter2"));
        }
    }
}
