//! Sprig's `urlParse` and `urlJoin`, over a port of Go's `net/url` (Go
//! 1.26, what ESO v2.9.0 builds with): `Parse` and `URL.String`, with
//! their escaping rules. Lexical only: nothing is resolved or fetched.
//! Errors say what was wrong, not where: Go quotes the URL, which may
//! hold a password.

use std::collections::BTreeMap;

use super::super::funcs::{CallResult, arity};
use super::super::value::Value;
use super::map_arg;
use super::strings::bytes;

pub(super) fn call(name: &str, args: &mut [Value]) -> Option<CallResult> {
    Some(match name {
        "urlParse" => (|| {
            arity(args, 1)?;
            let raw = String::from_utf8_lossy(bytes(&args[0])?).into_owned();
            let url = parse(&raw).map_err(|e| format!("unable to parse url: {e}"))?;
            let hostname = hostname(&url.host);
            let userinfo = url.user.as_ref().map_or(String::new(), Userinfo::to_string);
            let fields = [
                ("scheme", url.scheme),
                ("host", url.host),
                ("hostname", hostname),
                ("path", url.path),
                ("query", url.raw_query),
                ("opaque", url.opaque),
                ("fragment", url.fragment),
                ("userinfo", userinfo),
            ];
            Ok(Value::Map(fields.into_iter().map(|(k, v)| (k.to_string(), Value::Str(v))).collect()))
        })(),
        "urlJoin" => (|| {
            arity(args, 1)?;
            let d = map_arg(&args[0])?;
            let userinfo = field(d, "userinfo")?;
            let user = if userinfo.is_empty() {
                None
            } else {
                let temp = parse(&format!("proto://{userinfo}@host"))
                    .map_err(|e| format!("unable to parse userinfo in dict: {e}"))?;
                temp.user
            };
            let url = Url {
                scheme: field(d, "scheme")?,
                host: field(d, "host")?,
                path: field(d, "path")?,
                raw_query: field(d, "query")?,
                opaque: field(d, "opaque")?,
                fragment: field(d, "fragment")?,
                user,
                ..Url::default()
            };
            super::string(url.to_string())
        })(),
        _ => return None,
    })
}

/// sprig's `dictGetOrEmpty`: a string, or "" for a missing key.
fn field(d: &BTreeMap<String, Value>, key: &str) -> Result<String, String> {
    match d.get(key) {
        None => Ok(String::new()),
        Some(Value::Str(s)) => Ok(s.clone()),
        Some(Value::Bytes(b)) => Ok(String::from_utf8_lossy(b).into_owned()),
        Some(other) => Err(format!(
            "unable to parse {key} key, must be of type string, but {} found",
            super::reflection::kind(other)
        )),
    }
}

#[derive(Default, Debug)]
struct Url {
    scheme: String,
    opaque: String,
    user: Option<Userinfo>,
    host: String,
    path: String,
    raw_path: String,
    omit_host: bool,
    force_query: bool,
    raw_query: String,
    fragment: String,
    raw_fragment: String,
}

#[derive(Debug, Clone)]
struct Userinfo {
    username: String,
    password: Option<String>,
}

impl std::fmt::Display for Userinfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&escape(&self.username, Mode::UserPassword))?;
        if let Some(password) = &self.password {
            write!(f, ":{}", escape(password, Mode::UserPassword))?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Path,
    Host,
    Zone,
    UserPassword,
    Fragment,
}

/// RFC 3986's sub-delims, which both `shouldEscape` and `validEncoded`
/// let through in places.
fn sub_delim(c: u8) -> bool {
    matches!(c, b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=')
}

/// Go's `shouldEscape`.
fn should_escape(c: u8, mode: Mode) -> bool {
    if c.is_ascii_alphanumeric() {
        return false;
    }
    if (mode == Mode::Host || mode == Mode::Zone)
        && (sub_delim(c) || matches!(c, b':' | b'[' | b']' | b'<' | b'>' | b'"'))
    {
        return false;
    }
    match c {
        b'-' | b'_' | b'.' | b'~' => return false,
        b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'?' | b'@' => match mode {
            Mode::Path => return c == b'?',
            Mode::UserPassword => return matches!(c, b'@' | b'/' | b'?' | b':'),
            Mode::Fragment => return false,
            Mode::Host | Mode::Zone => {}
        },
        _ => {}
    }
    if mode == Mode::Fragment && matches!(c, b'!' | b'(' | b')' | b'*') {
        return false;
    }
    true
}

/// Go's `escape` (no query-component mode is needed here).
fn escape(s: &str, mode: Mode) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        if should_escape(c, mode) {
            out.push_str(&format!("%{c:02X}"));
        } else {
            out.push(char::from(c));
        }
    }
    out
}

fn unhex(c: u8) -> u8 {
    char::from(c).to_digit(16).map_or(0, |d| d as u8)
}

/// Go's `unescape`; the error is Go's, without the offending text (it is
/// part of a secret).
fn unescape(s: &str, mode: Mode) -> Result<String, String> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut n = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                n += 1;
                if i + 2 >= b.len() || !b[i + 1].is_ascii_hexdigit() || !b[i + 2].is_ascii_hexdigit() {
                    return Err("invalid URL escape".into());
                }
                let three = &s[i..i + 3];
                if mode == Mode::Host && unhex(b[i + 1]) < 8 && three != "%25" {
                    return Err("invalid URL escape".into());
                }
                if mode == Mode::Zone {
                    let v = (unhex(b[i + 1]) << 4) | unhex(b[i + 2]);
                    if three != "%25" && v != b' ' && should_escape(v, Mode::Host) {
                        return Err("invalid URL escape".into());
                    }
                }
                i += 3;
            }
            c => {
                if (mode == Mode::Host || mode == Mode::Zone) && c < 0x80 && should_escape(c, mode) {
                    return Err("invalid character in host name".into());
                }
                i += 1;
            }
        }
    }
    if n == 0 {
        return Ok(s.to_string());
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push((unhex(b[i + 1]) << 4) | unhex(b[i + 2]));
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Go's `url.Parse`.
fn parse(raw: &str) -> Result<Url, String> {
    let (u, frag) = raw.split_once('#').unwrap_or((raw, ""));
    let mut url = parse_inner(u)?;
    if frag.is_empty() {
        return Ok(url);
    }
    url.fragment = unescape(frag, Mode::Fragment)?;
    url.raw_fragment = if escape(&url.fragment, Mode::Fragment) == frag { String::new() } else { frag.to_string() };
    Ok(url)
}

fn parse_inner(raw: &str) -> Result<Url, String> {
    if raw.bytes().any(|b| b < b' ' || b == 0x7f) {
        return Err("net/url: invalid control character in URL".into());
    }
    let mut url = Url::default();
    if raw == "*" {
        url.path = "*".into();
        return Ok(url);
    }
    let (scheme, rest) = scheme(raw)?;
    url.scheme = scheme.to_ascii_lowercase();
    let mut rest = rest;
    if rest.ends_with('?') && rest.matches('?').count() == 1 {
        url.force_query = true;
        rest = &rest[..rest.len() - 1];
    } else if let Some((before, query)) = rest.split_once('?') {
        url.raw_query = query.to_string();
        rest = before;
    }
    if !rest.starts_with('/') {
        if !url.scheme.is_empty() {
            url.opaque = rest.to_string();
            return Ok(url);
        }
        let segment = rest.split('/').next().unwrap_or("");
        if segment.contains(':') {
            return Err("first path segment in URL cannot contain colon".into());
        }
    }
    if (!url.scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
        let authority = &rest[2..];
        let (authority, path) = match authority.find('/') {
            Some(i) => (&authority[..i], &authority[i..]),
            None => (authority, ""),
        };
        let (user, host) = parse_authority(&url.scheme, authority)?;
        url.user = user;
        url.host = host;
        rest = path;
    } else if !url.scheme.is_empty() && rest.starts_with('/') {
        url.omit_host = true;
    }
    url.path = unescape(rest, Mode::Path)?;
    url.raw_path = if escape(&url.path, Mode::Path) == rest { String::new() } else { rest.to_string() };
    Ok(url)
}

/// Go's `getScheme`.
fn scheme(raw: &str) -> Result<(&str, &str), String> {
    for (i, c) in raw.bytes().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i == 0 => return Ok(("", raw)),
            b'0'..=b'9' | b'+' | b'-' | b'.' => {}
            b':' if i == 0 => return Err("missing protocol scheme".into()),
            b':' => return Ok((&raw[..i], &raw[i + 1..])),
            _ => return Ok(("", raw)),
        }
    }
    Ok(("", raw))
}

fn parse_authority(scheme: &str, authority: &str) -> Result<(Option<Userinfo>, String), String> {
    let at = authority.rfind('@');
    let host = parse_host(scheme, at.map_or(authority, |i| &authority[i + 1..]))?;
    let Some(i) = at else { return Ok((None, host)) };
    let userinfo = &authority[..i];
    let valid = userinfo.chars().all(|r| {
        r.is_ascii_alphanumeric()
            || matches!(
                r,
                '-' | '.'
                    | '_'
                    | ':'
                    | '~'
                    | '!'
                    | '$'
                    | '&'
                    | '\''
                    | '('
                    | ')'
                    | '*'
                    | '+'
                    | ','
                    | ';'
                    | '='
                    | '%'
                    | '@'
            )
    });
    if !valid {
        return Err("net/url: invalid userinfo".into());
    }
    let user = match userinfo.split_once(':') {
        None => Userinfo { username: unescape(userinfo, Mode::UserPassword)?, password: None },
        Some((name, password)) => Userinfo {
            username: unescape(name, Mode::UserPassword)?,
            password: Some(unescape(password, Mode::UserPassword)?),
        },
    };
    Ok((Some(user), host))
}

fn valid_optional_port(port: &str) -> bool {
    port.is_empty() || port.starts_with(':') && port[1..].bytes().all(|b| b.is_ascii_digit())
}

/// Go's `parseHost` (with `urlstrictcolons` at its default).
fn parse_host(scheme: &str, host: &str) -> Result<String, String> {
    match host.rfind('[') {
        Some(i) if i > 0 => Err("invalid IP-literal".into()),
        Some(_) => {
            let close = host.rfind(']').ok_or("missing ']' in host")?;
            let colon_port = &host[close + 1..];
            if !valid_optional_port(colon_port) {
                return Err("invalid port after host".into());
            }
            let colon_port = unescape(colon_port, Mode::Host)?;
            // A `]` before the `[` leaves no hostname: Go's slice would
            // panic, which sprig reports as an error too.
            let hostname = host.get(1..close).ok_or("invalid IP-literal")?;
            let unescaped = match hostname.find("%25") {
                Some(zone) => unescape(&hostname[..zone], Mode::Host)? + &unescape(&hostname[zone..], Mode::Zone)?,
                None => unescape(hostname, Mode::Host)?,
            };
            let (addr, zone) = match unescaped.split_once('%') {
                Some((addr, zone)) => (addr, Some(zone)),
                None => (unescaped.as_str(), None),
            };
            if zone == Some("") || addr.parse::<std::net::Ipv6Addr>().is_err() {
                return Err("invalid host: ParseAddr: not an IPv6 address".into());
            }
            Ok(format!("[{unescaped}]{colon_port}"))
        }
        None => {
            if let Some(first) = host.find(':') {
                let last = host.rfind(':').unwrap_or(first);
                let i = if last != first && scheme != "http" && scheme != "https" { last } else { first };
                let colon_port = &host[i..];
                if !valid_optional_port(colon_port) {
                    return Err("invalid port after host".into());
                }
            }
            unescape(host, Mode::Host)
        }
    }
}

/// Go's `URL.Hostname`.
fn hostname(host: &str) -> String {
    let mut name = host;
    if let Some(colon) = name.rfind(':')
        && valid_optional_port(&name[colon..])
    {
        name = &name[..colon];
    }
    if name.starts_with('[') && name.ends_with(']') && name.len() >= 2 {
        name = &name[1..name.len() - 1];
    }
    name.to_string()
}

/// Go's `validEncoded`.
fn valid_encoded(s: &str, mode: Mode) -> bool {
    s.bytes().all(|c| sub_delim(c) || matches!(c, b':' | b'@' | b'[' | b']' | b'%') || !should_escape(c, mode))
}

impl Url {
    fn escaped_path(&self) -> String {
        if !self.raw_path.is_empty()
            && valid_encoded(&self.raw_path, Mode::Path)
            && unescape(&self.raw_path, Mode::Path).is_ok_and(|p| p == self.path)
        {
            return self.raw_path.clone();
        }
        if self.path == "*" {
            return "*".into();
        }
        escape(&self.path, Mode::Path)
    }

    fn escaped_fragment(&self) -> String {
        if !self.raw_fragment.is_empty()
            && valid_encoded(&self.raw_fragment, Mode::Fragment)
            && unescape(&self.raw_fragment, Mode::Fragment).is_ok_and(|f| f == self.fragment)
        {
            return self.raw_fragment.clone();
        }
        escape(&self.fragment, Mode::Fragment)
    }
}

/// Go's `URL.String`.
impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut buf = String::new();
        if !self.scheme.is_empty() {
            buf.push_str(&self.scheme);
            buf.push(':');
        }
        if !self.opaque.is_empty() {
            buf.push_str(&self.opaque);
        } else {
            let authority = !self.scheme.is_empty() || !self.host.is_empty() || self.user.is_some();
            // An empty host the parsed URL had (`file:/x`) stays omitted.
            let omitted = self.omit_host && self.host.is_empty() && self.user.is_none();
            if authority && !omitted {
                if !self.host.is_empty() || !self.path.is_empty() || self.user.is_some() {
                    buf.push_str("//");
                }
                if let Some(user) = &self.user {
                    buf.push_str(&user.to_string());
                    buf.push('@');
                }
                if !self.host.is_empty() {
                    buf.push_str(&escape(&self.host, Mode::Host));
                }
            }
            let path = self.escaped_path();
            if !path.is_empty() && !path.starts_with('/') && !self.host.is_empty() {
                buf.push('/');
            }
            if buf.is_empty() && path.split('/').next().unwrap_or("").contains(':') {
                buf.push_str("./");
            }
            buf.push_str(&path);
        }
        if self.force_query || !self.raw_query.is_empty() {
            buf.push('?');
            buf.push_str(&self.raw_query);
        }
        if !self.fragment.is_empty() {
            buf.push('#');
            buf.push_str(&self.escaped_fragment());
        }
        f.write_str(&buf)
    }
}
