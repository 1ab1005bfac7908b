//! `vaultsync crdgen`: the CustomResourceDefinitions as YAML, one file per
//! kind, or all of them on stdout (what the chart and the docs are made
//! from).

use std::path::PathBuf;

use anyhow::Context as _;

pub fn run(out: Option<PathBuf>) -> anyhow::Result<()> {
    for (name, yaml) in vaultsync_api::crds_yaml().context("cannot encode CRDs as YAML")? {
        match &out {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                let path = dir.join(name);
                std::fs::write(&path, yaml).with_context(|| format!("cannot write {}", path.display()))?;
            }
            None => print!("---\n{yaml}"),
        }
    }
    Ok(())
}
