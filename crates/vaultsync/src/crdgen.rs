//! `vaultsync crdgen`: the CustomResourceDefinitions as YAML, one file per
//! kind, or all of them on stdout (what the chart and the docs are made
//! from); with `--reference`, also the Markdown field reference made from
//! them (see `crdref`).

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::crdref;

pub fn run(out: Option<PathBuf>, reference: Option<PathBuf>) -> anyhow::Result<()> {
    for (name, yaml) in vaultsync_api::crds_yaml().context("cannot encode CRDs as YAML")? {
        match &out {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                write(&dir.join(name), &yaml)?;
            }
            None => print!("---\n{yaml}"),
        }
    }
    if let Some(path) = reference {
        write(&path, &crdref::generate()?)?;
    }
    Ok(())
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
