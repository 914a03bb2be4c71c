//! Node registry configuration, derived from the user data and the optional edge registry:
//! containerd `hosts.toml` files, the CRI `config.toml` drop-in, and the k3s/RKE2
//! `registries.yaml`. These redirect pulls on the node itself (what Palette users write by
//! hand when `imageRedirectWebhook.enable` is false), so the webhook's switch is not
//! consulted here.
//!
//! [`plan`] computes, per upstream registry host, the mirrors a pull tries in order and the
//! path rules at each (`<upstream path prefix>` → `<mirror path prefix>`), from the same rules
//! as `berth_rewrite::Rewriter` (prepend, mapping rules, edge registry); every profile image is
//! then checked against the rewrite function itself, and an image a format cannot route to
//! exactly its rewritten name becomes a note (its pods rely on the webhook).
//!
//! **containerd semantics** (1.5 and later, 1.6 included; `docs/node.md`): the `[host]`
//! entries are tried in order, then `server`; to forbid falling back to the internet the last
//! mirror *is* the `server`. A mirror under a path prefix is written as
//! `https://<mirror>/v2/<prefix>` with `override_path = true`, so containerd requests
//! `/v2/<prefix>/<repository>/manifests/<tag>`. hosts.toml can only route a whole upstream
//! host, so a mapping rule on a path (`gcr.io/team` → ...) cannot be expressed there; the k3s
//! `rewrite` regexes can. With an edge registry, the user-data registries themselves get a
//! hosts.toml too (the edge registry first, then the registry), so pulls naming them use the
//! edge registry's cache. hosts.toml carries credentials only when asked
//! ([`HostsOptions::credentials`]: a `header` `Authorization`, for `ctr` and other clients that
//! do not read the CRI config); otherwise they come from the kubelet credential provider or
//! the CRI `registry.configs` drop-in ([`cri_drop_in`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use berth_reference::Reference;
use berth_rewrite::{LocalRegistry, Rewriter, encode_host_component};
use berth_secret::Secret;
use berth_userdata::{Redirect, UserData, is_under};

use crate::NodeError;
use crate::text::q;

/// The edge (local) registry as the node reaches it.
#[derive(Debug, Clone)]
pub struct EdgeRegistry {
    pub local: LocalRegistry,
    /// `http://` instead of `https://`.
    pub plain_http: bool,
    /// PEM CA certificates to trust it.
    pub ca_pem: Option<String>,
    /// Skip TLS verification.
    pub insecure: bool,
}

impl EdgeRegistry {
    /// From `[http://|https://]HOST[:PORT]`, a project, an optional CA (PEM) and `insecure`.
    pub fn parse(
        url: &str,
        project: Option<&str>,
        ca_pem: Option<String>,
        insecure: bool,
    ) -> Result<EdgeRegistry, NodeError> {
        let (plain_http, host) = if let Some(h) = url.strip_prefix("http://") {
            (true, h)
        } else {
            (false, url.strip_prefix("https://").unwrap_or(url))
        };
        let local = LocalRegistry::new(host.trim_end_matches('/'), project)
            .map_err(|e| NodeError::Config(e.to_string()))?;
        Ok(EdgeRegistry {
            local,
            plain_http,
            ca_pem,
            insecure,
        })
    }
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
    fn scheme(&self) -> &'static str {
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

    fn whole_host(&self) -> Option<&PathRule> {
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
    fn has_tls_settings(&self) -> bool {
        !self.certificates.is_empty() || self.insecure || self.plain_http
    }

    fn has_credentials(&self) -> bool {
        !self.username.is_empty() || !self.password.is_empty()
    }

    /// `base64(user:password)`, as an `Authorization: Basic` header carries it.
    fn basic_auth(&self) -> String {
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

fn join(parts: &[&str]) -> String {
    parts
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/")
}

fn split_prefix(prefix: &str) -> (&str, &str) {
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
        hosts.insert(
            e.local.host().to_string(),
            HostSettings {
                host: e.local.host().to_string(),
                plain_http: e.plain_http,
                certificates,
                insecure: e.insecure,
                username: String::new(),
                password: Secret::default(),
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

/// A file to write: where, what, and whether it holds a password (mode 0600, else 0644).
#[derive(Clone, PartialEq, Eq)]
pub struct RenderedFile {
    pub path: PathBuf,
    pub contents: String,
    pub secret: bool,
}

impl std::fmt::Debug for RenderedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("RenderedFile");
        d.field("path", &self.path);
        if self.secret {
            d.field("contents", &berth_secret::REDACTED);
        } else {
            d.field("contents", &self.contents);
        }
        d.finish()
    }
}

/// Rendered files and what they cannot express.
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    pub files: Vec<RenderedFile>,
    pub notes: Vec<String>,
}

fn ca_file(dir: &Path, h: &HostSettings) -> Option<RenderedFile> {
    if h.certificates.is_empty() {
        return None;
    }
    Some(RenderedFile {
        path: dir.join(h.ca_file_name()),
        contents: h.certificates.concat(),
        secret: false,
    })
}

/// The TLS lines of one host entry (`ca`, `skip_verify`).
fn tls_lines(out: &mut String, indent: &str, h: Option<&HostSettings>) {
    if let Some(h) = h {
        if !h.certificates.is_empty() {
            out.push_str(&format!("{indent}ca = {}\n", q(&h.ca_file_name())));
        }
        if h.insecure {
            out.push_str(&format!("{indent}skip_verify = true\n"));
        }
    }
}

/// An empty `[host]` table for a file with no `[host."…"]` entry: containerd 1.6 (1.6.20
/// tested) refuses a hosts.toml without one ("invalid `host` tree"), logs it and then pulls
/// from the upstream itself, ignoring the file. 1.7 and 2.x accept the empty table.
const EMPTY_HOST_TABLE: &str =
    "\n# containerd 1.6 ignores a hosts.toml without a [host] table; this one is empty.\n[host]\n";

/// How [`containerd_hosts_with`] renders.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostsOptions {
    /// Put each registry's credentials into the entries that reach it, as a `header`
    /// `Authorization = "Basic ..."` (containerd 1.5 and later send it with every request to
    /// that entry, and only to it). For clients that do not read the CRI `registry.configs`:
    /// `ctr`, nerdctl, containerd's transfer service. The files become secret (0600).
    pub credentials: bool,
}

/// The `header` table of one entry with the host's credentials, if asked and it has some.
/// Returns whether it wrote a password.
fn auth_header(
    out: &mut String,
    table: &str,
    h: Option<&HostSettings>,
    opts: HostsOptions,
) -> bool {
    match h {
        Some(h) if opts.credentials && h.has_credentials() => {
            out.push_str(&format!("\n[{table}]\n"));
            out.push_str(&format!(
                "  Authorization = {}\n",
                q(&format!("Basic {}", h.basic_auth()))
            ));
            true
        }
        _ => false,
    }
}

/// `contents` of a rendered file with every password of the plan (quoted, or inside a
/// `Basic` header) replaced by `<redacted>`, for printing.
pub fn redact(contents: &str, plan: &Plan) -> String {
    let mut text = contents.to_string();
    for h in plan.hosts.values().filter(|h| !h.password.is_empty()) {
        text = text.replace(&h.basic_auth(), "<redacted>");
        let quoted = serde_json::to_string(h.password.expose()).unwrap_or_default();
        text = text.replace(&quoted, "\"<redacted>\"");
    }
    text
}

/// containerd `hosts.toml` files (and CA files beside them) under `hosts_dir`
/// (`/etc/containerd/certs.d`): one directory per upstream host, plus one per registry host
/// that needs TLS settings. No credentials: see [`containerd_hosts_with`].
pub fn containerd_hosts(plan: &Plan, hosts_dir: &Path) -> Rendered {
    containerd_hosts_with(plan, hosts_dir, HostsOptions::default())
}

/// [`containerd_hosts`] with options (credentials in the files).
pub fn containerd_hosts_with(plan: &Plan, hosts_dir: &Path, opts: HostsOptions) -> Rendered {
    let mut out = Rendered {
        notes: plan.notes.clone(),
        ..Rendered::default()
    };
    let header = format!(
        "# Generated by `berth node-config` from {}. Rewritten on every run: do not edit.\n",
        plan.source
    );
    for u in &plan.upstreams {
        let dir = hosts_dir.join(&u.host);
        // Only whole-host rules can be expressed in hosts.toml.
        let mut entries: Vec<(&Mirror, &PathRule)> = Vec::new();
        for m in &u.mirrors {
            for r in &m.rules {
                if !r.source.is_empty() {
                    out.notes.push(format!(
                        "hosts.toml cannot route {}/{} to {}/{} (containerd mirrors whole hosts); pods with these images rely on the webhook or registries.yaml",
                        u.host, r.source, m.host, r.target
                    ));
                }
            }
            if let Some(r) = m.whole_host() {
                entries.push((m, r));
            }
        }
        if entries.is_empty() {
            continue;
        }
        for img in &u.images {
            if let Some(r) = entries.first().and_then(|(m, _)| {
                // A path rule of the first mirror that hosts.toml drops would send this image
                // elsewhere.
                m.rules
                    .iter()
                    .find(|r| !r.source.is_empty() && is_under(img.path(), &r.source))
            }) {
                out.notes.push(format!(
                    "{img}: under the path rule {}/{}; containerd would fetch it by the whole-host rule instead",
                    u.host, r.source
                ));
            }
        }
        let url = |m: &Mirror, r: &PathRule| {
            format!("{}://{}", m.scheme(), join(&[&m.host, "v2", &r.target]))
        };
        let mut t = header.clone();
        t.push_str(&format!(
            "# Pulls of {} try the mirrors below in order{}.\n",
            u.host,
            if plan.fallback_upstream {
                ", then the upstream registry"
            } else {
                "; the last one is the server, so they never fall back to the upstream registry"
            }
        ));
        type Entry<'p> = (&'p Mirror, &'p PathRule);
        // A user-data registry routed through the edge registry is its own last mirror.
        let fallback = plan.fallback_upstream && !plan.hosts.contains_key(&u.host);
        let (hosts_list, server): (&[Entry], Option<Entry>) = if fallback {
            (&entries[..], None)
        } else {
            let (last, rest) = entries.split_last().expect("entries is not empty");
            (rest, Some(*last))
        };
        let mut secret = false;
        match server {
            None => t.push_str(&format!("server = {}\n", q(&upstream_server(&u.host)))),
            Some((m, r)) => {
                t.push_str(&format!("server = {}\n", q(&url(m, r))));
                t.push_str("capabilities = [\"pull\", \"resolve\"]\n");
                t.push_str("override_path = true\n");
                tls_lines(&mut t, "", plan.hosts.get(&m.host));
                secret |= auth_header(&mut t, "header", plan.hosts.get(&m.host), opts);
            }
        }
        for (m, r) in hosts_list {
            let entry = url(m, r);
            t.push_str(&format!("\n[host.{}]\n", q(&entry)));
            t.push_str("  capabilities = [\"pull\", \"resolve\"]\n");
            t.push_str("  override_path = true\n");
            tls_lines(&mut t, "  ", plan.hosts.get(&m.host));
            secret |= auth_header(
                &mut t,
                &format!("host.{}.header", q(&entry)),
                plan.hosts.get(&m.host),
                opts,
            );
        }
        if hosts_list.is_empty() {
            t.push_str(EMPTY_HOST_TABLE);
        }
        let mut cas = BTreeSet::new();
        for (m, _) in &entries {
            if let Some(h) = plan.hosts.get(&m.host)
                && cas.insert(h.host.clone())
                && let Some(f) = ca_file(&dir, h)
            {
                out.files.push(f);
            }
        }
        out.files.push(RenderedFile {
            path: dir.join("hosts.toml"),
            contents: t,
            secret,
        });
    }
    // Registry hosts pulled from directly (rewritten names): their TLS settings (and
    // credentials, if asked).
    for h in plan.hosts.values() {
        let creds = opts.credentials && h.has_credentials();
        if !(h.has_tls_settings() || creds) || plan.upstreams.iter().any(|u| u.host == h.host) {
            continue;
        }
        let dir = hosts_dir.join(&h.host);
        let mut t = header.clone();
        t.push_str(&format!(
            "# TLS settings for pulls from {} itself.\n",
            h.host
        ));
        let scheme = if h.plain_http { "http" } else { "https" };
        t.push_str(&format!(
            "server = {}\n",
            q(&format!("{scheme}://{}", h.host))
        ));
        t.push_str("capabilities = [\"pull\", \"resolve\"]\n");
        tls_lines(&mut t, "", Some(h));
        let secret = auth_header(&mut t, "header", Some(h), opts);
        t.push_str(EMPTY_HOST_TABLE);
        if let Some(f) = ca_file(&dir, h) {
            out.files.push(f);
        }
        out.files.push(RenderedFile {
            path: dir.join("hosts.toml"),
            contents: t,
            secret,
        });
    }
    out
}

/// The containerd 1.x CRI drop-in (`/etc/containerd/conf.d/berth.toml`, imported from
/// `config.toml`): `config_path` pointing at `hosts_dir`, and, with `with_auth`, each registry
/// host's credentials under `registry.configs."<host>".auth` (mode 0600).
pub fn cri_drop_in(plan: &Plan, hosts_dir: &Path, path: &Path, with_auth: bool) -> RenderedFile {
    let mut t = format!(
        "# Generated by `berth node-config` from {}. containerd 1.x (config version 2).\n",
        plan.source
    );
    t.push_str("version = 2\n\n");
    t.push_str("[plugins.\"io.containerd.grpc.v1.cri\".registry]\n");
    t.push_str(&format!(
        "  config_path = {}\n",
        q(&hosts_dir.display().to_string())
    ));
    let mut secret = false;
    if with_auth {
        for h in plan.hosts.values().filter(|h| h.has_credentials()) {
            secret = true;
            t.push_str(&format!(
                "\n[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.{}.auth]\n",
                q(&h.host)
            ));
            t.push_str(&format!("  username = {}\n", q(&h.username)));
            t.push_str(&format!("  password = {}\n", q(h.password.expose())));
        }
    }
    RenderedFile {
        path: path.to_path_buf(),
        contents: t,
        secret,
    }
}

fn regex_escape(s: &str) -> String {
    let mut o = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            o.push('\\');
        }
        o.push(c);
    }
    o
}

/// The k3s/RKE2 rewrite of one rule: a Go regular expression on the repository path and its
/// replacement.
pub fn rewrite_regex(r: &PathRule) -> (String, String) {
    if r.source.is_empty() {
        let rep = if r.target.is_empty() {
            "$1".to_string()
        } else {
            format!("{}/$1", r.target)
        };
        return ("^(.*)$".into(), rep);
    }
    let src = regex_escape(&r.source);
    if r.target.is_empty() {
        (format!("^{src}/(.*)$"), "$1".into())
    } else {
        (format!("^{src}(/.*)?$"), format!("{}$1", r.target))
    }
}

/// The k3s/RKE2 `registries.yaml` at `path`, with CA files in `<dir of path>/berth-ca/`.
/// One endpoint list per upstream host; with an edge registry only the edge registry is an
/// endpoint (a mirror's rewrites apply to all its endpoints, and the external registry needs
/// other paths). k3s always tries the upstream last unless it runs with
/// `--disable-default-registry-endpoint`.
pub fn k3s_registries(plan: &Plan, path: &Path) -> Rendered {
    let mut out = Rendered {
        notes: plan.notes.clone(),
        ..Rendered::default()
    };
    let ca_dir = path.parent().unwrap_or(Path::new("/")).join("berth-ca");
    let mut y = format!(
        "# Generated by `berth node-config` from {}. Rewritten on every run: do not edit.\n",
        plan.source
    );
    if !plan.fallback_upstream {
        y.push_str("# Start k3s/RKE2 with --disable-default-registry-endpoint so that pulls never fall back to the upstream registries.\n");
    }
    y.push_str("mirrors:");
    if plan
        .upstreams
        .iter()
        .all(|u| plan.hosts.contains_key(&u.host))
    {
        y.push_str(" {}");
    }
    y.push('\n');
    // A user-data registry routed through the edge registry (hosts.toml: the edge registry,
    // then the registry itself) cannot be written here: the rewrite to the edge registry's
    // path would apply to every endpoint, and k3s started with
    // --disable-default-registry-endpoint never tries the registry itself. Such pulls go to
    // the registry directly, as without an edge registry.
    for u in plan
        .upstreams
        .iter()
        .filter(|u| !plan.hosts.contains_key(&u.host))
    {
        let edge_first = u
            .mirrors
            .first()
            .is_some_and(|m| plan.edge.as_deref() == Some(m.host.as_str()));
        let mirrors: Vec<&Mirror> = if edge_first {
            vec![&u.mirrors[0]]
        } else {
            u.mirrors.iter().collect()
        };
        if mirrors.len() > 1 {
            out.notes.push(format!(
                "registries.yaml: the rules of {} target {} registries; k3s applies every rewrite at every endpoint, so some pulls meet a 404 before the right registry",
                u.host,
                mirrors.len()
            ));
        }
        y.push_str(&format!("  {}:\n", q(&u.host)));
        y.push_str("    endpoint:\n");
        for m in &mirrors {
            y.push_str(&format!(
                "      - {}\n",
                q(&format!("{}://{}", m.scheme(), m.host))
            ));
        }
        let mut rules: Vec<&PathRule> = mirrors.iter().flat_map(|m| m.rules.iter()).collect();
        rules.sort_by_key(|r| std::cmp::Reverse(r.source.len()));
        let overlap = rules.iter().enumerate().any(|(i, a)| {
            rules.iter().enumerate().any(|(j, b)| {
                i != j
                    && (b.source.is_empty()
                        || (a.source != b.source && is_under(&a.source, &b.source)))
            })
        });
        if overlap {
            out.notes.push(format!(
                "registries.yaml: the rewrites of {} overlap (one rule's prefix holds another's); containerd does not promise which applies, so pods with those images rely on the webhook",
                u.host
            ));
        }
        y.push_str("    rewrite:\n");
        for r in rules {
            let (re, rep) = rewrite_regex(r);
            y.push_str(&format!("      {}: {}\n", q(&re), q(&rep)));
        }
    }
    // Every registry host with settings: user-data registries and mirrors in use.
    let mut configs = String::new();
    for h in plan.hosts.values() {
        if !(h.has_credentials() || h.has_tls_settings()) {
            continue;
        }
        let mut c = format!("  {}:\n", q(&h.host));
        if h.has_credentials() {
            c.push_str("    auth:\n");
            c.push_str(&format!("      username: {}\n", q(&h.username)));
            c.push_str(&format!("      password: {}\n", q(h.password.expose())));
        }
        if !h.certificates.is_empty() || h.insecure {
            c.push_str("    tls:\n");
            if !h.certificates.is_empty() {
                let f = ca_dir.join(h.ca_file_name());
                c.push_str(&format!("      ca_file: {}\n", q(&f.display().to_string())));
                out.files.push(RenderedFile {
                    path: f,
                    contents: h.certificates.concat(),
                    secret: false,
                });
            }
            if h.insecure {
                c.push_str("      insecure_skip_verify: true\n");
            }
        }
        configs.push_str(&c);
    }
    y.push_str("configs:");
    if configs.is_empty() {
        y.push_str(" {}\n");
    } else {
        y.push('\n');
        y.push_str(&configs);
    }
    let secret = plan.hosts.values().any(|h| h.has_credentials());
    out.files.push(RenderedFile {
        path: path.to_path_buf(),
        contents: y,
        secret,
    });
    out
}
