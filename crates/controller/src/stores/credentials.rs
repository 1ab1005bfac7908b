//! Turning a store's auth spec into Vault credentials: the server settings,
//! the login method and the material it reads from Secrets and
//! ServiceAccount tokens, with a fingerprint that tells when any of it
//! changed.

use std::sync::Arc;

use base64::Engine;
use futures::FutureExt;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, ServiceAccount};
use kube::api::PostParams;
use kube::{Api, ResourceExt};
use sha2::{Digest, Sha256};
use vaultsync_api::{CaProviderType, SecretKeySelector, ServiceAccountSelector, VaultAuth, VaultProvider};
use vaultsync_vault::{Auth, JwtSource, PasswordMethod, Sensitive, ServerConfig};

use super::resolve::{ResolvedStore, selector_matches};
use crate::context::Context;
use crate::error::{Error, Result, kube_reason};
use crate::vault_clients::identity::{ClientOwner, Credentials};

/// Whether a ClusterSecretStore's references without a namespace resolve in
/// each ExternalSecret's namespace, so its credentials differ by namespace.
pub(crate) fn refs_need_namespace(provider: &VaultProvider) -> bool {
    let auth = &provider.auth;
    let missing = |ns: &Option<String>| ns.is_none();
    provider.ca_provider.as_ref().is_some_and(|c| missing(&c.namespace))
        || auth.token_secret_ref.as_ref().is_some_and(|s| missing(&s.namespace))
        || auth.kubernetes.as_ref().is_some_and(|k| {
            k.service_account_ref.as_ref().is_some_and(|s| missing(&s.namespace))
                || k.secret_ref.as_ref().is_some_and(|s| missing(&s.namespace))
        })
        || auth.app_role.as_ref().is_some_and(|a| {
            missing(&a.secret_ref.namespace) || a.role_ref.as_ref().is_some_and(|s| missing(&s.namespace))
        })
        || auth.jwt.as_ref().is_some_and(|j| {
            j.kubernetes_service_account_token.as_ref().is_some_and(|t| missing(&t.service_account_ref.namespace))
                || j.secret_ref.as_ref().is_some_and(|s| missing(&s.namespace))
        })
        || auth.user_pass.as_ref().is_some_and(|u| missing(&u.secret_ref.namespace))
        || auth.ldap.as_ref().is_some_and(|l| missing(&l.secret_ref.namespace))
        || auth.cert.as_ref().is_some_and(|c| missing(&c.client_cert.namespace) || missing(&c.secret_ref.namespace))
}

/// Builds credentials for `store` on behalf of an object in
/// `using_namespace` (a ClusterSecretStore's references default to it).
pub(crate) async fn credentials(ctx: &Context, store: &ResolvedStore, using_namespace: &str) -> Result<Credentials> {
    let provider = &store.provider;
    let mut fingerprint = Sha256::new();
    fingerprint.update(serde_json::to_vec(provider).unwrap_or_default());
    // A namespaced store may only read from its own namespace, whatever its
    // references say; that is what keeps tenants apart.
    let ref_namespace = |requested: Option<&String>| -> String {
        match &store.namespace {
            Some(own) => own.clone(),
            None => requested.cloned().unwrap_or_else(|| using_namespace.to_owned()),
        }
    };

    let ca_bundle_pem = match (&provider.ca_bundle, &provider.ca_provider) {
        (Some(bundle), _) => {
            Some(base64::engine::general_purpose::STANDARD.decode(bundle.trim()).map_err(|_| {
                store.config_error("caBundle is not valid base64 (it holds the base64 of a PEM bundle)")
            })?)
        }
        (None, Some(ca)) => {
            let ns = ref_namespace(ca.namespace.as_ref());
            let pem = match ca.type_ {
                CaProviderType::Secret => read_secret_key(ctx, store, &ns, &ca.name, &ca.key, Use::Certificate).await?,
                CaProviderType::ConfigMap => {
                    let cm =
                        Api::<ConfigMap>::namespaced(ctx.client.clone(), &ns).get_opt(&ca.name).await?.ok_or_else(
                            || store.config_error(format!("caProvider ConfigMap {ns}/{} not found", ca.name)),
                        )?;
                    cm.data.and_then(|d| d.get(&ca.key).cloned()).ok_or_else(|| {
                        store.config_error(format!("ConfigMap {ns}/{} has no key {:?}", ca.name, ca.key))
                    })?
                }
            };
            Some(pem.into_bytes())
        }
        (None, None) => None,
    };
    if let Some(pem) = &ca_bundle_pem {
        fingerprint.update(pem);
    }

    // Mutual TLS: a client certificate the server's listener asks for.
    let client_identity_pem =
        match provider.tls.as_ref().and_then(|t| t.cert_secret_ref.as_ref().zip(t.key_secret_ref.as_ref())) {
            Some((cert_ref, key_ref)) => {
                let cert_ns = ref_namespace(cert_ref.namespace.as_ref());
                let certificate = read_selector(ctx, store, &cert_ns, cert_ref, "tls.crt").await?;
                let key_ns = ref_namespace(key_ref.namespace.as_ref());
                let key = read_selector(ctx, store, &key_ns, key_ref, "tls.key").await?;
                fingerprint.update(certificate.as_bytes());
                fingerprint.update(key.as_bytes());
                Some(identity_pem(&certificate, &key))
            }
            None => None,
        };

    let auth_spec = &provider.auth;
    let (auth, identity) = if let Some(sel) = &auth_spec.token_secret_ref {
        let ns = ref_namespace(sel.namespace.as_ref());
        let token = read_selector(ctx, store, &ns, sel, "token").await?;
        fingerprint.update(token.as_bytes());
        (Auth::Token(Sensitive::new(token)), format!("token:{ns}/{}", sel.name))
    } else if let Some(k8s) = &auth_spec.kubernetes {
        let (jwt, identity) =
            jwt_source(ctx, store, &ref_namespace, k8s.service_account_ref.as_ref(), k8s.secret_ref.as_ref(), None)
                .await?;
        fingerprint.update(identity.as_bytes());
        let auth = Auth::Kubernetes { mount_path: k8s.mount_path.clone(), role: k8s.role.clone(), jwt };
        (auth, format!("kubernetes:{identity}"))
    } else if let Some(approle) = &auth_spec.app_role {
        let role_id = match (&approle.role_id, &approle.role_ref) {
            (Some(id), _) => id.clone(),
            (None, Some(sel)) => {
                read_selector(ctx, store, &ref_namespace(sel.namespace.as_ref()), sel, "role-id").await?
            }
            (None, None) => return Err(store.config_error("appRole needs roleId or roleRef")),
        };
        let sel = &approle.secret_ref;
        let ns = ref_namespace(sel.namespace.as_ref());
        let secret_id = read_selector(ctx, store, &ns, sel, "secret-id").await?;
        fingerprint.update(role_id.as_bytes());
        fingerprint.update(secret_id.as_bytes());
        let auth = Auth::AppRole { mount_path: approle.path.clone(), role_id, secret_id: Sensitive::new(secret_id) };
        (auth, format!("approle:{ns}/{}", sel.name))
    } else if let Some(jwt_auth) = &auth_spec.jwt {
        let sa = jwt_auth.kubernetes_service_account_token.as_ref();
        let audiences = sa.and_then(|t| t.audiences.clone());
        let (jwt, identity) = jwt_source(
            ctx,
            store,
            &ref_namespace,
            sa.map(|t| &t.service_account_ref),
            jwt_auth.secret_ref.as_ref(),
            audiences,
        )
        .await?;
        fingerprint.update(identity.as_bytes());
        let role = jwt_auth.role.clone().unwrap_or_default();
        (Auth::Jwt { mount_path: jwt_auth.path.clone(), role, jwt }, format!("jwt:{identity}"))
    } else if let Some((method, path, username, sel)) = password_auth(auth_spec) {
        let ns = ref_namespace(sel.namespace.as_ref());
        let password = read_selector(ctx, store, &ns, sel, "password").await?;
        fingerprint.update(username.as_bytes());
        fingerprint.update(password.as_bytes());
        let identity = format!("{}:{username}:{ns}/{}", auth_name(method), sel.name);
        let auth = Auth::Password {
            method,
            mount_path: path.to_owned(),
            username: username.to_owned(),
            password: Sensitive::new(password),
        };
        (auth, identity)
    } else if let Some(cert) = &auth_spec.cert {
        let cert_ns = ref_namespace(cert.client_cert.namespace.as_ref());
        let certificate = read_selector(ctx, store, &cert_ns, &cert.client_cert, "tls.crt").await?;
        let key_ns = ref_namespace(cert.secret_ref.namespace.as_ref());
        let key = read_selector(ctx, store, &key_ns, &cert.secret_ref, "tls.key").await?;
        fingerprint.update(certificate.as_bytes());
        fingerprint.update(key.as_bytes());
        let identity_pem = identity_pem(&certificate, &key);
        let auth = Auth::Cert { mount_path: cert.path.clone(), role: cert.vault_role.clone(), identity_pem };
        (auth, format!("cert:{cert_ns}/{}", cert.client_cert.name))
    } else {
        return Err(store.config_error("spec.provider.vault.auth sets no method"));
    };

    let server = ServerConfig {
        address: provider.server.clone(),
        namespace: provider.namespace.clone(),
        login_namespace: auth_spec.namespace.clone(),
        client_identity_pem,
        headers: provider.headers.iter().flatten().map(|(k, v)| (k.clone(), v.clone())).collect(),
        ca_bundle_pem,
        read_window: ctx.config.read_window,
        retry: store.retry,
        ..ServerConfig::default()
    };
    fingerprint.update(format!("{:?}", store.retry).as_bytes());
    fingerprint.update(identity.as_bytes());
    let fingerprint = format!("{:x}", fingerprint.finalize());
    let per_namespace = store.namespace.is_none() && refs_need_namespace(provider);
    let owner = ClientOwner { store: store.id(), namespace: per_namespace.then(|| using_namespace.to_owned()) };
    Ok(Credentials { server, auth, fingerprint, owner })
}

/// A TLS identity: the certificate (its chain may follow), then its key.
fn identity_pem(certificate: &str, key: &str) -> Sensitive {
    Sensitive::new(format!("{}\n{}\n", certificate.trim_end(), key.trim_end()))
}

/// userPass or ldap: the method, its mount, the user's name and the
/// Secret of the password.
fn password_auth(auth: &VaultAuth) -> Option<(PasswordMethod, &str, &str, &SecretKeySelector)> {
    if let Some(u) = &auth.user_pass {
        return Some((PasswordMethod::UserPass, &u.path, &u.username, &u.secret_ref));
    }
    auth.ldap.as_ref().map(|l| (PasswordMethod::Ldap, l.path.as_str(), l.username.as_str(), &l.secret_ref))
}

fn auth_name(method: PasswordMethod) -> &'static str {
    match method {
        PasswordMethod::UserPass => "userpass",
        PasswordMethod::Ldap => "ldap",
    }
}

/// A JWT for Kubernetes or JWT auth: a fresh short-lived, audience-bound
/// ServiceAccount token per login, or a token kept in a Secret.
async fn jwt_source(
    ctx: &Context,
    store: &ResolvedStore,
    ref_namespace: &impl Fn(Option<&String>) -> String,
    service_account: Option<&ServiceAccountSelector>,
    secret: Option<&SecretKeySelector>,
    audiences_override: Option<Vec<String>>,
) -> Result<(JwtSource, String)> {
    if let Some(sa) = service_account {
        let namespace = ref_namespace(sa.namespace.as_ref());
        let audiences = audiences_override
            .or_else(|| sa.audiences.clone())
            .unwrap_or_else(|| vec![ctx.config.default_audience.clone()]);
        // Checked before anything is requested: a token the Kubernetes API
        // accepts must never be sent to a server the store author chose.
        ctx.api_audiences.check(&ctx.client, &audiences).await.map_err(|reason| Error::RefusedAudience {
            store: store.to_string(),
            service_account: format!("{namespace}/{}", sa.name),
            reason,
        })?;
        if let Some(selector) = &ctx.config.token_namespace_selector {
            let labels = Api::<Namespace>::all(ctx.client.clone()).get(&namespace).await?.labels().clone();
            if !selector_matches(selector, &labels) {
                return Err(Error::ServiceAccountNotAllowed {
                    store: store.to_string(),
                    service_account: format!("{namespace}/{}", sa.name),
                });
            }
        }
        let identity = format!("sa:{namespace}/{}:{}", sa.name, audiences.join(","));
        let api = Api::<ServiceAccount>::namespaced(ctx.client.clone(), &namespace);
        let client = ctx.client.clone();
        let name = sa.name.clone();
        let expiration = i64::try_from(ctx.config.token_expiration.as_secs()).unwrap_or(600);
        let source: JwtSource = Arc::new(move || {
            let api = api.clone();
            let name = name.clone();
            let audiences = audiences.clone();
            let namespace = namespace.clone();
            let client = client.clone();
            async move {
                let request = TokenRequest {
                    spec: Some(TokenRequestSpec {
                        audiences: Some(audiences),
                        expiration_seconds: Some(expiration),
                        ..TokenRequestSpec::default()
                    }),
                    ..TokenRequest::default()
                };
                let response =
                    api.create_token_request(&name, &PostParams::default(), &request).await.map_err(|e| {
                        format!("cannot get a token for ServiceAccount {namespace}/{name}: {}", kube_reason(&e))
                    })?;
                let token =
                    response.status.and_then(|s| s.token).map(Sensitive::new).ok_or_else(|| {
                        format!("TokenRequest for ServiceAccount {namespace}/{name} returned no token")
                    })?;
                crate::vault_clients::audiences::ensure_not_api_token(&client, &token).await?;
                Ok(token)
            }
            .boxed()
        });
        return Ok((source, identity));
    }
    if let Some(sel) = secret {
        let ns = ref_namespace(sel.namespace.as_ref());
        let token = read_selector(ctx, store, &ns, sel, "token").await?;
        let mut digest = Sha256::new();
        digest.update(token.as_bytes());
        let identity = format!("secret:{ns}/{}:{:x}", sel.name, digest.finalize());
        let token = Sensitive::new(token);
        let source: JwtSource = Arc::new(move || {
            let token = token.clone();
            async move { Ok(token) }.boxed()
        });
        return Ok((source, identity));
    }
    Err(store.config_error("set serviceAccountRef or secretRef for the token to log in with"))
}

async fn read_selector(
    ctx: &Context,
    store: &ResolvedStore,
    ns: &str,
    sel: &SecretKeySelector,
    default_key: &str,
) -> Result<String> {
    read_secret_key(ctx, store, ns, &sel.name, sel.key.as_deref().unwrap_or(default_key), Use::Credential).await
}

/// What a value read from a Secret is for: a login credential is sent to
/// the store's server, a CA certificate is public.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Use {
    Credential,
    Certificate,
}

async fn read_secret_key(
    ctx: &Context,
    store: &ResolvedStore,
    ns: &str,
    name: &str,
    key: &str,
    purpose: Use,
) -> Result<String> {
    let secret = Api::<Secret>::namespaced(ctx.client.clone(), ns)
        .get_opt(name)
        .await?
        .ok_or_else(|| store.config_error(format!("Secret {ns}/{name} not found")))?;
    // A Secret Kubernetes fills with an API token is never a Vault login
    // credential: a store author chooses where credentials are sent.
    let token_secret = secret.type_.as_deref() == Some("kubernetes.io/service-account-token")
        || secret.annotations().keys().any(|k| k.starts_with("kubernetes.io/service-account."));
    if token_secret && purpose == Use::Credential {
        return Err(store.config_error(format!(
            "Secret {ns}/{name} holds a Kubernetes ServiceAccount token; vaultsync never sends Kubernetes \
             credentials to a Vault server, and reads no login credential from such a Secret"
        )));
    }
    let bytes = secret
        .data
        .and_then(|mut d| d.remove(key))
        .ok_or_else(|| store.config_error(format!("Secret {ns}/{name} has no key {key:?}")))?;
    let text = String::from_utf8(bytes.0)
        .map_err(|_| store.config_error(format!("Secret {ns}/{name} key {key:?} is not UTF-8")))?;
    let text = text.trim().to_owned();
    if purpose == Use::Certificate {
        return Ok(text);
    }
    ctx.api_audiences
        .ensure_not_api_credential(&ctx.client, &text, &format!("Secret {ns}/{name} key {key:?}"))
        .await
        .map_err(|reason| store.config_error(reason))?;
    Ok(text)
}
