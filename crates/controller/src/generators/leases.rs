//! The life of one lease: issue, renew while Vault grants what was asked,
//! retire a replaced credential after the grace period, revoke. Times are
//! kept as RFC 3339 text because they live in the ExternalSecret's status.

use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use kube::ResourceExt;
use tracing::{info, warn};
use vaultsync_api::{DynamicMethod, ExternalSecret, IssuedLease, LeaseState, VaultDynamicSecret, parse_duration};
use vaultsync_vault::{IssueMethod, lease_timing};

use crate::context::Context;
use crate::error::{Error, Result};
use crate::secret_data::SecretData;

use super::values::values;
use super::{Policy, client_for, find_generator, vault_error};

/// A credential this close to its end is not handed out again: a new one
/// is issued instead (the rule: [`lease_timing::end_margin`]).
pub(super) fn end_margin(lease: &IssuedLease) -> Duration {
    lease_timing::end_margin(Duration::from_secs(u64::try_from(lease.ttl_seconds).unwrap_or(0)))
}

/// Issues a new credential from `generator`.
pub(super) async fn issue(
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
    let next = issued_at + lease_timing::renew_after(lifetime, policy.renew_at);
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
pub(super) async fn renew(
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
            if lease_timing::renewal_falls_short(asked, renewed.ttl, renewed.renewable) {
                info!(externalsecret = %crate::context::object_ref(es), generator = %store, lease_id = id, granted_s = renewed.ttl.as_secs(), "lease near its max TTL; issuing a new credential");
                return Ok(None);
            }
            lease.next_action_at = stamp(now + lease_timing::renew_after(renewed.ttl, policy.renew_at));
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
pub(super) fn retire(lease: &mut IssuedLease, policy: &Policy) {
    let end = parse_time(&lease.expires_at).unwrap_or_else(Utc::now);
    let at = lease_timing::retire_at(Utc::now(), policy.grace, end);
    lease.state = LeaseState::Retiring;
    lease.next_action_at = stamp(at);
}

/// Revokes `lease` through its generator's client. A certificate is
/// revoked only when its generator asks for it.
pub(super) async fn revoke(ctx: &Context, es: &ExternalSecret, lease: &IssuedLease) -> Result<()> {
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

pub(super) fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub(super) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}

pub(super) fn remaining(lease: &IssuedLease) -> Duration {
    parse_time(&lease.expires_at)
        .map_or(Duration::ZERO, |end| lease_timing::remaining(end.into(), SystemTime::from(Utc::now())))
}

pub(super) fn due(lease: &IssuedLease) -> bool {
    lease_timing::due(parse_time(&lease.next_action_at), Utc::now())
}

/// The monotonic instant of wall-clock time `at` (now when it is past).
pub(super) fn until(at: DateTime<Utc>) -> Instant {
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
}
