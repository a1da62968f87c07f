//! Slow clients: trickled headers and bodies are cut off in the configured
//! time, and a flood of slow connections at the connection cap does not lock
//! other clients out. Raw TCP, as a slowloris client would send it.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, spawn_app_with};

/// Writes `bytes` one at a time, `gap` apart, until the server closes the
/// connection or everything is sent; returns whether the server closed it.
async fn trickle(stream: &mut TcpStream, bytes: &[u8], gap: Duration) -> bool {
    for byte in bytes {
        if stream.write_all(&[*byte]).await.is_err() {
            return true;
        }
        tokio::time::sleep(gap).await;
        if closed_now(stream).await {
            return true;
        }
    }
    false
}

/// Whether the server has closed the connection (or answered and closed),
/// looking without waiting.
async fn closed_now(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    match tokio::time::timeout(Duration::from_millis(1), stream.read(&mut buf)).await {
        Ok(Ok(0) | Err(_)) => true,
        Ok(Ok(_)) => closed_now_after_answer(stream).await,
        Err(_) => false,
    }
}

async fn closed_now_after_answer(stream: &mut TcpStream) -> bool {
    let mut rest = Vec::new();
    matches!(
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await,
        Ok(Ok(_) | Err(_))
    )
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.addr).await.unwrap()
}

#[tokio::test]
async fn trickled_headers_are_cut_off_after_the_header_timeout() {
    let app = spawn_app_with(|c| c.server.header_timeout_seconds = 1).await;
    let mut stream = connect(&app).await;
    let started = Instant::now();
    // 94 header bytes at 100 ms each would take over 9 s.
    let headers = b"GET /livez HTTP/1.1\r\nhost: test\r\nx-slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let closed = trickle(&mut stream, headers, Duration::from_millis(100)).await;
    let after = started.elapsed();
    assert!(closed, "still open after {after:?}");
    // Closed at the timeout, not at the end of the trickle.
    assert!(after < Duration::from_secs(4), "{after:?}");
    // A client that sends its request at once is answered as usual.
    assert_eq!(app.get("/livez").await.status(), 200);
}

#[tokio::test]
async fn a_trickled_body_gets_408_after_the_body_timeout() {
    let app = spawn_app_with(|c| {
        c.server.body_timeout_seconds = 1;
        c.server.header_timeout_seconds = 30;
    })
    .await;
    for path in [
        "/api/v1/auth/login",
        // The webhook has no rate limit: a slow body is its only risk.
        "/api/v1/payments/webhooks/stripe",
    ] {
        let mut stream = connect(&app).await;
        let started = Instant::now();
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
             content-length: 100\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        let reader = async {
            let mut buf = [0u8; 4096];
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        answer.extend_from_slice(&buf[..n]);
                        if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                            break;
                        }
                    }
                }
            }
        };
        // Nothing more is sent: the body never arrives.
        tokio::time::timeout(Duration::from_secs(10), reader)
            .await
            .expect("an answer within the body timeout");
        let after = started.elapsed();
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 408"), "{path}: {text}");
        assert!(text.contains("application/problem+json"), "{text}");
        assert!(text.contains("\"code\":\"REQUEST_TIMEOUT\""), "{text}");
        assert!(after >= Duration::from_secs(1), "{after:?}");
    }
}

#[tokio::test]
async fn at_the_connection_cap_slow_connections_make_room_for_other_clients() {
    let app = spawn_app_with(|c| {
        c.server.max_connections = 40;
        c.server.header_timeout_seconds = 60;
    })
    .await;
    // 200 connections, each with half a request's headers, none finishing:
    // five times the cap, open long before any header timeout.
    let mut slow = Vec::new();
    for _ in 0..200 {
        let mut stream = connect(&app).await;
        stream
            .write_all(b"GET /livez HTTP/1.1\r\nhost: te")
            .await
            .unwrap();
        slow.push(stream);
    }
    // A client arriving now is served, every time, while the flood keeps
    // coming: each new slow connection pushes out an older one.
    let probe = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    for _ in 0..20 {
        let resp = tokio::time::timeout(
            Duration::from_secs(5),
            probe.get(app.url("/api/v1/offerings")).send(),
        )
        .await
        .expect("answered while the cap is reached")
        .unwrap();
        assert_eq!(resp.status(), 200);
        let mut more = connect(&app).await;
        more.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        slow.push(more);
    }
    // The server closed the oldest slow connections to stay at its cap.
    let mut closed = 0;
    for stream in &mut slow {
        if closed_now(stream).await {
            closed += 1;
        }
    }
    assert!(closed >= 150, "only {closed} of {} closed", slow.len());
}

/// Sends `request` on a new connection and reads until the server closes
/// it: (status, lower-cased head, body) of the last answer.
async fn raw_exchange(app: &TestApp, request: Vec<u8>) -> (u16, String, String) {
    let mut stream = connect(app).await;
    let (mut reader, mut writer) = stream.split();
    // The server may answer and close before a huge request is all sent.
    let write = async {
        let _ = writer.write_all(&request).await;
    };
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), reader.read_to_end(&mut received));
    let ((), read) = tokio::join!(write, read);
    read.expect("the server closed the connection").ok();
    let text = String::from_utf8_lossy(&received).into_owned();
    // The last answer on the connection.
    let last = text.rfind("HTTP/1.1 ").map_or("", |at| &text[at..]);
    let (head, body) = last.split_once("\r\n\r\n").unwrap_or((last, ""));
    let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_string())
}

#[tokio::test]
async fn requests_hyper_cannot_parse_get_problem_bodies() {
    let app = spawn_app_with(|_| {}).await;
    let huge_header = [
        b"GET /livez HTTP/1.1\r\nhost: test\r\nx-big: ".to_vec(),
        vec![b'a'; 600_000],
        b"\r\n\r\n".to_vec(),
    ]
    .concat();
    let long_target = [
        b"GET /".to_vec(),
        vec![b'a'; 70_000],
        b" HTTP/1.1\r\nhost: test\r\n\r\n".to_vec(),
    ]
    .concat();
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("huge header", huge_header, 431, "HEADERS_TOO_LARGE"),
        ("long target", long_target, 414, "URI_TOO_LONG"),
        (
            "path not UTF-8",
            b"GET /api/v1/offerings/\xff\xfe HTTP/1.1\r\nhost: test\r\n\r\n".to_vec(),
            400,
            "MALFORMED_REQUEST",
        ),
        (
            "bad content-length",
            b"POST /api/v1/auth/login HTTP/1.1\r\nhost: test\r\ncontent-length: abc\r\n\r\n"
                .to_vec(),
            400,
            "MALFORMED_REQUEST",
        ),
        (
            "garbage request line",
            b"\x16\x03\x01 hello\r\n\r\n".to_vec(),
            400,
            "MALFORMED_REQUEST",
        ),
        // A good request, then a bad one on the same connection: the first
        // answer is the service's own, the second is the parser's problem.
        (
            "bad after good",
            b"GET /livez HTTP/1.1\r\nhost: test\r\n\r\nGET /livez HTTP/1.1\r\nhost test\r\n\r\n"
                .to_vec(),
            400,
            "MALFORMED_REQUEST",
        ),
    ];
    for (name, request, status, code) in cases {
        let (got, head, body) = raw_exchange(&app, request).await;
        assert_eq!(got, status, "{name}: {head}\n{body}");
        assert!(
            head.contains("content-type: application/problem+json"),
            "{name}: {head}"
        );
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{name}: {head}"
        );
        let problem: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{name}: {e}: {body}"));
        assert_eq!(problem["status"], status, "{name}");
        assert_eq!(problem["code"], code, "{name}");
        assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    // The server answers as before afterwards.
    assert_eq!(app.get("/livez").await.status(), 200);
}

/// Opens a connection and completes one keep-alive request on it, so it
/// stays open and idle.
async fn idle_keep_alive(app: &TestApp) -> TcpStream {
    let mut stream = connect(app).await;
    stream
        .write_all(b"GET /livez HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 512];
    while !answer.ends_with(br#"{"status":"up"}"#) {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before answering");
        answer.extend_from_slice(&buf[..n]);
    }
    // Sized, not chunked: the answer keeps its length.
    let head = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(head.contains("content-length: 15\r\n"), "{head}");
    stream
}

#[tokio::test]
async fn probes_answer_beside_thousands_of_idle_keep_alive_connections() {
    let app = spawn_app_with(|c| c.server.header_timeout_seconds = 60).await;
    let mut idle = Vec::new();
    for _ in 0..30 {
        let batch: Vec<_> = (0..100).map(|_| idle_keep_alive(&app)).collect();
        idle.extend(futures::future::join_all(batch).await);
    }
    for path in [
        "/livez",
        "/readyz",
        "/healthz",
        "/api/v1/healthz",
        "/api/v1/health",
    ] {
        let resp = app.get(path).await;
        assert_eq!(resp.status(), 200, "{path}");
    }
    let health: serde_json::Value = app.get("/healthz").await.json().await.unwrap();
    let open = health["system"]["openConnections"].as_u64().unwrap();
    assert!(open >= 3_000, "{health}");
    assert_eq!(health["status"], "up", "{health}");
    // The connections are still there and still serve.
    let mut last = idle.pop().unwrap();
    last.write_all(b"GET /livez HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    assert!(last.read(&mut buf).await.unwrap() > 0);
}

/// Reads until the server closes the connection, or `within` passes;
/// returns how long that took, or `None` if it stayed open.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    let drained = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(within, drained)
        .await
        .ok()
        .map(|()| started.elapsed())
}

#[tokio::test]
async fn silent_half_http2_and_idle_http2_connections_are_closed_at_the_header_timeout() {
    let app = spawn_app_with(|c| c.server.header_timeout_seconds = 1).await;
    // HTTP/2's connection preface and an empty SETTINGS frame, then nothing.
    let h2c_idle = [
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
        vec![0, 0, 0, 4, 0, 0, 0, 0, 0],
    ]
    .concat();
    for (what, sent) in [
        ("silent", Vec::new()),
        ("half a preface", b"PRI".to_vec()),
        ("idle HTTP/2", h2c_idle),
    ] {
        let mut stream = connect(&app).await;
        stream.write_all(&sent).await.unwrap();
        let closed = closed_within(&mut stream, Duration::from_secs(8)).await;
        let after = closed.unwrap_or_else(|| panic!("{what}: still open after 8 s"));
        assert!(
            after < Duration::from_secs(4),
            "{what}: closed after {after:?}"
        );
    }
    assert_eq!(app.get("/livez").await.status(), 200);
}

#[tokio::test]
async fn at_the_cap_an_answer_still_being_written_is_never_cut() {
    let app = spawn_app_with(|c| {
        c.server.max_connections = 2;
        c.server.header_timeout_seconds = 60;
    })
    .await;
    // Many pipelined reads whose answers (megabytes) the client does not
    // read yet: the server is left writing them.
    let mut reader = connect(&app).await;
    let expected = 60;
    let requests = b"GET /openapi.json HTTP/1.1\r\nhost: test\r\n\r\n".repeat(expected);
    reader.write_all(&requests).await.unwrap();
    // The first bytes of the first answer: the server is writing.
    let mut buf = vec![0u8; 1 << 16];
    let first = reader.read(&mut buf).await.unwrap();
    assert!(first > 0);
    let mut tail = buf[..first].to_vec();
    // Two newcomers at a cap of two: room is made by closing the idle one,
    // not the connection still writing answers.
    let _idle = connect(&app).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let newcomer = tokio::time::timeout(
        Duration::from_secs(5),
        reqwest::Client::new().get(app.url("/livez")).send(),
    )
    .await
    .expect("room made for the newcomer")
    .unwrap();
    assert_eq!(newcomer.status(), 200);
    // Every pipelined answer arrives whole.
    let status_line = b"HTTP/1.1 200 OK";
    let (mut answers, mut bytes) = (0, first);
    answers += tail
        .windows(status_line.len())
        .filter(|w| w == status_line)
        .count();
    tail.drain(..tail.len().saturating_sub(status_line.len() - 1));
    let read_all = async {
        while answers < expected {
            let n = reader.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            bytes += n;
            // The new bytes, after the end of the last read (a status line
            // may straddle two reads).
            tail.extend_from_slice(&buf[..n]);
            answers += tail
                .windows(status_line.len())
                .filter(|w| w == status_line)
                .count();
            let keep = tail.len().saturating_sub(status_line.len() - 1);
            tail.drain(..keep);
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(30), read_all).await;
    assert_eq!(answers, expected, "received {bytes} bytes");
}

#[tokio::test]
async fn an_answered_connection_waits_the_keep_alive_timeout_and_a_started_request_the_header_timeout()
 {
    let app = spawn_app_with(|c| {
        c.server.header_timeout_seconds = 1;
        c.server.keepalive_timeout_seconds = 60;
    })
    .await;
    // Idle past the header timeout, as a load balancer's pooled connection
    // is: its next request is still answered.
    let mut pooled = idle_keep_alive(&app).await;
    assert!(
        closed_within(&mut pooled, Duration::from_millis(2_500))
            .await
            .is_none(),
        "an answered keep-alive connection was closed at the header timeout"
    );
    pooled
        .write_all(b"GET /livez HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let n = pooled.read(&mut buf).await.unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    // On an answered connection, a next request that starts and stalls has
    // the header timeout, not the keep-alive timeout.
    let mut stalled = idle_keep_alive(&app).await;
    stalled.write_all(b"GET /livez HTT").await.unwrap();
    let closed = closed_within(&mut stalled, Duration::from_secs(8)).await;
    let after = closed.expect("a stalled request on a kept-alive connection stayed open");
    assert!(after < Duration::from_secs(4), "closed after {after:?}");
}
