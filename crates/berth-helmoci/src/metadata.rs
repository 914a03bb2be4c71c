//! Chart.yaml as Helm reads it (`chart.Metadata` of Helm v4's `pkg/chart/v2`): YAML turned
//! into the Go struct (unknown keys dropped, keys matched case-insensitively as
//! `encoding/json` does, scalars given to string fields as their text), an empty
//! `apiVersion` defaulted to `v1`, `requirements.yaml` read into the same struct, then
//! `Validate`'s clean-up of strings; and that struct as Go's `json.Marshal` writes it, which
//! is the config blob of the chart's OCI artifact.

use std::collections::BTreeMap;

use serde_json::Value;

/// A chart maintainer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Maintainer {
    pub name: String,
    pub email: String,
    pub url: String,
}

/// A dependency of Chart.yaml (or requirements.yaml).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dependency {
    pub name: String,
    pub version: String,
    pub repository: String,
    pub condition: String,
    pub tags: Vec<String>,
    pub enabled: bool,
    pub import_values: Vec<Value>,
    pub alias: String,
}

/// Helm's `chart.Metadata`, field for field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metadata {
    pub name: String,
    pub home: String,
    pub sources: Vec<String>,
    pub version: String,
    pub description: String,
    pub keywords: Vec<String>,
    pub maintainers: Vec<Maintainer>,
    pub icon: String,
    pub api_version: String,
    pub condition: String,
    pub tags: String,
    pub app_version: String,
    pub deprecated: bool,
    pub annotations: BTreeMap<String, String>,
    pub kube_version: String,
    pub dependencies: Vec<Dependency>,
    pub kind: String,
}

/// Why Chart.yaml could not be read as Helm reads it: the field and what is wrong.
pub type FieldError = String;

impl Metadata {
    /// Chart.yaml (and requirements.yaml, when the archive has one) as `helm push` reads
    /// them.
    pub fn parse(chart_yaml: &str, requirements: Option<&str>) -> Result<Metadata, FieldError> {
        let mut md = Metadata::default();
        md.apply(&yaml(chart_yaml, "Chart.yaml")?)
            .map_err(|e| format!("Chart.yaml: {e}"))?;
        if md.api_version.is_empty() {
            md.api_version = "v1".into();
        }
        if let Some(r) = requirements {
            md.apply(&yaml(r, "requirements.yaml")?)
                .map_err(|e| format!("requirements.yaml: {e}"))?;
        }
        md.sanitize();
        if md.name.is_empty() {
            return Err("Chart.yaml: `name` is required".into());
        }
        if md.version.is_empty() {
            return Err("Chart.yaml: `version` is required".into());
        }
        Ok(md)
    }

    /// Sets the fields `v` (a mapping) gives, as `json.Unmarshal` into the struct does.
    fn apply(&mut self, v: &Value) -> Result<(), FieldError> {
        let obj = match v {
            Value::Object(o) => o,
            Value::Null => return Ok(()),
            _ => return Err("not a mapping".into()),
        };
        for (key, val) in obj {
            let Some(field) = field_of(key, FIELDS) else {
                continue;
            };
            let at = |e: String| format!("{field}: {e}");
            match field {
                "name" => self.name = string(val).map_err(at)?,
                "home" => self.home = string(val).map_err(at)?,
                "sources" => self.sources = strings(val).map_err(at)?,
                "version" => self.version = string(val).map_err(at)?,
                "description" => self.description = string(val).map_err(at)?,
                "keywords" => self.keywords = strings(val).map_err(at)?,
                "maintainers" => self.maintainers = maintainers(val).map_err(at)?,
                "icon" => self.icon = string(val).map_err(at)?,
                "apiVersion" => self.api_version = string(val).map_err(at)?,
                "condition" => self.condition = string(val).map_err(at)?,
                "tags" => self.tags = string(val).map_err(at)?,
                "appVersion" => self.app_version = string(val).map_err(at)?,
                "deprecated" => self.deprecated = boolean(val).map_err(at)?,
                "annotations" => match val {
                    Value::Null => self.annotations.clear(),
                    Value::Object(o) => {
                        // json.Unmarshal into a map adds to what is there.
                        for (k, v) in o {
                            let v = string(v).map_err(|e| format!("annotations.{k}: {e}"))?;
                            self.annotations.insert(k.clone(), v);
                        }
                    }
                    _ => return Err(at("not a mapping".into())),
                },
                "kubeVersion" => self.kube_version = string(val).map_err(at)?,
                "dependencies" => self.dependencies = dependencies(val).map_err(at)?,
                "type" => self.kind = string(val).map_err(at)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// `Metadata.Validate`'s clean-up: spaces normalized, unprintable characters dropped, in
    /// the fields Helm cleans.
    fn sanitize(&mut self) {
        for s in [
            &mut self.name,
            &mut self.description,
            &mut self.home,
            &mut self.icon,
            &mut self.condition,
            &mut self.tags,
            &mut self.app_version,
            &mut self.kube_version,
        ] {
            *s = sanitize(s);
        }
        for s in self.sources.iter_mut().chain(self.keywords.iter_mut()) {
            *s = sanitize(s);
        }
        for m in &mut self.maintainers {
            for s in [&mut m.name, &mut m.email, &mut m.url] {
                *s = sanitize(s);
            }
        }
        for d in &mut self.dependencies {
            for s in [
                &mut d.name,
                &mut d.version,
                &mut d.repository,
                &mut d.condition,
            ] {
                *s = sanitize(s);
            }
            for t in &mut d.tags {
                *t = sanitize(t);
            }
        }
    }

    /// The struct as Go's `json.Marshal` writes it: fields in declaration order, empty ones
    /// left out (`omitempty`), map keys sorted, HTML characters escaped.
    pub fn to_go_json(&self) -> String {
        let mut o = Obj::default();
        o.str("name", &self.name);
        o.str("home", &self.home);
        o.list("sources", &self.sources);
        o.str("version", &self.version);
        o.str("description", &self.description);
        o.list("keywords", &self.keywords);
        if !self.maintainers.is_empty() {
            let items: Vec<String> = self
                .maintainers
                .iter()
                .map(|m| {
                    let mut x = Obj::default();
                    x.str("name", &m.name);
                    x.str("email", &m.email);
                    x.str("url", &m.url);
                    x.end()
                })
                .collect();
            o.raw("maintainers", format!("[{}]", items.join(",")));
        }
        o.str("icon", &self.icon);
        o.str("apiVersion", &self.api_version);
        o.str("condition", &self.condition);
        o.str("tags", &self.tags);
        o.str("appVersion", &self.app_version);
        if self.deprecated {
            o.raw("deprecated", "true".into());
        }
        if !self.annotations.is_empty() {
            let mut x = Obj::default();
            for (k, v) in &self.annotations {
                x.raw(k, go_string(v));
            }
            o.raw("annotations", x.end());
        }
        o.str("kubeVersion", &self.kube_version);
        if !self.dependencies.is_empty() {
            let items: Vec<String> = self.dependencies.iter().map(dependency_json).collect();
            o.raw("dependencies", format!("[{}]", items.join(",")));
        }
        o.str("type", &self.kind);
        o.end()
    }
}

const FIELDS: &[&str] = &[
    "name",
    "home",
    "sources",
    "version",
    "description",
    "keywords",
    "maintainers",
    "icon",
    "apiVersion",
    "condition",
    "tags",
    "appVersion",
    "deprecated",
    "annotations",
    "kubeVersion",
    "dependencies",
    "type",
];

const DEPENDENCY_FIELDS: &[&str] = &[
    "name",
    "version",
    "repository",
    "condition",
    "tags",
    "enabled",
    "import-values",
    "alias",
];

/// The field `key` sets: its exact name, else one equal ignoring case (`encoding/json`).
fn field_of(key: &str, fields: &[&'static str]) -> Option<&'static str> {
    let exact = fields.iter().find(|f| **f == key);
    exact
        .or_else(|| fields.iter().find(|f| f.eq_ignore_ascii_case(key)))
        .copied()
}

fn yaml(text: &str, file: &str) -> Result<Value, FieldError> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_saphyr::from_str::<Value>(text).map_err(|e| format!("{file}: not valid YAML: {e}"))
}

/// A scalar given to a string field (`sigs.k8s.io/yaml` turns numbers and booleans into
/// their text; `null` leaves the field empty).
fn string(v: &Value) -> Result<String, FieldError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(match n.as_f64() {
            Some(f) if n.is_f64() => go_float(f),
            _ => n.to_string(),
        }),
        _ => Err("expected a string".into()),
    }
}

fn strings(v: &Value) -> Result<Vec<String>, FieldError> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(a) => a.iter().map(string).collect(),
        _ => Err("expected a list of strings".into()),
    }
}

fn boolean(v: &Value) -> Result<bool, FieldError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Null => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

fn maintainers(v: &Value) -> Result<Vec<Maintainer>, FieldError> {
    let items = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a,
        _ => return Err("expected a list".into()),
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Value::Object(o) = item else {
            return Err(format!(
                "[{i}]: maintainers must not contain empty or null nodes"
            ));
        };
        let mut m = Maintainer::default();
        for (k, v) in o {
            let set = match field_of(k, &["name", "email", "url"]) {
                Some("name") => &mut m.name,
                Some("email") => &mut m.email,
                Some("url") => &mut m.url,
                _ => continue,
            };
            *set = string(v).map_err(|e| format!("[{i}].{k}: {e}"))?;
        }
        out.push(m);
    }
    Ok(out)
}

fn dependencies(v: &Value) -> Result<Vec<Dependency>, FieldError> {
    let items = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a,
        _ => return Err("expected a list".into()),
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Value::Object(o) = item else {
            return Err(format!(
                "[{i}]: dependencies must not contain empty or null nodes"
            ));
        };
        let mut d = Dependency::default();
        for (k, v) in o {
            let at = |e: String| format!("[{i}].{k}: {e}");
            match field_of(k, DEPENDENCY_FIELDS) {
                Some("name") => d.name = string(v).map_err(at)?,
                Some("version") => d.version = string(v).map_err(at)?,
                Some("repository") => d.repository = string(v).map_err(at)?,
                Some("condition") => d.condition = string(v).map_err(at)?,
                Some("tags") => d.tags = strings(v).map_err(at)?,
                Some("enabled") => d.enabled = boolean(v).map_err(at)?,
                Some("import-values") => {
                    d.import_values = match v {
                        Value::Null => Vec::new(),
                        Value::Array(a) => a.clone(),
                        _ => return Err(at("expected a list".into())),
                    }
                }
                Some("alias") => d.alias = string(v).map_err(at)?,
                _ => {}
            }
        }
        out.push(d);
    }
    Ok(out)
}

fn dependency_json(d: &Dependency) -> String {
    let mut x = Obj::default();
    x.raw("name", go_string(&d.name));
    x.str("version", &d.version);
    x.raw("repository", go_string(&d.repository));
    x.str("condition", &d.condition);
    x.list("tags", &d.tags);
    if d.enabled {
        x.raw("enabled", "true".into());
    }
    if !d.import_values.is_empty() {
        let items: Vec<String> = d.import_values.iter().map(go_value).collect();
        x.raw("import-values", format!("[{}]", items.join(",")));
    }
    x.str("alias", &d.alias);
    x.end()
}

/// A JSON object written field by field.
#[derive(Default)]
struct Obj(Vec<String>);

impl Obj {
    fn raw(&mut self, key: &str, json: String) {
        self.0.push(format!("{}:{json}", go_string(key)));
    }
    /// An `omitempty` string.
    fn str(&mut self, key: &str, v: &str) {
        if !v.is_empty() {
            self.raw(key, go_string(v));
        }
    }
    /// An `omitempty` list of strings.
    fn list(&mut self, key: &str, v: &[String]) {
        if !v.is_empty() {
            let items: Vec<String> = v.iter().map(|s| go_string(s)).collect();
            self.raw(key, format!("[{}]", items.join(",")));
        }
    }
    fn end(self) -> String {
        format!("{{{}}}", self.0.join(","))
    }
}

/// A string as Go's `encoding/json` writes it (with `SetEscapeHTML(true)`, the default):
/// `<`, `>`, `&`, U+2028 and U+2029 as `\u` escapes, control characters as `\n`, `\r`,
/// `\t`, `\b`, `\f` or `\u00xx`.
pub fn go_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Any JSON value as Go writes an `interface{}` decoded from it: numbers are float64, map
/// keys sorted.
fn go_value(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_float(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => go_string(s),
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(go_value).collect();
            format!("[{}]", items.join(","))
        }
        Value::Object(o) => {
            let sorted: BTreeMap<&String, &Value> = o.iter().collect();
            let mut x = Obj::default();
            for (k, v) in sorted {
                x.raw(k, go_value(v));
            }
            x.end()
        }
    }
}

/// A float64 as Go's `encoding/json` writes it: the shortest form, in exponent form below
/// 1e-6 and from 1e21 (`1e+21`, `1e-7`).
fn go_float(f: f64) -> String {
    let a = f.abs();
    if a != 0.0 && !(1e-6..1e21).contains(&a) {
        let s = format!("{f:e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match e.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', e),
        };
        let digits = if digits.len() < 2 && sign == '+' {
            format!("0{digits}")
        } else {
            digits.to_string()
        };
        return format!("{m}e{sign}{digits}");
    }
    format!("{f}")
}

/// Go's `sanitizeString`: every space character becomes ' ', and what `unicode.IsPrint`
/// refuses (control and format characters, private use) is dropped.
fn sanitize(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            c if c.is_whitespace() => Some(' '),
            c if printable(c) => Some(c),
            _ => None,
        })
        .collect()
}

fn printable(c: char) -> bool {
    let u = c as u32;
    !(c.is_control()
        || u == 0xad
        || (0x600..=0x605).contains(&u)
        || u == 0x61c
        || u == 0x6dd
        || u == 0x70f
        || (0x200b..=0x200f).contains(&u)
        || (0x202a..=0x202e).contains(&u)
        || (0x2060..=0x206f).contains(&u)
        || u == 0xfeff
        || (0xfff9..=0xfffb).contains(&u)
        || (0xe000..=0xf8ff).contains(&u)
        || (0xf0000..).contains(&u)
        || (0xe0000..=0xe007f).contains(&u))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_json_orders_fields_omits_empty_and_escapes_html() {
        let md = Metadata::parse(
            "apiVersion: v2\nname: demo\nversion: 1.0.0\nappVersion: 1.10\ndescription: \"a <b> & c\\u0001\"\nkeywords: [x]\nmaintainers:\n  - name: A\n    email: a@x\nannotations:\n  z: \"1\"\n  a: 2\nunknown: 3\nDeprecated: true\ndependencies:\n  - name: sub\n    repository: \"\"\n    import-values: [{child: a, parent: b}, 2.5]\n",
            None,
        )
        .unwrap();
        assert_eq!(
            md.to_go_json(),
            r#"{"name":"demo","version":"1.0.0","description":"a \u003cb\u003e \u0026 c","keywords":["x"],"maintainers":[{"name":"A","email":"a@x"}],"apiVersion":"v2","appVersion":"1.1","deprecated":true,"annotations":{"a":"2","z":"1"},"dependencies":[{"name":"sub","repository":"","import-values":[{"child":"a","parent":"b"},2.5]}]}"#
        );
    }

    #[test]
    fn defaults_and_requirements_and_errors() {
        let md = Metadata::parse(
            "name: old\nversion: 0.1.0\n",
            Some("dependencies:\n  - name: x\n    version: \"1\"\n    repository: https://r\n"),
        )
        .unwrap();
        assert_eq!(md.api_version, "v1");
        assert_eq!(md.dependencies[0].repository, "https://r");
        let e = Metadata::parse("name: x\n", None).unwrap_err();
        assert!(e.contains("version"), "{e}");
        let e = Metadata::parse("name: x\nversion: 1\nmaintainers: [null]\n", None).unwrap_err();
        assert!(e.contains("maintainers"), "{e}");
        assert_eq!(sanitize("a\tb\u{200b}c"), "a bc");
        assert_eq!(go_float(1e-7), "1e-7");
        assert_eq!(go_float(0.5), "0.5");
    }
}
