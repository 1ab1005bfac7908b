//! Sprig's hashes (hex digests, Adler-32 in decimal) and ESO's encodings
//! beyond base64: `b32enc`, `b32dec`, `hexdec`. As in Go, a decoder's
//! error is its result (`b32dec` of bad input renders Go's message).

use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use super::super::funcs::{CallResult, arity};
use super::super::value::Value;
use super::fits;
use super::strings::bytes;

pub(super) fn call(name: &str, args: &mut [Value]) -> Option<CallResult> {
    let one = |args: &[Value]| -> Result<Vec<u8>, String> {
        arity(args, 1)?;
        Ok(bytes(&args[0])?.to_vec())
    };
    Some(match name {
        "sha1sum" => one(args).map(|b| Value::Str(hex(&<Sha1 as sha1::Digest>::digest(&b)))),
        "sha256sum" => one(args).map(|b| Value::Str(hex(&Sha256::digest(&b)))),
        "sha512sum" => one(args).map(|b| Value::Str(hex(&Sha512::digest(&b)))),
        "adler32sum" => one(args).map(|b| Value::Str(adler32(&b).to_string())),
        "b32enc" => one(args).and_then(|b| {
            fits(b.len().div_ceil(5).checked_mul(8))?;
            Ok(Value::Str(base32_encode(&b)))
        }),
        "b32dec" => one(args).map(|b| match base32_decode(&b) {
            Ok(decoded) => Value::from_bytes(&decoded),
            Err(offset) => Value::Str(format!("illegal base32 data at input byte {offset}")),
        }),
        "decryptAES" => (|| {
            arity(args, 2)?;
            decrypt_aes(bytes(&args[0])?, bytes(&args[1])?).map(|plain| Value::from_bytes(&plain))
        })(),
        "hexdec" => one(args).map(|b| match hex_decode(&b) {
            Ok(decoded) => Value::from_bytes(&decoded),
            Err(message) => Value::Str(message),
        }),
        _ => return None,
    })
}

/// Sprig's `decryptAES`: the password's first 32 bytes (zero-padded) as an
/// AES-256 key, the base64 input as IV then CBC blocks, and as many bytes
/// dropped from the end as the last byte says (no other padding check, as
/// sprig). What Go would panic on (short or ragged input, a pad longer
/// than the text) is an error.
fn decrypt_aes(password: &[u8], crypt64: &[u8]) -> Result<Vec<u8>, String> {
    use aes::cipher::{Array, BlockCipherDecrypt, KeyInit};
    use base64::Engine;
    if crypt64.is_empty() {
        return Ok(Vec::new());
    }
    let mut key = [0u8; 32];
    let n = password.len().min(32);
    key[..n].copy_from_slice(&password[..n]);
    let crypt = base64::engine::general_purpose::STANDARD.decode(crypt64).map_err(|_| "input is not valid base64")?;
    if crypt.len() < 16 || crypt.len() % 16 != 0 {
        return Err("input is not whole AES blocks".into());
    }
    let cipher = aes::Aes256::new(&Array::from(key));
    let mut previous = [0u8; 16];
    previous.copy_from_slice(&crypt[..16]);
    let mut plain = Vec::with_capacity(crypt.len() - 16);
    for chunk in crypt[16..].chunks_exact(16) {
        let mut block = [0u8; 16];
        block.copy_from_slice(chunk);
        let mut array = Array::from(block);
        cipher.decrypt_block(&mut array);
        plain.extend(array.iter().zip(previous).map(|(p, c)| p ^ c));
        previous = block;
    }
    let pad = usize::from(*plain.last().ok_or("nothing to decrypt")?);
    let keep = plain.len().checked_sub(pad).ok_or("the padding is longer than the text")?;
    plain.truncate(keep);
    Ok(plain)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn adler32(bytes: &[u8]) -> u32 {
    const MOD: u32 = 65521;
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in bytes.chunks(5552) {
        for &byte in chunk {
            a += u32::from(byte);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    for chunk in bytes.chunks(5) {
        let mut block = [0u8; 5];
        block[..chunk.len()].copy_from_slice(chunk);
        let bits = block.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        let chars = (chunk.len() * 8).div_ceil(5);
        for i in 0..8 {
            if i < chars {
                out.push(char::from(BASE32[((bits >> (35 - 5 * i)) & 31) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Go's `base32.StdEncoding.DecodeString`: `\r` and `\n` skipped, padding
/// required; the error is the offset Go reports.
fn base32_decode(input: &[u8]) -> Result<Vec<u8>, usize> {
    let src: Vec<u8> = input.iter().copied().filter(|b| *b != b'\r' && *b != b'\n').collect();
    let olen = src.len();
    let mut src = src.as_slice();
    let mut out = Vec::with_capacity(olen / 8 * 5 + 5);
    let mut end = false;
    while !src.is_empty() && !end {
        let mut dbuf = [0u8; 8];
        let mut dlen = 8;
        let mut j = 0;
        while j < 8 {
            let Some((&byte, rest)) = src.split_first() else {
                return Err(olen - j);
            };
            src = rest;
            if byte == b'=' && j >= 2 && src.len() < 8 {
                if src.len() + j < 8 - 1 {
                    return Err(olen);
                }
                for k in 0..8 - 1 - j {
                    if src.len() > k && src[k] != b'=' {
                        return Err(olen - src.len() + k - 1);
                    }
                }
                dlen = j;
                end = true;
                if dlen == 1 || dlen == 3 || dlen == 6 {
                    return Err(olen - src.len() - 1);
                }
                break;
            }
            match BASE32.iter().position(|&c| c == byte) {
                Some(v) => dbuf[j] = v as u8,
                None => return Err(olen - src.len() - 1),
            }
            j += 1;
        }
        let bits = dbuf.iter().fold(0u64, |acc, &v| (acc << 5) | u64::from(v));
        let bytes = match dlen {
            8 => 5,
            7 => 4,
            5 => 3,
            4 => 2,
            2 => 1,
            _ => 0,
        };
        out.extend((0..bytes).map(|i| (bits >> (32 - 8 * i)) as u8));
    }
    Ok(out)
}

/// Go's `hex.DecodeString`, its error message as the result.
fn hex_decode(input: &[u8]) -> Result<Vec<u8>, String> {
    let value = |b: u8| char::from(b).to_digit(16).map(|d| d as u8);
    let invalid = |b: u8| {
        let c = char::from(b);
        let printable = (0x20..0x7f).contains(&b) || (b >= 0xa1 && b != 0xad);
        if printable {
            format!("encoding/hex: invalid byte: U+{:04X} '{c}'", u32::from(b))
        } else {
            format!("encoding/hex: invalid byte: U+{:04X}", u32::from(b))
        }
    };
    let mut out = Vec::with_capacity(input.len() / 2);
    for pair in input.chunks_exact(2) {
        let hi = value(pair[0]).ok_or_else(|| invalid(pair[0]))?;
        let lo = value(pair[1]).ok_or_else(|| invalid(pair[1]))?;
        out.push(hi << 4 | lo);
    }
    if input.len() % 2 == 1 {
        let last = input[input.len() - 1];
        if value(last).is_none() {
            return Err(invalid(last));
        }
        return Err("encoding/hex: odd length hex string".into());
    }
    Ok(out)
}
