//! The functions templates call: Go's builtins, Helm's (`toYaml`, `required`, `fail`,
//! `lookup`, ...) and Sprig's string, number and conversion functions. Collections,
//! versions, regular expressions and encodings are in [`crate::sprig`].

use std::rc::Rc;

use crate::value::{self, Files, Map, Value};
use crate::{certs, sprig};

pub type F = Result<Value, String>;

pub fn call(name: &str, a: Vec<Value>) -> F {
    if let Some(r) = sprig::call(name, &a) {
        return r;
    }
    if let Some(r) = certs::call(name, &a) {
        return r;
    }
    Ok(match name {
        // Go builtins.
        "not" => {
            argc(&a, 1)?;
            Value::Bool(!a[0].truthy())
        }
        "len" => {
            argc(&a, 1)?;
            Value::Int(match &a[0] {
                Value::Str(s) => s.len(),
                Value::List(l) => l.len(),
                Value::Map(m) => m.borrow().len(),
                Value::Nil => return Err("len of nil pointer".into()),
                other => return Err(format!("len of type {}", other.type_name())),
            } as i64)
        }
        "index" => index(&a)?,
        "print" => Value::str(go_sprint(&a)),
        "println" => {
            let mut s = a
                .iter()
                .map(Value::to_go_string)
                .collect::<Vec<_>>()
                .join(" ");
            s.push('\n');
            Value::str(s)
        }
        "printf" => {
            let fmt = string(a.first(), "printf")?;
            Value::str(printf(fmt, &a[1..]))
        }
        "eq" => {
            if a.len() < 2 {
                return Err("missing argument for comparison".into());
            }
            for b in &a[1..] {
                if go_eq(&a[0], b)? {
                    return Ok(Value::Bool(true));
                }
            }
            Value::Bool(false)
        }
        "ne" => {
            argc(&a, 2)?;
            Value::Bool(!go_eq(&a[0], &a[1])?)
        }
        "lt" | "le" | "gt" | "ge" => {
            argc(&a, 2)?;
            let o = go_cmp(&a[0], &a[1])?;
            Value::Bool(match name {
                "lt" => o.is_lt(),
                "le" => o.is_le(),
                "gt" => o.is_gt(),
                _ => o.is_ge(),
            })
        }
        "html" => Value::str(
            go_sprint(&a)
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&#34;")
                .replace('\'', "&#39;"),
        ),
        "js" => Value::str(
            go_sprint(&a)
                .replace('\\', "\\\\")
                .replace('\'', "\\'")
                .replace('"', "\\\""),
        ),
        "urlquery" => Value::str(url_escape(&go_sprint(&a))),
        "slice" => slice(&a)?,
        // Helm.
        "toYaml" | "toYamlPretty" | "mustToYaml" => Value::str(value::to_yaml(arg0(&a))),
        "toJson" | "mustToJson" | "toRawJson" | "mustToRawJson" => {
            Value::str(value::to_json(arg0(&a)))
        }
        "toPrettyJson" | "mustToPrettyJson" => Value::str(value::to_json(arg0(&a))),
        "fromYaml" | "fromJson" => {
            let s = string(a.first(), name)?;
            match Value::from_yaml_str(s) {
                Ok(Value::Map(m)) => Value::Map(m),
                Ok(Value::Nil) => Value::map(Map::new()),
                Ok(_) => error_map(
                    "json: cannot unmarshal into Go value of type map[string]interface {}",
                ),
                Err(e) => error_map(&e),
            }
        }
        "fromYamlArray" | "fromJsonArray" => {
            let s = string(a.first(), name)?;
            match Value::from_yaml_str(s) {
                Ok(Value::List(l)) => Value::List(l),
                Ok(Value::Nil) => Value::list(Vec::new()),
                Ok(_) => Value::list(vec![Value::str("cannot unmarshal into []interface {}")]),
                Err(e) => Value::list(vec![Value::str(e)]),
            }
        }
        "required" => {
            argc(&a, 2)?;
            let msg = string(a.first(), name)?;
            match &a[1] {
                Value::Nil => return Err(msg.to_string()),
                Value::Str(s) if s.is_empty() => return Err(msg.to_string()),
                v => v.clone(),
            }
        }
        "fail" => return Err(string(a.first(), name)?.to_string()),
        "lookup" => Value::map(Map::new()),
        // Sprig: defaults and logic.
        "default" => {
            if a.is_empty() {
                return Err("wrong number of args for default: want 2 got 0".into());
            }
            match a.get(1) {
                Some(v) if v.truthy() => v.clone(),
                Some(_) | None => a[0].clone(),
            }
        }
        "empty" => Value::Bool(!arg0(&a).truthy()),
        "coalesce" => a.iter().find(|v| v.truthy()).cloned().unwrap_or_default(),
        "ternary" => {
            argc(&a, 3)?;
            if a[2].truthy() {
                a[0].clone()
            } else {
                a[1].clone()
            }
        }
        "kindOf" => Value::str(arg0(&a).kind()),
        "kindIs" => {
            argc(&a, 2)?;
            Value::Bool(string(a.first(), name)? == a[1].kind())
        }
        "typeOf" => Value::str(arg0(&a).type_name()),
        "typeIs" => {
            argc(&a, 2)?;
            Value::Bool(string(a.first(), name)? == a[1].type_name())
        }
        "typeIsLike" => {
            argc(&a, 2)?;
            let t = string(a.first(), name)?;
            Value::Bool(t == a[1].type_name() || t.trim_start_matches('*') == a[1].type_name())
        }
        "deepEqual" => {
            argc(&a, 2)?;
            Value::Bool(a[0] == a[1])
        }
        // Sprig: strings.
        "quote" => Value::str(
            a.iter()
                .filter(|v| !v.is_nil())
                .map(|v| go_quote(&strval(v)))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "squote" => Value::str(
            a.iter()
                .filter(|v| !v.is_nil())
                .map(|v| format!("'{}'", strval(v)))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "cat" => Value::str(
            a.iter()
                .filter(|v| !v.is_nil())
                .map(strval)
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "toString" => Value::str(strval(arg0(&a))),
        "trim" => Value::str(string(a.first(), name)?.trim()),
        "trimAll" => {
            argc(&a, 2)?;
            let cut: Vec<char> = string(a.first(), name)?.chars().collect();
            Value::str(string(a.get(1), name)?.trim_matches(|c| cut.contains(&c)))
        }
        "trimPrefix" => {
            argc(&a, 2)?;
            let p = string(a.first(), name)?;
            let s = string(a.get(1), name)?;
            Value::str(s.strip_prefix(p).unwrap_or(s))
        }
        "trimSuffix" => {
            argc(&a, 2)?;
            let p = string(a.first(), name)?;
            let s = string(a.get(1), name)?;
            Value::str(s.strip_suffix(p).unwrap_or(s))
        }
        "lower" => Value::str(string(a.first(), name)?.to_lowercase()),
        "upper" => Value::str(string(a.first(), name)?.to_uppercase()),
        "title" => Value::str(title(string(a.first(), name)?)),
        "untitle" => {
            let s = string(a.first(), name)?;
            let mut c = s.chars();
            Value::str(match c.next() {
                Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
                None => String::new(),
            })
        }
        "repeat" => {
            argc(&a, 2)?;
            let n = int(&a[0])?;
            Value::str(string(a.get(1), name)?.repeat(n.max(0) as usize))
        }
        "substr" => {
            argc(&a, 3)?;
            let (start, end) = (int(&a[0])?, int(&a[1])?);
            let s = string(a.get(2), name)?;
            let len = s.len() as i64;
            let (st, en) = if start < 0 {
                (0, end.min(len))
            } else if end < 0 || end > len {
                (start.min(len), len)
            } else {
                (start.min(end), end)
            };
            Value::str(s.get(st as usize..en as usize).unwrap_or_default())
        }
        "nospace" => Value::str(
            string(a.first(), name)?
                .split_whitespace()
                .collect::<String>(),
        ),
        "trunc" => {
            argc(&a, 2)?;
            let n = int(&a[0])?;
            let s = string(a.get(1), name)?;
            let chars: Vec<char> = s.chars().collect();
            let len = chars.len() as i64;
            Value::str(if n >= 0 {
                chars[..(n.min(len)) as usize].iter().collect::<String>()
            } else {
                chars[((len + n).max(0)) as usize..]
                    .iter()
                    .collect::<String>()
            })
        }
        "abbrev" => {
            argc(&a, 2)?;
            let n = int(&a[0])? as usize;
            let s = string(a.get(1), name)?;
            Value::str(if s.len() <= n || n < 3 {
                s.to_string()
            } else {
                format!("{}...", &s[..n - 3])
            })
        }
        "contains" => {
            argc(&a, 2)?;
            Value::Bool(string(a.get(1), name)?.contains(string(a.first(), name)?))
        }
        "hasPrefix" => {
            argc(&a, 2)?;
            Value::Bool(string(a.get(1), name)?.starts_with(string(a.first(), name)?))
        }
        "hasSuffix" => {
            argc(&a, 2)?;
            Value::Bool(string(a.get(1), name)?.ends_with(string(a.first(), name)?))
        }
        "replace" => {
            argc(&a, 3)?;
            let (old, new) = (string(a.first(), name)?, string(a.get(1), name)?);
            Value::str(string(a.get(2), name)?.replace(old, new))
        }
        "indent" | "nindent" => {
            argc(&a, 2)?;
            let n = int(&a[0])?;
            let pad = " ".repeat(n.max(0) as usize);
            let s = string(a.get(1), name)?;
            let body = format!("{pad}{}", s.replace('\n', &format!("\n{pad}")));
            Value::str(if name == "nindent" {
                format!("\n{body}")
            } else {
                body
            })
        }
        "wrap" => {
            argc(&a, 2)?;
            Value::str(string(a.get(1), name)?)
        }
        "plural" => {
            argc(&a, 3)?;
            if int(&a[2])? == 1 {
                a[0].clone()
            } else {
                a[1].clone()
            }
        }
        "snakecase" => Value::str(case_words(string(a.first(), name)?, '_')),
        "kebabcase" => Value::str(case_words(string(a.first(), name)?, '-')),
        "camelcase" => Value::str(
            string(a.first(), name)?
                .split(['_', '-', ' '])
                .map(title)
                .collect::<String>(),
        ),
        "initials" => Value::str(
            string(a.first(), name)?
                .split_whitespace()
                .filter_map(|w| w.chars().next())
                .collect::<String>(),
        ),
        "split" => {
            argc(&a, 2)?;
            let sep = string(a.first(), name)?;
            let mut m = Map::new();
            for (i, p) in string(a.get(1), name)?.split(sep).enumerate() {
                m.insert(format!("_{i}"), Value::str(p));
            }
            Value::map(m)
        }
        "splitList" => {
            argc(&a, 2)?;
            let sep = string(a.first(), name)?;
            Value::list(string(a.get(1), name)?.split(sep).map(Value::str).collect())
        }
        "splitn" => {
            argc(&a, 3)?;
            let sep = string(a.first(), name)?;
            let n = int(&a[1])?.max(0) as usize;
            let mut m = Map::new();
            for (i, p) in string(a.get(2), name)?.splitn(n, sep).enumerate() {
                m.insert(format!("_{i}"), Value::str(p));
            }
            Value::map(m)
        }
        "join" => {
            argc(&a, 2)?;
            let sep = string(a.first(), name)?;
            Value::str(
                list_of(&a[1])?
                    .iter()
                    .filter(|v| !v.is_nil())
                    .map(strval)
                    .collect::<Vec<_>>()
                    .join(sep),
            )
        }
        // Sprig: numbers.
        "atoi" => Value::Int(string(a.first(), name)?.trim().parse().unwrap_or(0)),
        "int" | "int64" => Value::Int(to_int(arg0(&a))),
        "float64" => Value::Float(to_float(arg0(&a))),
        "add" => Value::Int(a.iter().map(to_int).sum()),
        "add1" => Value::Int(to_int(arg0(&a)) + 1),
        "sub" => {
            argc(&a, 2)?;
            Value::Int(to_int(&a[0]) - to_int(&a[1]))
        }
        "mul" => Value::Int(a.iter().map(to_int).product()),
        "div" => {
            argc(&a, 2)?;
            let d = to_int(&a[1]);
            if d == 0 {
                return Err("integer divide by zero".into());
            }
            Value::Int(to_int(&a[0]) / d)
        }
        "mod" => {
            argc(&a, 2)?;
            let d = to_int(&a[1]);
            if d == 0 {
                return Err("integer divide by zero".into());
            }
            Value::Int(to_int(&a[0]) % d)
        }
        "max" => Value::Int(a.iter().map(to_int).max().unwrap_or(0)),
        "min" => Value::Int(a.iter().map(to_int).min().unwrap_or(0)),
        "addf" => Value::Float(a.iter().map(to_float).sum()),
        "subf" => Value::Float(
            a.iter()
                .skip(1)
                .fold(to_float(arg0(&a)), |x, y| x - to_float(y)),
        ),
        "mulf" => Value::Float(a.iter().map(to_float).product()),
        "divf" => Value::Float(
            a.iter()
                .skip(1)
                .fold(to_float(arg0(&a)), |x, y| x / to_float(y)),
        ),
        "floor" => Value::Float(to_float(arg0(&a)).floor()),
        "ceil" => Value::Float(to_float(arg0(&a)).ceil()),
        "round" => {
            let p = a.get(1).map(to_int).unwrap_or(0);
            let m = 10f64.powi(p as i32);
            Value::Float((to_float(arg0(&a)) * m).round() / m)
        }
        _ => return Err(format!("function {name:?} not defined")),
    })
}

fn error_map(e: &str) -> Value {
    let mut m = Map::new();
    m.insert("Error".into(), Value::str(e));
    Value::map(m)
}

pub fn argc(a: &[Value], n: usize) -> Result<(), String> {
    if a.len() != n {
        return Err(format!("wrong number of args: want {n} got {}", a.len()));
    }
    Ok(())
}

pub fn arg0(a: &[Value]) -> &Value {
    a.first().unwrap_or(&Value::Nil)
}

/// A `string` parameter: Go rejects anything else.
pub fn string<'a>(v: Option<&'a Value>, f: &str) -> Result<&'a str, String> {
    match v {
        Some(Value::Str(s)) => Ok(s),
        Some(Value::Nil) | None => Err(format!("invalid value; expected string (in {f})")),
        Some(other) => Err(format!(
            "wrong type for value; expected string; got {}",
            other.type_name()
        )),
    }
}

/// An `int` parameter.
pub fn int(v: &Value) -> Result<i64, String> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Nil => Err("invalid value; expected int".into()),
        other => Err(format!(
            "wrong type for value; expected int; got {}",
            other.type_name()
        )),
    }
}

pub fn list_of(v: &Value) -> Result<Rc<Vec<Value>>, String> {
    match v {
        Value::List(l) => Ok(l.clone()),
        Value::Nil => Ok(Rc::new(Vec::new())),
        Value::Str(s) => Ok(Rc::new(vec![Value::Str(s.clone())])),
        other => Err(format!("cannot use {} as a list", other.type_name())),
    }
}

/// Sprig's `strval`.
pub fn strval(v: &Value) -> String {
    v.to_go_string()
}

/// Sprig's `toInt64` (cast.ToInt64: strings parse, floats truncate, bools are 0/1).
pub fn to_int(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        Value::Float(f) => *f as i64,
        Value::Bool(b) => i64::from(*b),
        Value::Str(s) => s
            .trim()
            .parse::<i64>()
            .ok()
            .or_else(|| s.trim().parse::<f64>().ok().map(|f| f as i64))
            .unwrap_or(0),
        _ => 0,
    }
}

pub fn to_float(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Str(s) => s.trim().parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_letter = false;
    for c in s.chars() {
        if !prev_letter {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_letter = c.is_alphanumeric() || c == '_' || c == '\'';
    }
    out
}

fn case_words(s: &str, sep: char) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in s.chars() {
        if c == '_' || c == '-' || c == ' ' {
            out.push(sep);
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower {
            out.push(sep);
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        out.extend(c.to_lowercase());
    }
    out
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::new();
    value::go_quoted(s, &mut out, |out, c| match c {
        c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
        c => out.push(c),
    });
    out
}

/// `fmt.Sprint`: spaces between operands when neither is a string.
pub fn go_sprint(a: &[Value]) -> String {
    let mut out = String::new();
    for (i, v) in a.iter().enumerate() {
        if i > 0 && !matches!(v, Value::Str(_)) && !matches!(a[i - 1], Value::Str(_)) {
            out.push(' ');
        }
        out.push_str(&v.to_go_string());
    }
    out
}

/// `fmt.Sprintf` for the verbs templates use (`%s %d %v %q %t %f %x %%`, widths, `-`/`0`).
pub fn printf(fmt: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut it = fmt.chars().peekable();
    let mut ai = 0;
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut flags = String::new();
        while let Some(&f) = it.peek() {
            if "-+ 0#".contains(f) {
                flags.push(f);
                it.next();
            } else {
                break;
            }
        }
        let mut width = String::new();
        while let Some(&d) = it.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            it.next();
        }
        let mut prec: Option<usize> = None;
        if it.peek() == Some(&'.') {
            it.next();
            let mut p = String::new();
            while let Some(&d) = it.peek().filter(|d| d.is_ascii_digit()) {
                p.push(d);
                it.next();
            }
            prec = Some(p.parse().unwrap_or(0));
        }
        let Some(verb) = it.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(v) = args.get(ai) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        ai += 1;
        let s = match (verb, v) {
            ('v' | 's', Value::Nil) if verb == 'v' => "<nil>".to_string(),
            ('s', Value::Nil) => "%!s(<nil>)".to_string(),
            ('s' | 'v', v) => {
                let s = v.to_go_string();
                match prec {
                    Some(p) if verb == 's' => s.chars().take(p).collect(),
                    _ => s,
                }
            }
            ('d', Value::Int(i)) => i.to_string(),
            ('d', Value::Float(f)) => format!("%!d(float64={})", value::format_float_g(*f)),
            ('q', Value::Str(s)) => go_quote(s),
            ('q', v) => go_quote(&v.to_go_string()),
            ('t', Value::Bool(b)) => b.to_string(),
            ('f' | 'F', v) => format!("{:.*}", prec.unwrap_or(6), to_float(v)),
            ('g', v) => value::format_float_g(to_float(v)),
            ('e', v) => format!("{:e}", to_float(v)),
            ('x', Value::Int(i)) => format!("{i:x}"),
            ('X', Value::Int(i)) => format!("{i:X}"),
            ('x', Value::Str(s)) => s.bytes().map(|b| format!("{b:02x}")).collect(),
            ('o', Value::Int(i)) => format!("{i:o}"),
            ('b', Value::Int(i)) => format!("{i:b}"),
            ('c', Value::Int(i)) => char::from_u32(*i as u32)
                .map(String::from)
                .unwrap_or_default(),
            ('T', v) => v.type_name().to_string(),
            (verb, v) => format!("%!{verb}({}={})", v.type_name(), v.to_go_string()),
        };
        let w: usize = width.parse().unwrap_or(0);
        let len = s.chars().count();
        if len < w {
            let pad = w - len;
            if flags.contains('-') {
                out.push_str(&s);
                out.push_str(&" ".repeat(pad));
            } else if flags.contains('0') && matches!(verb, 'd' | 'f' | 'x') {
                let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
                out.push_str(sign);
                out.push_str(&"0".repeat(pad));
                out.push_str(digits);
            } else {
                out.push_str(&" ".repeat(pad));
                out.push_str(&s);
            }
        } else {
            out.push_str(&s);
        }
    }
    if ai < args.len() {
        out.push_str("%!(EXTRA ");
        out.push_str(
            &args[ai..]
                .iter()
                .map(|v| format!("{}={}", v.type_name(), v.to_go_string()))
                .collect::<Vec<_>>()
                .join(", "),
        );
        out.push(')');
    }
    out
}

/// Go's `eq` for two operands: same basic kind, or an error for incomparable kinds.
pub fn go_eq(a: &Value, b: &Value) -> Result<bool, String> {
    Ok(match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Nil, _) | (_, Value::Nil) => false,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::List(_) | Value::Map(_), _) | (_, Value::List(_) | Value::Map(_)) => {
            return Err("non-comparable type".into());
        }
        _ => return Err("incompatible types for comparison".into()),
    })
}

fn go_cmp(a: &Value, b: &Value) -> Result<std::cmp::Ordering, String> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Ok(x.cmp(y)),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y).ok_or_else(|| "NaN".to_string()),
        (Value::Str(x), Value::Str(y)) => Ok(x.cmp(y)),
        (Value::Nil, _) | (_, Value::Nil) => Err("invalid type for comparison".into()),
        _ => Err("incompatible types for comparison".into()),
    }
}

fn index(a: &[Value]) -> F {
    let mut v = arg0(a).clone();
    for k in &a[1.min(a.len())..] {
        v = match (&v, k) {
            (Value::Map(m), Value::Str(s)) => m.borrow().get(&**s).cloned().unwrap_or_default(),
            (Value::Map(_), other) => {
                return Err(format!(
                    "value has type {}; should be string",
                    other.type_name()
                ));
            }
            (Value::List(l), Value::Int(i)) => l
                .get(usize::try_from(*i).map_err(|_| format!("index out of range: {i}"))?)
                .cloned()
                .ok_or_else(|| format!("index out of range: {i}"))?,
            (Value::List(_), other) => {
                return Err(format!(
                    "cannot index slice/array with type {}",
                    other.type_name()
                ));
            }
            (Value::Nil, _) => return Err("index of untyped nil".into()),
            (other, _) => return Err(format!("can't index item of type {}", other.type_name())),
        };
    }
    Ok(v)
}

fn slice(a: &[Value]) -> F {
    let idx: Vec<usize> = a[1.min(a.len())..]
        .iter()
        .map(|v| to_int(v).max(0) as usize)
        .collect();
    match arg0(a) {
        Value::Str(s) => {
            let start = idx.first().copied().unwrap_or(0);
            let end = idx.get(1).copied().unwrap_or(s.len());
            s.get(start..end)
                .map(Value::str)
                .ok_or_else(|| "slice index out of range".to_string())
        }
        Value::List(l) => {
            let start = idx.first().copied().unwrap_or(0);
            let end = idx.get(1).copied().unwrap_or(l.len());
            l.get(start..end)
                .map(|s| Value::list(s.to_vec()))
                .ok_or_else(|| "slice index out of range".to_string())
        }
        other => Err(format!("can't slice item of type {}", other.type_name())),
    }
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// `.Files.Get`, `.Files.GetBytes`, `.Files.Glob`, `.Files.AsConfig`, `.Files.AsSecrets`,
/// `.Files.Lines`.
pub fn files_method(files: &Rc<Files>, method: &str, a: &[Value]) -> F {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    Ok(match method {
        "Get" => {
            let p = string(a.first(), "Files.Get")?;
            Value::str(files.0.get(p).map(|b| text(b)).unwrap_or_default())
        }
        "GetBytes" => {
            let p = string(a.first(), "Files.GetBytes")?;
            Value::str(files.0.get(p).map(|b| text(b)).unwrap_or_default())
        }
        "Lines" => {
            let p = string(a.first(), "Files.Lines")?;
            let t = files.0.get(p).map(|b| text(b)).unwrap_or_default();
            Value::list(t.split('\n').map(Value::str).collect())
        }
        "Glob" => {
            let pat = string(a.first(), "Files.Glob")?;
            let m = files
                .0
                .iter()
                .filter(|(k, _)| glob_match(pat, k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            Value::Files(Rc::new(Files(m)))
        }
        "AsConfig" | "AsSecrets" => {
            let mut m = Map::new();
            for (k, v) in &files.0 {
                let base = k.rsplit('/').next().unwrap_or(k).to_string();
                let s = if method == "AsSecrets" {
                    sprig::b64(v)
                } else {
                    text(v)
                };
                m.insert(base, Value::str(s));
            }
            if m.is_empty() {
                Value::str("")
            } else {
                Value::str(value::to_yaml(&Value::map(m)))
            }
        }
        other => return Err(format!("can't evaluate field {other} in type chart.Files")),
    })
}

/// Glob matching as `github.com/gobwas/glob` with `/` as separator: `*` within a path
/// segment, `**` across segments, `?`, `[...]`, `{a,b}`.
pub fn glob_match(pat: &str, s: &str) -> bool {
    fn m(p: &[char], s: &[char]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some('*') if p.get(1) == Some(&'*') => (0..=s.len()).any(|i| m(&p[2..], &s[i..])),
            Some('*') => {
                for i in 0..=s.len() {
                    if m(&p[1..], &s[i..]) {
                        return true;
                    }
                    if i < s.len() && s[i] == '/' {
                        return false;
                    }
                }
                false
            }
            Some('?') => !s.is_empty() && s[0] != '/' && m(&p[1..], &s[1..]),
            Some('[') => {
                let Some(close) = p.iter().position(|c| *c == ']') else {
                    return false;
                };
                let Some(&c) = s.first() else { return false };
                let class = &p[1..close];
                let (neg, class) = match class.first() {
                    Some('!') | Some('^') => (true, &class[1..]),
                    _ => (false, class),
                };
                let mut hit = false;
                let mut i = 0;
                while i < class.len() {
                    if i + 2 < class.len() && class[i + 1] == '-' {
                        hit |= class[i] <= c && c <= class[i + 2];
                        i += 3;
                    } else {
                        hit |= class[i] == c;
                        i += 1;
                    }
                }
                hit != neg && m(&p[close + 1..], &s[1..])
            }
            Some('{') => {
                let Some(close) = p.iter().position(|c| *c == '}') else {
                    return false;
                };
                let inner: String = p[1..close].iter().collect();
                inner.split(',').any(|alt| {
                    let mut q: Vec<char> = alt.chars().collect();
                    q.extend_from_slice(&p[close + 1..]);
                    m(&q, s)
                })
            }
            Some('\\') if p.len() > 1 => !s.is_empty() && s[0] == p[1] && m(&p[2..], &s[1..]),
            Some(c) => !s.is_empty() && s[0] == *c && m(&p[1..], &s[1..]),
        }
    }
    let p: Vec<char> = pat.chars().collect();
    let s: Vec<char> = s.chars().collect();
    m(&p, &s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printf_and_glob() {
        assert_eq!(
            printf(
                "%s-%d %v %q",
                &[
                    Value::str("a"),
                    Value::Int(3),
                    Value::Float(2.0),
                    Value::str("x")
                ]
            ),
            "a-3 2 \"x\""
        );
        assert!(glob_match("files/*.conf", "files/a.conf"));
        assert!(!glob_match("files/*.conf", "files/x/a.conf"));
        assert!(glob_match("files/**.conf", "files/x/a.conf"));
        assert!(glob_match("{a,b}/*", "b/c"));
    }
}
