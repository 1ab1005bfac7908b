//! The chart as installed with the real `helm` (release `vaultsync`, by
//! scripts/install-operator.sh): the CRDs come from its templates, so
//! `helm upgrade` upgrades them, and they carry `helm.sh/resource-policy:
//! keep`. Whether `helm uninstall` then keeps them is checked at the very
//! end of scripts/e2e.sh, as it removes the operator's rights.
//!
//! Ignored in the shared run: an upgrade that changes a CRD makes the API
//! server restart that kind's storage, which ends every watch of it, and the
//! other tests should not see that. `scripts/e2e.sh` runs it after the suite.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use vaultsync_e2e::{TestEnv, eventually, repo_root};

const RELEASE: &str = "vaultsync";
const RELEASE_NAMESPACE: &str = "vaultsync-system";
const CRD: &str = "secretstores.vaultsync.dev";

async fn helm(args: &[&str]) -> anyhow::Result<String> {
    let output = tokio::process::Command::new("helm").args(args).output().await?;
    anyhow::ensure!(output.status.success(), "helm {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    Ok(String::from_utf8(output.stdout)?)
}

fn printer_columns(crd: &CustomResourceDefinition) -> Vec<String> {
    crd.spec.versions[0].additional_printer_columns.iter().flatten().map(|c| c.name.clone()).collect()
}

#[tokio::test]
#[ignore = "restarts a CRD's storage; scripts/e2e.sh runs it after the suite"]
async fn helm_upgrade_applies_crd_changes() -> anyhow::Result<()> {
    let env = TestEnv::new("chart").await?;
    let crds: Api<CustomResourceDefinition> = Api::all(env.client.clone());
    let installed = crds.get(CRD).await?;
    let annotations = installed.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(annotations.get("helm.sh/resource-policy").map(String::as_str), Some("keep"));
    assert_eq!(annotations.get("meta.helm.sh/release-name").map(String::as_str), Some(RELEASE), "owned by the release");
    assert!(!printer_columns(&installed).contains(&"Upgraded".to_owned()));

    // The next version of the chart: the same, plus a printer column.
    let state = std::env::var("VAULTSYNC_STATE")?;
    let chart = std::path::Path::new(&state).join("chart-next/vaultsync");
    let _ = std::fs::remove_dir_all(&chart);
    std::fs::create_dir_all(chart.parent().unwrap_or(&chart))?;
    let copied =
        std::process::Command::new("cp").arg("-r").arg(repo_root().join("charts/vaultsync")).arg(&chart).status()?;
    anyhow::ensure!(copied.success(), "cp -r charts/vaultsync");
    let file = chart.join(format!("files/crds/{CRD}.yaml"));
    let mut crd: serde_json::Value = serde_saphyr::from_str(&std::fs::read_to_string(&file)?)?;
    crd["spec"]["versions"][0]["additionalPrinterColumns"]
        .as_array_mut()
        .ok_or_else(|| anyhow::anyhow!("no printer columns in {CRD}"))?
        .push(serde_json::json!({"name": "Upgraded", "type": "string", "jsonPath": ".metadata.uid"}));
    // JSON is YAML: the chart's template reads either.
    std::fs::write(&file, serde_json::to_string_pretty(&crd)?)?;

    let upgrade = |chart: std::path::PathBuf| async move {
        let chart = chart.to_str().unwrap_or_default().to_owned();
        helm(&["upgrade", RELEASE, &chart, "--namespace", RELEASE_NAMESPACE, "--reuse-values"]).await
    };
    upgrade(chart.clone()).await?;
    eventually(std::time::Duration::from_secs(30), || async {
        let columns = printer_columns(&crds.get(CRD).await?);
        Ok(columns.contains(&"Upgraded".to_owned()))
    })
    .await?;

    // And back: the column goes, as a real upgrade would remove it.
    upgrade(repo_root().join("charts/vaultsync")).await?;
    eventually(std::time::Duration::from_secs(30), || async {
        let columns = printer_columns(&crds.get(CRD).await?);
        Ok(!columns.contains(&"Upgraded".to_owned()))
    })
    .await?;
    let history = helm(&["history", RELEASE, "--namespace", RELEASE_NAMESPACE, "--max", "3"]).await?;
    assert!(history.lines().filter(|line| line.contains("Upgrade complete")).count() >= 2, "{history}");
    env.cleanup().await;
    Ok(())
}
