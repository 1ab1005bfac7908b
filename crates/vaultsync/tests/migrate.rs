//! `vaultsync migrate check` and `vaultsync convert`, run as a person runs
//! them, on the ESO manifests of e2e/eso/migration/: the exact problems
//! found per object, the round trip of every file, and the command lines
//! docs/migration.md shows.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_vaultsync");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository root")
}

fn fixtures() -> PathBuf {
    repo().join("e2e/eso/migration")
}

/// Runs vaultsync in the repository root with `args`, feeding `stdin`.
fn vaultsync(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(repo())
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vaultsync starts");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("stdin written");
    child.wait_with_output().expect("vaultsync ends")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn documents(yaml: &str) -> Vec<Value> {
    let all: Vec<Value> = serde_saphyr::from_multiple(yaml).expect("valid YAML");
    all.into_iter().filter(|v| !v.is_null()).collect()
}

/// Every problem of every fixture object, exactly: the expected report is
/// `tests/migrate-check.txt`. After a deliberate change of a message,
/// regenerate it with
/// `target/debug/vaultsync migrate check e2e/eso/migration > crates/vaultsync/tests/migrate-check.txt`
/// and read the diff.
#[test]
fn check_reports_each_problem_of_the_fixtures() {
    let out = vaultsync(&["migrate", "check", "e2e/eso/migration"], "");
    let stdout = text(&out.stdout);
    let expected = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/migrate-check.txt"))
        .expect("the expected report");
    assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
    let (got, want): (Vec<_>, Vec<_>) = (stdout.lines().collect(), expected.lines().collect());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "line {} of the report differs", i + 1);
    }
    assert_eq!(got.len(), want.len(), "report:\n{stdout}");
}

/// The reasons the issue names each show up on the object that has them.
#[test]
fn check_names_each_reason_on_its_object() {
    let stdout = text(&vaultsync(&["migrate", "check", "e2e/eso/migration"], "").stdout);
    let has = |object: &str, part: &str| {
        assert!(
            stdout.lines().any(|l| l.starts_with(&format!("{object}: ")) && l.contains(part)),
            "no line for {object} with {part:?} in:\n{stdout}"
        );
    };
    has("SecretStore team-a/aws", "would fail: provider aws is not supported");
    has("ExternalSecret team-a/on-aws", "whose provider aws vaultsync does not support");
    // userPass, ldap, cert and auth.namespace are served now.
    has("ClusterSecretStore vault-userpass", "ok");
    assert!(!stdout.contains("auth.cert is not supported") && !stdout.contains("auth.namespace is not supported"));
    // tls and headers are served now: what is left on these are warnings.
    has("ClusterSecretStore vault-mtls", "warning: spec.provider.vault.checkAndSet");
    has(
        "SecretStore team-a/vault-no-audience",
        "— let the Vault role accept it: vault write auth/k8s-prod/role/team-a audience=vault",
    );
    has("ClusterSecretStore vault-api-audience", "is accepted by the Kubernetes API server itself");
    has("ClusterSecretStore vault-sys", "bound_audiences=vault");
    has(
        "SecretStore team-a/vault-operator-token",
        "set exactly one of serviceAccountRef or secretRef — name the ServiceAccount",
    );
    has(
        "ExternalSecret team-a/bad-keys",
        "spec.data[1].remoteRef.key \"sys/policy/admin\": must not have a segment named auth",
    );
    has("ExternalSecret team-a/templates", "function \"urlquery\" not defined");
    has("SecretStore team-a/vault-extras", "it holds ESO's default, so leaving it out changes nothing");
    assert!(
        !stdout.lines().any(|l| l.starts_with("ExternalSecret team-a/eso-only-fields: would fail")
            && ["syncWindows", "creationPolicy", "finalizers"].iter().any(|field| l.contains(field))),
        "syncWindows, CreateOrMerge and template finalizers are supported now:\n{stdout}"
    );
    has("ClusterExternalSecret singular-selector", "ok");
    has("ClusterSecretStore vault-other-class", "run vaultsync with --controller-class eso-team-b");
    assert!(!stdout.contains("vault.headers is not supported") && !stdout.contains("vault.tls is not supported"));
    has("PushSecret team-a/push", "has no counterpart in vaultsync");
    has("ExternalSecret team-a/db", "ok");
    assert!(!stdout.contains("Secret team-a/vault-token"), "a Secret was checked:\n{stdout}");
    assert!(!stdout.contains("never-printed"), "a Secret's value was printed");
    assert!(stdout.ends_with("\n24 objects: 8 ok, 5 with warnings, 11 would fail\n"), "{stdout}");
}

#[test]
fn check_of_ready_manifests_passes() {
    let out = vaultsync(&["migrate", "check", "e2e/eso/migration/ready.yaml"], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).ends_with("5 objects: 5 ok, 0 with warnings, 0 would fail\n"));
}

#[test]
fn unreadable_input_and_no_cluster_exit_2() {
    let out = vaultsync(&["migrate", "check", "e2e/eso/migration/missing.yaml"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read e2e/eso/migration/missing.yaml"), "{}", text(&out.stderr));
    let out = vaultsync(&["migrate", "check", "-"], "a: [");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("stdin is not valid YAML"), "{}", text(&out.stderr));
    let out = vaultsync(&["migrate", "check", "--cluster"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot reach the Kubernetes API"), "{}", text(&out.stderr));
}

/// ESO → vaultsync → ESO gives back the same objects, for every fixture
/// file; on the way, no served kind keeps ESO's apiVersion.
#[test]
fn convert_round_trips_every_fixture() {
    let mut files: Vec<_> = std::fs::read_dir(fixtures()).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    for file in files {
        let original = std::fs::read_to_string(&file).unwrap();
        let ours = vaultsync(&["convert", file.to_str().unwrap()], "");
        assert_eq!(ours.status.code(), Some(0), "{}: {}", file.display(), text(&ours.stderr));
        for doc in documents(&text(&ours.stdout)) {
            let (api_version, kind) = (doc["apiVersion"].as_str().unwrap(), doc["kind"].as_str().unwrap());
            let served = ["ExternalSecret", "SecretStore", "ClusterSecretStore", "ClusterExternalSecret"];
            if served.contains(&kind) {
                assert_eq!(api_version, "vaultsync.dev/v1alpha1", "{}", file.display());
            }
            if kind == "VaultDynamicSecret" {
                assert_eq!(api_version, "generators.vaultsync.dev/v1alpha1", "{}", file.display());
            }
        }
        let back = vaultsync(&["convert", "--to", "eso", "-"], &text(&ours.stdout));
        assert_eq!(back.status.code(), Some(0), "{}: {}", file.display(), text(&back.stderr));
        assert_eq!(documents(&text(&back.stdout)), documents(&original), "{} did not round-trip", file.display());
    }
}

#[test]
fn convert_names_what_only_vaultsync_has() {
    let store = "apiVersion: vaultsync.dev/v1alpha1\nkind: SecretStore\nmetadata: {name: bao, namespace: a}\n\
                 spec:\n  provider:\n    openBao:\n      server: http://bao:8200\n      allowInsecureHttp: true\n      \
                 auth: {tokenSecretRef: {name: t, key: token}}\n";
    let out = vaultsync(&["convert", "--to", "eso", "-"], store);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("SecretStore a/bao: spec.provider.vault.allowInsecureHttp is not expressible in ESO"),
        "{stderr}"
    );
    let docs = documents(&text(&out.stdout));
    assert_eq!(docs[0]["apiVersion"], "external-secrets.io/v1");
    assert_eq!(docs[0]["spec"]["provider"]["vault"]["server"], "http://bao:8200");
    assert!(docs[0]["spec"]["provider"]["vault"].get("allowInsecureHttp").is_none());
    let allowed = vaultsync(&["convert", "--to", "eso", "--allow-loss", "-"], store);
    assert_eq!(allowed.status.code(), Some(0));
    assert_eq!(documents(&text(&allowed.stdout)), docs);
}

/// The shell block of docs/migration.md between its markers runs as it
/// stands, with this build of vaultsync first on PATH.
#[test]
fn documented_commands_run() {
    let doc = std::fs::read_to_string(repo().join("docs/migration.md")).unwrap();
    let block = doc
        .split_once("<!-- migrate-commands: begin -->")
        .and_then(|(_, rest)| rest.split_once("<!-- migrate-commands: end -->"))
        .map(|(block, _)| block)
        .expect("docs/migration.md has the migrate-commands block");
    let script: Vec<&str> = block.lines().filter(|l| !l.starts_with("```")).collect();
    assert!(script.iter().filter(|l| l.starts_with("vaultsync ")).count() >= 4, "{script:?}");
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script.join("\n")])
        .current_dir(repo())
        .env("PATH", path)
        .output()
        .expect("bash runs");
    assert!(out.status.success(), "the documented commands failed:\n{}\n{}", text(&out.stdout), text(&out.stderr));
    // The round trip at the end printed ESO's groups again.
    assert!(text(&out.stdout).contains("apiVersion: external-secrets.io/v1\nkind: ExternalSecret"));
}
