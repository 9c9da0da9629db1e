//! `ctxsync healthcheck`: one GET of `/readyz`, for a container's HEALTHCHECK or a service
//! manager. Part of the binary because the image has no shell and no HTTP client to run instead.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use anyhow::{Context, anyhow, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use url::{Position, Url};

use crate::settings::HealthcheckArgs;

pub async fn run(args: HealthcheckArgs) -> anyhow::Result<()> {
    let url = args.url.unwrap_or_else(|| readyz_url(args.listen));
    let waited = humantime::format_duration(args.timeout);
    tokio::time::timeout(args.timeout, check(&url))
        .await
        .map_err(|_| anyhow!("{url} did not answer within {waited}"))?
}

/// `/readyz` on the address `serve` listens on. A wildcard address is asked on loopback: it
/// accepts connections there too, and it is no address to connect to.
pub fn readyz_url(listen: SocketAddr) -> Url {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let address = SocketAddr::new(ip, listen.port());
    Url::parse(&format!("http://{address}/readyz")).expect("a socket address makes a valid URL")
}

/// Succeeds when `url` answers 200. HTTP/1.1 by hand: the status line is all it reads.
async fn check(url: &Url) -> anyhow::Result<()> {
    if url.scheme() != "http" {
        bail!("{url}: only http:// URLs can be checked");
    }
    let host = url.host_str().with_context(|| format!("{url} names no host"))?;
    let port = url.port_or_known_default().unwrap_or(80);
    let mut stream = TcpStream::connect(format!("{host}:{port}"))
        .await
        .with_context(|| format!("could not connect to {url}"))?;
    let target = &url[Position::BeforePath..Position::AfterQuery];
    let authority = &url[Position::BeforeHost..Position::AfterPort];
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: ctxsync-healthcheck\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .with_context(|| format!("could not send the request to {url}"))?;
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(2).any(|pair| pair == b"\r\n") && head.len() < 8192 {
        let read = stream.read(&mut chunk).await.with_context(|| format!("could not read {url}'s answer"))?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..read]);
    }
    let head = String::from_utf8_lossy(&head);
    let status_line = head.lines().next().unwrap_or_default();
    let status: String = match status_line.split_once(' ') {
        Some((version, status)) if version.starts_with("HTTP/") => {
            status.chars().filter(|c| !c.is_control()).collect()
        }
        _ => bail!("{url} did not answer HTTP"),
    };
    if status.split(' ').next() != Some("200") {
        bail!("{url} answered {status}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;

    #[test]
    fn wildcard_listen_addresses_are_asked_on_loopback() {
        let url = |listen: &str| readyz_url(listen.parse().unwrap()).to_string();
        assert_eq!(url("0.0.0.0:8080"), "http://127.0.0.1:8080/readyz");
        assert_eq!(url("[::]:8080"), "http://[::1]:8080/readyz");
        assert_eq!(url("192.0.2.7:9000"), "http://192.0.2.7:9000/readyz");
    }

    /// A server that answers one request with `status_line` and records the request.
    async fn answering(status_line: &'static str) -> (Url, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = readyz_url(listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = vec![0u8; 1024];
            let read = stream.read(&mut request).await.unwrap();
            let answer = format!("{status_line}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            stream.write_all(answer.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&request[..read]).into_owned()
        });
        (url, server)
    }

    #[tokio::test]
    async fn only_200_is_healthy() {
        let (url, server) = answering("HTTP/1.1 200 OK").await;
        check(&url).await.unwrap();
        let request = server.await.unwrap();
        assert!(request.starts_with("GET /readyz HTTP/1.1\r\n"), "{request}");
        assert!(
            request.contains(&format!("\r\nHost: {}\r\n", &url[Position::BeforeHost..Position::AfterPort]))
        );

        let (url, _server) = answering("HTTP/1.1 503 Service Unavailable").await;
        let error = check(&url).await.unwrap_err().to_string();
        assert_eq!(error, format!("{url} answered 503 Service Unavailable"));
    }

    #[tokio::test]
    async fn nothing_listening_is_unhealthy() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = readyz_url(listener.local_addr().unwrap());
        drop(listener);
        let error = check(&url).await.unwrap_err().to_string();
        assert_eq!(error, format!("could not connect to {url}"));
    }
}
