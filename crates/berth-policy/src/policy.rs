//! The policy: requirements per registry scope, read from Berth's own YAML format or from
//! containers' `policy.json` (`docker` transport), and the scope an image falls under.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::PolicyError;
use crate::identity::SignedIdentity;
use crate::keys::PublicKey;

/// What a scope requires of an image.
#[derive(Debug, Clone)]
pub enum Requirement {
    /// `insecureAcceptAnything` / `require: accept`.
    Accept,
    /// `reject` / `require: reject`.
    Reject,
    /// `sigstoreSigned` / `require: signed`.
    Signed(SignedBy),
}

/// A signature by one of `keys`, naming an identity `identity` accepts.
#[derive(Debug, Clone)]
pub struct SignedBy {
    /// Any one of them (empty for keyless: `fulcio` or `pki` in policy.json).
    pub keys: Vec<PublicKey>,
    pub identity: SignedIdentity,
    /// Keyless trust (Fulcio certificates, a PKI) that Berth cannot check offline here.
    pub keyless: Option<String>,
}

/// A policy: the requirements of the most specific matching scope apply, all of them.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The file it was read from (for messages).
    pub file: String,
    default: Vec<Requirement>,
    scopes: BTreeMap<String, Vec<Requirement>>,
}

/// Reads a key file a policy names (`keyPath`, `keys:`), relative paths as the caller decides.
pub type ReadKey<'a> = dyn FnMut(&str) -> Result<Vec<u8>, String> + 'a;

impl Policy {
    /// A policy that requires `requirement` of every image.
    pub fn uniform(file: &str, requirement: Requirement) -> Policy {
        Policy {
            file: file.to_string(),
            default: vec![requirement],
            scopes: BTreeMap::new(),
        }
    }

    /// Parses `text` of `file`: containers' `policy.json` when it has `transports`, else
    /// Berth's YAML format. Key files are read through `read_key`.
    pub fn parse(
        file: &str,
        text: &str,
        read_key: &mut ReadKey<'_>,
    ) -> Result<Policy, PolicyError> {
        let err = |field: &str, message: String| PolicyError::Invalid {
            file: file.to_string(),
            field: field.to_string(),
            message,
        };
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(json_err) => match serde_saphyr::from_str::<Value>(text) {
                Ok(v) => v,
                Err(_) if text.trim_start().starts_with('{') => {
                    return Err(err("", format!("not valid JSON: {json_err}")));
                }
                Err(e) => return Err(err("", format!("not valid YAML: {e}"))),
            },
        };
        let Value::Object(top) = &value else {
            return Err(err("", "expected a mapping at the top".into()));
        };
        let mut p = Policy {
            file: file.to_string(),
            default: Vec::new(),
            scopes: BTreeMap::new(),
        };
        let mut ctx = Ctx {
            err: &err,
            read_key,
        };
        if top.contains_key("transports") {
            known(top, &["default", "transports"], "", &ctx)?;
            let default = top.get("default").ok_or_else(|| {
                err(
                    "default",
                    "policy.json needs `default` (e.g. [{\"type\": \"reject\"}])".into(),
                )
            })?;
            p.default = ctx.json_requirements("default", default)?;
            let transports = top["transports"]
                .as_object()
                .ok_or_else(|| err("transports", "expected a mapping of transport names".into()))?;
            if let Some(docker) = transports.get("docker") {
                let scopes = docker.as_object().ok_or_else(|| {
                    err("transports.docker", "expected a mapping of scopes".into())
                })?;
                for (scope, reqs) in scopes {
                    let field = format!("transports.docker.{scope:?}");
                    check_scope(scope).map_err(|m| err(&field, m))?;
                    let r = ctx.json_requirements(&field, reqs)?;
                    p.scopes.insert(scope.clone(), r);
                }
            }
        } else {
            known(top, &["default", "images"], "", &ctx)?;
            let default = match top.get("default") {
                None => vec![Requirement::Reject],
                Some(d) => vec![ctx.berth_rule("default", d, true)?],
            };
            p.default = default;
            if let Some(images) = top.get("images") {
                let list = images.as_array().ok_or_else(|| {
                    err(
                        "images",
                        "expected a list of {scope, require, keys, identity}".into(),
                    )
                })?;
                for (i, rule) in list.iter().enumerate() {
                    let field = format!("images[{i}]");
                    let scope = rule.get("scope").and_then(Value::as_str).ok_or_else(|| {
                        err(
                            &field,
                            "needs `scope` (a registry, repository or namespace)".into(),
                        )
                    })?;
                    check_scope(scope).map_err(|m| err(&format!("{field}.scope"), m))?;
                    let r = ctx.berth_rule(&field, rule, false)?;
                    if p.scopes.insert(scope.to_string(), vec![r]).is_some() {
                        return Err(err(&field, format!("scope {scope} appears twice")));
                    }
                }
            }
        }
        Ok(p)
    }

    /// The scope that applies to `image` (a normalized `host/repo[:tag|@digest]`) and its
    /// requirements: the exact reference, then the repository, then each enclosing
    /// namespace up to the host, then `*.domain` wildcards, then the transport's `""`, then
    /// `default` — the most specific wins, as containers/image decides.
    pub fn requirements(&self, image: &str) -> (&str, &[Requirement]) {
        for candidate in candidates(image) {
            if let Some((k, v)) = self.scopes.get_key_value(&candidate) {
                return (k.as_str(), v);
            }
        }
        ("default", &self.default)
    }
}

/// The scopes that can apply to `image`, most specific first.
fn candidates(image: &str) -> Vec<String> {
    let mut out = vec![image.to_string()];
    let name = image.split('@').next().unwrap_or(image);
    let name = match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => &name[..i],
        _ => name,
    };
    let mut n = name;
    loop {
        out.push(n.to_string());
        match n.rfind('/') {
            Some(i) => n = &n[..i],
            None => break,
        }
    }
    let host = name.split('/').next().unwrap_or(name);
    let host = host.split(':').next().unwrap_or(host);
    let mut h = host;
    while let Some(i) = h.find('.') {
        h = &h[i + 1..];
        out.push(format!("*.{h}"));
    }
    out.push(String::new());
    out
}

fn check_scope(scope: &str) -> Result<(), String> {
    if scope.is_empty() {
        return Ok(());
    }
    if let Some(rest) = scope.strip_prefix("*.") {
        if rest.is_empty() || rest.contains(['/', '*', ':', '@']) {
            return Err(format!("wildcard scope {scope:?} must be `*.domain` alone"));
        }
        return Ok(());
    }
    if scope.contains('*') || scope.ends_with('/') || scope.starts_with("http") {
        return Err(format!(
            "scope {scope:?} must be a host, host/namespace, repository or repository:tag (no scheme, no trailing /)"
        ));
    }
    Ok(())
}

struct Ctx<'a, 'b> {
    err: &'a dyn Fn(&str, String) -> PolicyError,
    read_key: &'a mut ReadKey<'b>,
}

fn known(
    map: &serde_json::Map<String, Value>,
    fields: &[&str],
    at: &str,
    ctx: &Ctx<'_, '_>,
) -> Result<(), PolicyError> {
    for k in map.keys() {
        if !fields.contains(&k.as_str()) {
            let field = if at.is_empty() {
                k.clone()
            } else {
                format!("{at}.{k}")
            };
            return Err((ctx.err)(
                &field,
                format!("unknown field; expected one of {}", fields.join(", ")),
            ));
        }
    }
    Ok(())
}

impl Ctx<'_, '_> {
    fn key(&mut self, field: &str, origin: &str, pem: &[u8]) -> Result<PublicKey, PolicyError> {
        PublicKey::from_pem(origin, pem).map_err(|m| (self.err)(field, format!("{origin}: {m}")))
    }

    fn key_file(&mut self, field: &str, path: &str) -> Result<PublicKey, PolicyError> {
        let bytes = (self.read_key)(path).map_err(|m| (self.err)(field, m))?;
        self.key(field, path, &bytes)
    }

    fn json_requirements(
        &mut self,
        field: &str,
        v: &Value,
    ) -> Result<Vec<Requirement>, PolicyError> {
        let list = v
            .as_array()
            .filter(|l| !l.is_empty())
            .ok_or_else(|| (self.err)(field, "expected a non-empty list of requirements".into()))?;
        list.iter()
            .enumerate()
            .map(|(i, r)| self.json_requirement(&format!("{field}[{i}]"), r))
            .collect()
    }

    fn json_requirement(&mut self, field: &str, v: &Value) -> Result<Requirement, PolicyError> {
        let err = self.err;
        let m = v
            .as_object()
            .ok_or_else(|| err(field, "expected {\"type\": ...}".into()))?;
        let ty = m.get("type").and_then(Value::as_str).unwrap_or_default();
        match ty {
            "insecureAcceptAnything" => {
                known(m, &["type"], field, self)?;
                Ok(Requirement::Accept)
            }
            "reject" => {
                known(m, &["type"], field, self)?;
                Ok(Requirement::Reject)
            }
            "sigstoreSigned" => {
                let fields = [
                    "type",
                    "keyPath",
                    "keyPaths",
                    "keyData",
                    "keyDatas",
                    "fulcio",
                    "pki",
                    "rekorPublicKeyPath",
                    "rekorPublicKeyPaths",
                    "rekorPublicKeyData",
                    "rekorPublicKeyDatas",
                    "signedIdentity",
                ];
                known(m, &fields, field, self)?;
                let mut keys = Vec::new();
                let str_list = |k: &str| -> Result<Vec<String>, PolicyError> {
                    match m.get(k) {
                        None => Ok(Vec::new()),
                        Some(Value::String(s)) if !k.ends_with('s') => Ok(vec![s.clone()]),
                        Some(Value::Array(a)) if k.ends_with('s') => a
                            .iter()
                            .map(|x| x.as_str().map(str::to_string))
                            .collect::<Option<Vec<_>>>()
                            .ok_or_else(|| err(&format!("{field}.{k}"), "expected strings".into())),
                        Some(_) => Err(err(&format!("{field}.{k}"), "wrong type".into())),
                    }
                };
                for path in str_list("keyPath")?
                    .into_iter()
                    .chain(str_list("keyPaths")?)
                {
                    keys.push(self.key_file(&format!("{field}.keyPath"), &path)?);
                }
                for data in str_list("keyData")?
                    .into_iter()
                    .chain(str_list("keyDatas")?)
                {
                    use base64::Engine as _;
                    let pem = base64::engine::general_purpose::STANDARD
                        .decode(data.trim())
                        .map_err(|e| {
                            err(&format!("{field}.keyData"), format!("not base64: {e}"))
                        })?;
                    keys.push(self.key(&format!("{field}.keyData"), "keyData", &pem)?);
                }
                let keyless = ["fulcio", "pki"]
                    .iter()
                    .find(|k| m.contains_key(**k))
                    .map(|k| format!("`{k}` (keyless) trust"));
                if keys.is_empty() && keyless.is_none() {
                    return Err(err(
                        field,
                        "sigstoreSigned needs keyPath, keyPaths, keyData or keyDatas (or fulcio)"
                            .into(),
                    ));
                }
                let identity = match m.get("signedIdentity") {
                    None => SignedIdentity::MatchRepoDigestOrExact,
                    Some(v) => json_identity(&format!("{field}.signedIdentity"), v, err)?,
                };
                Ok(Requirement::Signed(SignedBy {
                    keys,
                    identity,
                    keyless,
                }))
            }
            "signedBy" => Err(err(
                field,
                "`signedBy` (GPG simple signing) is not supported; use sigstoreSigned".into(),
            )),
            other => Err(err(
                &format!("{field}.type"),
                format!(
                    "unknown requirement type {other:?}; expected insecureAcceptAnything, reject or sigstoreSigned"
                ),
            )),
        }
    }

    /// A rule of Berth's format: `require: accept|reject|signed`, `keys`, `identity`.
    fn berth_rule(
        &mut self,
        field: &str,
        v: &Value,
        default: bool,
    ) -> Result<Requirement, PolicyError> {
        let err = self.err;
        let (m, require) = match v {
            Value::String(s) if default => (serde_json::Map::new(), s.clone()),
            Value::Object(m) => {
                let allowed: &[&str] = if default {
                    &["require", "keys", "identity"]
                } else {
                    &["scope", "require", "keys", "identity"]
                };
                known(m, allowed, field, self)?;
                let r = m.get("require").and_then(Value::as_str).ok_or_else(|| {
                    err(
                        field,
                        "needs `require: accept`, `reject` or `signed`".into(),
                    )
                })?;
                (m.clone(), r.to_string())
            }
            _ => {
                return Err(err(
                    field,
                    "expected accept, reject, or {require: signed, keys: [...]}".into(),
                ));
            }
        };
        match require.as_str() {
            "accept" | "reject" if m.contains_key("keys") => Err(err(
                &format!("{field}.keys"),
                format!("keys mean nothing with require: {require}"),
            )),
            "accept" => Ok(Requirement::Accept),
            "reject" => Ok(Requirement::Reject),
            "signed" => {
                let keys_v = m
                    .get("keys")
                    .and_then(Value::as_array)
                    .filter(|a| !a.is_empty());
                let keys_v = keys_v.ok_or_else(|| {
                    err(
                        &format!("{field}.keys"),
                        "require: signed needs `keys:` (public key files, PEM)".into(),
                    )
                })?;
                let mut keys = Vec::new();
                for (i, k) in keys_v.iter().enumerate() {
                    let f = format!("{field}.keys[{i}]");
                    let s = k
                        .as_str()
                        .ok_or_else(|| err(&f, "expected a file name or PEM text".into()))?;
                    keys.push(match s.contains("-----BEGIN") {
                        true => self.key(&f, &f, s.as_bytes())?,
                        false => self.key_file(&f, s)?,
                    });
                }
                let identity = match m.get("identity") {
                    None => SignedIdentity::MatchRepository,
                    Some(v) => json_identity(&format!("{field}.identity"), v, err)?,
                };
                Ok(Requirement::Signed(SignedBy {
                    keys,
                    identity,
                    keyless: None,
                }))
            }
            other => Err(err(
                &format!("{field}.require"),
                format!("{other:?}: expected accept, reject or signed"),
            )),
        }
    }
}

/// `signedIdentity` as policy.json writes it (`{"type": ...}`), or Berth's shorter forms (a
/// word, or `{exactRepository: R}`).
fn json_identity(
    field: &str,
    v: &Value,
    err: &dyn Fn(&str, String) -> PolicyError,
) -> Result<SignedIdentity, PolicyError> {
    let s = |m: &serde_json::Map<String, Value>, k: &str| {
        m.get(k)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| err(&format!("{field}.{k}"), "expected a string".into()))
    };
    let id = match v {
        Value::String(w) => word(w).ok_or_else(|| err(field, unknown_identity(w)))?,
        Value::Object(m) if m.contains_key("type") => {
            let ty = s(m, "type")?;
            match ty.as_str() {
                "exactReference" => SignedIdentity::ExactReference(s(m, "dockerReference")?),
                "exactRepository" => SignedIdentity::ExactRepository(s(m, "dockerRepository")?),
                "remapIdentity" => SignedIdentity::RemapIdentity {
                    prefix: s(m, "prefix")?,
                    signed_prefix: s(m, "signedPrefix")?,
                },
                w => word(w).ok_or_else(|| err(field, unknown_identity(w)))?,
            }
        }
        Value::Object(m) if m.len() == 1 => {
            let (k, inner) = m.iter().next().unwrap_or_else(|| unreachable!());
            match (k.as_str(), inner) {
                ("exactReference", Value::String(r)) => SignedIdentity::ExactReference(r.clone()),
                ("exactRepository", Value::String(r)) => SignedIdentity::ExactRepository(r.clone()),
                ("remapIdentity", Value::Object(r)) => SignedIdentity::RemapIdentity {
                    prefix: s(r, "prefix")?,
                    signed_prefix: s(r, "signedPrefix")?,
                },
                _ => return Err(err(field, unknown_identity(k))),
            }
        }
        _ => return Err(err(field, unknown_identity("?"))),
    };
    id.validate().map_err(|m| err(field, m))?;
    Ok(id)
}

fn word(w: &str) -> Option<SignedIdentity> {
    Some(match w {
        "matchRepoDigestOrExact" => SignedIdentity::MatchRepoDigestOrExact,
        "matchRepository" => SignedIdentity::MatchRepository,
        "matchExact" => SignedIdentity::MatchExact,
        _ => return None,
    })
}

fn unknown_identity(w: &str) -> String {
    format!(
        "{w:?} is not a signedIdentity; expected matchRepoDigestOrExact, matchRepository, matchExact, exactReference, exactRepository or remapIdentity"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_specific_scope_first() {
        let c = candidates("registry.example.com:5000/team/app:1.0");
        assert_eq!(
            c,
            vec![
                "registry.example.com:5000/team/app:1.0",
                "registry.example.com:5000/team/app",
                "registry.example.com:5000/team",
                "registry.example.com:5000",
                "*.example.com",
                "*.com",
                "",
            ]
        );
    }
}
