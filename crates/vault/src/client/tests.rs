//! The client against a scripted Vault on loopback: logins, 403s, closing,
//! what the observer hears, and read sharing.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;

use super::token::RELOGIN_FLOOR;
use super::{Client, Freshness, ServerConfig};
use crate::telemetry::{LoginOutcome, Observer, Operation};
use crate::{Auth, Error, KvSecret, KvVersion, Result, Sensitive};

#[tokio::test]
async fn unreachable_server_names_the_address() {
    let client = Client::new(
        ServerConfig { address: "http://127.0.0.1:1".into(), ..ServerConfig::default() },
        Auth::Token(Sensitive::new("secret-token")),
    )
    .unwrap();
    let err = client.read_kv("secret", "a", KvVersion::V2, None, Freshness::Shared).await.unwrap_err().to_string();
    assert!(err.contains("127.0.0.1:1") && err.contains("unreachable"), "{err}");
    assert!(!err.contains("secret-token"), "{err}");
}

#[test]
fn rejects_a_bundle_without_certificates() {
    let result = Client::new(
        ServerConfig {
            address: "https://x".into(),
            ca_bundle_pem: Some(b"not pem".to_vec()),
            ..ServerConfig::default()
        },
        Auth::Token(Sensitive::new("t")),
    );
    assert!(matches!(result, Err(Error::Tls(_))));
}

/// A scripted Vault on loopback: `answer(method, path, token)` gives
/// each response; every request is recorded as (method path, token).
struct MockVault {
    addr: String,
    seen: Arc<std::sync::Mutex<Vec<(String, String)>>>,
}

type Answer = dyn Fn(&str, &str, &str) -> (u16, String) + Send + Sync;

impl MockVault {
    async fn start(answer: impl Fn(&str, &str, &str) -> (u16, String) + Send + Sync + 'static) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let seen: Arc<std::sync::Mutex<Vec<(String, String)>>> = Arc::default();
        let answer: Arc<Answer> = Arc::new(answer);
        let recorded = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else { return };
                let (answer, recorded) = (answer.clone(), recorded.clone());
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    // Head, then as much body as Content-Length says.
                    let head_end = loop {
                        let n = socket.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        request.extend_from_slice(&buf[..n]);
                        if let Some(i) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&request[..head_end]).into_owned();
                    let header = |name: &str| {
                        head.lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                            })
                            .unwrap_or_default()
                    };
                    let length: usize = header("content-length").parse().unwrap_or(0);
                    while request.len() < head_end + length {
                        let n = socket.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        request.extend_from_slice(&buf[..n]);
                    }
                    let mut words = head.split_whitespace();
                    let method = words.next().unwrap_or_default().to_owned();
                    let path = words.next().unwrap_or_default().trim_start_matches("/v1/").to_owned();
                    let token = header("x-vault-token");
                    recorded.lock().unwrap().push((format!("{method} {path}"), token.clone()));
                    let (status, body) = answer(&method, &path, &token);
                    let response = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                });
            }
        });
        Self { addr, seen }
    }

    fn count(&self, request: &str) -> usize {
        self.seen.lock().unwrap().iter().filter(|(r, _)| r == request).count()
    }

    fn tokens_of(&self, request: &str) -> Vec<String> {
        self.seen.lock().unwrap().iter().filter(|(r, _)| r == request).map(|(_, t)| t.clone()).collect()
    }

    fn approle_client(&self) -> Client {
        Client::new(
            ServerConfig { address: self.addr.clone(), ..ServerConfig::default() },
            Auth::AppRole { mount_path: "approle".into(), role_id: "r".into(), secret_id: Sensitive::new("s") },
        )
        .unwrap()
    }
}

const LOGIN: &str = "POST auth/approle/login";
const LOOKUP: &str = "GET auth/token/lookup-self";
const REVOKE: &str = "POST auth/token/revoke-self";
const READ: &str = "GET secret/data/app";

fn login_answer(token: &str) -> (u16, String) {
    (200, json!({"auth": {"client_token": token, "lease_duration": 3600, "renewable": true}}).to_string())
}

fn denied() -> (u16, String) {
    (403, r#"{"errors":["permission denied"]}"#.into())
}

/// The common answers: KV mount, one login token per login ("t1",
/// "t2", ...), and `read` for the secret.
async fn vault(
    valid: impl Fn(&str) -> bool + Send + Sync + 'static,
    read: impl Fn(&str) -> (u16, String) + Send + Sync + 'static,
) -> MockVault {
    let logins = std::sync::atomic::AtomicU64::new(0);
    MockVault::start(move |method, path, token| match (method, path) {
        ("GET", "sys/internal/ui/mounts/secret") => (200, r#"{"data":{"type":"kv","path":"secret/"}}"#.into()),
        ("POST", "auth/approle/login") => login_answer(&format!("t{}", logins.fetch_add(1, Ordering::SeqCst) + 1)),
        ("GET", "auth/token/lookup-self") if valid(token) => (200, json!({"data": {"ttl": 3600}}).to_string()),
        ("GET", "auth/token/lookup-self") => denied(),
        ("POST", "auth/token/revoke-self") if valid(token) => (204, String::new()),
        ("GET", "secret/data/app") => read(token),
        _ => (404, r#"{"errors":[]}"#.into()),
    })
    .await
}

async fn read(client: &Client) -> Result<KvSecret> {
    client.read_kv("secret", "app", KvVersion::V2, None, Freshness::Now).await
}

#[tokio::test]
async fn a_path_the_policies_refuse_is_reported_without_a_new_login() {
    let vault = vault(|_| true, |_| denied()).await;
    let client = vault.approle_client();
    for _ in 0..5 {
        let err = read(&client).await.unwrap_err();
        assert!(matches!(err, Error::PermissionDenied { .. }), "{err}");
    }
    assert_eq!(vault.count(LOGIN), 1, "one login, however often the refused read is retried");
    assert_eq!(client.login_count(), 1);
    assert_eq!(vault.count(READ), 5);
    // One check of the token answers for the refusals that follow it.
    assert_eq!(vault.count(LOOKUP), 1);
}

#[tokio::test]
async fn a_token_vault_no_longer_knows_is_replaced_by_one_login() {
    // t1 was revoked behind the client's back; t2 is good.
    let vault = vault(
        |token| token != "t1",
        |token| match token {
            "t2" => (200, json!({"data": {"data": {"v": "x"}, "metadata": {"version": 1}}}).to_string()),
            _ => denied(),
        },
    )
    .await;
    let client = vault.approle_client();
    client.ensure_token().await.unwrap();
    // Logged in long enough ago for a token found invalid to be replaced.
    client.inner.token.lock().await.current.as_mut().unwrap().logged_in -= RELOGIN_FLOOR;
    let (a, b, c) = tokio::join!(read(&client), read(&client), read(&client));
    for answer in [a, b, c] {
        assert_eq!(answer.unwrap().data["v"], "x");
    }
    assert_eq!(vault.count(LOGIN), 2, "the dead token is replaced once, for every caller");
    assert_eq!(vault.tokens_of(LOOKUP), ["t1"]);
}

#[tokio::test]
async fn a_token_found_invalid_right_after_its_login_is_not_replaced_yet() {
    // lookup-self refused to every token (a role without the default
    // policy): the floor keeps this from a login per refused read.
    let vault = vault(|_| false, |_| denied()).await;
    let client = vault.approle_client();
    for _ in 0..3 {
        assert!(matches!(read(&client).await.unwrap_err(), Error::PermissionDenied { .. }));
    }
    assert_eq!(vault.count(LOGIN), 1);
}

#[tokio::test]
async fn concurrent_callers_share_one_login_and_its_failure() {
    let vault = MockVault::start(|_, path, _| match path {
        "auth/approle/login" => (400, r#"{"errors":["invalid role or secret ID"]}"#.into()),
        _ => (404, "{}".into()),
    })
    .await;
    let client = vault.approle_client();
    let attempts = futures::future::join_all((0..8).map(|_| client.ensure_token())).await;
    for attempt in attempts {
        let err = attempt.unwrap_err().to_string();
        assert!(err.contains("invalid role or secret ID") && !err.contains("\"s\""), "{err}");
    }
    // Within the backoff window, the failure is the answer.
    assert!(client.ensure_token().await.is_err());
    assert_eq!(vault.count(LOGIN), 1, "one login attempt per backoff window");
}

#[tokio::test]
async fn close_revokes_the_login_token_and_logs_in_no_more() {
    let vault = vault(|_| true, |_| denied()).await;
    let client = vault.approle_client();
    client.ensure_token().await.unwrap();
    let holder = client.clone();
    let closing = tokio::spawn(async move { client.close(Duration::from_secs(10)).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(vault.count(REVOKE), 0, "a sync still holds the client");
    // That sync can still use it; once it lets go, the token is revoked.
    holder.ensure_token().await.unwrap();
    drop(holder);
    assert!(closing.await.unwrap().unwrap());
    assert_eq!(vault.tokens_of(REVOKE), ["t1"]);
    assert_eq!(vault.count(LOGIN), 1);
}

#[tokio::test]
async fn a_closed_client_refuses_to_log_in() {
    let vault = vault(|_| true, |_| denied()).await;
    let client = vault.approle_client();
    let holder = client.clone();
    // Nothing logged in yet: nothing to revoke.
    assert!(!client.close(Duration::ZERO).await.unwrap());
    assert!(matches!(holder.ensure_token().await, Err(Error::Closed)));
    assert_eq!(vault.count(LOGIN) + vault.count(REVOKE), 0);
}

#[tokio::test]
async fn a_token_given_by_the_user_is_never_revoked() {
    let vault = vault(|_| true, |_| denied()).await;
    let client = Client::new(
        ServerConfig { address: vault.addr.clone(), ..ServerConfig::default() },
        Auth::Token(Sensitive::new("users-token")),
    )
    .unwrap();
    client.ensure_token().await.unwrap();
    assert!(!client.close(Duration::ZERO).await.unwrap());
    assert_eq!(vault.count(REVOKE), 0);
}
/// Records what an [`Observer`] is told.
#[derive(Default)]
struct Recorder {
    requests: std::sync::Mutex<Vec<(&'static str, Option<u16>)>>,
    logins: std::sync::Mutex<Vec<(&'static str, LoginOutcome)>>,
}

impl Observer for Recorder {
    fn request(&self, operation: Operation, status: Option<u16>, _: Duration) {
        self.requests.lock().unwrap().push((operation.label(), status));
    }

    fn login(&self, method: &'static str, outcome: LoginOutcome) {
        self.logins.lock().unwrap().push((method, outcome));
    }
}

/// An AppRole client of the Vault at `address`, and what it reports.
fn observed_approle_client(address: &str) -> (Client, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let client = Client::observed(
        ServerConfig { address: address.to_owned(), ..ServerConfig::default() },
        Auth::AppRole { mount_path: "approle".into(), role_id: "r".into(), secret_id: Sensitive::new("s") },
        recorder.clone(),
    )
    .unwrap();
    (client, recorder)
}

#[tokio::test]
async fn the_observer_hears_every_request_and_login() {
    let vault = vault(|_| true, |_| (200, json!({"data": {"data": {"k": "v"}}}).to_string())).await;
    let (client, recorder) = observed_approle_client(&vault.addr);
    read(&client).await.unwrap();
    assert_eq!(*recorder.logins.lock().unwrap(), [("appRole", LoginOutcome::Success)]);
    assert_eq!(
        *recorder.requests.lock().unwrap(),
        [("login", Some(200)), ("mount_info", Some(200)), ("read", Some(200))]
    );
    let ttl = client.token_ttl_remaining().expect("the login token expires");
    assert!(ttl <= Duration::from_secs(3600) && ttl > Duration::from_secs(3500), "{ttl:?}");

    // No answer at all: a request without status, an unreachable login.
    let (client, recorder) = observed_approle_client("http://127.0.0.1:1");
    assert!(client.ensure_token().await.is_err());
    assert_eq!(*recorder.requests.lock().unwrap(), [("login", None)]);
    assert_eq!(*recorder.logins.lock().unwrap(), [("appRole", LoginOutcome::Unreachable)]);
    assert_eq!(client.token_ttl_remaining(), None);
}

#[tokio::test]
async fn a_refused_login_is_reported_as_refused() {
    let vault = MockVault::start(|_, path, _| match path {
        "auth/approle/login" => (400, r#"{"errors":["invalid role or secret ID"]}"#.into()),
        _ => (404, "{}".into()),
    })
    .await;
    let (client, recorder) = observed_approle_client(&vault.addr);
    assert!(client.ensure_token().await.is_err());
    assert_eq!(*recorder.logins.lock().unwrap(), [("appRole", LoginOutcome::Refused)]);
    assert_eq!(*recorder.requests.lock().unwrap(), [("login", Some(400))]);
}

#[tokio::test]
async fn reads_within_the_window_are_counted_as_coalesced() {
    let vault = vault(|_| true, |_| (200, json!({"data": {"data": {"k": "v"}}}).to_string())).await;
    let client = vault.approle_client();
    let shared = || client.read_kv("secret", "app", KvVersion::V2, None, Freshness::Shared);
    shared().await.unwrap();
    shared().await.unwrap();
    shared().await.unwrap();
    assert_eq!(vault.count(READ), 1);
    assert_eq!(client.coalesced_count(), 2);
    assert_eq!(client.read_count(), 1);
}

/// ESO's store `retrySettings`: a request that fails in a way that may
/// pass (a 5xx other than 501) is tried `max_retries` more times; one
/// that will not pass (a 403) and a client without retries ask once.
#[tokio::test]
async fn retry_settings_retry_only_what_may_pass() {
    let failures = Arc::new(std::sync::atomic::AtomicUsize::new(2));
    let left = failures.clone();
    let vault = MockVault::start(move |method, path, _| match (method, path) {
        ("GET", "secret/data/flaky") if left.fetch_sub(1, Ordering::SeqCst) > 0 => {
            (502, r#"{"errors":["bad gateway"]}"#.into())
        }
        ("GET", "secret/data/flaky") => {
            (200, json!({"data": {"data": {"k": "v"}, "metadata": {"version": 1}}}).to_string())
        }
        ("GET", "secret/data/denied") => denied(),
        ("GET", "secret/data/down") => (500, r#"{"errors":["internal"]}"#.into()),
        ("GET", "sys/internal/ui/mounts/secret") => (200, r#"{"data":{"type":"kv","path":"secret/"}}"#.into()),
        ("GET", "auth/token/lookup-self") => (200, json!({"data": {"ttl": 3600}}).to_string()),
        _ => (404, "{}".into()),
    })
    .await;
    let client = |max_retries| {
        Client::new(
            ServerConfig {
                address: vault.addr.clone(),
                retry: super::Retry { max_retries, interval: Duration::from_millis(10) },
                ..ServerConfig::default()
            },
            Auth::Token(Sensitive::new("t")),
        )
        .unwrap()
    };
    let read =
        async |client: &Client, path: &str| client.read_kv("secret", path, KvVersion::V2, None, Freshness::Now).await;
    let retrying = client(3);
    let secret = read(&retrying, "flaky").await.expect("passes on the third attempt");
    assert_eq!(secret.data["k"], "v");
    assert_eq!(vault.count("GET secret/data/flaky"), 3);
    assert!(read(&retrying, "denied").await.is_err());
    assert_eq!(vault.count("GET secret/data/denied"), 1, "a 403 will not pass");
    assert!(read(&retrying, "down").await.is_err());
    assert_eq!(vault.count("GET secret/data/down"), 4, "1 + max_retries");
    assert!(read(&client(0), "down").await.is_err());
    assert_eq!(vault.count("GET secret/data/down"), 5, "no retries by default");
}
