//! Walks the tree with the data. Positions in errors point at the call or
//! operand that failed; reasons come from `funcs` and hold no data values.

use super::Failure;
use super::funcs;
use super::parser::{Branch, Command, Node, Pipeline, Term, TermKind};
use super::value::Value;

pub fn render(nodes: &[Node], root: Value) -> Result<Vec<u8>, Failure> {
    let mut exec = Exec { vars: vec![("$".to_string(), root.clone())], out: Vec::new(), steps: 0 };
    exec.walk(nodes, &root)?;
    Ok(exec.out)
}

#[derive(PartialEq)]
enum Flow {
    Next,
    Break,
    Continue,
}

struct Exec {
    /// Innermost last; blocks truncate back to their length on exit, which
    /// is Go's scoping (a variable lives until the `end` of its block).
    vars: Vec<(String, Value)>,
    /// Bytes, not a String: Go strings carry any bytes, and a binary value
    /// (a keystore) must come out of `{{ .keystore }}` unchanged.
    out: Vec<u8>,
    /// Nodes run so far: nested ranges can loop for hours without output.
    steps: usize,
}

const MAX_STEPS: usize = 10_000_000;

impl Exec {
    fn walk(&mut self, nodes: &[Node], dot: &Value) -> Result<Flow, Failure> {
        for node in nodes {
            self.step()?;
            let flow = match node {
                Node::Text(text) => {
                    self.out.extend_from_slice(text.as_bytes());
                    Flow::Next
                }
                Node::Action(pipe) => {
                    let value = self.pipeline(pipe, dot)?;
                    if pipe.decl.is_empty() {
                        match value.as_bytes() {
                            Some(bytes) => self.out.extend_from_slice(bytes),
                            None => self.out.extend_from_slice(value.to_string().as_bytes()),
                        }
                    }
                    Flow::Next
                }
                Node::If(branch) => self.conditional(branch, dot, false)?,
                Node::With(branch) => self.conditional(branch, dot, true)?,
                Node::Range(branch) => self.range(branch, dot)?,
                Node::Break => Flow::Break,
                Node::Continue => Flow::Continue,
            };
            if self.out.len() > super::MAX_OUTPUT {
                return Err(Failure::new(0, "output exceeds 1 MiB, the size limit of a Secret"));
            }
            if flow != Flow::Next {
                return Ok(flow);
            }
        }
        Ok(Flow::Next)
    }

    fn step(&mut self) -> Result<(), Failure> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(Failure::new(0, format!("template ran more than {MAX_STEPS} steps")));
        }
        Ok(())
    }

    fn conditional(&mut self, branch: &Branch, dot: &Value, with: bool) -> Result<Flow, Failure> {
        let scope = self.vars.len();
        let value = self.pipeline(&branch.pipe, dot)?;
        let flow = if value.truthy() {
            let dot = if with { &value } else { dot };
            self.walk(&branch.body, dot)
        } else if let Some(otherwise) = &branch.otherwise {
            self.walk(otherwise, dot)
        } else {
            Ok(Flow::Next)
        };
        self.vars.truncate(scope);
        flow
    }

    fn range(&mut self, branch: &Branch, dot: &Value) -> Result<Flow, Failure> {
        let scope = self.vars.len();
        let value = self.eval(&branch.pipe, dot)?;
        let pos = branch.pipe.cmds[0].terms[0].pos;
        let items: Vec<(Value, Value)> = match value {
            Value::Nil => Vec::new(),
            Value::List(list) => list.into_iter().enumerate().map(|(i, v)| (Value::Int(i as i64), v)).collect(),
            // BTreeMap iterates in key order, which is what Go's range does.
            Value::Map(map) => map.into_iter().map(|(k, v)| (Value::Str(k), v)).collect(),
            Value::Int(n) if n > super::MAX_OUTPUT as i64 => {
                return Err(Failure::new(pos, "range over an int larger than 1Mi is not allowed"));
            }
            Value::Int(n) => (0..n.max(0)).map(|i| (Value::Int(i), Value::Int(i))).collect(),
            other => return Err(Failure::new(pos, format!("range can't iterate over {}", other.type_name()))),
        };
        if items.is_empty() {
            let flow = match &branch.otherwise {
                Some(otherwise) => self.walk(otherwise, dot)?,
                None => Flow::Next,
            };
            self.vars.truncate(scope);
            return Ok(flow);
        }
        for (key, elem) in items {
            self.step()?;
            let iteration = self.vars.len();
            let bound = match branch.pipe.decl.len() {
                2 => vec![key, elem.clone()],
                1 => vec![elem.clone()],
                _ => Vec::new(),
            };
            self.bind(&branch.pipe, bound);
            let flow = self.walk(&branch.body, &elem);
            self.vars.truncate(iteration);
            if flow? == Flow::Break {
                break;
            }
        }
        self.vars.truncate(scope);
        Ok(Flow::Next)
    }

    /// Evaluates and binds the pipeline's variables.
    fn pipeline(&mut self, pipe: &Pipeline, dot: &Value) -> Result<Value, Failure> {
        let value = self.eval(pipe, dot)?;
        if !pipe.decl.is_empty() {
            self.bind(pipe, vec![value.clone()]);
        }
        Ok(value)
    }

    fn bind(&mut self, pipe: &Pipeline, values: Vec<Value>) {
        for (name, value) in pipe.decl.iter().zip(values) {
            let existing = if pipe.assign { self.vars.iter_mut().rev().find(|(n, _)| n == name) } else { None };
            match existing {
                Some(slot) => slot.1 = value,
                None => self.vars.push((name.clone(), value)),
            }
        }
    }

    fn eval(&mut self, pipe: &Pipeline, dot: &Value) -> Result<Value, Failure> {
        let mut value = None;
        for cmd in &pipe.cmds {
            value = Some(self.command(cmd, dot, value.take())?);
        }
        Ok(value.unwrap_or(Value::Nil))
    }

    fn command(&mut self, cmd: &Command, dot: &Value, piped: Option<Value>) -> Result<Value, Failure> {
        let first = &cmd.terms[0];
        let TermKind::Func(name) = &first.kind else { return self.term(first, dot) };
        let rest = &cmd.terms[1..];
        if name == "and" || name == "or" {
            return self.and_or(name, first.pos, rest, dot, piped);
        }
        let mut args = Vec::with_capacity(rest.len() + 1);
        for term in rest {
            args.push(self.term(term, dot)?);
        }
        args.extend(piped);
        // Messages of `fail` and `required` are only shown when written in
        // the template: a computed one may be a secret.
        let literal_message = matches!(rest.first().map(|t| &t.kind), Some(TermKind::Lit(Value::Str(_))));
        funcs::call(name, args, literal_message).map_err(|reason| Failure::new(first.pos, format!("{name}: {reason}")))
    }

    /// Go evaluates `and`/`or` arguments only until the result is known.
    fn and_or(
        &mut self,
        name: &str,
        pos: usize,
        rest: &[Term],
        dot: &Value,
        piped: Option<Value>,
    ) -> Result<Value, Failure> {
        if rest.is_empty() && piped.is_none() {
            return Err(Failure::new(pos, format!("{name}: wrong number of args: want at least 1 got 0")));
        }
        let decided = |v: &Value| (name == "and") != v.truthy();
        let mut last = Value::Nil;
        for term in rest {
            last = self.term(term, dot)?;
            if decided(&last) {
                return Ok(last);
            }
        }
        Ok(piped.unwrap_or(last))
    }

    fn term(&mut self, term: &Term, dot: &Value) -> Result<Value, Failure> {
        let at = |reason| Failure::new(term.pos, reason);
        match &term.kind {
            TermKind::Dot => Ok(dot.clone()),
            TermKind::Nil => Ok(Value::Nil),
            TermKind::Lit(v) => Ok(v.clone()),
            TermKind::Func(name) => funcs::call(name, Vec::new(), false).map_err(|r| at(format!("{name}: {r}"))),
            TermKind::Field(path) => fields(dot, path).map_err(at),
            TermKind::Var(name, path) => {
                let value = self.vars.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v);
                let value = value.ok_or_else(|| at(format!("undefined variable {name:?}")))?;
                fields(value, path).map_err(at)
            }
            TermKind::Sub(pipe, path) => {
                let value = self.pipeline(pipe, dot)?;
                fields(&value, path).map_err(at)
            }
        }
    }
}

/// Follows `.a.b`. A missing key, or a field of a missing key, is `Nil`,
/// which renders as "": ESO users expect that rather than Go's
/// `<no value>` or its nil-pointer error.
fn fields(mut value: &Value, path: &[String]) -> Result<Value, String> {
    const MISSING: &Value = &Value::Nil;
    for key in path {
        value = match value {
            Value::Map(map) => map.get(key).unwrap_or(MISSING),
            Value::Nil => MISSING,
            other => return Err(format!("can't evaluate field {key} in type {}", other.type_name())),
        };
    }
    Ok(value.clone())
}
