//! Go's `fmt.Sprintf` for the verbs templates use. Like Go, mistakes are
//! reported inside the output (`%!d(string=x)`), not as errors.

use super::value::{Value, go_exponent, go_float, go_quote};

#[derive(Default)]
struct Spec {
    minus: bool,
    plus: bool,
    zero: bool,
    space: bool,
    width: Option<usize>,
    precision: Option<usize>,
}

/// Widths and precisions above this are refused: they would only pad.
const MAX_WIDTH: usize = super::MAX_OUTPUT;

const BAD_WIDTH: &str = "width or precision larger than 1 MiB";

/// Digits of a width or precision; `Err` past `MAX_WIDTH`.
fn number(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<Option<usize>, String> {
    let mut n: Option<usize> = None;
    while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
        let next = n.unwrap_or(0).checked_mul(10).and_then(|n| n.checked_add(d as usize));
        n = Some(next.filter(|n| *n <= MAX_WIDTH).ok_or(BAD_WIDTH)?);
        chars.next();
    }
    Ok(n)
}

/// Go's `fmt.Sprintf`; an error (no data in it) only when the result
/// would outgrow 1 MiB.
pub fn sprintf(format: &str, args: &[Value]) -> Result<String, String> {
    let mut out = String::new();
    let mut next = 0;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if out.len() > super::MAX_OUTPUT {
            return Err(super::TOO_LARGE.into());
        }
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(flag) = chars.peek() {
            match flag {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '0' => spec.zero = true,
                ' ' => spec.space = true,
                '#' => {}
                _ => break,
            }
            chars.next();
        }
        spec.width = number(&mut chars)?;
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.precision = Some(number(&mut chars)?.unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        next += 1;
        let (body, numeric) = verb_body(verb, &spec, arg)?;
        out.push_str(&pad(body, &spec, numeric));
    }
    if let Some(extra) = args.get(next..).filter(|extra| !extra.is_empty()) {
        let extra: Vec<String> = extra.iter().map(typed).collect::<Result<_, _>>()?;
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    if out.len() > super::MAX_OUTPUT {
        return Err(super::TOO_LARGE.into());
    }
    Ok(out)
}

fn typed(arg: &Value) -> Result<String, String> {
    Ok(match arg {
        Value::Nil => "<nil>".into(),
        other => format!("{}={}", other.type_name(), other.display()?),
    })
}

fn bad(verb: char, arg: &Value) -> Result<String, String> {
    Ok(format!("%!{verb}({})", typed(arg)?))
}

fn signed(s: String, spec: &Spec, negative: bool) -> String {
    match () {
        _ if negative => s,
        _ if spec.plus => format!("+{s}"),
        _ if spec.space => format!(" {s}"),
        _ => s,
    }
}

/// The formatted argument, and whether zero padding applies to it.
fn verb_body(verb: char, spec: &Spec, arg: &Value) -> Result<(String, bool), String> {
    Ok(match (verb, arg) {
        // `%g` ignores a precision here: templates have no use for it.
        ('v' | 'g', Value::Float(f)) => (signed(go_float(*f), spec, *f < 0.0), true),
        ('v', Value::Int(i)) | ('d', Value::Int(i)) => (signed(i.to_string(), spec, *i < 0), true),
        ('v', _) => (arg.display()?, false),
        ('s', Value::Int(_) | Value::Float(_) | Value::Bool(_)) => (bad(verb, arg)?, false),
        ('s', _) => {
            let s = arg.display()?;
            (spec.precision.map_or(s.clone(), |p| s.chars().take(p).collect()), false)
        }
        ('q', Value::Int(i)) => {
            let c = u32::try_from(*i).ok().and_then(char::from_u32).unwrap_or('\u{fffd}');
            let quoted = go_quote(&c.to_string())?;
            let inner = quoted.get(1..quoted.len().saturating_sub(1)).unwrap_or_default();
            (format!("'{}'", inner.replace("\\\"", "\"").replace('\'', "\\'")), false)
        }
        ('q', v) if v.as_text().is_some() => (go_quote(&v.as_text().unwrap_or_default())?, false),
        // A json.Number is a fmt.Stringer: %q quotes its text.
        ('q', Value::Number(n)) => (go_quote(n)?, false),
        ('t', Value::Bool(b)) => (b.to_string(), false),
        ('f' | 'F', Value::Float(f)) => {
            (signed(fixed(*f, spec.precision.unwrap_or(6)), spec, f.is_sign_negative()), true)
        }
        ('e' | 'E', Value::Float(f)) => {
            let s = go_exponent(&scientific(*f, spec.precision.unwrap_or(6)), 2);
            let s = if verb == 'E' { s.to_uppercase() } else { s };
            (signed(s, spec, f.is_sign_negative()), true)
        }
        ('x' | 'X' | 'o' | 'b', Value::Int(i)) => {
            let magnitude = i.unsigned_abs();
            let digits = match verb {
                'x' => format!("{magnitude:x}"),
                'X' => format!("{magnitude:X}"),
                'o' => format!("{magnitude:o}"),
                _ => format!("{magnitude:b}"),
            };
            (signed(if *i < 0 { format!("-{digits}") } else { digits }, spec, *i < 0), true)
        }
        ('x' | 'X', v) if v.is_string_kind() => {
            let bytes = v.string_kind_bytes().unwrap_or_default();
            if bytes.len() > super::MAX_OUTPUT / 2 {
                return Err(super::TOO_LARGE.into());
            }
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            (if verb == 'X' { hex.to_uppercase() } else { hex }, false)
        }
        ('c', Value::Int(i)) => {
            (u32::try_from(*i).ok().and_then(char::from_u32).unwrap_or('\u{fffd}').to_string(), false)
        }
        ('T', v) => (v.type_name().to_string(), false),
        _ => (bad(verb, arg)?, false),
    })
}

/// Digits past which an f64's exact decimal expansion is only zeros: its
/// fraction has at most 1,074 digits and its significand at most 767.
/// Rust's formatter takes a precision of at most 65,535 (and panics
/// above), while Go's goes to 1e6; the zeros beyond are added here.
const EXACT_DIGITS: usize = 1100;

/// `%.Nf`: `f` with exactly `precision` digits after the point.
fn fixed(f: f64, precision: usize) -> String {
    let mut s = format!("{:.*}", precision.min(EXACT_DIGITS), f);
    if precision > EXACT_DIGITS && f.is_finite() {
        s.extend(std::iter::repeat_n('0', precision - EXACT_DIGITS));
    }
    s
}

/// `%.Ne` before Go's exponent form: `precision` digits after the point.
fn scientific(f: f64, precision: usize) -> String {
    let s = format!("{:.*e}", precision.min(EXACT_DIGITS), f);
    match s.find('e') {
        Some(at) if precision > EXACT_DIGITS => {
            format!("{}{}{}", &s[..at], "0".repeat(precision - EXACT_DIGITS), &s[at..])
        }
        _ => s,
    }
}

/// Pads to the width, which `number` bounded to 1 MiB.
fn pad(body: String, spec: &Spec, numeric: bool) -> String {
    let len = body.chars().count();
    let Some(width) = spec.width.filter(|w| *w > len) else { return body };
    let fill = width - len;
    if spec.minus {
        return body + &" ".repeat(fill);
    }
    if spec.zero && numeric {
        let sign_len = usize::from(body.starts_with(['-', '+', ' ']));
        let (sign, digits) = body.split_at(sign_len);
        return format!("{sign}{}{digits}", "0".repeat(fill));
    }
    " ".repeat(fill) + &body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(format: &str, args: &[Value]) -> String {
        sprintf(format, args).unwrap()
    }

    fn s(v: &str) -> Value {
        Value::Str(v.into())
    }

    #[test]
    fn verbs() {
        let args = [s("a\"b"), Value::Int(-42), Value::Float(2.5), Value::Bool(true)];
        assert_eq!(
            run("%s|%d|%v|%t|%q", &[s("x"), Value::Int(7), Value::Float(2.5), Value::Bool(true), s("a\"b")]),
            "x|7|2.5|true|\"a\\\"b\""
        );
        assert_eq!(run("%v %v %v %v", &args), "a\"b -42 2.5 true");
        assert_eq!(
            run("%5d|%-5d|%05d|%+d", &[Value::Int(42), Value::Int(42), Value::Int(-42), Value::Int(3)]),
            "   42|42   |-0042|+3"
        );
        assert_eq!(
            run("%.2f %x %X %c %%", &[Value::Float(1.23456), Value::Int(255), s("hi"), Value::Int(65)]),
            "1.23 ff 6869 A %"
        );
        assert_eq!(run("%e", &[Value::Float(1234.5)]), "1.234500e+03");
        assert_eq!(run("%q", &[Value::Int(120)]), "'x'");
        assert_eq!(run("%.3s|%6s", &[s("abcdef"), s("ab")]), "abc|    ab");
    }

    #[test]
    fn mistakes_show_in_output() {
        assert_eq!(run("%d %s", &[s("x")]), "%!d(string=x) %!s(MISSING)");
        assert_eq!(run("%s", &[s("a"), Value::Int(1)]), "a%!(EXTRA int=1)");
        assert_eq!(run("%z", &[Value::Int(1)]), "%!z(int=1)");
    }

    #[test]
    fn huge_widths_are_errors_not_allocations() {
        assert_eq!(sprintf("%99999999999999999999d", &[Value::Int(1)]).unwrap_err(), BAD_WIDTH);
        assert_eq!(sprintf("%.99999999999999999999f", &[Value::Float(1.0)]).unwrap_err(), BAD_WIDTH);
        assert_eq!(sprintf("%1048577s", &[s("x")]).unwrap_err(), BAD_WIDTH);
        assert_eq!(run("%1048576s", &[s("x")]).len(), 1 << 20);
        // Past what Rust's formatter takes (65,535), as Go prints it: the
        // exact digits, then zeros.
        let long = run("%.999999f", &[Value::Float(1.5)]);
        assert_eq!(long.len(), 2 + 999_999);
        assert!(long.starts_with("1.5000") && long.ends_with("000"), "{}", &long[..10]);
        assert_eq!(run("%.70000f", &[Value::Float(0.1)]), format!("{:.1100}{}", 0.1, "0".repeat(70_000 - 1100)));
        let exponent = run("%.70000e", &[Value::Float(-2.5)]);
        assert!(exponent.starts_with("-2.5000") && exponent.ends_with("0e+00"), "{}", &exponent[exponent.len() - 10..]);
        assert_eq!(exponent.len(), "-2.".len() + 70_000 + "e+00".len());
        let twice = sprintf("%1048576s%1048576s", &[s("x"), s("y")]).unwrap_err();
        assert_eq!(twice, crate::gotmpl::TOO_LARGE);
    }
}
