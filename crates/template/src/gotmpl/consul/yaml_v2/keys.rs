//! yaml.v2's `sorter.go`: map keys in its "natural" order.

use super::*;

// ---------------------------------------------------------------------
// sorter.go: the order of map keys.

pub(super) fn is_letter(c: char) -> bool {
    static LETTER: OnceLock<Regex> = OnceLock::new();
    if c.is_ascii() {
        return c.is_ascii_alphabetic();
    }
    regex(&LETTER, r"\A\p{L}\z").is_match(c.encode_utf8(&mut [0; 4]))
}

pub(super) fn is_digit(c: char) -> bool {
    static DIGIT: OnceLock<Regex> = OnceLock::new();
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    regex(&DIGIT, r"\A\p{Nd}\z").is_match(c.encode_utf8(&mut [0; 4]))
}

/// `keyList.Less` for two string keys.
pub(super) fn key_less(a: &str, b: &str) -> bool {
    let (ar, br): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    for i in 0..ar.len().min(br.len()) {
        if ar[i] == br[i] {
            continue;
        }
        let (al, bl) = (is_letter(ar[i]), is_letter(br[i]));
        if al && bl {
            return ar[i] < br[i];
        }
        if al || bl {
            return bl;
        }
        let (mut an, mut bn) = (0i64, 0i64);
        if ar[i] == '0' || br[i] == '0' {
            for j in (0..i).rev() {
                if !is_digit(ar[j]) {
                    break;
                }
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        // Go subtracts '0' from any Unicode digit, in wrapping int64s.
        let value = |c: char| i64::from(c as u32) - i64::from(b'0');
        let mut ai = i;
        while ai < ar.len() && is_digit(ar[ai]) {
            an = an.wrapping_mul(10).wrapping_add(value(ar[ai]));
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && is_digit(br[bi]) {
            bn = bn.wrapping_mul(10).wrapping_add(value(br[bi]));
            bi += 1;
        }
        if an != bn {
            return an < bn;
        }
        if ai != bi {
            return ai < bi;
        }
        return ar[i] < br[i];
    }
    ar.len() < br.len()
}

/// The keys of `map` in yaml.v2's order. `key_less` is not transitive for
/// some sets of keys mixing digits and letters (`a15`, `a1x`, `a2`), for
/// which Go's order depends on its map iteration order, which is random;
/// a merge sort gives one of those orders and, unlike `sort_by`, has no
/// trouble with such a comparison.
pub(super) fn sorted_keys(map: &std::collections::BTreeMap<String, Value>) -> Vec<&String> {
    let mut keys: Vec<&String> = map.keys().collect();
    let mut scratch = keys.clone();
    let mut width = 1;
    while width < keys.len() {
        for start in (0..keys.len()).step_by(2 * width) {
            let mid = (start + width).min(keys.len());
            let end = (start + 2 * width).min(keys.len());
            let (mut i, mut j) = (start, mid);
            for slot in &mut scratch[start..end] {
                if j >= end || (i < mid && !key_less(keys[j], keys[i])) {
                    *slot = keys[i];
                    i += 1;
                } else {
                    *slot = keys[j];
                    j += 1;
                }
            }
        }
        std::mem::swap(&mut keys, &mut scratch);
        width *= 2;
    }
    keys
}
