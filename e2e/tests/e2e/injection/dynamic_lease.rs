//! A sidecar keeps a dynamic database credential alive by renewing its
//! lease, and replaces it before the lease's max TTL.

use std::time::{Duration, Instant};

use serde_json::json;
use vaultsync_e2e::{Postgres, TestEnv, report};

use super::sidecar::start_sidecar;

/// A sidecar rendering a dynamic database credential keeps it: the lease is
/// renewed (the credential logs in past its first TTL, OpenBao issued it
/// once), and a new one is written only when the max TTL is near, while the
/// old one still logs in. Its poll interval (1m) is longer than the lease's
/// TTL: it wakes when the lease is due.
#[tokio::test]
async fn the_sidecar_renews_a_dynamic_lease_and_replaces_it_before_its_end() -> anyhow::Result<()> {
    let env = TestEnv::new("sidelease").await?;
    let pg = Postgres::from_env()?;
    // Renewed about every 6 s; from about 24 s on, Vault grants less than a
    // full TTL, and the sidecar reads a new credential then, with some 6 s
    // of the old one left.
    let creds = format!("database/creds/{}", env.prefix);
    let files = json!([{"name": "db", "path": creds, "file": "db",
        "template": format!("{{{{ with secret \"{creds}\" }}}}{{{{ .Data.username }}}} {{{{ .Data.password }}}}{{{{ end }}}}")}]);
    let sidecar = start_sidecar(&env, "9s", "30s", files).await?;
    let (secrets, log) = (sidecar.secrets.clone(), sidecar.log.clone());
    let file = secrets.join("db");
    // The file's credentials, once they differ from `other_than`'s user.
    let read = |other_than: Option<String>| {
        let file = file.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(40);
            loop {
                let content = std::fs::read_to_string(&file).unwrap_or_default();
                if let Some((user, password)) = content.split_once(' ')
                    && other_than.as_deref() != Some(user)
                {
                    return anyhow::Ok((user.to_owned(), password.to_owned()));
                }
                anyhow::ensure!(Instant::now() < deadline, "no new credentials in {} after 40 s", file.display());
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let (user, password) = read(None).await?;
    let started = Instant::now();
    env.record_secret(&password);
    assert_eq!(
        sidecar.initial.get("db"),
        Some(&format!("{user} {password}")),
        "the sidecar renews what the init container was issued"
    );
    assert!(pg.can_log_in(&user, &password)?, "the sidecar's credential logs in");

    // Past its first 9 s TTL: the same credential, still alive, issued once.
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(std::fs::read_to_string(&file)?, format!("{user} {password}"), "renewal keeps the file as it is");
    assert!(pg.can_log_in(&user, &password)?, "the lease was renewed: the credential outlives its first TTL");
    assert_eq!(vaultsync_e2e::Bao::audited_responses(&creds)?, 1, "OpenBao issued one credential, then renewed it");

    // Near the max TTL, a new credential, written while the old one lives.
    let (new_user, new_password) = read(Some(user.clone())).await?;
    env.record_secret(&new_password);
    let replaced_after = started.elapsed();
    // The replacement comes while the old lease has at least a third of its
    // TTL (3 s) left: it still logs in a moment later.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let old_alive = pg.can_log_in(&user, &password)?;
    assert!(pg.can_log_in(&new_user, &new_password)?, "the replacement logs in");
    assert_eq!(vaultsync_e2e::Bao::audited_responses(&creds)?, 2, "one new credential, not one per poll");
    let text = std::fs::read_to_string(&log)?;
    let renewals = text.matches("renewed lease").count();
    report(&format!(
        "inject: sidecar lease renewed {renewals} times, credential replaced {:.1}s after issue (max TTL 30s); \
         old one still logged in 1.5 s later: {old_alive}",
        replaced_after.as_secs_f64()
    ));
    assert!(renewals >= 2, "renewals logged: {text}");
    assert!(old_alive, "the new credential was written well before the old one ended");
    assert!(!text.contains(&password) && !text.contains(&new_password), "no credential in the sidecar's output");
    drop(sidecar);
    env.cleanup().await;
    Ok(())
}
