//! Errors of the profile library. Every message names the file, the place in it and says what
//! to fix.

/// Why a profile could not be read, rendered or fixed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// YAML/JSON syntax or shape errors (unknown field, wrong type, missing field).
    #[error("{file}:{line}:{column}: {place}: {message}")]
    Syntax {
        file: String,
        /// `profile`, or e.g. `layer edge-k8s: values` for YAML embedded in the profile.
        place: String,
        line: u64,
        column: u64,
        message: String,
    },
    /// A well-formed file whose content breaks a rule (bad `values` type, duplicate layer...).
    #[error("{file}: {place}: {message}")]
    Invalid {
        file: String,
        place: String,
        message: String,
    },
    /// A `{{.spectro...}}` macro that cannot be rendered (unknown name, cycle, non-scalar).
    #[error("{file}: layer {layer}: {place}: {message}")]
    Macro {
        file: String,
        layer: String,
        place: String,
        message: String,
    },
    /// `fix_always_pull_images` could not make a safe textual edit.
    #[error("{file}: cannot fix AlwaysPullImages automatically: {message}")]
    Fix { file: String, message: String },
}

/// Builds a [`ProfileError::Syntax`] from a serde-saphyr error met while reading `source`.
/// `line_base` is added to the reported line (for YAML embedded in the file) when it is known.
pub(crate) fn syntax(
    file: &str,
    place: &str,
    source: &str,
    err: &serde_saphyr::Error,
    hint: &str,
) -> ProfileError {
    let (line, column) = err
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    let full = err.to_string();
    let first = full.lines().next().unwrap_or("").trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    // Drop serde-saphyr's own "line N column M: " prefix: we print the location ourselves.
    let msg = match first.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") && head.contains(" column ") => rest,
        _ => first,
    };
    let mut message = msg.to_string();
    if let Some(path) = key_path_at(source, line, column) {
        message.push_str(&format!(" (at `{path}`)"));
    }
    if !hint.is_empty() {
        message.push_str("; ");
        message.push_str(hint);
    }
    ProfileError::Syntax {
        file: file.to_string(),
        place: place.to_string(),
        line,
        column,
        message,
    }
}

/// Best effort: the key path (`layers.name`) of the key on `line` of block YAML, or the last
/// `"key":` before `column` in JSON. Used only to make messages name the field.
fn key_path_at(source: &str, line: u64, column: u64) -> Option<String> {
    let lines: Vec<&str> = source.lines().collect();
    let idx = usize::try_from(line).ok()?.checked_sub(1)?;
    let text = *lines.get(idx)?;
    if text.trim_start().starts_with('{') || text.trim_start().starts_with('[') {
        return json_key_before(text, column);
    }
    let (indent, key) = line_key(text)?;
    let mut path = vec![key];
    let mut want = indent;
    for prev in lines[..idx].iter().rev() {
        if let Some((i, k)) = line_key(prev)
            && i < want
        {
            path.push(k);
            want = i;
            if i == 0 {
                break;
            }
        }
    }
    path.reverse();
    Some(path.join("."))
}

/// `(indent, key)` of a block-YAML line such as `  - name: x` or `    type: os`.
fn line_key(line: &str) -> Option<(usize, String)> {
    let trimmed = line.trim_start();
    if trimmed.starts_with('#') {
        return None;
    }
    let mut indent = line.len() - trimmed.len();
    let mut rest = trimmed;
    while let Some(r) = rest.strip_prefix("- ") {
        indent += 2;
        rest = r.trim_start();
    }
    let colon = rest
        .find(": ")
        .or_else(|| rest.strip_suffix(':').map(|r| r.len()))?;
    let key = rest[..colon].trim().trim_matches(|c| c == '"' || c == '\'');
    if key.is_empty() || key.contains(' ') || key.starts_with('{') {
        return None;
    }
    Some((indent, key.to_string()))
}

fn json_key_before(text: &str, column: u64) -> Option<String> {
    let end = text
        .char_indices()
        .nth(usize::try_from(column).ok()?.saturating_sub(1))
        .map_or(text.len(), |(i, _)| i);
    // An error pointing at a key (`"zzz": 1`) names that key: include it.
    let end = if text[end..].starts_with('"') {
        text[end + 1..]
            .find('"')
            .map_or(text.len(), |i| end + i + 2)
    } else {
        end
    };
    let head = format!("{}:", &text[..end]);
    let head = head.as_str();
    // Find the last `"key"` followed by optional spaces and a colon.
    let mut best = None;
    let mut search = 0;
    while let Some(off) = head[search..].find('"') {
        let start = search + off + 1;
        let Some(len) = head[start..].find('"') else {
            break;
        };
        let key = &head[start..start + len];
        let after = head[start + len + 1..].trim_start();
        if after.starts_with(':') {
            best = Some(key.to_string());
        }
        search = start + len + 1;
    }
    best
}
