//! ESO's certificate helpers: pick PEM blocks, split a certificate chain,
//! read or write PKCS#12 archives, turn JWKs into PEM (`jwk`). Argument
//! order is ESO's, so manifests carry over unchanged.
//!
//! Every input here is key material, so no reason ever quotes an input or a
//! library's own error text (which may show bytes); reasons say what kind
//! of input was wrong.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, Pkcs12Archive, PrivateKey, PrivateKeyChain};
use pem::{EncodeConfig, LineEnding, Pem};
use x509_parser::extensions::ParsedExtension;

use super::funcs::{CallResult, arity, text};
use super::value::Value;
use super::{der, jwk};

pub const NAMES: &[&str] = &[
    "filterPEM",
    "filterCertChain",
    "pkcs12key",
    "pkcs12keyPass",
    "pkcs12cert",
    "pkcs12certPass",
    "pemToPkcs12",
    "pemToPkcs12Pass",
    "fullPemToPkcs12",
    "fullPemToPkcs12Pass",
    "jwkPublicKeyPem",
    "jwkPrivateKeyPem",
];

/// The alias a PKCS#12 entry gets; Java's keytool names an unnamed entry
/// "1" too, so `keyAlias: "1"` works either way.
const ALIAS: &str = "1";

/// Key-derivation iterations one archive may ask for, all added up: about
/// half a second. openssl writes 3 × 2048, Java's keytool 3 × 10000.
const MAX_KDF_ITERATIONS: u64 = 1_000_000;

pub fn call(name: &str, args: Vec<Value>) -> CallResult {
    match name {
        "filterPEM" => {
            arity(&args, 2)?;
            filter_pem(&text(&args[0])?, bytes(&args[1])?).map(Value::Str)
        }
        "filterCertChain" => {
            arity(&args, 2)?;
            filter_cert_chain(&text(&args[0])?, bytes(&args[1])?).map(Value::Str)
        }
        "pkcs12key" | "pkcs12cert" => {
            arity(&args, 1)?;
            read_archive(name == "pkcs12key", "", bytes(&args[0])?).map(Value::Str)
        }
        "pkcs12keyPass" | "pkcs12certPass" => {
            arity(&args, 2)?;
            read_archive(name == "pkcs12keyPass", &text(&args[0])?, bytes(&args[1])?).map(Value::Str)
        }
        "pemToPkcs12" | "fullPemToPkcs12" => {
            arity(&args, 2)?;
            write_archive(bytes(&args[0])?, bytes(&args[1])?, "", name == "fullPemToPkcs12").map(Value::Str)
        }
        "pemToPkcs12Pass" | "fullPemToPkcs12Pass" => {
            arity(&args, 3)?;
            let full = name == "fullPemToPkcs12Pass";
            write_archive(bytes(&args[0])?, bytes(&args[1])?, &text(&args[2])?, full).map(Value::Str)
        }
        "jwkPublicKeyPem" => {
            arity(&args, 1)?;
            jwk::public_key_pem(&text(&args[0])?).map(Value::Str)
        }
        "jwkPrivateKeyPem" => {
            arity(&args, 1)?;
            jwk::private_key_pem(&text(&args[0])?).map(Value::Str)
        }
        other => Err(format!("function {other:?} not defined")),
    }
}

fn bytes(value: &Value) -> Result<&[u8], String> {
    value.as_bytes().ok_or_else(|| format!("expected string, got {}", value.type_name()))
}

/// Blocks back to back, as Go's `pem.Encode` writes them (`encode_many`
/// would put a blank line between them).
fn encode(blocks: &[Pem]) -> String {
    let config = EncodeConfig::new().set_line_ending(LineEnding::LF);
    blocks.iter().map(|block| pem::encode_config(block, config)).collect()
}

fn parse_pem(input: &[u8]) -> Result<Vec<Pem>, String> {
    let blocks = pem::parse_many(input).map_err(|_| "input holds a malformed PEM block".to_string())?;
    if blocks.is_empty() {
        return Err("input holds no PEM block".into());
    }
    Ok(blocks)
}

/// The blocks of type `kind`, in input order; "" when there are none, so a
/// template can test for them.
fn filter_pem(kind: &str, input: &[u8]) -> Result<String, String> {
    let blocks: Vec<Pem> = parse_pem(input)?.into_iter().filter(|block| block.tag() == kind).collect();
    Ok(encode(&blocks))
}

fn filter_cert_chain(part: &str, input: &[u8]) -> Result<String, String> {
    let certs = parse_pem(input)?
        .into_iter()
        .filter(|block| block.tag() == "CERTIFICATE")
        .map(|block| Cert::parse(block.into_contents()))
        .collect::<Result<Vec<_>, _>>()?;
    let chain = order_chain(certs);
    let picked: Vec<&Cert> = match part {
        "leaf" => chain.first().filter(|cert| !cert.is_root()).into_iter().collect(),
        "intermediate" => chain.iter().skip(1).take_while(|cert| !cert.is_root()).collect(),
        "root" => chain.last().filter(|cert| cert.is_root()).into_iter().collect(),
        _ => return Err("the first argument must be leaf, intermediate or root".into()),
    };
    Ok(encode(&picked.iter().map(|cert| cert.pem()).collect::<Vec<_>>()))
}

/// What chain ordering needs from a certificate.
struct Cert {
    der: Vec<u8>,
    subject: Vec<u8>,
    issuer: Vec<u8>,
    subject_key_id: Option<Vec<u8>>,
    authority_key_id: Option<Vec<u8>>,
}

impl Cert {
    fn parse(der: Vec<u8>) -> Result<Cert, String> {
        let (_, cert) = x509_parser::parse_x509_certificate(&der)
            .map_err(|_| "a CERTIFICATE block is not a valid X.509 certificate".to_string())?;
        let mut subject_key_id = None;
        let mut authority_key_id = None;
        for extension in cert.extensions() {
            match extension.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(id) => subject_key_id = Some(id.0.to_vec()),
                ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    authority_key_id = aki.key_identifier.as_ref().map(|id| id.0.to_vec())
                }
                _ => {}
            }
        }
        let subject = cert.subject().as_raw().to_vec();
        let issuer = cert.issuer().as_raw().to_vec();
        Ok(Cert { der, subject, issuer, subject_key_id, authority_key_id })
    }

    /// Names match and, where both key ids exist, they match too: a
    /// re-keyed CA keeps its name but not its key id.
    fn issued_by(&self, parent: &Cert) -> bool {
        self.issuer == parent.subject
            && match (&self.authority_key_id, &parent.subject_key_id) {
                (Some(authority), Some(subject)) => authority == subject,
                _ => true,
            }
    }

    fn is_root(&self) -> bool {
        self.issued_by(self)
    }

    fn pem(&self) -> Pem {
        Pem::new("CERTIFICATE", self.der.clone())
    }
}

/// Orders certificates leaf first, root last. Certificates that are not
/// one chain (several leaves, gaps) come back in the order given, as ESO
/// does, since there is no right order to guess.
fn order_chain(certs: Vec<Cert>) -> Vec<Cert> {
    let count = certs.len();
    let issued_another = |i: usize| (0..count).any(|j| j != i && certs[j].issued_by(&certs[i]));
    let leaves: Vec<usize> = (0..count).filter(|&i| !issued_another(i)).collect();
    let [leaf] = leaves[..] else { return certs };
    let mut order = vec![leaf];
    let mut placed = vec![false; count];
    placed[leaf] = true;
    while let Some(&current) = order.last() {
        if certs[current].is_root() {
            break;
        }
        match (0..count).find(|&j| !placed[j] && certs[current].issued_by(&certs[j])) {
            Some(parent) => {
                placed[parent] = true;
                order.push(parent)
            }
            None => break,
        }
    }
    if order.len() != count {
        return certs;
    }
    let mut slots: Vec<Option<Cert>> = certs.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

/// `pkcs12key`: every private key as PKCS#8 PEM; `pkcs12cert`: every
/// certificate as PEM, leaf first.
fn read_archive(keys: bool, password: &str, input: &[u8]) -> Result<String, String> {
    // Key derivation runs to its end once started, past any time budget.
    let cost = der::kdf_cost(input);
    if cost.scrypt {
        return Err("the PKCS#12 archive uses scrypt, which is not supported".into());
    }
    if cost.iterations > MAX_KDF_ITERATIONS {
        return Err(format!("the PKCS#12 archive asks for more than {MAX_KDF_ITERATIONS} key-derivation iterations"));
    }
    let archive = Pkcs12Archive::from_pkcs12(input, password).map_err(|e| match e {
        p12_keystore::error::Error::MacError(_) => {
            "the PKCS#12 archive's integrity check failed: wrong password, or a damaged archive".to_string()
        }
        _ => "input is not a PKCS#12 archive this can read (or the password is wrong)".to_string(),
    })?;
    if keys {
        let blocks: Vec<Pem> =
            archive.keys.iter().map(|bag| Pem::new("PRIVATE KEY", bag.key.as_der().to_vec())).collect();
        if blocks.is_empty() {
            return Err("the PKCS#12 archive holds no private key".into());
        }
        return Ok(encode(&blocks));
    }
    let certs =
        archive.certs.iter().map(|bag| Cert::parse(bag.cert.as_der().to_vec())).collect::<Result<Vec<_>, _>>()?;
    if certs.is_empty() {
        return Err("the PKCS#12 archive holds no certificate".into());
    }
    Ok(encode(&order_chain(certs).iter().map(Cert::pem).collect::<Vec<_>>()))
}

/// A base64 PKCS#12 archive (as ESO returns it; pipe to `b64dec` for the
/// binary) holding the key and the leaf certificate, or with `full` every
/// certificate in `cert_pem`. Certificates that form one chain are put leaf
/// first whatever their order in the input, since readers take the first
/// one as the key's certificate.
fn write_archive(cert_pem: &[u8], key_pem: &[u8], password: &str, full: bool) -> Result<String, String> {
    let blocks = parse_pem(cert_pem)?.into_iter().filter(|block| block.tag() == "CERTIFICATE");
    let parsed = blocks.map(|block| Cert::parse(block.into_contents())).collect::<Result<Vec<_>, _>>()?;
    if parsed.is_empty() {
        return Err("the certificate input holds no CERTIFICATE block".into());
    }
    let mut chain = order_chain(parsed);
    if !full {
        chain.truncate(1);
    }
    let certs = chain
        .iter()
        .map(|cert| Certificate::from_der(&cert.der))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| "a CERTIFICATE block is not a valid X.509 certificate".to_string())?;
    let key = private_key(key_pem)?;
    let mut store = KeyStore::new();
    store.add_entry(ALIAS, KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(ALIAS, key, certs)));
    let archive = store.writer(password).write().map_err(|_| "could not build the PKCS#12 archive".to_string())?;
    Ok(STANDARD.encode(archive))
}

/// The first private key in `input`, as PKCS#8. PKCS#1 RSA and SEC1 EC
/// keys (what `openssl genrsa` and Vault's PKI engine hand out by default)
/// are wrapped into PKCS#8 first.
fn private_key(input: &[u8]) -> Result<PrivateKey, String> {
    let block = parse_pem(input)?
        .into_iter()
        .find(|block| block.tag().ends_with("PRIVATE KEY"))
        .ok_or("the key input holds no PRIVATE KEY block")?;
    let pkcs8 = match block.tag() {
        "PRIVATE KEY" => block.into_contents(),
        "RSA PRIVATE KEY" => der::pkcs8_from_pkcs1(block.contents()),
        "EC PRIVATE KEY" => der::pkcs8_from_sec1(block.contents())?,
        "ENCRYPTED PRIVATE KEY" => return Err("the key is encrypted; store it unencrypted in Vault".into()),
        _ => return Err("unsupported private key type; use PKCS#8 (PRIVATE KEY), RSA or EC".into()),
    };
    PrivateKey::from_der(&pkcs8).map_err(|_| "the PRIVATE KEY block is not a valid PKCS#8 key".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEAF: &str = include_str!("../../testdata/leaf.crt");
    const INTERMEDIATE: &str = include_str!("../../testdata/int.crt");
    const ROOT: &str = include_str!("../../testdata/root.crt");
    const CHAIN: &str = include_str!("../../testdata/chain.pem");
    const LEAF_KEY: &str = include_str!("../../testdata/leaf.key");
    const LEAF_KEY_PKCS1: &str = include_str!("../../testdata/leaf-pkcs1.key");
    const EC_KEY_SEC1: &str = include_str!("../../testdata/ec-sec1.key");
    const EC_KEY_PKCS8: &str = include_str!("../../testdata/ec-pkcs8.key");
    const EC_CERT: &str = include_str!("../../testdata/ec.crt");
    /// openssl 3 defaults: PBES2 with AES-256, HMAC-SHA256; password "s3cret".
    const AES_P12: &[u8] = include_bytes!("../../testdata/aes.p12");
    /// The legacy 3DES / SHA-1 MAC form older tools write; password "s3cret".
    const TRIPLE_DES_P12: &[u8] = include_bytes!("../../testdata/3des.p12");
    /// No password; the chain stored root before intermediate.
    const NO_PASSWORD_P12: &[u8] = include_bytes!("../../testdata/nopass.p12");

    fn s(value: &str) -> Value {
        Value::Str(value.into())
    }

    fn run(name: &str, args: Vec<Value>) -> String {
        match call(name, args) {
            Ok(Value::Str(out)) => out,
            other => panic!("{name}: {other:?}"),
        }
    }

    fn fail(name: &str, args: Vec<Value>) -> String {
        call(name, args).expect_err(name)
    }

    /// The same PEM, whatever the line endings or surrounding text.
    fn norm(pem_text: &str) -> Vec<Pem> {
        pem::parse_many(pem_text).unwrap()
    }

    #[test]
    fn filter_pem_keeps_blocks_of_one_type_in_order() {
        let mixed = format!("{LEAF_KEY}{LEAF}\nsome note\n{INTERMEDIATE}");
        let certs = run("filterPEM", vec![s("CERTIFICATE"), s(&mixed)]);
        assert_eq!(certs, format!("{LEAF}{INTERMEDIATE}"), "openssl's own framing, block after block");
        assert_eq!(norm(&run("filterPEM", vec![s("PRIVATE KEY"), s(&mixed)])), norm(LEAF_KEY));
        assert_eq!(run("filterPEM", vec![s("EC PRIVATE KEY"), s(&mixed)]), "");
        assert_eq!(fail("filterPEM", vec![s("CERTIFICATE"), s("not pem at all")]), "input holds no PEM block");
    }

    #[test]
    fn filter_cert_chain_splits_a_shuffled_chain() {
        let shuffled = format!("{ROOT}{LEAF}{INTERMEDIATE}");
        assert_eq!(norm(&run("filterCertChain", vec![s("leaf"), s(&shuffled)])), norm(LEAF));
        assert_eq!(norm(&run("filterCertChain", vec![s("intermediate"), s(&shuffled)])), norm(INTERMEDIATE));
        assert_eq!(norm(&run("filterCertChain", vec![s("root"), s(&shuffled)])), norm(ROOT));
        // A chain without its root has no root to give, and a lone root is no leaf.
        assert_eq!(run("filterCertChain", vec![s("root"), s(&format!("{LEAF}{INTERMEDIATE}"))]), "");
        assert_eq!(run("filterCertChain", vec![s("leaf"), s(ROOT)]), "");
        let err = fail("filterCertChain", vec![s("middle"), s(CHAIN)]);
        assert!(err.contains("leaf, intermediate or root"), "{err}");
    }

    #[test]
    fn reads_archives_in_modern_legacy_and_passwordless_forms() {
        for (archive, password) in [(AES_P12, "s3cret"), (TRIPLE_DES_P12, "s3cret"), (NO_PASSWORD_P12, "")] {
            let input = Value::Bytes(archive.to_vec());
            let (key, cert) = if password.is_empty() {
                (run("pkcs12key", vec![input.clone()]), run("pkcs12cert", vec![input]))
            } else {
                (
                    run("pkcs12keyPass", vec![s(password), input.clone()]),
                    run("pkcs12certPass", vec![s(password), input]),
                )
            };
            assert_eq!(norm(&key), norm(LEAF_KEY));
            assert_eq!(norm(&cert), norm(CHAIN), "certificates come leaf first, root last");
        }
    }

    #[test]
    fn archives_asking_for_too_much_key_derivation_are_refused_before_it() {
        // SEQUENCE { SEQUENCE { OCTET STRING 00, INTEGER 2000001 } }
        let costly = vec![0x30, 0x0a, 0x30, 0x08, 0x04, 0x01, 0x00, 0x02, 0x03, 0x1e, 0x84, 0x81];
        let err = fail("pkcs12key", vec![Value::Bytes(costly)]);
        assert_eq!(err, "the PKCS#12 archive asks for more than 1000000 key-derivation iterations");
    }

    #[test]
    fn a_wrong_password_or_junk_gives_an_error_without_data() {
        let err = fail("pkcs12keyPass", vec![s("wrong"), Value::Bytes(AES_P12.to_vec())]);
        assert!(err.contains("wrong password"), "{err}");
        let err = fail("pkcs12cert", vec![s("-----BEGIN CERTIFICATE-----")]);
        assert!(err.starts_with("input is not a PKCS#12 archive"), "{err}");
    }

    fn round_trip(name: &str, cert: &str, key: &str, password: Option<&str>) -> (String, String) {
        let mut args = vec![s(cert), s(key)];
        if let Some(password) = password {
            args.push(s(password));
        }
        let archive = STANDARD.decode(run(name, args)).expect("base64 output");
        let pass = password.unwrap_or("");
        let input = Value::Bytes(archive);
        (run("pkcs12keyPass", vec![s(pass), input.clone()]), run("pkcs12certPass", vec![s(pass), input]))
    }

    #[test]
    fn writes_archives_that_read_back() {
        let (key, cert) = round_trip("pemToPkcs12", CHAIN, LEAF_KEY, None);
        assert_eq!(norm(&key), norm(LEAF_KEY));
        assert_eq!(norm(&cert), norm(LEAF), "pemToPkcs12 keeps only the first certificate");

        let (key, cert) = round_trip("fullPemToPkcs12Pass", CHAIN, LEAF_KEY, Some("pa55"));
        assert_eq!(norm(&key), norm(LEAF_KEY));
        assert_eq!(norm(&cert), norm(CHAIN));

        // A bundle in any order still makes the leaf the key's certificate.
        let shuffled = format!("{ROOT}{INTERMEDIATE}{LEAF}");
        let (_, cert) = round_trip("pemToPkcs12", &shuffled, LEAF_KEY, None);
        assert_eq!(norm(&cert), norm(LEAF));
    }

    #[test]
    fn pkcs1_and_sec1_keys_are_stored_as_pkcs8() {
        let (key, _) = round_trip("pemToPkcs12Pass", LEAF, LEAF_KEY_PKCS1, Some("x"));
        assert_eq!(norm(&key), norm(LEAF_KEY), "openssl's PKCS#8 form of the same RSA key");
        let (key, _) = round_trip("pemToPkcs12", EC_CERT, EC_KEY_SEC1, None);
        assert_eq!(norm(&key), norm(EC_KEY_PKCS8), "openssl's PKCS#8 form of the same EC key");
    }

    #[test]
    fn bad_pem_input_is_named_by_kind() {
        let err = fail("pemToPkcs12", vec![s(LEAF_KEY), s(LEAF_KEY)]);
        assert_eq!(err, "the certificate input holds no CERTIFICATE block");
        let err = fail("pemToPkcs12", vec![s(LEAF), s(LEAF)]);
        assert_eq!(err, "the key input holds no PRIVATE KEY block");
        let broken = LEAF.replacen("MII", "MIX", 1);
        let err = fail("pemToPkcs12", vec![s(&broken), s(LEAF_KEY)]);
        assert!(err.contains("not a valid X.509 certificate"), "{err}");
        assert!(!err.contains("MIX"), "{err}");
    }
}
