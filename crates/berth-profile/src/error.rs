//! Errors of the profile library. Every message names the file, the place in it and says what
//! to fix.

use crate::profile::{Layer, Profile};

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

/// YAML embedded in the profile file as a string: a layer's `values: |`, a manifest's
/// `content`, a `cluster.config` string.
pub(crate) struct Embedded<'a> {
    /// The profile file's name and text.
    pub file: &'a str,
    pub file_text: &'a str,
    /// The embedded text as written in the file (macros unrendered).
    pub raw: &'a str,
    /// Its key's line in the file, or its first line (0 when unknown).
    pub after: u64,
    /// E.g. `layer edge-k8s: values`.
    pub place: String,
    /// E.g. `the layer's values`.
    pub what: &'a str,
}

impl<'a> Embedded<'a> {
    /// Text embedded in the values of layer `l` of `profile` (`raw`, as written), at `place`
    /// in the layer (`values`, `values cluster.config`, …).
    pub(crate) fn in_values(
        profile: &'a Profile,
        l: &Layer,
        raw: &'a str,
        place: &str,
        what: &'a str,
    ) -> Embedded<'a> {
        Embedded {
            file: &profile.file,
            file_text: &profile.text,
            raw,
            after: l.values_line,
            place: format!("layer {}: {place}", l.name),
            what,
        }
    }

    /// A syntax error met parsing `source` (the embedded text, possibly with its macros
    /// rendered), at the line and column of the file when the text is found there as a
    /// block; otherwise counted inside the text, and the message says so.
    pub(crate) fn syntax(&self, source: &str, err: &serde_saphyr::Error) -> ProfileError {
        let same_lines = source.lines().count() == self.raw.lines().count();
        let at = locate(self.file_text, self.raw, self.after).filter(|_| same_lines);
        let inside = format!(
            "fix the YAML of {} (line and column are counted inside it)",
            self.what
        );
        let (place, hint) = match (at, self.after) {
            (Some(_), _) => (self.place.clone(), format!("fix the YAML of {}", self.what)),
            (None, 0) => (self.place.clone(), inside),
            (None, n) => (
                format!("{} (from line {n} of the file)", self.place),
                inside,
            ),
        };
        let mut e = syntax(self.file, &place, source, err, &hint);
        if let (ProfileError::Syntax { line, column, .. }, Some((first, indent))) = (&mut e, at)
            && *line > 0
        {
            *line += first - 1;
            *column += indent;
        }
        e
    }
}

/// Where `block` (text embedded in the file as a YAML block scalar) is in `file_text`: the
/// 1-based line of the file holding its first line, and the indentation added to its
/// lines. The block starts at or after line `after`; one of a single line must start right
/// there. Lines of the file holding a `{{` macro may differ (rendering changed them).
pub(crate) fn locate(file_text: &str, block: &str, after: u64) -> Option<(u64, u64)> {
    let lines: Vec<&str> = block.lines().collect();
    let last = lines.iter().rposition(|l| !l.trim().is_empty())?;
    let lines = &lines[..=last];
    let k0 = lines.iter().position(|l| !l.trim().is_empty())?;
    let file: Vec<&str> = file_text.lines().collect();
    // `after` is the key's line, or the block's first line (1-based): the block starts at
    // the 0-based index `after - 1` or `after`.
    let start = usize::try_from(after).ok()?.saturating_sub(1);
    let end = match lines.iter().filter(|l| !l.trim().is_empty()).count() {
        1 if after == 0 => return None,
        1 => start + 2,
        _ => file.len(),
    };
    let lead = |l: &str| l.len() - l.trim_start_matches(' ').len();
    (start..end.min(file.len())).find_map(|s| {
        let f0 = file.get(s + k0)?;
        let indent = lead(f0).checked_sub(lead(lines[k0])).filter(|i| *i > 0)?;
        let mut exact = false;
        for (j, l) in lines.iter().enumerate() {
            let f = file.get(s + j)?;
            if l.trim().is_empty() {
                if !f.trim().is_empty() {
                    return None;
                }
            } else if f.get(..indent).is_some_and(|p| p.trim().is_empty())
                && f.get(indent..) == Some(*l)
            {
                exact = true;
            } else if !f.contains("{{") {
                return None;
            }
        }
        exact.then(|| ((s + 1) as u64, indent as u64))
    })
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
