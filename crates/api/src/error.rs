//! The one error type of the HTTP layer and its one mapping to a status and a
//! `{"errors": ["…"]}` body (the contract's `APIErrorResponse`).
//!
//! The mapping is an exhaustive `match`, so a new variant forces a decision on its status. What
//! the caller sees is always safe to show; details that are not (store internals) go to the log.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ctxsync_core::FieldErrors;
use ctxsync_sources::SourceError;
use ctxsync_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// The contract's `APIErrorResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A list of errors.
    pub errors: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("bad request: {}", .0.join("; "))]
    BadRequest(Vec<String>),
    /// Without the credentials this route takes (a push delivery without its config's secret).
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request is valid but the resource is not in a state that allows it.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The request body did not arrive in time.
    #[error("request timeout: {0}")]
    RequestTimeout(String),
    #[error("payload too large: {0}")]
    PayloadTooLarge(String),
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// The source could not be reached or kept failing; nothing was changed.
    #[error("bad gateway: {0}")]
    BadGateway(String),
    /// The store cannot be reached right now; retrying later may succeed.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected failure; the details are logged, not returned.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest(vec![message.into()])
    }

    pub fn config_not_found() -> Self {
        ApiError::NotFound("integration config not found".into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn messages(self) -> Vec<String> {
        match self {
            ApiError::BadRequest(m) => m,
            ApiError::Unauthorized(m)
            | ApiError::Forbidden(m)
            | ApiError::NotFound(m)
            | ApiError::Conflict(m)
            | ApiError::RequestTimeout(m)
            | ApiError::PayloadTooLarge(m)
            | ApiError::UnsupportedMediaType(m)
            | ApiError::BadGateway(m)
            | ApiError::Unavailable(m) => vec![m],
            ApiError::MethodNotAllowed => vec!["Method not allowed".into()],
            ApiError::Internal(_) => vec!["Internal server error".into()],
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            ApiError::Internal(detail) => tracing::error!(%detail, "request failed"),
            ApiError::Unavailable(detail) => tracing::warn!(%detail, "store unavailable"),
            _ => tracing::debug!(error = %self, "request rejected"),
        }
        (status, Json(ErrorBody { errors: self.messages() })).into_response()
    }
}

impl From<FieldErrors> for ApiError {
    fn from(e: FieldErrors) -> Self {
        ApiError::BadRequest(e.messages())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            return ApiError::Unavailable("the configuration store is unavailable; retry shortly".into());
        }
        // Every variant decided here, so a new one cannot slip through as a 500 unnoticed.
        match e {
            // What the caller asked for cannot be done (rotating a revoked key); the message says why.
            StoreError::Invalid(message) => ApiError::BadRequest(vec![message]),
            // A run's lease taken over and a bootstrap key of another org are the operator's or
            // the engine's business, not a request's; the rest are faults of the set-up or the data.
            StoreError::RunTakenOver(_)
            | StoreError::LeaseLost { .. }
            | StoreError::KeyInOtherOrg { .. }
            | StoreError::InvalidMasterKey { .. }
            | StoreError::InvalidMasterKeyFile { .. }
            | StoreError::MasterKeyIo { .. }
            | StoreError::MasterKeyMismatch
            | StoreError::SecretsUndecryptable { .. }
            | StoreError::CreateDir { .. }
            | StoreError::Connect(_)
            | StoreError::PostgresConnect { .. }
            | StoreError::Migrate(_)
            | StoreError::Database(_)
            | StoreError::Corrupt(_) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<SourceError> for ApiError {
    fn from(e: SourceError) -> Self {
        match e {
            SourceError::Rejected(m) | SourceError::Refused(m) | SourceError::InvalidCredentials(m) => {
                ApiError::BadRequest(vec![m])
            }
            SourceError::Unreachable(m) => ApiError::BadGateway(m),
        }
    }
}
