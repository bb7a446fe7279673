//! Evaluation of the subset on `serde_json` values, in jaq's order.
//!
//! Each expression hands its outputs one by one to a callback, in the
//! order jaq produces them. Where jaq combines two streams (`l + r`,
//! objects, string interpolation, assignment), the inner stream is taken
//! first and its error, if any, comes after the combinations made before
//! it, as in jaq's lazy evaluation. The first [`Stop`] ends everything:
//! an error or an unsupported case sends the record to jaq, and `Done`
//! (from the caller's callback) ends early.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::parse::{Ast, Cmp, Key, Step, StrItem};
use super::path::{get_path, index_owned, set_path};
use super::value::{
    In, Res, Stop, V, compare, equal, length, math, negate, push_string, round, tonumber, tostring,
};

static TRUE: Value = Value::Bool(true);
static FALSE: Value = Value::Bool(false);

/// Where outputs go.
pub(crate) type Emit<'e, 'a> = &'e mut dyn FnMut(V<'a>) -> Res<()>;

fn boolean(b: bool) -> V<'static> {
    V::Ref(if b { &TRUE } else { &FALSE })
}

/// A stream's outputs, collected: the first without allocating.
struct Outputs<'a> {
    first: Option<V<'a>>,
    rest: Vec<V<'a>>,
    /// Why the stream ended early, after the outputs collected.
    stop: Res<()>,
}

impl<'a> Outputs<'a> {
    fn of(ast: &'a Ast, x: In<'a>) -> Self {
        let mut first = None;
        let mut rest = Vec::new();
        let stop = ast.eval(x, &mut |y| {
            if first.is_none() {
                first = Some(y);
            } else {
                rest.push(y);
            }
            Ok(())
        });
        Outputs { first, rest, stop }
    }

    /// Calls `f` on each output, with `true` on the last one (which may
    /// then consume what the others had to copy), then returns the
    /// stream's own stop.
    fn each(self, mut f: impl FnMut(V<'a>, bool) -> Res<()>) -> Res<()> {
        let Outputs { first, rest, stop } = self;
        if let Some(first) = first {
            let n = rest.len();
            f(first, n == 0)?;
            for (i, y) in rest.into_iter().enumerate() {
                f(y, i + 1 == n)?;
            }
        }
        stop
    }
}

impl V<'_> {
    /// A copy for all but the last use.
    fn dup(&self) -> Self {
        match self {
            V::Ref(v) => V::Ref(v),
            V::Own(v) => V::Own(v.clone()),
            V::Int(i) => V::Int(*i),
            V::Float(f) => V::Float(*f),
        }
    }
}

fn value_of(x: In<'_>) -> Res<&Value> {
    match x {
        In::Val(v) => Ok(v),
        // An update of a number is an error.
        In::Int(_) | In::Float(_) => Err(Stop::Error),
    }
}

impl Ast {
    /// Runs the expression on `x`, handing each output to `emit`.
    pub(crate) fn eval<'a>(&'a self, x: In<'a>, emit: Emit<'_, 'a>) -> Res<()> {
        match self {
            Ast::Id => emit(V::from_in(x)),
            Ast::Lit(v) => emit(V::Ref(v)),
            Ast::Int(i) => emit(V::Int(*i)),
            Ast::Empty => Ok(()),
            Ast::Path(head, steps) => head.eval(x, &mut |y| match follow(y, steps)? {
                Some(y) => emit(y),
                None => Ok(()),
            }),
            Ast::Pipe(l, r) => l.eval(x, &mut |y| r.eval_v(y, emit)),
            Ast::Comma(l, r) => {
                l.eval(x, emit)?;
                r.eval(x, emit)
            }
            Ast::Neg(f) => f.eval(x, &mut |y| emit(negate(y)?)),
            Ast::Math(l, op, r) => l.eval(x, &mut |a| {
                let mut a = Some(a);
                Outputs::of(r, x).each(|b, last| {
                    let a = match (last, &a) {
                        (false, Some(a)) => a.dup(),
                        _ => a.take().ok_or(Stop::Unsupported)?,
                    };
                    emit(math(*op, a, b)?)
                })
            }),
            Ast::Cmp(l, op, r) => l.eval(x, &mut |a| {
                Outputs::of(r, x).each(|b, _| {
                    let (a, b) = (a.as_in().view()?, b.as_in().view()?);
                    emit(boolean(match op {
                        Cmp::Eq => equal(a, b)?,
                        Cmp::Ne => !equal(a, b)?,
                        Cmp::Lt => compare(a, b)? == Ordering::Less,
                        Cmp::Le => compare(a, b)? != Ordering::Greater,
                        Cmp::Gt => compare(a, b)? == Ordering::Greater,
                        Cmp::Ge => compare(a, b)? != Ordering::Less,
                    }))
                })
            }),
            Ast::Logic(l, stop, r) => l.eval(x, &mut |a| {
                if a.as_in().truthy() == *stop {
                    emit(boolean(*stop))
                } else {
                    r.eval(x, &mut |b| emit(boolean(b.as_in().truthy())))
                }
            }),
            Ast::Alt(l, r) => {
                let mut any = false;
                l.eval(x, &mut |a| {
                    if a.as_in().truthy() {
                        any = true;
                        emit(a)
                    } else {
                        Ok(())
                    }
                })?;
                if any { Ok(()) } else { r.eval(x, emit) }
            }
            Ast::If(c, t, e) => c.eval(x, &mut |b| {
                if b.as_in().truthy() {
                    t.eval(x, emit)
                } else {
                    e.eval(x, emit)
                }
            }),
            Ast::Select(c) => c.eval(x, &mut |b| {
                if b.as_in().truthy() {
                    emit(V::from_in(x))
                } else {
                    Ok(())
                }
            }),
            Ast::Not => emit(boolean(!x.truthy())),
            Ast::Length => emit(length(x)?),
            Ast::ToString => emit(tostring(V::from_in(x))?),
            Ast::ToNumber => emit(tonumber(V::from_in(x))?),
            Ast::Round(how) => emit(round(*how, V::from_in(x))?),
            Ast::Arr(None) => emit(V::Own(Value::Array(Vec::new()))),
            Ast::Arr(Some(f)) => {
                let mut items = Vec::new();
                f.eval(x, &mut |y| {
                    items.push(y.into_value()?);
                    Ok(())
                })?;
                emit(V::Own(Value::Array(items)))
            }
            Ast::Obj(entries) => object(entries, x, Map::new(), emit),
            Ast::Str(items) => interpolate(items, x, String::new(), emit),
            Ast::Assign(keys, f) => {
                let v = value_of(x)?;
                Outputs::of(f, x).each(|y, _| {
                    let mut out = v.clone();
                    set_path(&mut out, keys, Some(y.into_value()?))?;
                    emit(V::Own(out))
                })
            }
            Ast::Update(keys, f) => {
                let v = value_of(x)?;
                let new = updated(v, keys, f)?;
                let mut out = v.clone();
                set_path(&mut out, keys, new)?;
                emit(V::Own(out))
            }
            Ast::Del(keys) => {
                let v = value_of(x)?;
                get_path(v, keys)?;
                let mut out = v.clone();
                set_path(&mut out, keys, None)?;
                emit(V::Own(out))
            }
        }
    }

    /// Runs the expression on a value it may consume: paths move their
    /// element out, updates change it in place, `select` passes it on.
    /// Evaluates on `y`, an output of the step before: borrowed or owned.
    fn eval_v<'a>(&'a self, y: V<'a>, emit: Emit<'_, 'a>) -> Res<()> {
        match y {
            V::Ref(v) => self.eval(In::Val(v), emit),
            V::Int(i) => self.eval(In::Int(i), emit),
            V::Float(f) => self.eval(In::Float(f), emit),
            V::Own(v) => self.eval_owned(v, emit),
        }
    }

    pub(crate) fn eval_owned<'a>(&'a self, mut v: Value, emit: Emit<'_, 'a>) -> Res<()> {
        match self {
            Ast::Id => emit(V::Own(v)),
            Ast::Path(head, steps) if matches!(head.as_ref(), Ast::Id) => {
                match follow(V::Own(v), steps)? {
                    Some(y) => emit(y),
                    None => Ok(()),
                }
            }
            Ast::Pipe(l, r) => l.eval_owned(v, &mut |y| r.eval_v(y, emit)),
            Ast::Select(c) => {
                let mut kept = 0usize;
                c.eval(In::Val(&v), &mut |b| {
                    kept += usize::from(b.as_in().truthy());
                    Ok(())
                })?;
                for _ in 1..kept {
                    emit(V::Own(v.clone()))?;
                }
                if kept > 0 { emit(V::Own(v)) } else { Ok(()) }
            }
            Ast::Assign(keys, f) => {
                let ys = {
                    let mut ys = Vec::new();
                    let stop = f.eval(In::Val(&v), &mut |y| {
                        ys.push(y.into_static());
                        Ok(())
                    });
                    (ys, stop)
                };
                let (ys, stop) = ys;
                let n = ys.len();
                for (i, y) in ys.into_iter().enumerate() {
                    let y = y.into_value()?;
                    if i + 1 == n {
                        set_path(&mut v, keys, Some(y))?;
                        emit(V::Own(std::mem::take(&mut v)))?;
                    } else {
                        let mut out = v.clone();
                        set_path(&mut out, keys, Some(y))?;
                        emit(V::Own(out))?;
                    }
                }
                stop
            }
            Ast::Update(keys, f) => {
                let new = updated(&v, keys, f)?;
                set_path(&mut v, keys, new)?;
                emit(V::Own(v))
            }
            Ast::Del(keys) => {
                get_path(&v, keys)?;
                set_path(&mut v, keys, None)?;
                emit(V::Own(v))
            }
            _ => self.eval(In::Val(&v), &mut |y| emit(y.into_static())),
        }
    }
}

/// Runs the pipeline `stages` on `y`: a value nothing else holds is
/// consumed (changed in place, moved into the outputs).
pub(crate) fn run_stages<'a>(stages: &'a [Ast], y: V<'a>, emit: Emit<'_, 'a>) -> Res<()> {
    let Some((stage, more)) = stages.split_first() else {
        return emit(y);
    };
    let next = &mut |z| run_stages(more, z, emit);
    match y {
        V::Own(v) => stage.eval_owned(v, next),
        V::Ref(v) => stage.eval(In::Val(v), next),
        V::Int(i) => stage.eval(In::Int(i), next),
        V::Float(f) => stage.eval(In::Float(f), next),
    }
}

/// The new value of `path |= f` at `keys`: `f`'s first output on the old
/// value (`null` when absent), `None` (delete) when `f` has none.
pub(crate) fn updated(v: &Value, keys: &[Key], f: &Ast) -> Res<Option<Value>> {
    let old = get_path(v, keys)?.unwrap_or(&super::path::NULL);
    let mut new = None;
    match f.eval(In::Val(old), &mut |y| {
        new = Some(y.into_value());
        Err(Stop::Done)
    }) {
        Ok(()) | Err(Stop::Done) => {}
        Err(e) => return Err(e),
    }
    new.transpose()
}

/// `{k1: f1, k2: f2, ...}`: every combination, the first key's outputs
/// outermost; a repeated key keeps its first place and its last value.
fn object<'a>(
    entries: &'a [(String, Ast)],
    x: In<'a>,
    map: Map<String, Value>,
    emit: Emit<'_, 'a>,
) -> Res<()> {
    let Some(((key, f), rest)) = entries.split_first() else {
        return emit(V::Own(Value::Object(map)));
    };
    let mut map = Some(map);
    Outputs::of(f, x).each(|y, last| {
        let mut m = if last {
            map.take().unwrap_or_default()
        } else {
            map.clone().unwrap_or_default()
        };
        m.insert(key.clone(), y.into_value()?);
        object(rest, x, m, emit)
    })
}

/// `"a\(f)b\(g)"`: every combination, the first part's outputs outermost.
fn interpolate<'a>(items: &'a [StrItem], x: In<'a>, s: String, emit: Emit<'_, 'a>) -> Res<()> {
    let Some((item, rest)) = items.split_first() else {
        return emit(V::Own(Value::String(s)));
    };
    match item {
        StrItem::Text(t) => {
            let mut s = s;
            s.push_str(t);
            interpolate(rest, x, s, emit)
        }
        StrItem::Term(f) => {
            let mut s = Some(s);
            Outputs::of(f, x).each(|y, last| {
                let mut t = if last {
                    s.take().unwrap_or_default()
                } else {
                    s.clone().unwrap_or_default()
                };
                push_string(&mut t, y.as_in())?;
                interpolate(rest, x, t, emit)
            })
        }
    }
}

/// `y` through the path's steps; `None` when an optional step (`.a?`)
/// failed, which gives no output.
fn follow<'a>(mut y: V<'a>, steps: &'a [Step]) -> Res<Option<V<'a>>> {
    for step in steps {
        y = match index_owned(y, &step.key) {
            Ok(next) => next,
            Err(Stop::Error) if step.optional => return Ok(None),
            Err(e) => return Err(e),
        };
    }
    Ok(Some(y))
}
