//! The values a generator issued: read from Vault's answer by result type,
//! and kept in a Secret of their own beside the target so that a restart or
//! a new leader reuses them instead of issuing again.

use std::collections::BTreeMap;

use base64::Engine;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::Value;
use vaultsync_api::{DynamicResultType, ExternalSecret, IssuedLease};
use vaultsync_vault::Issued;

use crate::context::Context;
use crate::context::lease_books::Book;
use crate::error::{Error, Result};
use crate::secret_data::SecretData;
use crate::served::Group;

use super::certificates::{CertificateFacts, certificate};
use super::{LEASED_FOR_LABEL, values_secret_name};

/// Annotation of the values Secret holding the lease ledger of an
/// ESO-group ExternalSecret, whose status (ESO's schema) has no room for
/// it.
pub(crate) const LEDGER_ANNOTATION: &str = "vaultsync.dev/leases";

/// The leases recorded for `es`: in its status (vaultsync's group), or in
/// its values Secret (ESO's).
pub(super) async fn recorded_leases(ctx: &Context, es: &ExternalSecret) -> Result<Vec<IssuedLease>> {
    if ctx.group == Group::Vaultsync {
        return Ok(es.status.as_ref().map(|s| s.leases.clone()).unwrap_or_default());
    }
    let stored = values_secret(ctx, es).await?;
    Ok(ledger_of(stored.as_ref()))
}

fn ledger_of(secret: Option<&Secret>) -> Vec<IssuedLease> {
    secret
        .and_then(|s| s.annotations().get(LEDGER_ANNOTATION))
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default()
}

async fn values_secret(ctx: &Context, es: &ExternalSecret) -> Result<Option<Secret>> {
    let secrets = Api::<Secret>::namespaced(ctx.client.clone(), &es.namespace().unwrap_or_default());
    secrets.get_opt(&values_secret_name(es)).await.map_err(Error::Kube)
}

/// This process has no record of `es`: the status (or, in ESO's group,
/// the values Secret) says which leases live, and the values Secret holds
/// what they issued.
pub(super) async fn load(ctx: &Context, es: &ExternalSecret) -> Result<Book> {
    let in_status = es.status.as_ref().map(|s| s.leases.clone()).unwrap_or_default();
    if ctx.group == Group::Vaultsync && in_status.is_empty() {
        return Ok(Book::default());
    }
    let stored = values_secret(ctx, es).await?;
    let leases = match ctx.group {
        Group::Vaultsync => in_status,
        Group::Eso => ledger_of(stored.as_ref()),
    };
    if leases.is_empty() {
        return Ok(Book::default());
    }
    let mut data = BTreeMap::new();
    for (key, value) in stored.and_then(|s| s.data).unwrap_or_default() {
        let Some(index) = key.strip_prefix("dataFrom-").and_then(|i| i.parse::<usize>().ok()) else { continue };
        let Ok(map) = serde_json::from_slice::<BTreeMap<String, String>>(&value.0) else { continue };
        let decoded: Option<SecretData> = map
            .into_iter()
            .map(|(k, v)| base64::engine::general_purpose::STANDARD.decode(v).ok().map(|v| (k, v)))
            .collect();
        if let Some(decoded) = decoded {
            data.insert(index, decoded);
        }
    }
    Ok(Book { leases, data })
}

/// Keeps what the generators issued in a Secret owned by `es`, with the
/// lease ledger when `ledger` is given (ESO's group).
pub(super) async fn save_values(
    ctx: &Context,
    es: &ExternalSecret,
    values: &BTreeMap<usize, SecretData>,
    ledger: Option<&[IssuedLease]>,
) -> Result<()> {
    let namespace = es.namespace().unwrap_or_default();
    let secrets = Api::<Secret>::namespaced(ctx.client.clone(), &namespace);
    let name = values_secret_name(es);
    let data: BTreeMap<String, ByteString> = values
        .iter()
        .map(|(index, data)| {
            let encoded: BTreeMap<&String, String> =
                data.iter().map(|(k, v)| (k, base64::engine::general_purpose::STANDARD.encode(v))).collect();
            (format!("dataFrom-{index}"), ByteString(serde_json::to_vec(&encoded).unwrap_or_default()))
        })
        .collect();
    let owner =
        ctx.group.controller_owner_ref(es).ok_or_else(|| Error::Internal("ExternalSecret without uid".into()))?;
    let annotations = ledger
        .map(|leases| serde_json::to_string(leases).map(|text| BTreeMap::from([(LEDGER_ANNOTATION.to_owned(), text)])))
        .transpose()
        .map_err(|e| Error::Internal(format!("cannot encode the lease ledger: {e}")))?;
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace),
            labels: Some(BTreeMap::from([(LEASED_FOR_LABEL.to_owned(), es.name_any())])),
            annotations,
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        type_: Some("vaultsync.dev/leased-values".into()),
        data: Some(data),
        ..Default::default()
    };
    secrets
        .patch(&name, &PatchParams::apply(vaultsync_api::FIELD_MANAGER).force(), &Patch::Apply(&secret))
        .await
        .map_err(|e| crate::sync::write_failure::write_failure(&name, None, &e))?;
    Ok(())
}

/// The Secret keys an answer gives, by result type; for a certificate, also
/// what the lease record needs of it.
pub(super) fn values(
    issued: &Issued,
    result_type: DynamicResultType,
    allow_empty: bool,
    shown: &str,
) -> Result<(SecretData, Option<CertificateFacts>)> {
    let empty = |what: &str| {
        Error::Generator(format!("{shown}: Vault's answer has no {what} (set allowEmptyResponse to accept that)"))
    };
    let block = match result_type {
        DynamicResultType::Data | DynamicResultType::Certificate => issued.response.get("data"),
        DynamicResultType::Auth => issued.response.get("auth"),
        DynamicResultType::Raw => Some(&issued.response),
    };
    let object = match block.and_then(Value::as_object) {
        Some(object) if !object.is_empty() => object,
        _ if allow_empty => return Ok((SecretData::new(), None)),
        _ => return Err(empty(if result_type == DynamicResultType::Auth { "auth block" } else { "data" })),
    };
    if result_type == DynamicResultType::Certificate {
        return certificate(object, shown).map(|(data, facts)| (data, Some(facts)));
    }
    let data = object
        .iter()
        .map(|(k, v)| {
            let bytes = match v {
                Value::String(s) => s.clone().into_bytes(),
                other => serde_json::to_vec(other).unwrap_or_default(),
            };
            (k.clone(), bytes)
        })
        .collect();
    Ok((data, None))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn answer(data: Value) -> Issued {
        Issued { response: json!({"data": data, "lease_id": "", "auth": null}), lease: None }
    }

    #[test]
    fn data_values_are_strings_or_json() {
        let (data, _) = values(&answer(json!({"username": "u", "n": 3})), DynamicResultType::Data, false, "x").unwrap();
        assert_eq!(data["username"], b"u");
        assert_eq!(data["n"], b"3");
    }

    #[test]
    fn an_empty_answer_fails_unless_allowed() {
        let error = values(&answer(json!({})), DynamicResultType::Data, false, "db: database/creds/app")
            .err()
            .expect("refused");
        assert!(error.to_string().contains("allowEmptyResponse"), "{error}");
        let (data, _) = values(&answer(json!({})), DynamicResultType::Data, true, "x").unwrap();
        assert!(data.is_empty());
    }

    #[test]
    fn a_certificate_is_leaf_then_intermediates_with_the_root_as_ca() {
        let fixture = |name: &str| {
            std::fs::read_to_string(format!("{}/../template/testdata/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
        };
        let (leaf, int, root) = (fixture("leaf.crt"), fixture("int.crt"), fixture("root.crt"));
        let answer = answer(json!({
            "certificate": leaf, "private_key": "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----",
            "issuing_ca": int, "ca_chain": [int, root], "serial_number": "01",
        }));
        let (data, facts) = values(&answer, DynamicResultType::Certificate, false, "pki").unwrap();
        let tls_crt = String::from_utf8(data["tls.crt"].clone()).unwrap();
        assert_eq!(tls_crt, format!("{}\n{}\n", leaf.trim(), int.trim()), "leaf first, then the intermediate, no root");
        assert_eq!(String::from_utf8(data["ca.crt"].clone()).unwrap().trim(), root.trim());
        let facts = facts.expect("certificate facts");
        assert!(facts.not_after > facts.not_before && !facts.serial.is_empty());
    }

    #[test]
    fn a_certificate_answer_needs_a_certificate() {
        let error = values(&answer(json!({"username": "u"})), DynamicResultType::Certificate, false, "pki")
            .err()
            .expect("refused");
        assert!(error.to_string().contains("\"certificate\""), "{error}");
    }
}
