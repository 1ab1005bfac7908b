//! No value in error text: templates built to make the API server (or a
//! decoder, a property lookup, a template function) quote one character of
//! a Vault value per ExternalSecret leave no character in status, Events or
//! the operator's log. Whoever may read those (`view`) must not rebuild a
//! value they may not read from its Secret.

use std::time::Duration;

use k8s_openapi::api::core::v1::Event;
use kube::Api;
use kube::api::ListParams;
use serde_json::json;
use vaultsync_e2e::{TestEnv, eventually, external_secret};

/// A value of 12 characters that Go's JSON parser would each quote after a
/// `{` (letters and digits: none is `"`, `}` or white space).
fn seeded_value() -> String {
    const CHARS: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    (0..12).map(|_| CHARS[usize::from(rand::random::<u8>()) % CHARS.len()] as char).collect()
}

#[tokio::test]
async fn hostile_templates_leave_no_character_of_a_value_in_status_events_or_logs() -> anyhow::Result<()> {
    let env = TestEnv::new("leaks").await?;
    env.token_store("vault", "root", json!({})).await?;
    let value = seeded_value();
    env.record_secret(&value);
    let path = format!("{}/app", env.prefix);
    // `b64` is no base64 (`!`), `p` no JSON: each one's error must not
    // quote it.
    env.bao.kv2_put(&path, json!({"p": value, "b64": format!("{value}!")})).await?;
    let p = json!({"secretKey": "p", "remoteRef": {"key": path, "property": "p"}});

    let mut names = Vec::new();
    // The reported attack: `{` and one character make Go's JSON parser say
    // "invalid character 'x' looking for beginning of object key string".
    for n in 0..value.len() {
        let name = format!("char-{n}");
        let mut es = external_secret(&name, "vault", json!({"data": [p]}));
        es["spec"]["target"]["template"] = json!({
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": format!(r#"{{{{ print "{{" (index (splitList "" .p) {n}) }}}}"#)},
        });
        env.apply(es).await?;
        names.push(name);
    }
    // The same through a label the API server refuses (it quotes the value).
    let mut es = external_secret("label", "vault", json!({"data": [p]}));
    es["spec"]["target"]["template"] = json!({"metadata": {"labels": {"l": "{{ .p }}!"}}});
    env.apply(es).await?;
    // Base64 decoding of what is no base64.
    env.apply(external_secret(
        "base64",
        "vault",
        json!({"data": [{"secretKey": "b", "remoteRef": {"key": path, "property": "b64", "decodingStrategy": "Base64"}}]}),
    ))
    .await?;
    // A JSON property of a value that is no JSON: a path into it, an
    // extract of it, and fromJson in a template.
    env.apply(external_secret(
        "property",
        "vault",
        json!({"data": [{"secretKey": "x", "remoteRef": {"key": path, "property": "p.x"}}]}),
    ))
    .await?;
    env.apply(external_secret("extract", "vault", json!({"dataFrom": [{"extract": {"key": path, "property": "p"}}]})))
        .await?;
    let mut es = external_secret("fromjson", "vault", json!({"data": [p]}));
    es["spec"]["target"]["template"] = json!({"data": {"x": "{{ (fromJson .p).a }}"}});
    env.apply(es).await?;
    names.extend(["label", "base64", "property", "extract", "fromjson"].map(String::from));

    for name in &names {
        env.wait_ready(name, "False").await?;
    }
    // The failure is still told: its kind, the field, a fixed explanation.
    let (reason, message) = env.wait_ready("char-0", "False").await?;
    assert_eq!(reason, "SecretSyncedError");
    assert!(
        message.contains("HTTP 422 Invalid")
            && message.contains("data[.dockerconfigjson]: .dockerconfigjson must be valid JSON of a docker config"),
        "{message}"
    );
    let (_, message) = env.wait_ready("label", "False").await?;
    assert!(message.contains("label \"l\""), "{message}");
    // Every object has had its Warning Event before the texts are read.
    for name in &names {
        env.wait_warning(name).await?;
    }
    // The operator logs a failure as it reports it; give the log a moment.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut texts = Vec::new();
    for es in env.external_secrets().list(&ListParams::default()).await? {
        texts.push((format!("status of {}", es.metadata.name.unwrap_or_default()), serde_json::to_string(&es.status)?));
    }
    let events = Api::<Event>::namespaced(env.client.clone(), &env.namespace).list(&ListParams::default()).await?;
    for event in events {
        texts.push((
            format!("Event {}", event.metadata.name.clone().unwrap_or_default()),
            serde_json::to_string(&event)?,
        ));
    }
    let log = std::fs::read_to_string(format!("{}/logs/operator.log", std::env::var("VAULTSYNC_STATE")?))?;
    let ours: Vec<&str> = log.lines().filter(|line| line.contains(&env.namespace)).collect();
    assert!(!ours.is_empty(), "the operator logged nothing about namespace {}", env.namespace);
    texts.extend(ours.iter().map(|line| ("operator log".to_owned(), (*line).to_owned())));

    for (what, text) in &texts {
        assert!(!text.contains(&value), "{what} holds the seeded value");
        assert!(!text.contains("invalid character"), "{what} quotes the JSON parser: {text}");
        assert!(!text.contains("<secret contents redacted>"), "{what} copies the API server's message: {text}");
        for c in value.chars() {
            // Go's `invalid character 'x'`, or a quoted one-character value.
            for quoted in [format!("'{c}'"), format!("\"{{{c}\""), format!("\\\"{{{c}\\\"")] {
                assert!(!text.contains(&quoted), "{what} quotes a character of the value ({quoted}): {text}");
            }
        }
    }
    // The Secrets were never written: nothing else could be read there.
    eventually(Duration::from_secs(5), || async { Ok(env.secrets().get_opt("char-0").await?.is_none()) }).await?;
    env.cleanup().await;
    Ok(())
}
