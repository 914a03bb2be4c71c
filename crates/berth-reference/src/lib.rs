//! Image references, per the distribution reference grammar, normalized the way Docker does.
//!
//! ```text
//! reference := name [ ":" tag ] [ "@" digest ]
//! name      := [ domain "/" ] path-component [ "/" path-component ]*
//! domain    := host [ ":" port ]        host := domain-name | IPv4 | "[" IPv6 "]"
//! path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//! tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//! ```
//!
//! Normalization: a name without a domain is on `docker.io`; a one-component Docker Hub path
//! gets `library/`; `index.docker.io` becomes `docker.io`; a reference with neither tag nor
//! digest gets `:latest`. [`Reference`]'s `Display` prints the normalized form, and parsing
//! that again gives the same value.
//!
//! Pure: no I/O.

/// `Debug` as `Name(text)`, `FromStr`, and serde as the text, for a type that prints
/// itself (`Display`) and parses itself (`parse`, with a [`ReferenceError`]).
macro_rules! text_form {
    ($t:ident) => {
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({self})", stringify!($t))
            }
        }

        impl std::str::FromStr for $t {
            type Err = $crate::ReferenceError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $t::parse(s)
            }
        }

        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as serde::Deserialize>::deserialize(d)?;
                $t::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

mod digest;

use std::fmt;

pub use digest::{Algorithm, Digest};

/// Docker Hub's canonical domain.
pub const DOCKER_HUB: &str = "docker.io";
/// Longest allowed name (domain and path together), as in distribution/reference.
pub const NAME_MAX_LEN: usize = 255;
/// Longest allowed tag.
pub const TAG_MAX_LEN: usize = 128;

/// Why a reference (or a part of one) is not valid. Every variant names the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid image reference `{reference}`: it is empty")]
    Empty { reference: String },
    #[error(
        "invalid image reference `{reference}`: repository names must be lower case (`{component}`); write it as `{suggestion}`"
    )]
    UpperCase {
        reference: String,
        component: String,
        suggestion: String,
    },
    #[error("invalid image reference `{reference}`: {reason}")]
    Invalid { reference: String, reason: String },
    #[error(
        "invalid image reference `{reference}`: the name is {len} characters long, at most {NAME_MAX_LEN} are allowed"
    )]
    NameTooLong { reference: String, len: usize },
    #[error("invalid digest `{digest}`: {reason}")]
    InvalidDigest { digest: String, reason: String },
}

/// A parsed, normalized image reference: `domain/path[:tag][@digest]`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalizes a reference (`nginx` → `docker.io/library/nginx:latest`).
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        let invalid = |reason: &str| ReferenceError::Invalid {
            reference: input.to_string(),
            reason: reason.to_string(),
        };
        if input.is_empty() {
            return Err(ReferenceError::Empty {
                reference: input.to_string(),
            });
        }
        if input.trim() != input || input.chars().any(char::is_whitespace) {
            return Err(invalid("it contains white space"));
        }
        // Split off the digest first: it is the only part that may contain `@`.
        let (rest, digest) = match input.split_once('@') {
            Some((rest, d)) => (rest, Some(Digest::parse(d)?)),
            None => (input, None),
        };
        // The tag follows the last `:` that comes after the last `/` (a `:` before it is a port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                (&rest[..at], Some(&rest[at + 1..]))
            }
            None => (rest, None),
        };
        if let Some(tag) = tag {
            validate_tag(tag).map_err(|r| invalid(&r))?;
        }
        if name.is_empty() {
            return Err(invalid("the repository name is missing"));
        }
        let (domain, path) = split_domain(name);
        let domain = match domain {
            Some(d) => {
                validate_domain(d).map_err(|r| invalid(&r))?;
                if d == "index.docker.io" {
                    DOCKER_HUB.to_string()
                } else {
                    d.to_string()
                }
            }
            None => DOCKER_HUB.to_string(),
        };
        validate_path(path, input)?;
        let path = if domain == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        let len = domain.len() + 1 + path.len();
        if len > NAME_MAX_LEN {
            return Err(ReferenceError::NameTooLong {
                reference: input.to_string(),
                len,
            });
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_string()),
        };
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// Builds a reference from a name (`domain/path`, normalized like [`Reference::parse`])
    /// and the tag and digest of `from`.
    pub fn with_name(&self, name: &str) -> Result<Reference, ReferenceError> {
        Reference::parse(&self.after_name(name.to_string()))
    }

    /// `name` followed by `:TAG` and `@DIGEST`, those this reference has.
    fn after_name(&self, mut name: String) -> String {
        if let Some(t) = &self.tag {
            name.push(':');
            name.push_str(t);
        }
        if let Some(d) = &self.digest {
            name.push('@');
            name.push_str(&d.to_string());
        }
        name
    }

    /// The registry host, with its port if any (`docker.io`, `127.0.0.1:5000`, `[::1]:5000`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path inside the registry (`library/nginx`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `domain/path`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What to ask the registry for: the digest when there is one, else the tag.
    pub fn reference_part(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// A copy pinned to `digest` (the tag is kept).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// A copy with its digest dropped (the tag, or `latest`, stays).
    pub fn without_digest(&self) -> Reference {
        Reference {
            digest: None,
            tag: Some(self.tag.clone().unwrap_or_else(|| "latest".to_string())),
            ..self.clone()
        }
    }

    /// The host part of the domain without the port (`[::1]` keeps its brackets).
    pub fn host(&self) -> &str {
        split_port(&self.domain).0
    }

    /// The port of the domain, if any.
    pub fn port(&self) -> Option<u16> {
        split_port(&self.domain).1.and_then(|p| p.parse().ok())
    }

    /// The short form people type: `nginx:latest` for `docker.io/library/nginx:latest`.
    pub fn familiar(&self) -> String {
        let name = if self.domain == DOCKER_HUB {
            self.path
                .strip_prefix("library/")
                .filter(|p| !p.contains('/'))
                .unwrap_or(&self.path)
                .to_string()
        } else {
            self.name()
        };
        self.after_name(name)
    }
}

/// Splits `host[:port]` (with a bracketed IPv6 host) into its parts.
pub fn split_port(domain: &str) -> (&str, Option<&str>) {
    if domain.starts_with('[') {
        match domain.find(']') {
            Some(end) => {
                let host = &domain[..=end];
                match domain[end + 1..].strip_prefix(':') {
                    Some(p) => (host, Some(p)),
                    None => (host, None),
                }
            }
            None => (domain, None),
        }
    } else {
        match domain.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (domain, None),
        }
    }
}

/// Docker's rule: the first component is a domain when there is a `/` after it and it
/// contains `.` or `:`, is `localhost`, or has upper-case letters.
fn split_domain(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.')
                || first.contains(':')
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

/// Checks a tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`. The error says what is wrong with it.
pub fn validate_tag(tag: &str) -> Result<(), String> {
    if tag.is_empty() {
        return Err("the tag after `:` is empty".into());
    }
    if tag.len() > TAG_MAX_LEN {
        return Err(format!(
            "the tag is {} characters long, at most {TAG_MAX_LEN} are allowed",
            tag.len()
        ));
    }
    let mut chars = tag.chars();
    let first = chars.next().unwrap_or('-');
    if !(first.is_ascii_alphanumeric() || first == '_') {
        return Err(format!(
            "the tag `{tag}` must start with a letter, digit or `_`"
        ));
    }
    if let Some(c) = tag
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!(
            "the tag `{tag}` contains `{c}`; tags allow letters, digits, `_`, `.` and `-`"
        ));
    }
    Ok(())
}

/// Validates `host[:port]`.
pub fn validate_domain(domain: &str) -> Result<(), String> {
    let (host, port) = split_port(domain);
    if let Some(p) = port
        && (p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()) || p.parse::<u16>().is_err())
    {
        return Err(format!(
            "the port `{p}` of registry `{domain}` is not a number from 0 to 65535"
        ));
    }
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or_else(|| format!("the IPv6 address in `{domain}` has no closing `]`"))?;
        inner
            .parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("`{inner}` in `{domain}` is not an IPv6 address"))?;
        return Ok(());
    }
    if host.is_empty() {
        return Err(format!("the registry host in `{domain}` is empty"));
    }
    for comp in host.split('.') {
        let ok = !comp.is_empty()
            && comp.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !comp.starts_with('-')
            && !comp.ends_with('-');
        if !ok {
            return Err(format!(
                "`{host}` is not a valid registry host: each dot-separated part must be letters, digits and inner `-`"
            ));
        }
    }
    Ok(())
}

fn validate_path(path: &str, input: &str) -> Result<(), ReferenceError> {
    let invalid = |reason: String| ReferenceError::Invalid {
        reference: input.to_string(),
        reason,
    };
    for comp in path.split('/') {
        if comp.is_empty() {
            return Err(invalid(
                "the repository path has an empty component (`//`, or a leading or trailing `/`)"
                    .into(),
            ));
        }
        if comp.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ReferenceError::UpperCase {
                reference: input.to_string(),
                component: comp.to_string(),
                suggestion: input.replacen(comp, &comp.to_ascii_lowercase(), 1),
            });
        }
        validate_path_component(comp).map_err(invalid)?;
    }
    Ok(())
}

/// Validates one repository path component: `[a-z0-9]+` joined by `.`, `_`, `__` or `-`+.
pub fn validate_path_component(comp: &str) -> Result<(), String> {
    let b = comp.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let bad = || {
        format!(
            "`{comp}` is not a valid repository path component: use lower-case letters and digits, joined by `.`, `_`, `__` or `-`"
        )
    };
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return Err(bad());
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &comp[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
        if !ok {
            return Err(bad());
        }
    }
    Ok(())
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.after_name(self.name()))
    }
}

text_form!(Reference);

#[cfg(test)]
mod tests;
