//! Tokens to a tree. Function names and variables are checked here so a
//! typo fails before any data is touched.

use std::collections::HashMap;

use super::Failure;
use super::funcs::{self, Dialect};
use super::lexer::{Delims, Tok, Token, lex};
use super::value::Value;

#[derive(Debug)]
pub enum Node {
    Text(String),
    Action(Pipeline),
    If(Branch),
    With(Branch),
    Range(Branch),
    Break,
    Continue,
}

#[derive(Debug)]
pub struct Branch {
    pub pipe: Pipeline,
    pub body: Vec<Node>,
    pub otherwise: Option<Vec<Node>>,
}

#[derive(Debug)]
pub struct Pipeline {
    /// Variables declared (`:=`) or assigned (`=`) by this pipeline.
    pub decl: Vec<String>,
    pub assign: bool,
    pub cmds: Vec<Command>,
}

/// A function call, or a single operand.
#[derive(Debug)]
pub struct Command {
    pub terms: Vec<Term>,
}

#[derive(Debug)]
pub struct Term {
    pub pos: usize,
    pub kind: TermKind,
}

#[derive(Debug)]
pub enum TermKind {
    Dot,
    Nil,
    Lit(Value),
    /// `.a.b`, from dot.
    Field(Vec<String>),
    /// `$x.a.b`.
    Var(String, Vec<String>),
    Func(String),
    /// `(pipeline).a.b`.
    Sub(Box<Pipeline>, Vec<String>),
}

pub fn parse(src: &str, dialect: Dialect, delims: Delims<'_>) -> Result<Vec<Node>, Failure> {
    let mut parser =
        Parser { toks: lex(src, delims)?, next: 0, vars: Scope::default(), range_depth: 0, depth: 0, dialect };
    parser.vars.declare("$");
    let (nodes, stop, pos) = parser.list()?;
    match stop {
        Stop::Eof => Ok(nodes),
        Stop::End => Err(Failure::new(pos, "unexpected {{end}}")),
        Stop::Else => Err(Failure::new(pos, "unexpected {{else}}")),
    }
}

enum Stop {
    Eof,
    End,
    Else,
}

const KEYWORDS: &[&str] = &["if", "else", "end", "range", "with", "break", "continue", "define", "template", "block"];

struct Parser {
    toks: Vec<Token>,
    next: usize,
    /// Variables in scope, innermost last; Go rejects unknown ones at parse.
    vars: Scope,
    range_depth: usize,
    /// Blocks and parentheses open around the current token.
    depth: usize,
    /// Which function names exist.
    dialect: Dialect,
}

/// Variables in scope: in order, so a block can drop its own at `end`,
/// and counted by name, so a template with thousands of variables does
/// not take quadratic time to check them.
#[derive(Default)]
struct Scope {
    order: Vec<String>,
    count: HashMap<String, usize>,
}

impl Scope {
    fn declare(&mut self, name: &str) {
        self.order.push(name.to_string());
        *self.count.entry(name.to_string()).or_default() += 1;
    }

    fn contains(&self, name: &str) -> bool {
        self.count.contains_key(name)
    }

    fn len(&self) -> usize {
        self.order.len()
    }

    fn truncate(&mut self, len: usize) {
        while self.order.len() > len {
            let Some(name) = self.order.pop() else { break };
            if let Some(n) = self.count.get_mut(&name) {
                *n -= 1;
                if *n == 0 {
                    self.count.remove(&name);
                }
            }
        }
    }
}

/// Parsing and execution recurse per nesting level; a template from a
/// custom resource must not be able to overflow the operator's stack.
const MAX_DEPTH: usize = 100;

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Text(_) => "text".into(),
        Tok::Open => "\"{{\"".into(),
        Tok::Close => "\"}}\"".into(),
        Tok::Ident(s) => format!("{s:?}"),
        Tok::Field(s) => format!("\".{s}\""),
        Tok::Dot => "\".\"".into(),
        Tok::Var(s) => format!("{s:?}"),
        Tok::Str(_) => "string".into(),
        Tok::Int(_) | Tok::Float(_) => "number".into(),
        Tok::Bool(_) => "bool".into(),
        Tok::Nil => "nil".into(),
        Tok::Pipe => "\"|\"".into(),
        Tok::LParen => "\"(\"".into(),
        Tok::RParen => "\")\"".into(),
        Tok::Declare => "\":=\"".into(),
        Tok::Assign => "\"=\"".into(),
        Tok::Comma => "\",\"".into(),
        Tok::Eof => "end of template".into(),
    }
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.toks[self.next.min(self.toks.len() - 1)]
    }

    fn peek_at(&self, ahead: usize) -> &Tok {
        &self.toks[(self.next + ahead).min(self.toks.len() - 1)].tok
    }

    fn bump(&mut self) -> Token {
        let tok = self.peek().clone();
        self.next += 1;
        tok
    }

    fn expect(&mut self, want: Tok, context: &str) -> Result<(), Failure> {
        let tok = self.bump();
        if tok.tok == want {
            return Ok(());
        }
        Err(Failure::new(tok.start, format!("unexpected {} in {context}", describe(&tok.tok))))
    }

    fn is_keyword(&self, word: &str) -> bool {
        matches!(&self.peek().tok, Tok::Ident(w) if w == word)
    }

    /// Nodes up to `{{end}}`, `{{else` or the end; the stop is consumed up to
    /// its keyword, and its position returned.
    fn list(&mut self) -> Result<(Vec<Node>, Stop, usize), Failure> {
        let mut nodes = Vec::new();
        loop {
            let tok = self.bump();
            match tok.tok {
                Tok::Text(text) => nodes.push(Node::Text(text)),
                Tok::Eof => return Ok((nodes, Stop::Eof, tok.start)),
                Tok::Open => {
                    let word = match &self.peek().tok {
                        Tok::Ident(w) if KEYWORDS.contains(&w.as_str()) => Some(w.clone()),
                        _ => None,
                    };
                    let Some(word) = word else {
                        let pipe = self.pipeline("command", 1)?;
                        self.expect(Tok::Close, "command")?;
                        nodes.push(Node::Action(pipe));
                        continue;
                    };
                    let at = self.bump().start;
                    match word.as_str() {
                        "end" => {
                            self.expect(Tok::Close, "end")?;
                            return Ok((nodes, Stop::End, at));
                        }
                        "else" => return Ok((nodes, Stop::Else, at)),
                        "if" => nodes.push(Node::If(self.branch("if", at)?)),
                        "with" => nodes.push(Node::With(self.branch("with", at)?)),
                        "range" => nodes.push(Node::Range(self.branch("range", at)?)),
                        "break" | "continue" => {
                            if self.range_depth == 0 {
                                return Err(Failure::new(at, format!("{{{{{word}}}}} outside {{{{range}}}}")));
                            }
                            self.expect(Tok::Close, &word)?;
                            nodes.push(if word == "break" { Node::Break } else { Node::Continue });
                        }
                        _ => return Err(Failure::new(at, format!("{{{{{word}}}}} is not supported"))),
                    }
                }
                other => return Err(Failure::new(tok.start, format!("unexpected {}", describe(&other)))),
            }
        }
    }

    /// The rest of an `if`, `with` or `range`, after its keyword.
    fn branch(&mut self, keyword: &str, at: usize) -> Result<Branch, Failure> {
        self.enter(at)?;
        let branch = self.branch_inner(keyword, at);
        self.depth -= 1;
        branch
    }

    fn enter(&mut self, at: usize) -> Result<(), Failure> {
        if self.depth >= MAX_DEPTH {
            return Err(Failure::new(at, format!("nested more than {MAX_DEPTH} levels deep")));
        }
        self.depth += 1;
        Ok(())
    }

    fn branch_inner(&mut self, keyword: &str, at: usize) -> Result<Branch, Failure> {
        let scope = self.vars.len();
        let pipe = self.pipeline(keyword, if keyword == "range" { 2 } else { 1 })?;
        self.expect(Tok::Close, keyword)?;
        let looping = usize::from(keyword == "range");
        self.range_depth += looping;
        let (body, stop, _) = self.list()?;
        self.range_depth -= looping;
        let otherwise = match stop {
            Stop::End => None,
            Stop::Eof => {
                return Err(Failure::new(
                    at,
                    format!("unexpected end of template: {{{{{keyword}}}}} has no {{{{end}}}}"),
                ));
            }
            // `{{else if x}}` is `{{else}}{{if x}}...{{end}}{{end}}` sharing one end.
            Stop::Else if keyword != "range" && self.is_keyword(keyword) => {
                let inner_at = self.bump().start;
                let inner = self.branch(keyword, inner_at)?;
                Some(vec![if keyword == "if" { Node::If(inner) } else { Node::With(inner) }])
            }
            Stop::Else => {
                self.expect(Tok::Close, "else")?;
                let (otherwise, stop, stop_at) = self.list()?;
                match stop {
                    Stop::End => Some(otherwise),
                    Stop::Else => {
                        return Err(Failure::new(
                            stop_at,
                            format!("expected {{{{end}}}} after {{{{else}}}} of {{{{{keyword}}}}}"),
                        ));
                    }
                    Stop::Eof => {
                        return Err(Failure::new(
                            at,
                            format!("unexpected end of template: {{{{{keyword}}}}} has no {{{{end}}}}"),
                        ));
                    }
                }
            }
        };
        self.vars.truncate(scope);
        Ok(Branch { pipe, body, otherwise })
    }

    fn declarations(&mut self, max: usize) -> Result<(Vec<String>, bool), Failure> {
        let var = |t: &Tok| match t {
            Tok::Var(v) => Some(v.clone()),
            _ => None,
        };
        let (names, assign) = match (var(self.peek_at(0)), self.peek_at(1)) {
            (Some(a), Tok::Declare) => (vec![a], false),
            (Some(a), Tok::Assign) => (vec![a], true),
            (Some(a), Tok::Comma) if max == 2 => match (var(self.peek_at(2)), self.peek_at(3)) {
                (Some(b), Tok::Declare) => (vec![a, b], false),
                (Some(b), Tok::Assign) => (vec![a, b], true),
                _ => return Ok((Vec::new(), false)),
            },
            _ => return Ok((Vec::new(), false)),
        };
        let at = self.peek().start;
        if let Some(unknown) = names.iter().find(|n| assign && !self.vars.contains(n.as_str())) {
            return Err(Failure::new(at, format!("undefined variable {unknown:?}")));
        }
        self.next += names.len() * 2;
        Ok((names, assign))
    }

    fn pipeline(&mut self, context: &str, max_decl: usize) -> Result<Pipeline, Failure> {
        let (decl, assign) = self.declarations(max_decl)?;
        let mut cmds = Vec::new();
        loop {
            let at = self.peek().start;
            if matches!(self.peek().tok, Tok::Close | Tok::RParen) {
                return Err(Failure::new(at, format!("missing value for {context}")));
            }
            let cmd = self.command()?;
            let Some(first) = cmd.terms.first() else {
                return Err(Failure::new(at, format!("missing command in {context}")));
            };
            let is_func = matches!(first.kind, TermKind::Func(_));
            if !is_func && cmd.terms.len() > 1 {
                return Err(Failure::new(at, "only a function can take arguments"));
            }
            if !is_func && !cmds.is_empty() {
                return Err(Failure::new(at, format!("non-function in pipeline stage {}", cmds.len() + 1)));
            }
            if matches!(first.kind, TermKind::Nil) {
                return Err(Failure::new(at, "nil is not a command"));
            }
            cmds.push(cmd);
            if self.peek().tok != Tok::Pipe {
                break;
            }
            self.next += 1;
        }
        if !assign {
            for name in &decl {
                self.vars.declare(name);
            }
        }
        Ok(Pipeline { decl, assign, cmds })
    }

    fn command(&mut self) -> Result<Command, Failure> {
        let mut terms = Vec::new();
        while !matches!(self.peek().tok, Tok::Pipe | Tok::Close | Tok::RParen) {
            terms.push(self.term()?);
        }
        Ok(Command { terms })
    }

    /// `.a.b` after an operand, only when written without spaces.
    fn fields_after(&mut self, mut end: usize) -> Vec<String> {
        let mut fields = Vec::new();
        while let Token { tok: Tok::Field(name), start, end: next_end } = self.peek() {
            if *start != end {
                break;
            }
            fields.push(name.clone());
            end = *next_end;
            self.next += 1;
        }
        fields
    }

    fn term(&mut self) -> Result<Term, Failure> {
        let tok = self.bump();
        let pos = tok.start;
        let kind = match tok.tok {
            Tok::Dot => TermKind::Dot,
            Tok::Nil => TermKind::Nil,
            Tok::Str(s) => TermKind::Lit(Value::Str(s)),
            Tok::Int(i) => TermKind::Lit(Value::Int(i)),
            Tok::Float(f) => TermKind::Lit(Value::Float(f)),
            Tok::Bool(b) => TermKind::Lit(Value::Bool(b)),
            Tok::Field(first) => {
                let mut path = vec![first];
                path.extend(self.fields_after(tok.end));
                TermKind::Field(path)
            }
            Tok::Var(name) => {
                if !self.vars.contains(&name) {
                    return Err(Failure::new(pos, format!("undefined variable {name:?}")));
                }
                TermKind::Var(name, self.fields_after(tok.end))
            }
            Tok::Ident(name) if KEYWORDS.contains(&name.as_str()) => {
                return Err(Failure::new(pos, format!("unexpected keyword {name:?} in command")));
            }
            Tok::Ident(name) if funcs::refused(self.dialect, &name).is_some() => {
                let why = funcs::refused(self.dialect, &name).unwrap_or_default();
                return Err(Failure::new(pos, format!("function {name:?} is not supported: {why}")));
            }
            Tok::Ident(name) if funcs::exists(self.dialect, &name) => TermKind::Func(name),
            Tok::Ident(name) => return Err(Failure::new(pos, format!("function {name:?} not defined"))),
            Tok::LParen => {
                self.enter(pos)?;
                let pipe = self.pipeline("parenthesized pipeline", 1)?;
                self.depth -= 1;
                let close = self.bump();
                if close.tok != Tok::RParen {
                    return Err(Failure::new(pos, "unclosed left paren"));
                }
                TermKind::Sub(Box::new(pipe), self.fields_after(close.end))
            }
            other => return Err(Failure::new(pos, format!("unexpected {} in command", describe(&other)))),
        };
        Ok(Term { pos, kind })
    }
}
