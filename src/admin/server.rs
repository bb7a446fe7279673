//! The admin accept loop. It bounds what a client can hold: a connection cap
//! (over it, a 503 and an immediate close, so admin clients never take the
//! file descriptors transfers need), a header timeout (slow-loris sockets and
//! idle keep-alive connections are closed) and a write timeout (a client
//! that stops reading a response). Half-closed requests are answered.

use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Sleep;

use crate::config::AdminSettings;

/// What the endpoint lets its clients hold (`[admin]` `max_connections`,
/// `header_timeout`, `write_timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once; at least 1.
    pub max_connections: usize,
    /// Time to send a whole request header, from connecting or from the
    /// end of the previous response.
    pub header_timeout: Duration,
    /// Time a response may wait for a client that does not read it.
    pub write_timeout: Duration,
}

impl From<&AdminSettings> for Limits {
    fn from(settings: &AdminSettings) -> Self {
        Limits {
            max_connections: settings.max_connections,
            header_timeout: settings.header_timeout.0,
            write_timeout: settings.write_timeout.0,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::from(&AdminSettings::default())
    }
}

/// Sent, without reading the request, to a connection over the cap.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\n\
connection: close\r\n\
content-length: 51\r\n\
\r\n\
{\"error\":\"too many admin connections, retry later\"}";

/// Accepts until `shutdown` resolves, then asks every connection to close
/// after its current request and waits for them.
pub(super) async fn run(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (closing, close_signal) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut refused: u64 = 0;
    let mut shutdown = pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match permits.clone().try_acquire_owned() {
                    Ok(permit) => {
                        connections.spawn(connection(
                            stream,
                            router.clone(),
                            limits,
                            close_signal.clone(),
                            permit,
                        ));
                    }
                    Err(_) => {
                        refused += 1;
                        // One line per burst, not per refused socket.
                        if refused.is_power_of_two() {
                            tracing::warn!(
                                %peer,
                                refused,
                                max_connections = limits.max_connections,
                                "admin connection refused: too many open (set [admin] max_connections)"
                            );
                        }
                        // A fresh socket's send buffer takes these few bytes
                        // at once; the client gets them or a reset, never a
                        // socket held open.
                        let _ = stream.try_write(BUSY);
                    }
                },
                Err(e) => accept_failed(e).await,
            },
        }
    }
    drop(listener);
    let _ = closing.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// A failed accept must not end the endpoint: a peer that reset before
/// being accepted is routine, and out of file descriptors (with transfers
/// holding them) passes.
async fn accept_failed(e: io::Error) {
    match e.kind() {
        io::ErrorKind::ConnectionAborted
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionRefused => {}
        _ => {
            tracing::warn!(error = %e, "admin endpoint cannot accept a connection; retrying in 1s");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

async fn connection(
    stream: TcpStream,
    router: Router,
    limits: Limits,
    mut close_signal: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let io = TokioIo::new(WriteDeadline::new(stream, limits.write_timeout));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        // A client that shuts down its sending side after the request
        // still wants the answer.
        .half_close(true);
    let conn = http.serve_connection(io, TowerToHyperService::new(router));
    let mut conn = pin!(conn);
    let mut asked_to_close = false;
    loop {
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(e) = served {
                    tracing::debug!(error = %e, "admin connection ended");
                }
                return;
            }
            changed = close_signal.changed(), if !asked_to_close => {
                asked_to_close = true;
                if changed.is_ok() {
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// A socket whose writes fail with `TimedOut` once one has waited `limit`
/// for the client to read.
pub(super) struct WriteDeadline {
    stream: TcpStream,
    limit: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl WriteDeadline {
    pub(super) fn new(stream: TcpStream, limit: Duration) -> Self {
        WriteDeadline {
            stream,
            limit,
            stalled: None,
        }
    }

    fn guard<T>(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if result.is_ready() {
            self.stalled = None;
            return result;
        }
        let limit = self.limit;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        ready!(stalled.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "the client read nothing for {}",
                humantime::format_duration(limit)
            ),
        )))
    }
}

impl AsyncRead for WriteDeadline {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for WriteDeadline {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.guard(cx, result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.guard(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.stream).poll_flush(cx);
        self.guard(cx, result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.stream).poll_shutdown(cx);
        self.guard(cx, result)
    }
}
