//! Go's `path` functions (`base`, `dir`, `clean`, `ext`, `isAbs`) and
//! `path/filepath`'s (`osBase`...), which on Linux, where ESO runs, are
//! the same. Lexical only: no file is looked at.

use super::super::funcs::{CallResult, arity};
use super::super::value::Value;
use super::strings::bytes;

pub(super) fn call(name: &str, args: &mut [Value]) -> Option<CallResult> {
    let name = name.strip_prefix("os").map_or(name.to_string(), |rest| rest.to_ascii_lowercase());
    let name = if name == "isabs" { "isAbs".to_string() } else { name };
    let path = |args: &[Value]| -> Result<Vec<u8>, String> {
        arity(args, 1)?;
        Ok(bytes(&args[0])?.to_vec())
    };
    Some(match name.as_str() {
        "base" => path(args).map(|p| Value::from_bytes(&base(&p))),
        "dir" => path(args).map(|p| {
            let cut = p.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
            Value::from_bytes(&clean(&p[..cut]))
        }),
        "clean" => path(args).map(|p| Value::from_bytes(&clean(&p))),
        "ext" => path(args).map(|p| {
            let after_slash = p.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
            let ext = p[after_slash..].iter().rposition(|&b| b == b'.').map_or(&[][..], |i| &p[after_slash + i..]);
            Value::from_bytes(ext)
        }),
        "isAbs" => path(args).map(|p| Value::Bool(p.first() == Some(&b'/'))),
        _ => return None,
    })
}

/// Go's `path.Base`.
fn base(path: &[u8]) -> Vec<u8> {
    if path.is_empty() {
        return b".".to_vec();
    }
    let trimmed = match path.iter().rposition(|&b| b != b'/') {
        Some(last) => &path[..=last],
        None => return b"/".to_vec(),
    };
    let start = trimmed.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
    trimmed[start..].to_vec()
}

/// Go's `path.Clean`.
fn clean(path: &[u8]) -> Vec<u8> {
    if path.is_empty() {
        return b".".to_vec();
    }
    let rooted = path[0] == b'/';
    let n = path.len();
    let mut out: Vec<u8> = Vec::with_capacity(n);
    let (mut r, mut dotdot) = (0, 0);
    if rooted {
        out.push(b'/');
        (r, dotdot) = (1, 1);
    }
    while r < n {
        // An empty element, or `.`.
        if path[r] == b'/' || path[r] == b'.' && (r + 1 == n || path[r + 1] == b'/') {
            r += 1;
        } else if path[r] == b'.' && path[r + 1] == b'.' && (r + 2 == n || path[r + 2] == b'/') {
            r += 2;
            if out.len() > dotdot {
                // Back to the last `/`, dropping it too.
                let mut dropped = out.pop();
                while out.len() > dotdot && dropped != Some(b'/') {
                    dropped = out.pop();
                }
            } else if !rooted {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(b"..");
                dotdot = out.len();
            }
        } else {
            if rooted && out.len() != 1 || !rooted && !out.is_empty() {
                out.push(b'/');
            }
            while r < n && path[r] != b'/' {
                out.push(path[r]);
                r += 1;
            }
        }
    }
    if out.is_empty() {
        return b".".to_vec();
    }
    out
}
