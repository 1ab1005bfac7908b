//! The local PostgreSQL of the environment (e2e/lib/postgres.sh), behind
//! OpenBao's database engine: whether credentials issued for it log in.

use std::process::Command;

use anyhow::{Context as _, Result, bail};

pub struct Postgres {
    host: String,
    port: String,
    database: String,
}

impl Postgres {
    pub fn from_env() -> Result<Self> {
        let var = |name: &str| std::env::var(name).with_context(|| format!("{name} is not set: run `make e2e`"));
        Ok(Self { host: var("PGHOST")?, port: var("PGPORT")?, database: var("VAULTSYNC_PG_DATABASE")? })
    }

    /// Whether `user` logs in to the app database with `password`: `false`
    /// when PostgreSQL refuses the login (unknown role, wrong or expired
    /// password), an error when it cannot be asked.
    pub fn can_log_in(&self, user: &str, password: &str) -> Result<bool> {
        let output = Command::new("psql")
            .args(["-X", "-q", "-t", "-A", "-c", "SELECT 1"])
            .arg(format!("host={} port={} user={user} dbname={}", self.host, self.port, self.database))
            .env("PGPASSWORD", password)
            .env("PGCONNECT_TIMEOUT", "5")
            .output()
            .context("running psql (on the env file's PATH)")?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() && String::from_utf8_lossy(&output.stdout).trim() == "1" {
            return Ok(true);
        }
        if stderr.contains("password authentication failed") || stderr.contains("does not exist") {
            return Ok(false);
        }
        bail!("psql as {user}: {}", stderr.trim())
    }
}
