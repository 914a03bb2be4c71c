//! Executes parsed templates with Go `text/template` semantics: pipelines, variables and
//! their scopes, `if`/`with`/`range` (lists, maps in key order, integers), `break`/`continue`,
//! named templates, and the calls that need the engine (`include`, `tpl`, `and`, `or`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::funcs;
use crate::parse::{self, Arg, Node, Parsed, Pipe};
use crate::value::Value;

/// Where rendering stopped: the template file (as Helm names it, `CHART/templates/FILE`),
/// the line, and what went wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for ExecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// The named templates of a chart and its subcharts (one namespace, as in Helm).
#[derive(Default)]
pub struct Engine {
    defines: HashMap<String, (Rc<str>, Rc<Vec<Node>>)>,
    tpl_cache: RefCell<HashMap<String, Rc<Parsed>>>,
}

const MAX_DEPTH: usize = 200;

enum Flow {
    Normal,
    Break,
    Continue,
}

type R<T> = Result<T, ExecError>;

impl Engine {
    /// Adds a file's `define`s (a later file's definition of a name replaces an earlier one).
    /// The file itself is a template of its name too (`include (print .Template.BasePath
    /// "/configmap.yaml") .`).
    pub fn add_defines(&mut self, file: &str, parsed: &Parsed) {
        let file: Rc<str> = Rc::from(file);
        self.defines.insert(
            file.to_string(),
            (file.clone(), Rc::new(parsed.body.clone())),
        );
        for (name, body) in &parsed.defines {
            self.defines
                .insert(name.clone(), (file.clone(), body.clone()));
        }
    }

    /// Renders a file's body with `dot` as `.` and `$`.
    pub fn render(&self, file: &str, body: &[Node], dot: &Value) -> R<String> {
        let mut st = State {
            eng: self,
            overlay: None,
            file: Rc::from(file),
            vars: vec![("$".into(), dot.clone())],
            out: String::new(),
            depth: 0,
        };
        st.walk(body, dot)?;
        Ok(st.out)
    }
}

/// Named templates a `tpl` text defines, visible while it renders.
type Overlay = Option<Rc<HashMap<String, Rc<Vec<Node>>>>>;

struct State<'e> {
    eng: &'e Engine,
    overlay: Overlay,
    file: Rc<str>,
    vars: Vec<(String, Value)>,
    out: String,
    depth: usize,
}

impl State<'_> {
    fn err(&self, line: usize, message: impl Into<String>) -> ExecError {
        ExecError {
            file: self.file.to_string(),
            line,
            message: message.into(),
        }
    }

    fn walk(&mut self, nodes: &[Node], dot: &Value) -> R<Flow> {
        for n in nodes {
            match n {
                Node::Text(t) => self.out.push_str(t),
                Node::Action { line, pipe } => {
                    let v = self.pipe(pipe, dot, *line)?;
                    if pipe.decls.is_empty() {
                        match v {
                            Value::Nil => self.out.push_str("<no value>"),
                            v => self.out.push_str(&v.to_go_string()),
                        }
                    }
                }
                Node::If {
                    line,
                    pipe,
                    then,
                    els,
                }
                | Node::With {
                    line,
                    pipe,
                    then,
                    els,
                } => {
                    let mark = self.vars.len();
                    let v = self.pipe(pipe, dot, *line)?;
                    let is_with = matches!(n, Node::With { .. });
                    let flow = if v.truthy() {
                        let d = if is_with { v } else { dot.clone() };
                        self.walk(then, &d)?
                    } else {
                        self.walk(els, dot)?
                    };
                    self.vars.truncate(mark);
                    if !matches!(flow, Flow::Normal) {
                        return Ok(flow);
                    }
                }
                Node::Range {
                    line,
                    pipe,
                    body,
                    els,
                } => {
                    let mark = self.vars.len();
                    let mut p = pipe.clone();
                    let decls = std::mem::take(&mut p.decls);
                    let v = self.pipe(&p, dot, *line)?;
                    let items: Vec<(Value, Value)> = match &v {
                        Value::List(l) => l
                            .iter()
                            .enumerate()
                            .map(|(i, x)| (Value::Int(i as i64), x.clone()))
                            .collect(),
                        Value::Map(m) => m
                            .borrow()
                            .iter()
                            .map(|(k, x)| (Value::str(k), x.clone()))
                            .collect(),
                        Value::Int(n) => (0..*n).map(|i| (Value::Int(i), Value::Int(i))).collect(),
                        Value::Nil => Vec::new(),
                        Value::ApiVersions(a) => a
                            .iter()
                            .enumerate()
                            .map(|(i, x)| (Value::Int(i as i64), Value::str(x)))
                            .collect(),
                        other => {
                            return Err(self.err(
                                *line,
                                format!("range can't iterate over {}", other.to_go_string()),
                            ));
                        }
                    };
                    if items.is_empty() {
                        self.walk(els, dot)?;
                    }
                    for (k, x) in items {
                        let inner = self.vars.len();
                        match decls.as_slice() {
                            [] => {}
                            [v1] => self.vars.push((v1.clone(), x.clone())),
                            [k1, v1, ..] => {
                                self.vars.push((k1.clone(), k));
                                self.vars.push((v1.clone(), x.clone()));
                            }
                        }
                        let flow = self.walk(body, &x)?;
                        self.vars.truncate(inner);
                        if matches!(flow, Flow::Break) {
                            break;
                        }
                    }
                    self.vars.truncate(mark);
                }
                Node::Template { line, name, pipe } => {
                    let d = match pipe {
                        Some(p) => self.pipe(p, dot, *line)?,
                        None => Value::Nil,
                    };
                    let s = self.call_template(name, &d, *line)?;
                    self.out.push_str(&s);
                }
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Normal)
    }

    fn call_template(&mut self, name: &str, dot: &Value, line: usize) -> R<String> {
        let from_tpl = self
            .overlay
            .as_ref()
            .and_then(|o| o.get(name))
            .map(|b| (self.file.clone(), b.clone()));
        let Some((file, body)) = from_tpl.or_else(|| self.eng.defines.get(name).cloned()) else {
            return Err(self.err(
                line,
                format!("no template {name:?} associated with template"),
            ));
        };
        if self.depth >= MAX_DEPTH {
            return Err(self.err(
                line,
                format!(
                    "rendering template has a nested reference name: {name}: exceeded max depth"
                ),
            ));
        }
        let mut st = State {
            eng: self.eng,
            overlay: self.overlay.clone(),
            file,
            vars: vec![("$".into(), dot.clone())],
            out: String::new(),
            depth: self.depth + 1,
        };
        match st.walk(&body, dot) {
            Ok(_) => Ok(st.out),
            Err(e) if e.file == *self.file => Err(e),
            Err(e) => Err(self.err(line, format!("in template {name:?}: {e}"))),
        }
    }

    fn pipe(&mut self, pipe: &Pipe, dot: &Value, line: usize) -> R<Value> {
        let mut v: Option<Value> = None;
        for cmd in &pipe.cmds {
            v = Some(self.cmd(cmd, dot, v, line)?);
        }
        let v = v.unwrap_or_default();
        for name in &pipe.decls {
            if pipe.assign {
                match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = v.clone(),
                    None => return Err(self.err(line, format!("undefined variable: {name}"))),
                }
            } else {
                self.vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn var(&self, name: &str, line: usize) -> R<Value> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| self.err(line, format!("undefined variable: {name}")))
    }

    fn cmd(&mut self, args: &[Arg], dot: &Value, fin: Option<Value>, line: usize) -> R<Value> {
        let first = &args[0];
        let has_args = args.len() > 1 || fin.is_some();
        match first {
            Arg::Ident(name) => self.call(name, &args[1..], dot, fin, line),
            Arg::Field(path) => {
                let rest = self.args(&args[1..], dot, fin, line)?;
                self.chain(dot.clone(), path, rest, has_args, line)
            }
            Arg::Var(name, path) => {
                let base = self.var(name, line)?;
                let rest = self.args(&args[1..], dot, fin, line)?;
                self.chain(base, path, rest, has_args, line)
            }
            Arg::Sub(p, path) if !path.is_empty() => {
                let base = self.pipe(p, dot, line)?;
                let rest = self.args(&args[1..], dot, fin, line)?;
                self.chain(base, path, rest, has_args, line)
            }
            other => {
                if has_args {
                    return Err(self.err(
                        line,
                        format!("can't give argument to non-function {other:?}"),
                    ));
                }
                self.arg(other, dot, line)
            }
        }
    }

    fn args(
        &mut self,
        args: &[Arg],
        dot: &Value,
        fin: Option<Value>,
        line: usize,
    ) -> R<Vec<Value>> {
        let mut out = Vec::with_capacity(args.len() + 1);
        for a in args {
            out.push(self.arg(a, dot, line)?);
        }
        out.extend(fin);
        Ok(out)
    }

    fn arg(&mut self, a: &Arg, dot: &Value, line: usize) -> R<Value> {
        Ok(match a {
            Arg::Dot => dot.clone(),
            Arg::Field(path) => self.chain(dot.clone(), path, Vec::new(), false, line)?,
            Arg::Var(name, path) => {
                let base = self.var(name, line)?;
                self.chain(base, path, Vec::new(), false, line)?
            }
            Arg::Ident(name) => self.call(name, &[], dot, None, line)?,
            Arg::Str(s) => Value::Str(s.clone()),
            Arg::Int(i) => Value::Int(*i),
            Arg::Float(f) => Value::Float(*f),
            Arg::Bool(b) => Value::Bool(*b),
            Arg::Nil => Value::Nil,
            Arg::Sub(p, path) => {
                let base = self.pipe(p, dot, line)?;
                self.chain(base, path, Vec::new(), false, line)?
            }
        })
    }

    /// `.a.b.c ARGS`: fields of maps, then (for the last) a method call on `.Files` or
    /// `.Capabilities.APIVersions`.
    fn chain(
        &mut self,
        mut v: Value,
        path: &[String],
        args: Vec<Value>,
        has_args: bool,
        line: usize,
    ) -> R<Value> {
        // Go: a nil that a map lookup gave (an interface-typed nil) stops a field chain with
        // an error; a nil from a variable, a parenthesized pipeline or `.` gives nil.
        let mut looked_up = false;
        for (i, f) in path.iter().enumerate() {
            let last = i + 1 == path.len();
            if v.is_nil() && !looked_up {
                return Ok(Value::Nil);
            }
            looked_up = matches!(v, Value::Map(_));
            v = match &v {
                Value::Map(m) => {
                    if last && has_args {
                        return Err(self.err(
                            line,
                            format!("{f} has arguments but cannot be invoked as function"),
                        ));
                    }
                    m.borrow().get(f).cloned().unwrap_or(Value::Nil)
                }
                Value::Files(files) => {
                    let a = if last { args.clone() } else { Vec::new() };
                    funcs::files_method(files, f, &a).map_err(|e| self.err(line, e))?
                }
                Value::ApiVersions(list) if f == "Has" => {
                    let want = args.first().and_then(Value::as_str).unwrap_or_default();
                    Value::Bool(list.iter().any(|x| x == want))
                }
                Value::Nil => {
                    return Err(
                        self.err(line, format!("nil pointer evaluating interface {{}}.{f}"))
                    );
                }
                other => {
                    return Err(self.err(
                        line,
                        format!("can't evaluate field {f} in type {}", other.type_name()),
                    ));
                }
            };
        }
        if path.is_empty() && has_args {
            return Err(self.err(line, "can't give argument to non-function"));
        }
        Ok(v)
    }

    fn call(
        &mut self,
        name: &str,
        args: &[Arg],
        dot: &Value,
        fin: Option<Value>,
        line: usize,
    ) -> R<Value> {
        match name {
            "and" | "or" => {
                let mut last = Value::Nil;
                let n = args.len() + usize::from(fin.is_some());
                if n == 0 {
                    return Err(self.err(
                        line,
                        format!("wrong number of args for {name}: want at least 1 got 0"),
                    ));
                }
                for a in args {
                    last = self.arg(a, dot, line)?;
                    if (name == "and") != last.truthy() {
                        return Ok(last);
                    }
                }
                if let Some(f) = fin {
                    last = f;
                }
                return Ok(last);
            }
            _ => {}
        }
        let vals = self.args(args, dot, fin, line)?;
        match name {
            "include" => {
                let tname = vals.first().and_then(Value::as_str).ok_or_else(|| {
                    self.err(
                        line,
                        "error calling include: the first argument must be a template name",
                    )
                })?;
                let d = vals.get(1).cloned().unwrap_or_default();
                self.call_template(tname, &d, line)
                    .map(Value::str)
                    .map_err(|e| wrap(e, self, line, "include"))
            }
            "tpl" => {
                let text = match vals.first() {
                    Some(Value::Str(s)) => s.clone(),
                    Some(other) => {
                        return Err(self.err(
                            line,
                            format!(
                                "error calling tpl: expected string; got {}",
                                other.type_name()
                            ),
                        ));
                    }
                    None => return Err(self.err(line, "error calling tpl: missing template")),
                };
                let d = vals.get(1).cloned().unwrap_or_default();
                self.tpl(&text, &d, line)
            }
            _ => funcs::call(name, vals)
                .map_err(|e| self.err(line, format!("error calling {name}: {e}"))),
        }
    }

    fn tpl(&mut self, text: &str, dot: &Value, line: usize) -> R<Value> {
        let cached = self.eng.tpl_cache.borrow().get(text).cloned();
        let parsed = match cached {
            Some(p) => p,
            None => {
                let p = parse::parse(text).map_err(|(l, m)| {
                    self.err(
                        line,
                        format!("error calling tpl: cannot parse template (line {l}): {m}"),
                    )
                })?;
                let p = Rc::new(p);
                self.eng
                    .tpl_cache
                    .borrow_mut()
                    .insert(text.to_string(), p.clone());
                p
            }
        };
        if self.depth >= MAX_DEPTH {
            return Err(self.err(line, "error calling tpl: exceeded max depth"));
        }
        // The text's own `define`s join (and take precedence over) the ones in scope.
        let overlay = if parsed.defines.is_empty() {
            self.overlay.clone()
        } else {
            let mut o = self.overlay.as_deref().cloned().unwrap_or_default();
            o.extend(parsed.defines.iter().map(|(k, v)| (k.clone(), v.clone())));
            Some(Rc::new(o))
        };
        let mut st = State {
            eng: self.eng,
            overlay,
            file: self.file.clone(),
            vars: vec![("$".into(), dot.clone())],
            out: String::new(),
            depth: self.depth + 1,
        };
        st.walk(&parsed.body, dot)
            .map_err(|e| self.err(line, format!("error calling tpl: {}", e.message)))?;
        Ok(Value::str(st.out.replace("<no value>", "")))
    }
}

fn wrap(e: ExecError, st: &State, line: usize, what: &str) -> ExecError {
    if e.file == *st.file && e.line == line {
        return e;
    }
    st.err(line, format!("error calling {what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Map;

    fn render(src: &str, dot: Value) -> String {
        let p = parse::parse(src).unwrap();
        let mut e = Engine::default();
        e.add_defines("t", &p);
        e.render("t", &p.body, &dot).unwrap()
    }

    #[test]
    fn go_semantics() {
        let mut m = Map::new();
        m.insert(
            "a".into(),
            Value::list(vec![Value::str("x"), Value::str("y")]),
        );
        m.insert("n".into(), Value::Float(3.0));
        let dot = Value::map(m);
        assert_eq!(
            render(
                "{{ range $i, $v := .a }}{{$i}}={{$v}} {{ end }}",
                dot.clone()
            ),
            "0=x 1=y "
        );
        assert_eq!(
            render(
                "{{ define \"h\" }}[{{ . }}]{{ end }}{{ include \"h\" .n | upper }}",
                dot.clone()
            ),
            "[3]"
        );
        assert_eq!(
            render(
                "{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}",
                dot.clone()
            ),
            "2"
        );
        assert_eq!(
            render(
                "{{ with .missing }}a{{ else with .n }}{{ . }}{{ end }}",
                dot.clone()
            ),
            "3"
        );
        assert_eq!(
            render("{{ and 1 0 }} {{ or 0 \"\" \"z\" }}", dot.clone()),
            "0 z"
        );
        assert_eq!(render("{{ tpl \"{{ .n }}\" . }}", dot.clone()), "3");
        assert_eq!(
            render(
                "{{ tpl \"{{ define \\\"x\\\" }}<{{ . }}>{{ end }}{{ include \\\"x\\\" .n }}\" . }}",
                dot
            ),
            "<3>"
        );
    }
}
