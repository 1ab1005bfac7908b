//! The sidecar rewrites its files atomically when Vault's value changes
//! and tells the app: a signal, a command, a POST to a reload URL.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use vaultsync_e2e::{TestEnv, eventually, pod, report, vaultsync_binary};

use super::agent::{pod_token, vault_role};

#[tokio::test]
async fn the_sidecar_rewrites_files_atomically_and_notifies_the_app() -> anyhow::Result<()> {
    let env = TestEnv::new("sidecar").await?;
    env.create_app_service_account().await?;
    let first = env.secret_value("sidecar-1");
    let path = format!("{}/web", env.prefix);
    env.bao.kv2_put(&path, json!({"v": first})).await?;
    vault_role(&env, &env.prefix, &env.namespace).await?;
    // No webhook needed here: the Pod is stored as the webhook stores it,
    // and the sidecar's configuration is what it would carry.
    let stored: Pod = Api::<Pod>::namespaced(env.client.clone(), &env.namespace)
        .create(
            &PostParams::default(),
            &serde_json::from_value(pod("side", json!({}), json!({"name": "a", "image": "registry.example.com/a:1"})))?,
        )
        .await?;
    let dir = std::env::temp_dir().join(format!("sidecar-{}", env.prefix));
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets)?;
    let token = pod_token(&env, &stored, &dir).await?;
    // A process to notify: it records each SIGUSR1 it receives.
    let signals = dir.join("signals");
    let app = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import signal,time\nsignal.signal(signal.SIGUSR1, lambda *a: open({:?},'a').write('usr1\\n'))\nwhile True: time.sleep(1)",
            signals.display().to_string()
        ))
        .kill_on_drop(true)
        .spawn()?;
    // An app's reload endpoint: counts the POSTs it gets.
    let reload = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let reload_url = format!("http://{}/-/reload", reload.local_addr()?);
    let posts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = posts.clone();
    let _endpoint = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut stream, _)) = reload.accept().await {
            let mut request = vec![0u8; 4096];
            let n = stream.read(&mut request).await.unwrap_or(0);
            if request[..n].starts_with(b"POST /-/reload ") {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n").await;
        }
    });
    let commanded = dir.join("commanded");
    let config = json!({
        "address": env.bao.addr, "authPath": "kubernetes", "role": env.prefix,
        "tokenPath": token, "secretsDir": secrets, "fileMode": "0440", "pollInterval": "1s",
        "notifySignal": "SIGUSR1", "notifyProcess": "python3",
        "notifyCommand": ["touch", commanded], "notifyUrl": reload_url,
        "files": [{"name": "v", "path": format!("secret/data/{path}"), "file": "v",
                   "template": format!("{{{{ with secret \"secret/data/{path}\" }}}}{{{{ .Data.data.v }}}}{{{{ end }}}}")}],
    });
    let sidecar = tokio::process::Command::new(vaultsync_binary())
        .args(["agent", "sidecar"])
        .env("VAULTSYNC_AGENT_CONFIG", config.to_string())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let file = secrets.join("v");
    eventually(Duration::from_secs(20), || async { Ok(std::fs::read_to_string(&file).is_ok_and(|c| c == first)) })
        .await?;

    // A reader looping meanwhile never sees anything but a whole value.
    let second = env.secret_value("sidecar-2");
    let reader = {
        let (file, first, second) = (file.clone(), first.clone(), second.clone());
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let mut reads = 0u64;
            while started.elapsed() < Duration::from_secs(8) {
                let content = std::fs::read_to_string(&file).unwrap_or_default();
                assert!(content == first || content == second, "partial or empty read: {content:?}");
                reads += 1;
                if content == second {
                    return (reads, started.elapsed());
                }
            }
            (reads, started.elapsed())
        })
    };
    let changed_at = Instant::now();
    env.bao.kv2_put(&path, json!({"v": second})).await?;
    let (reads, _) = reader.await?;
    eventually(Duration::from_secs(10), || async { Ok(std::fs::read_to_string(&file).is_ok_and(|c| c == second)) })
        .await?;
    let arrived = changed_at.elapsed();
    eventually(Duration::from_secs(5), || async {
        Ok(std::fs::read_to_string(&signals).is_ok_and(|s| s.contains("usr1")))
    })
    .await
    .context("the app got SIGUSR1")?;
    eventually(Duration::from_secs(5), || async { Ok(commanded.exists()) }).await.context("the notify command ran")?;
    eventually(Duration::from_secs(5), || async { Ok(posts.load(std::sync::atomic::Ordering::SeqCst) == 1) })
        .await
        .context("the notify URL got one POST")?;
    report(&format!(
        "inject: sidecar file changed {arrived:?} after the Vault write (poll 1s ± 20%); {reads} reads saw only whole values"
    ));
    assert!(arrived < Duration::from_secs(5), "within the poll interval plus jitter: {arrived:?}");
    drop(sidecar);
    drop(app);
    env.cleanup().await;
    Ok(())
}
