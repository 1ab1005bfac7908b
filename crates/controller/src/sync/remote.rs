//! Reads the remote values an ExternalSecret names and turns them into the
//! Secret's data.

use std::collections::BTreeMap;

use vaultsync_api::{
    ConversionStrategy, DecodingStrategy, ExternalSecretSpec, KvVersion, MetadataPolicy, NullBytePolicy, RemoteRef,
    Rewrite, RewriteMergeConflictPolicy, RewriteMergePriorityPolicy, RewriteMergeStrategy, SecretStoreRef,
    VaultProvider,
};
use vaultsync_template::{
    Decoding, Merge, MergeStrategy, RemoteSecret, RewriteStep, decode, extract, path_to_key, rewrite_keys,
    select_property, unescape_unicode,
};
use vaultsync_vault::{Freshness, locate, locate_folder};

use crate::error::{Error, Result};
use crate::secret_data::SecretData;
use crate::vault_clients::reads::KvRead;

/// The rendered data, and what could not be rendered because its remote
/// source is gone.
#[derive(Debug, Default)]
pub(crate) struct Rendered {
    pub data: SecretData,
    /// Errors about remote secrets or properties that no longer exist, kept
    /// only when `tolerate_gone` (deletionPolicy Delete or Merge).
    pub gone: Vec<Error>,
}

/// A store an ExternalSecret reads from, with what reads its secrets.
#[derive(Clone, Copy)]
pub(crate) struct KvSource<'a> {
    pub client: &'a dyn KvRead,
    pub provider: &'a VaultProvider,
    /// The store, as named in errors.
    pub store: &'a str,
}

impl KvSource<'_> {
    fn kv(&self) -> vaultsync_vault::KvVersion {
        match self.provider.version {
            KvVersion::V1 => vaultsync_vault::KvVersion::V1,
            KvVersion::V2 => vaultsync_vault::KvVersion::V2,
        }
    }

    fn error(&self, source: vaultsync_vault::Error) -> Error {
        Error::Vault { store: self.store.to_owned(), source }
    }
}

/// The stores an ExternalSecret reads from: `spec.secretStoreRef` and the
/// ones its entries name for themselves (`sourceRef.storeRef`).
#[derive(Default)]
pub(crate) struct Sources<'a> {
    /// `spec.secretStoreRef`, if set.
    pub default: Option<&'a SecretStoreRef>,
    pub stores: Vec<(&'a SecretStoreRef, KvSource<'a>)>,
}

impl<'a> Sources<'a> {
    /// The store one entry reads from: its own, else `secretStoreRef`.
    fn of(&self, own: Option<&SecretStoreRef>, field: &str) -> Result<KvSource<'a>> {
        let Some(wanted) = own.or(self.default) else {
            return Err(Error::Target(format!(
                "{field} reads from a store: set spec.secretStoreRef, or the entry's sourceRef.storeRef"
            )));
        };
        self.stores.iter().find(|(r, _)| *r == wanted).map(|(_, source)| *source).ok_or_else(|| {
            Error::Internal(format!("store {:?} {} was not resolved before reading (a bug)", wanted.kind, wanted.name))
        })
    }
}

/// Reads the remote secrets and renders the data. With `tolerate_gone`, a
/// remote secret or property that does not exist leaves its keys out
/// instead of failing the whole render. `freshness` says whether reads
/// may be shared with ones already made (see [`Freshness`]). `generated`
/// holds what each `dataFrom[].sourceRef.generatorRef` entry's generator
/// issued, by index.
pub(crate) async fn render(
    sources: &Sources<'_>,
    spec: &ExternalSecretSpec,
    tolerate_gone: bool,
    freshness: Freshness,
    generated: &BTreeMap<usize, SecretData>,
) -> Result<Rendered> {
    // The client coalesces reads of one secret, so keys sharing a path
    // cost one request.
    let fetch = async |source: KvSource<'_>, remote: &RemoteRef, field: &'static str| -> Result<RemoteSecret> {
        let KvSource { client, provider, .. } = source;
        let kv = source.kv();
        // The key is checked before any request: it must name a secret
        // inside a KV mount and nothing else.
        let location = locate(provider.path.as_deref(), &remote.key, field).map_err(|e| source.error(e))?;
        let (mount, path) = (location.mount, location.path);
        let secret = match remote.metadata_policy.unwrap_or_default() {
            MetadataPolicy::None => client.read_kv(&mount, &path, kv, remote.version.as_deref(), freshness).await,
            MetadataPolicy::Fetch if kv == vaultsync_vault::KvVersion::V2 => {
                client.read_custom_metadata(&mount, &path).await
            }
            MetadataPolicy::Fetch => Err(vaultsync_vault::Error::InvalidRequest(format!(
                "metadataPolicy Fetch needs a KV v2 mount, and {mount} is KV v1"
            ))),
        }
        .map_err(|e| source.error(e))?;
        Ok(secret.data)
    };

    let mut rendered = Rendered::default();
    let mut keep_or_fail = |result: Result<()>| -> Result<()> {
        match result {
            Err(error) if tolerate_gone && is_gone(&error) => {
                rendered.gone.push(error);
                Ok(())
            }
            other => other,
        }
    };
    let mut extracted = SecretData::new();
    for (index, from) in spec.data_from.iter().enumerate() {
        let field = format!("dataFrom[{index}]");
        let render_error = |key: &str| {
            let field = field.clone();
            let key = key.to_owned();
            move |source| Error::Render { secret_key: field, key, source }
        };
        let mut produced = SecretData::new();
        if from.generator().is_some() {
            produced = generated.get(&index).cloned().unwrap_or_default();
        }
        if let Some(remote) = &from.extract {
            let source = sources.of(from.store(), &field)?;
            keep_or_fail(
                async {
                    let secret = fetch(source, remote, "dataFrom.extract.key").await?;
                    for (key, value) in
                        extract(&secret, remote.property.as_deref()).map_err(render_error(&remote.key))?
                    {
                        let key = match remote.conversion_strategy.unwrap_or_default() {
                            ConversionStrategy::Default => key,
                            ConversionStrategy::Unicode => unescape_unicode(&key),
                        };
                        let value = decode(value, decoding(remote)).map_err(render_error(&remote.key))?;
                        refuse_null_bytes(remote.null_byte_policy, &key, &value)?;
                        produced.insert(key, value);
                    }
                    Ok(())
                }
                .await,
            )?;
        }
        if let Some(find) = &from.find {
            let source = sources.of(from.store(), &field)?;
            let (client, kv) = (source.client, source.kv());
            let location =
                locate_folder(source.provider.path.as_deref(), find.path.as_deref().unwrap_or_default(), "find.path")
                    .map_err(|e| source.error(e))?;
            let (mount, prefix) = (location.mount, location.path);
            let name = find
                .name
                .as_ref()
                .map(|n| {
                    regex::Regex::new(&n.regexp).map_err(|e| {
                        render_error(&prefix)(vaultsync_template::Error::BadRegexp {
                            field: "find.name.regexp",
                            pattern: n.regexp.clone(),
                            reason: e.to_string(),
                        })
                    })
                })
                .transpose()?;
            let paths = client.list_secrets(&mount, &prefix, kv).await.map_err(|e| source.error(e))?;
            let strategy = to_decoding(find.decoding_strategy);
            // As in ESO, a name regexp wins over tags.
            let tags = (name.is_none() && !find.tags.is_empty()).then_some(&find.tags);
            if tags.is_some() && kv != vaultsync_vault::KvVersion::V2 {
                return Err(source.error(vaultsync_vault::Error::InvalidRequest(format!(
                    "find.tags selects by KV v2 custom_metadata, and mount {mount} is KV v1"
                ))));
            }
            for path in paths.iter().filter(|p| name.as_ref().is_none_or(|re| re.is_match(p))) {
                if let Some(tags) = tags {
                    let metadata = client.read_custom_metadata(&mount, path).await.map_err(|e| source.error(e))?;
                    let tagged = tags.iter().all(|(k, v)| metadata.data.get(k).and_then(|m| m.as_str()) == Some(v));
                    if !tagged {
                        continue;
                    }
                }
                let secret = client.read_kv(&mount, path, kv, None, freshness).await.map_err(|e| source.error(e))?;
                let value = select_property(&secret.data, None).map_err(render_error(path))?;
                let value = decode(value, strategy).map_err(render_error(path))?;
                // As in ESO, a find's conversion applies only without rewrites.
                let key = match find.conversion_strategy.unwrap_or_default() {
                    ConversionStrategy::Unicode if from.rewrite.is_empty() => unescape_unicode(&path_to_key(path)),
                    _ => path_to_key(path),
                };
                refuse_null_bytes(find.null_byte_policy, &key, &value)?;
                produced.insert(key, value);
            }
        }
        extracted.extend(rewritten(produced, rewrite_steps(&from.rewrite)).await?.map_err(render_error("rewrite"))?);
    }
    // Explicit keys win over extracted ones, as in ESO.
    let mut explicit = SecretData::new();
    for (index, item) in spec.data.iter().enumerate() {
        let source = sources.of(item.store(), &format!("data[{index}]"))?;
        keep_or_fail(
            async {
                let remote = &item.remote_ref;
                let secret = fetch(source, remote, "remoteRef.key").await?;
                let render_error =
                    |source| Error::Render { secret_key: item.secret_key.clone(), key: remote.key.clone(), source };
                let value = select_property(&secret, remote.property.as_deref()).map_err(render_error)?;
                let value = decode(value, decoding(remote)).map_err(render_error)?;
                refuse_null_bytes(remote.null_byte_policy, &item.secret_key, &value)?;
                explicit.insert(item.secret_key.clone(), value);
                Ok(())
            }
            .await,
        )?;
    }
    extracted.extend(explicit);
    rendered.data = extracted;
    Ok(rendered)
}

/// Rewrites one entry's keys. Templates (`transform`) are rendered on the
/// blocking pool: CPU work bounded only by their time budget must not hold
/// up the async workers, and so every other ExternalSecret's sync.
async fn rewritten(
    produced: SecretData,
    steps: Vec<RewriteStep>,
) -> Result<std::result::Result<SecretData, vaultsync_template::Error>> {
    if !steps.iter().any(|step| matches!(step, RewriteStep::Transform { .. })) {
        return Ok(rewrite_keys(produced, &steps));
    }
    tokio::task::spawn_blocking(move || rewrite_keys(produced, &steps)).await.map_err(|_| {
        Error::Internal("rewriting keys stopped inside vaultsync (a bug, or the operator is stopping)".into())
    })
}

/// `dataFrom[].rewrite` as the template crate's steps. An entry with none
/// of regexp, transform or merge (the CRD refuses it) does nothing, as in
/// ESO; with more than one, ESO's precedence: merge, regexp, transform.
fn rewrite_steps(rewrite: &[Rewrite]) -> Vec<RewriteStep> {
    rewrite
        .iter()
        .filter_map(|r| {
            if let Some(merge) = &r.merge {
                return Some(RewriteStep::Merge(Merge {
                    into: merge.into.clone(),
                    priority: merge.priority.clone(),
                    ignore_missing_priority: merge.priority_policy == RewriteMergePriorityPolicy::IgnoreNotFound,
                    ignore_conflicts: merge.conflict_policy == RewriteMergeConflictPolicy::Ignore,
                    strategy: match merge.strategy {
                        RewriteMergeStrategy::Extract => MergeStrategy::Extract,
                        RewriteMergeStrategy::Json => MergeStrategy::Json,
                    },
                }));
            }
            if let Some(regexp) = &r.regexp {
                return Some(RewriteStep::Regexp { source: regexp.source.clone(), target: regexp.target.clone() });
            }
            r.transform.as_ref().map(|t| RewriteStep::Transform { template: t.template.clone() })
        })
        .collect()
}

/// A remote secret or property that does not exist (as opposed to one we
/// may not read, or cannot reach).
fn is_gone(error: &Error) -> bool {
    matches!(
        error,
        Error::Vault { source: vaultsync_vault::Error::NotFound { .. }, .. }
            | Error::Render { source: vaultsync_template::Error::PropertyNotFound { .. }, .. }
    )
}

/// `nullBytePolicy: Fail`: a decoded value must hold no NUL byte.
fn refuse_null_bytes(policy: Option<NullBytePolicy>, key: &str, value: &[u8]) -> Result<()> {
    if policy == Some(NullBytePolicy::Fail) && value.contains(&0) {
        return Err(Error::NullByte { key: key.to_owned() });
    }
    Ok(())
}

fn decoding(remote: &RemoteRef) -> Decoding {
    to_decoding(remote.decoding_strategy)
}

pub(crate) fn to_decoding(strategy: Option<DecodingStrategy>) -> Decoding {
    match strategy.unwrap_or_default() {
        DecodingStrategy::None => Decoding::None,
        DecodingStrategy::Base64 => Decoding::Base64,
        DecodingStrategy::Base64Url => Decoding::Base64Url,
        DecodingStrategy::Auto => Decoding::Auto,
    }
}
