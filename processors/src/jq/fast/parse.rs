//! The fast path's expressions: jaq's own parse of the expression (so
//! precedence and syntax are exactly jaq's), kept only when every part of
//! it is in the subset the fast path evaluates.

use jaq_core::load::lex::StrPart;
use jaq_core::load::parse::{BinaryOp, Term};
use jaq_core::ops;
use jaq_core::path::{Opt, Part};
use serde_json::{Number, Value};

use super::value::{Math, Rounding};

/// Expressions nested deeper than this are left to jaq.
const MAX_NESTING: usize = 64;

/// An expression of the subset.
#[derive(Debug)]
pub(crate) enum Ast {
    /// `.`
    Id,
    /// `null`, `true`, `false`, a string, a decimal number literal.
    Lit(Value),
    /// An integer literal.
    Int(i64),
    /// `f.a.b[0]`, `.a?`: a term, then keys and indices.
    Path(Box<Ast>, Vec<Step>),
    /// `l | r`
    Pipe(Box<Ast>, Box<Ast>),
    /// `l, r`
    Comma(Box<Ast>, Box<Ast>),
    /// `-f`
    Neg(Box<Ast>),
    /// `l + r`, ...
    Math(Box<Ast>, Math, Box<Ast>),
    /// `l == r`, ...
    Cmp(Box<Ast>, Cmp, Box<Ast>),
    /// `l and r` (`false`: stops on a false `l`), `l or r` (`true`).
    Logic(Box<Ast>, bool, Box<Ast>),
    /// `l // r`
    Alt(Box<Ast>, Box<Ast>),
    /// `if c then t else e end` (`elif`s nest, no `else` is `.`).
    If(Box<Ast>, Box<Ast>, Box<Ast>),
    /// `select(f)`
    Select(Box<Ast>),
    /// `not`
    Not,
    /// `empty`
    Empty,
    /// `length`
    Length,
    /// `tostring`
    ToString,
    /// `tonumber`
    ToNumber,
    /// `round`, `floor`, `ceil`
    Round(Rounding),
    /// `[f]`, `[]`
    Arr(Option<Box<Ast>>),
    /// `{a: f, "b": g, c}`
    Obj(Vec<(String, Ast)>),
    /// `"x\(f)y"`
    Str(Vec<StrItem>),
    /// `path = f`
    Assign(Vec<Key>, Box<Ast>),
    /// `path |= f`
    Update(Vec<Key>, Box<Ast>),
    /// `del(path)`
    Del(Vec<Key>),
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// One step of a path.
#[derive(Debug)]
pub(crate) struct Step {
    pub(crate) key: Key,
    /// `?`: an error of this step gives no output instead.
    pub(crate) optional: bool,
}

/// An object key or an array index (negative counts from the end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Key {
    Name(String),
    Index(i64),
}

/// A part of an interpolated string.
#[derive(Debug)]
pub(crate) enum StrItem {
    Text(String),
    Term(Ast),
}

/// The subset's expression for `expr`, or `None` when any part of it is
/// outside the subset (or jaq's parser refuses it).
pub(crate) fn parse(expr: &str) -> Option<Ast> {
    let term = jaq_core::load::parse(expr, |p| p.term())?;
    ast(&term, 0)
}

fn boxed(t: &Term<&str>, depth: usize) -> Option<Box<Ast>> {
    ast(t, depth).map(Box::new)
}

fn ast(t: &Term<&str>, depth: usize) -> Option<Ast> {
    if depth > MAX_NESTING {
        return None;
    }
    let d = depth + 1;
    Some(match t {
        Term::Id => Ast::Id,
        Term::Num(n) => number(n)?,
        Term::Str(None, parts) => match literal(parts) {
            Some(s) => Ast::Lit(Value::String(s)),
            None => Ast::Str(
                parts
                    .iter()
                    .map(|p| match p {
                        StrPart::Str(s) => Some(StrItem::Text((*s).to_owned())),
                        StrPart::Char(c) => Some(StrItem::Text(c.to_string())),
                        StrPart::Term(t) => ast(t, d).map(StrItem::Term),
                    })
                    .collect::<Option<_>>()?,
            ),
        },
        Term::Arr(None) => Ast::Arr(None),
        Term::Arr(Some(f)) => Ast::Arr(Some(boxed(f, d)?)),
        Term::Obj(entries) => Ast::Obj(
            entries
                .iter()
                .map(|(k, v)| {
                    let key = string(k)?;
                    let value = match v {
                        Some(v) => ast(v, d)?,
                        // `{a}` is `{a: .a}`.
                        None => Ast::Path(
                            Box::new(Ast::Id),
                            vec![Step {
                                key: Key::Name(key.clone()),
                                optional: false,
                            }],
                        ),
                    };
                    Some((key, value))
                })
                .collect::<Option<_>>()?,
        ),
        Term::Neg(f) => Ast::Neg(boxed(f, d)?),
        Term::BinOp(l, op, r) => {
            let (l, r) = (l.as_ref(), r.as_ref());
            match op {
                BinaryOp::Pipe(None) => Ast::Pipe(boxed(l, d)?, boxed(r, d)?),
                BinaryOp::Comma => Ast::Comma(boxed(l, d)?, boxed(r, d)?),
                BinaryOp::Alt => Ast::Alt(boxed(l, d)?, boxed(r, d)?),
                BinaryOp::Or => Ast::Logic(boxed(l, d)?, true, boxed(r, d)?),
                BinaryOp::And => Ast::Logic(boxed(l, d)?, false, boxed(r, d)?),
                BinaryOp::Math(op) => Ast::Math(boxed(l, d)?, math(*op), boxed(r, d)?),
                BinaryOp::Cmp(op) => Ast::Cmp(boxed(l, d)?, cmp(*op), boxed(r, d)?),
                BinaryOp::Assign => Ast::Assign(path(l)?, boxed(r, d)?),
                BinaryOp::Update => Ast::Update(path(l)?, boxed(r, d)?),
                _ => return None,
            }
        }
        Term::IfThenElse(if_thens, else_) => {
            let mut acc = match else_ {
                Some(e) => ast(e, d)?,
                None => Ast::Id,
            };
            for (c, then) in if_thens.iter().rev() {
                acc = Ast::If(boxed(c, d)?, boxed(then, d)?, Box::new(acc));
            }
            acc
        }
        Term::Call(name, args) => match (*name, &args[..]) {
            ("empty", []) => Ast::Empty,
            ("not", []) => Ast::Not,
            ("length", []) => Ast::Length,
            ("tostring", []) => Ast::ToString,
            ("tonumber", []) => Ast::ToNumber,
            ("round", []) => Ast::Round(Rounding::Round),
            ("floor", []) => Ast::Round(Rounding::Floor),
            ("ceil", []) => Ast::Round(Rounding::Ceil),
            ("true", []) => Ast::Lit(Value::Bool(true)),
            ("false", []) => Ast::Lit(Value::Bool(false)),
            ("null", []) => Ast::Lit(Value::Null),
            ("select", [f]) => Ast::Select(boxed(f, d)?),
            ("del", [f]) => Ast::Del(path(f)?),
            _ => return None,
        },
        Term::Path(head, path) => {
            let steps = path
                .0
                .iter()
                .map(|(part, opt)| {
                    let Part::Index(i) = part else {
                        return None;
                    };
                    Some(Step {
                        key: key(i)?,
                        optional: matches!(opt, Opt::Optional),
                    })
                })
                .collect::<Option<Vec<_>>>()?;
            Ast::Path(boxed(head, d)?, steps)
        }
        _ => return None,
    })
}

/// A number literal as jaq reads it: an integer that fits 64 bits, or a
/// decimal kept as its text. An integer beyond 64 bits is left to jaq.
///
/// jaq outputs a decimal through serde_json, which writes exponents its own
/// way (`1e3` comes out as `1e+3`): the literal is stored in that form. Only
/// `tostring` would show jaq's own text (`1e3`), and it leaves numbers with
/// exponents to jaq. Any other difference leaves the literal to jaq.
fn number(n: &str) -> Option<Ast> {
    if let Ok(i) = n.parse::<i64>() {
        return Some(Ast::Int(i));
    }
    if n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let parsed: Number = n.parse().ok()?;
    (parsed.as_str() == n || n.contains(['e', 'E'])).then_some(Ast::Lit(Value::Number(parsed)))
}

/// The text of a string literal without interpolation.
fn literal(parts: &[StrPart<&str, Term<&str>>]) -> Option<String> {
    let mut s = String::new();
    for p in parts {
        match p {
            StrPart::Str(t) => s.push_str(t),
            StrPart::Char(c) => s.push(*c),
            StrPart::Term(_) => return None,
        }
    }
    Some(s)
}

fn string(t: &Term<&str>) -> Option<String> {
    match t {
        Term::Str(None, parts) => literal(parts),
        _ => None,
    }
}

/// A path index: a string literal, or an integer literal (maybe negated).
fn key(t: &Term<&str>) -> Option<Key> {
    match t {
        Term::Str(None, parts) => literal(parts).map(Key::Name),
        Term::Num(n) => n.parse::<i64>().ok().map(Key::Index),
        Term::Neg(inner) => match inner.as_ref() {
            Term::Num(n) => n.parse::<i64>().ok()?.checked_neg().map(Key::Index),
            _ => None,
        },
        _ => None,
    }
}

/// The left side of `=`, `|=` and `del`: `.a.b[0]`, no `?`.
fn path(t: &Term<&str>) -> Option<Vec<Key>> {
    let Term::Path(head, path) = t else {
        return None;
    };
    if !matches!(head.as_ref(), Term::Id) {
        return None;
    }
    path.0
        .iter()
        .map(|(part, opt)| match (part, opt) {
            (Part::Index(i), Opt::Essential) => key(i),
            _ => None,
        })
        .collect()
}

fn math(op: ops::Math) -> Math {
    match op {
        ops::Math::Add => Math::Add,
        ops::Math::Sub => Math::Sub,
        ops::Math::Mul => Math::Mul,
        ops::Math::Div => Math::Div,
        ops::Math::Rem => Math::Rem,
    }
}

fn cmp(op: ops::Cmp) -> Cmp {
    match op {
        ops::Cmp::Eq => Cmp::Eq,
        ops::Cmp::Ne => Cmp::Ne,
        ops::Cmp::Lt => Cmp::Lt,
        ops::Cmp::Le => Cmp::Le,
        ops::Cmp::Gt => Cmp::Gt,
        ops::Cmp::Ge => Cmp::Ge,
    }
}

impl Ast {
    /// The number of nodes: a bound on how much deeper than its input an
    /// output can nest.
    pub(crate) fn size(&self) -> usize {
        let sub = |a: &Ast| a.size();
        1 + match self {
            Ast::Id
            | Ast::Lit(_)
            | Ast::Int(_)
            | Ast::Not
            | Ast::Empty
            | Ast::Length
            | Ast::ToString
            | Ast::ToNumber
            | Ast::Round(_)
            | Ast::Arr(None) => 0,
            Ast::Del(keys) => keys.len(),
            Ast::Path(h, steps) => sub(h) + steps.len(),
            Ast::Pipe(l, r)
            | Ast::Comma(l, r)
            | Ast::Math(l, _, r)
            | Ast::Cmp(l, _, r)
            | Ast::Logic(l, _, r)
            | Ast::Alt(l, r) => sub(l) + sub(r),
            Ast::Neg(f) | Ast::Select(f) | Ast::Arr(Some(f)) => sub(f),
            Ast::If(c, t, e) => sub(c) + sub(t) + sub(e),
            Ast::Obj(entries) => entries.iter().map(|(_, v)| sub(v)).sum(),
            Ast::Str(items) => items
                .iter()
                .map(|i| match i {
                    StrItem::Text(_) => 0,
                    StrItem::Term(t) => sub(t),
                })
                .sum(),
            Ast::Assign(keys, f) | Ast::Update(keys, f) => keys.len() + sub(f),
        }
    }
}
