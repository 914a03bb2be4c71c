//! User data and the edge registry as registry settings ([`RegistrySettings`], made in
//! `berth-userdata`): the edge registry is added in front, with its own CAs, login and
//! `insecure`. `berth-client` converts the result to its configuration, so this crate stays
//! free of any network code.

use berth_rewrite::Rewriter;
use berth_userdata::{RegistrySettings, UserData};

use crate::EdgeRegistry;
pub use berth_userdata::{Login, RegistrySetting};

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

/// Where images go and how to reach those registries: the rewrite function of the user data
/// with the edge registry (when given) in front, and [`registry_settings`].
pub fn targets(
    user_data: Option<&UserData>,
    edge: Option<&EdgeAccess>,
) -> (Rewriter, RegistrySettings) {
    let local = edge.map(|e| e.registry.local().clone());
    let rewriter = Rewriter::new(user_data, local);
    (rewriter, registry_settings(user_data, edge))
}

/// Settings for every registry the user data names, then the edge registry by its host:
/// `insecure` when it is plain HTTP or marked so, trusting its own CAs and the user data's
/// (the edge's certificate may come from the same CA as the external registry's), with its
/// login when one is given.
pub fn registry_settings(
    user_data: Option<&UserData>,
    edge: Option<&EdgeAccess>,
) -> RegistrySettings {
    let mut s = RegistrySettings::new(user_data);
    if let Some(e) = edge {
        let insecure = e.insecure || e.registry.plain_http();
        s.add_front(e.registry.host(), insecure, &e.ca_pems, e.login.clone());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_data(text: &str) -> UserData {
        UserData::parse(text, "user-data.yaml").unwrap()
    }

    #[test]
    fn the_edge_trusts_its_own_ca_and_the_user_datas() {
        let ud = user_data(
            "#cloud-config\nstylus:\n  externalRegistries:\n    registries:\n      - domain: ext.example.com\n",
        );
        let mut edge = EdgeAccess::new(EdgeRegistry::parse("edge:5000", None).unwrap());
        edge.ca_pems.push("EDGE-CA".into());
        let s = registry_settings(Some(&ud), Some(&edge));
        let e = s.get("edge:5000").unwrap();
        assert_eq!(e.ca_pems, vec!["EDGE-CA".to_string()]);
        assert!(!e.insecure && e.login.is_none() && e.field.is_none());
        let field = s.get("ext.example.com").unwrap().field.as_deref();
        assert_eq!(field, Some("stylus.externalRegistries.registries[0]"));

        let plain = EdgeAccess::new(EdgeRegistry::parse("http://edge:5000", None).unwrap());
        let s = registry_settings(Some(&ud), Some(&plain));
        let e = s.get("EDGE:5000").unwrap();
        assert!(e.insecure && e.ca_pems.is_empty());

        let mut marked = EdgeAccess::new(EdgeRegistry::parse("edge:5000", None).unwrap());
        marked.insecure = true;
        marked.login = Some(Login::new("edge", "pw"));
        let s = registry_settings(None, Some(&marked));
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
        let s = registry_settings(Some(&ud), Some(&edge));
        assert_eq!(s.entries().len(), 1);
        let e = &s.entries()[0];
        assert_eq!(
            e.login,
            Some(Login::new("u", "p")),
            "the user data's login stays"
        );
        assert_eq!(e.ca_pems, vec!["EDGE-CA".to_string()], "each CA once");
    }

    #[test]
    fn targets_go_through_the_edge_and_its_settings_come_first() {
        let ud = user_data(
            "#cloud-config\nstylus:\n  registryCredentials:\n    domain: ext.example.com\n    username: u\n    password: p\n",
        );
        let edge = EdgeAccess::new(EdgeRegistry::parse("http://edge:5000/p", None).unwrap());
        let (rewriter, s) = targets(Some(&ud), Some(&edge));
        let t = rewriter.rewrite_str("quay.io/a/b:1").unwrap().to_string();
        assert_eq!(t, "edge:5000/p/ext.example.com/quay.io/a/b:1");
        assert!(s.get("edge:5000").unwrap().insecure);
        let (rewriter, s) = targets(None, None);
        let t = rewriter.rewrite_str("nginx").unwrap().to_string();
        assert_eq!(t, "docker.io/library/nginx:latest");
        assert!(s.entries().is_empty());
    }
}
