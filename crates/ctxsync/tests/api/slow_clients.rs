use std::time::{Duration, Instant};

use ctxsync::ConnectionLimits;
use reqwest::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{BASE, Options, spawn_app_with};

const SLOW_CLIENTS: usize = 1000;

/// Reads until the server closes the connection (end of file or a reset), by `deadline`.
async fn closed_by(stream: &mut TcpStream, deadline: tokio::time::Instant) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn a_thousand_clients_that_never_finish_their_headers_starve_nobody_and_are_closed() {
    let header_read_timeout = Duration::from_secs(3);
    let app = spawn_app_with(Options {
        connections: ConnectionLimits { header_read_timeout, ..ConnectionLimits::default() },
        ..Options::default()
    })
    .await;
    let address = app.address.trim_start_matches("http://").to_string();
    let opened = Instant::now();
    let mut slow = Vec::with_capacity(SLOW_CLIENTS);
    for _ in 0..SLOW_CLIENTS {
        let mut stream = TcpStream::connect(&address).await.expect("connect");
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: ctxsync\r\nX-Slow: ").await.unwrap();
        slow.push(stream);
    }

    let started = Instant::now();
    let health =
        app.client.get(format!("{}/healthz", app.address)).timeout(Duration::from_secs(1)).send().await;
    let health_took = started.elapsed();
    assert_eq!(health.expect("/healthz answers within 1 s").status(), StatusCode::OK);
    let started = Instant::now();
    let listed = tokio::time::timeout(Duration::from_secs(1), app.request(Method::GET, BASE, None)).await;
    let get_took = started.elapsed();
    assert_eq!(listed.expect("an authenticated GET answers within 1 s").status(), StatusCode::OK);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for stream in &mut slow {
        assert!(closed_by(stream, deadline).await, "a slow connection still open after 30 s");
    }
    let all_closed = opened.elapsed();
    assert!(all_closed >= header_read_timeout, "closed after {all_closed:?}, before the timeout");
    eprintln!(
        "{SLOW_CLIENTS} slow connections: /healthz took {health_took:?}, an authenticated GET {get_took:?}; \
         all closed {all_closed:?} after the first opened (timeout {header_read_timeout:?})"
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let header_read_timeout = Duration::from_secs(1);
    let app = spawn_app_with(Options {
        connections: ConnectionLimits { header_read_timeout, ..ConnectionLimits::default() },
        ..Options::default()
    })
    .await;
    let mut stream = TcpStream::connect(app.address.trim_start_matches("http://")).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: ctxsync\r\n\r\n").await.unwrap();
    let mut response = [0u8; 12];
    stream.read_exact(&mut response).await.unwrap();
    assert_eq!(&response, b"HTTP/1.1 200");
    let started = Instant::now();
    assert!(closed_by(&mut stream, tokio::time::Instant::now() + Duration::from_secs(10)).await);
    assert!(started.elapsed() >= header_read_timeout / 2, "closed after {:?}", started.elapsed());
}

#[tokio::test]
async fn past_the_cap_connections_wait_for_a_free_one() {
    let app = spawn_app_with(Options {
        connections: ConnectionLimits { max_connections: 2, header_read_timeout: Duration::from_secs(60) },
        ..Options::default()
    })
    .await;
    let address = app.address.trim_start_matches("http://").to_string();
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        stream.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
        held.push(stream);
    }
    let mut waiting = tokio::spawn({
        let (client, url) = (app.client.clone(), format!("{}/healthz", app.address));
        async move { client.get(url).send().await.map(|r| r.status()) }
    });
    let served = tokio::time::timeout(Duration::from_millis(500), &mut waiting).await;
    assert!(served.is_err(), "a third connection was served beside two held ones");
    held.pop();
    let status = tokio::time::timeout(Duration::from_secs(5), waiting).await.expect("served once one closed");
    assert_eq!(status.unwrap().unwrap(), StatusCode::OK);
}

#[tokio::test]
async fn a_body_that_never_finishes_gets_408_within_the_deadline() {
    let app = spawn_app_with(Options::default()).await;
    let mut stream = TcpStream::connect(app.address.trim_start_matches("http://")).await.unwrap();
    let head = format!(
        "POST {BASE} HTTP/1.1\r\nHost: ctxsync\r\nDD-API-KEY: {}\r\nDD-APPLICATION-KEY: {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"data\":",
        app.api_key, app.app_key
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut answer = String::new();
    let mut buf = [0u8; 4096];
    while !answer.ends_with("]}") {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .expect("answered within 30 s")
            .unwrap();
        assert_ne!(n, 0, "closed without an answer: {answer}");
        answer.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("content-type: application/json"), "{answer}");
    assert!(
        answer.ends_with(r#"{"errors":["the request body did not arrive within 10 seconds"]}"#),
        "{answer}"
    );
    assert!(started.elapsed() >= Duration::from_secs(9), "answered after {:?}", started.elapsed());
}
