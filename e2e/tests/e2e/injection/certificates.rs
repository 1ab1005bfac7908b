//! A sidecar issues certificates from the PKI engine and issues them anew
//! by their lifetime, not by its poll interval.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::json;
use vaultsync_e2e::{TestEnv, eventually, report};

use super::sidecar::start_sidecar;

/// A Vault agent template that issues a certificate (`secret` with
/// parameters: a write to `pki/issue/...`): one issue serves both files
/// (key and certificate match), it is kept, and issued anew at about two
/// thirds of its lifetime, though the poll interval (1m) is longer.
#[tokio::test]
async fn the_sidecar_issues_certificates_anew_by_their_lifetime() -> anyhow::Result<()> {
    let env = TestEnv::new("sidepki").await?;
    let issue = format!("secret \"pki/issue/example-dot-com\" \"common_name={}.example.com\" \"ttl=30s\"", env.prefix);
    let files = json!([
        {"name": "crt", "path": "pki/issue/example-dot-com", "file": "tls.crt",
         "template": format!("{{{{ with {issue} }}}}{{{{ .Data.certificate }}}}\n{{{{ end }}}}")},
        {"name": "ca", "path": "pki/issue/example-dot-com", "file": "ca.crt",
         "template": format!("{{{{ with {issue} }}}}{{{{ .Data.issuing_ca }}}}\n{{{{ end }}}}")},
        {"name": "key", "path": "pki/issue/example-dot-com", "file": "tls.key",
         "template": format!("{{{{ with {issue} }}}}{{{{ .Data.private_key }}}}\n{{{{ end }}}}")},
    ]);
    // database_role's policy allows pki/issue/example-dot-com.
    let sidecar = start_sidecar(&env, "1m", "2m", files).await?;
    let (secrets, log) = (sidecar.secrets.clone(), sidecar.log.clone());
    let crt = secrets.join("tls.crt");
    eventually(Duration::from_secs(20), || async {
        Ok(std::fs::read_to_string(&crt).is_ok_and(|c| c.contains("BEGIN")))
    })
    .await
    .context("the sidecar writes the certificate")?;
    let started = Instant::now();
    // The sidecar carries on with the init container's certificate.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let first = std::fs::read_to_string(&crt)?;
    assert_eq!(sidecar.initial.get("tls.crt"), Some(&first), "the sidecar keeps what the init container was issued");
    let first_key = std::fs::read_to_string(secrets.join("tls.key"))?;
    env.record_secret(first_key.lines().nth(1).unwrap_or_default());
    let openssl = |args: &[&str]| -> anyhow::Result<String> {
        let output = std::process::Command::new("openssl").args(args).current_dir(&secrets).output()?;
        anyhow::ensure!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    };
    openssl(&["verify", "-CAfile", "ca.crt", "tls.crt"]).context("the certificate verifies against the PKI's CA")?;
    assert_eq!(
        openssl(&["x509", "-in", "tls.crt", "-noout", "-pubkey"])?,
        openssl(&["pkey", "-in", "tls.key", "-pubout"])?,
        "one issue serves both files: the key is the certificate's"
    );

    // Issued anew at about 2/3 of its 30 s, before the next poll (1m).
    let mut seen = vec![first.clone()];
    let deadline = Instant::now() + Duration::from_secs(40);
    while Instant::now() < deadline && seen.len() < 2 {
        let now = std::fs::read_to_string(&crt).unwrap_or_default();
        if !seen.contains(&now) {
            seen.push(now);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let renewed_after = started.elapsed();
    anyhow::ensure!(seen.len() == 2, "no new certificate within 40 s");
    openssl(&["verify", "-CAfile", "ca.crt", "tls.crt"]).context("the new certificate verifies")?;
    let new_key = std::fs::read_to_string(secrets.join("tls.key"))?;
    env.record_secret(new_key.lines().nth(1).unwrap_or_default());
    assert_ne!(new_key, first_key, "a new key with the new certificate");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(std::fs::read_to_string(&crt)?, seen[1], "not issued again right after");
    let text = std::fs::read_to_string(&log)?;
    report(&format!(
        "inject: sidecar certificate (30s lifetime, first issued by the init container) issued anew {:.1}s after; {} issue(s) by the sidecar",
        renewed_after.as_secs_f64(),
        text.matches("written; its answer lives").count()
    ));
    assert_eq!(text.matches("written; its answer lives").count(), 1, "the sidecar issued once, at 2/3: {text}");
    assert!(!text.contains("PRIVATE KEY"), "no key in the sidecar's output");
    drop(sidecar);
    env.cleanup().await;
    Ok(())
}
