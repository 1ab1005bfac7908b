//! What the webhook and the health server share so that one client cannot
//! take either of them over: caps on what is held at once, in all and per
//! peer address; an accept loop that survives running out of file
//! descriptors; HTTP/1 settings that close idle and slow connections.
//!
//! Both ports are reachable by anything in the cluster (a NetworkPolicy
//! may narrow that, but is off by default), so neither may trust a client
//! to send, to finish, or to go away.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tokio::net::{TcpListener, TcpStream};

/// How many of something (connections, requests) may be held at once.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub total: usize,
    /// From one peer address, so that one client leaves room for the
    /// others (the API server, the kubelet, Prometheus).
    pub per_peer: usize,
}

/// Why a [`Gate`] said no.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    Total,
    Peer,
}

/// Counts what is held, in all and per peer; a [`Pass`] gives its place
/// back when dropped.
#[derive(Clone)]
pub struct Gate {
    inner: Arc<GateInner>,
}

struct GateInner {
    limits: Limits,
    held: Mutex<Held>,
    freed: tokio::sync::Notify,
    refused: Family<RefusalLabels, Counter>,
    accept_errors: Counter,
}

/// The label of a refusal counter: which cap was reached.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    reason: &'static str,
}

impl Refusal {
    fn labels(self) -> RefusalLabels {
        RefusalLabels {
            reason: match self {
                Refusal::Total => "total",
                Refusal::Peer => "peer",
            },
        }
    }
}

#[derive(Default)]
struct Held {
    total: usize,
    peers: HashMap<IpAddr, usize>,
}

/// One place held at a [`Gate`].
pub struct Pass {
    gate: Arc<GateInner>,
    peer: IpAddr,
}

impl Gate {
    pub fn new(limits: Limits) -> Gate {
        Gate {
            inner: Arc::new(GateInner {
                limits,
                held: Mutex::default(),
                freed: tokio::sync::Notify::new(),
                refused: refusals(),
                accept_errors: Counter::default(),
            }),
        }
    }

    /// Adds the gate's refusals to `registry` as `<name>_total{reason}`
    /// (`reason` is `total` or `peer`), and, for a gate of connections
    /// (`accepts`), its failed accepts as `accept_errors_total`.
    pub fn register(&self, registry: &mut Registry, name: &str, help: &str, accepts: bool) {
        registry.register(name, help, self.inner.refused.clone());
        if accepts {
            registry.register(
                "accept_errors",
                "Failed accepts, e.g. out of file descriptors",
                self.inner.accept_errors.clone(),
            );
        }
    }

    /// A place for `peer` now, or the reason there is none.
    pub fn try_pass(&self, peer: IpAddr) -> Result<Pass, Refusal> {
        self.take(peer).inspect_err(|refusal| self.count(*refusal))
    }

    /// A place for `peer` as soon as one is free, waiting at most `wait`.
    pub async fn pass_within(&self, peer: IpAddr, wait: Duration) -> Result<Pass, Refusal> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Registered before looking, so a place freed in between wakes
            // this waiter.
            let freed = self.inner.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            match self.take(peer) {
                Ok(pass) => return Ok(pass),
                Err(refusal) => {
                    if tokio::time::timeout_at(deadline, freed).await.is_err() {
                        self.count(refusal);
                        return Err(refusal);
                    }
                }
            }
        }
    }

    fn take(&self, peer: IpAddr) -> Result<Pass, Refusal> {
        // An IPv4 client of a dual-stack listener arrives as ::ffff:a.b.c.d;
        // it is the same peer as a.b.c.d.
        let peer = peer.to_canonical();
        let limits = self.inner.limits;
        let mut held = self.inner.held.lock().expect("gate lock");
        if held.total >= limits.total {
            return Err(Refusal::Total);
        }
        let of_peer = held.peers.entry(peer).or_default();
        if *of_peer >= limits.per_peer {
            return Err(Refusal::Peer);
        }
        *of_peer += 1;
        held.total += 1;
        Ok(Pass { gate: self.inner.clone(), peer })
    }

    fn count(&self, refusal: Refusal) {
        self.inner.refused.get_or_create(&refusal.labels()).inc();
    }

    /// Refusals so far: (the total cap was reached, the peer's cap was).
    pub fn refused(&self) -> (u64, u64) {
        let of = |refusal: Refusal| self.inner.refused.get_or_create(&refusal.labels()).get();
        (of(Refusal::Total), of(Refusal::Peer))
    }

    /// Places held now, in all.
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.inner.held.lock().expect("gate lock").total
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        {
            let mut held = self.gate.held.lock().expect("gate lock");
            held.total -= 1;
            if let Some(count) = held.peers.get_mut(&self.peer) {
                *count -= 1;
                if *count == 0 {
                    held.peers.remove(&self.peer);
                }
            }
        }
        self.gate.freed.notify_waiters();
    }
}

/// After a failed `accept`. The usual cause is running out of file
/// descriptors (EMFILE, ENFILE): the connection stays queued, so the next
/// `accept` fails at once, and retrying without a pause spins a core.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Accepts connections for ever. A connection the gate has no place for is
/// closed at once, so the descriptors held stay within its limits however
/// many a client opens; the others are handed to `handle`, holding their
/// place until its future ends.
pub async fn accept<H, F>(listener: TcpListener, gate: Gate, mut handle: H)
where
    H: FnMut(TcpStream, SocketAddr) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(_) => {
                gate.inner.accept_errors.inc();
                tokio::time::sleep(ACCEPT_PAUSE).await;
                continue;
            }
        };
        let Ok(pass) = gate.try_pass(peer.ip()) else {
            // A reset rather than a FIN: nothing lingers in TIME_WAIT on
            // this side for connections that were never served.
            let _ = stream.set_zero_linger();
            drop(stream);
            continue;
        };
        let work = handle(stream, peer);
        tokio::spawn(async move {
            let _pass = pass;
            work.await;
        });
    }
}

/// The largest read buffer of a connection: request headers must fit in it
/// (those of the API server, the kubelet and Prometheus are far smaller),
/// and it bounds what each connection may hold before its request is read.
const MAX_BUFFER: usize = 32 << 10;

/// HTTP/1 for clients that may be hostile: `header_timeout` bounds both the
/// wait for a request's headers and the idle time of a kept-alive
/// connection between requests (hyper starts the same timer for both).
pub fn http1(header_timeout: Duration) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(header_timeout).max_buf_size(MAX_BUFFER);
    builder
}

/// Both series of a refusal counter, present from the start: a scrape
/// shows 0 rather than nothing, so alerts on a rate need no `absent()`.
fn refusals() -> Family<RefusalLabels, Counter> {
    let family = Family::default();
    for refusal in [Refusal::Total, Refusal::Peer] {
        let _series = family.get_or_create(&refusal.labels());
    }
    family
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn a_peer_gets_its_share_and_others_the_rest() {
        let gate = Gate::new(Limits { total: 3, per_peer: 2 });
        let a1 = gate.try_pass(A).expect("first");
        let _a2 = gate.try_pass(A).expect("second");
        assert_eq!(gate.try_pass(A).err(), Some(Refusal::Peer));
        let _b1 = gate.try_pass(B).expect("another peer");
        assert_eq!(gate.try_pass(B).err(), Some(Refusal::Total));
        drop(a1);
        assert!(gate.try_pass(B).is_ok(), "a place given back is free again");
        assert_eq!(gate.refused(), (1, 1));
    }

    #[test]
    fn an_ipv4_peer_counts_the_same_through_an_ipv6_listener() {
        let gate = Gate::new(Limits { total: 10, per_peer: 1 });
        let _v4 = gate.try_pass(A).expect("first");
        let mapped = match A {
            IpAddr::V4(v4) => IpAddr::V6(v4.to_ipv6_mapped()),
            IpAddr::V6(_) => unreachable!(),
        };
        assert_eq!(gate.try_pass(mapped).err(), Some(Refusal::Peer));
    }

    #[tokio::test]
    async fn a_waiter_gets_the_place_given_back() {
        let gate = Gate::new(Limits { total: 1, per_peer: 1 });
        let held = gate.try_pass(A).expect("first");
        let waiter = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.pass_within(B, Duration::from_secs(10)).await.is_ok() })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(held);
        assert!(waiter.await.expect("waiter"), "woken when the place was freed");
        assert_eq!(gate.pass_within(A, Duration::from_millis(20)).await.err(), None);
        let _again = gate.try_pass(A);
        assert_eq!(gate.pass_within(B, Duration::from_millis(20)).await.err(), Some(Refusal::Total));
    }

    async fn server(limits: Limits, header_timeout: Duration) -> (SocketAddr, Gate) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let gate = Gate::new(limits);
        tokio::spawn(accept(listener, gate.clone(), move |stream, _| async move {
            let service =
                service_fn(|_| async { Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from("ok")))) });
            let _ = http1(header_timeout).serve_connection(TokioIo::new(stream), service).await;
        }));
        (addr, gate)
    }

    /// Whether the server closed `stream` (reads end or fail) within `wait`.
    async fn closed(stream: &mut TcpStream, wait: Duration) -> bool {
        let mut buf = [0u8; 512];
        loop {
            match tokio::time::timeout(wait, stream.read(&mut buf)).await {
                Err(_) => return false,
                Ok(Ok(0) | Err(_)) => return true,
                Ok(Ok(_)) => {}
            }
        }
    }

    #[tokio::test]
    async fn connections_over_the_peer_cap_are_closed_and_the_rest_served() {
        let (addr, gate) = server(Limits { total: 8, per_peer: 2 }, Duration::from_secs(30)).await;
        let mut idle = Vec::new();
        for _ in 0..2 {
            idle.push(TcpStream::connect(addr).await.expect("connect"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut third = TcpStream::connect(addr).await.expect("connect");
        assert!(closed(&mut third, Duration::from_secs(5)).await, "over the cap: closed at once");
        assert!(!closed(&mut idle[0], Duration::from_millis(200)).await, "within the cap: kept");
        assert_eq!(gate.refused(), (0, 1));
        drop(idle);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(gate.held(), 0, "places given back when connections end");
    }

    #[tokio::test]
    async fn idle_and_silent_connections_are_closed_after_the_header_timeout() {
        let (addr, gate) = server(Limits { total: 8, per_peer: 8 }, Duration::from_millis(300)).await;
        let mut silent = TcpStream::connect(addr).await.expect("connect");
        assert!(closed(&mut silent, Duration::from_secs(5)).await, "nothing sent: closed");
        let mut kept_alive = TcpStream::connect(addr).await.expect("connect");
        kept_alive.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await.expect("write");
        let mut buf = [0u8; 512];
        let n = kept_alive.read(&mut buf).await.expect("read");
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf[..n]));
        assert!(closed(&mut kept_alive, Duration::from_secs(5)).await, "idle after a response: closed");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(gate.held(), 0);
    }
}
