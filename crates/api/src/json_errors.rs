//! One error shape for every layer: a middleware that gives any 4xx or 5xx response without a
//! JSON body (axum's rejections of a path, a query or a method, tower's layers) the usual
//! `{"errors": ["…"]}` body, keeping its status and headers (`Allow`, rate-limit headers).
//!
//! Requests hyper cannot parse never get here; the server's connections give hyper's answers
//! their JSON body (`ctxsync`'s `hyper_errors`).

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ErrorBody;

/// How much of a plain-text error body is kept as the message.
const MESSAGE_LIMIT_BYTES: usize = 1024;

pub async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(response.headers()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let message = message(status, body).await;
    parts.headers.remove(CONTENT_LENGTH);
    let mut rewritten = Json(ErrorBody { errors: vec![message] }).into_response();
    parts.headers.insert(CONTENT_TYPE, rewritten.headers()[CONTENT_TYPE].clone());
    *rewritten.headers_mut() = parts.headers;
    *rewritten.extensions_mut() = parts.extensions;
    *rewritten.status_mut() = status;
    rewritten
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json"))
}

/// The plain-text body when there is a short one (axum's rejections say what was wrong), else
/// the status's reason phrase.
async fn message(status: StatusCode, body: Body) -> String {
    let text =
        to_bytes(body, MESSAGE_LIMIT_BYTES).await.ok().and_then(|b| String::from_utf8(b.to_vec()).ok());
    match text.as_deref().map(str::trim) {
        Some(text) if !text.is_empty() => text.to_owned(),
        _ => status.canonical_reason().unwrap_or("Error").to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::http::header::ALLOW;
    use axum::middleware::from_fn;
    use axum::routing::get;
    use serde_json::{Value, json};
    use tower::ServiceExt;

    use super::*;
    use crate::error::ApiError;

    async fn call(router: Router, uri: &str) -> (StatusCode, HeaderMap, Value) {
        let response = router
            .layer(from_fn(json_errors))
            .oneshot(Request::builder().uri(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        let bytes = to_bytes(body, usize::MAX).await.unwrap();
        (parts.status, parts.headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn plain_text_errors_become_json_with_their_status_and_headers() {
        let router = Router::new().route(
            "/teapot",
            get(|| async { (StatusCode::IM_A_TEAPOT, [(ALLOW, "BREW")], "short and stout") }),
        );
        let (status, headers, body) = call(router, "/teapot").await;
        assert_eq!(status, StatusCode::IM_A_TEAPOT);
        assert_eq!(headers[CONTENT_TYPE], "application/json");
        assert_eq!(headers[ALLOW], "BREW");
        assert_eq!(body, json!({"errors": ["short and stout"]}));
    }

    #[tokio::test]
    async fn an_empty_error_body_gets_the_reason_phrase() {
        let router = Router::new().route("/gone", get(|| async { StatusCode::GONE }));
        let (status, _, body) = call(router, "/gone").await;
        assert_eq!(status, StatusCode::GONE);
        assert_eq!(body, json!({"errors": ["Gone"]}));
    }

    #[tokio::test]
    async fn json_errors_and_successes_pass_unchanged() {
        let router = Router::new()
            .route("/ok", get(|| async { "fine" }))
            .route("/json", get(|| async { ApiError::Conflict("busy".into()) }));
        let (status, headers, _) = call(router.clone(), "/ok").await;
        assert_eq!(status, StatusCode::OK);
        assert!(headers[CONTENT_TYPE].to_str().unwrap().starts_with("text/plain"));
        let (status, _, body) = call(router, "/json").await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body, json!({"errors": ["busy"]}));
    }
}
