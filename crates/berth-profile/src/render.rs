//! Palette macro rendering: `{{.spectro.pack.<layer>.options.<key>}}`, `{{.spectro.system.<path>}}`
//! and `{{.spectro.var.<name>}}`. Anything else between `{{ }}` (Helm templates) is left alone.

use std::collections::HashMap;

use crate::error::{Embedded, ProfileError};
use crate::profile::{Layer, Profile, Values};
use crate::value::Value;

/// Longest text a single rendering may produce (guards against macro "billion laughs").
const MAX_RENDERED: usize = 8 << 20;
/// Deepest chain of macros referring to macros.
const MAX_DEPTH: usize = 64;
const PLACEHOLDER: &str = "__berth_macro_";

/// Looks `key` up in a mapping; a literal key (`system.uri`) wins over nesting
/// (`system: {uri: ...}`), then each split at a dot is tried from the left.
pub(crate) fn lookup<'v>(map: &'v Value, key: &str) -> Option<&'v Value> {
    let Value::Map(entries) = map else {
        return None;
    };
    if let Some((_, v)) = entries.iter().rev().find(|(k, _)| k == key) {
        return Some(v);
    }
    for (i, _) in key.match_indices('.') {
        let (head, tail) = (&key[..i], &key[i + 1..]);
        if let Some(sub) = map.get(head)
            && let Some(v) = lookup(sub, tail)
        {
            return Some(v);
        }
    }
    None
}

/// Finds the `{{ ... }}` spans of `text`: `(start, end, trimmed expression)`.
fn template_spans(text: &str) -> Vec<(usize, usize, &str)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(off) = text[pos..].find("{{") {
        let start = pos + off;
        let Some(len) = text[start + 2..].find("}}") else {
            break;
        };
        let end = start + 2 + len + 2;
        let expr = text[start + 2..end - 2]
            .trim()
            .trim_start_matches('-')
            .trim_end_matches('-')
            .trim();
        out.push((start, end, expr));
        pos = end;
    }
    out
}

fn is_spectro(expr: &str) -> bool {
    expr.starts_with(".spectro.")
}

/// Parses a values text without rendering it: each `.spectro.` macro is swapped for a plain
/// placeholder before parsing and swapped back in every string afterwards, so YAML that is only
/// valid once rendered (`image: {{.spectro.var.x}}`) still parses.
/// A layer's values as a tree, macros unrendered (`Null` without values); a syntax error
/// points into `profile`'s file.
pub(crate) fn unrendered_values(profile: &Profile, l: &Layer) -> Result<Value, ProfileError> {
    let text = match &l.values {
        None => return Ok(Value::Null),
        Some(Values::Mapping(m)) => return Ok(m.clone()),
        Some(Values::Text(t)) => t,
    };
    parse_unrendered(text).map_err(|e| {
        let what = "the layer's values";
        Embedded::in_values(profile, l, text, "values", what).syntax(text, &e)
    })
}

pub(crate) fn parse_unrendered(text: &str) -> Result<Value, serde_saphyr::Error> {
    let mut macros: Vec<&str> = Vec::new();
    let mut swapped = String::with_capacity(text.len());
    let mut last = 0;
    for (start, end, expr) in template_spans(text) {
        if is_spectro(expr) {
            swapped.push_str(&text[last..start]);
            swapped.push_str(&format!("{PLACEHOLDER}{}__", macros.len()));
            macros.push(&text[start..end]);
            last = end;
        }
    }
    swapped.push_str(&text[last..]);
    let mut value = parse_yaml(&swapped)?;
    if !macros.is_empty() {
        let _ = value.try_map_strings::<()>(&mut |s| Ok(restore(s, &macros)));
    }
    Ok(value)
}

fn restore(s: &str, macros: &[&str]) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(PLACEHOLDER) {
        out.push_str(&rest[..i]);
        let after = &rest[i + PLACEHOLDER.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        match (
            after[..digits].parse::<usize>(),
            after[digits..].starts_with("__"),
        ) {
            (Ok(n), true) if n < macros.len() => {
                out.push_str(macros[n]);
                rest = &after[digits + 2..];
            }
            _ => {
                out.push_str(PLACEHOLDER);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Parses one YAML document (empty text is null).
pub(crate) fn parse_yaml(text: &str) -> Result<Value, serde_saphyr::Error> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_saphyr::from_str::<Value>(text)
}

#[derive(Clone, PartialEq, Eq, Hash, Debug)]
enum MacroKey {
    /// (profile, layer, key)
    Option(usize, usize, String),
    System(String),
    /// (profile, name)
    Var(usize, String),
}

/// Where a text being rendered comes from, for messages.
pub(crate) struct Site<'s> {
    pub profile: usize,
    pub layer: &'s str,
    pub place: &'s str,
}

pub(crate) struct Renderer<'a> {
    profiles: &'a [Profile],
    layer_index: HashMap<&'a str, (usize, usize)>,
    options: Vec<Vec<Value>>,
    system: Value,
    k8s_version: Option<String>,
    cache: HashMap<MacroKey, String>,
    stack: Vec<MacroKey>,
}

impl<'a> Renderer<'a> {
    pub(crate) fn new(profiles: &'a [Profile]) -> Result<Renderer<'a>, ProfileError> {
        let mut layer_index: HashMap<&str, (usize, usize)> = HashMap::new();
        let mut options = Vec::new();
        let mut system_entries: Vec<(String, Value)> = Vec::new();
        let mut k8s_version = None;
        for (pi, p) in profiles.iter().enumerate() {
            let mut opts = Vec::new();
            for (li, l) in p.layers.iter().enumerate() {
                if let Some((opi, _)) = layer_index.insert(&l.name, (pi, li)) {
                    return Err(ProfileError::Invalid {
                        file: p.file.clone(),
                        place: format!("layer {}", l.name),
                        message: format!(
                            "a layer of this name is also in {}; layer names must be unique across the profiles of a cluster",
                            profiles[opi].file
                        ),
                    });
                }
                let tree = unrendered_values(p, l)?;
                opts.push(tree.get("options").cloned().unwrap_or(Value::Null));
                if l.layer_type == crate::LayerType::K8s && k8s_version.is_none() {
                    k8s_version = l.version.clone();
                }
            }
            options.push(opts);
            if let Value::Map(entries) = &p.system {
                for (k, v) in entries {
                    if !system_entries.iter().any(|(x, _)| x == k) {
                        system_entries.push((k.clone(), v.clone()));
                    }
                }
            }
        }
        Ok(Renderer {
            profiles,
            layer_index,
            options,
            system: Value::Map(system_entries),
            k8s_version,
            cache: HashMap::new(),
            stack: Vec::new(),
        })
    }

    /// Renders the macros of `text`.
    pub(crate) fn render(&mut self, text: &str, site: &Site) -> Result<String, ProfileError> {
        self.stack.clear();
        self.expand(text, site.profile)
            .map_err(|message| ProfileError::Macro {
                file: self.profiles[site.profile].file.clone(),
                layer: site.layer.to_string(),
                place: site.place.to_string(),
                message,
            })
    }

    /// Renders every string (keys included) of a tree.
    pub(crate) fn render_tree(
        &mut self,
        tree: &mut Value,
        site: &Site,
    ) -> Result<(), ProfileError> {
        tree.try_map_strings(&mut |s| {
            if s.contains("{{") {
                self.render(s, site)
            } else {
                Ok(s.to_string())
            }
        })
    }

    fn expand(&mut self, text: &str, pi: usize) -> Result<String, String> {
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for (start, end, expr) in template_spans(text) {
            if !is_spectro(expr) {
                continue;
            }
            out.push_str(&text[last..start]);
            let whole = &text[start..end];
            let key = self.parse_macro(expr, whole, pi)?;
            let value = self.resolve(key, whole)?;
            out.push_str(&value);
            last = end;
            if out.len() > MAX_RENDERED {
                return Err(format!(
                    "rendering macros produced more than {MAX_RENDERED} bytes; check for macros that repeat each other"
                ));
            }
        }
        out.push_str(&text[last..]);
        Ok(out)
    }

    fn parse_macro(&self, expr: &str, whole: &str, pi: usize) -> Result<MacroKey, String> {
        const FORMS: &str = "Berth renders `{{.spectro.pack.<layer>.options.<key>}}`, `{{.spectro.system.<path>}}` and `{{.spectro.var.<name>}}`";
        if expr.chars().any(char::is_whitespace) {
            return Err(format!(
                "unsupported macro `{whole}`: template functions and pipelines are not supported; {FORMS}"
            ));
        }
        if let Some(rest) = expr.strip_prefix(".spectro.pack.") {
            let Some((layer, key)) = rest.split_once(".options.") else {
                return Err(format!("unknown macro `{whole}`: {FORMS}"));
            };
            let Some(&(p, l)) = self.layer_index.get(layer) else {
                return Err(format!(
                    "unknown macro `{whole}`: no layer named `{layer}` in the profiles (key `{key}`); check the layer name"
                ));
            };
            return Ok(MacroKey::Option(p, l, key.to_string()));
        }
        if let Some(path) = expr.strip_prefix(".spectro.system.") {
            return Ok(MacroKey::System(path.to_string()));
        }
        if let Some(name) = expr.strip_prefix(".spectro.var.") {
            // The layer's own profile first, then the other profiles in order.
            let order = std::iter::once(pi).chain((0..self.profiles.len()).filter(|&i| i != pi));
            for i in order {
                if self.profiles[i].variables.iter().any(|(n, _)| n == name) {
                    return Ok(MacroKey::Var(i, name.to_string()));
                }
            }
            // In a Palette export an undefined variable renders empty, as in Palette
            // (an image reference it leaves empty is refused where images are read).
            if self.profiles[pi].layers.iter().any(|l| l.pack.is_some()) {
                return Ok(MacroKey::Var(pi, name.to_string()));
            }
            return Err(format!(
                "unknown macro `{whole}`: variable `{name}` is not defined; add `{name}: <value>` under `variables:` in {}",
                self.profiles[pi].file
            ));
        }
        Err(format!("unknown macro `{whole}`: {FORMS}"))
    }

    fn describe(&self, key: &MacroKey) -> String {
        match key {
            MacroKey::Option(p, l, k) => {
                format!("layer {} option `{k}`", self.profiles[*p].layers[*l].name)
            }
            MacroKey::System(path) => format!("system `{path}`"),
            MacroKey::Var(_, name) => format!("variable `{name}`"),
        }
    }

    fn resolve(&mut self, key: MacroKey, whole: &str) -> Result<String, String> {
        if let Some(v) = self.cache.get(&key) {
            return Ok(v.clone());
        }
        if let Some(pos) = self.stack.iter().position(|k| *k == key) {
            let chain: Vec<String> = self.stack[pos..]
                .iter()
                .chain(std::iter::once(&key))
                .map(|k| self.describe(k))
                .collect();
            return Err(format!(
                "macro cycle: {}; make one of these values literal",
                chain.join(" → ")
            ));
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(format!(
                "macros nest deeper than {MAX_DEPTH} levels at `{whole}`; simplify them"
            ));
        }
        let (raw, pi) = match &key {
            MacroKey::Option(p, l, k) => {
                let layer = &self.profiles[*p].layers[*l].name;
                let Some(v) = lookup(&self.options[*p][*l], k) else {
                    return Err(format!(
                        "unknown macro `{whole}`: layer {layer} has no option `{k}`; add `{k}: <value>` under `options:` in that layer's values"
                    ));
                };
                let Some(text) = v.scalar_text() else {
                    return Err(format!(
                        "macro `{whole}`: option `{k}` of layer {layer} is {}, not a scalar; point the macro at a single value",
                        v.kind()
                    ));
                };
                (text, *p)
            }
            MacroKey::System(path) => match lookup(&self.system, path) {
                Some(v) => match v.scalar_text() {
                    Some(t) => (t, 0),
                    None => {
                        return Err(format!(
                            "macro `{whole}`: system `{path}` is {}, not a scalar; point the macro at a single value",
                            v.kind()
                        ));
                    }
                },
                None if path == "kubernetes.version" => match &self.k8s_version {
                    Some(v) => (v.clone(), 0),
                    None => {
                        return Err(format!(
                            "unknown macro `{whole}`: system `kubernetes.version` is not set and no k8s layer has a `version`; set `system.kubernetes.version` or the k8s layer's version"
                        ));
                    }
                },
                None => {
                    return Err(format!(
                        "unknown macro `{whole}`: system `{path}` is not set; add it under `system:` in the profile"
                    ));
                }
            },
            MacroKey::Var(p, name) => {
                let v = self.profiles[*p]
                    .variables
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                (v, *p)
            }
        };
        self.stack.push(key.clone());
        let result = self.expand(&raw, pi);
        self.stack.pop();
        let value = result?;
        self.cache.insert(key, value.clone());
        Ok(value)
    }
}
