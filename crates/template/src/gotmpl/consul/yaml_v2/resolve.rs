//! yaml.v2's `resolve.go`: what a plain scalar would read back as, so
//! that a string which would not stay a string is quoted.

use super::*;

// ---------------------------------------------------------------------
// resolve.go: what a plain scalar reads back as.

/// Plain scalars that read back as a bool, null, a special float or a
/// merge key (`resolveMap`).
pub(super) const RESOLVE_MAP: &[&str] = &[
    "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", "n", "N", "no", "No", "NO", "false",
    "False", "FALSE", "off", "Off", "OFF", "", "~", "null", "Null", "NULL", ".nan", ".NaN", ".NAN", ".inf", ".Inf",
    ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", "<<",
];

pub(super) fn regex(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("a valid pattern"))
}

/// Whether `resolve("", s)` gives `!!str`, so that `s` may be plain.
pub(super) fn resolves_to_str(s: &str) -> bool {
    static FLOAT: OnceLock<Regex> = OnceLock::new();
    let b = s.as_bytes();
    // The hint of the first byte; other first bytes are always strings.
    let hint = match b.first() {
        None => b'N',
        Some(b'+' | b'-') => b'S',
        Some(b'0'..=b'9') => b'D',
        Some(b'y' | b'Y' | b'n' | b'N' | b't' | b'T' | b'f' | b'F' | b'o' | b'O' | b'~') => b'M',
        Some(b'.') => b'.',
        Some(_) => return true,
    };
    if RESOLVE_MAP.contains(&s) {
        return false;
    }
    match hint {
        b'.' => !dot_float(b),
        b'D' | b'S' => {
            if is_timestamp(b) {
                return false;
            }
            let plain = s.replace('_', "");
            if go_parse_int_base0(plain.as_bytes()) {
                return false;
            }
            let float = regex(&FLOAT, r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$");
            if float.is_match(&plain) && plain.parse::<f64>().is_ok_and(f64::is_finite) {
                return false;
            }
            // `0b` and a signed binary number (`0b-101`), which base 0
            // does not read.
            !plain.strip_prefix("0b").is_some_and(|rest| go_parse_int(rest.as_bytes(), 2))
        }
        _ => true,
    }
}

/// `isBase60Float`: `1:30`, `-12:30:00.5`, quoted for YAML 1.1 parsers.
pub(super) fn is_base60_float(s: &str) -> bool {
    static BASE60: OnceLock<Regex> = OnceLock::new();
    let Some(&c) = s.as_bytes().first() else { return false };
    if !(c == b'+' || c == b'-' || c.is_ascii_digit()) || !s.contains(':') {
        return false;
    }
    regex(&BASE60, r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$").is_match(s)
}

/// The value of digit `c` in `base`, as `strconv.ParseUint` reads it.
pub(super) fn digit(c: u8, base: u32) -> Option<u64> {
    let d = match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'z' => c - b'a' + 10,
        b'A'..=b'Z' => c - b'A' + 10,
        _ => return None,
    };
    (u32::from(d) < base).then_some(u64::from(d))
}

/// `strconv.ParseUint(s, base, 64)` for `base` > 0, without underscores.
pub(super) fn parse_uint(s: &[u8], base: u32) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |n, &c| n.checked_mul(u64::from(base))?.checked_add(digit(c, base)?))
}

/// The magnitude `strconv.ParseUint(s, 0, 64)` reads: `0x`, `0o`, `0b`
/// prefixes, a leading `0` for octal.
pub(super) fn parse_uint_base0(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    if s[0] == b'0' {
        if s.len() >= 3 {
            match s[1].to_ascii_lowercase() {
                b'b' => return parse_uint(&s[2..], 2),
                b'o' => return parse_uint(&s[2..], 8),
                b'x' => return parse_uint(&s[2..], 16),
                _ => {}
            }
        }
        if s.len() == 1 {
            return Some(0);
        }
        return parse_uint(&s[1..], 8);
    }
    parse_uint(s, 10)
}

/// Whether `strconv.ParseInt(s, 0, 64)` or `ParseUint(s, 0, 64)` reads
/// `s` (`resolve` tries both).
pub(super) fn go_parse_int_base0(s: &[u8]) -> bool {
    match s.first() {
        Some(b'+') => parse_uint_base0(&s[1..]).is_some_and(|n| n < 1 << 63),
        Some(b'-') => parse_uint_base0(&s[1..]).is_some_and(|n| n <= 1 << 63),
        _ => parse_uint_base0(s).is_some(),
    }
}

/// Whether `strconv.ParseInt(s, base, 64)` or `ParseUint(s, base, 64)`
/// reads `s`.
pub(super) fn go_parse_int(s: &[u8], base: u32) -> bool {
    match s.first() {
        Some(b'+') => parse_uint(&s[1..], base).is_some_and(|n| n < 1 << 63),
        Some(b'-') => parse_uint(&s[1..], base).is_some_and(|n| n <= 1 << 63),
        _ => parse_uint(s, base).is_some(),
    }
}

/// `strconv.ParseFloat(s, 64)` succeeds, for `s` starting with `.`:
/// Go's syntax (underscores between digits allowed), no overflow.
pub(super) fn dot_float(s: &[u8]) -> bool {
    let digits_from = |mut i: usize, count: &mut usize, underscores: &mut bool| {
        while i < s.len() && (s[i].is_ascii_digit() || s[i] == b'_') {
            if s[i] == b'_' {
                *underscores = true;
            } else {
                *count += 1;
            }
            i += 1;
        }
        i
    };
    let (mut mantissa, mut underscores) = (0, false);
    let mut i = digits_from(1, &mut mantissa, &mut underscores);
    if mantissa == 0 {
        return false;
    }
    if i < s.len() && s[i].eq_ignore_ascii_case(&b'e') {
        i += 1;
        if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
            i += 1;
        }
        if i >= s.len() || !s[i].is_ascii_digit() {
            return false;
        }
        let mut exponent = 0;
        i = digits_from(i, &mut exponent, &mut underscores);
    }
    if i != s.len() || (underscores && !underscore_ok(s)) {
        return false;
    }
    let cleaned: String = s.iter().filter(|c| **c != b'_').map(|c| char::from(*c)).collect();
    cleaned.parse::<f64>().is_ok_and(f64::is_finite)
}

/// strconv's `underscoreOK` for a number without sign or base prefix:
/// each underscore between two digits.
pub(super) fn underscore_ok(s: &[u8]) -> bool {
    let mut saw = b'^';
    for &c in s {
        if c.is_ascii_digit() {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else if saw == b'_' {
            return false;
        } else {
            saw = b'!';
        }
    }
    saw != b'_'
}

/// `parseTimestamp`: `time.Parse` with one of yaml.v2's four layouts
/// (`2006-1-2T15:4:5.999999999Z07:00`, the same with `t`,
/// `2006-1-2 15:4:5.999999999`, `2006-1-2`) accepts `s`.
pub(super) fn is_timestamp(s: &[u8]) -> bool {
    let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits != 4 || digits == s.len() || s[4] != b'-' {
        return false;
    }
    [Some(b'T'), Some(b't'), Some(b' '), None].into_iter().any(|sep| timestamp_layout(s, sep))
}

/// Go's `getnum(s, false)`: one or two digits.
pub(super) fn getnum(s: &[u8]) -> Option<(u32, &[u8])> {
    let first = s.first().filter(|c| c.is_ascii_digit())?;
    match s.get(1).filter(|c| c.is_ascii_digit()) {
        Some(second) => Some((u32::from(first - b'0') * 10 + u32::from(second - b'0'), &s[2..])),
        None => Some((u32::from(first - b'0'), &s[1..])),
    }
}

/// One of the layouts: `sep` is what follows the date (`None` for the
/// date alone).
pub(super) fn timestamp_layout(s: &[u8], sep: Option<u8>) -> bool {
    let year: u32 = s[..4].iter().fold(0, |n, c| n * 10 + u32::from(c - b'0'));
    let rest = &s[5..];
    let Some((month, rest)) = getnum(rest) else { return false };
    if !(1..=12).contains(&month) {
        return false;
    }
    let Some(rest) = rest.strip_prefix(b"-") else { return false };
    let Some((day, mut rest)) = getnum(rest) else { return false };
    match sep {
        None => {}
        Some(b' ') => {
            // A space in a layout matches any run of spaces.
            if rest.first().is_some_and(|c| *c != b' ') {
                return false;
            }
            while let Some(r) = rest.strip_prefix(b" ") {
                rest = r;
            }
        }
        Some(sep) => match rest.strip_prefix(&[sep]) {
            Some(r) => rest = r,
            None => return false,
        },
    }
    if sep.is_some() {
        let Some((hour, r)) = getnum(rest) else { return false };
        let Some(r) = r.strip_prefix(b":") else { return false };
        let Some((minute, r)) = getnum(r) else { return false };
        let Some(r) = r.strip_prefix(b":") else { return false };
        let Some((second, mut r)) = getnum(r) else { return false };
        if hour >= 24 || minute >= 60 || second >= 60 {
            return false;
        }
        // `.999999999`: a `.` or `,` and any number of digits, optional.
        if r.len() >= 2 && (r[0] == b'.' || r[0] == b',') && r[1].is_ascii_digit() {
            let digits = r[1..].iter().take_while(|c| c.is_ascii_digit()).count();
            r = &r[1 + digits..];
        }
        if sep != Some(b' ') && !zone(&mut r) {
            return false;
        }
        rest = r;
    }
    if !rest.is_empty() {
        return false;
    }
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    let days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    (1..=days).contains(&day)
}

/// `Z07:00`: `Z`, or a sign, two digits, `:` and two digits.
pub(super) fn zone(rest: &mut &[u8]) -> bool {
    if let Some(r) = rest.strip_prefix(b"Z") {
        *rest = r;
        return true;
    }
    let r = *rest;
    if r.len() < 6 || r[3] != b':' || !r[1..3].iter().chain(&r[4..6]).all(u8::is_ascii_digit) {
        return false;
    }
    let hours = u32::from(r[1] - b'0') * 10 + u32::from(r[2] - b'0');
    let minutes = u32::from(r[4] - b'0') * 10 + u32::from(r[5] - b'0');
    if hours > 24 || minutes > 60 || !(r[0] == b'+' || r[0] == b'-') {
        return false;
    }
    *rest = &r[6..];
    true
}
