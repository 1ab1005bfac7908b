//! Sprig's regular expression helpers, with Go's RE2 syntax through the
//! regex crate. The two agree on the syntax templates use, except that
//! Go's `\d`, `\w`, `\s` and `\b` are ASCII-only where the regex crate's
//! are Unicode: `compile` rewrites them into their ASCII forms.

use super::super::funcs::{CallResult, arity, int, text};
use super::super::value::Value;
use super::{MAX_OUTPUT, split_count_fits};

pub(super) fn call(name: &str, args: &mut [Value]) -> Option<CallResult> {
    // The must* versions fail where the others fail too (sprig's plain
    // versions panic on a bad pattern), except regexMatch, which is false.
    let plain = name.strip_prefix("must").map(|rest| format!("r{}", &rest[1..]));
    let must = plain.is_some();
    Some(match plain.as_deref().unwrap_or(name) {
        "regexMatch" => (|| {
            arity(args, 2)?;
            let s = text(&args[1])?;
            match compile(&text(&args[0])?) {
                Ok(re) => Ok(Value::Bool(re.is_match(&s))),
                Err(e) if must => Err(e),
                Err(_) => Ok(Value::Bool(false)),
            }
        })(),
        "regexFind" => (|| {
            arity(args, 2)?;
            let re = compile(&text(&args[0])?)?;
            let s = text(&args[1])?;
            Ok(Value::Str(re.find(&s).map_or("", |m| m.as_str()).to_string()))
        })(),
        "regexFindAll" => (|| {
            arity(args, 3)?;
            let re = compile(&text(&args[0])?)?;
            let s = text(&args[1])?;
            let n = int(&args[2])?;
            let limit = usize::try_from(n).unwrap_or(usize::MAX);
            if n == 0 {
                return Ok(Value::List(Vec::new()));
            }
            let found: Vec<&str> = re.find_iter(&s).take(limit).map(|m| m.as_str()).collect();
            split_count_fits(found.len(), s.len())?;
            Ok(Value::List(found.into_iter().map(|m| Value::Str(m.to_string())).collect()))
        })(),
        "regexReplaceAll" | "regexReplaceAllLiteral" => (|| {
            arity(args, 3)?;
            let re = compile(&text(&args[0])?)?;
            let s = text(&args[1])?;
            let replacement = text(&args[2])?;
            let literal = name.ends_with("Literal");
            Ok(Value::Str(replace_bounded(&re, &s, &replacement, literal)?))
        })(),
        "regexSplit" => (|| {
            arity(args, 3)?;
            let re = compile(&text(&args[0])?)?;
            let s = text(&args[1])?;
            let n = int(&args[2])?;
            let parts = go_split(&re, &args[0], &s, n);
            split_count_fits(parts.len(), s.len())?;
            Ok(Value::List(parts.into_iter().map(|p| Value::Str(p.to_string())).collect()))
        })(),
        "regexQuoteMeta" => (|| {
            arity(args, 1)?;
            let s = text(&args[0])?;
            super::fits(s.len().checked_mul(2))?;
            let mut out = String::with_capacity(s.len());
            for c in s.chars() {
                if r"\.+*?()|[]{}^$".contains(c) {
                    out.push('\\');
                }
                out.push(c);
            }
            Ok(Value::Str(out))
        })(),
        _ => return None,
    })
}

/// Go's `Regexp.Split`.
fn go_split<'a>(re: &regex::Regex, pattern: &Value, s: &'a str, n: i64) -> Vec<&'a str> {
    if n == 0 {
        return Vec::new();
    }
    let pattern_empty = pattern.as_bytes().is_none_or(<[u8]>::is_empty);
    if !pattern_empty && s.is_empty() {
        return vec![""];
    }
    let limit = usize::try_from(n).unwrap_or(usize::MAX);
    let mut parts = Vec::new();
    let (mut beg, mut end) = (0, 0);
    for m in re.find_iter(s).take(limit) {
        if n > 0 && parts.len() == limit - 1 {
            break;
        }
        end = m.start();
        if m.end() != 0 {
            parts.push(&s[beg..end]);
        }
        beg = m.end();
    }
    if end != s.len() {
        parts.push(&s[beg..]);
    }
    parts
}

/// A template's pattern as Go reads it, bounded in size.
pub(super) fn compile(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(&ascii_classes(pattern))
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("error parsing regexp: {}", e.to_string().lines().last().unwrap_or_default()))
}

/// `\d \w \s \b` (and their negations) as Go means them: ASCII.
fn ascii_classes(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    let mut class_start = false;
    while let Some(c) = chars.next() {
        let first_in_class = class_start;
        class_start = false;
        match c {
            '\\' => {
                let Some(next) = chars.next() else {
                    out.push(c);
                    break;
                };
                match next {
                    'd' => out.push_str("[0-9]"),
                    'D' => out.push_str("[^0-9]"),
                    'w' => out.push_str("[0-9A-Za-z_]"),
                    'W' => out.push_str("[^0-9A-Za-z_]"),
                    's' => out.push_str("[\\t\\n\\f\\r ]"),
                    'S' => out.push_str("[^\\t\\n\\f\\r ]"),
                    'b' if !in_class => out.push_str("(?-u:\\b)"),
                    'B' if !in_class => out.push_str("(?-u:\\B)"),
                    _ => {
                        out.push(c);
                        out.push(next);
                    }
                }
            }
            '[' if !in_class => {
                in_class = true;
                class_start = true;
                out.push(c);
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
            }
            '[' if chars.peek() == Some(&':') => {
                // [:alpha:] inside a class.
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == ']' {
                        break;
                    }
                }
            }
            // Go reads `[` inside a class as itself; the regex crate
            // would open a nested class.
            '[' => out.push_str("\\["),
            ']' if in_class && !first_in_class => {
                in_class = false;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// `re` replaced by `replacement` in `subject` (`$1`, `${name}` expanded
/// as Go's `Regexp.Expand` does, unless `literal`), built match by match
/// and stopped past 1 MiB: one expansion of many `$0` could otherwise grow
/// without bound before its size was looked at.
fn replace_bounded(re: &regex::Regex, subject: &str, replacement: &str, literal: bool) -> Result<String, String> {
    let mut out = String::new();
    let mut last = 0;
    for captures in re.captures_iter(subject) {
        let whole = captures.get(0).expect("a match has its whole text");
        push(&mut out, &subject[last..whole.start()])?;
        if literal {
            push(&mut out, replacement)?;
        } else {
            expand(re, &captures, replacement, &mut out)?;
        }
        last = whole.end();
    }
    push(&mut out, &subject[last..])?;
    Ok(out)
}

fn push(out: &mut String, s: &str) -> Result<(), String> {
    if out.len().saturating_add(s.len()) > MAX_OUTPUT {
        return Err(super::TOO_LARGE.into());
    }
    out.push_str(s);
    Ok(())
}

/// Go's `Regexp.Expand`: `$$` is `$`, `$name`/`${name}` a group by number
/// or name (names of letters, digits and `_`), a malformed `$` itself.
fn expand(re: &regex::Regex, captures: &regex::Captures<'_>, template: &str, out: &mut String) -> Result<(), String> {
    let mut template = template;
    while let Some((before, after)) = template.split_once('$') {
        push(out, before)?;
        template = after;
        if let Some(rest) = template.strip_prefix('$') {
            push(out, "$")?;
            template = rest;
            continue;
        }
        let Some((name, rest)) = extract(template) else {
            push(out, "$")?;
            continue;
        };
        template = rest;
        let number = (!name.starts_with('0') || name.len() == 1)
            .then(|| name.parse::<usize>().ok().filter(|n| *n < 100_000_000))
            .flatten();
        let group = match number {
            Some(n) => captures.get(n),
            None => re.capture_names().position(|n| n == Some(name)).and_then(|i| captures.get(i)),
        };
        if let Some(group) = group {
            push(out, group.as_str())?;
        }
    }
    push(out, template)
}

/// Go's `extract`: the name after a `$` and what follows it.
fn extract(s: &str) -> Option<(&str, &str)> {
    let (brace, s) = match s.strip_prefix('{') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let end = s.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    let name = &s[..end];
    if brace {
        let rest = s[end..].strip_prefix('}')?;
        return Some((name, rest));
    }
    Some((name, &s[end..]))
}
