//! consul-template's encoding helpers: base64 as Go's decoders read it,
//! JSON as Go's `encoding/json` writes it, and the SHA-256 / HMAC hex
//! digests.

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use super::super::funcs::CallResult;
use super::super::json::{self, Style};
use super::super::sprig::{fits, string};
use super::super::value::Value;

/// Go's `base64.StdEncoding` / `URLEncoding` decoders: padding required,
/// non-zero trailing bits accepted (Go's encodings are not `Strict`).
const fn go_base64(alphabet: &'static alphabet::Alphabet) -> GeneralPurpose {
    let config = GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical);
    GeneralPurpose::new(alphabet, config)
}

pub(super) const STD: GeneralPurpose = go_base64(&alphabet::STANDARD);
pub(super) const URL: GeneralPurpose = go_base64(&alphabet::URL_SAFE);

pub(super) fn bytes(value: &Value) -> Result<&[u8], String> {
    value.as_bytes().ok_or_else(|| format!("expected string, got {}", value.type_name()))
}

pub(super) fn encode64(engine: &GeneralPurpose, value: &Value) -> CallResult {
    let input = bytes(value)?;
    fits(input.len().div_ceil(3).checked_mul(4))?;
    string(engine.encode(input))
}

/// Go's decoder skips `\r` and `\n` anywhere in the input.
pub(super) fn decode64(engine: &GeneralPurpose, value: &Value) -> CallResult {
    let input: Vec<u8> = bytes(value)?.iter().copied().filter(|b| *b != b'\r' && *b != b'\n').collect();
    let decoded = engine.decode(input).map_err(|_| "input is not valid base64".to_string())?;
    Ok(Value::from_bytes(&decoded))
}

/// `json.Marshal` (`escape_html`) or an `Encoder` with HTML escaping off,
/// compact or indented by two spaces.
pub(super) fn to_json(value: &Value, pretty: bool, escape_html: bool) -> CallResult {
    string(json::encode(value, &Style { pretty, escape_html, short_escapes: true })?)
}

pub(super) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes.iter().flat_map(|b| [DIGITS[usize::from(b >> 4)] as char, DIGITS[usize::from(b & 15)] as char]).collect()
}

/// HMAC (RFC 2104) over SHA-256: the construction is a few lines over
/// the `sha2` crate, which the workspace already uses.
pub(super) fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&sha256(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |with: u8| block.iter().map(|b| b ^ with).collect::<Vec<u8>>();
    let mut inner = pad(0x36);
    inner.extend_from_slice(message);
    let mut outer = pad(0x5c);
    outer.extend_from_slice(&sha256(&inner));
    sha256(&outer)
}

pub(super) fn sha256(message: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(message).into()
}

/// MD5, for consul-template's `md5sum` (a checksum, not a protection).
pub(super) fn md5(message: &[u8]) -> [u8; 16] {
    use md5::Digest as _;
    md5::Md5::digest(message).into()
}
