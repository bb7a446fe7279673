//! The fast path: the common subset of jq evaluated directly on
//! `serde_json` values, with jaq's results.
//!
//! An expression takes this path when jaq's parse of it uses only the
//! subset ([`parse`] lists it). Any case the fast path does not settle
//! itself, an error included, ends in [`Stop::Error`] or
//! [`Stop::Unsupported`], and the caller runs jaq on the same input
//! instead: the fast path either gives jaq's outputs or gives up.

mod eval;
mod parse;
mod path;
mod value;

use serde_json::Value;

use parse::Ast;
pub(crate) use value::Stop;
use value::{In, Res};

/// Inputs and outputs nested deeper than this are errors of the jaq path
/// (`MAX_DEPTH` there).
const MAX_DEPTH: usize = 512;

/// An expression of the subset, ready to run.
#[derive(Debug)]
pub(crate) struct Program {
    ast: Ast,
    /// The top-level pipeline, `a | b | c` as `[a, b, c]`.
    stages: Vec<Ast>,
    /// How much deeper than the input an output can nest.
    size: usize,
}

impl Program {
    /// The fast path of `expr`, if every part of it is in the subset.
    pub(crate) fn compile(expr: &str) -> Option<Self> {
        let ast = parse::parse(expr)?;
        let mut stages = Vec::new();
        flatten(parse::parse(expr)?, &mut stages);
        Some(Program {
            size: ast.size(),
            ast,
            stages,
        })
    }

    /// Every output on `input`.
    pub(crate) fn run(&self, input: &Value) -> Res<Vec<Value>> {
        self.admit(input)?;
        let mut out = Vec::new();
        self.ast.eval(In::Val(input), &mut |y| {
            out.push(y.into_output());
            Ok(())
        })?;
        Ok(out)
    }

    /// The first output on `input`, if any.
    pub(crate) fn first(&self, input: &Value) -> Res<Option<Value>> {
        self.admit(input)?;
        let mut first = None;
        match self.ast.eval(In::Val(input), &mut |y| {
            first = Some(y.into_output());
            Err(Stop::Done)
        }) {
            Ok(()) | Err(Stop::Done) => Ok(first),
            Err(e) => Err(e),
        }
    }

    /// Whether the first output on `input` is neither `false` nor `null`.
    pub(crate) fn test(&self, input: &Value) -> Res<bool> {
        self.admit(input)?;
        let mut truthy = false;
        match self.ast.eval(In::Val(input), &mut |y| {
            truthy = y.as_in().truthy();
            Err(Stop::Done)
        }) {
            Ok(()) | Err(Stop::Done) => Ok(truthy),
            Err(e) => Err(e),
        }
    }

    /// Appends every output on `payload` to `out`, consuming the payload
    /// when it can. On an `Err`, `payload` is as it was and `out` is
    /// unchanged, for jaq to run on.
    pub(crate) fn map(&self, payload: &mut Value, out: &mut Vec<Value>) -> Res<()> {
        self.admit(payload)?;
        let start = out.len();
        let result = self.map_stages(payload, out);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    /// [`Self::map`]'s work. Leading `select`s only read the payload; the
    /// step after them decides how the payload is used: changed in place
    /// when it is the last step (once it cannot fail any more), only read
    /// when it builds new values, and copied first otherwise, so that an
    /// `Err` always leaves the payload as it was.
    fn map_stages(&self, payload: &mut Value, out: &mut Vec<Value>) -> Res<()> {
        let split = self
            .stages
            .iter()
            .position(|s| !matches!(s, Ast::Select(_) | Ast::Id))
            .unwrap_or(self.stages.len());
        let (filters, rest) = self.stages.split_at(split);
        let Some((step, more)) = rest.split_first().filter(|(_, more)| !more.is_empty()) else {
            let Some((last, filters)) = self.stages.split_last() else {
                return Ok(());
            };
            return self.map_in_place(filters, last, payload, out);
        };
        let consumes = match step {
            Ast::Path(head, _) => matches!(head.as_ref(), Ast::Id),
            Ast::Assign(..) | Ast::Update(..) | Ast::Del(..) => true,
            _ => false,
        };
        if consumes {
            let backup = payload.clone();
            let result = self.ast.eval_owned(std::mem::take(payload), &mut |y| {
                out.push(y.into_output());
                Ok(())
            });
            if result.is_err() {
                *payload = backup;
            }
            return result;
        }
        match pass(filters, payload)? {
            Pass::Drop => Ok(()),
            Pass::Many => by_reference(&self.ast, payload, out),
            Pass::Once => step.eval(In::Val(payload), &mut |y| {
                eval::run_stages(more, y, &mut |z| {
                    out.push(z.into_output());
                    Ok(())
                })
            }),
        }
    }

    fn map_in_place(
        &self,
        filters: &[Ast],
        last: &Ast,
        payload: &mut Value,
        out: &mut Vec<Value>,
    ) -> Res<()> {
        match pass(filters, payload)? {
            Pass::Drop => return Ok(()),
            Pass::Once => {}
            // Several copies of the payload: no gain in place.
            Pass::Many => return by_reference(&self.ast, payload, out),
        }
        match last {
            Ast::Id => out.push(std::mem::take(payload)),
            Ast::Select(c) => {
                let mut kept = 0usize;
                c.eval(In::Val(payload), &mut |b| {
                    kept += usize::from(b.as_in().truthy());
                    Ok(())
                })?;
                for _ in 1..kept {
                    out.push(payload.clone());
                }
                if kept > 0 {
                    out.push(std::mem::take(payload));
                }
            }
            Ast::Assign(keys, f) => {
                // The usual single output without allocating.
                let mut first = None;
                let mut rest = Vec::new();
                f.eval(In::Val(payload), &mut |y| {
                    let y = y.into_value()?;
                    match first {
                        None => first = Some(y),
                        Some(_) => rest.push(y),
                    }
                    Ok(())
                })?;
                let Some(first) = first else {
                    return Ok(());
                };
                let final_y = match rest.pop() {
                    None => first,
                    Some(final_y) => {
                        for y in std::iter::once(first).chain(rest) {
                            let mut copy = payload.clone();
                            path::set_path(&mut copy, keys, Some(y))?;
                            out.push(copy);
                        }
                        final_y
                    }
                };
                path::set_path(payload, keys, Some(final_y))?;
                out.push(std::mem::take(payload));
            }
            Ast::Update(keys, f) => {
                let new = eval::updated(payload, keys, f)?;
                path::set_path(payload, keys, new)?;
                out.push(std::mem::take(payload));
            }
            Ast::Del(keys) => {
                path::get_path(payload, keys)?;
                path::set_path(payload, keys, None)?;
                out.push(std::mem::take(payload));
            }
            other => by_reference(other, payload, out)?,
        }
        Ok(())
    }

    /// Refuses inputs the jaq path refuses or sees differently: nested too
    /// deep (or so deep an output could be), or holding `-0` (jaq reads it
    /// as the integer 0 and writes `0`).
    fn admit(&self, input: &Value) -> Res<()> {
        let limit = MAX_DEPTH.saturating_sub(self.size);
        if admissible(input, 0, limit) {
            Ok(())
        } else {
            Err(Stop::Unsupported)
        }
    }

    /// The outputs before the evaluation stopped, and why it stopped (for
    /// comparing positions of errors with jaq).
    #[cfg(test)]
    pub(crate) fn trace(&self, input: &Value) -> (Vec<Value>, Option<Stop>) {
        if let Err(e) = self.admit(input) {
            return (Vec::new(), Some(e));
        }
        let mut out = Vec::new();
        let stop = self
            .ast
            .eval(In::Val(input), &mut |y| {
                out.push(y.into_output());
                Ok(())
            })
            .err();
        (out, stop)
    }
}

/// How many times leading `select`s let the payload through.
enum Pass {
    Drop,
    Once,
    Many,
}

fn pass(filters: &[Ast], payload: &Value) -> Res<Pass> {
    for filter in filters {
        if let Ast::Select(c) = filter {
            let mut kept = 0usize;
            c.eval(In::Val(payload), &mut |b| {
                kept += usize::from(b.as_in().truthy());
                Ok(())
            })?;
            match kept {
                0 => return Ok(Pass::Drop),
                1 => {}
                _ => return Ok(Pass::Many),
            }
        }
    }
    Ok(Pass::Once)
}

fn by_reference(ast: &Ast, input: &Value, out: &mut Vec<Value>) -> Res<()> {
    ast.eval(In::Val(input), &mut |y| {
        out.push(y.into_output());
        Ok(())
    })
}

fn flatten(ast: Ast, stages: &mut Vec<Ast>) {
    match ast {
        Ast::Pipe(l, r) => {
            flatten(*l, stages);
            flatten(*r, stages);
        }
        other => stages.push(other),
    }
}

fn admissible(v: &Value, depth: usize, limit: usize) -> bool {
    if depth > limit {
        return false;
    }
    match v {
        Value::Number(n) => n.as_str() != "-0",
        Value::Array(items) => items.iter().all(|v| admissible(v, depth + 1, limit)),
        Value::Object(map) => map.values().all(|v| admissible(v, depth + 1, limit)),
        _ => true,
    }
}
