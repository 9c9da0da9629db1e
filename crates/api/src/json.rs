//! The request-body extractor: content type, size limit and JSON syntax, each failing with a
//! `{"errors": [...]}` body rather than axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde_json::Value;

use crate::error::ApiError;

/// Requests larger than this are refused with 413; a service account key file is about 2.5 KiB.
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

/// A parsed JSON request body.
pub struct JsonBody(pub Value);

/// A JSON request body the route may do without (activate's overrides).
pub struct OptionalJsonBody(pub Option<Value>);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        read(request, state).await?.map(JsonBody).ok_or_else(|| {
            ApiError::bad_request(
                "request body is required: a JSON object with data.type and data.attributes",
            )
        })
    }
}

impl<S: Send + Sync> FromRequest<S> for OptionalJsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        read(request, state).await.map(OptionalJsonBody)
    }
}

/// The body as JSON, or `None` when it is empty.
async fn read<S: Send + Sync>(request: Request, state: &S) -> Result<Option<Value>, ApiError> {
    let content_type =
        request.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let bytes = Bytes::from_request(request, state).await.map_err(|rejection| match rejection {
        BytesRejection::FailedToBufferBody(_)
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE =>
        {
            ApiError::PayloadTooLarge(format!("request body is larger than {} KiB", BODY_LIMIT_BYTES / 1024))
        }
        other => ApiError::bad_request(format!("could not read the request body: {}", other.body_text())),
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if !is_json(&content_type) {
        return Err(ApiError::UnsupportedMediaType("Content-Type must be application/json".into()));
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| ApiError::bad_request(format!("request body is not valid JSON: {e}")))
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::is_json;

    #[test]
    fn json_content_types() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/vnd.api+json",
        ] {
            assert!(is_json(ok), "{ok}");
        }
        for bad in ["", "text/plain", "application/x-www-form-urlencoded", "application/jsonp"] {
            assert!(!is_json(bad), "{bad}");
        }
    }
}
