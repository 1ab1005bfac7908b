//! Splits a template into text and the tokens inside `{{ }}`. Trim markers
//! and comments are resolved here, so the parser never sees them.

use super::Failure;

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Text(String),
    Open,
    Close,
    Ident(String),
    /// One `.name` segment; `.a.b` is two adjacent ones.
    Field(String),
    Dot,
    /// `$` or `$name`, with the `$`.
    Var(String),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
    Eof,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

/// The action delimiters: Go's `{{` and `}}` unless a template asks for
/// others (Go's `Template.Delims`, the injector's
/// `agent-template-left-delim`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delims<'a> {
    pub left: &'a str,
    pub right: &'a str,
}

impl Default for Delims<'_> {
    fn default() -> Self {
        Delims { left: "{{", right: "}}" }
    }
}

pub fn lex(src: &str, delims: Delims<'_>) -> Result<Vec<Token>, Failure> {
    let mut lexer = Lexer { src, pos: 0, out: Vec::new(), delims };
    lexer.run()?;
    Ok(lexer.out)
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    out: Vec<Token>,
    delims: Delims<'a>,
}

/// Go trims exactly these around `{{-` and `-}}`.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_ident(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// `{{-` only trims when a space follows, so `{{-3}}` stays the number -3.
fn left_trim_at(rest: &str) -> bool {
    let mut chars = rest.chars();
    chars.next() == Some('-') && chars.next().is_some_and(is_space)
}

/// The length of ` -}}` (with `right` for `}}`) at the start of `rest`,
/// if it is there.
fn right_trim_close(rest: &str, right: &str) -> Option<usize> {
    let mut chars = rest.chars();
    let space = chars.next().filter(|c| is_space(*c))?;
    let after = chars.as_str().strip_prefix('-')?;
    after.starts_with(right).then(|| space.len_utf8() + 1 + right.len())
}

impl Lexer<'_> {
    fn push(&mut self, tok: Tok, start: usize, end: usize) {
        self.out.push(Token { tok, start, end });
    }

    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn run(&mut self) -> Result<(), Failure> {
        let mut trim_next = false;
        loop {
            let text_start = self.pos;
            let (left, right) = (self.delims.left, self.delims.right);
            let open = self.rest().find(left).map(|i| self.pos + i);
            let text_end = open.unwrap_or(self.src.len());
            let mut text = &self.src[text_start..text_end];
            let mut offset = text_start;
            if trim_next {
                let trimmed = text.trim_start_matches(is_space);
                offset += text.len() - trimmed.len();
                text = trimmed;
            }
            let trim_left = open.is_some_and(|o| left_trim_at(&self.src[o + left.len()..]));
            if trim_left {
                text = text.trim_end_matches(is_space);
            }
            if !text.is_empty() {
                self.push(Tok::Text(text.to_string()), offset, offset + text.len());
            }
            let Some(open) = open else {
                self.push(Tok::Eof, self.src.len(), self.src.len());
                return Ok(());
            };
            self.pos = open + left.len();
            if trim_left {
                self.pos += 1;
                self.skip_spaces();
            }
            trim_next =
                if self.rest().starts_with("/*") { self.comment(open, right)? } else { self.action(open, right)? };
        }
    }

    fn skip_spaces(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start_matches(is_space).len();
    }

    /// Consumes `/* ... */}}`; returns whether it ended with a trim marker.
    fn comment(&mut self, open: usize, right: &str) -> Result<bool, Failure> {
        let Some(end) = self.rest().find("*/") else { return Err(Failure::new(open, "unclosed comment")) };
        self.pos += end + 2;
        if self.rest().starts_with(right) {
            self.pos += right.len();
            return Ok(false);
        }
        match right_trim_close(self.rest(), right) {
            Some(n) => {
                self.pos += n;
                Ok(true)
            }
            None => Err(Failure::new(open, "comment ends before closing delimiter")),
        }
    }

    /// Tokens up to and including `}}`; returns whether it was `-}}`.
    fn action(&mut self, open: usize, right: &str) -> Result<bool, Failure> {
        self.push(Tok::Open, open, open + self.delims.left.len());
        loop {
            let start = self.pos;
            let rest = self.rest();
            if let Some(n) = right_trim_close(rest, right) {
                self.push(Tok::Close, start, start + n);
                self.pos += n;
                return Ok(true);
            }
            if rest.starts_with(right) {
                self.push(Tok::Close, start, start + right.len());
                self.pos += right.len();
                return Ok(false);
            }
            let Some(c) = rest.chars().next() else { return Err(Failure::new(open, "unclosed action")) };
            let next = rest[c.len_utf8()..].chars().next();
            let single = match c {
                '|' => Some(Tok::Pipe),
                '(' => Some(Tok::LParen),
                ')' => Some(Tok::RParen),
                ',' => Some(Tok::Comma),
                '=' => Some(Tok::Assign),
                _ => None,
            };
            if let Some(tok) = single {
                self.pos += 1;
                self.push(tok, start, self.pos);
                continue;
            }
            let tok = match c {
                c if is_space(c) => {
                    self.pos += 1;
                    continue;
                }
                ':' if next == Some('=') => {
                    self.pos += 2;
                    Tok::Declare
                }
                '"' => Tok::Str(self.quoted()?),
                '`' => Tok::Str(self.raw()?),
                '\'' => Tok::Int(self.char_constant()?),
                '$' => {
                    self.pos += 1;
                    Tok::Var(format!("${}", self.ident()))
                }
                '.' if next.is_some_and(|n| n.is_ascii_digit()) => self.number()?,
                '.' if next.is_some_and(is_ident) => {
                    self.pos += 1;
                    Tok::Field(self.ident().to_string())
                }
                '.' => {
                    self.pos += 1;
                    Tok::Dot
                }
                '0'..='9' => self.number()?,
                '+' | '-' if next.is_some_and(|n| n.is_ascii_digit() || n == '.') => self.number()?,
                c if is_ident(c) => match self.ident() {
                    "true" => Tok::Bool(true),
                    "false" => Tok::Bool(false),
                    "nil" => Tok::Nil,
                    word => Tok::Ident(word.to_string()),
                },
                c => return Err(Failure::new(start, format!("unexpected {c:?} in action"))),
            };
            self.push(tok, start, self.pos);
        }
    }

    fn ident(&mut self) -> &str {
        let start = self.pos;
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start_matches(is_ident).len();
        &self.src[start..self.pos]
    }

    fn number(&mut self) -> Result<Tok, Failure> {
        let start = self.pos;
        let bytes = self.src.as_bytes();
        let mut i = self.pos;
        if matches!(bytes[i], b'+' | b'-') {
            i += 1;
        }
        let hex = bytes[i..].starts_with(b"0x") || bytes[i..].starts_with(b"0X");
        if hex {
            i += 2;
            while i < bytes.len() && (bytes[i].is_ascii_hexdigit() || bytes[i] == b'_') {
                i += 1;
            }
        } else {
            let digits = |i: &mut usize| {
                while *i < bytes.len() && (bytes[*i].is_ascii_digit() || bytes[*i] == b'_') {
                    *i += 1;
                }
            };
            digits(&mut i);
            if i < bytes.len() && bytes[i] == b'.' {
                i += 1;
                digits(&mut i);
            }
            if i < bytes.len() && matches!(bytes[i], b'e' | b'E') {
                i += 1;
                if i < bytes.len() && matches!(bytes[i], b'+' | b'-') {
                    i += 1;
                }
                digits(&mut i);
            }
        }
        self.pos = i;
        let text = &self.src[start..i];
        let bad = || Failure::new(start, format!("bad number syntax: {text:?}"));
        if self.rest().starts_with(|c: char| is_ident(c) || c == '.') {
            return Err(bad());
        }
        let clean = text.replace('_', "");
        let (negative, unsigned) = match clean.strip_prefix('-') {
            Some(u) => (true, u),
            None => (false, clean.strip_prefix('+').unwrap_or(&clean)),
        };
        if hex {
            let n = i64::from_str_radix(&unsigned[2..], 16).map_err(|_| bad())?;
            return Ok(Tok::Int(if negative { -n } else { n }));
        }
        if let Ok(n) = clean.parse::<i64>() {
            return Ok(Tok::Int(n));
        }
        if clean.contains(['.', 'e', 'E']) {
            return clean.parse::<f64>().map(Tok::Float).map_err(|_| bad());
        }
        Err(bad())
    }

    fn raw(&mut self) -> Result<String, Failure> {
        let start = self.pos;
        self.pos += 1;
        let Some(end) = self.rest().find('`') else {
            return Err(Failure::new(start, "unterminated raw quoted string"));
        };
        let s = self.rest()[..end].to_string();
        self.pos += end + 1;
        Ok(s)
    }

    fn quoted(&mut self) -> Result<String, Failure> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.rest().chars().next() else {
                return Err(Failure::new(start, "unterminated quoted string"));
            };
            self.pos += c.len_utf8();
            match c {
                '"' => return Ok(out),
                '\n' => return Err(Failure::new(start, "unterminated quoted string")),
                '\\' => out.push(self.escape('"', start)?),
                c => out.push(c),
            }
        }
    }

    fn char_constant(&mut self) -> Result<i64, Failure> {
        let start = self.pos;
        self.pos += 1;
        let bad = || Failure::new(start, "malformed character constant");
        let c = match self.rest().chars().next().ok_or_else(bad)? {
            '\\' => {
                self.pos += 1;
                self.escape('\'', start)?
            }
            '\'' | '\n' => return Err(bad()),
            c => {
                self.pos += c.len_utf8();
                c
            }
        };
        if !self.rest().starts_with('\'') {
            return Err(bad());
        }
        self.pos += 1;
        Ok(i64::from(u32::from(c)))
    }

    /// The character after a backslash, Go's escapes (`quote` is the one
    /// delimiter that may be escaped).
    fn escape(&mut self, quote: char, start: usize) -> Result<char, Failure> {
        let bad = || Failure::new(start, "invalid escape sequence in string");
        let c = self.rest().chars().next().ok_or_else(bad)?;
        self.pos += c.len_utf8();
        let hex = |this: &mut Self, n: usize| -> Result<u32, Failure> {
            // from_str_radix would take a sign: `\x+1` is no escape.
            let digits = this.rest().get(..n).filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit())).ok_or_else(bad)?;
            let v = u32::from_str_radix(digits, 16).map_err(|_| bad())?;
            this.pos += n;
            Ok(v)
        };
        let code = match c {
            'n' => '\n' as u32,
            't' => '\t' as u32,
            'r' => '\r' as u32,
            'a' => 0x07,
            'b' => 0x08,
            'f' => 0x0c,
            'v' => 0x0b,
            '\\' => '\\' as u32,
            c if c == quote => c as u32,
            'x' => hex(self, 2)?,
            'u' => hex(self, 4)?,
            'U' => hex(self, 8)?,
            '0'..='7' => {
                let digits = self.src.get(self.pos - 1..self.pos + 2);
                let digits = digits.filter(|d| d.bytes().all(|b| matches!(b, b'0'..=b'7'))).ok_or_else(bad)?;
                let v = u32::from_str_radix(digits, 8).map_err(|_| bad())?;
                self.pos += 2;
                v
            }
            _ => return Err(bad()),
        };
        char::from_u32(code).ok_or_else(bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex_default(src: &str) -> Result<Vec<Token>, Failure> {
        lex(src, Delims::default())
    }

    fn toks(src: &str) -> Vec<Tok> {
        lex_default(src).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn splits_text_and_actions() {
        assert_eq!(
            toks("a{{ .b.c | f 1 }}d"),
            vec![
                Tok::Text("a".into()),
                Tok::Open,
                Tok::Field("b".into()),
                Tok::Field("c".into()),
                Tok::Pipe,
                Tok::Ident("f".into()),
                Tok::Int(1),
                Tok::Close,
                Tok::Text("d".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn literals() {
        assert_eq!(
            toks(r#"{{"a\n\x41\u00e9\101" `r\n` 'x' -3 1.5 0x1F 1e3 true nil $ $v := = ,}}"#),
            vec![
                Tok::Open,
                Tok::Str("a\nAéA".into()),
                Tok::Str("r\\n".into()),
                Tok::Int(120),
                Tok::Int(-3),
                Tok::Float(1.5),
                Tok::Int(31),
                Tok::Float(1000.0),
                Tok::Bool(true),
                Tok::Nil,
                Tok::Var("$".into()),
                Tok::Var("$v".into()),
                Tok::Declare,
                Tok::Assign,
                Tok::Comma,
                Tok::Close,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn trim_markers_and_comments() {
        assert_eq!(
            toks("a \n{{- 1 -}} \n b{{/* c */}}c {{- /* d */ -}} d"),
            vec![
                Tok::Text("a".into()),
                Tok::Open,
                Tok::Int(1),
                Tok::Close,
                Tok::Text("b".into()),
                Tok::Text("c".into()),
                Tok::Text("d".into()),
                Tok::Eof
            ]
        );
        assert_eq!(toks("{{-3}}"), vec![Tok::Open, Tok::Int(-3), Tok::Close, Tok::Eof]);
    }

    #[test]
    fn errors() {
        assert_eq!(lex_default("ab{{ .x").unwrap_err(), Failure::new(2, "unclosed action"));
        assert_eq!(lex_default("{{ \"x }}").unwrap_err().reason, "unterminated quoted string");
        assert_eq!(lex_default("{{ 12ab }}").unwrap_err().reason, "bad number syntax: \"12\"");
        assert_eq!(lex_default("{{/* x */ }}").unwrap_err().reason, "comment ends before closing delimiter");
        assert_eq!(lex_default("{{ # }}").unwrap_err().reason, "unexpected '#' in action");
        assert_eq!(lex_default(r#"{{ "\x+1" }}"#).unwrap_err().reason, "invalid escape sequence in string");
        assert_eq!(lex_default(r#"{{ "\u+0041" }}"#).unwrap_err().reason, "invalid escape sequence in string");
    }
}
