//! Certificates from `pki/issue` (resultType Certificate): the TLS Secret's
//! layout, and the serial and validity the lease record needs to re-issue
//! and revoke them.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::secret_data::SecretData;

pub(super) struct CertificateFacts {
    pub(super) serial: String,
    pub(super) not_before: DateTime<Utc>,
    pub(super) not_after: DateTime<Utc>,
}

/// `pki/issue` output as a `kubernetes.io/tls` Secret: `tls.crt` (the leaf,
/// then the chain up to but not including the root), `tls.key`, `ca.crt`
/// (the last certificate of the chain: the root when Vault knows it).
pub(super) fn certificate(
    object: &serde_json::Map<String, Value>,
    shown: &str,
) -> Result<(SecretData, CertificateFacts)> {
    let field = |name: &str| object.get(name).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty());
    let missing = |name: &str| {
        Error::Generator(format!(
            "{shown}: resultType Certificate needs {name:?} in Vault's answer (is this pki/issue/<role>?)"
        ))
    };
    let leaf = field("certificate").ok_or_else(|| missing("certificate"))?;
    let key = field("private_key").ok_or_else(|| missing("private_key"))?;
    let mut chain: Vec<String> = object
        .get("ca_chain")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(|s| s.trim().to_owned()).collect())
        .unwrap_or_default();
    if chain.is_empty() {
        chain.extend(field("issuing_ca").map(str::to_owned));
    }
    let ca = chain.last().cloned().ok_or_else(|| missing("issuing_ca"))?;
    let mut tls_crt = format!("{leaf}\n");
    // The root is the client's to trust, not the server's to send.
    let intermediates = if chain.len() > 1 { &chain[..chain.len() - 1] } else { &[][..] };
    for cert in intermediates {
        tls_crt.push_str(cert);
        tls_crt.push('\n');
    }
    let facts = certificate_facts(leaf)
        .ok_or_else(|| Error::Generator(format!("{shown}: the issued certificate is not a PEM X.509 certificate")))?;
    let data = SecretData::from([
        ("tls.crt".to_owned(), tls_crt.into_bytes()),
        ("tls.key".to_owned(), format!("{key}\n").into_bytes()),
        ("ca.crt".to_owned(), format!("{ca}\n").into_bytes()),
    ]);
    Ok((data, facts))
}

pub(super) fn certificate_facts(leaf_pem: &str) -> Option<CertificateFacts> {
    let pem = pem::parse(leaf_pem).ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(pem.contents()).ok()?;
    let validity = cert.validity();
    let serial = cert.raw_serial().iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
    Some(CertificateFacts {
        serial,
        not_before: DateTime::from_timestamp(validity.not_before.timestamp(), 0)?,
        not_after: DateTime::from_timestamp(validity.not_after.timestamp(), 0)?,
    })
}
