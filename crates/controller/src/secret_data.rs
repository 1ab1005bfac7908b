//! The data a Secret holds and its digests. The template's input hash and
//! the written data's hash share one digest, so this sits below both the
//! templating and the Secret writer instead of one importing the other.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

/// The Secret data, key to bytes.
pub(crate) type SecretData = BTreeMap<String, Vec<u8>>;

/// SHA-256 over length-prefixed parts: the lengths keep ("ab", "c") and
/// ("a", "bc") apart.
pub(crate) fn digest<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> String {
    let mut digest = Sha256::new();
    for part in parts {
        digest.update((part.len() as u64).to_be_bytes());
        digest.update(part);
    }
    format!("{:x}", digest.finalize())
}

/// A stable digest of the data, recorded on the Secret so an unchanged
/// refresh writes nothing.
pub(crate) fn data_hash(data: &SecretData) -> String {
    digest(data.iter().flat_map(|(key, value)| [key.as_bytes(), value.as_slice()]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_depends_on_key_boundaries_and_values() {
        let a = SecretData::from([("ab".into(), b"c".to_vec())]);
        let b = SecretData::from([("a".into(), b"bc".to_vec())]);
        let c = SecretData::from([("ab".into(), b"d".to_vec())]);
        assert_ne!(data_hash(&a), data_hash(&b));
        assert_ne!(data_hash(&a), data_hash(&c));
        assert_eq!(data_hash(&a), data_hash(&a.clone()));
    }
}
