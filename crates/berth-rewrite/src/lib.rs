//! Where an image lives now: the one rewrite function every Berth command uses, so that what
//! `berth mirror` pushes is exactly where `berth agent` and the webhook look.
//!
//! Rules, applied to the normalized reference (`nginx` → `docker.io/library/nginx:latest`):
//!
//! 1. **Off switches.** `stylus.imageRedirectWebhook.enable: false`, or a namespace labelled
//!    `stylus.io/imageswap=disable`: the reference is returned unchanged.
//! 2. **External registry.**
//!    - `registryCredentials` (R1, prepend): `<domain>/<source registry>/<path>`.
//!    - `registryMappingRules` (R2): the longest rule whose source equals the name or is followed
//!      by `/` in it wins; the matched part is replaced by the rule's target and the rest kept.
//!      Rules do not chain. **A name no rule matches is left as it is** (not redirected).
//! 3. **Local (edge) registry**, when given: `<edge>/<project>/<registry>/<path>` of the result of
//!    step 2 (project `spectro-images` by default).
//!
//! Tags and digests are kept. A reference already under its final target prefix (the prepend
//! domain, a mapping rule's target, or the edge registry's project) is returned unchanged, so
//! rewriting twice equals rewriting once.
//!
//! **Source registries with a port.** A path component may not contain `:`, so when a registry
//! host becomes a path component (prepend, edge registry) `host:port` is written `host_port`
//! (`registry.local:5000/team/app` → `<domain>/registry.local_5000/team/app`), and the host is
//! lower-cased. Host names cannot contain `_`, so the encoding is reversible
//! ([`decode_host_component`]). A bracketed IPv6 host cannot be encoded and is refused with an
//! error that names the fix: a `registryMappingRules` entry for it.
//!
//! Pure: no I/O.

use std::collections::BTreeMap;

use berth_reference::{Reference, ReferenceError};
use berth_userdata::{Redirect, Registry, UserData, is_under};

/// The label that turns redirection off for a namespace.
pub const OPT_OUT_LABEL: &str = "stylus.io/imageswap";
/// Its value that does so.
pub const OPT_OUT_VALUE: &str = "disable";
/// The default project of the edge (local) registry, as Palette's Harbor uses.
pub const DEFAULT_PROJECT: &str = "spectro-images";

/// Why a reference cannot be rewritten.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    #[error(
        "cannot rewrite `{reference}`: its registry `{host}` is an IPv6 address, which cannot become a repository path component under `{prefix}`; add a registryMappingRules entry under stylus.externalRegistries, e.g. \"{host}/<path>\": \"<registry>/<path>\""
    )]
    Ipv6Host {
        reference: String,
        host: String,
        prefix: String,
    },
    #[error("cannot rewrite `{reference}` to `{target}`: {source}")]
    InvalidTarget {
        reference: String,
        target: String,
        #[source]
        source: ReferenceError,
    },
    #[error("invalid local registry `{value}`: {reason}; give HOST[:PORT], e.g. 127.0.0.1:5000")]
    LocalRegistry { value: String, reason: String },
}

/// The edge (local) registry that fronts every image: `<host>/<project>/...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalRegistry {
    host: String,
    project: String,
}

impl LocalRegistry {
    /// `host[:port]` and a project name (`spectro-images` by default).
    pub fn new(host: &str, project: Option<&str>) -> Result<LocalRegistry, RewriteError> {
        let bad = |reason: String| RewriteError::LocalRegistry {
            value: host.to_string(),
            reason,
        };
        let host = host.trim().trim_end_matches('/');
        if host.contains("://") {
            return Err(bad("it has a URL scheme".into()));
        }
        if host.contains('/') {
            return Err(bad("it has a path; the project is set apart".into()));
        }
        berth_reference::validate_domain(host).map_err(bad)?;
        let project = project.unwrap_or(DEFAULT_PROJECT);
        for c in project.split('/') {
            berth_reference::validate_path_component(c)
                .map_err(|r| bad(format!("project `{project}`: {r}")))?;
        }
        Ok(LocalRegistry {
            host: host.to_string(),
            project: project.to_string(),
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn project(&self) -> &str {
        &self.project
    }

    /// `<host>/<project>`.
    pub fn prefix(&self) -> String {
        format!("{}/{}", self.host, self.project)
    }
}

/// The rewrite function, configured once from user data (and an optional edge registry).
#[derive(Debug, Clone)]
pub struct Rewriter {
    enabled: bool,
    redirect: Redirect,
    registries: Vec<Registry>,
    local: Option<LocalRegistry>,
    /// The user data's file name, when the rules come from one (for messages).
    file: Option<String>,
}

impl Rewriter {
    /// With no user data and no local registry, every reference maps to itself.
    pub fn new(user_data: Option<&UserData>, local: Option<LocalRegistry>) -> Rewriter {
        match user_data {
            Some(ud) => Rewriter {
                enabled: ud.webhook.enable,
                redirect: ud.redirect.clone(),
                registries: ud.registries.clone(),
                local,
                file: Some(ud.file.clone()),
            },
            None => Rewriter {
                enabled: true,
                redirect: Redirect::None,
                registries: Vec::new(),
                local,
                file: None,
            },
        }
    }

    /// Whether redirection is on at all (`imageRedirectWebhook.enable`).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn local(&self) -> Option<&LocalRegistry> {
        self.local.as_ref()
    }

    /// The user data's file, when the rules come from one.
    pub fn user_data_file(&self) -> Option<&str> {
        self.file.as_deref()
    }

    /// How the user data redirects references.
    pub fn redirect(&self) -> &Redirect {
        &self.redirect
    }

    /// Step 2 alone: where the user data's rules send `reference` (the external registry),
    /// before any edge registry; unchanged when redirection is off.
    pub fn external_target(&self, reference: &Reference) -> Result<Reference, RewriteError> {
        match self.enabled {
            true => self.external(reference, &reference.name()),
            false => Ok(reference.clone()),
        }
    }

    /// Where `reference` lives now. The one function every command uses.
    pub fn rewrite(&self, reference: &Reference) -> Result<Reference, RewriteError> {
        if !self.enabled {
            return Ok(reference.clone());
        }
        let name = reference.name();
        if let Some(local) = &self.local
            && is_under(&name, &local.prefix())
        {
            return Ok(reference.clone());
        }
        let external = self.external(reference, &name)?;
        match &self.local {
            None => Ok(external),
            Some(local) => {
                let prefix = local.prefix();
                let ext_name = external.name();
                let (host, rest) = ext_name.split_once('/').unwrap_or((&ext_name, ""));
                let component =
                    encode_host_component(host).ok_or_else(|| RewriteError::Ipv6Host {
                        reference: reference.to_string(),
                        host: host.to_string(),
                        prefix: prefix.clone(),
                    })?;
                retarget(
                    reference,
                    &external,
                    &format!("{prefix}/{component}/{rest}"),
                )
            }
        }
    }

    /// Like [`Rewriter::rewrite`], for a pod in a namespace with these labels: a namespace
    /// labelled `stylus.io/imageswap=disable` is left alone.
    pub fn rewrite_in_namespace(
        &self,
        reference: &Reference,
        namespace_labels: &BTreeMap<String, String>,
    ) -> Result<Reference, RewriteError> {
        if namespace_labels.get(OPT_OUT_LABEL).map(String::as_str) == Some(OPT_OUT_VALUE) {
            return Ok(reference.clone());
        }
        self.rewrite(reference)
    }

    /// Parses, normalizes and rewrites a reference string.
    pub fn rewrite_str(&self, reference: &str) -> Result<Reference, RewriteErrorOrParse> {
        let r = Reference::parse(reference).map_err(RewriteErrorOrParse::Parse)?;
        self.rewrite(&r).map_err(RewriteErrorOrParse::Rewrite)
    }

    /// The registry entry (credentials, CA, `insecure`) for a rewritten reference: the one whose
    /// `domain` is its longest prefix.
    pub fn registry_for(&self, target: &Reference) -> Option<&Registry> {
        let name = target.name();
        self.registries
            .iter()
            .filter(|r| is_under(&name, &r.domain))
            .max_by_key(|r| r.domain.len())
    }

    /// Every registry entry from user data.
    pub fn registries(&self) -> &[Registry] {
        &self.registries
    }

    /// Step 2 alone: the external-registry rules.
    fn external(&self, reference: &Reference, name: &str) -> Result<Reference, RewriteError> {
        match &self.redirect {
            Redirect::None => Ok(reference.clone()),
            Redirect::Prepend { domain } => {
                if is_under(name, domain) {
                    return Ok(reference.clone());
                }
                let component = encode_host_component(reference.domain()).ok_or_else(|| {
                    RewriteError::Ipv6Host {
                        reference: reference.to_string(),
                        host: reference.domain().to_string(),
                        prefix: domain.clone(),
                    }
                })?;
                retarget(
                    reference,
                    reference,
                    &format!("{domain}/{component}/{}", reference.path()),
                )
            }
            Redirect::Mapping { rules } => {
                if rules.iter().any(|r| is_under(name, &r.target)) {
                    return Ok(reference.clone());
                }
                match self.redirect.rule_for(name) {
                    Some(rule) => {
                        let rest = &name[rule.source.len()..];
                        retarget(reference, reference, &format!("{}{rest}", rule.target))
                    }
                    None => Ok(reference.clone()),
                }
            }
        }
    }
}

/// A parse error or a rewrite error, for [`Rewriter::rewrite_str`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteErrorOrParse {
    #[error(transparent)]
    Parse(ReferenceError),
    #[error(transparent)]
    Rewrite(RewriteError),
}

fn retarget(
    original: &Reference,
    tagged: &Reference,
    name: &str,
) -> Result<Reference, RewriteError> {
    if !name.contains('/') {
        return Err(RewriteError::InvalidTarget {
            reference: original.to_string(),
            target: name.to_string(),
            source: ReferenceError::Invalid {
                reference: name.to_string(),
                reason: "the result is a registry with no repository path; give the mapping rule's target a path".into(),
            },
        });
    }
    tagged
        .with_name(name)
        .map_err(|source| RewriteError::InvalidTarget {
            reference: original.to_string(),
            target: name.to_string(),
            source,
        })
}

/// A registry host as one repository path component: lower case, `:` → `_`
/// (`Registry.Local:5000` → `registry.local_5000`). `None` for a bracketed IPv6 host.
pub fn encode_host_component(domain: &str) -> Option<String> {
    if domain.starts_with('[') {
        return None;
    }
    Some(domain.to_ascii_lowercase().replace(':', "_"))
}

/// The inverse of [`encode_host_component`]: `registry.local_5000` → `registry.local:5000`.
pub fn decode_host_component(component: &str) -> String {
    match component.rsplit_once('_') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{host}:{port}")
        }
        _ => component.to_string(),
    }
}

#[cfg(test)]
mod tests;
