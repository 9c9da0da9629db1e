//! `POST /{tenant}/oauth2/v2.0/token`: the client-credentials grant with the identity
//! platform's AADSTS error bodies.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use time::macros::format_description;
use tokio::time::Instant;

use super::{AccessGrant, EntraState};
use crate::common::{BASE62, Refusal, now, secret};

const GRAPH_DEFAULT_SCOPE: &str = "https://graph.microsoft.com/.default";

/// An OAuth error as the identity platform writes it: the AADSTS code leads the description,
/// followed by trace, correlation and timestamp lines.
fn aadsts(state: &EntraState, status: StatusCode, error: &str, code: u32, message: &str) -> Refusal {
    let timestamp = now()
        .format(format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z"))
        .expect("UTC timestamps format");
    let (trace_id, correlation_id) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let body = json!({
        "error": error,
        "error_description": format!(
            "AADSTS{code}: {message}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}"
        ),
        "error_codes": [code],
        "timestamp": timestamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": format!("{}/error?code={code}", state.base_url),
    });
    Refusal::new((status, Json(body)))
}

pub(super) async fn token(
    State(state): State<Arc<EntraState>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Result<Response, Refusal> {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field =
        |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
    let bad = |status, error, code, message: &str| aadsts(&state, status, error, code, message);
    let tenant_name = {
        let t = state.tenant.read().expect("tenant lock");
        if !tenant.eq_ignore_ascii_case(&t.tenant_id) && !tenant.eq_ignore_ascii_case(&t.domain) {
            let message = format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing \
                 into the correct cloud. Check with your subscription administrator, this may happen if there \
                 are no active subscriptions for the tenant."
            );
            return Err(bad(StatusCode::BAD_REQUEST, "invalid_request", 90002, &message));
        }
        t.domain.clone()
    };
    match field("grant_type") {
        Some("client_credentials") => {}
        Some(other) => {
            let message =
                format!("The provided value for the input parameter 'grant_type' is not valid: {other}.");
            return Err(bad(StatusCode::BAD_REQUEST, "unsupported_grant_type", 70003, &message));
        }
        None => {
            let message = "The request body must contain the following parameter: 'grant_type'.";
            return Err(bad(StatusCode::BAD_REQUEST, "invalid_request", 900144, message));
        }
    }
    let Some(client_id) = field("client_id") else {
        let message = "The request body must contain the following parameter: 'client_id'.";
        return Err(bad(StatusCode::BAD_REQUEST, "invalid_request", 900144, message));
    };
    let apps = state.apps.lock().expect("apps lock");
    let Some(app) = apps.get(client_id) else {
        let message = format!(
            "Application with identifier '{client_id}' was not found in the directory '{tenant_name}'. This can \
             happen if the application has not been installed by the administrator of the tenant or consented to \
             by any user in the tenant. You may have sent your authentication request to the wrong tenant."
        );
        return Err(bad(StatusCode::BAD_REQUEST, "unauthorized_client", 700016, &message));
    };
    match field("scope") {
        Some(GRAPH_DEFAULT_SCOPE) => {}
        Some(other) => {
            let message = format!(
                "The provided request must include a 'scope' input parameter. The provided value for the input \
                 parameter 'scope' is not valid. The scope {other} is not valid."
            );
            return Err(bad(StatusCode::BAD_REQUEST, "invalid_scope", 70011, &message));
        }
        None => {
            let message = "The request body must contain the following parameter: 'scope'.";
            return Err(bad(StatusCode::BAD_REQUEST, "invalid_request", 900144, message));
        }
    }
    match field("client_secret") {
        Some(s) if s == app.secret => {}
        Some(_) => {
            let message = format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret \
                 value, not the client secret ID, for a secret added to app '{client_id}'."
            );
            return Err(bad(StatusCode::UNAUTHORIZED, "invalid_client", 7000215, &message));
        }
        None => {
            let message = "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.";
            return Err(bad(StatusCode::UNAUTHORIZED, "invalid_client", 7000218, message));
        }
    }
    let access_token =
        format!("eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.{}.{}", secret(BASE62, 200), secret(BASE62, 86));
    let lifetime = state.limits().token_lifetime;
    let grant = AccessGrant {
        app: client_id.to_string(),
        roles: app.roles.clone(),
        expires: Instant::now() + lifetime,
    };
    drop(apps);
    let mut tokens = state.tokens.lock().expect("tokens lock");
    // Expired tokens are refused either way; dropping them keeps a long-running demo small.
    tokens.retain(|_, g| g.expires > Instant::now());
    tokens.insert(access_token.clone(), grant);
    state.token_requests.fetch_add(1, Ordering::SeqCst);
    Ok(Json(json!({
        "token_type": "Bearer",
        "expires_in": lifetime.as_secs(),
        "ext_expires_in": lifetime.as_secs(),
        "access_token": access_token,
    }))
    .into_response())
}
