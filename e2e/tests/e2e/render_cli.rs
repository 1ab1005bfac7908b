//! `vaultsync render`: the Secret an ExternalSecret would produce, masked
//! by default, with nothing written to the cluster.

use serde_json::json;
use vaultsync_e2e::TestEnv;

async fn render(args: &[&str]) -> anyhow::Result<(bool, String, String)> {
    let binary = vaultsync_e2e::vaultsync_binary();
    let output = tokio::process::Command::new(binary).arg("render").args(args).output().await?;
    Ok((
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

#[tokio::test]
async fn render_masks_values_and_writes_nothing() -> anyhow::Result<()> {
    let env = TestEnv::new("render").await?;
    let value = env.secret_value("render");
    let path = format!("{}/app", env.prefix);
    env.bao.kv2_put(&path, json!({"password": value})).await?;
    env.create_secret("vault-token", &[("token", "root")]).await?;
    let dir = std::env::temp_dir().join(&env.prefix);
    std::fs::create_dir_all(&dir)?;
    let es_file = dir.join("es.yaml");
    std::fs::write(
        &es_file,
        format!(
            "apiVersion: vaultsync.dev/v1alpha1\nkind: ExternalSecret\nmetadata:\n  name: preview\n  namespace: {ns}\nspec:\n  secretStoreRef:\n    name: local-file-store\n  data:\n    - secretKey: password\n      remoteRef:\n        key: {path}\n        property: password\n",
            ns = env.namespace
        ),
    )?;
    let store_file = dir.join("store.yaml");
    std::fs::write(
        &store_file,
        format!(
            "apiVersion: vaultsync.dev/v1alpha1\nkind: SecretStore\nmetadata:\n  name: local-file-store\nspec:\n  provider:\n    vault:\n      server: {addr}\n      path: secret\n      auth:\n        tokenSecretRef:\n          name: vault-token\n",
            addr = env.bao.addr
        ),
    )?;
    let es = es_file.to_str().unwrap_or_default();
    let store = store_file.to_str().unwrap_or_default();

    let (ok, masked, stderr) = render(&["-f", es, "--store", store]).await?;
    assert!(ok, "render failed: {stderr}");
    assert!(masked.contains("password") && masked.contains("masked"), "{masked}");
    assert!(!masked.contains(&value), "values must be masked by default");

    let (ok, shown, stderr) = render(&["-f", es, "--store", store, "--show-values"]).await?;
    assert!(ok, "render --show-values failed: {stderr}");
    assert!(shown.contains(&value), "{shown}");
    assert!(env.secrets().get_opt("preview").await?.is_none(), "render must not write the Secret");

    // Templates are applied: this is how a person debugs one.
    let templated = std::fs::read_to_string(&es_file)?.replace(
        "spec:\n",
        "spec:\n  target:\n    template:\n      metadata:\n        labels:\n          size: \"{{ len .password }}\"\n      data:\n        dsn: \"app:{{ .password }}@db\"\n",
    );
    let templated_file = dir.join("templated.yaml");
    std::fs::write(&templated_file, templated)?;
    let templated = templated_file.to_str().unwrap_or_default();
    let (ok, shown, stderr) = render(&["-f", templated, "--store", store, "--show-values"]).await?;
    assert!(ok, "render of a template failed: {stderr}");
    assert!(shown.contains(&format!("dsn: app:{value}@db")), "{shown}");
    assert!(
        shown.contains(&format!("size: '{}'", value.len())) || shown.contains(&format!("size: \"{}\"", value.len())),
        "{shown}"
    );
    let broken = std::fs::read_to_string(&templated_file)?.replace("@db", "@{{ .password | nosuchfunc }}");
    std::fs::write(&templated_file, broken)?;
    let (ok, _, stderr) = render(&["-f", templated, "--store", store]).await?;
    assert!(!ok && stderr.contains("data[dsn]") && stderr.contains("nosuchfunc"), "{stderr}");
    assert!(!stderr.contains(&value), "{stderr}");

    // A whole example file: other kinds are skipped, the ExternalSecret is
    // rendered; a file without one says so.
    let multi_file = dir.join("multi.yaml");
    let store_text = std::fs::read_to_string(&store_file)?;
    std::fs::write(
        &multi_file,
        format!(
            "{store_text}---\n{}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
            std::fs::read_to_string(&es_file)?
        ),
    )?;
    let (ok, masked, stderr) = render(&["-f", multi_file.to_str().unwrap_or_default(), "--store", store]).await?;
    assert!(ok && masked.contains("password") && !masked.contains(&value), "{stderr}{masked}");
    let (ok, _, stderr) = render(&["-f", store, "--store", store]).await?;
    assert!(!ok && stderr.contains("holds no ExternalSecret"), "{stderr}");

    // Without --store, the store is read from the cluster: none exists here.
    let (ok, _, stderr) = render(&["-f", es]).await?;
    assert!(!ok && stderr.contains("local-file-store") && stderr.contains("not found"), "{stderr}");
    std::fs::remove_dir_all(&dir)?;
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn version_names_the_commit_it_was_built_from() -> anyhow::Result<()> {
    let binary = vaultsync_e2e::vaultsync_binary();
    let output = tokio::process::Command::new(binary).arg("--version").output().await?;
    let version = String::from_utf8_lossy(&output.stdout).into_owned();
    let head = tokio::process::Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().await?;
    let head = String::from_utf8_lossy(&head.stdout).trim().to_owned();
    assert!(output.status.success());
    assert!(!head.is_empty() && version.contains(&format!("(commit {head})")), "{version:?} should name commit {head}");
    assert!(version.starts_with(&format!("vaultsync {}", env!("CARGO_PKG_VERSION"))), "{version}");
    Ok(())
}
