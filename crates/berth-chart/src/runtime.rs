//! Images named outside `image:` fields: the complete references in container arguments
//! and environment variables, ConfigMap data and custom resources, which operators pass to
//! the controller that starts those Pods later (Longhorn's engine and CSI sidecars).
//!
//! A string is an image only when it is, as a whole (after trimming and one pair of quotes),
//! or as the value of a `--flag=REF` argument, a complete reference: a registry host (with a
//! dot or a port, or `localhost`), a repository, and a tag or a digest, that
//! `berth-reference` parses. URLs with a scheme, file paths, `$(VAR)` expansions and text
//! with spaces never are.

use crate::images::Provenance;
use crate::value::Value;

/// A complete reference found in a string: the reference and, for `--flag=REF`, the flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found<'a> {
    pub reference: &'a str,
    pub flag: Option<&'a str>,
}

/// The text inside one pair of matching quotes (`"REF"`, `'REF'`), trimmed.
fn unquote(s: &str) -> &str {
    let s = s.trim();
    for q in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return s[1..s.len() - 1].trim();
        }
    }
    s
}

/// Whether `r` is a complete image reference with an explicit registry host.
fn complete(r: &str) -> bool {
    if r.is_empty()
        || r.len() > 512
        || r.chars().any(char::is_whitespace)
        || r.contains("://")
        || r.starts_with(['/', '.', '~', '$', '-'])
    {
        return false;
    }
    let Some((host, rest)) = r.split_once('/') else {
        return false;
    };
    if !(host.contains('.') || host.contains(':') || host == "localhost") {
        return false;
    }
    let last = rest.split('@').next().unwrap_or_default();
    let tagged = last.rsplit('/').next().is_some_and(|l| l.contains(':'));
    if !(tagged || r.contains('@')) {
        return false;
    }
    berth_reference::Reference::parse(r).is_ok()
}

/// The complete image reference a string names, alone or as the value of `--flag=REF`
/// (`-flag=REF`), each optionally quoted; `None` for anything else.
pub fn reference_in(value: &str) -> Option<Found<'_>> {
    let v = unquote(value);
    if v.starts_with('-') {
        let (flag, val) = v.split_once('=')?;
        let name = flag.trim_start_matches('-');
        let dashes = flag.len() - name.len();
        if dashes > 2
            || name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return None;
        }
        let r = unquote(val);
        return complete(r).then_some(Found {
            reference: r,
            flag: Some(flag),
        });
    }
    complete(v).then_some(Found {
        reference: v,
        flag: None,
    })
}

/// What a finder reports: the reference, its provenance, the field path and what names it
/// (the flag or variable).
pub(crate) type Push<'p> = dyn FnMut(String, Provenance, String, Option<String>) + 'p;

/// A container's `args`, `command` and `env[].value`. An argument that follows a flag
/// without `=` (`--engine-image`, `REF`) is attributed to that flag.
pub(crate) fn container(c: &Value, here: &str, push: &mut Push) {
    for list in ["command", "args"] {
        let Some(Value::List(items)) = c.get(list) else {
            continue;
        };
        for (n, item) in items.iter().enumerate() {
            let Some(s) = item.as_str() else { continue };
            let Some(f) = reference_in(s) else { continue };
            let named = f.flag.map(str::to_string).or_else(|| {
                let prev = items.get(n.checked_sub(1)?)?;
                let p = prev.as_str()?.trim();
                (p.starts_with('-') && !p.contains('=')).then(|| p.to_string())
            });
            push(
                f.reference.to_string(),
                Provenance::RenderedArg,
                format!("{here}.{list}[{n}]"),
                named,
            );
        }
    }
    if let Some(Value::List(env)) = c.get("env") {
        for (n, e) in env.iter().enumerate() {
            let Some(Value::Str(v)) = e.get("value") else {
                continue;
            };
            let Some(f) = reference_in(&v) else { continue };
            let name = e.get("name").and_then(|n| n.as_str().map(str::to_string));
            push(
                f.reference.to_string(),
                Provenance::RenderedEnv,
                format!("{here}.env[{n}].value"),
                name,
            );
        }
    }
}

/// `.key`, or `["key"]` for a key that is not a plain identifier.
fn key_path(key: &str) -> String {
    if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        format!(".{key}")
    } else {
        format!("[{key:?}]")
    }
}

/// Whether an `apiVersion` is a custom resource's: a group with a dot that is not a
/// Kubernetes group (`*.k8s.io`). Built-in objects other than workloads and ConfigMaps
/// (Services, Secrets, RBAC, webhooks, ...) name no images.
fn is_custom(api_version: &str) -> bool {
    match api_version.rsplit_once('/') {
        Some((group, _)) => group.contains('.') && !group.ends_with(".k8s.io"),
        None => false,
    }
}

fn walk(v: &Value, path: String, push: &mut Push) {
    match v {
        Value::Str(s) => {
            if let Some(f) = reference_in(s) {
                push(
                    f.reference.to_string(),
                    Provenance::RenderedResource,
                    path,
                    f.flag.map(str::to_string),
                );
            }
        }
        Value::List(l) => {
            for (n, x) in l.iter().enumerate() {
                walk(x, format!("{path}[{n}]"), push);
            }
        }
        Value::Map(m) => {
            for (k, x) in m.borrow().iter() {
                walk(x, format!("{path}{}", key_path(k)), push);
            }
        }
        _ => {}
    }
}

/// An object that is no workload: a ConfigMap's `data` values, every field of a custom
/// resource but `apiVersion`, `kind`, `metadata` and `status`.
pub(crate) fn object(doc: &Value, push: &mut Push) {
    let s = |k: &str| doc.get(k).and_then(|v| v.as_str().map(str::to_string));
    let (kind, api) = (
        s("kind").unwrap_or_default(),
        s("apiVersion").unwrap_or_default(),
    );
    if kind == "ConfigMap" && api == "v1" {
        if let Some(Value::Map(data)) = doc.get("data") {
            for (k, v) in data.borrow().iter() {
                let Some(f) = v.as_str().and_then(reference_in) else {
                    continue;
                };
                push(
                    f.reference.to_string(),
                    Provenance::RenderedConfig,
                    format!(".data{}", key_path(k)),
                    Some(k.clone()),
                );
            }
        }
    } else if is_custom(&api)
        && let Value::Map(m) = doc
    {
        for (k, v) in m.borrow().iter() {
            if !matches!(k.as_str(), "apiVersion" | "kind" | "metadata" | "status") {
                walk(v, key_path(k), push);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Option<(&str, Option<&str>)> {
        reference_in(s).map(|f| (f.reference, f.flag))
    }

    #[test]
    fn complete_references_alone_or_as_flag_values() {
        assert_eq!(
            r("docker.io/longhornio/longhorn-engine:master-head"),
            Some(("docker.io/longhornio/longhorn-engine:master-head", None))
        );
        assert_eq!(
            r(
                "--prometheus-config-reloader=quay.io/prometheus-operator/prometheus-config-reloader:v0.80.0"
            ),
            Some((
                "quay.io/prometheus-operator/prometheus-config-reloader:v0.80.0",
                Some("--prometheus-config-reloader")
            ))
        );
        assert_eq!(
            r("-acme-http01-solver-image=quay.io/jetstack/cert-manager-acmesolver:v1.17.0"),
            Some((
                "quay.io/jetstack/cert-manager-acmesolver:v1.17.0",
                Some("-acme-http01-solver-image")
            ))
        );
        let d = "registry.k8s.io/pause@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(r(d), Some((d, None)));
        assert_eq!(r("localhost:5000/x:1"), Some(("localhost:5000/x:1", None)));
        assert_eq!(r("localhost/x:1"), Some(("localhost/x:1", None)));
        assert_eq!(
            r("10.0.0.1:5000/a/b:c"),
            Some(("10.0.0.1:5000/a/b:c", None))
        );
    }

    #[test]
    fn quoted_values() {
        assert_eq!(r("\"ghcr.io/a/b:1\""), Some(("ghcr.io/a/b:1", None)));
        assert_eq!(r(" 'ghcr.io/a/b:1' "), Some(("ghcr.io/a/b:1", None)));
        assert_eq!(
            r("--image=\"ghcr.io/a/b:1\""),
            Some(("ghcr.io/a/b:1", Some("--image")))
        );
        assert_eq!(
            r("\"--image='ghcr.io/a/b:1'\""),
            Some(("ghcr.io/a/b:1", Some("--image")))
        );
        // Unbalanced quotes are not a reference.
        assert_eq!(r("\"ghcr.io/a/b:1"), None);
    }

    #[test]
    fn urls_paths_and_partial_references_are_not_images() {
        for s in [
            "https://ghcr.io/a/b:1",
            "oci://registry.example.test/charts/x:1",
            "--endpoint=http://minio.example.test:9000/bucket",
            "/etc/config/file.yaml",
            "./conf.d/x:1",
            "~/x.y/z:1",
            "$(REGISTRY)/x:1",
            "ghcr.io/a/b",                  // no tag or digest
            "nginx:1.27",                   // no registry host
            "library/nginx:1.27",           // no registry host
            "bitnami/nginx:1.29",           // no registry host
            "example.test:443",             // host and port, no repository
            "rel-coredns.default.svc:53",   // a service address
            "ghcr.io/A/b:1",                // upper case
            "ghcr.io/a/b:1 ghcr.io/c/d:2",  // two words
            "sh -c 'echo docker.io/x/y:1'", // a command line
            "--image",                      // a flag without value
            "---image=ghcr.io/a/b:1",       // three dashes
            "--not a flag=ghcr.io/a/b:1",
            "kubernetes.io/os",
            "app.kubernetes.io/name",
            "",
        ] {
            assert_eq!(r(s), None, "{s:?}");
        }
    }

    #[test]
    fn custom_resource_groups() {
        assert!(is_custom("monitoring.coreos.com/v1"));
        assert!(is_custom("cert-manager.io/v1"));
        assert!(!is_custom("v1"));
        assert!(!is_custom("apps/v1"));
        assert!(!is_custom("networking.k8s.io/v1"));
        assert!(!is_custom("apiextensions.k8s.io/v1"));
    }
}
