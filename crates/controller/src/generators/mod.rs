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

use chrono::Utc;
use kube::core::DynamicObject;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};
use tracing::warn;
use vaultsync_api::{DynamicResultType, ExternalSecret, LeaseState, VaultDynamicSecret, parse_duration};
use vaultsync_vault::Client;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::secret_data::SecretData;
use crate::served::{self, Group};
use crate::stores::{ResolvedStore, credentials};

mod certificates;
mod leases;
mod release;
mod values;

use leases::{due, end_margin, issue, parse_time, remaining, renew, retire, revoke, stamp, until};
use release::ensure_finalizer;
use values::{load, save_values};

pub(crate) use release::{release_all, remove_finalizer};

/// Label on the Secret that keeps issued values, naming its ExternalSecret.
pub(crate) const LEASED_FOR_LABEL: &str = "vaultsync.dev/leased-for";
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
    es.spec.data_from.iter().any(|f| f.generator().is_some())
        || es.status.as_ref().is_some_and(|s| !s.leases.is_empty())
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
    let ledger_before = book.leases.clone();
    let mut generated = Generated::default();
    let mut issued_any = false;
    for (index, from) in es.spec.data_from.iter().enumerate() {
        let Some(generator_ref) = from.generator() else { continue };
        let name = &generator_ref.name;
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
        // ESO's CRD has none of vaultsync's rules (system mounts, ...).
        if let Some(problem) = served::unservable_generator(&generator) {
            return Err(Error::Generator(format!("{source}: VaultDynamicSecret {name:?}: {problem}")));
        }
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
        .filter_map(|(i, f)| f.generator().map(|g| (format!("dataFrom[{i}]"), g.name.clone())))
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

    match ctx.group {
        Group::Vaultsync if issued_any => save_values(ctx, es, &book.data, None).await?,
        Group::Vaultsync => {}
        // ESO's status has no room for the ledger: it lives in the values
        // Secret, written whenever it changes (a renewal too).
        Group::Eso if issued_any || book.leases != ledger_before => {
            save_values(ctx, es, &book.data, Some(&book.leases)).await?
        }
        Group::Eso => {}
    }
    generated.next_action = book.leases.iter().filter_map(|l| parse_time(&l.next_action_at)).map(until).min();
    // Recorded now, so that a failure later in this sync (writing the
    // target) still reports the new lease in status.
    ctx.leases.put(&key, book);
    Ok(generated)
}

/// Generator `name` of `namespace`, of `ctx`'s group: from the watch
/// cache, else (start-up, watch lag, `vaultsync render`) from the API
/// server.
pub(crate) async fn find_generator(
    ctx: &Context,
    namespace: &str,
    name: &str,
) -> kube::Result<Option<VaultDynamicSecret>> {
    let cached = ctx.caches.generators.get().and_then(|c| c.get(&ObjectRef::new(name).within(namespace)));
    if let Some(generator) = cached {
        return Ok(Some((*generator).clone()));
    }
    match ctx.group {
        Group::Vaultsync => Api::<VaultDynamicSecret>::namespaced(ctx.client.clone(), namespace).get_opt(name).await,
        Group::Eso => {
            let resource = Group::Eso.api_resource::<VaultDynamicSecret>();
            let raw =
                Api::<DynamicObject>::namespaced_with(ctx.client.clone(), namespace, &resource).get_opt(name).await?;
            Ok(raw.map(|raw| served::read_as(raw, served::unparsed_generator)))
        }
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
