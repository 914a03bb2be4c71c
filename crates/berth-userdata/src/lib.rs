//! Palette user data: the registry settings in the `stylus` section of a `#cloud-config`
//! document (palette.md §1).
//!
//! - `stylus.registryCredentials`: one external registry; every image is prefixed with its
//!   `domain` (rule R1, "prepend").
//! - `stylus.externalRegistries`: `registries[]` (credentials, CA certificates, `insecure`) and
//!   `registryMappingRules` (source prefix → target prefix, rule R2).
//! - `stylus.imageRedirectWebhook`: `enable` (default `true`) and `port`.
//!
//! Other top-level keys, and other keys of `stylus`, are ignored. A misspelt field under the
//! keys above is an error with its line and column. Passwords are [`Secret`]s.
//!
//! Pure: the caller reads the file and passes its text and name.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use berth_secret::Secret;
use serde::{Deserialize, Serialize};

mod settings;

pub use settings::{Login, RegistrySetting, RegistrySettings};

/// Why user data was refused. Every message names the file and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserDataError {
    #[error("{file}: user data must begin with the line `#cloud-config` (found `{found}`)")]
    NotCloudConfig { file: String, found: String },
    #[error("{file}:{line}:{column}: {message}\n{snippet}")]
    Syntax {
        file: String,
        line: u64,
        column: u64,
        message: String,
        snippet: String,
    },
    #[error("{file}: {field}: {message}")]
    Field {
        file: String,
        field: String,
        message: String,
    },
}

/// The registry settings of one user-data file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserData {
    /// The file it came from (for messages).
    pub file: String,
    /// How image references are redirected.
    pub redirect: Redirect,
    /// Every registry with credentials or TLS settings (`registryCredentials` gives one).
    pub registries: Vec<Registry>,
    pub webhook: Webhook,
}

/// Which rewrite rule the user data selects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Redirect {
    /// No external registry: references are not redirected.
    None,
    /// `registryCredentials`: prefix every reference with `domain` (R1).
    Prepend { domain: String },
    /// `externalRegistries.registryMappingRules` (R2). Sorted by source.
    Mapping { rules: Vec<MappingRule> },
}

impl Redirect {
    /// The mapping rule that applies to `name` (`host[:port]/path`): the longest source that
    /// equals it or is followed by `/` in it. `None` for other kinds of redirect.
    pub fn rule_for(&self, name: &str) -> Option<&MappingRule> {
        match self {
            Redirect::Mapping { rules } => rules
                .iter()
                .filter(|r| is_under(name, &r.source))
                .max_by_key(|r| r.source.len()),
            _ => None,
        }
    }
}

/// One `registryMappingRules` entry: a source prefix and its replacement.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct MappingRule {
    pub source: String,
    pub target: String,
}

/// A registry entry: where it is, how to log in, and how to trust it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Registry {
    /// `host[:port][/path]`, trailing `/` trimmed.
    pub domain: String,
    pub username: String,
    /// Already decoded when `encodedPassword` was set.
    pub password: Secret,
    pub insecure: bool,
    pub repository_name: String,
    /// PEM certificates, one per entry, each checked to parse.
    pub certificates: Vec<String>,
    /// The field path it came from (`stylus.registryCredentials`, `stylus.externalRegistries.registries[1]`).
    pub field: String,
}

impl Registry {
    /// The host (and port) part of `domain`.
    pub fn host(&self) -> &str {
        self.domain.split('/').next().unwrap_or(&self.domain)
    }

    pub fn has_credentials(&self) -> bool {
        !self.username.is_empty() || !self.password.is_empty()
    }
}

/// `stylus.imageRedirectWebhook`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Webhook {
    pub enable: bool,
    pub port: u16,
}

impl Default for Webhook {
    fn default() -> Webhook {
        Webhook {
            enable: true,
            port: 0,
        }
    }
}

/// The example user data (`examples/user-data.yaml`), that of `berth images --example`.
pub const EXAMPLE: &str = include_str!("../../../examples/user-data.yaml");

impl UserData {
    /// [`EXAMPLE`], parsed.
    pub fn example() -> Result<UserData, UserDataError> {
        UserData::parse(EXAMPLE, "<example user data>")
    }

    /// Reads the `stylus` registry settings of a `#cloud-config` document.
    pub fn parse(text: &str, file: &str) -> Result<UserData, UserDataError> {
        let first = text.lines().next().unwrap_or("").trim_end();
        if first.trim() != "#cloud-config" {
            return Err(UserDataError::NotCloudConfig {
                file: file.to_string(),
                found: first.chars().take(60).collect(),
            });
        }
        let doc: raw::Document =
            serde_saphyr::from_str(text).map_err(|e| syntax(text, file, &e))?;
        let field = |field: &str, message: String| UserDataError::Field {
            file: file.to_string(),
            field: field.to_string(),
            message,
        };
        for key in doc.other.keys() {
            if let Some(known) = near_miss(key, &["stylus"]) {
                return Err(field(
                    key,
                    format!(
                        "unknown top-level key `{key}`: did you mean `{known}`? Without `stylus:` no registry setting is read"
                    ),
                ));
            }
            if let Some(known) = near_miss(key, &["externalRegistries", "registryCredentials"]) {
                return Err(field(
                    key,
                    format!(
                        "unknown top-level key `{key}`: did you mean `stylus.{known}`? (indent it by two spaces under `stylus:`)"
                    ),
                ));
            }
        }
        if doc.external_registries.is_some() || doc.registry_credentials.is_some() {
            let key = if doc.external_registries.is_some() {
                "externalRegistries"
            } else {
                "registryCredentials"
            };
            return Err(field(
                key,
                format!(
                    "`{key}` is a top-level key here; it belongs under `stylus:` (indent it by two spaces)"
                ),
            ));
        }
        let stylus = doc.stylus.unwrap_or_default();
        for key in stylus.other.keys() {
            if let Some(known) = near_miss(key, STYLUS_KEYS) {
                return Err(field(
                    &format!("stylus.{key}"),
                    format!(
                        "unknown key `{key}`: did you mean `{known}`? (Palette reads only the exact spelling; as written, it is ignored)"
                    ),
                ));
            }
        }
        let webhook = match stylus.image_redirect_webhook {
            Some(w) => Webhook {
                enable: w.enable.unwrap_or(true),
                port: w.port.unwrap_or(0),
            },
            None => Webhook::default(),
        };
        let (redirect, registries) = match (stylus.registry_credentials, stylus.external_registries)
        {
            (Some(_), Some(_)) => {
                return Err(field(
                    "stylus",
                    "both `registryCredentials` and `externalRegistries` are set; they are mutually exclusive: keep `registryCredentials` for one registry that prefixes every image, or `externalRegistries` for several registries and mapping rules".into(),
                ));
            }
            (Some(rc), None) => {
                let path = "stylus.registryCredentials";
                if rc.certificates.is_some() {
                    return Err(field(
                        "stylus.registryCredentials.certificates",
                        "Palette has no CA field under `registryCredentials`: to trust a private CA, describe the registry under `stylus.externalRegistries.registries[]` instead and put the CA's PEM text in its `certificates` field (see docs/user-data.md)".into(),
                    ));
                }
                let reg = registry(
                    file,
                    path,
                    rc.domain,
                    rc.username,
                    rc.password,
                    rc.encoded_password,
                    rc.insecure,
                    String::new(),
                    None,
                )?;
                (
                    Redirect::Prepend {
                        domain: reg.domain.clone(),
                    },
                    vec![reg],
                )
            }
            (None, Some(er)) => {
                let mut regs = Vec::new();
                for (i, r) in er.registries.unwrap_or_default().into_iter().enumerate() {
                    let path = format!("stylus.externalRegistries.registries[{i}]");
                    regs.push(registry(
                        file,
                        &path,
                        r.domain,
                        r.username,
                        r.password,
                        r.encoded_password,
                        r.insecure,
                        r.repository_name.unwrap_or_default(),
                        r.certificates,
                    )?);
                }
                let mut rules = Vec::new();
                for (src, dst) in er.registry_mapping_rules.unwrap_or_default() {
                    let path = format!("stylus.externalRegistries.registryMappingRules[\"{src}\"]");
                    let source =
                        prefix(&src).map_err(|m| field(&path, format!("the source {m}")))?;
                    let target =
                        prefix(&dst).map_err(|m| field(&path, format!("the target {m}")))?;
                    rules.push(MappingRule { source, target });
                }
                rules.sort();
                for w in rules.windows(2) {
                    if w[0].source == w[1].source {
                        return Err(field(
                            "stylus.externalRegistries.registryMappingRules",
                            format!(
                                "`{}` is given twice (once with a trailing `/` or `index.docker.io`); keep one rule",
                                w[0].source
                            ),
                        ));
                    }
                }
                let redirect = if rules.is_empty() {
                    Redirect::None
                } else {
                    Redirect::Mapping { rules }
                };
                (redirect, regs)
            }
            (None, None) => (Redirect::None, Vec::new()),
        };
        Ok(UserData {
            file: file.to_string(),
            redirect,
            registries,
            webhook,
        })
    }

    /// Whether no registry setting comes out of this user data: nothing is redirected and
    /// no registry has credentials or TLS settings (no `stylus.registryCredentials`, no
    /// `stylus.externalRegistries`, or an empty one). Commands that mirror, verify or
    /// configure a node refuse such a file; the ones that only print warn.
    pub fn is_empty(&self) -> bool {
        self.registries.is_empty() && matches!(self.redirect, Redirect::None)
    }

    /// Why a command that needs registry settings cannot work with this user data (when
    /// [`UserData::is_empty`]).
    pub fn why_empty(&self) -> Option<String> {
        self.is_empty().then(|| format!(
            "{}: no registry settings: it has neither `stylus.registryCredentials` nor `stylus.externalRegistries` (with a registry or a mapping rule), so nothing is redirected and no credentials apply; see docs/user-data.md",
            self.file
        ))
    }

    /// The registry entry whose `domain` is the longest prefix of `name` (`host[:port]/path`),
    /// matched at a path-component boundary.
    pub fn registry_for(&self, name: &str) -> Option<&Registry> {
        self.registries
            .iter()
            .filter(|r| is_under(name, &r.domain))
            .max_by_key(|r| r.domain.len())
    }
}

/// True when `name` equals `prefix` or continues it after a `/`.
pub fn is_under(name: &str, prefix: &str) -> bool {
    name == prefix
        || (name.len() > prefix.len()
            && name.starts_with(prefix)
            && name.as_bytes()[prefix.len()] == b'/')
}

/// Checks and normalizes a `host[:port][/path]` prefix (trailing `/` trimmed,
/// `index.docker.io` → `docker.io`).
pub fn prefix(s: &str) -> Result<String, String> {
    let t = s.trim().trim_end_matches('/');
    if t.is_empty() {
        return Err("is empty; give a registry host, optionally with a path, e.g. `registry.example.com/palette-images`".into());
    }
    if t.contains("://") {
        return Err(format!(
            "`{s}` has a URL scheme; give `host[:port][/path]` without `http://` or `https://`"
        ));
    }
    let (host, path) = match t.split_once('/') {
        Some((h, p)) => (h, Some(p)),
        None => (t, None),
    };
    berth_reference::validate_domain(host).map_err(|m| format!("`{s}`: {m}"))?;
    if let Some(p) = path {
        for comp in p.split('/') {
            berth_reference::validate_path_component(comp).map_err(|m| format!("`{s}`: {m}"))?;
        }
    }
    let host = if host == "index.docker.io" {
        "docker.io"
    } else {
        host
    };
    Ok(match path {
        Some(p) => format!("{host}/{p}"),
        None => host.to_string(),
    })
}

#[allow(clippy::too_many_arguments)]
fn registry(
    file: &str,
    path: &str,
    domain: Option<String>,
    username: Option<String>,
    password: Option<Secret>,
    encoded: Option<bool>,
    insecure: Option<bool>,
    repository_name: String,
    certificates: Option<raw::Certificates>,
) -> Result<Registry, UserDataError> {
    let field = |f: &str, message: String| UserDataError::Field {
        file: file.to_string(),
        field: format!("{path}.{f}"),
        message,
    };
    let domain = prefix(domain.as_deref().unwrap_or("")).map_err(|m| field("domain", m))?;
    let mut password = password.unwrap_or_default();
    if encoded.unwrap_or(false) {
        let cleaned: String = password
            .expose()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(cleaned.as_bytes())
            .map_err(|_| {
                field(
                    "password",
                    "`encodedPassword` is true but the password is not valid base64; encode it with `printf %s 'PASSWORD' | base64`, or set `encodedPassword: false`".into(),
                )
            })?;
        let s = String::from_utf8(bytes).map_err(|_| {
            field(
                "password",
                "the base64 password does not decode to UTF-8 text".into(),
            )
        })?;
        password = Secret::new(s);
    }
    let pems = match certificates {
        None => Vec::new(),
        Some(raw::Certificates::One(s)) => vec![s],
        Some(raw::Certificates::Many(v)) => v,
    };
    let mut certs = Vec::new();
    for (i, pem) in pems.iter().enumerate() {
        let f = format!("certificates[{i}]");
        certs.extend(split_pem(pem).map_err(|m| field(&f, m))?);
    }
    Ok(Registry {
        domain,
        username: username.unwrap_or_default(),
        password,
        insecure: insecure.unwrap_or(false),
        repository_name,
        certificates: certs,
        field: path.to_string(),
    })
}

/// Splits a PEM bundle into certificates, checking each parses as X.509.
pub fn split_pem(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let block = &rest[start..];
        let end_marker = "-----END CERTIFICATE-----";
        let end = block.find(end_marker).ok_or_else(|| {
            "a PEM block has no `-----END CERTIFICATE-----` line (is it cut off, or not a certificate?)".to_string()
        })?;
        let pem = &block[..end + end_marker.len()];
        if !pem.starts_with("-----BEGIN CERTIFICATE-----") {
            return Err("found a PEM block that is not a CERTIFICATE (a private key?); give only CA certificates".into());
        }
        let (_, parsed) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
            .map_err(|e| format!("the PEM certificate does not decode: {e}"))?;
        parsed
            .parse_x509()
            .map_err(|e| format!("the certificate does not parse as X.509: {e}"))?;
        out.push(format!("{pem}\n"));
        rest = &block[end + end_marker.len()..];
    }
    if out.is_empty() {
        return Err(
            "no `-----BEGIN CERTIFICATE-----` block found; paste the CA certificate in PEM form"
                .into(),
        );
    }
    Ok(out)
}

fn syntax(text: &str, file: &str, e: &serde_saphyr::Error) -> UserDataError {
    let rendered = e.to_string();
    let first = rendered.lines().next().unwrap_or(&rendered);
    // "error: line L column C: message" → "message"
    let message = first
        .split_once(": ")
        .map(|(_, rest)| rest)
        .and_then(|rest| {
            rest.strip_prefix("line ")
                .and_then(|r| r.split_once(": ").map(|(_, m)| m))
                .or(Some(rest))
        })
        .unwrap_or(first)
        .to_string();
    let (line, column) = e
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    // A parser message may quote a value: hide the values of password-like lines.
    let mut message = message;
    for l in text.lines() {
        let redacted = redact_line(l);
        if redacted != l
            && let Some((_, value)) = l.split_once(':')
        {
            let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
            if value.len() >= 3 {
                message = message.replace(value, berth_secret::REDACTED);
            }
        }
    }
    UserDataError::Syntax {
        file: file.to_string(),
        line,
        column,
        message,
        snippet: snippet(text, line as usize, column as usize),
    }
}

/// A few lines around `line`, with the values of password fields hidden.
fn snippet(text: &str, line: usize, column: usize) -> String {
    if line == 0 {
        return String::new();
    }
    let mut out = String::new();
    for (i, l) in text.lines().enumerate() {
        let n = i + 1;
        if n + 2 < line || n > line {
            continue;
        }
        let shown = redact_line(l);
        out.push_str(&format!("{n:>4} | {shown}\n"));
        if n == line {
            out.push_str(&format!(
                "     | {}^\n",
                " ".repeat(column.saturating_sub(1))
            ));
        }
    }
    out
}

/// Hides the value of a line whose key is, or looks like, a password field (misspellings too).
fn redact_line(l: &str) -> String {
    let Some(colon) = l.find(':') else {
        return l.to_string();
    };
    let key = l[..colon]
        .trim()
        .trim_start_matches('-')
        .trim()
        .trim_matches(|c| c == '"' || c == '\'')
        .to_ascii_lowercase();
    let secret_like = ["pass", "pasw", "pwd", "secret", "token", "auth", "cred"]
        .iter()
        .any(|w| key.contains(w))
        || levenshtein(&key, "password") <= 3;
    if secret_like && !l[colon + 1..].trim().is_empty() {
        format!("{} {}", &l[..=colon], berth_secret::REDACTED)
    } else {
        l.to_string()
    }
}

/// The keys of `stylus` that Berth reads.
const STYLUS_KEYS: &[&str] = &[
    "registryCredentials",
    "externalRegistries",
    "imageRedirectWebhook",
];

/// The known key `found` is probably a misspelling of: equal but for case, or a few edits
/// away from it (not for short keys, where that is any word).
fn near_miss<'a>(found: &str, known: &[&'a str]) -> Option<&'a str> {
    if known.contains(&found) {
        return None;
    }
    let lower = found.to_ascii_lowercase();
    known.iter().copied().find(|k| {
        let kl = k.to_ascii_lowercase();
        let edits = if k.len() <= 8 { 1 } else { 3.min(k.len() / 4) };
        kl == lower || (k.len() >= 5 && levenshtein(&lower, &kl) <= edits)
    })
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let v = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
            cur.push(v);
        }
        prev = cur;
    }
    prev[b.len()]
}

impl fmt::Display for Redirect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Redirect::None => f.write_str("none"),
            Redirect::Prepend { domain } => write!(f, "prefix every image with {domain}"),
            Redirect::Mapping { rules } => write!(f, "{} mapping rule(s)", rules.len()),
        }
    }
}

/// The document as written, before checks. Sub-structures refuse unknown fields.
mod raw {
    use super::*;

    #[derive(Deserialize, Default)]
    pub struct Document {
        pub stylus: Option<Stylus>,
        // Caught to report the common indentation mistake.
        #[serde(rename = "externalRegistries")]
        pub external_registries: Option<serde::de::IgnoredAny>,
        #[serde(rename = "registryCredentials")]
        pub registry_credentials: Option<serde::de::IgnoredAny>,
        /// Every other key (a cloud-config has many), checked for misspellings of ours.
        #[serde(flatten)]
        pub other: BTreeMap<String, serde::de::IgnoredAny>,
    }

    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    pub struct Stylus {
        pub registry_credentials: Option<RegistryCredentials>,
        pub external_registries: Option<ExternalRegistries>,
        pub image_redirect_webhook: Option<ImageRedirectWebhook>,
        /// The rest of `stylus` (site, users, ...), checked for misspellings of ours.
        #[serde(flatten)]
        pub other: BTreeMap<String, serde::de::IgnoredAny>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct RegistryCredentials {
        pub domain: Option<String>,
        pub username: Option<String>,
        pub password: Option<Secret>,
        pub encoded_password: Option<bool>,
        pub insecure: Option<bool>,
        /// Not a Palette field here: caught to say where a CA goes.
        pub certificates: Option<serde::de::IgnoredAny>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct ExternalRegistries {
        pub registries: Option<Vec<ExternalRegistry>>,
        pub registry_mapping_rules: Option<BTreeMap<String, String>>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct ExternalRegistry {
        pub domain: Option<String>,
        pub username: Option<String>,
        pub password: Option<Secret>,
        pub encoded_password: Option<bool>,
        pub insecure: Option<bool>,
        pub repository_name: Option<String>,
        pub certificates: Option<Certificates>,
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    pub enum Certificates {
        One(String),
        Many(Vec<String>),
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ImageRedirectWebhook {
        pub enable: Option<bool>,
        pub port: Option<u16>,
    }
}

#[cfg(test)]
mod tests;
