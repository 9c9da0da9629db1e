//! Authentication (`DD-API-KEY` + `DD-APPLICATION-KEY`) and the per-route scope check.
//!
//! A middleware authenticates every API request and rate-limits it (see [`crate::rate_limit`]);
//! each handler then declares the scope it needs in its signature with [`Authorized`], so a
//! route without a scope check does not compile.

use std::marker::PhantomData;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ctxsync_core::{OrgId, Scope};
use ctxsync_store::Principal;

use crate::error::ApiError;
use crate::rate_limit::RateKey;
use crate::state::AppState;

pub const API_KEY_HEADER: &str = "DD-API-KEY";
pub const APP_KEY_HEADER: &str = "DD-APPLICATION-KEY";

/// Authenticates the caller, applies the rate limit of its org (or of its address when it is not
/// authenticated) and adds the `X-RateLimit-*` headers to whatever the route answers.
pub async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let peer = peer(&request);
    let outcome = identify(&state, request.headers()).await;
    let key = match &outcome {
        Ok(principal) => RateKey::Org(principal.org_id),
        Err(_) => RateKey::Address(peer),
    };
    let decision = state.limits.check(key);
    let mut response = match (decision.allowed(), outcome) {
        (false, _) => decision.too_many_requests(),
        (true, Err(e)) => e.into_response(),
        (true, Ok(principal)) => {
            let org = crate::observe::AuthenticatedOrg(principal.org_id);
            request.extensions_mut().insert(principal);
            let mut response = next.run(request).await;
            response.extensions_mut().insert(org);
            response
        }
    };
    decision.write_headers(response.headers_mut());
    response
}

/// The rate limit of the caller's address, for the routes that answer to another credential than
/// an API key (a push endpoint's secret): a flood of refused deliveries stops at the limit.
pub async fn limit_by_address(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let decision = state.limits.check(RateKey::Address(peer(&request)));
    let mut response =
        if decision.allowed() { next.run(request).await } else { decision.too_many_requests() };
    decision.write_headers(response.headers_mut());
    response
}

fn peer(request: &Request) -> IpAddr {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

async fn identify(state: &AppState, headers: &axum::http::HeaderMap) -> Result<Principal, ApiError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).unwrap_or("");
    let (api_key, app_key) = (header(API_KEY_HEADER), header(APP_KEY_HEADER));
    if api_key.is_empty() {
        return Err(ApiError::Forbidden(format!("API key required ({API_KEY_HEADER} header)")));
    }
    if app_key.is_empty() {
        return Err(ApiError::Forbidden(format!("Application key required ({APP_KEY_HEADER} header)")));
    }
    match state.auth.authenticate(&state.store, api_key, app_key).await? {
        Some(authenticated) => Ok(authenticated.principal),
        None => {
            tracing::info!("rejected a request with an unknown API key, application key or key pair");
            Err(ApiError::Forbidden("Forbidden: invalid API key or application key".into()))
        }
    }
}

/// A scope a handler requires; implemented by the marker types below.
pub trait RequiredScope {
    const SCOPE: Scope;
}

/// Reads and both validate calls.
pub struct IntegrationsRead;
/// Create, update, delete, activate, deactivate.
pub struct ManageIntegrations;

/// ctxsync's entity routes.
pub struct SiemEntitiesRead;

/// ctxsync's key routes.
pub struct ManageKeys;

impl RequiredScope for ManageKeys {
    const SCOPE: Scope = Scope::ManageKeys;
}

impl RequiredScope for SiemEntitiesRead {
    const SCOPE: Scope = Scope::SiemEntitiesRead;
}
impl RequiredScope for IntegrationsRead {
    const SCOPE: Scope = Scope::IntegrationsRead;
}
impl RequiredScope for ManageIntegrations {
    const SCOPE: Scope = Scope::ManageIntegrations;
}

/// An authenticated caller whose application key grants `S`.
pub struct Authorized<S> {
    pub org_id: OrgId,
    scope: PhantomData<S>,
}

impl<S: RequiredScope, St: Send + Sync> FromRequestParts<St> for Authorized<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Self, ApiError> {
        let principal = parts
            .extensions
            .get::<Principal>()
            .ok_or_else(|| ApiError::Internal("route is not behind the authentication middleware".into()))?;
        if !principal.scopes.allows(S::SCOPE) {
            return Err(ApiError::Forbidden(format!(
                "Forbidden: the application key lacks the {} scope",
                S::SCOPE
            )));
        }
        Ok(Authorized { org_id: principal.org_id, scope: PhantomData })
    }
}
