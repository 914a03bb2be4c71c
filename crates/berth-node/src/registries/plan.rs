//! The plan: per upstream registry host, the mirrors a pull tries in order and the path
//! rules at each, from the same rules as `berth_rewrite::Rewriter`; every profile image is
//! checked against the rewrite function itself.

use std::collections::{BTreeMap, BTreeSet};

use berth_reference::Reference;
use berth_rewrite::{LocalRegistry, Rewriter, encode_host_component};
use berth_secret::Secret;
use berth_userdata::{Login, Redirect, UserData, is_under};

use crate::NodeError;

/// The edge (local) registry as the node reaches it (its address parsed by
/// `berth_plan::EdgeRegistry`, the one parser; `berth_agent::node_edge` builds this).
#[derive(Debug, Clone)]
pub struct EdgeRegistry {
    pub local: LocalRegistry,
    /// `http://` instead of `https://`.
    pub plain_http: bool,
    /// PEM CA certificates to trust it.
    pub ca_pem: Option<String>,
    /// Skip TLS verification.
    pub insecure: bool,
    /// Its login (written into hosts.toml only when credentials are asked for).
    pub login: Option<Login>,
}

/// A rule at one mirror: images under `upstream/<source>` are fetched as
/// `mirror/<target>/<rest>` (`source` empty: the whole upstream host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathRule {
    pub source: String,
    pub target: String,
}

/// One mirror of an upstream host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// `host[:port]`.
    pub host: String,
    pub plain_http: bool,
    /// Longest `source` first.
    pub rules: Vec<PathRule>,
}

impl Mirror {
    pub(super) fn scheme(&self) -> &'static str {
        if self.plain_http { "http" } else { "https" }
    }

    /// Where the path `path` (under the upstream host) is fetched here, if a rule applies.
    pub fn route(&self, path: &str) -> Option<String> {
        self.rules
            .iter()
            .find(|r| r.source.is_empty() || is_under(path, &r.source))
            .map(|r| {
                let rest = if r.source.is_empty() {
                    path
                } else {
                    path[r.source.len()..].trim_start_matches('/')
                };
                join(&[&self.host, &r.target, rest])
            })
    }

    pub(super) fn whole_host(&self) -> Option<&PathRule> {
        self.rules.iter().find(|r| r.source.is_empty())
    }
}

/// The mirrors of one upstream registry host, in the order a pull tries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub host: String,
    pub mirrors: Vec<Mirror>,
    /// The profile images under this host (for the exactness check).
    pub images: Vec<Reference>,
}

/// TLS settings and credentials of a registry host the node pulls from.
#[derive(Debug, Clone)]
pub struct HostSettings {
    pub host: String,
    pub plain_http: bool,
    pub certificates: Vec<String>,
    pub insecure: bool,
    pub username: String,
    pub password: Secret,
}

impl HostSettings {
    pub(super) fn has_tls_settings(&self) -> bool {
        !self.certificates.is_empty() || self.insecure || self.plain_http
    }

    pub(super) fn has_credentials(&self) -> bool {
        !self.username.is_empty() || !self.password.is_empty()
    }

    /// `base64(user:password)`, as an `Authorization: Basic` header carries it.
    pub(super) fn basic_auth(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            self.username,
            self.password.expose()
        ))
    }

    /// The CA file name for this host: `10.10.254.254_8000.crt`.
    pub fn ca_file_name(&self) -> String {
        format!("{}.crt", self.host.replace(':', "_"))
    }
}

/// What the node's registry configuration must do.
#[derive(Debug, Clone)]
pub struct Plan {
    pub upstreams: Vec<Upstream>,
    /// Every registry host the node reaches directly (user-data registries, the edge registry).
    pub hosts: BTreeMap<String, HostSettings>,
    /// Whether a pull may fall back to the upstream registry itself.
    pub fallback_upstream: bool,
    pub notes: Vec<String>,
    pub source: String,
    /// The edge registry's host, if any.
    pub edge: Option<String>,
}

pub(super) fn join(parts: &[&str]) -> String {
    parts
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/")
}

pub(super) fn split_prefix(prefix: &str) -> (&str, &str) {
    prefix.split_once('/').unwrap_or((prefix, ""))
}

/// The upstream host's real registry endpoint (`docker.io` is served by `registry-1.docker.io`).
pub fn upstream_server(host: &str) -> String {
    if host == "docker.io" {
        "https://registry-1.docker.io".into()
    } else {
        format!("https://{host}")
    }
}

/// Computes the plan for these profile images (their source references).
pub fn plan(
    user_data: &UserData,
    edge: Option<&EdgeRegistry>,
    images: &[Reference],
    fallback_upstream: bool,
) -> Result<Plan, NodeError> {
    // Node configuration is what one writes when the webhook is off: plan as if it were on.
    let mut ud = user_data.clone();
    ud.webhook.enable = true;
    let rewriter = Rewriter::new(Some(&ud), edge.map(|e| e.local.clone()));
    let mut notes = Vec::new();

    let mut hosts: BTreeMap<String, HostSettings> = BTreeMap::new();
    for r in &ud.registries {
        let h = hosts
            .entry(r.host().to_string())
            .or_insert_with(|| HostSettings {
                host: r.host().to_string(),
                plain_http: false,
                certificates: Vec::new(),
                insecure: false,
                username: String::new(),
                password: Secret::default(),
            });
        for c in &r.certificates {
            if !h.certificates.contains(c) {
                h.certificates.push(c.clone());
            }
        }
        h.insecure |= r.insecure;
        if r.has_credentials() {
            if h.has_credentials() {
                if h.username != r.username || h.password != r.password {
                    notes.push(format!(
                        "{}: registries on host {} have different credentials; node-wide host settings (registries.yaml, the CRI drop-in) use the first ({}); the credential provider still tells them apart by path",
                        r.field, r.host(), r.username
                    ));
                }
            } else {
                h.username = r.username.clone();
                h.password = r.password.clone();
            }
        }
    }
    if let Some(e) = edge {
        let certificates = match &e.ca_pem {
            Some(pem) => berth_userdata::split_pem(pem)
                .map_err(|m| NodeError::Config(format!("the edge registry CA: {m}")))?,
            None => Vec::new(),
        };
        let login = e.login.clone().map(|l| (l.username, l.password));
        let (username, password) = login.unwrap_or_default();
        hosts.insert(
            e.local.host().to_string(),
            HostSettings {
                host: e.local.host().to_string(),
                plain_http: e.plain_http,
                certificates,
                insecure: e.insecure,
                username,
                password,
            },
        );
    }

    // Upstream hosts: those of the images and of the mapping rules' sources.
    let mut upstream_hosts: BTreeSet<String> =
        images.iter().map(|r| r.domain().to_string()).collect();
    if let Redirect::Mapping { rules } = &ud.redirect {
        for r in rules {
            upstream_hosts.insert(split_prefix(&r.source).0.to_string());
        }
    }

    let mut upstreams = Vec::new();
    // With an edge registry, pulls that name a user-data registry itself (what the rewrite
    // gives without the edge registry) go through the edge registry (its pull-through cache,
    // `/v2/<project>/<host_port>/...`) first, then to that registry.
    if let Some(e) = edge {
        for (h, settings) in &hosts {
            if h.as_str() == e.local.host() {
                continue;
            }
            let comp = encode_host_component(h).ok_or_else(|| {
                NodeError::Config(format!(
                    "registry {h} is an IPv6 address and cannot become a path under the edge registry"
                ))
            })?;
            upstreams.push(Upstream {
                host: h.clone(),
                mirrors: vec![
                    Mirror {
                        host: e.local.host().to_string(),
                        plain_http: e.plain_http,
                        rules: vec![PathRule {
                            source: String::new(),
                            target: join(&[e.local.project(), &comp]),
                        }],
                    },
                    Mirror {
                        host: h.clone(),
                        plain_http: settings.plain_http,
                        rules: vec![PathRule {
                            source: String::new(),
                            target: String::new(),
                        }],
                    },
                ],
                images: images.iter().filter(|r| r.domain() == h).cloned().collect(),
            });
        }
    }
    for h in upstream_hosts {
        if hosts.contains_key(&h) {
            // A registry the node reaches directly (through the edge registry when there is
            // one, above); its images are already where they live.
            continue;
        }
        // External rules: (mirror host, rule).
        let mut external: Vec<(String, PathRule)> = Vec::new();
        match &ud.redirect {
            Redirect::None => {}
            Redirect::Prepend { domain } => {
                let (dh, dp) = split_prefix(domain);
                let comp = encode_host_component(&h).ok_or_else(|| {
                    NodeError::Config(format!(
                        "upstream {h} is an IPv6 address and cannot become a path under {domain}; add a registryMappingRules entry"
                    ))
                })?;
                external.push((
                    dh.to_string(),
                    PathRule {
                        source: String::new(),
                        target: join(&[dp, &comp]),
                    },
                ));
            }
            Redirect::Mapping { rules } => {
                let mut mine: Vec<_> = rules
                    .iter()
                    .filter(|r| split_prefix(&r.source).0 == h)
                    .collect();
                mine.sort_by_key(|r| std::cmp::Reverse(r.source.len()));
                for r in mine {
                    let (th, tp) = split_prefix(&r.target);
                    external.push((
                        th.to_string(),
                        PathRule {
                            source: split_prefix(&r.source).1.to_string(),
                            target: tp.to_string(),
                        },
                    ));
                }
            }
        }
        let mut mirrors: Vec<Mirror> = Vec::new();
        if let Some(e) = edge {
            let project = e.local.project();
            let mut rules = Vec::new();
            for (th, r) in &external {
                let comp = encode_host_component(th).unwrap_or_else(|| th.clone());
                rules.push(PathRule {
                    source: r.source.clone(),
                    target: join(&[project, &comp, &r.target]),
                });
            }
            if !rules.iter().any(|r| r.source.is_empty()) {
                let comp = encode_host_component(&h).ok_or_else(|| {
                    NodeError::Config(format!(
                        "upstream {h} is an IPv6 address and cannot become a path under the edge registry"
                    ))
                })?;
                rules.push(PathRule {
                    source: String::new(),
                    target: join(&[project, &comp]),
                });
            }
            mirrors.push(Mirror {
                host: e.local.host().to_string(),
                plain_http: e.plain_http,
                rules,
            });
        }
        for (th, r) in external {
            match mirrors.iter_mut().find(|m| m.host == th) {
                Some(m) => m.rules.push(r),
                None => mirrors.push(Mirror {
                    host: th.clone(),
                    plain_http: false,
                    rules: vec![r],
                }),
            }
        }
        if mirrors.is_empty() {
            continue;
        }
        let images: Vec<Reference> = images.iter().filter(|r| r.domain() == h).cloned().collect();
        upstreams.push(Upstream {
            host: h,
            mirrors,
            images,
        });
    }

    upstreams.sort_by(|a, b| a.host.cmp(&b.host));

    // The exactness check: the first mirror must give every image its rewritten name.
    for u in &upstreams {
        for img in &u.images {
            let expected = match rewriter.rewrite(img) {
                Ok(t) => t.name(),
                Err(e) => {
                    notes.push(format!("{img}: {e}"));
                    continue;
                }
            };
            let routed = u.mirrors.iter().find_map(|m| m.route(img.path()));
            if expected == img.name() && !fallback_upstream {
                notes.push(format!(
                    "{img}: no rule redirects it and falling back to {} is off, so the node cannot pull it",
                    u.host
                ));
                continue;
            }
            if routed.as_deref() != Some(expected.as_str()) && expected != img.name() {
                notes.push(format!(
                    "{img}: the rewrite gives {expected} but the mirrors give {}",
                    routed.unwrap_or_else(|| img.name())
                ));
            }
        }
    }

    Ok(Plan {
        upstreams,
        hosts,
        fallback_upstream,
        notes,
        source: user_data.file.clone(),
        edge: edge.map(|e| e.local.host().to_string()),
    })
}
