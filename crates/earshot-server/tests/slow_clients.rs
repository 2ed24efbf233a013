//! Slow and idle clients cannot take the server from others: request heads and bodies
//! must arrive in time, idle keep-alive connections are closed, and past the connection
//! cap new connections wait instead of hurting the ones being served.

mod common;

use std::time::{Duration, Instant};

use common::{raw_error_code, raw_status, TestApp, ACME};
use earshot_server::conn::ConnConfig;
use earshot_server::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn config(conn: ConnConfig) -> ServerConfig {
    ServerConfig {
        conn,
        ..common::test_server_config()
    }
}

/// Reads until the peer closes (Ok(0) or an error) and returns how long that took, or
/// `None` if it stayed open past `within`.
async fn closed_within(s: &mut TcpStream, within: Duration) -> Option<Duration> {
    let t = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((t + within).into(), s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(t.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// Reads one response head (and a small body) off a kept-alive connection.
async fn read_response(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&out).contains("\r\n\r\n") {
        let n = s.read(&mut buf).await.expect("read");
        assert!(
            n > 0,
            "closed before a response: {:?}",
            String::from_utf8_lossy(&out)
        );
        out.extend_from_slice(&buf[..n]);
    }
    // /healthz answers a few bytes; give them a moment to arrive with the head.
    if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(50), s.read(&mut buf)).await {
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

const HEALTHZ: &str = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_do_not_stop_normal_clients_and_are_closed() {
    let app = TestApp::start_with_config(config(ConnConfig {
        header_timeout: Duration::from_secs(2),
        ..ConnConfig::default()
    }))
    .await;
    // 200 connections that each send half a request head, then one byte at a time.
    let mut slow = Vec::new();
    for _ in 0..200 {
        let mut s = TcpStream::connect(app.addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            .await
            .unwrap();
        slow.push(s);
    }
    let trickle = tokio::spawn(async move {
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(400)).await;
            for s in &mut slow {
                let _ = s.write_all(b"a").await;
            }
        }
        slow
    });
    // A normal client is served at once meanwhile.
    for _ in 0..5 {
        let t = Instant::now();
        let r = app.client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }
    let mut slow = trickle.await.unwrap();
    // Every slow connection is closed once its head is overdue, trickling or not.
    let mut closed = 0;
    for s in &mut slow {
        if closed_within(s, Duration::from_secs(10)).await.is_some() {
            closed += 1;
        }
    }
    assert_eq!(
        closed, 200,
        "slow connections still open after the header timeout"
    );
    // And the server still serves, on a fresh connection: the client's pooled one has been
    // idle for about the header timeout by now, and a request sent on it would race the
    // server closing it (an idle keep-alive connection is closed then, by design).
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    s.write_all(HEALTHZ.as_bytes()).await.unwrap();
    assert_eq!(raw_status(&read_response(&mut s).await), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed() {
    let app = TestApp::start_with_config(config(ConnConfig {
        header_timeout: Duration::from_secs(1),
        ..ConnConfig::default()
    }))
    .await;
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    s.write_all(HEALTHZ.as_bytes()).await.unwrap();
    let first = read_response(&mut s).await;
    assert_eq!(raw_status(&first), 200, "{first}");
    // Kept alive: a second request on the same connection is served.
    s.write_all(HEALTHZ.as_bytes()).await.unwrap();
    assert_eq!(raw_status(&read_response(&mut s).await), 200);
    // Then it sits idle, and the server closes it.
    let took = closed_within(&mut s, Duration::from_secs(10)).await;
    assert!(took.is_some(), "an idle keep-alive connection stayed open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_new_connections_wait_and_served_ones_keep_working() {
    let app = TestApp::start_with_config(config(ConnConfig {
        max_connections: 4,
        header_timeout: Duration::from_secs(30),
        ..ConnConfig::default()
    }))
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(app.addr).await.unwrap();
        s.write_all(HEALTHZ.as_bytes()).await.unwrap();
        assert_eq!(raw_status(&read_response(&mut s).await), 200);
        held.push(s);
    }
    // A fifth connection is not served while four are open...
    let mut extra = TcpStream::connect(app.addr).await.unwrap();
    extra.write_all(HEALTHZ.as_bytes()).await.unwrap();
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(500), extra.read(&mut buf)).await;
    assert!(early.is_err(), "a connection past the cap was served");
    // ...while the served ones are unaffected.
    for s in &mut held {
        s.write_all(HEALTHZ.as_bytes()).await.unwrap();
        assert_eq!(raw_status(&read_response(s).await), 200);
    }
    // One closes, and the waiting connection is served.
    drop(held.pop());
    let resp = tokio::time::timeout(Duration::from_secs(5), read_response(&mut extra))
        .await
        .expect("the waiting connection is served once a slot frees");
    assert_eq!(raw_status(&resp), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_request_body_gets_408_after_the_body_timeout() {
    let app = TestApp::start_with_config(config(ConnConfig {
        body_timeout: Duration::from_secs(1),
        ..ConnConfig::default()
    }))
    .await;
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /v1/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {ACME}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"session_id\""
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let t = Instant::now();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    let resp = String::from_utf8_lossy(&out);
    assert_eq!(raw_status(&resp), 408, "{resp}");
    assert_eq!(raw_error_code(&resp), "body_timeout");
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    // Nothing was created from the half body.
    assert_eq!(app.session_count(ACME).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_websocket_stream_holds_a_connection_slot() {
    let Some(speech) = common::speech::speech_ready() else {
        return;
    };
    let app = TestApp::start_with_speech(
        config(ConnConfig {
            max_connections: 2,
            header_timeout: Duration::from_secs(30),
            ..ConnConfig::default()
        }),
        speech,
    )
    .await;
    let path = "/v1/sessions/ws-slot/stream?sample_rate=16000&encoding=pcm_s16le";
    let ws = common::live::connect(&app, path, ACME)
        .await
        .expect("the upgrade works");
    // The stream holds one slot of two: one more connection is served...
    let mut second = TcpStream::connect(app.addr).await.unwrap();
    second.write_all(HEALTHZ.as_bytes()).await.unwrap();
    assert_eq!(raw_status(&read_response(&mut second).await), 200);
    // ...and a third waits until the stream ends.
    let mut third = TcpStream::connect(app.addr).await.unwrap();
    third.write_all(HEALTHZ.as_bytes()).await.unwrap();
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(500), third.read(&mut buf)).await;
    assert!(early.is_err(), "a connection past the cap was served");
    drop(ws);
    let resp = tokio::time::timeout(Duration::from_secs(10), read_response(&mut third))
        .await
        .expect("served once the stream's connection closed");
    assert_eq!(raw_status(&resp), 200);
}
