//! Tokens for Vault only. A store author chooses the Vault address and the
//! audiences of the ServiceAccount tokens vaultsync requests for Kubernetes
//! and JWT auth, so a store naming the API server's own audience and a
//! server the author runs would receive a token that works against the
//! Kubernetes API. vaultsync therefore refuses, before requesting anything,
//! every audience the API server accepts, and checks each token it was
//! issued with a TokenReview before sending it anywhere: a token the API
//! server accepts is dropped.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use kube::Api;
use kube::api::PostParams;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use tracing::{debug, info};
use vaultsync_vault::Sensitive;

/// Names under which clusters commonly know their API server; refused even
/// when the cluster does not say so itself (and by `vaultsync migrate
/// check`, which has no cluster to ask).
pub const WELL_KNOWN_API_AUDIENCES: [&str; 4] = [
    "https://kubernetes.default.svc",
    "https://kubernetes.default.svc.cluster.local",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

const WELL_KNOWN: [&str; 4] = WELL_KNOWN_API_AUDIENCES;

/// Why a token must not be requested for `requested`, given which
/// audiences the API server accepts (`is_api`): none at all or a blank one
/// (a TokenRequest without audiences yields a token for the API server),
/// or one the API server accepts. Pure, so that `vaultsync migrate check`
/// applies the operator's very rule, with its words, to manifests.
pub fn refused_audience(requested: &[String], is_api: impl Fn(&str) -> bool) -> Option<String> {
    if requested.is_empty() || requested.iter().any(|a| a.trim().is_empty()) {
        return Some(
            "an empty audience list (or an empty audience) asks for a token the Kubernetes API server accepts; \
             name the audience Vault's role expects, e.g. `vault`"
                .into(),
        );
    }
    requested.iter().find(|a| is_api(a)).map(|audience| {
        format!(
            "audience {audience:?} is accepted by the Kubernetes API server itself, so the token would let \
             whoever runs the Vault server act as that ServiceAccount in the cluster; vaultsync requests \
             tokens for Vault only: use an audience that only Vault accepts, e.g. `vault`"
        )
    })
}

/// The audiences the Kubernetes API server accepts, learned once.
#[derive(Default)]
pub(crate) struct ApiAudiences {
    learned: Mutex<Option<BTreeSet<String>>>,
    /// Digests of credentials read from Secrets that a TokenReview found
    /// not to be API tokens, and when: stores resolve their credentials on
    /// every sync, and one review per credential and interval is enough.
    cleared: std::sync::Mutex<HashMap<[u8; 32], Instant>>,
}

/// How long a credential a TokenReview cleared stays cleared; a legacy
/// token does not become valid later, but a Secret's content can change
/// without its digest being seen again.
const CLEARED_FOR: Duration = Duration::from_secs(600);

impl ApiAudiences {
    /// Refuses a token request for `requested` audiences when any of them
    /// is one the API server accepts, or when there are none (a TokenRequest
    /// without audiences yields a token for the API server).
    pub async fn check(&self, client: &kube::Client, requested: &[String]) -> Result<(), String> {
        // What needs no cluster is refused before asking it.
        if let Some(reason) = refused_audience(requested, |_| false) {
            return Err(reason);
        }
        let api = self.get(client).await;
        refused_audience(requested, |a| api.contains(a)).map_or(Ok(()), Err)
    }

    /// Refuses a credential read from a Secret (a JWT, a Vault token, a
    /// secret id) that the Kubernetes API server accepts as a bearer token:
    /// a store author chooses where it is sent. Only values shaped like a
    /// JWT are reviewed, as only those can be API tokens; a review that
    /// cannot be made refuses the credential.
    pub async fn ensure_not_api_credential(
        &self,
        client: &kube::Client,
        credential: &str,
        what: &str,
    ) -> Result<(), String> {
        if !looks_like_jwt(credential) {
            return Ok(());
        }
        let digest: [u8; 32] = Sha256::digest(credential.as_bytes()).into();
        {
            let mut cleared = self.cleared.lock().expect("cleared credentials lock");
            cleared.retain(|_, at| at.elapsed() < CLEARED_FOR);
            if cleared.contains_key(&digest) {
                return Ok(());
            }
        }
        match review(client, &Sensitive::new(credential)).await {
            Ok(None) => {
                self.cleared.lock().expect("cleared credentials lock").insert(digest, Instant::now());
                Ok(())
            }
            Ok(Some(_)) => Err(format!(
                "{what} holds a token the Kubernetes API server accepts; vaultsync never sends Kubernetes \
                 credentials to a Vault server. Use a token issued for Vault's audience"
            )),
            Err(reason) => Err(format!(
                "cannot confirm with a TokenReview that {what} is not a Kubernetes API token ({reason}); it was not sent"
            )),
        }
    }

    async fn get(&self, client: &kube::Client) -> BTreeSet<String> {
        let mut learned = self.learned.lock().await;
        if let Some(known) = learned.as_ref() {
            return known.clone();
        }
        let (audiences, complete) = learn(client).await;
        // Learned from the cluster: keep it. Otherwise try again next time;
        // the well-known names and the per-token review still protect.
        if complete {
            *learned = Some(audiences.clone());
        }
        audiences
    }
}

/// The well-known names, the audiences the API server found in the
/// operator's own token, and the issuer of its discovery document (the
/// default API audience). `true` when the cluster answered.
async fn learn(client: &kube::Client) -> (BTreeSet<String>, bool) {
    let mut audiences: BTreeSet<String> = WELL_KNOWN.iter().map(|s| (*s).to_owned()).collect();
    let mut complete = false;
    if let Some(token) = own_token().await {
        match review(client, &token).await {
            Ok(Some(found)) => {
                audiences.extend(found);
                complete = true;
            }
            Ok(None) => debug!("the API server does not authenticate the operator's own token by audience"),
            Err(reason) => info!(%reason, "cannot review the operator's own token to learn the API audiences"),
        }
    }
    match issuer(client).await {
        Ok(issuer) => {
            audiences.insert(issuer);
            complete = true;
        }
        Err(reason) => debug!(%reason, "no service-account issuer discovery document"),
    }
    info!(audiences = ?audiences, "audiences the Kubernetes API accepts; ServiceAccount tokens are never requested for them");
    (audiences, complete)
}

/// The bearer token this process talks to the API server with, if any (a
/// client-certificate kubeconfig has none).
async fn own_token() -> Option<Sensitive> {
    let config = kube::Config::infer().await.ok()?;
    if let Some(token) = &config.auth_info.token {
        return Some(Sensitive::new(token.expose_secret()));
    }
    let file = config.auth_info.token_file.as_ref()?;
    let token = tokio::fs::read_to_string(file).await.ok()?;
    Some(Sensitive::new(token.trim()))
}

/// Three dot-separated base64url parts: the shape of every token the API
/// server could accept (ServiceAccount tokens, legacy or bound, are JWTs).
fn looks_like_jwt(value: &str) -> bool {
    let parts: Vec<&str> = value.split('.').collect();
    parts.len() == 3
        && parts[..2].iter().all(|part| !part.is_empty())
        && parts
            .iter()
            .all(|part| part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'='))
}

/// Reviews `token` against the API server's own audiences: `Some` with
/// the audiences it is valid for when the API server accepts it.
async fn review(client: &kube::Client, token: &Sensitive) -> Result<Option<Vec<String>>, String> {
    let request = TokenReview {
        spec: TokenReviewSpec { token: token.expose().to_owned(), audiences: None },
        ..TokenReview::default()
    };
    let answer = Api::<TokenReview>::all(client.clone())
        .create(&PostParams::default(), &request)
        .await
        .map_err(|e| crate::error::kube_reason(&e))?;
    let status = answer.status.unwrap_or_default();
    Ok(status.authenticated.unwrap_or(false).then(|| status.audiences.unwrap_or_default()))
}

/// Confirms, before a freshly issued token leaves the operator, that the
/// API server does not accept it. A review that cannot be made counts as
/// a refusal: the token is not sent.
pub(crate) async fn ensure_not_api_token(client: &kube::Client, token: &Sensitive) -> Result<(), String> {
    match review(client, token).await {
        Ok(None) => Ok(()),
        Ok(Some(audiences)) => Err(format!(
            "the issued token is accepted by the Kubernetes API server (audiences {audiences:?}); it was not sent to \
             Vault. Use an audience that only Vault accepts"
        )),
        Err(reason) => Err(format!(
            "cannot confirm with a TokenReview that the issued token is not accepted by the Kubernetes API \
             server ({reason}); it was not sent to Vault"
        )),
    }
}

async fn issuer(client: &kube::Client) -> Result<String, String> {
    let request =
        http::Request::get("/.well-known/openid-configuration").body(Vec::new()).map_err(|e| e.to_string())?;
    let text = client.request_text(request).await.map_err(|e| crate::error::kube_reason(&e))?;
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["issuer"].as_str().map(str::to_owned))
        .filter(|issuer| !issuer.is_empty())
        .ok_or_else(|| "the discovery document names no issuer".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reviews_only_what_could_be_an_api_token() {
        assert!(looks_like_jwt("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"));
        assert!(looks_like_jwt("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."));
        assert!(!looks_like_jwt("hvs.CAESIJ0"));
        assert!(!looks_like_jwt("s.abcdef"));
        assert!(!looks_like_jwt("a.b.c.d"));
        assert!(!looks_like_jwt("9f2c-1e8a-secret-id"));
    }

    #[tokio::test]
    async fn refuses_empty_and_well_known_audiences_without_asking_a_cluster() {
        let audiences = ApiAudiences::default();
        // Pre-filled as if learned, so no cluster is needed.
        *audiences.learned.lock().await =
            Some(WELL_KNOWN.iter().map(|s| (*s).to_owned()).chain(["https://issuer.example".to_owned()]).collect());
        let client = test_client();
        assert!(audiences.check(&client, &[]).await.is_err());
        assert!(audiences.check(&client, &[" ".into()]).await.is_err());
        let refused = audiences.check(&client, &["vault".into(), "https://issuer.example".into()]).await;
        assert!(refused.unwrap_err().contains("\"https://issuer.example\""));
        assert!(audiences.check(&client, &["https://kubernetes.default.svc".into()]).await.is_err());
        assert!(audiences.check(&client, &["vault".into()]).await.is_ok());
    }

    fn test_client() -> kube::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = kube::Config::new("https://127.0.0.1:1".parse().expect("url"));
        kube::Client::try_from(config).expect("client")
    }
}
