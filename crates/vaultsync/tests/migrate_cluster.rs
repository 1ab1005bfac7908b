//! `vaultsync migrate check --cluster` against a stand-in API server: a
//! loopback HTTP listener that answers the list requests with canned ESO
//! objects, or 404 where a CRD is "not installed". It shows the objects
//! are listed by group, version and plural, and what missing CRDs print.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::process::Command;

use serde_json::{Value, json};

/// Serves `answer(path)` (status and body) on a loopback port until the
/// test ends; returns the port.
fn serve(answer: fn(&str) -> (u16, Value)) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            // Headers up to the blank line; list requests have no body.
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let path = request_line.split_whitespace().nth(1).unwrap_or("/").split('?').next().unwrap_or("/");
            let (status, body) = answer(path);
            let body = body.to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

fn kubeconfig(port: u16) -> tempfile_path::Path {
    tempfile_path::write(&format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:{port}\n\
         users:\n- name: u\n  user:\n    token: test\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n"
    ))
}

/// A file removed when dropped, without a crate for it.
mod tempfile_path {
    pub struct Path(pub std::path::PathBuf);
    impl Drop for Path {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    pub fn write(text: &str) -> Path {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!("vaultsync-migrate-{}-{}.kubeconfig", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, text).expect("kubeconfig written");
        Path(path)
    }
}

fn check_cluster(port: u16) -> (Option<i32>, String, String) {
    let config = kubeconfig(port);
    let out = Command::new(env!("CARGO_BIN_EXE_vaultsync"))
        .args(["migrate", "check", "--cluster"])
        .env("KUBECONFIG", &config.0)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .expect("vaultsync runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

fn not_found() -> (u16, Value) {
    (404, json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}))
}

fn list(kind: &str, items: Value) -> (u16, Value) {
    (
        200,
        json!({"apiVersion": "external-secrets.io/v1", "kind": format!("{kind}List"), "metadata": {}, "items": items}),
    )
}

#[test]
fn objects_of_the_cluster_are_checked_and_missing_crds_named() {
    let port = serve(|path| match path {
        "/apis/external-secrets.io/v1/secretstores" => list(
            "SecretStore",
            json!([{"metadata": {"name": "aws", "namespace": "team-a", "managedFields": []},
                    "spec": {"provider": {"aws": {"service": "SecretsManager"}}},
                    "status": {"conditions": []}}]),
        ),
        "/apis/external-secrets.io/v1/externalsecrets" => list(
            "ExternalSecret",
            json!([{"metadata": {"name": "db", "namespace": "team-a"},
                    "spec": {"secretStoreRef": {"name": "aws"}, "data": [{"secretKey": "k", "remoteRef": {"key": "a/b"}}]}}]),
        ),
        "/apis/external-secrets.io/v1/clustersecretstores" | "/apis/external-secrets.io/v1/clusterexternalsecrets" => {
            list("X", json!([]))
        }
        _ => not_found(),
    });
    let (code, stdout, stderr) = check_cluster(port);
    assert_eq!(code, Some(1), "stdout: {stdout}\nstderr: {stderr}");
    assert_eq!(
        stdout,
        "SecretStore team-a/aws: would fail: provider aws is not supported (vaultsync serves Vault and OpenBao only) \
         — keep this store and its ExternalSecrets with ESO (ESO serves a store whose spec.controller is unset or names its class)\n\
         ExternalSecret team-a/db: would fail: spec.secretStoreRef names SecretStore \"aws\", whose provider aws vaultsync \
         does not support — keep this ExternalSecret with ESO, with its store\n\
         2 objects: 0 ok, 0 with warnings, 2 would fail\n"
    );
    assert!(
        stderr.contains("the cluster has no CRD for VaultDynamicSecret (generators.external-secrets.io/v1alpha1)"),
        "{stderr}"
    );
}

#[test]
fn a_cluster_without_eso_says_so() {
    let port = serve(|_| not_found());
    let (code, stdout, stderr) = check_cluster(port);
    assert_eq!(code, Some(2), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains("ESO's CRDs (external-secrets.io/v1) are not installed in this cluster"), "{stderr}");
}
