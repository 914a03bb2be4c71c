//! `berth lint --fix`: remove `AlwaysPullImages` with a targeted textual edit, so comments,
//! order, quoting and indentation stay byte for byte.

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::error::ProfileError;
use crate::extract::{ALWAYS_PULL_MESSAGE, Finding, Severity, always_pull_paths, plugin_arg};
use crate::profile::{LayerType, Profile};
use crate::render::{parse_unrendered, unrendered_values};
use crate::value::Value;

const TOKEN: &str = "AlwaysPullImages";
const KEY: &str = "enable-admission-plugins";
/// Stands for `cluster.config` when it was a string, in the trees compared after the fix.
const CONFIG_STRING: &str = "<cluster.config string>";

/// The result of [`fix_always_pull_images`]: the new file text and the findings it fixed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fix {
    pub text: String,
    pub changes: Vec<Finding>,
}

/// Removes `AlwaysPullImages` from the admission plugin lists of the profile's k8s layers and
/// changes nothing else. The result is re-parsed and compared with the original: every value
/// but those lists must be unchanged, or an error is returned. No `AlwaysPullImages` → the text
/// is returned unchanged.
pub fn fix_always_pull_images(text: &str, file: &str) -> Result<Fix, ProfileError> {
    let profile = Profile::parse(text, file)?;
    let before = comparison_trees(&profile)?;
    let mut changes = Vec::new();
    for (l, tree) in profile.layers.iter().zip(&before) {
        if l.layer_type != LayerType::K8s {
            continue;
        }
        if let Some(config) = config_of(tree) {
            for path in always_pull_paths(config) {
                changes.push(Finding {
                    rule: "always-pull-images".to_string(),
                    severity: Severity::Error,
                    file: file.to_string(),
                    layer: l.name.clone(),
                    path,
                    message: ALWAYS_PULL_MESSAGE.to_string(),
                });
            }
        }
    }
    if changes.is_empty() {
        return Ok(Fix {
            text: text.to_string(),
            changes,
        });
    }
    let fail = |message: String| ProfileError::Fix {
        file: file.to_string(),
        message,
    };
    let ranges = layer_ranges(text, profile.layers.len())
        .ok_or_else(|| fail("could not locate the layers in the text".to_string()))?;
    let is_json = text.trim_start().starts_with('{');
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    for (l, &(start, end)) in profile.layers.iter().zip(&ranges) {
        if l.layer_type != LayerType::K8s {
            continue;
        }
        let mut search = start;
        while let Some(off) = text[search..end].find(KEY) {
            let pos = search + off;
            search = pos + KEY.len();
            if let Some(edit) = edit_at(text, pos, is_json).map_err(&fail)? {
                edits.push(edit);
            }
        }
    }
    if edits.is_empty() {
        let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        return Err(fail(format!(
            "AlwaysPullImages is enabled at {} but no `{KEY}` line could be edited; remove it by hand",
            paths.join(", ")
        )));
    }
    edits.sort_by_key(|e| e.0);
    if edits.windows(2).any(|w| w[0].1 > w[1].0) {
        return Err(fail(
            "two edits overlap; remove AlwaysPullImages by hand".to_string(),
        ));
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (s, e, rep) in &edits {
        out.push_str(&text[last..*s]);
        out.push_str(rep);
        last = *e;
    }
    out.push_str(&text[last..]);
    verify(&profile, &before, &out, file).map_err(fail)?;
    Ok(Fix { text: out, changes })
}

/// Each layer's values as a tree, macros unrendered, with a string `cluster.config` parsed.
fn comparison_trees(profile: &Profile) -> Result<Vec<Value>, ProfileError> {
    let mut out = Vec::new();
    for l in &profile.layers {
        let mut tree = unrendered_values(profile, l)?;
        if l.layer_type == LayerType::K8s
            && let Some(cfg) = tree.get_mut("cluster").and_then(|c| c.get_mut("config"))
            && let Value::String(s) = cfg
        {
            let parsed = parse_unrendered(s).ok();
            if let Some(parsed) = parsed {
                *cfg = Value::Map(vec![(CONFIG_STRING.to_string(), parsed)]);
            }
        }
        out.push(tree);
    }
    Ok(out)
}

fn config_of(tree: &Value) -> Option<&Value> {
    let cfg = tree.get("cluster")?.get("config")?;
    Some(cfg.get(CONFIG_STRING).unwrap_or(cfg))
}

fn config_of_mut(tree: &mut Value) -> Option<&mut Value> {
    let cfg = tree.get_mut("cluster")?.get_mut("config")?;
    if cfg.get(CONFIG_STRING).is_some() {
        cfg.get_mut(CONFIG_STRING)
    } else {
        Some(cfg)
    }
}

/// Removes the token from a comma list, keeping the other separators as written:
/// `AlwaysPullImages,A,B` → `A,B`, `A, AlwaysPullImages, B` → `A, B`. `None` when absent.
pub(crate) fn remove_token(list: &str) -> Option<String> {
    // (start, end) of each token, trimmed.
    let mut tokens = Vec::new();
    let mut pos = 0;
    for part in list.split(',') {
        let lead = part.len() - part.trim_start().len();
        let t = part.trim();
        tokens.push((pos + lead, pos + lead + t.len()));
        pos += part.len() + 1;
    }
    let i = tokens.iter().position(|&(s, e)| &list[s..e] == TOKEN)?;
    let (s, e) = tokens[i];
    let mut out = String::new();
    if tokens.len() == 1 {
        out.push_str(&list[..s]);
        out.push_str(&list[e..]);
    } else if i == 0 {
        out.push_str(&list[..s]);
        out.push_str(&list[tokens[1].0..]);
    } else {
        out.push_str(&list[..tokens[i - 1].1]);
        out.push_str(&list[e..]);
    }
    // Remove every occurrence (a repeated token).
    Some(remove_token(&out).unwrap_or(out))
}

/// The edit `(start, end, replacement)` for the `enable-admission-plugins` at `pos`, if it
/// holds the token and is not in a comment.
fn edit_at(
    text: &str,
    pos: usize,
    is_json: bool,
) -> Result<Option<(usize, usize, String)>, String> {
    let bytes = text.as_bytes();
    if pos > 0 && (bytes[pos - 1].is_ascii_alphanumeric() || bytes[pos - 1] == b'_') {
        return Ok(None);
    }
    let line_start = logical_line_start(text, pos);
    let prefix = &text[line_start..pos];
    if prefix.trim_start().starts_with('#') || prefix.contains(" #") {
        return Ok(None);
    }
    let mut i = pos + KEY.len();
    let skip = |i: &mut usize, set: &[u8]| {
        while *i < bytes.len() && set.contains(&bytes[*i]) {
            *i += 1;
        }
    };
    skip(&mut i, b"\"'\\");
    skip(&mut i, b" \t");
    if i >= bytes.len() || !(bytes[i] == b':' || bytes[i] == b'=') {
        return Ok(None);
    }
    i += 1;
    skip(&mut i, b" \t");
    skip(&mut i, b"\"'\\");
    let list_start = i;
    while i < bytes.len()
        && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b',' || bytes[i] == b' ')
    {
        i += 1;
    }
    let list_end = list_start + text[list_start..i].trim_end().len();
    let list = &text[list_start..list_end];
    let Some(new) = remove_token(list) else {
        return Ok(None);
    };
    if !new.trim().is_empty() {
        return Ok(Some((list_start, list_end, new)));
    }
    // AlwaysPullImages was the only plugin: remove the whole key or list item.
    let fail = || {
        Err(format!(
            "AlwaysPullImages is the only admission plugin at byte {pos} and that entry cannot be removed as a whole line; remove it by hand"
        ))
    };
    if is_json {
        if pos >= 1 && bytes[pos - 1] == b'"' && (pos < 2 || bytes[pos - 2] != b'\\') {
            // A JSON member `"enable-admission-plugins": "AlwaysPullImages"`.
            if bytes.get(list_end) != Some(&b'"') {
                return fail();
            }
            let member_start = pos - 1;
            let member_end = list_end + 1;
            let after =
                member_end + (text[member_end..].len() - text[member_end..].trim_start().len());
            if bytes.get(after) == Some(&b',') {
                let next = after + 1;
                let next = next + (text[next..].len() - text[next..].trim_start().len());
                return Ok(Some((member_start, next, String::new())));
            }
            let before = text[..member_start].trim_end();
            return match before.as_bytes().last() {
                Some(b',') => Ok(Some((before.len() - 1, member_end, String::new()))),
                Some(b'{') => Ok(Some((before.len(), after, String::new()))),
                _ => fail(),
            };
        }
        // Inside a JSON string: lines are `\n` escapes.
        let Some(nl) = text[..pos].rfind("\\n") else {
            return fail();
        };
        if !text[nl + 2..pos].bytes().all(|b| b" \t-\"'\\".contains(&b)) {
            return fail();
        }
        let mut j = list_end;
        skip(&mut j, b"\"' \t");
        while j + 1 < bytes.len() && bytes[j] == b'\\' && bytes[j + 1] == b'"' {
            j += 2;
            skip(&mut j, b" \t");
        }
        if text[j..].starts_with("\\n") || bytes.get(j) == Some(&b'"') {
            return Ok(Some((nl, j, String::new())));
        }
        return fail();
    }
    let ls = text[..pos].rfind('\n').map_or(0, |i| i + 1);
    let le = text[pos..].find('\n').map_or(text.len(), |i| pos + i + 1);
    if !text[ls..pos].bytes().all(|b| b" \t-\"'".contains(&b)) {
        return fail();
    }
    let rest = text[list_end..le].trim_start_matches(['"', '\'']).trim();
    if !(rest.is_empty() || rest.starts_with('#')) {
        return fail();
    }
    Ok(Some((ls, le, String::new())))
}

/// Start of the line holding `pos`: after a newline, or after a `\n` escape in JSON strings.
fn logical_line_start(text: &str, pos: usize) -> usize {
    let real = text[..pos].rfind('\n').map_or(0, |i| i + 1);
    let escaped = text[..pos].rfind("\\n").map_or(0, |i| i + 2);
    real.max(escaped)
}

/// Byte ranges of the layers in the text: from each layer's start to the next one's.
fn layer_ranges(text: &str, count: usize) -> Option<Vec<(usize, usize)>> {
    #[derive(Deserialize)]
    struct Spans {
        #[serde(default)]
        layers: Option<Vec<Spanned<Value>>>,
        /// A Palette export: `spec.template.packs`.
        #[serde(default)]
        spec: Option<ExportSpec>,
    }
    #[derive(Deserialize)]
    struct ExportSpec {
        template: Option<ExportTemplate>,
    }
    #[derive(Deserialize)]
    struct ExportTemplate {
        packs: Option<Vec<Spanned<Value>>>,
    }
    let spans: Spans = serde_saphyr::from_str(text).ok()?;
    let packs = spans.spec.and_then(|s| s.template).and_then(|t| t.packs);
    let starts: Vec<usize> = spans
        .layers
        .or(packs)
        .unwrap_or_default()
        .iter()
        .map(|s| {
            s.referenced
                .span()
                .byte_offset()
                .and_then(|o| usize::try_from(o).ok())
        })
        .collect::<Option<Vec<_>>>()?;
    if starts.len() != count
        || starts.windows(2).any(|w| w[0] > w[1])
        || starts.iter().any(|&s| !text.is_char_boundary(s))
    {
        return None;
    }
    Some(
        starts
            .iter()
            .enumerate()
            .map(|(i, &s)| (s, starts.get(i + 1).copied().unwrap_or(text.len())))
            .collect(),
    )
}

/// What the trees must look like after the fix.
fn expected(profile: &Profile, before: &[Value]) -> Vec<Value> {
    let mut out = before.to_vec();
    for (l, tree) in profile.layers.iter().zip(out.iter_mut()) {
        if l.layer_type != LayerType::K8s {
            continue;
        }
        let Some(config) = config_of_mut(tree) else {
            continue;
        };
        if let Some(Value::Map(args)) = config
            .get_mut("clusterConfiguration")
            .and_then(|c| c.get_mut("apiServer"))
            .and_then(|a| a.get_mut("extraArgs"))
        {
            args.retain_mut(|(k, v)| {
                if k != KEY {
                    return true;
                }
                let Value::String(s) = v else { return true };
                match remove_token(s) {
                    Some(new) if new.trim().is_empty() => false,
                    Some(new) => {
                        *s = new;
                        true
                    }
                    None => true,
                }
            });
        }
        match config.get_mut("kube-apiserver-arg") {
            Some(Value::Seq(items)) => items.retain_mut(fix_arg),
            Some(item @ Value::String(_)) => {
                let keep = fix_arg(item);
                if !keep {
                    *item = Value::Null;
                }
            }
            _ => {}
        }
    }
    out
}

/// Fixes one `enable-admission-plugins=...` argument; false when it must go.
fn fix_arg(item: &mut Value) -> bool {
    let Value::String(s) = item else { return true };
    let Some(list) = plugin_arg(s) else {
        return true;
    };
    match remove_token(list) {
        Some(new) if new.trim().is_empty() => false,
        Some(new) => {
            let prefix = &s[..s.len() - list.len()];
            *s = format!("{prefix}{new}");
            true
        }
        None => true,
    }
}

fn verify(profile: &Profile, before: &[Value], new_text: &str, file: &str) -> Result<(), String> {
    let new = Profile::parse(new_text, file).map_err(|e| {
        format!("the edited text no longer parses ({e}); remove AlwaysPullImages by hand")
    })?;
    let after = comparison_trees(&new).map_err(|e| {
        format!("the edited text no longer parses ({e}); remove AlwaysPullImages by hand")
    })?;
    let same_outside = new.name == profile.name
        && new.version == profile.version
        && new.variables == profile.variables
        && new.system == profile.system
        && new.layers.len() == profile.layers.len()
        && new.layers.iter().zip(&profile.layers).all(|(a, b)| {
            a.name == b.name
                && a.layer_type == b.layer_type
                && a.version == b.version
                && a.manifests == b.manifests
        });
    if !same_outside {
        return Err("the edit changed something besides the admission plugin list; remove AlwaysPullImages by hand".to_string());
    }
    let want = expected(profile, before);
    for ((l, w), a) in profile.layers.iter().zip(&want).zip(&after) {
        if !w.loosely_equals(a) {
            return Err(format!(
                "the edit of layer {} changed more than the admission plugin list (or left AlwaysPullImages in place); remove AlwaysPullImages by hand",
                l.name
            ));
        }
        if l.layer_type == LayerType::K8s
            && config_of(a).is_some_and(|c| !always_pull_paths(c).is_empty())
        {
            return Err(format!(
                "AlwaysPullImages is still enabled in layer {} after the edit; remove it by hand",
                l.name
            ));
        }
    }
    Ok(())
}
