//! The values a template sees, with Go's semantics: maps are shared references (Sprig's
//! `set` mutates in place, as in Go), lists are values, numbers from YAML are `float64`
//! (Helm reads values through JSON), maps iterate in key order, and `%v` prints like Go.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::rc::Rc;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

pub type Map = BTreeMap<String, Value>;

/// A chart's files, as `.Files` sees them (path relative to the chart root → bytes).
#[derive(Debug, Default)]
pub struct Files(pub BTreeMap<String, Rc<Vec<u8>>>);

#[derive(Clone, Debug, Default)]
pub enum Value {
    #[default]
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    List(Rc<Vec<Value>>),
    Map(Rc<RefCell<Map>>),
    /// `.Files` (and what `.Files.Glob` returns).
    Files(Rc<Files>),
    /// `.Capabilities.APIVersions`.
    ApiVersions(Rc<Vec<String>>),
}

impl Value {
    pub fn str(s: impl AsRef<str>) -> Value {
        Value::Str(Rc::from(s.as_ref()))
    }
    pub fn map(m: Map) -> Value {
        Value::Map(Rc::new(RefCell::new(m)))
    }
    pub fn list(l: Vec<Value>) -> Value {
        Value::List(Rc::new(l))
    }
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    /// A field of a map (`None` when this is no map or has no such key).
    pub fn get(&self, key: &str) -> Option<Value> {
        match self {
            Value::Map(m) => m.borrow().get(key).cloned(),
            _ => None,
        }
    }
    /// Go's truth: false, 0, nil, and empty strings, lists and maps are false.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.borrow().is_empty(),
            Value::Files(f) => !f.0.is_empty(),
            Value::ApiVersions(_) => true,
        }
    }
    /// Go's `reflect.Kind` name, as Sprig's `kindOf` prints it.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Nil => "invalid",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int64",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::List(_) => "slice",
            Value::Map(_) => "map",
            Value::Files(_) | Value::ApiVersions(_) => "struct",
        }
    }
    /// Go's `%T`, as Sprig's `typeOf` prints it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int64",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::List(_) => "[]interface {}",
            Value::Map(_) => "map[string]interface {}",
            Value::Files(_) => "chart.Files",
            Value::ApiVersions(_) => "chartutil.VersionSet",
        }
    }
    /// A deep copy: maps are not shared with the original.
    pub fn deep_copy(&self) -> Value {
        match self {
            Value::Map(m) => Value::map(
                m.borrow()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.deep_copy()))
                    .collect(),
            ),
            Value::List(l) => Value::list(l.iter().map(Value::deep_copy).collect()),
            v => v.clone(),
        }
    }
    /// `%v`.
    pub fn to_go_string(&self) -> String {
        let mut s = String::new();
        self.write_go(&mut s);
        s
    }
    fn write_go(&self, out: &mut String) {
        match self {
            Value::Nil => out.push_str("<nil>"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Float(f) => out.push_str(&format_float_g(*f)),
            Value::Str(s) => out.push_str(s),
            Value::List(l) => {
                out.push('[');
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    v.write_go(out);
                }
                out.push(']');
            }
            Value::Map(m) => {
                out.push_str("map[");
                for (i, (k, v)) in m.borrow().iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(k);
                    out.push(':');
                    v.write_go(out);
                }
                out.push(']');
            }
            Value::Files(_) => out.push_str("map[]"),
            Value::ApiVersions(v) => {
                let _ = write!(out, "[{}]", v.join(" "));
            }
        }
    }
    pub fn from_yaml_str(text: &str) -> Result<Value, String> {
        if text.trim().is_empty() {
            return Ok(Value::Nil);
        }
        let options = serde_saphyr::options! {
            budget: serde_saphyr::budget! {
                max_events: 50_000_000,
                max_nodes: 10_000_000,
                max_total_scalar_bytes: 512 * 1024 * 1024,
                max_documents: 100_000,
            },
        };
        serde_saphyr::from_str_with_options::<Value>(text, options).map_err(|e| e.to_string())
    }
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)` as `%v` prints it (exponent form below 1e-4
/// and from 1e6, two-digit exponents: Helm prints a value of 1000000 as `1e+06`).
pub fn format_float_g(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // Shortest round-trip digits via Rust's `{:e}`.
    let e = format!("{f:e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mant}e{sign}{:02}", exp.abs());
    }
    let s = format!("{f}");
    s
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Nil, Value::Nil) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a == b,
            (Value::Int(a), Value::Float(b)) | (Value::Float(b), Value::Int(a)) => *a as f64 == *b,
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::List(a), Value::List(b)) => a == b,
            (Value::Map(a), Value::Map(b)) => Rc::ptr_eq(a, b) || *a.borrow() == *b.borrow(),
            _ => false,
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    // Helm reads YAML through JSON: every number is a float64.
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Float(v as f64))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Float(v as f64))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Float(v as f64))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(Value::Float(v as f64))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::str(v))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::str(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element::<Value>()? {
            out.push(v);
        }
        Ok(Value::list(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some((k, v)) = m.next_entry::<Value, Value>()? {
            let key = match k {
                Value::Str(s) => s.to_string(),
                Value::Nil => "null".to_string(),
                other => other.to_go_string(),
            };
            out.insert(key, v);
        }
        Ok(Value::map(out))
    }
}

/// `toJson`: Go's `encoding/json` (sorted keys, HTML-safe escapes).
pub fn to_json(v: &Value) -> String {
    let mut s = String::new();
    write_json(v, &mut s);
    s
}

fn write_json(v: &Value, out: &mut String) {
    match v {
        Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => out.push_str(&json_float(*f)),
        Value::Str(s) => json_string(s, out),
        Value::List(l) => {
            out.push('[');
            for (i, x) in l.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(x, out);
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push('{');
            for (i, (k, x)) in m.borrow().iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(k, out);
                out.push(':');
                write_json(x, out);
            }
            out.push('}');
        }
        Value::Files(_) => out.push_str("{}"),
        Value::ApiVersions(v) => {
            write_json(&Value::list(v.iter().map(Value::str).collect()), out);
        }
    }
}

fn json_float(f: f64) -> String {
    let a = f.abs();
    if f.fract() == 0.0 && a < 1e21 {
        format!("{f:.0}")
    } else if a != 0.0 && !(1e-6..1e21).contains(&a) {
        format_float_g(f)
    } else {
        format!("{f}")
    }
}

/// `s` in double quotes, with the backslash escapes Go's `strconv.Quote` and its JSON
/// encoder write alike (quote, backslash, newline, return, tab); `other` writes every
/// other character.
pub(crate) fn go_quoted(s: &str, out: &mut String, other: impl Fn(&mut String, char)) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => other(out, c),
        }
    }
    out.push('"');
}

fn json_string(s: &str, out: &mut String) {
    go_quoted(s, out, |out, c| match c {
        '<' => out.push_str("\\u003c"),
        '>' => out.push_str("\\u003e"),
        '&' => out.push_str("\\u0026"),
        c if (c as u32) < 0x20 => {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
        c => out.push(c),
    });
}

/// `toYaml`: block YAML with sorted keys, lists at the parent's indentation (as
/// `sigs.k8s.io/yaml` writes), strings quoted whenever a plain scalar would read back as
/// something else. No trailing newline.
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Map(m) if !m.borrow().is_empty() => yaml_map(&m.borrow(), 0, &mut out),
        Value::List(l) if !l.is_empty() => yaml_list(l, 0, &mut out),
        other => {
            out.push_str(&yaml_scalar(other));
            out.push('\n');
        }
    }
    while out.ends_with('\n') {
        out.pop();
    }
    out
}

fn yaml_map(m: &Map, indent: usize, out: &mut String) {
    for (k, v) in m {
        out.push_str(&" ".repeat(indent));
        out.push_str(&yaml_string(k));
        out.push(':');
        yaml_child(v, indent, false, out);
    }
}

fn yaml_child(v: &Value, indent: usize, in_list: bool, out: &mut String) {
    match v {
        Value::Map(m) if !m.borrow().is_empty() => {
            out.push('\n');
            yaml_map(&m.borrow(), indent + 2, out);
        }
        Value::List(l) if !l.is_empty() => {
            out.push('\n');
            yaml_list(l, if in_list { indent + 2 } else { indent }, out);
        }
        other => {
            out.push(' ');
            out.push_str(&yaml_scalar(other));
            out.push('\n');
        }
    }
}

fn yaml_list(l: &[Value], indent: usize, out: &mut String) {
    for v in l {
        out.push_str(&" ".repeat(indent));
        out.push('-');
        match v {
            Value::Map(m) if !m.borrow().is_empty() => {
                // The first key on the dash's line, the rest under it.
                let mut first = String::new();
                yaml_map(&m.borrow(), indent + 2, &mut first);
                out.push(' ');
                out.push_str(&first[indent + 2..]);
            }
            Value::List(inner) if !inner.is_empty() => {
                let mut first = String::new();
                yaml_list(inner, indent + 2, &mut first);
                out.push(' ');
                out.push_str(&first[indent + 2..]);
            }
            other => {
                out.push(' ');
                out.push_str(&yaml_scalar(other));
                out.push('\n');
            }
        }
    }
}

fn yaml_scalar(v: &Value) -> String {
    match v {
        Value::Nil => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => json_float(*f),
        Value::Str(s) => yaml_string(s),
        Value::Map(_) => "{}".into(),
        Value::List(_) => "[]".into(),
        Value::Files(_) => "{}".into(),
        Value::ApiVersions(_) => "[]".into(),
    }
}

/// A string as a YAML scalar: plain when it reads back as the same string, else double-quoted.
pub fn yaml_string(s: &str) -> String {
    if plain_ok(s) {
        s.to_string()
    } else {
        let mut out = String::new();
        json_string(s, &mut out);
        // JSON's HTML escapes are valid YAML escapes too; keep them readable instead.
        out.replace("\\u003c", "<")
            .replace("\\u003e", ">")
            .replace("\\u0026", "&")
    }
}

fn plain_ok(s: &str) -> bool {
    if s.is_empty() || s.trim() != s {
        return false;
    }
    let first = s.chars().next().unwrap_or(' ');
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.ends_with(':') {
        return false;
    }
    if s.chars().any(|c| c.is_control()) {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "~" | ".nan" | ".inf"
    ) {
        return false;
    }
    // Anything that starts like a number (or a date) is quoted.
    if first.is_ascii_digit() || first == '+' || first == '.' {
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_go() {
        assert_eq!(format_float_g(1.0), "1");
        assert_eq!(format_float_g(8080.0), "8080");
        assert_eq!(format_float_g(1_000_000.0), "1e+06");
        assert_eq!(format_float_g(123_456.0), "123456");
        assert_eq!(format_float_g(1e21), "1e+21");
        assert_eq!(format_float_g(0.5), "0.5");
        assert_eq!(format_float_g(0.00001), "1e-05");
    }

    #[test]
    fn yaml_round_trips() {
        let v = Value::from_yaml_str(
            "a: 1\nb: [x, 'true', '1.0', {c: d, e: [1, 2]}]\nempty: {}\ns: 'a: b'\nn: null\n",
        )
        .unwrap();
        let y = to_yaml(&v);
        let back = Value::from_yaml_str(&y).unwrap();
        assert_eq!(v, back, "{y}");
        assert!(y.starts_with("a: 1\nb:\n- x\n- \"true\""), "{y}");
    }
}
