//! Slow clients are cut off (issue 10, defect 3): stalled sockets driven over raw TCP against
//! a server with 300 ms limits. A head that does not arrive, a body that stops short, an idle
//! kept-alive connection, and the connection cap (the extra connection is refused while the
//! others keep being served).

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

const LIMIT: Duration = Duration::from_millis(300);

async fn app_with_short_limits() -> TestApp {
    spawn_app_with(|c| {
        c.http.head_timeout = LIMIT;
        c.http.body_timeout = LIMIT;
        c.http.idle_timeout = LIMIT * 3;
    })
    .await
}

/// Reads until the server closes the connection (failing after 5 s); returns what came.
async fn read_to_close(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the server did not close the connection");
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads one response with a `content-length` body from a kept-alive connection.
async fn read_response(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let len: usize = text
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                })
                .map(|v| v.trim().parse().unwrap())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return text;
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .expect("no response")
            .unwrap();
        assert!(n > 0, "closed mid-response: {text:?}");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Asserts a raw HTTP answer is `status` with the Lytics error envelope.
#[track_caller]
fn assert_envelope(raw: &str, status: u16) {
    assert!(raw.starts_with(&format!("HTTP/1.1 {status} ")), "{raw:?}");
    let body = &raw[raw.find("\r\n\r\n").expect("no head end") + 4..];
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {raw:?}"));
    assert_eq!(v["status"], status, "{raw:?}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(v["data"].is_null());
}

#[tokio::test]
async fn a_head_that_does_not_arrive_in_time_is_cut_off() {
    let app = app_with_short_limits().await;
    // Part of a head, then nothing: 408 in the envelope, then closed.
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    let t = Instant::now();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let raw = read_to_close(&mut s).await;
    assert_envelope(&raw, 408);
    assert!(t.elapsed() >= LIMIT - Duration::from_millis(50));

    // A head trickled one byte every 50 ms is cut off at the deadline, not kept alive by
    // its pace.
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    let t = Instant::now();
    let (mut rd, mut wr) = s.split();
    let trickle = async {
        for b in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
            if wr.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let mut out = Vec::new();
    tokio::select! {
        _ = trickle => panic!("the trickled head was never cut off"),
        r = rd.read_to_end(&mut out) => { let _ = r; }
    }
    assert!(t.elapsed() < LIMIT * 4, "cut off after {:?}", t.elapsed());
    assert_envelope(&String::from_utf8_lossy(&out), 408);

    // A connection that sends nothing at all is closed without an answer.
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    assert_eq!(read_to_close(&mut s).await, "");
    app.get("/healthz", "").await.ok(200);
}

#[tokio::test]
async fn a_body_that_stops_short_gets_408_and_the_connection_is_closed() {
    let app = app_with_short_limits().await;
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /api/auth/createtoken HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{{\"scopes\":",
        app.token
    );
    let t = Instant::now();
    s.write_all(head.as_bytes()).await.unwrap();
    let raw = read_to_close(&mut s).await;
    assert_envelope(&raw, 408);
    assert!(raw.contains("Request body not received in time"), "{raw}");
    assert!(
        raw.to_ascii_lowercase().contains("connection: close"),
        "{raw}"
    );
    assert!(t.elapsed() >= LIMIT - Duration::from_millis(50));
    assert!(t.elapsed() < Duration::from_secs(3));
    // Nothing was created.
    let list = app.get("/api/auth", &app.token).await;
    assert_eq!(list.ok(200).as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let app = app_with_short_limits().await;
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    let req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    s.write_all(req).await.unwrap();
    assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200 "));
    // Idle for longer than the head timeout but less than the idle timeout: still open, and
    // the idle wait did not count against the next head.
    tokio::time::sleep(LIMIT * 2).await;
    s.write_all(req).await.unwrap();
    assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200 "));
    // Then idle past the idle timeout: closed without an answer.
    let t = Instant::now();
    assert_eq!(read_to_close(&mut s).await, "");
    assert!(
        t.elapsed() >= LIMIT * 3 - Duration::from_millis(50),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn a_connection_over_the_cap_is_refused_and_the_others_are_served() {
    let app = spawn_app_with(|c| c.http.max_connections = 2).await;
    // Connections are accepted in order: the first two take the cap.
    let mut first = TcpStream::connect(app.addr).await.unwrap();
    let mut second = TcpStream::connect(app.addr).await.unwrap();
    let mut third = TcpStream::connect(app.addr).await.unwrap();
    let raw = read_to_close(&mut third).await;
    assert_envelope(&raw, 503);
    assert!(raw.contains("Too many connections"), "{raw}");
    for s in [&mut first, &mut second] {
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        assert!(read_response(s).await.starts_with("HTTP/1.1 200 "));
    }
}

#[tokio::test]
async fn the_limits_layer_file_env_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("authd.toml");
    std::fs::write(&cfg, "head_timeout_ms = 300\nmax_connections = 5\n").unwrap();
    let (mut child, addr, _log) = crate::quiet_log::serve_capturing(
        dir.path(),
        &["--config", cfg.to_str().unwrap(), "--max-connections", "1"],
        &[("AUTHD_MAX_CONNECTIONS", "3")],
    );
    // The flag beats the env and the file: one connection is the cap.
    let mut held = TcpStream::connect(&addr).await.unwrap();
    let mut over = TcpStream::connect(&addr).await.unwrap();
    assert_envelope(&read_to_close(&mut over).await, 503);
    // The file's head timeout (not the 10 s default) closes the silent one.
    let t = Instant::now();
    assert_eq!(read_to_close(&mut held).await, "");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    crate::quiet_log::stop(&mut child);
}
