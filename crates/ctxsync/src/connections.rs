//! The API listener's connections: hyper's HTTP/1 with a header read deadline, under a cap on
//! connections served at once, so slow or idle clients cannot use up the process's file
//! descriptors and starve everyone else (`/healthz` included).
//!
//! The request body's deadline is the API's (`ctxsync_api`'s body extractor answers 408);
//! hyper's own answers to requests it cannot parse get their JSON body in [`crate::hyper_errors`].

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::hyper_errors::JsonParseErrors;

/// `CTXSYNC_MAX_CONNECTIONS` when unset.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// Descriptors kept for everything but client connections: the database pool, the source
/// clients, the fakes of the demo, log files.
const RESERVED_FILES: usize = 128;

/// Limits on the API listener's connections.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Connections served at once (`CTXSYNC_MAX_CONNECTIONS`); further ones wait in the listen
    /// backlog until one closes.
    pub max_connections: usize,
    /// Time a client has to send a request's line and headers. The same timer runs while a
    /// keep-alive connection waits for its next request, so it is the idle timeout as well.
    pub header_read_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self { max_connections: DEFAULT_MAX_CONNECTIONS, header_read_timeout: Duration::from_secs(10) }
    }
}

impl ConnectionLimits {
    /// These limits with the cap lowered, with a warning, to what `open_files` descriptors allow.
    pub fn fitted_to(self, open_files: Option<usize>) -> Self {
        let Some(open_files) = open_files else { return self };
        let room = open_files.saturating_sub(RESERVED_FILES).max(1);
        if self.max_connections <= room {
            return self;
        }
        tracing::warn!(
            max_connections = self.max_connections,
            open_file_limit = open_files,
            serving_at_most = room,
            "CTXSYNC_MAX_CONNECTIONS is above what the open-file limit allows; raise the limit \
             (ulimit -n, LimitNOFILE=) or lower the setting"
        );
        Self { max_connections: room, ..self }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting and waits for
/// the connections to finish their requests in flight.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = router.clone().map_request(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        });
        let io = JsonParseErrors::new(TokioIo::new(stream));
        let connection = graceful.watch(http.serve_connection(io, TowerToHyperService::new(service)));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %peer, "connection closed");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// A failed accept: a connection reset before it was accepted is the client's business; running
/// out of descriptors (or memory) passes, so wait a moment rather than spin.
async fn accept_failed(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionRefused
    ) {
        return;
    }
    tracing::warn!(error = %e, "could not accept a connection; retrying in a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Raises the soft open-file limit to the hard one, as each connection holds a descriptor and
/// the usual soft default (1024) is at the connection cap. Returns the limit now in force.
#[cfg(unix)]
pub fn raise_open_file_limit() -> Option<usize> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read or write the struct they are given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, ..limit };
            // macOS refuses more than OPEN_MAX; the old limit then stays.
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    Some(usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX))
}

#[cfg(not(unix))]
pub fn raise_open_file_limit() -> Option<usize> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_room_for_other_files() {
        let limits = ConnectionLimits::default();
        assert_eq!(limits.clone().fitted_to(None).max_connections, 1024);
        assert_eq!(limits.clone().fitted_to(Some(65_536)).max_connections, 1024);
        assert_eq!(limits.clone().fitted_to(Some(1024)).max_connections, 1024 - RESERVED_FILES);
        assert_eq!(limits.fitted_to(Some(10)).max_connections, 1);
    }
}
