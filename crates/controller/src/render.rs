//! Reads the remote values an ExternalSecret names and turns them into the
//! Secret's data.

use std::collections::BTreeMap;

use vaultsync_api::{DecodingStrategy, ExternalSecretSpec, KvVersion, RemoteRef, VaultProvider};
use vaultsync_template::{Decoding, RemoteSecret, decode, extract, select_property};
use vaultsync_vault::{Client, split_mount};

use crate::error::{Error, Result};

/// The Secret data, key to bytes.
pub(crate) type SecretData = BTreeMap<String, Vec<u8>>;

/// Reads the remote secrets and renders the data.
pub(crate) async fn render(
    client: &Client,
    provider: &VaultProvider,
    store: &str,
    spec: &ExternalSecretSpec,
) -> Result<SecretData> {
    let kv = match provider.version {
        KvVersion::V1 => vaultsync_vault::KvVersion::V1,
        KvVersion::V2 => vaultsync_vault::KvVersion::V2,
    };
    // The client coalesces reads of one secret, so keys sharing a path
    // cost one request.
    let fetch = async |remote: &RemoteRef| -> Result<RemoteSecret> {
        let (mount, path) = split_mount(provider.path.as_deref(), &remote.key);
        let secret = client
            .read_kv(&mount, &path, kv, remote.version.as_deref())
            .await
            .map_err(|source| Error::Vault {
                store: store.to_owned(),
                source,
            })?;
        Ok(secret.data)
    };

    let mut data = SecretData::new();
    for from in &spec.data_from {
        if let Some(remote) = &from.extract {
            let secret = fetch(remote).await?;
            let render_error = |source| Error::Render {
                secret_key: "dataFrom.extract".into(),
                key: remote.key.clone(),
                source,
            };
            for (key, value) in
                extract(&secret, remote.property.as_deref()).map_err(render_error)?
            {
                let value = decode(value, decoding(remote)).map_err(render_error)?;
                data.insert(key, value);
            }
        }
    }
    // Explicit keys win over extracted ones, as in ESO.
    for item in &spec.data {
        let remote = &item.remote_ref;
        let secret = fetch(remote).await?;
        let render_error = |source| Error::Render {
            secret_key: item.secret_key.clone(),
            key: remote.key.clone(),
            source,
        };
        let value = select_property(&secret, remote.property.as_deref()).map_err(render_error)?;
        data.insert(
            item.secret_key.clone(),
            decode(value, decoding(remote)).map_err(render_error)?,
        );
    }
    Ok(data)
}

fn decoding(remote: &RemoteRef) -> Decoding {
    match remote.decoding_strategy.unwrap_or_default() {
        DecodingStrategy::None => Decoding::None,
        DecodingStrategy::Base64 => Decoding::Base64,
        DecodingStrategy::Base64Url => Decoding::Base64Url,
        DecodingStrategy::Auto => Decoding::Auto,
    }
}
