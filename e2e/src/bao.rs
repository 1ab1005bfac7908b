//! A small OpenBao admin client for seeding test data, using the root token
//! of the dev server that `e2e/env.sh` started.

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

#[derive(Clone)]
pub struct Bao {
    pub addr: String,
    token: String,
    http: reqwest::Client,
}

impl Bao {
    pub fn from_env() -> Result<Self> {
        Ok(Self {
            addr: std::env::var("BAO_ADDR").context("BAO_ADDR")?,
            token: std::env::var("BAO_TOKEN").context("BAO_TOKEN")?,
            http: {
                let _ = rustls::crypto::ring::default_provider().install_default();
                reqwest::Client::new()
            },
        })
    }

    /// A plain-HTTP server at `addr`, e.g. one a test starts itself.
    pub fn at(addr: &str, token: &str) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Self { addr: addr.to_owned(), token: token.to_owned(), http: reqwest::Client::new() }
    }

    /// The second dev server, which serves TLS with a CA of its own.
    pub fn tls_from_env() -> Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let ca = std::fs::read(std::env::var("BAO_TLS_CACERT").context("BAO_TLS_CACERT")?)?;
        let http = reqwest::Client::builder().tls_certs_only(reqwest::Certificate::from_pem_bundle(&ca)?).build()?;
        Ok(Self { addr: std::env::var("BAO_TLS_ADDR").context("BAO_TLS_ADDR")?, token: "root".into(), http })
    }

    /// PEM of the TLS server's CA.
    pub fn tls_ca_pem() -> Result<String> {
        Ok(std::fs::read_to_string(std::env::var("BAO_TLS_CACERT").context("BAO_TLS_CACERT")?)?)
    }

    /// How many requests to `path` OpenBao answered, from its audit log.
    pub fn audited_responses(path: &str) -> Result<usize> {
        let log = std::path::PathBuf::from(std::env::var("VAULTSYNC_STATE").context("VAULTSYNC_STATE")?)
            .join("logs/openbao-audit.log");
        let text = std::fs::read_to_string(&log).with_context(|| log.display().to_string())?;
        Ok(text
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|entry| entry["type"] == "response" && entry["request"]["path"] == path)
            .count())
    }

    /// Sends one request to the OpenBao API and returns its JSON body.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value> {
        let mut request =
            self.http.request(method.clone(), format!("{}/v1/{path}", self.addr)).header("X-Vault-Token", &self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("{method} {path}: {status}: {text}");
        }
        Ok(if text.is_empty() { Value::Null } else { serde_json::from_str(&text)? })
    }

    /// Sends one request inside an OpenBao namespace.
    pub async fn write_in_namespace(&self, namespace: &str, path: &str, body: Value) -> Result<Value> {
        let response = self
            .http
            .post(format!("{}/v1/{path}", self.addr))
            .header("X-Vault-Token", &self.token)
            .header("X-Vault-Namespace", namespace)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("POST {path} in namespace {namespace}: {status}: {text}");
        }
        Ok(if text.is_empty() { Value::Null } else { serde_json::from_str(&text)? })
    }

    pub async fn write(&self, path: &str, body: Value) -> Result<Value> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn read(&self, path: &str) -> Result<Value> {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn delete(&self, path: &str) -> Result<()> {
        self.call(reqwest::Method::DELETE, path, None).await.map(|_| ())
    }

    /// The role ID and a fresh secret ID of an AppRole role.
    pub async fn approle_credentials(&self, mount: &str, role: &str) -> Result<(String, String)> {
        let role_id = self.read(&format!("auth/{mount}/role/{role}/role-id")).await?["data"]["role_id"]
            .as_str()
            .context("no role_id")?
            .to_owned();
        let secret_id =
            self.write(&format!("auth/{mount}/role/{role}/secret-id"), json!({})).await?["data"]["secret_id"]
                .as_str()
                .context("no secret_id")?
                .to_owned();
        Ok((role_id, secret_id))
    }

    /// Writes a KV v2 secret at `secret/<path>`; returns its version.
    pub async fn kv2_put(&self, path: &str, data: Value) -> Result<u64> {
        let response = self.write(&format!("secret/data/{path}"), json!({"data": data})).await?;
        response["data"]["version"].as_u64().context("KV v2 write returned no version")
    }

    /// Writes a KV v1 secret at `kv1/<path>`.
    pub async fn kv1_put(&self, path: &str, data: Value) -> Result<()> {
        self.write(&format!("kv1/{path}"), data).await.map(|_| ())
    }

    /// Creates a policy and a token holding only it.
    pub async fn token_with_policy(&self, name: &str, policy: &str) -> Result<String> {
        self.write(&format!("sys/policies/acl/{name}"), json!({"policy": policy})).await?;
        let response = self.write("auth/token/create", json!({"policies": [name], "ttl": "1h"})).await?;
        Ok(response["auth"]["client_token"].as_str().context("no client_token")?.to_owned())
    }
}
