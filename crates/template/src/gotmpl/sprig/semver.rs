//! Sprig's `semverCompare`, over a port of Masterminds/semver v3.4.0
//! (what ESO builds with): `NewVersion` (its default coercing parser),
//! `NewConstraint` and `Constraints.Check`, with the same regular
//! expressions. `semver` itself returns a Go object whose methods a
//! template calls (`(semver "1.2.3").Major`), which this engine has no
//! notion of: it stays refused. Errors leave the version and constraint
//! out (they may come from a secret).

use std::cmp::Ordering;

use super::super::funcs::{CallResult, arity, text};
use super::super::value::Value;
use super::regex::compile;

pub(super) fn call(name: &str, args: &mut [Value]) -> Option<CallResult> {
    if name != "semverCompare" {
        return None;
    }
    Some((|| {
        arity(args, 2)?;
        let constraints = Constraints::parse(&text(&args[0])?)?;
        let version = Version::parse(&text(&args[1])?)?;
        Ok(Value::Bool(constraints.check(&version)))
    })())
}

#[derive(Debug, Clone)]
struct Version {
    major: u64,
    minor: u64,
    patch: u64,
    pre: String,
}

const CV: &str = r"v?([0-9|x|X|\*]+)(\.[0-9|x|X|\*]+)?(\.[0-9|x|X|\*]+)?(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?";
const LOOSE: &str = r"^v?([0-9]+)(\.[0-9]+)?(\.[0-9]+)?(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?$";
const OPS: &str = r"=||!=|>|<|>=|=>|<=|=<|~|~>|\^";

fn group<'a>(caps: &regex::Captures<'a>, i: usize) -> &'a str {
    caps.get(i).map_or("", |m| m.as_str())
}

fn segment(s: &str) -> Result<u64, String> {
    s.trim_start_matches('.').parse().map_err(|_| "error parsing version segment".to_string())
}

fn all_in(s: &str, allowed: impl Fn(char) -> bool) -> bool {
    s.chars().all(allowed)
}

fn alnum_dash(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-'
}

impl Version {
    /// semver's `coerceNewVersion` (`NewVersion` by default).
    fn parse(v: &str) -> Result<Version, String> {
        let re = compile(LOOSE)?;
        let caps = re.captures(v).ok_or("invalid semantic version")?;
        let version = Version {
            major: segment(group(&caps, 1))?,
            minor: if group(&caps, 2).is_empty() { 0 } else { segment(group(&caps, 2))? },
            patch: if group(&caps, 3).is_empty() { 0 } else { segment(group(&caps, 3))? },
            pre: group(&caps, 5).to_string(),
        };
        if !version.pre.is_empty() {
            for part in version.pre.split('.') {
                let numeric = all_in(part, |c| c.is_ascii_digit());
                if part.is_empty() || !numeric && !all_in(part, alnum_dash) {
                    return Err("invalid prerelease string".into());
                }
                if numeric && part.len() > 1 && part.starts_with('0') {
                    return Err("version segment starts with 0".into());
                }
            }
        }
        let metadata = group(&caps, 8);
        if !metadata.is_empty() && metadata.split('.').any(|p| p.is_empty() || !all_in(p, alnum_dash)) {
            return Err("invalid metadata string".into());
        }
        Ok(version)
    }

    fn compare(&self, o: &Version) -> Ordering {
        let segments = self.major.cmp(&o.major).then(self.minor.cmp(&o.minor)).then(self.patch.cmp(&o.patch));
        if segments != Ordering::Equal {
            return segments;
        }
        match (self.pre.is_empty(), o.pre.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => compare_prerelease(&self.pre, &o.pre),
        }
    }
}

fn compare_prerelease(v: &str, o: &str) -> Ordering {
    let (s, o): (Vec<&str>, Vec<&str>) = (v.split('.').collect(), o.split('.').collect());
    for i in 0..s.len().max(o.len()) {
        let d = compare_pre_part(s.get(i).copied().unwrap_or(""), o.get(i).copied().unwrap_or(""));
        if d != Ordering::Equal {
            return d;
        }
    }
    Ordering::Equal
}

fn compare_pre_part(s: &str, o: &str) -> Ordering {
    if s == o {
        return Ordering::Equal;
    }
    if s.is_empty() {
        return Ordering::Less;
    }
    if o.is_empty() {
        return Ordering::Greater;
    }
    match (s.parse::<u64>(), o.parse::<u64>()) {
        (Err(_), Err(_)) => {
            if s > o {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        (_, Err(_)) => Ordering::Less,
        (Err(_), _) => Ordering::Greater,
        (Ok(si), Ok(oi)) => {
            if si > oi {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
    }
}

#[derive(Debug)]
struct Constraint {
    con: Version,
    op: String,
    minor_dirty: bool,
    patch_dirty: bool,
    dirty: bool,
}

struct Constraints {
    groups: Vec<(Vec<Constraint>, bool)>,
}

fn is_x(s: &str) -> bool {
    matches!(s, "x" | "*" | "X")
}

impl Constraints {
    /// semver's `NewConstraint`.
    fn parse(c: &str) -> Result<Constraints, String> {
        let range = compile(&format!(r"\s*({CV})\s+-\s+({CV})\s*"))?;
        let valid = compile(&format!(r"^(\s*({OPS})\s*({CV})\s*)((?:\s+|,\s*)({OPS})\s*({CV})\s*)*$"))?;
        let find = compile(&format!(r"({OPS})\s*({CV})"))?;
        // rewriteRange: "1.2 - 1.4" is ">= 1.2, <= 1.4 ", each match
        // replacing its first occurrence in turn.
        let mut rewritten = c.to_string();
        for caps in range.captures_iter(c) {
            let with = format!(">= {}, <= {} ", group(&caps, 1), group(&caps, 11));
            rewritten = rewritten.replacen(group(&caps, 0), &with, 1);
        }
        let mut groups = Vec::new();
        for or in rewritten.split("||") {
            if !valid.is_match(or) {
                return Err("improper constraint".into());
            }
            let mut found: Vec<&str> = find.find_iter(or).map(|m| m.as_str()).collect();
            if found.is_empty() {
                found.push(or);
            }
            let mut constraints = Vec::new();
            let mut has_pre = false;
            for s in found {
                let constraint = parse_constraint(s)?;
                has_pre |= !constraint.con.pre.is_empty();
                constraints.push(constraint);
            }
            groups.push((constraints, has_pre));
        }
        Ok(Constraints { groups })
    }

    fn check(&self, v: &Version) -> bool {
        self.groups.iter().any(|(constraints, pre)| constraints.iter().all(|c| c.check(v, *pre)))
    }
}

/// semver's `parseConstraint`.
fn parse_constraint(c: &str) -> Result<Constraint, String> {
    if c.is_empty() {
        let con = Version { major: 0, minor: 0, patch: 0, pre: String::new() };
        return Ok(Constraint { con, op: String::new(), minor_dirty: false, patch_dirty: false, dirty: true });
    }
    let re = compile(&format!(r"^\s*({OPS})\s*({CV})\s*$"))?;
    let m = re.captures(c).ok_or("improper constraint")?;
    let (major, minor, patch, pre) = (group(&m, 3), group(&m, 4), group(&m, 5), group(&m, 6));
    let (mut minor_dirty, mut patch_dirty, mut dirty) = (false, false, false);
    let ver = if is_x(major) || major.is_empty() {
        dirty = true;
        format!("0.0.0{pre}")
    } else if is_x(minor.trim_start_matches('.')) || minor.is_empty() {
        minor_dirty = true;
        dirty = true;
        format!("{major}.0.0{pre}")
    } else if is_x(patch.trim_start_matches('.')) || patch.is_empty() {
        dirty = true;
        patch_dirty = true;
        format!("{major}{minor}.0{pre}")
    } else {
        group(&m, 2).to_string()
    };
    let con = Version::parse(&ver).map_err(|_| "constraint parser error")?;
    Ok(Constraint { con, op: group(&m, 1).to_string(), minor_dirty, patch_dirty, dirty })
}

impl Constraint {
    fn check(&self, v: &Version, include_pre: bool) -> bool {
        if !v.pre.is_empty() && !include_pre {
            return false;
        }
        let c = &self.con;
        match self.op.as_str() {
            "" | "=" => {
                if self.dirty {
                    return self.tilde(v);
                }
                v.compare(c) == Ordering::Equal
            }
            "!=" => {
                if self.dirty {
                    if c.major != v.major {
                        return true;
                    }
                    if c.minor != v.minor && !self.minor_dirty {
                        return true;
                    } else if self.minor_dirty {
                        return false;
                    } else if c.patch != v.patch && !self.patch_dirty {
                        return true;
                    } else if self.patch_dirty {
                        if !v.pre.is_empty() || !c.pre.is_empty() {
                            return compare_prerelease(&v.pre, &c.pre) != Ordering::Equal;
                        }
                        return false;
                    }
                }
                v.compare(c) != Ordering::Equal
            }
            ">" => {
                if !self.dirty {
                    return v.compare(c) == Ordering::Greater;
                }
                if v.major > c.major {
                    true
                } else if v.major < c.major || self.minor_dirty {
                    false
                } else if self.patch_dirty {
                    v.minor > c.minor
                } else {
                    v.compare(c) == Ordering::Greater
                }
            }
            "<" => v.compare(c) == Ordering::Less,
            ">=" | "=>" => v.compare(c) != Ordering::Less,
            "<=" | "=<" => {
                if !self.dirty {
                    return v.compare(c) != Ordering::Greater;
                }
                !(v.major > c.major || v.major == c.major && v.minor > c.minor && !self.minor_dirty)
            }
            "~" | "~>" => self.tilde(v),
            "^" => {
                if v.compare(c) == Ordering::Less {
                    return false;
                }
                if c.major > 0 || self.minor_dirty {
                    return v.major == c.major;
                }
                if v.major > 0 {
                    return false;
                }
                if c.minor > 0 || self.patch_dirty {
                    return v.minor == c.minor;
                }
                if v.minor > 0 {
                    return false;
                }
                c.patch == v.patch
            }
            _ => false,
        }
    }

    fn tilde(&self, v: &Version) -> bool {
        let c = &self.con;
        if v.compare(c) == Ordering::Less {
            return false;
        }
        if c.major == 0 && c.minor == 0 && c.patch == 0 && !self.minor_dirty && !self.patch_dirty {
            return true;
        }
        if v.major != c.major {
            return false;
        }
        v.minor == c.minor || self.minor_dirty
    }
}
