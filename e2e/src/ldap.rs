//! The environment's OpenLDAP directory (e2e/lib/ldap.sh) and the OpenBao
//! dev server whose `auth/ldap` searches it: per-test users and groups in
//! the directory, their mapping to OpenBao policies, and LDAP logins.
//!
//! OpenBao 2.7 (the environment's main server) has no LDAP auth method built
//! in, so `auth/ldap` lives on a server of its own ([`Ldap::bao`], at
//! `$VAULTSYNC_LDAP_BAO_ADDR`, root token). Entries are written with
//! `ldapadd`/`ldapmodify` as the directory's admin (its password is read by
//! the clients from the file `$VAULTSYNC_LDAP_ADMIN_PASSWORD_FILE`, never on
//! a command line); a user's password is hashed by `slappasswd` reading
//! stdin, so only its `{SSHA}` form reaches the directory. Passwords are
//! recorded in the suite's seeded values (the leak check) and never printed.

use std::io::Write as _;
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

use crate::{Bao, TestEnv};

/// The directory and its OpenBao, from the env file of `e2e/env.sh up`.
pub struct Ldap {
    /// `ldap://127.0.0.1:PORT`, as OpenBao's `auth/ldap/config` has it.
    pub url: String,
    pub admin_dn: String,
    admin_password_file: String,
    /// `ou=people,...`: users, `uid=NAME`.
    pub people_dn: String,
    /// `ou=groups,...`: groups (groupOfNames), `cn=NAME`.
    pub groups_dn: String,
    /// The OpenBao dev server with `auth/ldap` (root token).
    pub bao: Bao,
}

impl Ldap {
    pub fn from_env() -> Result<Self> {
        let var = |name: &str| std::env::var(name).with_context(|| format!("{name} is not set: run `make e2e`"));
        Ok(Self {
            url: var("VAULTSYNC_LDAP_URL")?,
            admin_dn: var("VAULTSYNC_LDAP_ADMIN_DN")?,
            admin_password_file: var("VAULTSYNC_LDAP_ADMIN_PASSWORD_FILE")?,
            people_dn: var("VAULTSYNC_LDAP_PEOPLE_DN")?,
            groups_dn: var("VAULTSYNC_LDAP_GROUPS_DN")?,
            bao: Bao::at(&var("VAULTSYNC_LDAP_BAO_ADDR")?, "root"),
        })
    }

    /// The DN of user `uid`.
    pub fn user_dn(&self, uid: &str) -> String {
        format!("uid={uid},{}", self.people_dn)
    }

    /// The DN of group `cn`.
    pub fn group_dn(&self, cn: &str) -> String {
        format!("cn={cn},{}", self.groups_dn)
    }

    /// Runs `ldapadd` or `ldapmodify` as the admin with `ldif` on stdin;
    /// returns its exit code (0, or e.g. 68 "already exists") and stderr.
    fn modify(&self, tool: &str, ldif: &str) -> Result<(i32, String)> {
        let mut child = Command::new(tool)
            .args(["-x", "-H", &self.url, "-D", &self.admin_dn, "-y", &self.admin_password_file])
            .env("LDAPNOINIT", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("running {tool} (Debian's ldap-utils, installed by e2e/env.sh)"))?;
        child.stdin.take().context("stdin")?.write_all(ldif.as_bytes())?;
        let output = child.wait_with_output()?;
        Ok((output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).trim().to_owned()))
    }

    /// The `{SSHA}` hash of `password` (slappasswd reads it from stdin).
    fn hash(password: &str) -> Result<String> {
        let mut child = Command::new("slappasswd")
            .args(["-h", "{SSHA}", "-T", "/dev/stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running slappasswd (Debian's slapd)")?;
        child.stdin.take().context("stdin")?.write_all(password.as_bytes())?;
        let output = child.wait_with_output()?;
        let hash = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        if !output.status.success() || !hash.starts_with("{SSHA}") {
            bail!("slappasswd failed: {}", String::from_utf8_lossy(&output.stderr).trim());
        }
        Ok(hash)
    }

    /// Adds user `uid` (inetOrgPerson) with `password`.
    pub fn add_user(&self, uid: &str, password: &str) -> Result<()> {
        check_name(uid)?;
        let ldif = format!(
            "dn: {dn}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\nuserPassword: {hash}\n",
            dn = self.user_dn(uid),
            hash = Self::hash(password)?,
        );
        let (code, stderr) = self.modify("ldapadd", &ldif)?;
        if code != 0 {
            bail!("ldapadd of user {uid} failed (exit {code}): {stderr}");
        }
        Ok(())
    }

    /// Makes user `uid` a member of group `cn`, creating the group
    /// (groupOfNames) if it does not exist.
    pub fn add_member(&self, cn: &str, uid: &str) -> Result<()> {
        check_name(cn)?;
        check_name(uid)?;
        let (group, member) = (self.group_dn(cn), self.user_dn(uid));
        let (code, stderr) =
            self.modify("ldapadd", &format!("dn: {group}\nobjectClass: groupOfNames\ncn: {cn}\nmember: {member}\n"))?;
        match code {
            0 => Ok(()),
            // Already exists: one more member.
            68 => {
                let (code, stderr) = self.modify(
                    "ldapmodify",
                    &format!("dn: {group}\nchangetype: modify\nadd: member\nmember: {member}\n"),
                )?;
                if code != 0 {
                    bail!("ldapmodify adding {uid} to group {cn} failed (exit {code}): {stderr}");
                }
                Ok(())
            }
            _ => bail!("ldapadd of group {cn} failed (exit {code}): {stderr}"),
        }
    }

    /// Removes an entry (a user or group DN); absent is fine.
    pub fn delete(&self, dn: &str) -> Result<()> {
        let output = Command::new("ldapdelete")
            .args(["-x", "-H", &self.url, "-D", &self.admin_dn, "-y", &self.admin_password_file, dn])
            .env("LDAPNOINIT", "1")
            .stdin(Stdio::null())
            .output()
            .context("running ldapdelete")?;
        match output.status.code() {
            Some(0 | 32) => Ok(()),
            code => bail!("ldapdelete {dn} failed ({code:?}): {}", String::from_utf8_lossy(&output.stderr).trim()),
        }
    }

    /// `POST auth/ldap/login/<user>` on the LDAP OpenBao: the response body
    /// on success, else the HTTP status and OpenBao's errors (which name no
    /// password).
    pub async fn login(&self, user: &str, password: &str) -> Result<std::result::Result<Value, (u16, String)>> {
        let response = reqwest::Client::new()
            .post(format!("{}/v1/auth/ldap/login/{user}", self.bao.addr))
            .json(&json!({"password": password}))
            .send()
            .await
            .with_context(|| format!("POST auth/ldap/login/{user}"))?;
        let status = response.status();
        let text = response.text().await?;
        if status.is_success() {
            return Ok(Ok(serde_json::from_str(&text)?));
        }
        Ok(Err((status.as_u16(), text)))
    }

    /// The client token of a login that must succeed.
    pub async fn login_token(&self, user: &str, password: &str) -> Result<String> {
        match self.login(user, password).await? {
            Ok(body) => Ok(body["auth"]["client_token"].as_str().context("login returned no client_token")?.to_owned()),
            Err((status, errors)) => bail!("LDAP login of {user} refused: {status}: {errors}"),
        }
    }
}

/// Names go into DNs and LDIF unescaped: keep them to what needs no escaping.
fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_') {
        bail!("LDAP name {name:?}: use lowercase letters, digits, '-' and '_' only");
    }
    Ok(())
}

impl TestEnv {
    /// A new LDAP user of this test, `<prefix>-<name>`, with a random
    /// password (recorded for the leak check): `(username, password)`.
    pub fn ldap_user(&self, name: &str) -> Result<(String, String)> {
        let ldap = Ldap::from_env()?;
        let user = format!("{}-{name}", self.prefix);
        let password = self.secret_value("ldap-password");
        ldap.add_user(&user, &password)?;
        Ok((user, password))
    }

    /// Puts `user` into this test's group `<prefix>-<group>` (created on
    /// first use); returns the group's name.
    pub fn ldap_group_with_member(&self, group: &str, user: &str) -> Result<String> {
        let group = format!("{}-{group}", self.prefix);
        Ldap::from_env()?.add_member(&group, user)?;
        Ok(group)
    }

    /// Maps an LDAP user to OpenBao policies (`auth/ldap/users/<user>`).
    pub async fn ldap_user_policies(&self, user: &str, policies: &[&str]) -> Result<()> {
        let ldap = Ldap::from_env()?;
        ldap.bao.write(&format!("auth/ldap/users/{user}"), json!({"policies": policies.join(",")})).await?;
        Ok(())
    }

    /// Maps an LDAP group to OpenBao policies (`auth/ldap/groups/<group>`).
    pub async fn ldap_group_policies(&self, group: &str, policies: &[&str]) -> Result<()> {
        let ldap = Ldap::from_env()?;
        ldap.bao.write(&format!("auth/ldap/groups/{group}"), json!({"policies": policies.join(",")})).await?;
        Ok(())
    }
}
