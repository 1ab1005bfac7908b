//! The webhook's TLS: the certificate files it is given, or a CA and a
//! serving certificate it generates and rotates at two thirds of their
//! life, either in this process alone or kept in a Secret that every
//! replica shares; the CA is published as the caBundle of the
//! MutatingWebhookConfiguration so the API server trusts what is served.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::json;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::WebhookOptions;
use crate::metrics::Counters;

/// The TLS configuration to start with: the given files, or a generated
/// certificate whose CA is published.
pub(crate) async fn server_config(options: &WebhookOptions) -> anyhow::Result<rustls::ServerConfig> {
    if let Some((cert, key)) = &options.cert_files {
        use rustls::pki_types::pem::PemObject;
        let certs =
            CertificateDer::pem_file_iter(cert)?.collect::<Result<Vec<_>, _>>().context("reading the certificate")?;
        let key = PrivateKeyDer::from_pem_file(key).context("reading the key")?;
        return Ok(rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(certs, key)?);
    }
    let generated = generate(&options.hosts, options.cert_lifetime)?;
    if let Some(name) = &options.webhook_config {
        publish_ca(name, &generated.ca_pem).await?;
    }
    generated.config()
}

struct Generated {
    ca_pem: String,
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
    cert_pem: String,
    key_pem: String,
}

impl Generated {
    fn config(&self) -> anyhow::Result<rustls::ServerConfig> {
        Ok(rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![self.cert.clone()], PrivateKeyDer::Pkcs8(self.key.clone_key()))?)
    }
}

fn generate(hosts: &[String], lifetime: Duration) -> anyhow::Result<Generated> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let now = time_now();
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.distinguished_name.push(DnType::CommonName, "vaultsync webhook CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.not_before = now - Duration::from_secs(60);
    ca_params.not_after = now + lifetime * 2;
    let ca_key = KeyPair::generate()?;
    let ca = ca_params.self_signed(&ca_key)?;
    let mut params = CertificateParams::new(hosts.to_vec())?;
    params.distinguished_name.push(DnType::CommonName, hosts.first().cloned().unwrap_or_default());
    params.not_before = now - Duration::from_secs(60);
    params.not_after = now + lifetime;
    let key = KeyPair::generate()?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let cert = params.signed_by(&key, &issuer)?;
    Ok(Generated {
        ca_pem: ca.pem(),
        cert: cert.der().clone(),
        key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// Makes a new CA and certificate at two thirds of the certificate's life:
/// the CA is published first, then the server switches, so the API server
/// trusts the new certificate before it is served.
pub(crate) async fn rotate(
    hosts: Vec<String>,
    lifetime: Duration,
    webhook_config: Option<String>,
    tls: watch::Sender<Arc<rustls::ServerConfig>>,
    counters: Arc<Counters>,
) {
    let mut previous_ca: Option<String> = None;
    loop {
        tokio::time::sleep(lifetime * 2 / 3).await;
        let generated = match generate(&hosts, lifetime) {
            Ok(generated) => generated,
            Err(e) => {
                warn!(error = %e, "generating a certificate failed");
                continue;
            }
        };
        if let Some(name) = &webhook_config {
            // Both CAs are trusted while the old certificate may still be
            // in use by a connection being set up.
            let bundle = format!("{}{}", generated.ca_pem, previous_ca.clone().unwrap_or_default());
            if let Err(e) = publish_ca(name, &bundle).await {
                warn!(error = format!("{e:#}"), "publishing the new CA failed, keeping the old certificate");
                continue;
            }
        }
        match generated.config() {
            Ok(config) => {
                let _ = tls.send(Arc::new(config));
                counters.rotations.inc();
                info!("certificate rotated");
            }
            Err(e) => warn!(error = %e, "the rotated certificate cannot be served; keeping the old one"),
        }
        previous_ca = Some(generated.ca_pem);
    }
}

/// The generated CA and certificate kept in a Secret that every replica
/// reads: one of them makes a new pair when the Secret says it is due
/// (`vaultsync.dev/rotate-after`), writing it with the resourceVersion it
/// read so that two replicas never both rotate; each replica reloads what
/// the Secret holds and publishes its CA bundle (the new CA and the one
/// before it).
pub(crate) struct SharedCert {
    api: kube::Api<k8s_openapi::api::core::v1::Secret>,
    name: String,
    hosts: Vec<String>,
    lifetime: Duration,
    webhook_config: Option<String>,
    served: std::sync::Mutex<Option<String>>,
}

const ROTATE_AFTER: &str = "vaultsync.dev/rotate-after";

impl SharedCert {
    pub(crate) async fn new(
        (namespace, name): &(String, String),
        options: &WebhookOptions,
    ) -> anyhow::Result<SharedCert> {
        let client = kube::Client::try_default().await.context("Kubernetes client")?;
        Ok(SharedCert {
            api: kube::Api::namespaced(client, namespace),
            name: name.clone(),
            hosts: options.hosts.clone(),
            lifetime: options.cert_lifetime,
            webhook_config: options.webhook_config.clone(),
            served: std::sync::Mutex::default(),
        })
    }

    /// Rotates when due (or when there is nothing yet); returns a new TLS
    /// configuration when the Secret holds a certificate other than the
    /// one served.
    pub(crate) async fn sync(&self, counters: &Counters) -> anyhow::Result<Option<rustls::ServerConfig>> {
        use k8s_openapi::api::core::v1::Secret;
        use kube::api::PostParams;
        let current = self.api.get_opt(&self.name).await.with_context(|| format!("reading Secret {}", self.name))?;
        let field = |s: &Secret, k: &str| {
            s.data.as_ref().and_then(|d| d.get(k)).map(|b| String::from_utf8_lossy(&b.0).into_owned())
        };
        let due = current.as_ref().is_none_or(|s| {
            let after = s.metadata.annotations.as_ref().and_then(|a| a.get(ROTATE_AFTER));
            after.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()).is_none_or(|t| t <= chrono::Utc::now())
                || field(s, "tls.crt").is_none()
        });
        if due {
            let generated = generate(&self.hosts, self.lifetime)?;
            let previous_ca = current.as_ref().and_then(|s| field(s, "ca.crt")).and_then(|b| first_pem(&b));
            let bundle = format!("{}{}", generated.ca_pem, previous_ca.unwrap_or_default());
            let rotate_after = chrono::Utc::now() + self.lifetime * 2 / 3;
            let secret: Secret = serde_json::from_value(json!({
                "metadata": {
                    "name": self.name,
                    "resourceVersion": current.as_ref().and_then(|s| s.metadata.resource_version.clone()),
                    "annotations": {ROTATE_AFTER: rotate_after.to_rfc3339()},
                },
                "type": "kubernetes.io/tls",
                "stringData": {"ca.crt": bundle, "tls.crt": generated.cert_pem, "tls.key": generated.key_pem},
            }))?;
            let written = match &current {
                None => self.api.create(&PostParams::default(), &secret).await,
                Some(_) => self.api.replace(&self.name, &PostParams::default(), &secret).await,
            };
            match written {
                Ok(_) => {
                    if current.is_some() {
                        counters.rotations.inc();
                    }
                    info!(secret = %self.name, "wrote a new certificate to the TLS Secret");
                }
                // Another replica was first: use what it wrote.
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => return Err(e).context("writing the TLS Secret"),
            }
        }
        let Some(secret) = self.api.get_opt(&self.name).await? else { return Ok(None) };
        let (Some(ca), Some(cert), Some(key)) =
            (field(&secret, "ca.crt"), field(&secret, "tls.crt"), field(&secret, "tls.key"))
        else {
            return Ok(None);
        };
        if self.served.lock().expect("served lock").as_deref() == Some(cert.as_str()) {
            return Ok(None);
        }
        if let Some(name) = &self.webhook_config {
            publish_ca(name, &ca).await?;
        }
        use rustls::pki_types::pem::PemObject;
        let certs = CertificateDer::pem_slice_iter(cert.as_bytes()).collect::<Result<Vec<_>, _>>()?;
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes())?;
        let config = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(certs, key)?;
        *self.served.lock().expect("served lock") = Some(cert);
        Ok(Some(config))
    }

    pub(crate) async fn keep_current(self, tls: watch::Sender<Arc<rustls::ServerConfig>>, counters: Arc<Counters>) {
        let pause = (self.lifetime / 6).clamp(Duration::from_secs(1), Duration::from_secs(30));
        loop {
            tokio::time::sleep(pause).await;
            match self.sync(&counters).await {
                Ok(Some(config)) => {
                    let _ = tls.send(Arc::new(config));
                    info!(secret = %self.name, "serving the certificate of the TLS Secret");
                }
                Ok(None) => {}
                Err(e) => warn!(error = format!("{e:#}"), "keeping the TLS Secret's certificate current failed"),
            }
        }
    }
}

/// The PEM certificate blocks of `bundle`, each ending in a newline.
fn pem_blocks(bundle: &str) -> Vec<String> {
    let end = "-----END CERTIFICATE-----";
    let mut blocks = Vec::new();
    let mut rest = bundle;
    while let Some(at) = rest.find(end) {
        let block = rest[..at + end.len()].trim_start();
        blocks.push(format!("{block}\n"));
        rest = &rest[at + end.len()..];
    }
    blocks
}

/// The first PEM block of `bundle`.
fn first_pem(bundle: &str) -> Option<String> {
    pem_blocks(bundle).into_iter().next()
}

/// CAs a webhook's caBundle keeps: the newest, the one before (a
/// certificate of which may still be served), and one more for a replica
/// that has not reloaded yet.
const TRUSTED_CAS: usize = 3;

/// `ca_pem`'s CAs first, then those the webhook already trusts, at most
/// `TRUSTED_CAS`: a replica publishing a bundle it read before another
/// replica rotated never takes the newer CA away.
fn merged_bundle(ca_pem: &str, current: &str) -> String {
    let mut blocks = pem_blocks(ca_pem);
    for block in pem_blocks(current) {
        if !blocks.contains(&block) {
            blocks.push(block);
        }
    }
    blocks.truncate(TRUSTED_CAS);
    blocks.concat()
}

/// Adds `ca_pem` to the caBundle of every webhook of
/// MutatingWebhookConfiguration `name` (see `merged_bundle`). The patch
/// carries the resourceVersion read, so a concurrent change (another
/// replica publishing) fails it with a conflict, and it is read again:
/// both land.
async fn publish_ca(name: &str, ca_pem: &str) -> anyhow::Result<()> {
    use base64::Engine;
    use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
    use kube::api::{Api, Patch, PatchParams};
    let client = kube::Client::try_default().await.context("Kubernetes client")?;
    let api = Api::<MutatingWebhookConfiguration>::all(client);
    let mut attempt = 0;
    loop {
        let current = api.get(name).await.with_context(|| format!("MutatingWebhookConfiguration {name}"))?;
        let webhooks: Vec<serde_json::Value> = current
            .webhooks
            .unwrap_or_default()
            .iter()
            .map(|w| {
                let trusted = w.client_config.ca_bundle.as_ref().map(|b| String::from_utf8_lossy(&b.0).into_owned());
                let bundle = merged_bundle(ca_pem, trusted.as_deref().unwrap_or_default());
                let encoded = base64::engine::general_purpose::STANDARD.encode(bundle);
                json!({"name": w.name, "clientConfig": {"caBundle": encoded}})
            })
            .collect();
        // A strategic merge: webhooks merge by name, so only caBundle changes.
        let patch = json!({"metadata": {"resourceVersion": current.metadata.resource_version}, "webhooks": webhooks});
        match api.patch(name, &PatchParams::default(), &Patch::Strategic(patch)).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 && attempt < 5 => attempt += 1,
            Err(e) => return Err(e).with_context(|| format!("patching {name}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem(n: u8) -> String {
        format!("-----BEGIN CERTIFICATE-----\nCA{n}\n-----END CERTIFICATE-----\n")
    }

    #[test]
    fn a_stale_bundle_never_takes_the_newer_ca_away() {
        let published = [pem(2), pem(1)].concat();
        let stale = [pem(1), pem(0)].concat();
        let merged = merged_bundle(&stale, &published);
        assert!(merged.contains("CA2") && merged.contains("CA1"), "{merged}");
        assert_eq!(pem_blocks(&merged).len(), 3);
        let next = merged_bundle(&[pem(3), pem(2)].concat(), &merged);
        assert_eq!(pem_blocks(&next), [pem(3), pem(2), pem(1)], "newest first, at most three");
        assert_eq!(first_pem(&next), Some(pem(3)));
    }
}
