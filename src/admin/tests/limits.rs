//! What a client can hold: the header timeout, the connection cap, the
//! write timeout, and half-closed requests getting their answer.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::super::server::WriteDeadline;
use super::{Fixture, Limits};

/// Everything the server sends until it closes the connection (a reset
/// counts as closed), or a panic after 10s.
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => raw.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server kept the connection open for 10s");
    raw
}

#[tokio::test]
async fn slow_and_silent_clients_are_closed_after_the_header_timeout() {
    let f = Fixture::start_with(Limits {
        header_timeout: Duration::from_millis(200),
        ..Limits::default()
    })
    .await;
    let mut slow = TcpStream::connect(f.addr).await.expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("half a header");
    let mut silent = TcpStream::connect(f.addr).await.expect("connect");
    let answer = until_closed(&mut slow).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(!answer.contains("200 OK"), "{answer}");
    until_closed(&mut silent).await;

    // Keep-alive: the next request's header is due within the timeout too.
    let mut idle = TcpStream::connect(f.addr).await.expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("a request");
    let answer = until_closed(&mut idle).await;
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200 OK"),
        "{answer:?}"
    );
    f.stop().await;
}

#[tokio::test]
async fn connections_over_the_cap_are_refused_those_within_are_served() {
    let f = Fixture::start_with(Limits {
        max_connections: 4,
        ..Limits::default()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(f.addr).await.expect("connect"));
    }
    for _ in 0..20 {
        let mut over = TcpStream::connect(f.addr).await.expect("connect");
        let answer = until_closed(&mut over).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with("HTTP/1.1 503 Service Unavailable"),
            "{answer}"
        );
        assert!(answer.ends_with("{\"error\":\"too many admin connections, retry later\"}"));
    }
    for stream in &mut held {
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .expect("a request");
        let answer = until_closed(stream).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(answer.contains("\"status\":\"ok\""), "{answer}");
    }
    drop(held);
    // The freed slots serve new clients once the server has seen them go.
    let mut answered = false;
    for _ in 0..100 {
        if f.get("/healthz").await.status == 200 {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(answered, "no slot freed after the held connections closed");
    f.stop().await;
}

#[tokio::test]
async fn a_half_closed_transfer_request_gets_its_answer() {
    let f = Fixture::start().await;
    let mut stream = TcpStream::connect(f.addr).await.expect("connect");
    stream
        .write_all(b"POST /links/alpha/transfer HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        .await
        .expect("send");
    stream.shutdown().await.expect("half-close");
    let answer = until_closed(&mut stream).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.contains("\"records_out\":3"), "{answer}");
    assert_eq!(f.link("alpha").stats().transfers_ok, 1);
    f.stop().await;
}

#[tokio::test]
async fn a_write_the_client_does_not_read_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let _client = TcpStream::connect(addr).await.expect("connect");
    let (server_side, _) = listener.accept().await.expect("accept");
    let mut guarded = WriteDeadline::new(server_side, Duration::from_millis(200));
    let chunk = vec![b'x'; 64 * 1024];
    let written = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Err(e) = guarded.write_all(&chunk).await {
                return e;
            }
        }
    })
    .await
    .expect("the write gave up within 10s");
    assert_eq!(written.kind(), std::io::ErrorKind::TimedOut, "{written}");
}
