//! Go `text/template` syntax: text and actions (`{{ }}`, `{{- -}}` trim markers, comments),
//! pipelines with variables, `if`/`else if`/`range`/`with`/`else with`, `define`, `template`,
//! `block`, `break`, `continue`. Every node keeps the line it starts on.

use std::collections::HashMap;
use std::rc::Rc;

#[derive(Debug, Clone)]
pub enum Node {
    Text(String),
    Action {
        line: usize,
        pipe: Pipe,
    },
    If {
        line: usize,
        pipe: Pipe,
        then: Vec<Node>,
        els: Vec<Node>,
    },
    With {
        line: usize,
        pipe: Pipe,
        then: Vec<Node>,
        els: Vec<Node>,
    },
    Range {
        line: usize,
        pipe: Pipe,
        body: Vec<Node>,
        els: Vec<Node>,
    },
    Template {
        line: usize,
        name: String,
        pipe: Option<Pipe>,
    },
    Break,
    Continue,
}

#[derive(Debug, Clone, Default)]
pub struct Pipe {
    pub decls: Vec<String>,
    /// `=` rather than `:=`.
    pub assign: bool,
    pub cmds: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone)]
pub enum Arg {
    Dot,
    /// `.a.b`
    Field(Vec<String>),
    /// `$x.a.b` (`$` is the root).
    Var(String, Vec<String>),
    /// A function name.
    Ident(String),
    Str(Rc<str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    /// `(pipeline).a.b`
    Sub(Box<Pipe>, Vec<String>),
}

/// A parsed file: its body and the templates it defines.
#[derive(Debug, Default)]
pub struct Parsed {
    pub body: Vec<Node>,
    pub defines: HashMap<String, Rc<Vec<Node>>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Dot,
    Field(Vec<String>),
    Var(String, Vec<String>),
    Ident(String),
    Str(String),
    Num(String),
    LParen,
    RParen,
    Chain(Vec<String>),
    Bar,
    Decl,
    Assign,
    Comma,
}

enum Item {
    Text(String),
    Action(usize, Vec<Tok>),
}

pub type PResult<T> = Result<T, (usize, String)>;

pub fn parse(src: &str) -> PResult<Parsed> {
    let items = lex(src)?;
    let mut p = Parser {
        items,
        pos: 0,
        defines: HashMap::new(),
    };
    let (body, end) = p.list(0)?;
    if let Some((line, kw)) = end {
        return Err((line, format!("unexpected {{{{{kw}}}}}")));
    }
    Ok(Parsed {
        body,
        defines: p.defines,
    })
}

fn lex(src: &str) -> PResult<Vec<Item>> {
    let mut items = Vec::new();
    let mut rest = src;
    let mut line = 1usize;
    let mut trim_next = false;
    while !rest.is_empty() {
        let Some(start) = rest.find("{{") else {
            let mut t = rest;
            if trim_next {
                t = t.trim_start();
            }
            items.push(Item::Text(t.to_string()));
            break;
        };
        let mut text = &rest[..start];
        if trim_next {
            text = text.trim_start();
        }
        let after = &rest[start + 2..];
        let left_trim = after.starts_with("- ")
            || after.starts_with("-\n")
            || after.starts_with("-\t")
            || after.starts_with("-\r");
        if left_trim {
            text = text.trim_end();
        }
        line += rest[..start].matches('\n').count();
        if !text.is_empty() {
            items.push(Item::Text(text.to_string()));
        }
        let body_start = if left_trim { 2 } else { 0 };
        let inner = &after[body_start..];
        // Find the closing delimiter, skipping quoted strings and comments.
        let (end, right_trim) = find_close(inner).ok_or((line, "unclosed action".to_string()))?;
        let body = &inner[..end];
        let action_line = line;
        line += body.matches('\n').count();
        let close_len = if right_trim { 4 } else { 2 };
        let consumed = start + 2 + body_start + end + close_len;
        line += rest[start + 2 + body_start + end..consumed]
            .matches('\n')
            .count();
        let trimmed = body.trim();
        if trimmed.starts_with("/*") {
            if !trimmed.ends_with("*/") {
                return Err((action_line, "unclosed comment".into()));
            }
        } else {
            let toks = tokens(body).map_err(|e| (action_line, e))?;
            if toks.is_empty() {
                return Err((action_line, "missing value for command".into()));
            }
            items.push(Item::Action(action_line, toks));
        }
        trim_next = right_trim;
        rest = &rest[consumed..];
    }
    Ok(items)
}

/// The offset of `}}` (or ` -}}`) closing the action that starts at `s`.
fn find_close(s: &str) -> Option<(usize, bool)> {
    let b = s.as_bytes();
    let mut i = 0;
    let trimmed = s.trim_start();
    if trimmed.starts_with("/*") {
        let skip = s.len() - trimmed.len();
        let end = s[skip..].find("*/")? + skip + 2;
        let tail = &s[end..];
        if tail.starts_with(" -}}") {
            return Some((end, true));
        }
        if tail.starts_with("}}") {
            return Some((end, false));
        }
        return None;
    }
    while i < b.len() {
        match b[i] {
            q @ (b'"' | b'\'') => i = closing_quote(b, i, q),
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if b.get(i + 1) == Some(&b'}') => {
                if i >= 2 && b[i - 1] == b'-' && b[i - 2].is_ascii_whitespace() {
                    return Some((i - 2, true));
                }
                return Some((i, false));
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The index of the quote closing the string `b[open]` opens (`"` or `'`), passing over
/// backslash escapes; at or past `b.len()` when it is not closed.
fn closing_quote(b: &[u8], open: usize, q: u8) -> usize {
    let mut i = open + 1;
    while i < b.len() && b[i] != q {
        if b[i] == b'\\' {
            i += 1;
        }
        i += 1;
    }
    i
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn read_fields(cs: &[char], i: &mut usize) -> Vec<String> {
    let mut fields = Vec::new();
    while *i < cs.len() && cs[*i] == '.' && cs.get(*i + 1).is_some_and(|c| is_ident_char(*c)) {
        *i += 1;
        let s = *i;
        while *i < cs.len() && is_ident_char(cs[*i]) {
            *i += 1;
        }
        fields.push(cs[s..*i].iter().collect());
    }
    fields
}

fn tokens(body: &str) -> Result<Vec<Tok>, String> {
    let cs: Vec<char> = body.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        match c {
            c if c.is_whitespace() => i += 1,
            c @ ('(' | '|' | ',' | '=') => {
                out.push(match c {
                    '(' => Tok::LParen,
                    '|' => Tok::Bar,
                    ',' => Tok::Comma,
                    _ => Tok::Assign,
                });
                i += 1;
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1;
                let f = read_fields(&cs, &mut i);
                if !f.is_empty() {
                    out.push(Tok::Chain(f));
                }
            }
            ':' if cs.get(i + 1) == Some(&'=') => {
                out.push(Tok::Decl);
                i += 2;
            }
            '.' => {
                let f = read_fields(&cs, &mut i);
                if f.is_empty() {
                    if cs.get(i + 1).is_some_and(|c| c.is_ascii_digit()) {
                        let s = i;
                        i += 1;
                        while i < cs.len() && (cs[i].is_ascii_alphanumeric() || cs[i] == '.') {
                            i += 1;
                        }
                        out.push(Tok::Num(cs[s..i].iter().collect()));
                    } else {
                        out.push(Tok::Dot);
                        i += 1;
                    }
                } else {
                    out.push(Tok::Field(f));
                }
            }
            '$' => {
                let s = i;
                i += 1;
                while i < cs.len() && is_ident_char(cs[i]) {
                    i += 1;
                }
                let name: String = cs[s..i].iter().collect();
                let f = read_fields(&cs, &mut i);
                out.push(Tok::Var(name, f));
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    let Some(&c) = cs.get(i) else {
                        return Err("unterminated quoted string".into());
                    };
                    i += 1;
                    match c {
                        '"' => break,
                        '\\' => {
                            let e = *cs.get(i).ok_or("unterminated quoted string")?;
                            i += 1;
                            match e {
                                'n' => s.push('\n'),
                                't' => s.push('\t'),
                                'r' => s.push('\r'),
                                '\\' => s.push('\\'),
                                '"' => s.push('"'),
                                '\'' => s.push('\''),
                                '0' => s.push('\0'),
                                'u' | 'x' => {
                                    let n = if e == 'u' { 4 } else { 2 };
                                    let hex: String = cs[i..(i + n).min(cs.len())].iter().collect();
                                    i += n;
                                    let v = u32::from_str_radix(&hex, 16)
                                        .map_err(|_| format!("bad escape \\{e}{hex}"))?;
                                    s.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                                }
                                other => return Err(format!("unknown escape sequence \\{other}")),
                            }
                        }
                        c => s.push(c),
                    }
                }
                out.push(Tok::Str(s));
            }
            '`' => {
                let s = i + 1;
                i += 1;
                while i < cs.len() && cs[i] != '`' {
                    i += 1;
                }
                if i >= cs.len() {
                    return Err("unterminated raw quoted string".into());
                }
                out.push(Tok::Str(cs[s..i].iter().collect()));
                i += 1;
            }
            '\'' => {
                let (ch, len) = match cs.get(i + 1) {
                    Some('\\') => (
                        match cs.get(i + 2) {
                            Some('n') => '\n',
                            Some('t') => '\t',
                            Some(c) => *c,
                            None => return Err("unterminated character constant".into()),
                        },
                        4,
                    ),
                    Some(c) => (*c, 3),
                    None => return Err("unterminated character constant".into()),
                };
                out.push(Tok::Num((ch as u32).to_string()));
                i += len;
            }
            c if c.is_ascii_digit()
                || ((c == '-' || c == '+')
                    && cs
                        .get(i + 1)
                        .is_some_and(|d| d.is_ascii_digit() || *d == '.')) =>
            {
                let s = i;
                i += 1;
                while i < cs.len()
                    && (cs[i].is_ascii_alphanumeric()
                        || cs[i] == '.'
                        || cs[i] == '_'
                        || ((cs[i] == '-' || cs[i] == '+')
                            && matches!(cs[i - 1], 'e' | 'E' | 'p' | 'P')))
                {
                    i += 1;
                }
                out.push(Tok::Num(cs[s..i].iter().collect()));
            }
            c if is_ident_char(c) => {
                let s = i;
                while i < cs.len() && is_ident_char(cs[i]) {
                    i += 1;
                }
                out.push(Tok::Ident(cs[s..i].iter().collect()));
                // `ident.field` is not Go syntax except for niladic chains we reject below.
            }
            other => return Err(format!("unexpected {other:?} in action")),
        }
    }
    Ok(out)
}

struct Parser {
    items: Vec<Item>,
    pos: usize,
    defines: HashMap<String, Rc<Vec<Node>>>,
}

/// How a list ended: `end`, `else` (with the tokens after `else`), or the input's end.
type End = Option<(usize, String)>;

impl Parser {
    /// Nodes up to `{{end}}`/`{{else ...}}`; returns the terminator keyword.
    fn list(&mut self, depth: usize) -> PResult<(Vec<Node>, End)> {
        let mut out = Vec::new();
        while self.pos < self.items.len() {
            let idx = self.pos;
            self.pos += 1;
            let (line, toks) = match &self.items[idx] {
                Item::Text(t) => {
                    out.push(Node::Text(t.clone()));
                    continue;
                }
                Item::Action(l, t) => (*l, t.clone()),
            };
            let kw = match toks.first() {
                Some(Tok::Ident(k)) => k.as_str(),
                _ => "",
            };
            match kw {
                "end" => return Ok((out, Some((line, "end".into())))),
                "else" => {
                    // Keep the rest (`else if ...`) for the caller.
                    self.pos -= 1;
                    return Ok((out, Some((line, "else".into()))));
                }
                "if" | "with" | "range" => {
                    let node = self.control(kw, line, &toks[1..], depth)?;
                    out.push(node);
                }
                "define" | "block" => {
                    let name = match toks.get(1) {
                        Some(Tok::Str(s)) => s.clone(),
                        _ => return Err((line, format!("{kw} needs a quoted name"))),
                    };
                    let (body, end) = self.list(depth + 1)?;
                    match end {
                        Some((_, k)) if k == "end" => {}
                        _ => return Err((line, format!("unexpected EOF in {kw} {name:?}"))),
                    }
                    self.defines.insert(name.clone(), Rc::new(body));
                    if kw == "block" {
                        let pipe = pipeline(&toks[2..], line)?;
                        out.push(Node::Template {
                            line,
                            name,
                            pipe: Some(pipe),
                        });
                    }
                }
                "template" => {
                    let name = match toks.get(1) {
                        Some(Tok::Str(s)) => s.clone(),
                        _ => return Err((line, "template needs a quoted name".into())),
                    };
                    let pipe = if toks.len() > 2 {
                        Some(pipeline(&toks[2..], line)?)
                    } else {
                        None
                    };
                    out.push(Node::Template { line, name, pipe });
                }
                "break" => out.push(Node::Break),
                "continue" => out.push(Node::Continue),
                _ => out.push(Node::Action {
                    line,
                    pipe: pipeline(&toks, line)?,
                }),
            }
        }
        Ok((out, None))
    }

    fn control(&mut self, kw: &str, line: usize, toks: &[Tok], depth: usize) -> PResult<Node> {
        let pipe = pipeline(toks, line)?;
        let (then, end) = self.list(depth + 1)?;
        let els = match end {
            Some((_, k)) if k == "end" => Vec::new(),
            Some((eline, _)) => {
                // At the `else` item.
                let Item::Action(_, etoks) = &self.items[self.pos] else {
                    unreachable!()
                };
                let etoks = etoks.clone();
                self.pos += 1;
                match etoks.get(1) {
                    Some(Tok::Ident(k)) if k == "if" || k == "with" => {
                        // `else if` / `else with`: a nested control that shares our `end`.
                        let k = k.clone();
                        vec![self.control(&k, eline, &etoks[2..], depth)?]
                    }
                    None => {
                        let (els, end) = self.list(depth + 1)?;
                        match end {
                            Some((_, k)) if k == "end" => els,
                            _ => return Err((line, format!("missing {{{{end}}}} for {kw}"))),
                        }
                    }
                    _ => return Err((eline, "unexpected tokens after else".into())),
                }
            }
            None => {
                return Err((
                    line,
                    format!("unexpected EOF: missing {{{{end}}}} for {kw}"),
                ));
            }
        };
        Ok(match kw {
            "if" => Node::If {
                line,
                pipe,
                then,
                els,
            },
            "with" => Node::With {
                line,
                pipe,
                then,
                els,
            },
            _ => Node::Range {
                line,
                pipe,
                body: then,
                els,
            },
        })
    }
}

fn pipeline(toks: &[Tok], line: usize) -> PResult<Pipe> {
    let mut pipe = Pipe::default();
    let mut i = 0;
    // Declarations: `$x :=`, `$x =`, `$i, $v :=`.
    let decl_end = toks
        .iter()
        .position(|t| matches!(t, Tok::Decl | Tok::Assign));
    if let Some(d) = decl_end
        && toks[..d]
            .iter()
            .all(|t| matches!(t, Tok::Var(_, f) if f.is_empty()) || *t == Tok::Comma)
        && d > 0
    {
        for t in &toks[..d] {
            if let Tok::Var(n, _) = t {
                pipe.decls.push(n.clone());
            }
        }
        pipe.assign = toks[d] == Tok::Assign;
        i = d + 1;
    }
    let (cmds, used) = commands(&toks[i..], line)?;
    if used != toks.len() - i {
        return Err((line, "unexpected \")\" in operand".into()));
    }
    if cmds.is_empty() {
        return Err((line, "missing value for command".into()));
    }
    pipe.cmds = cmds;
    Ok(pipe)
}

/// Commands separated by `|`, up to a `)` or the end; returns how many tokens were used.
fn commands(toks: &[Tok], line: usize) -> PResult<(Vec<Vec<Arg>>, usize)> {
    let mut cmds = Vec::new();
    let mut cur = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::RParen => break,
            Tok::Bar => {
                if cur.is_empty() {
                    return Err((line, "missing command before |".into()));
                }
                cmds.push(std::mem::take(&mut cur));
                i += 1;
                continue;
            }
            Tok::LParen => {
                let (sub, used) = commands(&toks[i + 1..], line)?;
                let close = i + 1 + used;
                if toks.get(close) != Some(&Tok::RParen) {
                    return Err((line, "unclosed left paren".into()));
                }
                i = close + 1;
                let chain = match toks.get(i) {
                    Some(Tok::Chain(f)) => {
                        i += 1;
                        f.clone()
                    }
                    _ => Vec::new(),
                };
                // A parenthesized pipeline may declare nothing.
                cur.push(Arg::Sub(
                    Box::new(Pipe {
                        cmds: sub,
                        ..Pipe::default()
                    }),
                    chain,
                ));
                continue;
            }
            t => cur.push(term(t, line)?),
        }
        i += 1;
    }
    if !cur.is_empty() {
        cmds.push(cur);
    }
    Ok((cmds, i))
}

fn term(t: &Tok, line: usize) -> PResult<Arg> {
    Ok(match t {
        Tok::Dot => Arg::Dot,
        Tok::Field(f) => Arg::Field(f.clone()),
        Tok::Var(n, f) => Arg::Var(n.clone(), f.clone()),
        Tok::Str(s) => Arg::Str(Rc::from(s.as_str())),
        Tok::Ident(s) => match s.as_str() {
            "true" => Arg::Bool(true),
            "false" => Arg::Bool(false),
            "nil" => Arg::Nil,
            _ => Arg::Ident(s.clone()),
        },
        Tok::Num(n) => number(n).ok_or((line, format!("bad number syntax: {n:?}")))?,
        other => return Err((line, format!("unexpected {other:?} in operand"))),
    })
}

fn number(n: &str) -> Option<Arg> {
    let clean = n.replace('_', "");
    let (neg, digits) = match clean.strip_prefix('-') {
        Some(d) => (true, d.to_string()),
        None => (false, clean.trim_start_matches('+').to_string()),
    };
    let int = if let Some(h) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = digits
        .strip_prefix("0o")
        .or_else(|| digits.strip_prefix("0O"))
    {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(b) = digits
        .strip_prefix("0b")
        .or_else(|| digits.strip_prefix("0B"))
    {
        i64::from_str_radix(b, 2).ok()
    } else if digits.len() > 1
        && digits.starts_with('0')
        && digits.chars().all(|c| c.is_ascii_digit())
    {
        i64::from_str_radix(&digits[1..], 8).ok()
    } else {
        digits.parse::<i64>().ok()
    };
    if let Some(i) = int {
        return Some(Arg::Int(if neg { -i } else { i }));
    }
    let f: f64 = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        // Hex floats: `0x1p60`, `0x1.8p-2`.
        Some(h) => {
            let (mant, exp) = h.split_once(['p', 'P'])?;
            let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
            let mut m = 0f64;
            for c in int.chars().chain(frac.chars()) {
                m = m * 16.0 + f64::from(c.to_digit(16)?);
            }
            m /= 16f64.powi(frac.len() as i32);
            m * 2f64.powi(exp.parse().ok()?)
        }
        None => digits.parse().ok()?,
    };
    Some(Arg::Float(if neg { -f } else { f }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_lines() {
        let p = parse(
            "a  {{- .x -}}  b\n{{/* c */}}\n{{ if .y }}1{{ else if .z }}2{{ else }}3{{ end }}",
        )
        .unwrap();
        assert!(matches!(&p.body[0], Node::Text(t) if t == "a"));
        assert!(matches!(&p.body[1], Node::Action { line: 1, .. }));
        assert!(matches!(&p.body[2], Node::Text(t) if t == "b\n"));
        assert!(matches!(&p.body[4], Node::If { line: 3, .. }));
        assert!(parse("{{ if .x }}").is_err());
        let d = parse("{{ define \"a\" }}x{{ end }}").unwrap();
        assert!(d.defines.contains_key("a"));
        assert!(matches!(number("0x1p60"), Some(Arg::Float(f)) if f == 2f64.powi(60)));
        assert!(matches!(number("0x1F"), Some(Arg::Int(31))));
    }
}
