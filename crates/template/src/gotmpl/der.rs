//! Just enough DER to build the key structures the certificate helpers
//! hand out: PKCS#8 private keys (from PKCS#1, SEC1 or JWK parts) and
//! SubjectPublicKeyInfo public keys. Reading covers single-byte tags only,
//! which is all these structures use.

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const NULL: u8 = 0x05;
const OID: u8 = 0x06;
/// `[0]` in ECPrivateKey: the curve.
const EC_PARAMETERS: u8 = 0xa0;
/// 1.2.840.113549.1.1.1
const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// 1.2.840.10045.2.1
const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// 1.3.101.112
const ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const BIT_STRING: u8 = 0x03;
/// `[1]` in ECPrivateKey: the public point.
const EC_PUBLIC_POINT: u8 = 0xa1;

/// A named curve: its OID (content bytes) and the length of a coordinate.
pub struct Curve {
    pub oid: &'static [u8],
    pub size: usize,
}

/// The curves JWK names, as Go's crypto/ecdsa supports them.
pub fn curve(name: &str) -> Option<Curve> {
    match name {
        // 1.2.840.10045.3.1.7
        "P-256" => Some(Curve { oid: &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07], size: 32 }),
        // 1.3.132.0.34
        "P-384" => Some(Curve { oid: &[0x2b, 0x81, 0x04, 0x00, 0x22], size: 48 }),
        // 1.3.132.0.35
        "P-521" => Some(Curve { oid: &[0x2b, 0x81, 0x04, 0x00, 0x23], size: 66 }),
        _ => None,
    }
}

/// An unsigned big-endian number as a DER INTEGER.
fn unsigned(bytes: &[u8]) -> Vec<u8> {
    let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|&b| b == 0).collect();
    let content = match trimmed.first() {
        None => vec![0],
        Some(&b) if b & 0x80 != 0 => [&[0][..], &trimmed].concat(),
        Some(_) => trimmed,
    };
    tlv(INTEGER, &content)
}

fn bit_string(bytes: &[u8]) -> Vec<u8> {
    tlv(BIT_STRING, &[&[0][..], bytes].concat())
}

fn public_key_info(algorithm: &[u8], key: &[u8]) -> Vec<u8> {
    tlv(SEQUENCE, &[tlv(SEQUENCE, algorithm), bit_string(key)].concat())
}

fn rsa_algorithm() -> Vec<u8> {
    [tlv(OID, RSA_ENCRYPTION), tlv(NULL, &[])].concat()
}

fn ec_algorithm(curve: &Curve) -> Vec<u8> {
    [tlv(OID, EC_PUBLIC_KEY), tlv(OID, curve.oid)].concat()
}

/// Left-pads a coordinate to the curve's length; JWKs sometimes drop
/// leading zeros.
fn padded(bytes: &[u8], size: usize) -> Option<Vec<u8>> {
    let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|&b| b == 0).collect();
    (trimmed.len() <= size).then(|| [vec![0; size - trimmed.len()], trimmed].concat())
}

/// The uncompressed point 04 || x || y.
fn ec_point(curve: &Curve, x: &[u8], y: &[u8]) -> Option<Vec<u8>> {
    Some([vec![4], padded(x, curve.size)?, padded(y, curve.size)?].concat())
}

pub fn rsa_public(n: &[u8], e: &[u8]) -> Vec<u8> {
    public_key_info(&rsa_algorithm(), &tlv(SEQUENCE, &[unsigned(n), unsigned(e)].concat()))
}

/// PKCS#8 from the eight RSA parts, in PKCS#1 order: n e d p q dp dq qi.
pub fn rsa_private(parts: [&[u8]; 8]) -> Vec<u8> {
    let mut body = tlv(INTEGER, &[0]);
    for part in parts {
        body.extend(unsigned(part));
    }
    pkcs8_from_pkcs1(&tlv(SEQUENCE, &body))
}

pub fn ec_public(curve: &Curve, x: &[u8], y: &[u8]) -> Option<Vec<u8>> {
    Some(public_key_info(&ec_algorithm(curve), &ec_point(curve, x, y)?))
}

/// PKCS#8 holding a SEC1 key without its own curve field: openssl's form.
pub fn ec_private(curve: &Curve, d: &[u8], x: &[u8], y: &[u8]) -> Option<Vec<u8>> {
    let sec1 = [
        tlv(INTEGER, &[1]),
        tlv(OCTET_STRING, &padded(d, curve.size)?),
        tlv(EC_PUBLIC_POINT, &bit_string(&ec_point(curve, x, y)?)),
    ]
    .concat();
    Some(private_key_info(&ec_algorithm(curve), &tlv(SEQUENCE, &sec1)))
}

pub fn ed25519_public(x: &[u8]) -> Vec<u8> {
    public_key_info(&tlv(OID, ED25519), x)
}

pub fn ed25519_private(d: &[u8]) -> Vec<u8> {
    private_key_info(&tlv(OID, ED25519), &tlv(OCTET_STRING, d))
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let digits: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|&b| b == 0).collect();
        out.push(0x80 | digits.len() as u8);
        out.extend(digits);
    }
    out.extend_from_slice(content);
    out
}

fn private_key_info(algorithm: &[u8], key: &[u8]) -> Vec<u8> {
    let body = [tlv(INTEGER, &[0]), tlv(SEQUENCE, algorithm), tlv(OCTET_STRING, key)].concat();
    tlv(SEQUENCE, &body)
}

pub fn pkcs8_from_pkcs1(key: &[u8]) -> Vec<u8> {
    private_key_info(&rsa_algorithm(), key)
}

pub fn pkcs8_from_sec1(key: &[u8]) -> Result<Vec<u8>, String> {
    let malformed = || "the EC PRIVATE KEY block is malformed".to_string();
    let (tag, body, _) = read(key).ok_or_else(malformed)?;
    if tag != SEQUENCE {
        return Err(malformed());
    }
    // The curve moves to the algorithm identifier and leaves the inner
    // key, which is the form openssl writes.
    let mut curve = None;
    let mut inner = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (tag, content, next) = read(rest).ok_or_else(malformed)?;
        if tag == EC_PARAMETERS {
            let (oid_tag, _, _) = read(content).ok_or_else(malformed)?;
            if oid_tag != OID {
                return Err("the EC key uses explicit curve parameters; only named curves are supported".into());
            }
            curve = Some(content);
        } else {
            inner.extend_from_slice(&rest[..rest.len() - next.len()]);
        }
        rest = next;
    }
    let curve = curve.ok_or("the EC PRIVATE KEY names no curve; convert it to PKCS#8 (PRIVATE KEY)")?;
    Ok(private_key_info(&[tlv(OID, EC_PUBLIC_KEY), curve.to_vec()].concat(), &tlv(SEQUENCE, &inner)))
}

/// 1.3.6.1.4.1.11591.4.11, scrypt: a PBES2 key derivation that may ask
/// for a gigabyte of memory.
const SCRYPT: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x04, 0x0b];

/// What a PKCS#12 archive asks of key derivation, as far as its structure
/// shows without decrypting: such work cannot be interrupted by a
/// render's time budget, so it is checked before it starts.
#[derive(Debug, Default, PartialEq)]
pub struct KdfCost {
    /// Iteration counts added up: PBKDF2 and PKCS#12 PBE parameters
    /// (`SEQUENCE { salt OCTET STRING, iterations INTEGER, .. }`) and the
    /// MAC's (`SEQUENCE { DigestInfo, salt, iterations }`).
    pub iterations: u64,
    pub scrypt: bool,
}

pub fn kdf_cost(input: &[u8]) -> KdfCost {
    let mut cost = KdfCost::default();
    walk(input, 0, &mut cost);
    cost
}

fn walk(mut input: &[u8], depth: usize, cost: &mut KdfCost) {
    // PKCS#12 nests about a dozen levels; deeper is not an archive.
    if depth > 32 {
        return;
    }
    while let Some((tag, content, next)) = read(input) {
        if tag == OID && content == SCRYPT {
            cost.scrypt = true;
        }
        if tag == SEQUENCE {
            cost.iterations = cost.iterations.saturating_add(iterations(content));
        }
        let nested_der = tag == OCTET_STRING && read(content).is_some_and(|(_, _, rest)| rest.is_empty());
        if tag & 0x20 != 0 || nested_der {
            walk(content, depth + 1, cost);
        }
        input = next;
    }
}

/// The iteration count if `body` is a PBE parameter or MAC sequence.
fn iterations(body: &[u8]) -> u64 {
    let mut tags = [0u8; 3];
    let mut values: [&[u8]; 3] = [&[]; 3];
    let mut rest = body;
    for i in 0..3 {
        let Some((tag, content, next)) = read(rest) else { break };
        tags[i] = tag;
        values[i] = content;
        rest = next;
    }
    let count = match tags {
        [OCTET_STRING, INTEGER, _] => values[1],
        [SEQUENCE, OCTET_STRING, INTEGER] => values[2],
        _ => return 0,
    };
    if count.len() > 8 {
        return u64::MAX;
    }
    count.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b))
}

/// One TLV: (tag, content, what follows).
fn read(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let count = (first & 0x7f) as usize;
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let len = rest[..count].iter().fold(0usize, |acc, &b| (acc << 8) | b as usize);
        (len, &rest[count..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1.2.840.113549.1.5.12
    const PBKDF2: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0c];

    fn pbkdf2(iterations: &[u8]) -> Vec<u8> {
        let params = tlv(SEQUENCE, &[tlv(OCTET_STRING, b"saltsalt"), tlv(INTEGER, iterations)].concat());
        tlv(SEQUENCE, &[tlv(OID, PBKDF2), params].concat())
    }

    #[test]
    fn kdf_cost_adds_up_iterations_also_inside_octet_strings() {
        let wrapped = tlv(OCTET_STRING, &tlv(SEQUENCE, &pbkdf2(&[0x0f, 0x42, 0x40])));
        let archive = tlv(SEQUENCE, &[pbkdf2(&[0x08, 0x00]), tlv(0xa0, &wrapped)].concat());
        assert_eq!(kdf_cost(&archive), KdfCost { iterations: 2048 + 1_000_000, scrypt: false });
        let scrypt = tlv(SEQUENCE, &tlv(OID, SCRYPT));
        assert!(kdf_cost(&scrypt).scrypt);
        assert_eq!(kdf_cost(b"not der at all").iterations, 0);
    }

    #[test]
    fn openssl_archives_cost_what_openssl_wrote() {
        // openssl 3's defaults: 2048 iterations for each of two PBKDF2 and the MAC.
        let cost = kdf_cost(include_bytes!("../../testdata/aes.p12"));
        assert_eq!(cost, KdfCost { iterations: 3 * 2048, scrypt: false });
    }
}
