//! Case mappings and character classes as Go's `unicode` package has them
//! (the simple one-character mappings; the general categories Lu, Ll, Lt,
//! L rather than Unicode's wider properties), and xstrings' word splitting
//! for `camelcase`, `snakecase` and `kebabcase`.

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
pub(super) fn title(c: char) -> char {
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
pub(super) fn greek_iota(c: char) -> Option<char> {
    let shifted = |c: char| char::from_u32(c as u32 + 8);
    match c {
        '\u{1F80}'..='\u{1F87}' | '\u{1F90}'..='\u{1F97}' | '\u{1FA0}'..='\u{1FA7}' => shifted(c),
        '\u{1FB3}' => Some('\u{1FBC}'),
        '\u{1FC3}' => Some('\u{1FCC}'),
        '\u{1FF3}' => Some('\u{1FFC}'),
        _ => None,
    }
}

pub(super) fn single(mut mapped: impl Iterator<Item = char>) -> Option<char> {
    let first = mapped.next()?;
    mapped.next().is_none().then_some(first)
}

/// Go's `unicode.IsUpper` (category Lu): Unicode's Uppercase property
/// less Other_Uppercase (Roman numerals, circled and squared letters).
pub(super) fn is_upper(c: char) -> bool {
    c.is_uppercase() && !matches!(c, '\u{2160}'..='\u{216F}' | '\u{24B6}'..='\u{24CF}' | '\u{1F130}'..='\u{1F189}')
}

/// Go's `unicode.IsLower` (category Ll): Unicode's Lowercase property
/// less Other_Lowercase (modifier letters, Roman numerals, circled
/// letters...).
pub(super) fn is_lower(c: char) -> bool {
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
pub(super) fn is_title(c: char) -> bool {
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
pub(super) fn is_letter(c: char) -> bool {
    c.is_alphabetic() && !c.is_numeric() && !matches!(c, '\u{24B6}'..='\u{24E9}' | '\u{1F130}'..='\u{1F189}')
}

/// `strings.Title`'s word boundaries.
pub(super) fn title_separator(c: char) -> bool {
    if c.is_ascii() {
        return !(c.is_ascii_alphanumeric() || c == '_');
    }
    if is_letter(c) || c.is_numeric() {
        return false;
    }
    c.is_whitespace()
}

pub(super) fn is_connector(c: char) -> bool {
    c == '-' || c == '_' || c.is_whitespace()
}

/// xstrings' `isAlphabet`: a letter, not a CJK ideograph.
pub(super) fn is_alphabet(c: char) -> bool {
    is_letter(c) && !matches!(c, '\u{4E00}'..='\u{9FCC}' | '\u{3400}'..='\u{4D85}' | '\u{20000}'..='\u{2B81D}')
}

/// Go's `unicode.IsPunct` for ASCII (symbols such as `$` and `+` are not
/// punctuation); no character outside ASCII counts.
pub(super) fn is_punct(c: char) -> bool {
    c.is_ascii_punctuation() && !matches!(c, '$' | '+' | '<' | '=' | '>' | '^' | '`' | '|' | '~')
}

pub(super) fn is_number(c: char) -> bool {
    c.is_numeric()
}

/// xstrings' `ToPascalCase` (sprig's `camelcase`).
pub(super) fn pascal_case(s: &str) -> String {
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
pub(super) enum Word {
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
pub(super) fn next_word(s: &str) -> (Word, usize) {
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
pub(super) fn take_word<'a>(rest: &mut &'a str) -> (Word, &'a str) {
    if rest.is_empty() {
        return (Word::Invalid, "");
    }
    let (kind, len) = next_word(rest);
    let (word, tail) = rest.split_at(len);
    *rest = tail;
    (kind, word)
}

pub(super) fn push_lower(out: &mut String, kind: Word, word: &str, connector: char) {
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
pub(super) fn lower_case_words(s: &str, connector: char) -> String {
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
