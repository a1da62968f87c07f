//! The HTTP server loop: accepts TCP connections and serves each with
//! hyper (HTTP/1.1, and HTTP/2 when the client speaks it), handing every
//! request to the poem endpoint built in `app.rs`.
//!
//! poem's own `Server` has no header read timeout and no cap on open
//! connections, so a client trickling its headers a byte at a time keeps a
//! connection (and a file handle) for ever, and about a thousand of them stop
//! the server. This loop adds what it lacks:
//! - **Header and keep-alive timeouts**: a connection with no request in
//!   progress and no answer being written is closed after
//!   `server.header_timeout_seconds` counted from its accept, or from the
//!   first byte of a next request that does not complete (a silent
//!   connection, half an HTTP/2 preface, headers trickled a byte at a time),
//!   and after `server.keepalive_timeout_seconds` of silence once it has
//!   been answered (an idle HTTP/1.1 keep-alive or HTTP/2 connection, which
//!   a load balancer's pool keeps for its own idle timeout). Bytes that are
//!   not a request count as one on its way: an HTTP/2 connection that goes
//!   on sending control frames without requests has the header timeout.
//! - **Connection cap**: at most `max_connections` open at once. At the cap,
//!   a new connection makes room by closing the connection that has been
//!   idle longest (a slow header sender, or an idle keep-alive), never one
//!   with a request in progress or an answer still being written; only when
//!   every open connection is busy does accepting pause until one closes. So a flood of slow connections
//!   cannot lock other clients out, and file handles never run out.
//! - **Graceful shutdown**: on the signal, stop accepting, let requests in
//!   progress finish within the grace period, then close what is left.
//!
//! - **Problem bodies for unparsable requests**: hyper's own empty 400, 414
//!   and 431 answers get a problem body ([`parse_errors`]).
//!
//! The body read timeout is a layer (`protection::layers::request_limits`),
//! since only a request's handler reads its body.

mod activity;
mod parse_errors;
mod registry;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use poem::endpoint::BoxEndpoint;
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Addr, Endpoint};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

pub use self::activity::ConnectionGauge;
use self::activity::{Activity, Busy};
use self::parse_errors::{Dispatched, ProblemIo};
use self::registry::{Connections, Slot};

/// What the loop enforces on connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Time allowed for a request's headers.
    pub header_timeout: Duration,
    /// Time an answered connection may wait for its next request.
    pub keepalive_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

/// Binds a listener with room for `backlog` connections waiting to be
/// accepted: a burst of thousands of new connections is queued by the
/// kernel rather than refused (the kernel caps it at net.core.somaxconn).
pub fn bind(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As std's bind does: a restart may bind while old connections linger
    // in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Raises this process's soft limit on open files to its hard limit where
/// the system allows, and returns the soft limit in force afterwards.
pub fn raise_file_limit() -> std::io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

/// The connection cap when `server.max_connections` is 0: three quarters of
/// the file-handle limit, leaving the rest for the database, backups and
/// the metrics listener.
pub fn auto_max_connections(file_limit: u64) -> usize {
    usize::try_from(file_limit / 4 * 3)
        .unwrap_or(usize::MAX)
        .max(16)
}

/// Serves `endpoint` on `listener` until `shutdown` resolves; requests in
/// progress then have `grace` to finish, unless `force` (polled only from
/// then on: a second Ctrl-C) resolves first.
pub async fn serve(
    listener: TcpListener,
    endpoint: BoxEndpoint<'static>,
    limits: ConnectionLimits,
    gauge: ConnectionGauge,
    shutdown: impl Future<Output = ()>,
    force: impl Future<Output = ()>,
    grace: Duration,
) -> std::io::Result<()> {
    let local = LocalAddr(Addr::SocketAddr(listener.local_addr()?));
    let endpoint = Arc::new(endpoint);
    let connections = Arc::new(Connections::new(limits.max_connections, gauge));
    let stopping = CancellationToken::new();
    let stop_now = CancellationToken::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file handles, or a connection reset before it
                    // was accepted: wait a little rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = connections.admit() => slot,
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve_connection(Connection {
            stream,
            local: local.clone(),
            peer,
            endpoint: endpoint.clone(),
            limits,
            slot,
            stopping: stopping.clone(),
            stop_now: stop_now.clone(),
        }));
    }
    drop(listener);
    stopping.cancel();
    let open = connections.open();
    if open > 0 {
        tracing::info!(
            open,
            "no new connections; waiting up to {} s for the {open} open connection(s) to finish \
             their requests; Ctrl-C again stops at once",
            grace.as_secs()
        );
    }
    let left_open = tokio::select! {
        done = tokio::time::timeout(grace, connections.all_closed()) => done.is_err().then_some(
            "grace period over; closing the connections left",
        ),
        () = force => Some("stopped again; closing the connections left now"),
    };
    if let Some(why) = left_open {
        tracing::warn!(open = connections.open(), "{why}");
        stop_now.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(1), connections.all_closed()).await;
    }
    Ok(())
}

/// One accepted connection and what serving it needs.
struct Connection {
    stream: TcpStream,
    local: LocalAddr,
    peer: SocketAddr,
    endpoint: Arc<BoxEndpoint<'static>>,
    limits: ConnectionLimits,
    slot: Slot,
    /// Cancelled when the server begins to shut down.
    stopping: CancellationToken,
    /// Cancelled when the grace period is over.
    stop_now: CancellationToken,
}

async fn serve_connection(connection: Connection) {
    let Connection {
        stream,
        local,
        peer,
        endpoint,
        limits,
        slot,
        stopping,
        stop_now,
    } = connection;
    let remote = RemoteAddr(Addr::SocketAddr(peer));
    let activity = slot.activity.clone();
    let dispatched = Dispatched::default();
    let io = TokioIo::new(ProblemIo::new(
        WriteWatch {
            inner: stream,
            activity: activity.clone(),
        },
        dispatched.clone(),
    ));
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        dispatched.one_more();
        let endpoint = endpoint.clone();
        let request = (
            req,
            local.clone(),
            remote.clone(),
            poem::http::uri::Scheme::HTTP,
        )
            .into();
        let busy = activity.begin();
        async move {
            let response = endpoint.get_response(request).await;
            // Busy until the body is written out (hyper drops it then), not
            // just until the handler returned: a connection still sending a
            // large answer is never taken for idle.
            let response = hyper::Response::<BoxBody<Bytes, std::io::Error>>::from(response)
                .map(|body| Sending { body, _busy: busy });
            Ok::<_, Infallible>(response)
        }
    });
    // hyper's header timer starts as soon as it waits for a request, idle
    // keep-alive included, so it is the longer of the two and `idle_for`
    // keeps the header timeout from the first byte.
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout.max(limits.keepalive_timeout));
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        // Closed to make room for a new connection: dropping it closes it.
        () = slot.evicted.cancelled() => return,
        // Idle too long: dropping it closes it.
        () = idle_for(&slot.activity, limits) => return,
        () = stopping.cancelled() => {}
    }
    conn.as_mut().graceful_shutdown();
    tokio::select! {
        _ = conn.as_mut() => {}
        () = stop_now.cancelled() => {}
    }
}

/// Resolves once a connection with no request in progress (nor an answer
/// being written) has waited too long: the header timeout from its accept
/// (through protocol detection: a silent connection, or one that sent half
/// of HTTP/2's preface) or from the first byte of a request that has not
/// arrived whole; the keep-alive timeout of silence once it has been
/// answered, HTTP/1.1 and HTTP/2 alike. One timer per connection, re-armed
/// at most once per timeout and once per request.
async fn idle_for(activity: &Activity, limits: ConnectionLimits) {
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let (header, keepalive) = (ms(limits.header_timeout), ms(limits.keepalive_timeout));
    loop {
        let wait = match activity.waiting_since() {
            Some(since) => {
                let deadline = match activity.heard_since() {
                    Some(heard) => heard.saturating_add(header),
                    None if activity.answered.load(Ordering::Acquire) => {
                        since.saturating_add(keepalive)
                    }
                    None => since.saturating_add(header),
                };
                let now = activity.now_ms();
                if now >= deadline {
                    return;
                }
                deadline - now
            }
            None => header.min(keepalive),
        };
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(wait)) => {}
            // The first byte of a next request shortens the wait.
            () = activity.heard_now.notified() => {}
        }
    }
}

/// A response body that keeps its connection busy until hyper is done with
/// it; its length, and so `Content-Length`, is the body's own.
struct Sending {
    body: BoxBody<Bytes, std::io::Error>,
    _busy: Busy,
}

impl hyper::body::Body for Sending {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// The connection's socket, watched for writes the client is too slow to
/// take (see [`Activity::writing`]) and for the first bytes of a request
/// (see [`Activity::heard`]).
struct WriteWatch {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl tokio::io::AsyncRead for WriteWatch {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.heard();
        }
        result
    }
}

impl tokio::io::AsyncWrite for WriteWatch {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.activity.wrote(&result);
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.activity.wrote(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        self.activity.wrote(&result);
        result
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_automatic_cap_leaves_a_quarter_of_the_file_handles() {
        assert_eq!(auto_max_connections(1024), 768);
        assert_eq!(auto_max_connections(20_000), 15_000);
        assert_eq!(auto_max_connections(8), 16);
    }
}
