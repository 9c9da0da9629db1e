//! The SSRF guard, seen from outside: hosts an API caller names are refused when they are, or
//! resolve to, internal addresses, before any connection is made.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

async fn validate_okta(domain: &str) -> Result<(), SourceError> {
    let creds = credentials(IntegrationType::Okta, okta_secrets("00abcdefghijklmnop"));
    sources(Endpoints::default()).validate(domain, &no_settings(), &creds).await
}

fn refused(result: Result<(), SourceError>) -> String {
    match result {
        Err(SourceError::Refused(message)) => message,
        other => panic!("expected Refused, got {other:?}"),
    }
}

#[tokio::test]
async fn loopback_and_private_hosts_are_refused() {
    for (domain, expected) in [
        ("127.0.0.1", "127.0.0.1 is a loopback address"),
        ("10.0.0.1", "10.0.0.1 is a private address"),
        ("169.254.169.254", "169.254.169.254 is a link-local address"),
        ("localhost", "localhost resolves to a loopback address"),
        ("localhost:8443", "localhost resolves to a loopback address"),
    ] {
        let message = refused(validate_okta(domain).await);
        assert!(message.starts_with(expected), "{domain}: {message}");
        assert!(message.contains("CTXSYNC_ALLOW_PRIVATE_SOURCES=true"), "{message}");
    }
}

#[tokio::test(start_paused = true)]
async fn overrides_are_trusted_even_on_loopback() {
    let port = closed_port().await;
    let sources =
        sources(Endpoints::overridden([("CTXSYNC_OKTA_BASE_URL", format!("http://localhost:{port}"))]));
    let creds = credentials(IntegrationType::Okta, okta_secrets("00abcdefghijklmnop"));
    // Past the guard: the connection itself fails, as nothing listens there.
    let result = sources.validate("acme.okta.com", &no_settings(), &creds).await;
    assert!(matches!(result, Err(SourceError::Unreachable(_))), "{result:?}");
}

#[tokio::test(start_paused = true)]
async fn allowing_private_sources_lets_private_hosts_through() {
    let mut endpoints = Endpoints::default();
    endpoints.allow_private = true;
    let sources = sources(endpoints);
    let creds = credentials(IntegrationType::Okta, okta_secrets("00abcdefghijklmnop"));
    let port = closed_port().await;
    // https on a closed loopback port: refused by the OS, not by the guard.
    let result = sources.validate(&format!("127.0.0.1:{port}"), &no_settings(), &creds).await;
    assert!(matches!(result, Err(SourceError::Unreachable(_))), "{result:?}");
}

#[tokio::test]
async fn redirects_are_never_followed() {
    let (elsewhere, counter) = counting_listener().await;
    let redirector = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let port = redirector.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = redirector.accept().await {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let reply = format!(
                "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{elsewhere}/api/v1/users/me\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.write_all(reply.as_bytes()).await;
        }
    });
    let sources =
        sources(Endpoints::overridden([("CTXSYNC_OKTA_BASE_URL", format!("http://127.0.0.1:{port}"))]));
    let creds = credentials(IntegrationType::Okta, okta_secrets("00abcdefghijklmnop"));
    let message = rejected(sources.validate("acme.okta.com", &no_settings(), &creds).await);
    assert!(message.contains("redirect"), "{message}");
    assert_eq!(hits(&counter), 0);
}

#[test]
fn overrides_must_be_http_urls() {
    let endpoints =
        Endpoints::overridden([("CTXSYNC_OKTA_BASE_URL", "ftp://files.example.com/".to_string())]);
    assert!(Sources::new(endpoints).is_err());
}
