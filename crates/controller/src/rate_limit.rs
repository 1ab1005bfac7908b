//! A client-side rate limit of the operator's Kubernetes API requests
//! (`--client-qps`, `--client-burst`), as client-go puts on every client
//! and ESO's users tune: a token bucket holding up to `burst` tokens,
//! refilled at `qps` per second, one token per request. kube-rs has none,
//! so without it a resync of thousands of ExternalSecrets sends as many
//! requests as the concurrency allows, which the API server's priority
//! and fairness then throttles for every client of the same level.
//!
//! The limit sits in the kube::Client's service, in `poll_ready`: kube's
//! Buffer worker waits there before it dispatches a request, so requests
//! queue in order and a waiting request has not started its request
//! timeout nor passed the leadership fence yet (both are inside it).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};
use tower::{Layer, Service};

/// Requests per second and how many may go at once; `None` from
/// [`RateLimit::new`] when there is no limit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    qps: f64,
    burst: u32,
}

impl RateLimit {
    /// A limit of `qps` requests per second after a burst of `burst`; no
    /// limit at all when `qps` is 0. Fails on a negative or non-finite
    /// rate, and on a burst of 0 (no request could ever be sent).
    pub fn new(qps: f64, burst: u32) -> Result<Option<Self>, String> {
        if !qps.is_finite() || qps < 0.0 {
            return Err(format!("the rate must be a number of requests per second, 0 or more (got {qps})"));
        }
        if qps == 0.0 {
            return Ok(None);
        }
        if burst == 0 {
            return Err("the burst must be at least 1 when the rate is limited".into());
        }
        Ok(Some(Self { qps, burst }))
    }
}

/// The tokens left and when they were last counted. Shared by every clone
/// of the service, so that clones do not each get a budget of their own.
#[derive(Debug)]
struct Bucket {
    limit: RateLimit,
    tokens: f64,
    counted: Instant,
}

impl Bucket {
    /// A full bucket: the first `burst` requests go at once.
    fn new(limit: RateLimit, now: Instant) -> Self {
        Self { limit, tokens: f64::from(limit.burst), counted: now }
    }

    /// Takes a token, or says how long until there is one.
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.counted).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.limit.qps).min(f64::from(self.limit.burst));
        self.counted = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            // Rounded up to a whole microsecond, so the wake-up never comes
            // a hair early and spins once more for nothing.
            let wait = (1.0 - self.tokens) / self.limit.qps;
            Err(Duration::from_micros((wait * 1e6).ceil() as u64))
        }
    }
}

/// A [`Layer`] for the kube::Client service that holds each request until
/// the bucket has a token for it.
#[derive(Clone, Debug)]
pub struct RateLimitLayer {
    bucket: Arc<Mutex<Bucket>>,
}

impl RateLimitLayer {
    pub fn new(limit: RateLimit) -> Self {
        Self { bucket: Arc::new(Mutex::new(Bucket::new(limit, Instant::now()))) }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimited<S>;

    fn layer(&self, inner: S) -> RateLimited<S> {
        RateLimited { inner, bucket: self.bucket.clone(), state: State::NoToken }
    }
}

enum State {
    NoToken,
    /// The bucket was empty: wait for the next token.
    Waiting(Pin<Box<Sleep>>),
    /// A token taken for the next call.
    Granted,
}

/// The service [`RateLimitLayer`] builds.
pub struct RateLimited<S> {
    inner: S,
    bucket: Arc<Mutex<Bucket>>,
    state: State,
}

// A clone starts without a token: a token belongs to the one call that
// polled for it (tower's rule for a clone of a service that was ready).
impl<S: Clone> Clone for RateLimited<S> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), bucket: self.bucket.clone(), state: State::NoToken }
    }
}

impl<S, Request> Service<Request> for RateLimited<S>
where
    S: Service<Request>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        loop {
            match &mut self.state {
                State::Granted => return self.inner.poll_ready(cx),
                State::Waiting(sleep) => {
                    if sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    self.state = State::NoToken;
                }
                State::NoToken => {
                    // A poisoned lock only means another holder panicked
                    // between two plain assignments: the count is usable.
                    let taken = self.bucket.lock().unwrap_or_else(|e| e.into_inner()).take(Instant::now());
                    self.state = match taken {
                        Ok(()) => State::Granted,
                        Err(wait) => State::Waiting(Box::pin(tokio::time::sleep(wait))),
                    };
                }
            }
        }
    }

    fn call(&mut self, request: Request) -> S::Future {
        // The token is spent; the next request polls for its own.
        self.state = State::NoToken;
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn limit(qps: f64, burst: u32) -> RateLimit {
        RateLimit::new(qps, burst).unwrap().unwrap()
    }

    #[test]
    fn zero_means_no_limit_and_nonsense_is_refused() {
        assert_eq!(RateLimit::new(0.0, 0), Ok(None));
        assert!(RateLimit::new(-1.0, 10).is_err());
        assert!(RateLimit::new(f64::NAN, 10).is_err());
        assert!(RateLimit::new(f64::INFINITY, 10).is_err());
        assert!(RateLimit::new(5.0, 0).is_err());
    }

    #[test]
    fn a_full_bucket_gives_the_burst_then_one_token_per_interval() {
        let start = Instant::now();
        let mut bucket = Bucket::new(limit(10.0, 3), start);
        for _ in 0..3 {
            assert_eq!(bucket.take(start), Ok(()));
        }
        assert_eq!(bucket.take(start), Err(Duration::from_millis(100)));
        assert!(bucket.take(start + Duration::from_millis(99)).is_err(), "no token before 1/qps");
        assert_eq!(bucket.take(start + Duration::from_millis(100)), Ok(()));
    }

    #[test]
    fn an_idle_bucket_refills_up_to_the_burst_only() {
        let start = Instant::now();
        let mut bucket = Bucket::new(limit(100.0, 2), start);
        assert_eq!(bucket.take(start), Ok(()));
        assert_eq!(bucket.take(start), Ok(()));
        // An hour idle earns 2 tokens, not 360,000.
        let later = start + Duration::from_secs(3600);
        assert_eq!(bucket.take(later), Ok(()));
        assert_eq!(bucket.take(later), Ok(()));
        assert!(bucket.take(later).is_err());
    }

    type Answer = http::Response<http_body_util::Full<bytes::Bytes>>;

    /// Counts the requests that reach it, and answers each with "ok".
    #[derive(Clone)]
    struct Counter(Arc<AtomicUsize>);

    impl<R> Service<R> for Counter {
        type Response = Answer;
        type Error = std::convert::Infallible;
        type Future = std::future::Ready<Result<Answer, Self::Error>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: R) -> Self::Future {
            self.0.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Ok(http::Response::new(http_body_util::Full::new(bytes::Bytes::from_static(b"ok")))))
        }
    }

    async fn send(service: &mut RateLimited<Counter>) {
        std::future::poll_fn(|cx| Service::<()>::poll_ready(service, cx)).await.unwrap();
        service.call(()).await.unwrap();
    }

    /// The limit holds in a real kube::Client, whose Buffer worker is what
    /// polls the layer: requests sent at once leave at the bucket's pace.
    #[tokio::test(start_paused = true)]
    async fn a_kube_client_with_the_layer_is_paced() {
        let reached = Arc::new(AtomicUsize::new(0));
        let client = kube::Client::new(RateLimitLayer::new(limit(10.0, 2)).layer(Counter(reached.clone())), "default");
        let start = Instant::now();
        let requests: Vec<_> = (0..6)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move {
                    let request = http::Request::get("/api/v1/namespaces").body(Vec::new()).unwrap();
                    client.request_text(request).await
                })
            })
            .collect();
        for request in requests {
            assert_eq!(request.await.unwrap().unwrap(), "ok");
        }
        // 2 at once, then 4 at 10 per second.
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(400) && took < Duration::from_millis(450), "{took:?}");
        assert_eq!(reached.load(Ordering::SeqCst), 6);
    }

    #[tokio::test(start_paused = true)]
    async fn requests_past_the_burst_are_paced_at_qps() {
        let reached = Arc::new(AtomicUsize::new(0));
        let mut service = RateLimitLayer::new(limit(20.0, 5)).layer(Counter(reached.clone()));
        let start = Instant::now();
        for _ in 0..5 {
            send(&mut service).await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "the burst goes at once");
        for _ in 0..10 {
            send(&mut service).await;
        }
        // 10 more at 20 per second: half a second (the clock is paused, so
        // this is exact but for the microsecond rounding of each wait).
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(500) && took < Duration::from_millis(501), "{took:?}");
        assert_eq!(reached.load(Ordering::SeqCst), 15);
    }

    #[tokio::test(start_paused = true)]
    async fn clones_share_one_bucket() {
        let reached = Arc::new(AtomicUsize::new(0));
        let mut first = RateLimitLayer::new(limit(1.0, 2)).layer(Counter(reached.clone()));
        let mut second = first.clone();
        let start = Instant::now();
        send(&mut first).await;
        send(&mut second).await;
        send(&mut second).await;
        assert!(start.elapsed() >= Duration::from_secs(1), "the third request waited for a token");
        assert_eq!(reached.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_request_is_not_ready() {
        let mut service = RateLimitLayer::new(limit(1.0, 1)).layer(Counter(Arc::new(AtomicUsize::new(0))));
        send(&mut service).await;
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(Service::<()>::poll_ready(&mut service, &mut cx).is_pending(), "an empty bucket holds the request");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(Service::<()>::poll_ready(&mut service, &mut cx).is_ready(), "a token a second later");
    }
}
