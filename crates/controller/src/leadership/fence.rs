//! Fencing of API writes by leadership, and a timeout on every API request.
//!
//! A leader cut off from the API server cannot learn that another replica
//! took over, so it has to stop by its own clock: [`Fence`] holds the local
//! deadline of the current leadership, and [`GuardLayer`] wraps the
//! kube::Client's HTTP service so that every mutating request is refused
//! once that deadline has passed, and abandoned (its future dropped, which
//! closes the connection) if it is still waiting for an answer when the
//! deadline passes. Guarding the service instead of the call sites means a
//! write added later cannot forget the check.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};
use tower::{BoxError, Layer, Service};

/// The local deadline of this replica's leadership. Starts closed; once it
/// lapses it stays closed for the rest of that term of leadership, so a
/// late renewal can never re-open writes after another replica may have
/// taken over. Only a new claim of the Lease ([`Fence::begin_term`]) opens
/// it again, which the caller does only once every controller of the
/// previous term has stopped.
#[derive(Clone, Debug, Default)]
pub struct Fence {
    state: Arc<Mutex<FenceState>>,
}

#[derive(Debug, Default)]
struct FenceState {
    deadline: Option<Instant>,
    lapsed: bool,
}

impl Fence {
    /// A fence that refuses every write until [`Fence::extend`] opens it.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the deadline to `until` after a successful claim of the Lease.
    /// Returns false (and changes nothing) once the fence has lapsed.
    pub fn extend(&self, until: Instant) -> bool {
        let mut state = self.lock();
        if state.lapsed || state.deadline.is_some_and(|d| d <= Instant::now()) {
            state.lapsed = true;
            return false;
        }
        state.deadline = Some(state.deadline.map_or(until, |d| d.max(until)));
        true
    }

    /// Opens a new term of leadership, until `until`, after the Lease was
    /// claimed anew. Unlike [`Fence::extend`] this re-opens a lapsed fence:
    /// call it only when nothing of the previous term still runs (every
    /// write of that term was refused or abandoned at its deadline anyway).
    pub fn begin_term(&self, until: Instant) -> bool {
        let mut state = self.lock();
        if until <= Instant::now() {
            return false;
        }
        *state = FenceState { deadline: Some(until), lapsed: false };
        true
    }

    /// Closes the fence until the next term.
    pub fn revoke(&self) {
        self.lock().lapsed = true;
    }

    /// The deadline writes must finish by, or None when writes are not
    /// allowed now.
    pub fn valid_until(&self) -> Option<Instant> {
        let mut state = self.lock();
        match state.deadline {
            Some(d) if !state.lapsed && d > Instant::now() => Some(d),
            Some(_) => {
                state.lapsed = true;
                None
            }
            None => None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FenceState> {
        // The state is two plain fields, always consistent: a panic
        // elsewhere while holding the lock cannot leave it half-written.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Why a request was not sent or not finished.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error("not the leader: the leadership deadline has passed, writes are fenced off")]
    Fenced,
    #[error("the leadership deadline passed while the write was in flight; abandoned")]
    FencedInFlight,
    #[error("the API request took longer than {0:?}")]
    TimedOut(Duration),
}

/// A [`Layer`] for the kube::Client service: a timeout for every non-watch
/// request and, with a [`Fence`], the leadership fence for writes.
#[derive(Clone, Debug)]
pub struct GuardLayer {
    request_timeout: Duration,
    fence: Option<Fence>,
}

impl GuardLayer {
    pub fn new(request_timeout: Duration, fence: Option<Fence>) -> Self {
        Self { request_timeout, fence }
    }
}

impl<S> Layer<S> for GuardLayer {
    type Service = Guard<S>;

    fn layer(&self, inner: S) -> Guard<S> {
        Guard { inner, request_timeout: self.request_timeout, fence: self.fence.clone() }
    }
}

/// The service [`GuardLayer`] builds.
#[derive(Clone, Debug)]
pub struct Guard<S> {
    inner: S,
    request_timeout: Duration,
    fence: Option<Fence>,
}

type GuardFuture<B> = Pin<Box<dyn Future<Output = Result<Response<GuardedBody<B>>, BoxError>> + Send>>;

impl<S, ReqBody, B> Service<Request<ReqBody>> for Guard<S>
where
    S: Service<Request<ReqBody>, Response = Response<B>>,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Unpin + Send + 'static,
{
    type Response = Response<GuardedBody<B>>;
    type Error = BoxError;
    type Future = GuardFuture<B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let fence_deadline = match (&self.fence, is_mutating(request.method())) {
            (Some(fence), true) => match fence.valid_until() {
                Some(deadline) => Some(deadline),
                None => return Box::pin(std::future::ready(Err(GuardError::Fenced.into()))),
            },
            _ => None,
        };
        // Watches are long polls bounded by their own timeoutSeconds and
        // kube's idle timeout; cutting them here would only churn them.
        let request_deadline = (!is_watch(request.uri())).then(|| Instant::now() + self.request_timeout);
        let request_timeout = self.request_timeout;
        let response = self.inner.call(request);
        Box::pin(async move {
            let limit = match (request_deadline, fence_deadline) {
                (Some(r), Some(f)) => Some(r.min(f)),
                (r, f) => r.or(f),
            };
            let response = match limit {
                None => response.await.map_err(Into::into)?,
                Some(at) => match tokio::time::timeout_at(at, response).await {
                    Ok(response) => response.map_err(Into::into)?,
                    Err(_) if fence_deadline == Some(at) => return Err(GuardError::FencedInFlight.into()),
                    Err(_) => return Err(GuardError::TimedOut(request_timeout).into()),
                },
            };
            // Once the answer has arrived the write has happened (or not);
            // only the request timeout still bounds reading the body.
            Ok(response.map(|body| GuardedBody {
                inner: body,
                deadline: request_deadline.map(|at| Box::pin(tokio::time::sleep_until(at))),
                request_timeout,
            }))
        })
    }
}

/// Anything but a read may change the cluster. Watches are GETs.
fn is_mutating(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn is_watch(uri: &http::Uri) -> bool {
    uri.query().is_some_and(|q| q.split('&').any(|pair| pair == "watch=true" || pair == "watch=1"))
}

/// A response body that fails once the request's deadline passes, so a
/// stalled body cannot hang a non-watch request either.
pub struct GuardedBody<B> {
    inner: B,
    deadline: Option<Pin<Box<Sleep>>>,
    request_timeout: Duration,
}

impl<B> Body for GuardedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if let Some(deadline) = &mut this.deadline
            && deadline.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Some(Err(GuardError::TimedOut(this.request_timeout).into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full};

    /// Answers after `delay`, counting the requests that reached it.
    #[derive(Clone)]
    struct Slow {
        delay: Duration,
        reached: Arc<Mutex<Vec<Method>>>,
    }

    impl Service<Request<()>> for Slow {
        type Response = Response<Full<Bytes>>;
        type Error = BoxError;
        type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: Request<()>) -> Self::Future {
            self.reached.lock().unwrap().push(request.method().clone());
            let delay = self.delay;
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
            })
        }
    }

    fn guarded(delay: Duration, fence: Option<Fence>) -> (Guard<Slow>, Arc<Mutex<Vec<Method>>>) {
        let reached = Arc::new(Mutex::new(Vec::new()));
        let service = GuardLayer::new(Duration::from_secs(5), fence).layer(Slow { delay, reached: reached.clone() });
        (service, reached)
    }

    fn request(method: Method, uri: &str) -> Request<()> {
        Request::builder().method(method).uri(uri).body(()).unwrap()
    }

    async fn send(service: &mut Guard<Slow>, method: Method, uri: &str) -> Result<String, String> {
        match service.call(request(method, uri)).await {
            Ok(response) => {
                let bytes = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
                Ok(String::from_utf8_lossy(&bytes).into_owned())
            }
            Err(e) => Err(e.to_string()),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn writes_are_refused_before_leadership_and_after_it_lapses() {
        let fence = Fence::new();
        let (mut service, reached) = guarded(Duration::from_millis(10), Some(fence.clone()));
        let refused = send(&mut service, Method::PATCH, "/api/v1/namespaces/a/secrets/s").await;
        assert!(refused.unwrap_err().contains("fenced"));
        assert_eq!(send(&mut service, Method::GET, "/api/v1/namespaces/a/secrets/s").await.as_deref(), Ok("ok"));

        assert!(fence.extend(Instant::now() + Duration::from_secs(10)));
        assert_eq!(send(&mut service, Method::POST, "/api/v1/namespaces/a/events").await.as_deref(), Ok("ok"));
        tokio::time::sleep(Duration::from_secs(11)).await;
        assert!(send(&mut service, Method::DELETE, "/api/v1/namespaces/a/secrets/s").await.is_err());
        assert!(!fence.extend(Instant::now() + Duration::from_secs(10)), "a lapsed fence is not renewed");
        assert!(send(&mut service, Method::PUT, "/api/v1/namespaces/a/secrets/s").await.is_err());
        assert_eq!(send(&mut service, Method::GET, "/api/v1/namespaces/a/secrets").await.as_deref(), Ok("ok"));
        // A new claim of the Lease starts a new term.
        assert!(fence.begin_term(Instant::now() + Duration::from_secs(10)));
        assert_eq!(send(&mut service, Method::PUT, "/api/v1/namespaces/a/secrets/s").await.as_deref(), Ok("ok"));
        fence.revoke();
        assert!(send(&mut service, Method::PUT, "/api/v1/namespaces/a/secrets/s").await.is_err());
        assert_eq!(*reached.lock().unwrap(), [Method::GET, Method::POST, Method::GET, Method::PUT]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_in_flight_at_the_deadline_is_abandoned() {
        let fence = Fence::new();
        let (mut service, _) = guarded(Duration::from_secs(3), Some(fence.clone()));
        assert!(fence.extend(Instant::now() + Duration::from_secs(2)));
        let started = Instant::now();
        let result = send(&mut service, Method::PATCH, "/apis/x/v1/namespaces/a/things/t/status").await;
        assert!(result.unwrap_err().contains("in flight"));
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn every_request_but_a_watch_has_a_timeout() {
        let (mut service, _) = guarded(Duration::from_secs(60), None);
        let started = Instant::now();
        let result = send(&mut service, Method::GET, "/api/v1/secrets?labelSelector=a").await;
        assert!(result.unwrap_err().contains("longer than"));
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        let result = send(&mut service, Method::GET, "/api/v1/secrets?resourceVersion=1&watch=true").await;
        assert_eq!(result.as_deref(), Ok("ok"));
        assert_eq!(started.elapsed(), Duration::from_secs(65));
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_fence_writes_pass() {
        let (mut service, _) = guarded(Duration::from_millis(1), None);
        assert_eq!(send(&mut service, Method::POST, "/api/v1/namespaces/a/secrets").await.as_deref(), Ok("ok"));
    }
}
