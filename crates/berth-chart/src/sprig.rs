//! Sprig's collection, version, regular-expression and encoding functions.

use std::rc::Rc;

use base64::Engine as _;
use sha2::Digest as _;

use crate::funcs::{F, arg0, argc, int, list_of, string, strval, to_int};
use crate::value::{Map, Value};

/// `None` when `name` is not one of these.
pub fn call(name: &str, a: &[Value]) -> Option<F> {
    Some(match name {
        "dict" => dict(a),
        "list" | "tuple" => Ok(Value::list(a.to_vec())),
        "set" => set(a),
        "unset" => unset(a),
        "hasKey" => has_key(a),
        "get" => get(a),
        "keys" => keys(a),
        "values" => values(a),
        "pluck" => pluck(a),
        "pick" | "omit" => pick_omit(name == "pick", a),
        "merge" | "mustMerge" => merge(a, false),
        "mergeOverwrite" | "mustMergeOverwrite" => merge(a, true),
        "deepCopy" | "mustDeepCopy" => Ok(arg0(a).deep_copy()),
        "dig" => dig(a),
        "append" | "push" | "mustAppend" | "mustPush" => list2(a, |l, v| {
            let mut l = l.to_vec();
            l.push(v.clone());
            l
        }),
        "prepend" | "mustPrepend" => list2(a, |l, v| {
            let mut out = vec![v.clone()];
            out.extend(l.iter().cloned());
            out
        }),
        "first" | "mustFirst" => list1(a, |l| l.first().cloned().unwrap_or_default()),
        "last" | "mustLast" => list1(a, |l| l.last().cloned().unwrap_or_default()),
        "rest" | "mustRest" => list1(a, |l| Value::list(l.iter().skip(1).cloned().collect())),
        "initial" | "mustInitial" => {
            list1(a, |l| Value::list(l[..l.len().saturating_sub(1)].to_vec()))
        }
        "reverse" | "mustReverse" => list1(a, |l| Value::list(l.iter().rev().cloned().collect())),
        "uniq" | "mustUniq" => list1(a, |l| {
            let mut out: Vec<Value> = Vec::new();
            for v in l {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
            Value::list(out)
        }),
        "compact" | "mustCompact" => list1(a, |l| {
            Value::list(l.iter().filter(|v| v.truthy()).cloned().collect())
        }),
        "sortAlpha" => list1(a, |l| {
            let mut s: Vec<String> = l.iter().map(strval).collect();
            s.sort();
            Value::list(s.into_iter().map(Value::str).collect())
        }),
        "has" | "mustHas" => (|| {
            argc(a, 2)?;
            Ok(Value::Bool(list_of(&a[1])?.contains(&a[0])))
        })(),
        "without" | "mustWithout" => (|| {
            let l = list_of(arg0(a))?;
            Ok(Value::list(
                l.iter().filter(|v| !a[1..].contains(v)).cloned().collect(),
            ))
        })(),
        "concat" => (|| {
            let mut out = Vec::new();
            for l in a {
                out.extend(list_of(l)?.iter().cloned());
            }
            Ok(Value::list(out))
        })(),
        "toStrings" => list1(a, |l| {
            Value::list(l.iter().map(|v| Value::str(strval(v))).collect())
        }),
        "until" => Ok(Value::list((0..to_int(arg0(a))).map(Value::Int).collect())),
        "untilStep" => (|| {
            argc(a, 3)?;
            let (start, stop, step) = (to_int(&a[0]), to_int(&a[1]), to_int(&a[2]));
            let mut out = Vec::new();
            let mut i = start;
            while step != 0 && ((step > 0 && i < stop) || (step < 0 && i > stop)) {
                out.push(Value::Int(i));
                i += step;
            }
            Ok(Value::list(out))
        })(),
        "seq" => seq(a),
        "b64enc" => Ok(Value::str(b64(strval(arg0(a)).as_bytes()))),
        "b64dec" => (|| {
            let s = string(a.first(), name)?;
            let b = base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|e| e.to_string())?;
            Ok(Value::str(String::from_utf8_lossy(&b)))
        })(),
        "sha256sum" => Ok(Value::str(hex(&sha2::Sha256::digest(
            strval(arg0(a)).as_bytes(),
        )))),
        "adler32sum" => Ok(Value::str(adler32(strval(arg0(a)).as_bytes()).to_string())),
        "htpasswd" => (|| {
            argc(a, 2)?;
            let user = string(a.first(), name)?;
            let pass = string(a.get(1), name)?;
            if user.contains(':') {
                return Ok(Value::str("invalid username: :"));
            }
            // As Go's bcrypt writes it: `$2a$`, cost 10.
            let h = bcrypt::hash_with_result(pass, 10)
                .map_err(|e| e.to_string())?
                .format_for_version(bcrypt::Version::TwoA);
            Ok(Value::str(format!("{user}:{h}")))
        })(),
        "randAlphaNum" | "randAlpha" | "randNumeric" | "randAscii" => (|| {
            let n = int(arg0(a))?.max(0) as usize;
            let set: &[u8] = match name {
                "randAlpha" => b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
                "randNumeric" => b"0123456789",
                _ => b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
            };
            Ok(Value::str(
                (0..n)
                    .map(|_| set[fastrand::usize(..set.len())] as char)
                    .collect::<String>(),
            ))
        })(),
        "uuidv4" => Ok(Value::str(uuid4())),
        "regexMatch" | "mustRegexMatch" => re2(a, name, |re, s| Value::Bool(re.is_match(s))),
        "regexFind" | "mustRegexFind" => re2(a, name, |re, s| {
            Value::str(re.find(s).map(|m| m.as_str()).unwrap_or_default())
        }),
        "regexFindAll" | "mustRegexFindAll" => (|| {
            argc(a, 3)?;
            let re = regex(string(a.first(), name)?)?;
            let s = string(a.get(1), name)?;
            let n = int(&a[2])?;
            let it = re.find_iter(s).map(|m| Value::str(m.as_str()));
            Ok(Value::list(if n < 0 {
                it.collect()
            } else {
                it.take(n as usize).collect()
            }))
        })(),
        "regexReplaceAll" | "mustRegexReplaceAll" => (|| {
            argc(a, 3)?;
            let re = regex(string(a.first(), name)?)?;
            let repl = string(a.get(2), name)?;
            Ok(Value::str(re.replace_all(string(a.get(1), name)?, repl)))
        })(),
        "regexReplaceAllLiteral" | "mustRegexReplaceAllLiteral" => (|| {
            argc(a, 3)?;
            let re = regex(string(a.first(), name)?)?;
            let repl = string(a.get(2), name)?;
            Ok(Value::str(re.replace_all(
                string(a.get(1), name)?,
                regex::NoExpand(repl),
            )))
        })(),
        "regexSplit" | "mustRegexSplit" => (|| {
            argc(a, 3)?;
            let re = regex(string(a.first(), name)?)?;
            let s = string(a.get(1), name)?;
            let n = int(&a[2])?;
            let parts: Vec<Value> = if n < 0 {
                re.split(s).map(Value::str).collect()
            } else {
                re.splitn(s, n as usize).map(Value::str).collect()
            };
            Ok(Value::list(parts))
        })(),
        "semverCompare" => (|| {
            argc(a, 2)?;
            let c = string(a.first(), name)?;
            let v = string(a.get(1), name)?;
            let v = Version::parse(v).ok_or_else(|| format!("Invalid Semantic Version: {v:?}"))?;
            Ok(Value::Bool(constraint_matches(c, &v)?))
        })(),
        "semver" => (|| {
            let s = string(a.first(), name)?;
            let v = Version::parse(s).ok_or_else(|| format!("Invalid Semantic Version: {s:?}"))?;
            let mut m = Map::new();
            m.insert("Major".into(), Value::Int(v.major as i64));
            m.insert("Minor".into(), Value::Int(v.minor as i64));
            m.insert("Patch".into(), Value::Int(v.patch as i64));
            m.insert("Prerelease".into(), Value::str(&v.pre));
            m.insert("Original".into(), Value::str(s));
            Ok(Value::map(m))
        })(),
        "base" => path_fn(a, name, |p| p.rsplit('/').next().unwrap_or(p).to_string()),
        "dir" => path_fn(a, name, |p| match p.rfind('/') {
            Some(0) => "/".into(),
            Some(i) => p[..i].to_string(),
            None => ".".into(),
        }),
        "ext" => path_fn(a, name, |p| {
            let b = p.rsplit('/').next().unwrap_or(p);
            b.rfind('.').map(|i| b[i..].to_string()).unwrap_or_default()
        }),
        "clean" => path_fn(a, name, |p| {
            let abs = p.starts_with('/');
            let mut parts: Vec<&str> = Vec::new();
            for c in p.split('/') {
                match c {
                    "" | "." => {}
                    ".." if parts.last().is_some_and(|l| *l != "..") => {
                        parts.pop();
                    }
                    ".." if abs => {}
                    c => parts.push(c),
                }
            }
            let j = parts.join("/");
            match (abs, j.is_empty()) {
                (true, _) => format!("/{j}"),
                (false, true) => ".".into(),
                (false, false) => j,
            }
        }),
        "now" => Ok(Value::str("2026-01-01 00:00:00 +0000 UTC")),
        "date" | "dateInZone" | "htmlDate" => Ok(Value::str("2026-01-01")),
        "derivePassword" | "encryptAES" | "decryptAES" | "sha1sum" | "bcrypt" | "getHostByName" => {
            Err(format!("{name} is not supported by Berth's renderer"))
        }
        "env" | "expandenv" => Err(format!("function {name:?} not defined")),
        _ => return None,
    })
}

pub fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn adler32(b: &[u8]) -> u32 {
    let (mut a, mut s) = (1u32, 0u32);
    for &x in b {
        a = (a + u32::from(x)) % 65521;
        s = (s + a) % 65521;
    }
    (s << 16) | a
}

fn uuid4() -> String {
    let mut b: [u8; 16] = std::array::from_fn(|_| fastrand::u8(..));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn path_fn(a: &[Value], name: &str, f: impl Fn(&str) -> String) -> F {
    Ok(Value::str(f(string(a.first(), name)?)))
}

/// A compiled pattern, cached per thread (charts call the same few in loops).
fn regex(p: &str) -> Result<regex::Regex, String> {
    thread_local! {
        static CACHE: std::cell::RefCell<std::collections::HashMap<String, regex::Regex>> =
            Default::default();
    }
    if let Some(re) = CACHE.with(|c| c.borrow().get(p).cloned()) {
        return Ok(re);
    }
    let re = regex::Regex::new(p).map_err(|e| e.to_string())?;
    CACHE.with(|c| c.borrow_mut().insert(p.to_string(), re.clone()));
    Ok(re)
}

fn re2(a: &[Value], name: &str, f: impl Fn(&regex::Regex, &str) -> Value) -> F {
    argc(a, 2)?;
    let re = regex(string(a.first(), name)?)?;
    Ok(f(&re, string(a.get(1), name)?))
}

fn list1(a: &[Value], f: impl Fn(&[Value]) -> Value) -> F {
    Ok(f(&list_of(arg0(a))?))
}

fn list2(a: &[Value], f: impl Fn(&[Value], &Value) -> Vec<Value>) -> F {
    argc(a, 2)?;
    Ok(Value::list(f(&list_of(&a[0])?, &a[1])))
}

fn map_arg(v: &Value, f: &str) -> Result<Rc<std::cell::RefCell<Map>>, String> {
    match v {
        Value::Map(m) => Ok(m.clone()),
        other => Err(format!(
            "{f}: wrong type for value; expected map[string]interface {{}}; got {}",
            other.type_name()
        )),
    }
}

fn dict(a: &[Value]) -> F {
    let mut m = Map::new();
    for pair in a.chunks(2) {
        let k = strval(&pair[0]);
        m.insert(k, pair.get(1).cloned().unwrap_or_default());
    }
    Ok(Value::map(m))
}

fn set(a: &[Value]) -> F {
    argc(a, 3)?;
    let m = map_arg(&a[0], "set")?;
    m.borrow_mut()
        .insert(string(a.get(1), "set")?.to_string(), a[2].clone());
    Ok(a[0].clone())
}

fn unset(a: &[Value]) -> F {
    argc(a, 2)?;
    let m = map_arg(&a[0], "unset")?;
    m.borrow_mut().remove(string(a.get(1), "unset")?);
    Ok(a[0].clone())
}

fn has_key(a: &[Value]) -> F {
    argc(a, 2)?;
    let m = map_arg(&a[0], "hasKey")?;
    Ok(Value::Bool(
        m.borrow().contains_key(string(a.get(1), "hasKey")?),
    ))
}

fn get(a: &[Value]) -> F {
    argc(a, 2)?;
    let m = map_arg(&a[0], "get")?;
    let v = m.borrow().get(string(a.get(1), "get")?).cloned();
    Ok(v.unwrap_or_else(|| Value::str("")))
}

fn keys(a: &[Value]) -> F {
    let mut out = Vec::new();
    for v in a {
        out.extend(map_arg(v, "keys")?.borrow().keys().map(Value::str));
    }
    Ok(Value::list(out))
}

fn values(a: &[Value]) -> F {
    let m = map_arg(arg0(a), "values")?;
    Ok(Value::list(m.borrow().values().cloned().collect()))
}

fn pluck(a: &[Value]) -> F {
    let key = string(a.first(), "pluck")?;
    let mut out = Vec::new();
    for v in &a[1..] {
        if let Some(x) = map_arg(v, "pluck")?.borrow().get(key) {
            out.push(x.clone());
        }
    }
    Ok(Value::list(out))
}

fn pick_omit(pick: bool, a: &[Value]) -> F {
    let m = map_arg(arg0(a), if pick { "pick" } else { "omit" })?;
    let names: Vec<String> = a[1..].iter().map(strval).collect();
    let out: Map = m
        .borrow()
        .iter()
        .filter(|(k, _)| names.contains(k) == pick)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(Value::map(out))
}

/// `merge` (the destination keeps its values) and `mergeOverwrite` (sources win), deep
/// for maps, into the first argument (mergo's semantics).
fn merge(a: &[Value], overwrite: bool) -> F {
    let dst = map_arg(arg0(a), "merge")?;
    for src in &a[1..] {
        let src = map_arg(src, "merge")?;
        if Rc::ptr_eq(&dst, &src) {
            continue;
        }
        let src = src.borrow().clone();
        merge_into(&dst, &src, overwrite);
    }
    Ok(arg0(a).clone())
}

fn merge_into(dst: &Rc<std::cell::RefCell<Map>>, src: &Map, overwrite: bool) {
    for (k, v) in src {
        let existing = dst.borrow().get(k).cloned();
        match (existing, v) {
            (Some(Value::Map(d)), Value::Map(s)) => {
                if !Rc::ptr_eq(&d, s) {
                    let s = s.borrow().clone();
                    merge_into(&d, &s, overwrite);
                }
            }
            (Some(d), v) => {
                // mergo: an empty (zero) destination value is filled; with overwrite a
                // non-empty source value replaces it.
                if !d.truthy() || (overwrite && v.truthy()) {
                    dst.borrow_mut().insert(k.clone(), v.clone());
                }
            }
            (None, v) => {
                dst.borrow_mut().insert(k.clone(), v.clone());
            }
        }
    }
}

fn dig(a: &[Value]) -> F {
    if a.len() < 3 {
        return Err("dig needs at least three arguments".into());
    }
    let n = a.len();
    let default = a[n - 2].clone();
    let mut cur = a[n - 1].clone();
    for k in &a[..n - 2] {
        let k = string(Some(k), "dig")?;
        cur = match cur.get(k) {
            Some(v) => v,
            None => return Ok(default),
        };
    }
    Ok(cur)
}

fn seq(a: &[Value]) -> F {
    let n: Vec<i64> = a.iter().map(to_int).collect();
    let (start, step, end) = match n.as_slice() {
        [e] => (1, 1, *e),
        [s, e] => (*s, if s <= e { 1 } else { -1 }, *e),
        [s, st, e] => (*s, *st, *e),
        _ => return Err("seq takes one to three arguments".into()),
    };
    let mut out = Vec::new();
    let mut i = start;
    while step != 0 && ((step > 0 && i <= end) || (step < 0 && i >= end)) {
        out.push(i.to_string());
        i += step;
    }
    Ok(Value::str(out.join(" ")))
}

/// A version as Masterminds/semver reads it (`v` prefix, missing minor/patch, prerelease).
#[derive(Debug, Clone, PartialEq)]
struct Version {
    major: u64,
    minor: u64,
    patch: u64,
    pre: String,
}

impl Version {
    fn parse(s: &str) -> Option<Version> {
        let s = s.trim().trim_start_matches(['v', 'V']);
        let s = s.split('+').next()?;
        let (core, pre) = match s.split_once('-') {
            Some((c, p)) => (c, p.to_string()),
            None => (s, String::new()),
        };
        let mut it = core.split('.');
        let major = it.next()?.parse().ok()?;
        let minor = it.next().map_or(Some(0), |x| x.parse().ok())?;
        let patch = it.next().map_or(Some(0), |x| x.parse().ok())?;
        if it.next().is_some() {
            return None;
        }
        Some(Version {
            major,
            minor,
            patch,
            pre,
        })
    }
    fn cmp(&self, o: &Version) -> std::cmp::Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(o.major, o.minor, o.patch))
            .then_with(|| match (self.pre.is_empty(), o.pre.is_empty()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                (false, false) => cmp_pre(&self.pre, &o.pre),
            })
    }
}

fn cmp_pre(a: &str, b: &str) -> std::cmp::Ordering {
    let mut ai = a.split('.');
    let mut bi = b.split('.');
    loop {
        match (ai.next(), bi.next()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y)) => {
                let o = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(p), Ok(q)) => p.cmp(&q),
                    (Ok(_), Err(_)) => std::cmp::Ordering::Less,
                    (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
                    _ => x.cmp(y),
                };
                if o.is_ne() {
                    return o;
                }
            }
        }
    }
}

/// Masterminds/semver v3 constraints: `||` of comma/space-separated ANDs of `=`, `!=`, `>`,
/// `<`, `>=`, `<=`, `~`, `^`, x-ranges and hyphen ranges. A prerelease version only matches
/// a constraint whose own version has a prerelease.
fn constraint_matches(c: &str, v: &Version) -> Result<bool, String> {
    for alt in c.split("||") {
        let alt = alt.trim();
        let mut ok = true;
        let terms = split_terms(alt);
        for t in &terms {
            if !term_matches(t, v)? {
                ok = false;
                break;
            }
        }
        if ok {
            return Ok(true);
        }
    }
    Ok(false)
}

fn split_terms(s: &str) -> Vec<String> {
    // Hyphen ranges: "1.2 - 1.4".
    if let Some((lo, hi)) = s.split_once(" - ") {
        return vec![format!(">={}", lo.trim()), format!("<={}", hi.trim())];
    }
    let mut out = Vec::new();
    for part in s.split(',') {
        let mut cur = String::new();
        for tok in part.split_whitespace() {
            if !cur.is_empty()
                && tok.starts_with(|c: char| c.is_ascii_digit() || c == 'v' || c == 'x' || c == '*')
                && cur.chars().all(|c| "<>=!~^".contains(c))
            {
                cur.push_str(tok);
                out.push(std::mem::take(&mut cur));
            } else {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                cur = tok.to_string();
                if cur.chars().any(|c| c.is_ascii_alphanumeric() || c == '*') {
                    out.push(std::mem::take(&mut cur));
                }
            }
        }
        if !cur.is_empty() {
            out.push(cur);
        }
    }
    out
}

fn term_matches(t: &str, v: &Version) -> Result<bool, String> {
    let op_len = t.chars().take_while(|c| "<>=!~^".contains(*c)).count();
    let (op, ver) = t.split_at(op_len);
    let ver = ver.trim().trim_start_matches(['v', 'V']);
    if ver.is_empty() || ver == "*" || ver == "x" || ver == "X" {
        return Ok(v.pre.is_empty() || op == "!=");
    }
    let wild = |x: &str| x == "x" || x == "X" || x == "*";
    let core = ver.split(['-', '+']).next().unwrap_or(ver);
    let parts: Vec<&str> = core.split('.').collect();
    let given = parts.iter().take_while(|p| !wild(p)).count();
    let norm: Vec<String> = (0..3)
        .map(|i| {
            parts
                .get(i)
                .filter(|p| !wild(p))
                .map_or("0".to_string(), |p| p.to_string())
        })
        .collect();
    let pre = ver.strip_prefix(core).unwrap_or("");
    let cv = Version::parse(&format!("{}{}", norm.join("."), pre))
        .ok_or_else(|| format!("improper constraint: {t}"))?;
    if !v.pre.is_empty() && cv.pre.is_empty() {
        return Ok(false);
    }
    let o = v.cmp(&cv);
    let bump = |n: usize| -> Version {
        let mut u = cv.clone();
        u.pre = String::new();
        match n {
            0 => (u.major, u.minor, u.patch) = (u.major + 1, 0, 0),
            1 => (u.minor, u.patch) = (u.minor + 1, 0),
            _ => u.patch += 1,
        }
        u
    };
    let below = |u: Version| v.cmp(&u).is_lt();
    Ok(match op {
        "" | "=" | "==" => {
            if given < 3 {
                o.is_ge() && below(bump(given.saturating_sub(1)))
            } else {
                o.is_eq()
            }
        }
        "!=" => {
            if given < 3 {
                !(o.is_ge() && below(bump(given.saturating_sub(1))))
            } else {
                o.is_ne()
            }
        }
        ">" => {
            if given < 3 {
                !below(bump(given.saturating_sub(1)))
            } else {
                o.is_gt()
            }
        }
        ">=" | "=>" => o.is_ge(),
        "<" => o.is_lt(),
        "<=" | "=<" => {
            if given < 3 {
                below(bump(given.saturating_sub(1)))
            } else {
                o.is_le()
            }
        }
        "~" | "~>" => o.is_ge() && below(bump(if given <= 1 { 0 } else { 1 })),
        "^" => {
            let n = if cv.major > 0 || given == 1 {
                0
            } else if cv.minor > 0 || given == 2 {
                1
            } else {
                2
            };
            o.is_ge() && below(bump(n))
        }
        other => return Err(format!("improper constraint operator {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(con: &str, v: &str) -> bool {
        constraint_matches(con, &Version::parse(v).unwrap()).unwrap()
    }

    #[test]
    fn semver_constraints() {
        assert!(c(">=1.21-0", "v1.34.0"));
        assert!(c(">= 1.19", "1.34.0"));
        assert!(!c("<1.19-0", "v1.34.0"));
        assert!(c("^1.2.3", "1.9.0"));
        assert!(!c("^1.2.3", "2.0.0"));
        assert!(c("~1.2", "1.2.9"));
        assert!(c("1.2.x", "1.2.5"));
        assert!(c(">=1.25.0-0, <1.35.0-0", "1.34.0"));
        assert!(c("<1.20 || >=1.30", "1.34.0"));
        assert!(!c(">=1.21", "1.34.0-rc.1"));
    }
}
