//! Values as Helm coalesces them: user values over chart defaults (maps merge, lists and
//! scalars replace, `null` deletes), a parent's `<subchart>:` values over the subchart's,
//! the parent's `global` copied down; dependencies enabled by `condition` and `tags`.

use std::rc::Rc;

use crate::value::{Map, Value};

fn as_map(v: &Value) -> Option<Rc<std::cell::RefCell<Map>>> {
    match v {
        Value::Map(m) => Some(m.clone()),
        _ => None,
    }
}

/// Merges `src` into `dst`, `src` winning (`-f a.yaml -f b.yaml`, `--set`).
pub fn merge_user(dst: &Value, src: &Value) {
    let (Some(d), Some(s)) = (as_map(dst), as_map(src)) else {
        return;
    };
    for (k, v) in s.borrow().iter() {
        let existing = d.borrow().get(k).cloned();
        match (existing, v) {
            (Some(Value::Map(dm)), Value::Map(_)) => merge_user(&Value::Map(dm), v),
            _ => {
                d.borrow_mut().insert(k.clone(), v.clone());
            }
        }
    }
}

/// A chart default as Helm copies it into the values: `null`s in maps are left out (a
/// `null` in a list stays).
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Map(m) => Value::map(
            m.borrow()
                .iter()
                .filter(|(_, x)| !x.is_nil())
                .map(|(k, x)| (k.clone(), without_nulls(x)))
                .collect(),
        ),
        Value::List(l) => Value::list(l.iter().map(Value::deep_copy).collect()),
        v => v.clone(),
    }
}

/// Helm's `coalesceTablesFullKey`: `dst` has precedence; `src` fills in.
pub fn coalesce_tables(dst: &Rc<std::cell::RefCell<Map>>, src: &Map, merge: bool) {
    for (k, sv) in src {
        let dv = dst.borrow().get(k).cloned();
        match dv {
            Some(Value::Nil) if !merge => {
                dst.borrow_mut().remove(k);
            }
            // Merging (a parent's table for a subchart) keeps `null`s: they delete the
            // subchart's defaults later.
            None if merge => {
                dst.borrow_mut().insert(k.clone(), sv.deep_copy());
            }
            None if sv.is_nil() => {}
            None => {
                dst.borrow_mut().insert(k.clone(), without_nulls(sv));
            }
            Some(Value::Map(dm)) => {
                if let Value::Map(sm) = sv {
                    let sm = sm.borrow().clone();
                    coalesce_tables(&dm, &sm, merge);
                }
            }
            Some(_) => {}
        }
    }
}

/// A chart's own defaults and its subcharts, as the coalescing walks them.
pub struct Node<'a> {
    pub name: &'a str,
    pub defaults: Value,
    pub children: Vec<Node<'a>>,
}

/// Helm's `coalesce(chart, dest)`: the chart's defaults under `dest`, then each subchart.
pub fn coalesce(node: &Node, dest: &Value) -> Result<(), String> {
    let d = as_map(dest).ok_or("values are not a map")?;
    if let Some(defaults) = as_map(&node.defaults) {
        for (k, sv) in defaults.borrow().iter() {
            let dv = d.borrow().get(k).cloned();
            match dv {
                Some(Value::Nil) => {
                    d.borrow_mut().remove(k);
                }
                Some(Value::Map(dm)) => {
                    if let Value::Map(sm) = sv {
                        let merge = node.children.iter().any(|c| c.name == k);
                        let sm = sm.borrow().clone();
                        coalesce_tables(&dm, &sm, merge);
                    }
                }
                Some(_) => {}
                // A default the values do not have is copied without its `null`s (even a
                // parent's table for a subchart: as Helm v4 does).
                None if sv.is_nil() => {}
                None => {
                    d.borrow_mut().insert(k.clone(), without_nulls(sv));
                }
            }
        }
    }
    for child in &node.children {
        let sub = d.borrow().get(child.name).cloned();
        let sub = match sub {
            None | Some(Value::Nil) => {
                let m = Value::map(Map::new());
                d.borrow_mut().insert(child.name.to_string(), m.clone());
                m
            }
            Some(v @ Value::Map(_)) => v,
            Some(other) => {
                return Err(format!(
                    "type mismatch on {}: {}",
                    child.name,
                    other.type_name()
                ));
            }
        };
        coalesce_globals(&sub, dest);
        coalesce(child, &sub)?;
    }
    Ok(())
}

/// The parent's `global` copied into a subchart's values (the parent wins).
fn coalesce_globals(dest: &Value, src: &Value) {
    let (Some(d), Some(s)) = (as_map(dest), as_map(src)) else {
        return;
    };
    let sg = match s.borrow().get("global") {
        Some(Value::Map(m)) => m.borrow().clone(),
        _ => Map::new(),
    };
    let dg = match d.borrow().get("global") {
        Some(Value::Map(m)) => m.borrow().clone(),
        _ => Map::new(),
    };
    let mut dg = dg;
    for (k, v) in sg {
        match (&v, dg.get(&k).cloned()) {
            (Value::Map(_), Some(Value::Map(dv))) => {
                let vv = v.deep_copy();
                if let Value::Map(vm) = &vv {
                    let dvm = dv.borrow().clone();
                    coalesce_tables(vm, &dvm, true);
                }
                dg.insert(k, vv);
            }
            (Value::Map(_), Some(_)) => {}
            (Value::Map(_), None) => {
                dg.insert(k, v.deep_copy());
            }
            (_, Some(Value::Map(_))) => {}
            _ => {
                dg.insert(k, v);
            }
        }
    }
    d.borrow_mut().insert("global".into(), Value::map(dg));
}

/// A dotted path (`a.b.c`) in values.
pub fn path_get(v: &Value, path: &str) -> Option<Value> {
    let mut cur = v.clone();
    for p in path.split('.') {
        cur = cur.get(p)?;
    }
    Some(cur)
}

/// Parses `--set` text: `a.b=c,d[0]=e` (ints, bools and `null` typed, the rest strings).
pub fn parse_set(text: &str) -> Result<Value, String> {
    let root = Value::map(Map::new());
    for part in split_unescaped(text, ',') {
        let (key, val) = part
            .split_once('=')
            .ok_or_else(|| format!("key {part:?} has no value (want KEY=VALUE)"))?;
        let val = val.replace("\\,", ",");
        let typed = match val.as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            "null" => Value::Nil,
            s => match s.parse::<i64>() {
                Ok(i) if !(s.len() > 1 && s.starts_with('0')) => Value::Int(i),
                _ => Value::str(s),
            },
        };
        set_path(&root, key, typed)?;
    }
    Ok(root)
}

fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut prev = ' ';
    for c in s.chars() {
        if c == sep && prev != '\\' {
            out.push(String::new());
        } else {
            out.last_mut().unwrap().push(c);
        }
        prev = c;
    }
    out.into_iter().filter(|p| !p.is_empty()).collect()
}

fn set_path(root: &Value, key: &str, val: Value) -> Result<(), String> {
    let parts: Vec<String> = split_unescaped(key, '.')
        .into_iter()
        .map(|p| p.replace("\\.", "."))
        .collect();
    let mut cur = root.clone();
    for (i, p) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let (name, idx) = match p.split_once('[') {
            Some((n, rest)) => {
                let ix: usize = rest
                    .trim_end_matches(']')
                    .parse()
                    .map_err(|_| format!("bad index in {key:?}"))?;
                (n.to_string(), Some(ix))
            }
            None => (p.clone(), None),
        };
        let m = as_map(&cur).ok_or_else(|| format!("{key:?}: {name} is not a map"))?;
        match idx {
            None if last => {
                m.borrow_mut().insert(name, val);
                return Ok(());
            }
            None => {
                let next = m.borrow().get(&name).cloned();
                cur = match next {
                    Some(v @ Value::Map(_)) => v,
                    _ => {
                        let v = Value::map(Map::new());
                        m.borrow_mut().insert(name, v.clone());
                        v
                    }
                };
            }
            Some(ix) => {
                let mut list = match m.borrow().get(&name) {
                    Some(Value::List(l)) => l.to_vec(),
                    _ => Vec::new(),
                };
                while list.len() <= ix {
                    list.push(Value::Nil);
                }
                if last {
                    list[ix] = val;
                    m.borrow_mut().insert(name, Value::list(list));
                    return Ok(());
                }
                if !matches!(list[ix], Value::Map(_)) {
                    list[ix] = Value::map(Map::new());
                }
                cur = list[ix].clone();
                m.borrow_mut().insert(name, Value::list(list));
            }
        }
    }
    Ok(())
}
