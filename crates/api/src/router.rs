//! Every route of the service, in one place.

use std::any::Any;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;

use crate::auth::{authenticate, limit_by_address};
use crate::entities::{self as en, BASE_PATH as ENTITIES};
use crate::error::ApiError;
use crate::integration_config::{self as ic, BASE_PATH};
use crate::json::BODY_LIMIT_BYTES;
use crate::json_errors::json_errors;
use crate::keys::{self, BASE_PATH as KEYS};
use crate::observe::observe;
use crate::push::{self, ENTRA_PUSH_PATH, GOOGLE_PUSH_PATH, OKTA_HOOK_PATH};
use crate::state::AppState;
use crate::{health, openapi};

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route(BASE_PATH, get(ic::list).post(ic::create))
        .route(&format!("{BASE_PATH}/validate"), post(ic::validate_credentials))
        .route(
            &format!("{BASE_PATH}/{{integration_config_id}}"),
            get(ic::get).patch(ic::update).delete(ic::delete),
        )
        .route(&format!("{BASE_PATH}/entra_id/azure_app_registrations"), get(ic::app_registrations))
        .route(&format!("{BASE_PATH}/{{integration_config_id}}/validate"), post(ic::validate_config))
        // The contract names this segment {integration_type}; the router needs one name per
        // position, and the handlers read it as the type.
        .route(&format!("{BASE_PATH}/{{integration_config_id}}/activate"), post(ic::activate))
        .route(&format!("{BASE_PATH}/{{integration_config_id}}/deactivate"), post(ic::deactivate))
        .route(&format!("{ENTITIES}/entities"), get(en::list_entities))
        .route(&format!("{ENTITIES}/entities/lookup"), post(en::lookup))
        .route(&format!("{ENTITIES}/persons"), get(en::get_persons))
        .route(&format!("{ENTITIES}/persons/lookup"), post(en::lookup_persons))
        .route(
            &format!("{ENTITIES}/integration_configs/{{config_id}}/entities/{{kind}}/{{source_id}}"),
            get(en::get_entity),
        )
        .route(
            &format!("{ENTITIES}/integration_configs/{{config_id}}/entities/{{kind}}/{{source_id}}/history"),
            get(en::entity_history),
        )
        .route(&format!("{ENTITIES}/events"), get(en::list_events))
        .route(&format!("{ENTITIES}/integration_configs/{{config_id}}/sync_runs"), get(en::list_runs))
        .route(
            &format!("{ENTITIES}/integration_configs/{{config_id}}/sync_runs/{{run_id}}"),
            get(en::get_run),
        )
        .route(&format!("{ENTITIES}/integration_configs/{{config_id}}/sync"), post(en::sync_now))
        .route(
            &format!("{ENTITIES}/integration_configs/{{config_id}}/sync_runs/{{run_id}}/held_deletions"),
            get(en::list_held_deletions),
        )
        .route(
            &format!("{ENTITIES}/integration_configs/{{config_id}}/sync_runs/{{run_id}}/confirm_deletions"),
            post(en::confirm_deletions),
        )
        .route(
            &format!("{ENTITIES}/integration_configs/{{config_id}}/sync_runs/{{run_id}}/discard_deletions"),
            post(en::discard_deletions),
        )
        .route(&format!("{ENTITIES}/integration_configs/{{config_id}}/health"), get(en::get_health))
        .route(
            &format!("{ENTITIES}/integration_configs/{{config_id}}/push"),
            get(push::get_push).put(push::enable_push).delete(push::disable_push),
        )
        .route(KEYS, get(keys::list_keys).post(keys::create_key_pair))
        .route(&format!("{KEYS}/{{key_id}}/revoke"), post(keys::revoke_key))
        .route(&format!("{KEYS}/{{key_id}}/rotate"), post(keys::rotate_key))
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(from_fn_with_state(state.clone(), authenticate));
    // Sources cannot send API keys: these answer to the config's push secret instead (Okta's
    // header, Graph's clientState, Google's channel token).
    let hooks = Router::new()
        .route(
            &format!("{OKTA_HOOK_PATH}/{{config_id}}"),
            get(push::okta_verification).post(push::okta_delivery),
        )
        .route(&format!("{ENTRA_PUSH_PATH}/{{config_id}}"), post(push::entra_notifications))
        .route(&format!("{ENTRA_PUSH_PATH}/{{config_id}}/lifecycle"), post(push::entra_lifecycle))
        .route(&format!("{GOOGLE_PUSH_PATH}/{{config_id}}"), post(push::google_notification))
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(from_fn_with_state(state.clone(), limit_by_address));
    Router::new()
        .merge(api)
        .merge(hooks)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/api/v2/openapi.json", get(openapi::serve))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(from_fn(json_errors))
        .layer(from_fn(observe))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("Not found".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// A panic is a bug: the caller gets a 500 in the usual shape and the server keeps serving.
/// The panic message is not logged, as it could quote request data.
fn panic_response(_: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    let mut response = ApiError::Internal("handler panicked".into()).into_response();
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, to_bytes};
    use axum::extract::Request;
    use axum::http::header::CONTENT_TYPE;
    use serde_json::{Value, json};
    use tower::ServiceExt;

    use super::*;

    async fn boom() -> StatusCode {
        panic!("a secret in a panic message")
    }

    #[tokio::test]
    async fn a_panicking_handler_gets_a_500_in_the_usual_shape() {
        let router = Router::new()
            .route("/boom", get(boom))
            .layer(CatchPanicLayer::custom(panic_response))
            .layer(from_fn(json_errors));
        let response =
            router.oneshot(Request::builder().uri("/boom").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
        let body: Value =
            serde_json::from_slice(&to_bytes(response.into_body(), 1024).await.unwrap()).unwrap();
        assert_eq!(body, json!({"errors": ["Internal server error"]}));
    }
}
