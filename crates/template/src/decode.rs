use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};

use crate::Error;

/// How a remote value is decoded before it is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Decoding {
    #[default]
    None,
    Base64,
    Base64Url,
    /// Base64 (standard or URL-safe) when the value decodes, else as is.
    Auto,
}

/// Decodes `bytes` according to `decoding`.
pub fn decode(bytes: Vec<u8>, decoding: Decoding) -> Result<Vec<u8>, Error> {
    let trimmed = bytes.trim_ascii();
    match decoding {
        Decoding::None => Ok(bytes),
        Decoding::Base64 => STANDARD.decode(trimmed).map_err(|_| Error::Decode { strategy: "Base64" }),
        Decoding::Base64Url => URL_SAFE
            .decode(trimmed)
            .or_else(|_| URL_SAFE_NO_PAD.decode(trimmed))
            .map_err(|_| Error::Decode { strategy: "Base64URL" }),
        Decoding::Auto => Ok(STANDARD.decode(trimmed).or_else(|_| URL_SAFE.decode(trimmed)).unwrap_or(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_each_strategy() {
        assert_eq!(decode(b"aGk=".to_vec(), Decoding::Base64).unwrap(), b"hi");
        assert_eq!(decode(b"_-8".to_vec(), Decoding::Base64Url).unwrap(), [0xff, 0xef]);
        assert_eq!(decode(b"aGk=".to_vec(), Decoding::None).unwrap(), b"aGk=");
        assert_eq!(decode(b"aGk=".to_vec(), Decoding::Auto).unwrap(), b"hi");
        assert_eq!(decode(b"not base64!".to_vec(), Decoding::Auto).unwrap(), b"not base64!");
    }

    #[test]
    fn bad_base64_is_an_error_without_the_value() {
        let err = decode(b"s3cr3t!".to_vec(), Decoding::Base64).unwrap_err().to_string();
        assert!(!err.contains("s3cr3t"), "{err}");
    }
}
