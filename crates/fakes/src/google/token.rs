//! `POST /token`: the JWT-bearer grant, checked the way Google checks it (signature against the
//! account's registered keys, audience, lifetime, domain-wide delegation, impersonated user).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Deserialize;
use serde_json::json;

use super::keys::GOOGLE_TOKEN_URL;
use super::{AccessGrant, GoogleState};
use crate::common::{BASE62, Refusal, secret};

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// How far `iat` may be from the server's clock.
const CLOCK_SKEW: u64 = 300;
const LIFETIME: u64 = 3600;

/// Google accepts the JWT's parts with or without `=` padding.
const B64: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[derive(Deserialize)]
struct JwtHeader {
    alg: String,
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    sub: Option<String>,
    scope: Option<String>,
    aud: String,
    iat: u64,
    exp: u64,
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Refusal {
    Refusal::new((status, Json(json!({"error": error, "error_description": description}))))
}

fn invalid_grant(description: &str) -> Refusal {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

pub(super) async fn token(State(state): State<Arc<GoogleState>>, body: Bytes) -> Result<Response, Refusal> {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let grant_type = field("grant_type").unwrap_or_default();
    if grant_type != JWT_BEARER {
        let description = format!("Invalid grant_type: {grant_type}");
        return Err(oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", &description));
    }
    let assertion = field("assertion").ok_or_else(|| {
        oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Missing required parameter: assertion")
    })?;
    let access_token = grant(&state, assertion)?;
    Ok(Json(json!({
        "access_token": access_token,
        "expires_in": 3599,
        "token_type": "Bearer",
    }))
    .into_response())
}

fn grant(state: &GoogleState, assertion: &str) -> Result<String, Refusal> {
    let malformed = || invalid_grant("Invalid JWT: Unable to parse the JWT.");
    let mut parts = assertion.split('.');
    let (Some(head), Some(body), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let header: JwtHeader =
        B64.decode(head).ok().and_then(|b| serde_json::from_slice(&b).ok()).ok_or_else(malformed)?;
    let claims: Claims =
        B64.decode(body).ok().and_then(|b| serde_json::from_slice(&b).ok()).ok_or_else(malformed)?;
    let signature = B64.decode(signature).map_err(|_| malformed())?;
    if header.alg != "RS256" {
        return Err(invalid_grant("Invalid JWT: unsupported signing algorithm."));
    }
    let keys: Vec<_> = state.keys.iter().filter(|k| k.client_email == claims.iss).collect();
    if keys.is_empty() {
        return Err(invalid_grant("Invalid grant: account not found"));
    }
    let signed = &assertion.as_bytes()[..head.len() + 1 + body.len()];
    let revoked = state.revoked.lock().expect("revoked lock").clone();
    let Some(key) = keys.into_iter().filter(|k| !revoked.contains(&k.client_id)).find(|k| {
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &k.public_key).verify(signed, &signature).is_ok()
    }) else {
        return Err(invalid_grant("Invalid JWT Signature."));
    };
    if claims.aud != GOOGLE_TOKEN_URL {
        return Err(invalid_grant("Invalid JWT: Failed audience check."));
    }
    let now = crate::common::epoch_seconds();
    if claims.exp <= claims.iat || claims.exp - claims.iat > LIFETIME || claims.iat.abs_diff(now) > CLOCK_SKEW
    {
        return Err(invalid_grant(
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. \
             Check your iat and exp values in the JWT claim.",
        ));
    }
    let scopes: HashSet<String> =
        claims.scope.as_deref().unwrap_or("").split_whitespace().map(str::to_owned).collect();
    if scopes.is_empty() {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "Empty or missing scope not allowed.",
        ));
    }
    if let Some(subject) = &claims.sub {
        let granted = state.delegation.get(&key.client_id);
        if !granted.is_some_and(|g| scopes.is_subset(g)) {
            return Err(oauth_error(
                StatusCode::UNAUTHORIZED,
                "unauthorized_client",
                "Client is unauthorized to retrieve access tokens using this method, or client not authorized \
                 for any of the scopes requested.",
            ));
        }
        if state.tenant.read().expect("tenant lock").user_by_email(subject).is_none() {
            return Err(invalid_grant("Invalid email or User ID"));
        }
    }
    let access_token = format!("ya29.{}", secret(BASE62, 120));
    let grant = AccessGrant {
        client_id: key.client_id.clone(),
        project_id: key.project_id.clone(),
        subject: claims.sub,
        scopes,
        expires: Instant::now() + Duration::from_secs(3599),
    };
    state.tokens_issued.fetch_add(1, Ordering::Relaxed);
    let mut tokens = state.tokens.lock().expect("tokens lock");
    // Expired tokens are refused either way; dropping them keeps a long-running demo small.
    tokens.retain(|_, g| g.expires > Instant::now());
    tokens.insert(access_token.clone(), grant);
    Ok(access_token)
}
