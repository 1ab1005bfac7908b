//! Walks the tree with the data. Positions in errors point at the call or
//! operand that failed; reasons come from `funcs` and hold no data values.

use std::time::{Duration, Instant};

use super::funcs::{self, Dialect};
use super::parser::{Branch, Command, Node, Pipeline, Term, TermKind};
use super::value::Value;
use super::{Failure, Limits};

pub fn render(nodes: &[Node], root: Value, budget: Budget, dialect: Dialect) -> Result<Vec<u8>, Failure> {
    render_checked(nodes, root, budget, dialect, false)
}

/// As `render`; `missing_key_error` is Go's `missingkey=error` option: a
/// field of a map that has no such key is an error rather than nothing.
pub fn render_checked(
    nodes: &[Node],
    root: Value,
    budget: Budget,
    dialect: Dialect,
    missing_key_error: bool,
) -> Result<Vec<u8>, Failure> {
    let vars = vec![("$".to_string(), root.clone())];
    let mut exec = Exec { vars, out: Vec::new(), steps: 0, budget, dialect, missing_key_error };
    exec.walk(nodes, &root)?;
    Ok(exec.out)
}

/// What is left of a render's `Limits`.
pub struct Budget {
    time: Duration,
    deadline: Instant,
    memory: usize,
    memory_left: usize,
}

impl Budget {
    /// Starts the clock.
    pub fn new(limits: Limits) -> Budget {
        let now = Instant::now();
        let deadline = now.checked_add(limits.time).unwrap_or_else(|| now + Duration::from_secs(86_400));
        Budget { time: limits.time, deadline, memory: limits.memory, memory_left: limits.memory }
    }

    fn check_time(&self, pos: usize) -> Result<(), Failure> {
        if Instant::now() > self.deadline {
            return Err(Failure::new(pos, format!("template ran longer than {:?}", self.time)));
        }
        Ok(())
    }

    /// Counts a value just built (or cloned) against the memory budget.
    fn charge(&mut self, pos: usize, value: &Value) -> Result<(), Failure> {
        let weight = value.weight();
        match self.memory_left.checked_sub(weight) {
            Some(left) => {
                self.memory_left = left;
                Ok(())
            }
            None => Err(Failure::new(pos, format!("template used more than {} MiB of memory", self.memory >> 20))),
        }
    }
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
    budget: Budget,
    /// Which functions calls go to.
    dialect: Dialect,
    /// Go's `missingkey=error`.
    missing_key_error: bool,
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
                    // `{{ .key }}`, the most common action, prints the data
                    // where it is rather than a copy.
                    if let Some(term) = lone_place(pipe) {
                        write(
                            &mut self.out,
                            place(&self.vars, term, dot, self.dialect, self.missing_key_error)?,
                            term.pos,
                            self.dialect,
                        )?;
                    } else {
                        let value = self.pipeline(pipe, dot)?;
                        if pipe.decl.is_empty() {
                            write(&mut self.out, &value, pipe_pos(pipe), self.dialect)?;
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
        // Reading the clock costs tens of nanoseconds; a step, more.
        if self.steps.is_multiple_of(1024) {
            self.budget.check_time(0)?;
        }
        Ok(())
    }

    fn conditional(&mut self, branch: &Branch, dot: &Value, with: bool) -> Result<Flow, Failure> {
        let scope = self.vars.len();
        // `{{ if .key }}` tests the data where it is rather than a copy.
        let lone = lone_place(&branch.pipe).filter(|_| !with);
        let value = match lone {
            Some(term) => Value::Bool(place(&self.vars, term, dot, self.dialect, self.missing_key_error)?.truthy()),
            None => self.pipeline(&branch.pipe, dot)?,
        };
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
        let pos = pipe_pos(&branch.pipe);
        // Ints count lazily: `range 1000000` must not build a million pairs.
        let (count, items): (i64, Box<dyn Iterator<Item = (Value, Value)>>) = match value {
            Value::Nil => (0, Box::new(std::iter::empty())),
            Value::List(list) => (
                i64::try_from(list.len()).unwrap_or(i64::MAX),
                Box::new(list.into_iter().zip(0..).map(|(v, i)| (Value::Int(i), v))),
            ),
            // BTreeMap iterates in key order, which is what Go's range does.
            Value::Map(map) => (
                i64::try_from(map.len()).unwrap_or(i64::MAX),
                Box::new(map.into_iter().map(|(k, v)| (Value::Str(k), v))),
            ),
            Value::Int(n) if n > super::MAX_OUTPUT as i64 => {
                return Err(Failure::new(pos, "range over an int larger than 1Mi is not allowed"));
            }
            Value::Int(n) => (n.max(0), Box::new((0..n.max(0)).map(|i| (Value::Int(i), Value::Int(i))))),
            other => return Err(Failure::new(pos, format!("range can't iterate over {}", other.type_name()))),
        };
        if count == 0 {
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
            if !bound.is_empty() {
                self.budget.charge(pos, &elem)?;
            }
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
            self.budget.charge(pipe_pos(pipe), &value)?;
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
        let Some((first, rest)) = cmd.terms.split_first() else {
            return Err(Failure::new(0, "empty command"));
        };
        let TermKind::Func(name) = &first.kind else { return self.term(first, dot) };
        if name == "and" || name == "or" {
            return self.and_or(name, first.pos, rest, dot, piped);
        }
        if let [container, keys @ ..] = rest
            && name == "index"
            && !(keys.is_empty() && piped.is_none())
            && matches!(container.kind, TermKind::Dot | TermKind::Field(_) | TermKind::Var(..))
        {
            return self.index_in_place(first.pos, container, keys, piped, dot);
        }
        let mut args = Vec::with_capacity(rest.len() + 1);
        for term in rest {
            args.push(self.term(term, dot)?);
        }
        args.extend(piped);
        // Messages of `fail` and `required` are only shown when written in
        // the template: a computed one may be a secret.
        let literal_message = matches!(rest.first().map(|t| &t.kind), Some(TermKind::Lit(Value::Str(_))));
        // A single call may be slow (a 1 MiB fromJson), so calls read the
        // clock each time.
        self.budget.check_time(first.pos)?;
        let value = funcs::call(self.dialect, name, args, literal_message)
            .map_err(|reason| Failure::new(first.pos, format!("{name}: {reason}")))?;
        self.budget.charge(first.pos, &value)?;
        if let (Some(Term { kind: TermKind::Var(var, path), .. }), Value::Map(_)) = (rest.first(), &value)
            && funcs::mutates(self.dialect, name)
        {
            self.budget.charge(first.pos, &value)?;
            self.write_back(var, path, value.clone());
        }
        Ok(value)
    }

    /// Go's maps are references: `set $d "k" "v"` changes `$d` itself.
    /// Values here are copies, so the changed map goes back where the
    /// argument came from (a variable, or a map inside one).
    fn write_back(&mut self, var: &str, path: &[String], value: Value) {
        let Some((_, slot)) = self.vars.iter_mut().rev().find(|(n, _)| n == var) else { return };
        let mut slot: &mut Value = slot;
        for key in path {
            slot = match slot {
                Value::Map(map) => match map.get_mut(key) {
                    Some(next) => next,
                    None => return,
                },
                _ => return,
            };
        }
        *slot = value;
    }

    /// `index` on data where it is: `index . "tls.crt"` copies the one
    /// value it returns, not all of `.` first (which the memory budget
    /// would count on every call). The same results and errors as
    /// `builtins::index` on a copy.
    fn index_in_place(
        &mut self,
        pos: usize,
        container: &Term,
        key_terms: &[Term],
        piped: Option<Value>,
        dot: &Value,
    ) -> Result<Value, Failure> {
        // The container's own error comes first, as in argument order.
        place(&self.vars, container, dot, self.dialect, self.missing_key_error)?;
        let mut keys = Vec::with_capacity(key_terms.len() + 1);
        for term in key_terms {
            keys.push(self.term(term, dot)?);
        }
        keys.extend(piped);
        self.budget.check_time(pos)?;
        const NIL: &Value = &Value::Nil;
        let mut current = place(&self.vars, container, dot, self.dialect, self.missing_key_error)?;
        let mut keys = keys.into_iter();
        let mut owned = None;
        for key in keys.by_ref() {
            current = match (current, &key) {
                (Value::List(list), Value::Int(i)) => match usize::try_from(*i).ok().and_then(|i| list.get(i)) {
                    Some(item) => item,
                    None => {
                        return Err(Failure::new(pos, format!("index: {}", super::builtins::OUT_OF_RANGE)));
                    }
                },
                (Value::Map(map), key) if key.is_stringish() => {
                    map.get(key.as_text().unwrap_or_default().as_ref()).unwrap_or(NIL)
                }
                _ => {
                    owned = Some((current.clone(), key));
                    break;
                }
            };
        }
        let value = match owned {
            None => current.clone(),
            Some((item, key)) => {
                let mut item = funcs::index(item, &key);
                for key in keys {
                    item = item.and_then(|item| funcs::index(item, &key));
                }
                item.map_err(|reason| Failure::new(pos, format!("index: {reason}")))?
            }
        };
        self.budget.charge(pos, &value)?;
        Ok(value)
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

    /// An operand's value, a copy counted against the memory budget.
    fn term(&mut self, term: &Term, dot: &Value) -> Result<Value, Failure> {
        let value = self.term_uncharged(term, dot)?;
        self.budget.charge(term.pos, &value)?;
        Ok(value)
    }

    fn term_uncharged(&mut self, term: &Term, dot: &Value) -> Result<Value, Failure> {
        let at = |reason| Failure::new(term.pos, reason);
        match &term.kind {
            TermKind::Dot => Ok(dot.clone()),
            TermKind::Nil => Ok(Value::Nil),
            TermKind::Lit(v) => Ok(v.clone()),
            TermKind::Func(name) => {
                self.budget.check_time(term.pos)?;
                funcs::call(self.dialect, name, Vec::new(), false).map_err(|r| at(format!("{name}: {r}")))
            }
            TermKind::Field(_) | TermKind::Var(..) => {
                place(&self.vars, term, dot, self.dialect, self.missing_key_error).cloned()
            }
            TermKind::Sub(pipe, path) => {
                let value = self.pipeline(pipe, dot)?;
                fields(&value, path, self.dialect, self.missing_key_error).map_err(at)
            }
        }
    }
}

/// The one term of a pipeline that is just `.`, a field or a variable,
/// and declares nothing.
fn lone_place(pipe: &Pipeline) -> Option<&Term> {
    let [cmd] = pipe.cmds.as_slice() else { return None };
    match cmd.terms.as_slice() {
        [term]
            if pipe.decl.is_empty() && matches!(term.kind, TermKind::Dot | TermKind::Field(_) | TermKind::Var(..)) =>
        {
            Some(term)
        }
        _ => None,
    }
}

/// Appends a value as an action prints it. Nothing (a missing key, a JSON
/// null) prints as "" for ESO, whose users spell "empty" that way, and as
/// Go's `<no value>` for Vault agent templates, as consul-template prints it.
fn write(out: &mut Vec<u8>, value: &Value, pos: usize, dialect: Dialect) -> Result<(), Failure> {
    if matches!(value, Value::Nil) && dialect == Dialect::VaultAgent {
        out.extend_from_slice(b"<no value>");
        return Ok(());
    }
    match value.as_bytes() {
        Some(bytes) => out.extend_from_slice(bytes),
        None => out.extend_from_slice(value.display().map_err(|reason| Failure::new(pos, reason))?.as_bytes()),
    }
    Ok(())
}

/// The value `term` names where it lives: `.`, `.a.b` or `$x.a`.
fn place<'a>(
    vars: &'a [(String, Value)],
    term: &Term,
    dot: &'a Value,
    dialect: Dialect,
    strict: bool,
) -> Result<&'a Value, Failure> {
    let at = |reason| Failure::new(term.pos, reason);
    match &term.kind {
        TermKind::Dot => Ok(dot),
        TermKind::Field(path) => fields_ref(dot, path, dialect, strict).map_err(at),
        TermKind::Var(name, path) => {
            let value = vars.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v);
            let value = value.ok_or_else(|| at(format!("undefined variable {name:?}")))?;
            fields_ref(value, path, dialect, strict).map_err(at)
        }
        _ => Err(at("not a field or variable".into())),
    }
}

/// Where a pipeline starts, for its errors.
fn pipe_pos(pipe: &Pipeline) -> usize {
    pipe.cmds.first().and_then(|cmd| cmd.terms.first()).map_or(0, |term| term.pos)
}

/// Follows `.a.b`. A missing key is `Nil`. For ESO a field of a missing
/// key is `Nil` too, rendering as "": its users expect that rather than
/// Go's nil-pointer error. Vault agent templates get Go's error, as
/// consul-template gives it, so a template fails here where it fails there.
fn fields(value: &Value, path: &[String], dialect: Dialect, strict: bool) -> Result<Value, String> {
    fields_ref(value, path, dialect, strict).cloned()
}

/// `strict`: Go's `missingkey=error`.
fn fields_ref<'a>(mut value: &'a Value, path: &[String], dialect: Dialect, strict: bool) -> Result<&'a Value, String> {
    const MISSING: &Value = &Value::Nil;
    for key in path {
        value = match value {
            Value::Map(map) => match map.get(key) {
                Some(found) => found,
                None if strict => return Err(format!("map has no entry for key {key:?}")),
                None => MISSING,
            },
            Value::Nil if dialect == Dialect::VaultAgent => {
                return Err(format!("nil pointer evaluating interface {{}}.{key}"));
            }
            Value::Nil => MISSING,
            other => return Err(format!("can't evaluate field {key} in type {}", other.type_name())),
        };
    }
    Ok(value)
}
