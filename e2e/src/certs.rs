//! Certificates the TLS scenarios make with openssl: a self-signed one (a
//! client's, which a listener or Vault's cert auth trusts as itself) and a
//! server certificate for 127.0.0.1 signed by a CA of its own.

use std::path::Path;

use anyhow::Result;

/// Runs openssl with `args`, its chatter dropped.
fn openssl(args: &[&str]) -> Result<()> {
    let status = std::process::Command::new("openssl").args(args).stderr(std::process::Stdio::null()).status()?;
    anyhow::ensure!(status.success(), "openssl {} failed", args.first().unwrap_or(&""));
    Ok(())
}

const EC: [&str; 4] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];

/// A self-signed certificate with common name `name` and its key (PEM),
/// as files `<name>.crt` and `<name>.key` in `dir`.
pub fn self_signed(dir: &Path, name: &str) -> Result<(String, String)> {
    std::fs::create_dir_all(dir)?;
    let cert = dir.join(format!("{name}.crt")).display().to_string();
    let key = dir.join(format!("{name}.key")).display().to_string();
    let subject = format!("/CN={name}");
    openssl(
        &[&["req", "-x509"], &EC[..], &["-nodes", "-days", "1", "-subj", &subject, "-keyout", &key, "-out", &cert]]
            .concat(),
    )?;
    Ok((std::fs::read_to_string(cert)?, std::fs::read_to_string(key)?))
}

/// A CA and a server certificate it signs for 127.0.0.1 (rustls refuses a
/// CA certificate as a server's), as `server.crt`/`server.key` in `dir`:
/// the CA's PEM.
pub fn server_certificate(dir: &Path) -> Result<String> {
    std::fs::create_dir_all(dir)?;
    let path = |name: &str| dir.join(name).display().to_string();
    let (ca, ca_key, csr, cert, key, ext) =
        (path("ca.crt"), path("ca.key"), path("server.csr"), path("server.crt"), path("server.key"), path("ext.cnf"));
    std::fs::write(&ext, "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")?;
    openssl(
        &[
            &["req", "-x509"],
            &EC[..],
            &["-nodes", "-days", "1", "-subj", "/CN=mtls-ca", "-keyout", &ca_key, "-out", &ca],
        ]
        .concat(),
    )?;
    openssl(&[&["req"], &EC[..], &["-nodes", "-subj", "/CN=127.0.0.1", "-keyout", &key, "-out", &csr]].concat())?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        &ext,
        "-out",
        &cert,
    ])?;
    Ok(std::fs::read_to_string(ca)?)
}
