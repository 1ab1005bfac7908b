//! Sprig's string helpers, after Go's `strings`, Masterminds/goutils and
//! huandu/xstrings (v1.5.0, what ESO builds with). Several of them work on
//! bytes, as Go does: `trunc` and `substr` cut at byte offsets, `nospace`
//! and `initials` read a byte at a time (a non-ASCII byte is written back
//! as the Latin-1 character of that number, which is what goutils does).
//!
//! Case mappings and character classes follow Go's `unicode` package: the
//! simple (one character to one character) mappings, and the general
//! categories (Lu, Ll, Lt, L) rather than Unicode's wider properties.

use super::super::builtins::push_bounded;
use super::super::funcs::{CallResult, arity, int, text, to_string};
use super::super::value::Value;
use super::{MAX_OUTPUT, fits, split_count_fits, string};

pub(super) fn call(name: &str, args: &mut Vec<Value>) -> Option<CallResult> {
    Some(match name {
        "abbrev" => (|| {
            arity(args, 2)?;
            let width = int(&args[0])?;
            let s = bytes(&args[1])?;
            if width < 4 {
                return Ok(Value::from_bytes(s));
            }
            Ok(Value::from_bytes(&abbreviate(s, 0, width)))
        })(),
        "abbrevboth" => (|| {
            arity(args, 3)?;
            let (left, right) = (int(&args[0])?, int(&args[1])?);
            let s = bytes(&args[2])?;
            if right < 4 || left > 0 && right < 7 {
                return Ok(Value::from_bytes(s));
            }
            Ok(Value::from_bytes(&abbreviate(s, left, right)))
        })(),
        "trunc" => (|| {
            arity(args, 2)?;
            let c = int(&args[0])?;
            let s = bytes(&args[1])?;
            let len = s.len() as i64;
            let cut = if c < 0 && len + c > 0 {
                &s[(len + c) as usize..]
            } else if c >= 0 && len > c {
                &s[..c as usize]
            } else {
                s
            };
            Ok(Value::from_bytes(cut))
        })(),
        "substr" => (|| {
            arity(args, 3)?;
            let (start, end) = (int(&args[0])?, int(&args[1])?);
            let s = bytes(&args[2])?;
            let len = s.len() as i64;
            // Go slices and panics out of range: the same cases fail here.
            let range = if start < 0 {
                (0, end)
            } else if end < 0 || end > len {
                (start, len)
            } else {
                (start, end)
            };
            if range.0 < 0 || range.1 < range.0 || range.1 > len {
                return Err("slice bounds out of range".into());
            }
            Ok(Value::from_bytes(&s[range.0 as usize..range.1 as usize]))
        })(),
        "trimall" => (|| {
            arity(args, 2)?;
            let cutset = text(&args[0])?;
            string(text(&args[1])?.trim_matches(|c| cutset.contains(c)))
        })(),
        "nospace" => (|| {
            arity(args, 1)?;
            Ok(nospace(bytes(&args[0])?))
        })(),
        "initials" => (|| {
            arity(args, 1)?;
            let mut out = String::new();
            let mut gap = true;
            for &b in bytes(&args[0])? {
                let c = char::from(b);
                if c.is_whitespace() {
                    gap = true;
                } else if gap {
                    out.push(c);
                    gap = false;
                }
            }
            string(out)
        })(),
        "title" => (|| {
            arity(args, 1)?;
            let s = text(&args[0])?;
            fits(s.len().checked_mul(2))?;
            let mut prev = ' ';
            Ok(Value::Str(
                s.chars()
                    .map(|c| {
                        let mapped = if title_separator(prev) { title(c) } else { c };
                        prev = c;
                        mapped
                    })
                    .collect(),
            ))
        })(),
        "untitle" => (|| {
            arity(args, 1)?;
            let s = text(&args[0])?;
            fits(s.len().checked_mul(2))?;
            let mut next = true;
            Ok(Value::Str(
                s.chars()
                    .map(|c| {
                        if c.is_whitespace() {
                            next = true;
                            c
                        } else if next {
                            next = false;
                            lower(c)
                        } else {
                            c
                        }
                    })
                    .collect(),
            ))
        })(),
        "swapcase" => (|| {
            arity(args, 1)?;
            let s = text(&args[0])?;
            fits(s.len().checked_mul(2))?;
            let mut out = String::with_capacity(s.len());
            let mut space = true;
            for c in s.chars() {
                if is_upper(c) || is_title(c) {
                    out.push(lower(c));
                    space = false;
                } else if is_lower(c) {
                    out.push(if space { title(c) } else { upper(c) });
                    space = false;
                } else {
                    out.push(c);
                    space = c.is_whitespace();
                }
            }
            Ok(Value::Str(out))
        })(),
        "camelcase" => (|| {
            arity(args, 1)?;
            let s = text(&args[0])?;
            fits(s.len().checked_mul(2))?;
            Ok(Value::Str(pascal_case(&s)))
        })(),
        "snakecase" | "kebabcase" => (|| {
            arity(args, 1)?;
            let s = text(&args[0])?;
            // A connector per character at most, each character up to 4 bytes.
            fits(s.len().checked_mul(3))?;
            Ok(Value::Str(lower_case_words(&s, if name == "snakecase" { '_' } else { '-' })))
        })(),
        "wrap" => (|| {
            arity(args, 2)?;
            let width = int(&args[0])?;
            wrap(bytes(&args[1])?, width, b"\n", false)
        })(),
        "wrapWith" => (|| {
            arity(args, 3)?;
            let width = int(&args[0])?;
            let sep = text(&args[1])?.into_owned();
            let sep = if sep.is_empty() { "\n".to_string() } else { sep };
            wrap(bytes(&args[2])?, width, sep.as_bytes(), true)
        })(),
        "cat" => (|| {
            let mut out = String::new();
            for (i, v) in args.iter().filter(|v| **v != Value::Nil).enumerate() {
                if i > 0 {
                    push_bounded(&mut out, " ")?;
                }
                push_bounded(&mut out, &v.display()?)?;
            }
            Ok(Value::Str(out))
        })(),
        "plural" => (|| {
            arity(args, 3)?;
            let count = int(&args[2])?;
            text(&args[0])?;
            text(&args[1])?;
            Ok(args.swap_remove(if count == 1 { 0 } else { 1 }))
        })(),
        "splitn" => (|| {
            arity(args, 3)?;
            let sep = text(&args[0])?;
            let n = int(&args[1])?;
            let s = text(&args[2])?;
            let parts = splitn(&sep, n, &s)?;
            Ok(Value::Map(parts.into_iter().enumerate().map(|(i, v)| (format!("_{i}"), Value::Str(v))).collect()))
        })(),
        "toStrings" => (|| {
            arity(args, 1)?;
            Ok(Value::List(to_strings(&args[0])?.into_iter().map(Value::Str).collect()))
        })(),
        _ => return None,
    })
}

/// The bytes of a string argument (a Go `string` parameter).
pub(super) fn bytes(value: &Value) -> Result<&[u8], String> {
    value.as_bytes().ok_or_else(|| format!("expected string, got {}", value.type_name()))
}

/// Sprig's `strslice`: a list's elements as strings (nils skipped), or
/// the one value as a string, or nothing for nil.
pub(super) fn to_strings(value: &Value) -> Result<Vec<String>, String> {
    match value {
        Value::List(items) => items.iter().filter(|v| **v != Value::Nil).map(to_string).collect(),
        Value::Nil => Ok(Vec::new()),
        other => Ok(vec![to_string(other)?]),
    }
}

/// goutils' `DeleteWhiteSpace`: byte by byte, the input unchanged when it
/// has no whitespace byte.
fn nospace(s: &[u8]) -> Value {
    if !s.iter().any(|&b| char::from(b).is_whitespace()) {
        return Value::from_bytes(s);
    }
    Value::Str(s.iter().map(|&b| char::from(b)).filter(|c| !c.is_whitespace()).collect())
}

/// goutils' `AbbreviateFull` (a width below 4, or below 7 with an offset
/// past 4, was handled by the caller as sprig does).
fn abbreviate(s: &[u8], offset: i64, width: i64) -> Vec<u8> {
    let len = s.len() as i64;
    if s.is_empty() || len <= width {
        return s.to_vec();
    }
    let mut offset = offset.min(len);
    if len - offset < width - 3 {
        offset = len - (width - 3);
    }
    let marker = b"...";
    if offset <= 4 {
        return [&s[..(width - 3) as usize], marker].concat();
    }
    if width < 7 {
        return Vec::new();
    }
    if offset + width - 3 < len {
        let rest = abbreviate(&s[offset as usize..], 0, width - 3);
        return [marker, rest.as_slice()].concat();
    }
    [marker, &s[(len - (width - 3)) as usize..]].concat()
}

/// goutils' `WrapCustom`, in bytes; bounded as it grows.
fn wrap(s: &[u8], width: i64, newline: &[u8], long_words: bool) -> CallResult {
    if s.is_empty() {
        return Ok(Value::Str(String::new()));
    }
    let width = usize::try_from(width.max(1)).unwrap_or(usize::MAX);
    let len = s.len();
    let mut offset = 0;
    let mut out: Vec<u8> = Vec::new();
    let push = |out: &mut Vec<u8>, part: &[u8]| -> Result<(), String> {
        if out.len().saturating_add(part.len()) > MAX_OUTPUT {
            return Err(super::TOO_LARGE.into());
        }
        out.extend_from_slice(part);
        Ok(())
    };
    while len - offset > width {
        if s[offset] == b' ' {
            offset += 1;
            continue;
        }
        let end = width + offset + 1;
        match s[offset..end].iter().rposition(|&b| b == b' ') {
            Some(space) => {
                push(&mut out, &s[offset..offset + space])?;
                push(&mut out, newline)?;
                offset += space + 1;
            }
            None if long_words => {
                push(&mut out, &s[offset..width + offset])?;
                push(&mut out, newline)?;
                offset += width;
            }
            None => {
                let end = width + offset;
                match s[end..].iter().position(|&b| b == b' ') {
                    None => {
                        push(&mut out, &s[offset..])?;
                        offset = len;
                    }
                    Some(index) => {
                        push(&mut out, &s[offset..index + end])?;
                        push(&mut out, newline)?;
                        offset = index + end + 1;
                    }
                }
            }
        }
    }
    push(&mut out, &s[offset..])?;
    Ok(Value::from_bytes(&out))
}

/// Go's `strings.SplitN`, its part count checked first.
fn splitn(sep: &str, n: i64, s: &str) -> Result<Vec<String>, String> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let limit = usize::try_from(n).unwrap_or(usize::MAX);
    let all = if sep.is_empty() { s.chars().count() } else { s.matches(sep).count() + 1 };
    split_count_fits(all.min(limit), s.len())?;
    if sep.is_empty() {
        // Go explodes into characters, the last part holding the rest.
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(c) = rest.chars().next() {
            if parts.len() + 1 == limit {
                parts.push(rest.to_string());
                return Ok(parts);
            }
            parts.push(c.to_string());
            rest = &rest[c.len_utf8()..];
        }
        return Ok(parts);
    }
    Ok(s.splitn(limit, sep).map(str::to_string).collect())
}

/// Go's `unicode.ToUpper`: the simple (one character) mapping.
pub(super) fn upper(c: char) -> char {
    greek_iota(c).or_else(|| single(c.to_uppercase())).unwrap_or(c)
}

/// Go's `unicode.ToLower`: the simple mapping (`İ` is `i`).
pub(super) fn lower(c: char) -> char {
    if c == '\u{130}' {
        return 'i';
    }
    single(c.to_lowercase()).unwrap_or(c)
}

/// Go's `unicode.ToTitle`: the digraphs' title forms (`ǆ` is `ǅ`),
/// Georgian letters as they are, otherwise the upper case.
fn title(c: char) -> char {
    match c {
        '\u{1C4}'..='\u{1C6}' => '\u{1C5}',
        '\u{1C7}'..='\u{1C9}' => '\u{1C8}',
        '\u{1CA}'..='\u{1CC}' => '\u{1CB}',
        '\u{1F1}'..='\u{1F3}' => '\u{1F2}',
        '\u{10D0}'..='\u{10FA}' | '\u{10FD}'..='\u{10FF}' => c,
        _ => upper(c),
    }
}

/// Greek small letters with ypogegrammeni, whose full upper case is two
/// characters but whose simple one (Go's) is the letter with
/// prosgegrammeni.
fn greek_iota(c: char) -> Option<char> {
    let shifted = |c: char| char::from_u32(c as u32 + 8);
    match c {
        '\u{1F80}'..='\u{1F87}' | '\u{1F90}'..='\u{1F97}' | '\u{1FA0}'..='\u{1FA7}' => shifted(c),
        '\u{1FB3}' => Some('\u{1FBC}'),
        '\u{1FC3}' => Some('\u{1FCC}'),
        '\u{1FF3}' => Some('\u{1FFC}'),
        _ => None,
    }
}

fn single(mut mapped: impl Iterator<Item = char>) -> Option<char> {
    let first = mapped.next()?;
    mapped.next().is_none().then_some(first)
}

/// Go's `unicode.IsUpper` (category Lu): Unicode's Uppercase property
/// less Other_Uppercase (Roman numerals, circled and squared letters).
fn is_upper(c: char) -> bool {
    c.is_uppercase() && !matches!(c, '\u{2160}'..='\u{216F}' | '\u{24B6}'..='\u{24CF}' | '\u{1F130}'..='\u{1F189}')
}

/// Go's `unicode.IsLower` (category Ll): Unicode's Lowercase property
/// less Other_Lowercase (modifier letters, Roman numerals, circled
/// letters...).
fn is_lower(c: char) -> bool {
    c.is_lowercase()
        && !matches!(
            c,
            '\u{AA}'
                | '\u{BA}'
                | '\u{2B0}'..='\u{2B8}'
                | '\u{2C0}'..='\u{2C1}'
                | '\u{2E0}'..='\u{2E4}'
                | '\u{345}'
                | '\u{37A}'
                | '\u{10FC}'
                | '\u{1D2C}'..='\u{1D6A}'
                | '\u{1D78}'
                | '\u{1D9B}'..='\u{1DBF}'
                | '\u{2071}'
                | '\u{207F}'
                | '\u{2090}'..='\u{209C}'
                | '\u{2170}'..='\u{217F}'
                | '\u{24D0}'..='\u{24E9}'
                | '\u{2C7C}'..='\u{2C7D}'
                | '\u{A69C}'..='\u{A69D}'
                | '\u{A770}'
                | '\u{A7F2}'..='\u{A7F4}'
                | '\u{A7F8}'..='\u{A7F9}'
                | '\u{AB5C}'..='\u{AB5F}'
                | '\u{AB69}'
        )
}

/// Go's `unicode.IsTitle` (category Lt).
fn is_title(c: char) -> bool {
    matches!(
        c,
        '\u{1C5}'
            | '\u{1C8}'
            | '\u{1CB}'
            | '\u{1F2}'
            | '\u{1F88}'..='\u{1F8F}'
            | '\u{1F98}'..='\u{1F9F}'
            | '\u{1FA8}'..='\u{1FAF}'
            | '\u{1FBC}'
            | '\u{1FCC}'
            | '\u{1FFC}'
    )
}

/// Go's `unicode.IsLetter` (categories L): Unicode's Alphabetic property
/// less letter numbers and the circled and squared letters (combining
/// marks that are Alphabetic are not told apart).
fn is_letter(c: char) -> bool {
    c.is_alphabetic() && !c.is_numeric() && !matches!(c, '\u{24B6}'..='\u{24E9}' | '\u{1F130}'..='\u{1F189}')
}

/// `strings.Title`'s word boundaries.
fn title_separator(c: char) -> bool {
    if c.is_ascii() {
        return !(c.is_ascii_alphanumeric() || c == '_');
    }
    if is_letter(c) || c.is_numeric() {
        return false;
    }
    c.is_whitespace()
}

fn is_connector(c: char) -> bool {
    c == '-' || c == '_' || c.is_whitespace()
}

/// xstrings' `isAlphabet`: a letter, not a CJK ideograph.
fn is_alphabet(c: char) -> bool {
    is_letter(c) && !matches!(c, '\u{4E00}'..='\u{9FCC}' | '\u{3400}'..='\u{4D85}' | '\u{20000}'..='\u{2B81D}')
}

/// Go's `unicode.IsPunct` for ASCII (symbols such as `$` and `+` are not
/// punctuation); no character outside ASCII counts.
fn is_punct(c: char) -> bool {
    c.is_ascii_punctuation() && !matches!(c, '$' | '+' | '<' | '=' | '>' | '^' | '`' | '|' | '~')
}

fn is_number(c: char) -> bool {
    c.is_numeric()
}

/// xstrings' `ToPascalCase` (sprig's `camelcase`).
fn pascal_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    let mut r0 = '\0';
    let mut first_upper = false;
    for c in chars.by_ref() {
        if !is_connector(c) {
            first_upper = is_upper(c);
            r0 = upper(c);
            break;
        }
        // A leading connector is kept, and the last one written again
        // when nothing else follows, as xstrings does.
        r0 = c;
        out.push(c);
    }
    let rest: Vec<char> = chars.collect();
    if rest.is_empty() {
        if !s.is_empty() {
            out.push(r0);
        }
        return out;
    }
    for c in rest {
        let r1 = r0;
        r0 = c;
        if is_connector(r0) && is_connector(r1) {
            out.push(r1);
            continue;
        }
        if is_connector(r1) {
            first_upper = is_upper(r0);
            r0 = upper(r0);
        } else {
            if first_upper {
                if is_upper(r0) {
                    r0 = lower(r0);
                } else {
                    first_upper = false;
                }
            }
            out.push(r1);
        }
    }
    out.push(r0);
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Word {
    Invalid,
    Number,
    Upper,
    Alphabet,
    Connector,
    Punct,
    Other,
}

/// xstrings' `nextWord`: the kind and length (in bytes) of the word at the
/// start of `s`, which is not empty.
fn next_word(s: &str) -> (Word, usize) {
    let mut chars = s.char_indices().peekable();
    let Some((_, first)) = chars.next() else { return (Word::Invalid, 0) };
    let end_of = |i: usize, c: char| i + c.len_utf8();
    let mut end = first.len_utf8();
    let take_while =
        |chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>, end: &mut usize, keep: &dyn Fn(char) -> bool| {
            while let Some(&(i, c)) = chars.peek() {
                if !keep(c) {
                    break;
                }
                *end = end_of(i, c);
                chars.next();
            }
        };
    let kind = if is_connector(first) {
        take_while(&mut chars, &mut end, &is_connector);
        Word::Connector
    } else if is_punct(first) {
        take_while(&mut chars, &mut end, &is_punct);
        Word::Punct
    } else if is_upper(first) {
        match chars.peek().copied() {
            Some((_, c)) if is_upper(c) => {
                let mut prev_size = c.len_utf8();
                end += c.len_utf8();
                chars.next();
                let mut stop = None;
                while let Some(&(i, c)) = chars.peek() {
                    if !is_upper(c) {
                        stop = Some(c);
                        break;
                    }
                    prev_size = c.len_utf8();
                    end = end_of(i, c);
                    chars.next();
                }
                // "HTTPStatus" is "HTTP" and "Status".
                if stop.is_some_and(is_alphabet) {
                    end -= prev_size;
                }
            }
            Some((_, c)) if is_alphabet(c) => {
                take_while(&mut chars, &mut end, &|c| is_alphabet(c) && !is_upper(c));
            }
            _ => {}
        }
        Word::Upper
    } else if is_alphabet(first) {
        take_while(&mut chars, &mut end, &|c| is_alphabet(c) && !is_upper(c));
        Word::Alphabet
    } else if is_number(first) {
        take_while(&mut chars, &mut end, &is_number);
        Word::Number
    } else {
        take_while(&mut chars, &mut end, &|c| !(is_connector(c) || is_alphabet(c) || is_number(c) || is_punct(c)));
        Word::Other
    };
    (kind, end)
}

/// The next word of `rest`, which moves past it; `Invalid` at the end.
fn take_word<'a>(rest: &mut &'a str) -> (Word, &'a str) {
    if rest.is_empty() {
        return (Word::Invalid, "");
    }
    let (kind, len) = next_word(rest);
    let (word, tail) = rest.split_at(len);
    *rest = tail;
    (kind, word)
}

fn push_lower(out: &mut String, kind: Word, word: &str, connector: char) {
    if kind != Word::Upper && kind != Word::Connector {
        out.push_str(word);
        return;
    }
    for c in word.chars() {
        out.push(if is_connector(c) {
            connector
        } else if is_upper(c) {
            lower(c)
        } else {
            c
        });
    }
}

/// xstrings' `camelCaseToLowerCase` (`snakecase`, `kebabcase`).
fn lower_case_words(s: &str, connector: char) -> String {
    if s.is_empty() {
        return String::new();
    }
    let mut out = String::with_capacity(s.len() * 2);
    let mut rest = s;
    let (mut wt, mut word) = take_word(&mut rest);
    while !rest.is_empty() {
        if wt != Word::Connector {
            push_lower(&mut out, wt, word, connector);
        }
        let prev = wt;
        let last = word;
        (wt, word) = take_word(&mut rest);
        match prev {
            Word::Number => {
                while wt == Word::Alphabet || wt == Word::Number {
                    push_lower(&mut out, wt, word, connector);
                    (wt, word) = take_word(&mut rest);
                }
                if wt != Word::Invalid && wt != Word::Punct && wt != Word::Connector {
                    out.push(connector);
                }
            }
            Word::Connector => push_lower(&mut out, prev, last, connector),
            Word::Punct => {}
            _ => {
                if wt != Word::Number {
                    if wt != Word::Connector && wt != Word::Punct {
                        out.push(connector);
                    }
                    continue;
                }
                if rest.is_empty() {
                    continue;
                }
                let last = word;
                (wt, word) = take_word(&mut rest);
                if wt != Word::Alphabet {
                    push_lower(&mut out, Word::Number, last, connector);
                    if wt != Word::Connector && wt != Word::Punct {
                        out.push(connector);
                    }
                    continue;
                }
                out.push(connector);
                push_lower(&mut out, Word::Number, last, connector);
                while wt == Word::Alphabet || wt == Word::Number {
                    push_lower(&mut out, wt, word, connector);
                    (wt, word) = take_word(&mut rest);
                }
                if wt != Word::Invalid && wt != Word::Connector && wt != Word::Punct {
                    out.push(connector);
                }
            }
        }
    }
    push_lower(&mut out, wt, word, connector);
    out
}
