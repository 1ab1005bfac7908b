//! Credentials issued by generators (`dataFrom[].sourceRef.generatorRef`)
//! and the life of their leases.
//!
//! ESO issues a new credential at every refresh and forgets it; VSO loses
//! track of its leases when it restarts. Here each credential is issued
//! once and kept while its lease lives:
//! - its lease is recorded in the ExternalSecret's status (ids and times),
//!   and its values in a Secret of its own beside the target (owned by the
//!   ExternalSecret), so a restart or a new leader reuses both instead of
//!   issuing again;
//! - at `renewAtPercent` of its TTL the lease is renewed; when Vault grants
//!   less than asked (the role's max TTL is near) or will not renew, a new
//!   credential is issued and written, and the old one is revoked after the
//!   grace period (consumers have rolled), never later than its own end;
//! - a certificate (resultType Certificate) is re-issued at that fraction
//!   of its notBefore..notAfter lifetime;
//! - a finalizer revokes every lease when the ExternalSecret is deleted.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine;
use chrono::{DateTime, Utc};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use serde_json::{Value, json};
use tracing::{info, warn};
use vaultsync_api::{
    DynamicMethod, DynamicResultType, ExternalSecret, IssuedLease, LEASE_FINALIZER, LeaseState, VaultDynamicSecret,
    parse_duration,
};
use vaultsync_vault::{Client, IssueMethod, Issued};

use crate::context::Context;
use crate::context::lease_books::Book;
use crate::error::{Error, Result};
use crate::secret_data::SecretData;
use crate::stores::{ResolvedStore, credentials};

/// Field manager of the finalizer apply, apart from the spec's owners.
const FINALIZER_MANAGER: &str = "vaultsync.dev/leases";
/// Label on the Secret that keeps issued values, naming its ExternalSecret.
pub(crate) const LEASED_FOR_LABEL: &str = "vaultsync.dev/leased-for";
/// A credential this close to its end is not handed out again: a new one
/// is issued instead. A tenth of its TTL, at most 5 s, so that short
/// leases (seconds) are still renewed rather than replaced.
fn end_margin(lease: &IssuedLease) -> Duration {
    Duration::from_secs(u64::try_from(lease.ttl_seconds).unwrap_or(0)).div_f64(10.0).min(Duration::from_secs(5))
}
/// Revocation tries on deletion before the finalizer is removed anyway.
pub(crate) const MAX_REVOKE_TRIES: u32 = 3;

/// What the generators of one ExternalSecret contribute to a sync.
#[derive(Default)]
pub(crate) struct Generated {
    /// Values by `dataFrom` index.
    pub data: BTreeMap<usize, SecretData>,
    /// A certificate was issued: the Secret defaults to `kubernetes.io/tls`.
    pub certificate: bool,
    /// When a lease next needs attention.
    pub next_action: Option<Instant>,
}

/// Whether `es` takes values from a generator, or still holds leases.
pub(crate) fn involved(es: &ExternalSecret) -> bool {
    es.spec.data_from.iter().any(|f| f.source_ref.is_some()) || es.status.as_ref().is_some_and(|s| !s.leases.is_empty())
}

/// Name of the Secret that keeps what generators issued for `es`.
pub(crate) fn values_secret_name(es: &ExternalSecret) -> String {
    format!("vaultsync-leased-{}", es.uid().unwrap_or_default())
}

/// Issues, reuses, renews, replaces and retires the credentials of `es`'s
/// generators; returns the values to write.
pub(crate) async fn generate(ctx: &Context, es: &ExternalSecret) -> Result<Generated> {
    let key = ObjectRef::from_obj(es);
    let namespace = es.namespace().unwrap_or_default();
    let mut book = match ctx.leases.get(&key) {
        Some(book) => book,
        None => load(ctx, es).await?,
    };
    let mut generated = Generated::default();
    let mut issued_any = false;
    for (index, from) in es.spec.data_from.iter().enumerate() {
        let Some(source_ref) = &from.source_ref else { continue };
        let name = &source_ref.generator_ref.name;
        let source = format!("dataFrom[{index}]");
        let generator = find_generator(ctx, &namespace, name)
            .await
            .map_err(|e| {
                Error::Generator(format!(
                    "{source}: reading VaultDynamicSecret {name:?}: {}",
                    crate::error::kube_reason(&e)
                ))
            })?
            .ok_or_else(|| {
                Error::Generator(format!(
                    "{source}: VaultDynamicSecret {name:?} does not exist in namespace {namespace}"
                ))
            })?;
        let policy = Policy::of(&generator)?;
        let active = book
            .leases
            .iter()
            .position(|l| l.source == source && l.generator == *name && l.state == LeaseState::Active);
        let mut renewed = None;
        let keep = match active {
            Some(at) => {
                let lease = &book.leases[at];
                let usable = lease.generator_generation == generator.metadata.generation
                    && book.data.contains_key(&index)
                    && remaining(lease) > end_margin(lease);
                if !usable {
                    false
                } else if due(lease) {
                    match renew(ctx, es, &generator, lease, &policy).await? {
                        Some(lease) => {
                            renewed = Some(lease);
                            true
                        }
                        None => false,
                    }
                } else {
                    true
                }
            }
            None => false,
        };
        if let (Some(at), Some(lease)) = (active, renewed) {
            book.leases[at] = lease;
        }
        if !keep {
            ensure_finalizer(ctx, es).await?;
            let (data, lease) = issue(ctx, es, &generator, &policy, &source).await?;
            if let Some(at) = active {
                retire(&mut book.leases[at], &policy);
            }
            // A static answer (no lease, no certificate) is read again at
            // each sync, like a KV secret: nothing to keep or renew.
            if let Some(lease) = lease {
                book.leases.push(lease);
                issued_any = true;
            }
            book.data.insert(index, data);
        }
        generated.certificate |= generator.spec.result_type == DynamicResultType::Certificate;
        if let Some(data) = book.data.get(&index) {
            generated.data.insert(index, data.clone());
        }
    }

    // Leases of entries that are gone from the spec retire as well.
    let live: Vec<(String, String)> = es
        .spec
        .data_from
        .iter()
        .enumerate()
        .filter_map(|(i, f)| f.source_ref.as_ref().map(|s| (format!("dataFrom[{i}]"), s.generator_ref.name.clone())))
        .collect();
    for lease in book.leases.iter_mut().filter(|l| l.state == LeaseState::Active) {
        if !live.contains(&(lease.source.clone(), lease.generator.clone())) {
            lease.state = LeaseState::Retiring;
            lease.next_action_at = stamp(Utc::now());
        }
    }
    book.data.retain(|index, _| live.iter().any(|(source, _)| *source == format!("dataFrom[{index}]")));

    // Retired leases whose grace period is over are revoked.
    let mut kept = Vec::new();
    for lease in std::mem::take(&mut book.leases) {
        if lease.state == LeaseState::Retiring && due(&lease) {
            match revoke(ctx, es, &lease).await {
                Ok(()) => continue,
                Err(e) => {
                    warn!(externalsecret = %crate::context::object_ref(es), source = %lease.source, error = %e, "could not revoke a replaced credential; trying again later")
                }
            }
        }
        kept.push(lease);
    }
    book.leases = kept;

    if issued_any {
        save_values(ctx, es, &book.data).await?;
    }
    generated.next_action = book.leases.iter().filter_map(|l| parse_time(&l.next_action_at)).map(until).min();
    // Recorded now, so that a failure later in this sync (writing the
    // target) still reports the new lease in status.
    ctx.leases.put(&key, book);
    Ok(generated)
}

/// Revokes every lease of `es` (it is being deleted). `Ok` when none is
/// left.
pub(crate) async fn release_all(ctx: &Context, es: &ExternalSecret) -> Result<()> {
    let key = ObjectRef::from_obj(es);
    let leases = match ctx.leases.get(&key) {
        Some(book) => book.leases,
        None => es.status.as_ref().map(|s| s.leases.clone()).unwrap_or_default(),
    };
    let mut left = Vec::new();
    let mut errors = Vec::new();
    for lease in leases {
        match revoke(ctx, es, &lease).await {
            Ok(()) => {}
            Err(e) => {
                errors.push(format!("{} ({}): {e}", lease.lease_id.as_deref().unwrap_or("certificate"), lease.source));
                left.push(lease);
            }
        }
    }
    ctx.leases.put(&key, Book { leases: left, data: BTreeMap::new() });
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Generator(format!("revoking leases failed: {}", errors.join("; "))))
    }
}

/// Removes the lease finalizer from `es`.
pub(crate) async fn remove_finalizer(ctx: &Context, es: &ExternalSecret) -> Result<()> {
    let api = Api::<ExternalSecret>::namespaced(ctx.client.clone(), &es.namespace().unwrap_or_default());
    let patch = json!({
        "apiVersion": "vaultsync.dev/v1alpha1",
        "kind": "ExternalSecret",
        "metadata": {"name": es.name_any()},
    });
    match api.patch(&es.name_any(), &PatchParams::apply(FINALIZER_MANAGER).force(), &Patch::Apply(patch)).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(e) => return Err(Error::Kube(e)),
    }
    // A finalizer another writer set the same way (client-side) is not ours
    // to apply away: take it out by a merge of the remaining list.
    let current = api.get_opt(&es.name_any()).await.map_err(Error::Kube)?;
    if let Some(current) = current
        && current.finalizers().iter().any(|f| f == LEASE_FINALIZER)
    {
        let rest: Vec<&String> = current.finalizers().iter().filter(|f| *f != LEASE_FINALIZER).collect();
        let patch = json!({"metadata": {"finalizers": rest, "resourceVersion": current.resource_version()}});
        api.patch(&es.name_any(), &PatchParams::default(), &Patch::Merge(patch)).await.map_err(Error::Kube)?;
    }
    Ok(())
}

async fn ensure_finalizer(ctx: &Context, es: &ExternalSecret) -> Result<()> {
    if es.finalizers().iter().any(|f| f == LEASE_FINALIZER) {
        return Ok(());
    }
    let api = Api::<ExternalSecret>::namespaced(ctx.client.clone(), &es.namespace().unwrap_or_default());
    let patch = json!({
        "apiVersion": "vaultsync.dev/v1alpha1",
        "kind": "ExternalSecret",
        "metadata": {"name": es.name_any(), "finalizers": [LEASE_FINALIZER]},
    });
    api.patch(&es.name_any(), &PatchParams::apply(FINALIZER_MANAGER).force(), &Patch::Apply(patch))
        .await
        .map_err(Error::Kube)?;
    Ok(())
}

/// Generator `name` of `namespace`: from the watch cache, else (start-up,
/// watch lag, `vaultsync render`) from the API server.
async fn find_generator(ctx: &Context, namespace: &str, name: &str) -> kube::Result<Option<VaultDynamicSecret>> {
    let cached = ctx.caches.generators.get().and_then(|c| c.get(&ObjectRef::new(name).within(namespace)));
    match cached {
        Some(generator) => Ok(Some((*generator).clone())),
        None => Api::<VaultDynamicSecret>::namespaced(ctx.client.clone(), namespace).get_opt(name).await,
    }
}

/// What a generator's `lease` settings say, parsed.
struct Policy {
    renew_at: f64,
    grace: Duration,
}

impl Policy {
    fn of(generator: &VaultDynamicSecret) -> Result<Self> {
        let lease = &generator.spec.lease;
        let grace = parse_duration(&lease.rotation_grace_period).map_err(|e| {
            Error::Generator(format!("VaultDynamicSecret {:?}: lease.rotationGracePeriod: {e}", generator.name_any()))
        })?;
        // Up to 5 points of jitter, so that credentials issued together do
        // not all fall due together.
        let percent = f64::from(lease.renew_at_percent.clamp(10, 90)) - 5.0 * rand::random::<f64>();
        Ok(Self { renew_at: percent / 100.0, grace })
    }
}

/// A client for `generator`'s provider; an outage of its server is handled
/// as for stores (see crate::vault_clients::outage).
async fn client_for(ctx: &Context, es: &ExternalSecret, generator: &VaultDynamicSecret) -> Result<(Client, String)> {
    let store = ResolvedStore::from_generator(generator);
    let creds = credentials(ctx, &store, &es.namespace().unwrap_or_default()).await?;
    let name = store.to_string();
    let client = ctx.vault.client(creds).map_err(|source| Error::Vault { store: name.clone(), source })?;
    let key = ObjectRef::from_obj(es);
    if let Some(waiting) = ctx.outages.wait_if_down(client.address(), &key) {
        return Err(Error::Vault { store: name, source: waiting.into_error(client.address()) });
    }
    Ok((client, name))
}

fn vault_error(
    ctx: &Context,
    es: &ExternalSecret,
    client: &Client,
    store: &str,
    source: vaultsync_vault::Error,
) -> Error {
    let key = ObjectRef::from_obj(es);
    if ctx.outages.report_down(client, &source, &key) {
        tokio::spawn(ctx.outages.clone().probe(client.clone()));
    }
    let source = match ctx.outages.wait_if_down(client.address(), &key) {
        Some(waiting) => waiting.into_error(client.address()),
        None => source,
    };
    Error::Vault { store: store.to_owned(), source }
}

/// Issues a new credential from `generator`.
async fn issue(
    ctx: &Context,
    es: &ExternalSecret,
    generator: &VaultDynamicSecret,
    policy: &Policy,
    source: &str,
) -> Result<(SecretData, Option<IssuedLease>)> {
    let spec = &generator.spec;
    // The API server refuses these too (CEL); checked again before any
    // login, for objects stored before the rule existed.
    vaultsync_vault::check_engine_path("path", &spec.path)
        .map_err(|source| Error::Vault { store: format!("VaultDynamicSecret {}", generator.name_any()), source })?;
    let (client, store) = client_for(ctx, es, generator).await?;
    let method = match spec.method {
        DynamicMethod::Get => IssueMethod::Get,
        DynamicMethod::Post => IssueMethod::Post,
        DynamicMethod::Put => IssueMethod::Put,
        DynamicMethod::List => IssueMethod::List,
        DynamicMethod::Delete => IssueMethod::Delete,
    };
    let (retries, pause) = match &spec.retry_settings {
        Some(r) => (
            u32::try_from(r.max_retries.unwrap_or(0).clamp(0, 10)).unwrap_or(0),
            r.retry_interval.as_deref().and_then(|i| parse_duration(i).ok()).unwrap_or(Duration::from_secs(1)),
        ),
        None => (0, Duration::from_secs(1)),
    };
    let mut attempt = 0;
    let issued = loop {
        match client.issue(method, &spec.path, &spec.get_parameters, spec.parameters.as_ref()).await {
            Ok(issued) => break issued,
            Err(
                e @ (vaultsync_vault::Error::Unreachable { .. }
                | vaultsync_vault::Error::BadResponse { status: 500.., .. }),
            ) if attempt < retries => {
                attempt += 1;
                tracing::debug!(error = %e, attempt, "retrying a generator's request");
                tokio::time::sleep(pause).await;
            }
            Err(e) => return Err(vault_error(ctx, es, &client, &store, e)),
        }
    };
    let shown = format!("{store}: {}", spec.path);
    let (data, certificate) = values(&issued, spec.result_type, spec.allow_empty_response, &shown)?;
    let now = Utc::now();
    let (issued_at, expires_at, serial) = match (&certificate, &issued.lease) {
        // Vault backdates notBefore (30 s by default) against clock skew;
        // the lifetime that matters here starts when it was issued.
        (Some(cert), _) => (cert.not_before.max(now), cert.not_after, Some(cert.serial.clone())),
        // A lease that does not expire (TTL 0): kept, revoked on deletion,
        // never renewed.
        (None, Some(lease)) if lease.ttl.is_zero() => (now, now + chrono::Duration::days(36500), None),
        (None, Some(lease)) => (now, now + lease.ttl, None),
        (None, None) => {
            info!(externalsecret = %crate::context::object_ref(es), generator = %store, "read a credential without a lease (a static role); read again at each refresh");
            return Ok((data, None));
        }
    };
    let lifetime = (expires_at - issued_at).to_std().unwrap_or_default();
    let next = issued_at + lifetime.mul_f64(policy.renew_at);
    let lease = IssuedLease {
        source: source.to_owned(),
        generator: generator.name_any(),
        lease_id: issued.lease.as_ref().map(|l| l.id.clone()),
        serial,
        issued_at: stamp(now),
        expires_at: stamp(expires_at),
        next_action_at: stamp(next),
        renewable: issued.lease.as_ref().is_some_and(|l| l.renewable),
        ttl_seconds: i64::try_from(issued.lease.as_ref().map_or(lifetime, |l| l.ttl).as_secs()).unwrap_or(i64::MAX),
        state: LeaseState::Active,
        generator_generation: generator.metadata.generation,
    };
    info!(
        externalsecret = %crate::context::object_ref(es),
        generator = %store,
        lease_id = lease.lease_id.as_deref().unwrap_or(""),
        serial = lease.serial.as_deref().unwrap_or(""),
        expires_at = %lease.expires_at,
        "issued a credential"
    );
    Ok((data, Some(lease)))
}

/// Renews `lease` when Vault allows; `None` when a new credential must be
/// issued instead (not renewable, refused, or granted less than asked: its
/// max TTL is near).
async fn renew(
    ctx: &Context,
    es: &ExternalSecret,
    generator: &VaultDynamicSecret,
    lease: &IssuedLease,
    policy: &Policy,
) -> Result<Option<IssuedLease>> {
    let Some(id) = lease.lease_id.as_deref().filter(|_| lease.renewable) else { return Ok(None) };
    let (client, store) = client_for(ctx, es, generator).await?;
    let asked = Duration::from_secs(u64::try_from(lease.ttl_seconds).unwrap_or(0));
    match client.renew_lease(id, asked).await {
        Ok(renewed) => {
            let now = Utc::now();
            let mut lease = lease.clone();
            lease.expires_at = stamp(now + renewed.ttl);
            lease.renewable = renewed.renewable;
            if renewed.ttl < asked || !renewed.renewable {
                info!(externalsecret = %crate::context::object_ref(es), generator = %store, lease_id = id, granted_s = renewed.ttl.as_secs(), "lease near its max TTL; issuing a new credential");
                return Ok(None);
            }
            lease.next_action_at = stamp(now + renewed.ttl.mul_f64(policy.renew_at));
            info!(externalsecret = %crate::context::object_ref(es), generator = %store, lease_id = id, ttl_s = renewed.ttl.as_secs(), "renewed a lease");
            Ok(Some(lease))
        }
        Err(e @ (vaultsync_vault::Error::Unreachable { .. } | vaultsync_vault::Error::Sealed { .. })) => {
            Err(vault_error(ctx, es, &client, &store, e))
        }
        Err(e) => {
            warn!(externalsecret = %crate::context::object_ref(es), generator = %store, lease_id = id, error = %e, "lease renewal refused; issuing a new credential");
            Ok(None)
        }
    }
}

/// A replaced credential keeps working for the grace period (but no longer
/// than its own lease), then is revoked.
fn retire(lease: &mut IssuedLease, policy: &Policy) {
    let end = parse_time(&lease.expires_at).unwrap_or_else(Utc::now);
    let at = (Utc::now() + policy.grace).min(end);
    lease.state = LeaseState::Retiring;
    lease.next_action_at = stamp(at);
}

/// Revokes `lease` through its generator's client. A certificate is
/// revoked only when its generator asks for it.
async fn revoke(ctx: &Context, es: &ExternalSecret, lease: &IssuedLease) -> Result<()> {
    let expired = parse_time(&lease.expires_at).is_some_and(|end| end <= Utc::now());
    let generator = find_generator(ctx, &es.namespace().unwrap_or_default(), &lease.generator).await?;
    let Some(generator) = generator else {
        if expired || lease.lease_id.is_none() {
            return Ok(());
        }
        return Err(Error::Generator(format!(
            "VaultDynamicSecret {:?} is gone, and with it the way to reach Vault; its lease ends by itself at {}",
            lease.generator, lease.expires_at
        )));
    };
    if expired {
        return Ok(());
    }
    let (client, store) = client_for(ctx, es, &generator).await?;
    if let Some(id) = &lease.lease_id {
        client.revoke_lease(id).await.map_err(|e| vault_error(ctx, es, &client, &store, e))?;
        info!(externalsecret = %crate::context::object_ref(es), generator = %store, lease_id = %id, "revoked a lease");
    } else if let Some(serial) = &lease.serial
        && generator.spec.lease.revoke_certificates
    {
        let mount = generator.spec.path.trim_start_matches('/').split('/').next().unwrap_or_default().to_owned();
        client.revoke_certificate(&mount, serial).await.map_err(|e| vault_error(ctx, es, &client, &store, e))?;
        info!(externalsecret = %crate::context::object_ref(es), generator = %store, serial = %serial, "revoked a certificate");
    }
    Ok(())
}

/// This process has no record of `es`: the status says which leases live,
/// and the values Secret holds what they issued.
async fn load(ctx: &Context, es: &ExternalSecret) -> Result<Book> {
    let leases = es.status.as_ref().map(|s| s.leases.clone()).unwrap_or_default();
    if leases.is_empty() {
        return Ok(Book::default());
    }
    let secrets = Api::<Secret>::namespaced(ctx.client.clone(), &es.namespace().unwrap_or_default());
    let stored = secrets.get_opt(&values_secret_name(es)).await.map_err(Error::Kube)?;
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

/// Keeps what the generators issued in a Secret owned by `es`.
async fn save_values(ctx: &Context, es: &ExternalSecret, values: &BTreeMap<usize, SecretData>) -> Result<()> {
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
    let owner = es.controller_owner_ref(&()).ok_or_else(|| Error::Internal("ExternalSecret without uid".into()))?;
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace),
            labels: Some(BTreeMap::from([(LEASED_FOR_LABEL.to_owned(), es.name_any())])),
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
        .map_err(|e| crate::sync::secret_writer::write_failure(&name, None, &e))?;
    Ok(())
}

/// The Secret keys an answer gives, by result type; for a certificate, also
/// what the lease record needs of it.
fn values(
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

struct CertificateFacts {
    serial: String,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
}

/// `pki/issue` output as a `kubernetes.io/tls` Secret: `tls.crt` (the leaf,
/// then the chain up to but not including the root), `tls.key`, `ca.crt`
/// (the last certificate of the chain: the root when Vault knows it).
fn certificate(object: &serde_json::Map<String, Value>, shown: &str) -> Result<(SecretData, CertificateFacts)> {
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

fn certificate_facts(leaf_pem: &str) -> Option<CertificateFacts> {
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

fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}

fn remaining(lease: &IssuedLease) -> Duration {
    parse_time(&lease.expires_at).and_then(|end| (end - Utc::now()).to_std().ok()).unwrap_or_default()
}

fn due(lease: &IssuedLease) -> bool {
    parse_time(&lease.next_action_at).is_none_or(|at| at <= Utc::now())
}

/// The monotonic instant of wall-clock time `at` (now when it is past).
fn until(at: DateTime<Utc>) -> Instant {
    Instant::now() + (at - Utc::now()).to_std().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(expires_in: i64, next_in: i64) -> IssuedLease {
        let now = Utc::now();
        IssuedLease {
            source: "dataFrom[0]".into(),
            generator: "db".into(),
            lease_id: Some("database/creds/app/abc".into()),
            expires_at: stamp(now + chrono::Duration::seconds(expires_in)),
            next_action_at: stamp(now + chrono::Duration::seconds(next_in)),
            ttl_seconds: 60,
            renewable: true,
            ..Default::default()
        }
    }

    #[test]
    fn a_retired_lease_is_revoked_after_the_grace_period_but_never_after_its_end() {
        let policy = Policy { renew_at: 0.67, grace: Duration::from_secs(300) };
        let mut short = lease(30, 0);
        retire(&mut short, &policy);
        assert_eq!(short.state, LeaseState::Retiring);
        assert_eq!(short.next_action_at, short.expires_at, "ends before the grace period would");
        let mut long = lease(3600, 0);
        retire(&mut long, &policy);
        let at = parse_time(&long.next_action_at).unwrap();
        let expected = Utc::now() + chrono::Duration::seconds(300);
        assert!((at - expected).num_seconds().abs() <= 1, "{at} vs {expected}");
    }

    #[test]
    fn a_short_lease_due_for_renewal_is_still_usable() {
        // 12 s TTL, due at about 8 s: 4 s left is more than its margin.
        let lease = IssuedLease { ttl_seconds: 12, ..lease(4, 0) };
        assert!(remaining(&lease) > end_margin(&lease), "renewed, not replaced");
        assert_eq!(end_margin(&IssuedLease { ttl_seconds: 3600, ..lease }), Duration::from_secs(5));
    }

    #[test]
    fn due_and_remaining_follow_the_record() {
        assert!(due(&lease(60, -1)));
        assert!(!due(&lease(60, 30)));
        assert!(remaining(&lease(60, 30)) > Duration::from_secs(55));
        assert_eq!(remaining(&lease(-5, 0)), Duration::ZERO);
    }

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
