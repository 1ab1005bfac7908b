//! `jwkPublicKeyPem` and `jwkPrivateKeyPem`: a JSON Web Key (RFC 7517) as
//! a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) or `PRIVATE KEY` (PKCS#8), for
//! RSA, EC (P-256, P-384, P-521) and Ed25519 keys, as ESO offers them.
//! Reasons name the JWK member at fault, never a value.

use base64::Engine;
use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use pem::{EncodeConfig, LineEnding, Pem};
use serde::Deserialize;

use super::der;

/// RFC 7518 members are unpadded base64url; padded ones are accepted too.
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    d: Option<String>,
    p: Option<String>,
    q: Option<String>,
    dp: Option<String>,
    dq: Option<String>,
    qi: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

fn member(value: &Option<String>, name: &str) -> Result<Vec<u8>, String> {
    let text = value.as_deref().ok_or_else(|| format!("the JWK has no {name:?} member"))?;
    BASE64URL.decode(text).map_err(|_| format!("the JWK member {name:?} is not base64url"))
}

fn parse(input: &str) -> Result<Jwk, String> {
    serde_json::from_str(input).map_err(|_| "input is not a JSON Web Key (a JSON object with \"kty\")".to_string())
}

fn curve(jwk: &Jwk) -> Result<der::Curve, String> {
    let name = jwk.crv.as_deref().ok_or("the JWK has no \"crv\" member")?;
    der::curve(name).ok_or_else(|| "unsupported curve; P-256, P-384 and P-521 are".to_string())
}

fn pem(tag: &str, der: Vec<u8>) -> String {
    pem::encode_config(&Pem::new(tag, der), EncodeConfig::new().set_line_ending(LineEnding::LF))
}

const TOO_LONG: &str = "an EC coordinate is longer than its curve allows";

pub fn public_key_pem(input: &str) -> Result<String, String> {
    let jwk = parse(input)?;
    let der = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
        ("RSA", _) => der::rsa_public(&member(&jwk.n, "n")?, &member(&jwk.e, "e")?),
        ("EC", _) => der::ec_public(&curve(&jwk)?, &member(&jwk.x, "x")?, &member(&jwk.y, "y")?).ok_or(TOO_LONG)?,
        ("OKP", Some("Ed25519")) => der::ed25519_public(&member(&jwk.x, "x")?),
        _ => return Err(unsupported()),
    };
    Ok(pem("PUBLIC KEY", der))
}

pub fn private_key_pem(input: &str) -> Result<String, String> {
    let jwk = parse(input)?;
    if jwk.d.is_none() {
        return Err("the JWK is a public key (no \"d\" member); use jwkPublicKeyPem".into());
    }
    let der = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
        ("RSA", _) => {
            let names = ["n", "e", "d", "p", "q", "dp", "dq", "qi"];
            let values = [&jwk.n, &jwk.e, &jwk.d, &jwk.p, &jwk.q, &jwk.dp, &jwk.dq, &jwk.qi];
            let parts =
                names.iter().zip(values).map(|(name, value)| member(value, name)).collect::<Result<Vec<_>, _>>()?;
            der::rsa_private(std::array::from_fn(|i| parts[i].as_slice()))
        }
        ("EC", _) => {
            let (x, y, d) = (member(&jwk.x, "x")?, member(&jwk.y, "y")?, member(&jwk.d, "d")?);
            der::ec_private(&curve(&jwk)?, &d, &x, &y).ok_or(TOO_LONG)?
        }
        ("OKP", Some("Ed25519")) => der::ed25519_private(&member(&jwk.d, "d")?),
        _ => return Err(unsupported()),
    };
    Ok(pem("PRIVATE KEY", der))
}

fn unsupported() -> String {
    "unsupported key type; RSA, EC and OKP with crv Ed25519 are".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// JWKs made from the openssl keys beside them, with python's
    /// `cryptography`; the PEMs are openssl's own output for the same keys.
    const CASES: &[(&str, &str, &str)] = &[
        (
            include_str!("../../testdata/rsa.jwk.json"),
            include_str!("../../testdata/leaf.pub.pem"),
            include_str!("../../testdata/leaf.key"),
        ),
        (
            include_str!("../../testdata/ec-p-256.jwk.json"),
            include_str!("../../testdata/ec.pub.pem"),
            include_str!("../../testdata/ec-pkcs8.key"),
        ),
        (
            include_str!("../../testdata/ec-p-384.jwk.json"),
            include_str!("../../testdata/p384.pub.pem"),
            include_str!("../../testdata/p384.key"),
        ),
        (
            include_str!("../../testdata/ed25519.jwk.json"),
            include_str!("../../testdata/ed25519.pub.pem"),
            include_str!("../../testdata/ed25519.key"),
        ),
    ];

    #[test]
    fn keys_match_openssl_byte_for_byte() {
        for (jwk, public, private) in CASES {
            assert_eq!(public_key_pem(jwk).unwrap(), *public, "{jwk}");
            assert_eq!(private_key_pem(jwk).unwrap(), *private, "{jwk}");
        }
    }

    #[test]
    fn mistakes_name_the_member_not_the_value() {
        let public_only = r#"{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}"#;
        assert!(private_key_pem(public_only).unwrap_err().contains("public key"));
        let bad = r#"{"kty":"RSA","n":"s3cret!!","e":"AQAB"}"#;
        let err = public_key_pem(bad).unwrap_err();
        assert_eq!(err, "the JWK member \"n\" is not base64url");
        let err = public_key_pem(r#"{"kty":"EC","crv":"secp256k1","x":"AA","y":"AA"}"#).unwrap_err();
        assert!(err.contains("unsupported curve"), "{err}");
        assert!(public_key_pem("s3cret").unwrap_err().starts_with("input is not a JSON Web Key"));
        let no_crt = r#"{"kty":"RSA","n":"AQAB","e":"AQAB","d":"AQAB"}"#;
        assert_eq!(private_key_pem(no_crt).unwrap_err(), "the JWK has no \"p\" member");
    }
}
