//! ctxsync's own key routes (`/api/v2/ctxsync/keys`): list, create, revoke and rotate the keys of
//! the caller's org, for an admin who cannot run `ctxsync keys` on the host. Every route needs
//! the `manage_keys` scope, which a key has only when it lists it.
//!
//! A key is shown by id, kind, scopes and times, never by value; a key's value appears once, in
//! the answer that created it. After a revocation or rotation this replica forgets the
//! authentications it remembered, and every other one does within [`crate::auth_cache::AUTH_TTL`].

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ctxsync_core::Scopes;
use ctxsync_store::{IssuedKey, KeyFilter, KeyInfo, KeyPair};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{Authorized, ManageKeys};
use crate::entities::response::rfc3339;
use crate::error::{ApiError, ErrorBody};
use crate::json::JsonBody;
use crate::state::AppState;

pub const BASE_PATH: &str = "/api/v2/ctxsync/keys";

/// The longest `expires_in` or `grace` accepted: ten years.
const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 86_400);

/// A stored key: `org_id`, `org_name`, `kind` (`api` or `app`), `scopes` (an application key's;
/// null for every permission but managing keys, and for an API key), `status` (`active`,
/// `expired`, `revoked`), `created_at`, `last_used_at` (to the minute), `expires_at`,
/// `revoked_at`. Never the key itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyData {
    pub id: String,
    /// Always `key`.
    #[serde(rename = "type")]
    pub resource_type: &'static str,
    #[schema(value_type = Object)]
    pub attributes: Value,
}

impl From<&KeyInfo> for KeyData {
    fn from(k: &KeyInfo) -> Self {
        KeyData {
            id: k.id.to_string(),
            resource_type: "key",
            attributes: json!({
                "org_id": k.org_id.to_string(),
                "org_name": k.org_name,
                "kind": k.kind.as_str(),
                "scopes": k.scopes.as_ref().and_then(Scopes::names),
                "status": k.status(ctxsync_core::now()),
                "created_at": rfc3339(k.created_at),
                "last_used_at": k.last_used_at.map(rfc3339),
                "expires_at": k.expires_at.map(rfc3339),
                "revoked_at": k.revoked_at.map(rfc3339),
            }),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeysResponse {
    pub data: Vec<KeyData>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyResponse {
    pub data: KeyData,
}

/// A new key pair: `api_key` and `app_key` (shown only here), their ids, `org_id`, `scopes`,
/// `expires_at`.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyPairResponse {
    pub data: KeyPairData,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyPairData {
    /// Always `key_pair`.
    #[serde(rename = "type")]
    pub resource_type: &'static str,
    #[schema(value_type = Object)]
    pub attributes: Value,
}

/// A rotation's new key: the [`KeyData`] attributes plus `key`, its value, shown only here.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedKeyResponse {
    pub data: KeyData,
}

/// `{"data": {"type": "key_pair", "attributes": {"scopes": [...], "expires_in": "90d"}}}`: both
/// attributes optional (no scopes: every permission but `manage_keys`; no expiry: never).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyPairRequest {
    data: KeyPairRequestData,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct KeyPairRequestData {
    #[serde(rename = "type")]
    resource_type: KeyPairType,
    #[serde(default)]
    attributes: KeyPairAttributes,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum KeyPairType {
    KeyPair,
}

#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct KeyPairAttributes {
    /// Scope names; none means every permission but `manage_keys`.
    #[serde(default)]
    scopes: Option<Vec<String>>,
    /// A duration such as `90d` or `12h`, at most ten years.
    #[serde(default)]
    expires_in: Option<String>,
}

/// `{"data": {"type": "key_rotation", "attributes": {"grace": "24h", "expires_in": "90d"}}}`:
/// how long the old key keeps working (`0s` stops it at once), and optionally the new key's
/// lifetime.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRotationRequest {
    data: KeyRotationRequestData,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct KeyRotationRequestData {
    #[serde(rename = "type")]
    resource_type: KeyRotationType,
    attributes: KeyRotationAttributes,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum KeyRotationType {
    KeyRotation,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct KeyRotationAttributes {
    /// How long the old key keeps working, such as `24h`; `0s` stops it now.
    grace: String,
    /// The new key's lifetime, such as `90d`; none means it never expires.
    #[serde(default)]
    expires_in: Option<String>,
}

/// A request body read into `T`; serde's message names the unknown or missing field.
fn read<T: serde::de::DeserializeOwned>(doc: Value) -> Result<T, ApiError> {
    serde_json::from_value(doc).map_err(|e| ApiError::bad_request(format!("request body: {e}")))
}

/// The org's keys, oldest first.
#[utoipa::path(
    get,
    path = "/api/v2/ctxsync/keys",
    operation_id = "ListKeys",
    tag = "ctxsync",
    responses(
        (status = 200, description = "OK", body = KeysResponse),
        (status = 403, description = "Not Authorized", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("apiKeyAuth" = [], "appKeyAuth" = []), ("AuthZ" = ["manage_keys"])),
)]
pub async fn list_keys(
    State(state): State<AppState>,
    auth: Authorized<ManageKeys>,
) -> Result<Json<KeysResponse>, ApiError> {
    let keys = state.store.list_keys(KeyFilter::Org(auth.org_id)).await?;
    Ok(Json(KeysResponse { data: keys.iter().map(KeyData::from).collect() }))
}

/// A new key pair in the caller's org.
#[utoipa::path(
    post,
    path = "/api/v2/ctxsync/keys",
    operation_id = "CreateKeyPair",
    tag = "ctxsync",
    request_body(content = KeyPairRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Created; the keys are shown only in this answer", body = KeyPairResponse),
        (status = 400, description = "Bad Request", body = ErrorBody),
        (status = 403, description = "Not Authorized", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("apiKeyAuth" = [], "appKeyAuth" = []), ("AuthZ" = ["manage_keys"])),
)]
pub async fn create_key_pair(
    State(state): State<AppState>,
    auth: Authorized<ManageKeys>,
    JsonBody(doc): JsonBody,
) -> Result<(StatusCode, Json<KeyPairResponse>), ApiError> {
    let request: KeyPairRequest = read(doc)?;
    let KeyPairRequestData { resource_type: KeyPairType::KeyPair, attributes } = request.data;
    let scopes = match attributes.scopes {
        None => Scopes::All,
        Some(names) => Scopes::parse_list(&names.join(","))
            .map_err(|e| ApiError::bad_request(format!("data.attributes.scopes: {e}")))?,
    };
    let expires_at = expiry(attributes.expires_in.as_deref())?;
    let org = state.store.org_name(auth.org_id).await?;
    let pair = state.store.issue_key_pair(&org, &scopes, expires_at).await?;
    tracing::info!(org_id = %auth.org_id, api_key_id = %pair.api_key_id, app_key_id = %pair.app_key_id, "key pair created through the API");
    Ok((StatusCode::CREATED, Json(KeyPairResponse { data: pair_data(&pair) })))
}

fn pair_data(pair: &KeyPair) -> KeyPairData {
    KeyPairData {
        resource_type: "key_pair",
        attributes: json!({
            "org_id": pair.org_id.to_string(),
            "api_key_id": pair.api_key_id.to_string(),
            "app_key_id": pair.app_key_id.to_string(),
            "api_key": pair.api_key,
            "app_key": pair.app_key,
            "scopes": pair.scopes.names(),
            "expires_at": pair.expires_at.map(rfc3339),
        }),
    }
}

/// Stops a key at once on this replica, and on every other within two seconds.
#[utoipa::path(
    post,
    path = "/api/v2/ctxsync/keys/{key_id}/revoke",
    operation_id = "RevokeKey",
    tag = "ctxsync",
    params(("key_id" = String, Path, description = "The key's id.")),
    responses(
        (status = 200, description = "Revoked (a key revoked before keeps its first revocation time)", body = KeyResponse),
        (status = 403, description = "Not Authorized", body = ErrorBody),
        (status = 404, description = "Not Found", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("apiKeyAuth" = [], "appKeyAuth" = []), ("AuthZ" = ["manage_keys"])),
)]
pub async fn revoke_key(
    State(state): State<AppState>,
    auth: Authorized<ManageKeys>,
    Path(id): Path<String>,
) -> Result<Json<KeyResponse>, ApiError> {
    let id = key_id(&id)?;
    let revoked = state.store.revoke_key(KeyFilter::Org(auth.org_id), id).await?.ok_or_else(key_not_found)?;
    state.auth.clear();
    tracing::info!(org_id = %auth.org_id, key_id = %id, "key revoked through the API");
    Ok(Json(KeyResponse { data: KeyData::from(&revoked) }))
}

/// A new key of the same kind, org and scopes; the old one keeps working for the grace period.
#[utoipa::path(
    post,
    path = "/api/v2/ctxsync/keys/{key_id}/rotate",
    operation_id = "RotateKey",
    tag = "ctxsync",
    params(("key_id" = String, Path, description = "The key's id.")),
    request_body(content = KeyRotationRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The new key, its value shown only in this answer", body = IssuedKeyResponse),
        (status = 400, description = "Bad Request, or the key is revoked or expired", body = ErrorBody),
        (status = 403, description = "Not Authorized", body = ErrorBody),
        (status = 404, description = "Not Found", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("apiKeyAuth" = [], "appKeyAuth" = []), ("AuthZ" = ["manage_keys"])),
)]
pub async fn rotate_key(
    State(state): State<AppState>,
    auth: Authorized<ManageKeys>,
    Path(id): Path<String>,
    JsonBody(doc): JsonBody,
) -> Result<(StatusCode, Json<IssuedKeyResponse>), ApiError> {
    let id = key_id(&id)?;
    let request: KeyRotationRequest = read(doc)?;
    let KeyRotationRequestData { resource_type: KeyRotationType::KeyRotation, attributes } = request.data;
    let grace = duration("grace", &attributes.grace)?.unsigned_abs();
    let expires_at = expiry(attributes.expires_in.as_deref())?;
    let issued = state
        .store
        .rotate_key(KeyFilter::Org(auth.org_id), id, grace, expires_at)
        .await?
        .ok_or_else(key_not_found)?;
    state.auth.clear();
    tracing::info!(org_id = %auth.org_id, key_id = %id, new_key_id = %issued.info.id, "key rotated through the API");
    Ok((StatusCode::CREATED, Json(IssuedKeyResponse { data: issued_data(&issued) })))
}

fn issued_data(issued: &IssuedKey) -> KeyData {
    let mut data = KeyData::from(&issued.info);
    data.attributes["key"] = json!(issued.key);
    data
}

fn key_id(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse().map_err(|_| key_not_found())
}

fn key_not_found() -> ApiError {
    ApiError::NotFound("Not found: no such key in this org".into())
}

/// When a key given `expires_in` expires.
fn expiry(expires_in: Option<&str>) -> Result<Option<time::OffsetDateTime>, ApiError> {
    Ok(expires_in.map(|v| duration("expires_in", v)).transpose()?.map(|d| ctxsync_core::now() + d))
}

/// A duration attribute such as `90d`, at most ten years.
fn duration(key: &str, value: &str) -> Result<time::Duration, ApiError> {
    let duration = humantime::parse_duration(value).ok().filter(|d| *d <= MAX_DURATION).ok_or_else(|| {
        ApiError::bad_request(format!(
            "data.attributes.{key}: must be a duration such as \"90d\" or \"12h\", at most ten years"
        ))
    })?;
    Ok(time::Duration::try_from(duration).expect("ten years fit"))
}
