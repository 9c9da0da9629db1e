//! What every request leaves behind: an `X-Request-Id` on its response, an access log line, and
//! its count and latency in the metrics.
//!
//! Only what the server chose goes into a label or the access line's fixed fields: the route
//! template (never the path a caller sent), a known method or `other`, the status, and the org id
//! the keys resolved to. A caller's request id is echoed only when it is short and plain.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use ctxsync_core::OrgId;
use metrics::{counter, describe_counter, describe_histogram, histogram};
use tracing::Instrument;

pub const REQUEST_ID_HEADER: &str = "x-request-id";
pub const REQUESTS: &str = "ctxsync_http_requests_total";
pub const REQUEST_DURATION: &str = "ctxsync_http_request_duration_seconds";

/// Longest caller-chosen request id echoed; longer ones are replaced.
const MAX_REQUEST_ID: usize = 128;

pub fn describe() {
    describe_counter!(REQUESTS, "API requests answered, by route template, method and status.");
    describe_histogram!(
        REQUEST_DURATION,
        metrics::Unit::Seconds,
        "Time from a request's arrival to its response's head, by route template and method."
    );
}

/// The org a request was authenticated for, left on the response by authentication so the
/// access log can name it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AuthenticatedOrg(pub OrgId);

pub(crate) async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = request_id(request.headers().get(REQUEST_ID_HEADER));
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let method = method_label(request.method());
    let span = tracing::info_span!("request", request_id = %request_id, method, route = %route);
    let mut response = next.run(request).instrument(span).await;
    let took = started.elapsed();
    let status = response.status().as_u16();
    let org = response.extensions().get::<AuthenticatedOrg>().map(|o| o.0.to_string());
    tracing::info!(
        target: "ctxsync::access",
        request_id = %request_id,
        method,
        route = %route,
        status,
        duration_ms = took.as_secs_f64() * 1000.0,
        org_id = org.as_deref().unwrap_or("-"),
        "request"
    );
    let status_label = response.status().as_str().to_owned();
    counter!(REQUESTS, "route" => route.clone(), "method" => method, "status" => status_label).increment(1);
    histogram!(REQUEST_DURATION, "route" => route, "method" => method).record(took.as_secs_f64());
    response.headers_mut().insert(
        REQUEST_ID_HEADER,
        HeaderValue::from_str(&request_id).expect("request ids are visible ASCII"),
    );
    response
}

/// The caller's id when it is 1 to 128 characters of letters, digits and `-_.:/+=`, else a new
/// one: anything else could forge log lines or bloat every log entry.
fn request_id(given: Option<&HeaderValue>) -> String {
    let plain = |s: &&str| {
        !s.is_empty()
            && s.len() <= MAX_REQUEST_ID
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(&b))
    };
    match given.and_then(|v| v.to_str().ok()).filter(plain) {
        Some(id) => id.to_owned(),
        None => new_request_id(),
    }
}

/// A UUID-shaped id unique to this process and request: a random half drawn once, then a counter,
/// so making one costs no system call.
fn new_request_id() -> String {
    static PROCESS: LazyLock<u64> = LazyLock::new(|| uuid::Uuid::new_v4().as_u64_pair().0);
    static NEXT: AtomicU64 = AtomicU64::new(0);
    uuid::Uuid::from_u64_pair(*PROCESS, NEXT.fetch_add(1, Ordering::Relaxed)).to_string()
}

/// A method as a label: the ones HTTP defines, else `other`, since a caller may send any token.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_request_id_is_kept_and_anything_else_replaced() {
        let id = |s: &str| request_id(Some(&HeaderValue::from_str(s).unwrap()));
        assert_eq!(id("req-42_a.b:c/d+e="), "req-42_a.b:c/d+e=");
        for unsafe_id in ["", "a b", "x\"y", &"a".repeat(129), "é"] {
            let replaced = request_id(HeaderValue::from_str(unsafe_id).ok().as_ref());
            assert!(uuid::Uuid::parse_str(&replaced).is_ok(), "{unsafe_id:?} became {replaced:?}");
        }
        assert!(uuid::Uuid::parse_str(&request_id(None)).is_ok());
        assert_ne!(request_id(None), request_id(None), "every request its own");
    }

    #[test]
    fn unknown_methods_are_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }
}
