//! A fixture Kubernetes API server: a `kube::Client` over an in-process
//! tower service that keeps objects by URL path, answers GET (an object, or
//! a list filtered by equality label selectors), PATCH (apply and merge,
//! both as a JSON merge), DELETE and POST, and records every
//! request so a test can say what the reconciler sent. Scripted enough for
//! the reconcilers, not a real API server: no field ownership, no
//! validation.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use kube::Resource;
use serde_json::{Value, json};

/// One request the reconciler sent.
#[derive(Clone, Debug)]
pub(crate) struct Sent {
    pub method: String,
    /// The URL path, without the query.
    pub path: String,
    pub body: Value,
}

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Value>,
    sent: Vec<Sent>,
    resource_version: u64,
}

/// The fixture server; clones share its objects and log.
#[derive(Clone, Default)]
pub(crate) struct FakeApi(Arc<Mutex<State>>);

/// Where kube finds a `K` named `name` in `namespace`.
pub(crate) fn path_of<K: Resource<DynamicType = ()>>(namespace: &str, name: &str) -> String {
    format!("{}/{name}", K::url_path(&(), Some(namespace)))
}

impl FakeApi {
    /// A client whose every request this server answers.
    pub fn client(&self) -> kube::Client {
        kube::Client::new(Service(self.clone()), "default")
    }

    /// Puts (or replaces) an object, as if someone else had written it.
    pub fn put<K: Resource<DynamicType = ()> + serde::Serialize>(&self, object: &K) {
        let meta = object.meta();
        // Cluster-scoped objects have no namespace in their path.
        let path =
            format!("{}/{}", K::url_path(&(), meta.namespace.as_deref()), meta.name.as_deref().unwrap_or_default());
        let mut value = serde_json::to_value(object).expect("object encodes");
        value["apiVersion"] = K::api_version(&()).into();
        value["kind"] = K::kind(&()).into();
        let mut state = self.lock();
        state.resource_version += 1;
        value["metadata"]["resourceVersion"] = state.resource_version.to_string().into();
        state.objects.insert(path, value);
    }

    /// The object stored at `path`, if any.
    pub fn get(&self, path: &str) -> Option<Value> {
        self.lock().objects.get(path).cloned()
    }

    /// Every request sent so far.
    pub fn sent(&self) -> Vec<Sent> {
        self.lock().sent.clone()
    }

    /// The requests with `method` to paths starting with `prefix`.
    pub fn sent_to(&self, method: &str, prefix: &str) -> Vec<Sent> {
        self.sent().into_iter().filter(|s| s.method == method && s.path.starts_with(prefix)).collect()
    }

    /// Forgets the requests sent so far (the objects stay).
    pub fn clear_log(&self) {
        self.lock().sent.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn answer(&self, method: &str, path: &str, query: &str, body: Value) -> (u16, Value) {
        let mut state = self.lock();
        state.sent.push(Sent { method: method.to_owned(), path: path.to_owned(), body: body.clone() });
        // A status patch changes the object it belongs to.
        let object_path = path.strip_suffix("/status").unwrap_or(path).to_owned();
        match method {
            "GET" if is_collection(path) => {
                let selector = label_selector(query);
                let items: Vec<Value> = state
                    .objects
                    .iter()
                    .filter(|(at, object)| {
                        in_collection(at, path) && selector.iter().all(|(k, v)| object["metadata"]["labels"][k] == *v)
                    })
                    .map(|(_, object)| object.clone())
                    .collect();
                let version = state.resource_version.to_string();
                (
                    200,
                    json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": version}, "items": items}),
                )
            }
            "GET" => match state.objects.get(&object_path) {
                Some(object) => (200, object.clone()),
                None => not_found(path),
            },
            "DELETE" => match state.objects.remove(&object_path) {
                Some(_) => (200, json!({"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 200})),
                None => not_found(path),
            },
            "PATCH" => {
                state.resource_version += 1;
                let version = state.resource_version.to_string();
                let object = state.objects.entry(object_path).or_insert_with(|| json!({}));
                merge(object, &body);
                object["metadata"]["resourceVersion"] = version.into();
                (200, object.clone())
            }
            // Events: accepted as sent.
            "POST" => (201, body),
            _ => (405, json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 405})),
        }
    }
}

/// A path's segments after the group and version: `[plural]`,
/// `[plural, name]`, `[namespaces, ns, plural]`, `[namespaces, ns, plural,
/// name]`, and a subresource after those.
fn resource_segments(path: &str) -> Vec<&str> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.first() {
        Some(&"api") => segments[2..].to_vec(),
        _ => segments.get(3..).map(<[&str]>::to_vec).unwrap_or_default(),
    }
}

/// Whether `path` names a list of objects rather than one.
fn is_collection(path: &str) -> bool {
    let rest = resource_segments(path);
    match rest.first() {
        Some(&"namespaces") if rest.len() >= 3 => rest.len() == 3,
        _ => rest.len() == 1,
    }
}

/// Whether the object stored at `at` is in the collection `path`: the
/// same kind in its namespace or, listing a namespaced kind in all
/// namespaces, in any.
fn in_collection(at: &str, path: &str) -> bool {
    let Some((parent, _)) = at.rsplit_once('/') else { return false };
    if parent == path {
        return true;
    }
    let (object, list) = (resource_segments(at), resource_segments(path));
    object.len() == 4
        && object[0] == "namespaces"
        && list.len() == 1
        && object[2] == list[0]
        && at.starts_with(path.trim_end_matches(list[0]))
}

/// `labelSelector=k=v,k2=v2` from a query, decoded; equality terms only.
fn label_selector(query: &str) -> Vec<(String, String)> {
    let Some(encoded) = query.split('&').find_map(|p| p.strip_prefix("labelSelector=")) else { return Vec::new() };
    let decoded = percent_decode(encoded);
    decoded.split(',').filter_map(|term| term.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                out.push(hex.unwrap_or(b'%'));
                i += if hex.is_some() { 3 } else { 1 };
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn not_found(path: &str) -> (u16, Value) {
    (
        404,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
               "message": format!("{path} not found")}),
    )
}

/// JSON merge patch (RFC 7386): objects merge, `null` removes, the rest
/// replaces.
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge(target.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}

struct Service(FakeApi);

impl tower::Service<http::Request<kube::client::Body>> for Service {
    type Response = http::Response<http_body_util::Full<Bytes>>;
    type Error = std::convert::Infallible;
    type Future = Pin<
        Box<dyn Future<Output = Result<http::Response<http_body_util::Full<Bytes>>, std::convert::Infallible>> + Send>,
    >;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<kube::client::Body>) -> Self::Future {
        let api = self.0.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let query = parts.uri.query().unwrap_or_default();
            let (status, answer) = api.answer(parts.method.as_str(), parts.uri.path(), query, body);
            let response = http::Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(http_body_util::Full::new(Bytes::from(answer.to_string())))
                .expect("response builds");
            Ok(response)
        })
    }
}
