//! The OpenAPI document the server serves at `/api/v2/openapi.json`, generated from the handlers'
//! annotations and the schemas in `integration_config::schema`.

use axum::Json;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, AuthorizationCode, Flow, OAuth2, Scopes, SecurityScheme,
};
use utoipa::{Modify, OpenApi};

use crate::entities as en;
use crate::error::ErrorBody;
use crate::integration_config::{self as ic, schema};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ctxsync API",
        description = "Entity context sync configuration API, wire-compatible with Datadog Cloud SIEM's integration_config API.",
    ),
    paths(
        ic::list,
        ic::create,
        ic::get,
        ic::update,
        ic::delete,
        ic::validate_credentials,
        ic::validate_config,
        ic::activate,
        ic::deactivate,
        ic::app_registrations,
        en::list_entities,
        en::get_entity,
        en::entity_history,
        en::list_events,
        en::lookup,
        en::get_persons,
        en::lookup_persons,
        en::list_runs,
        en::get_run,
        en::sync_now,
        en::list_held_deletions,
        en::confirm_deletions,
        en::discard_deletions,
        en::get_health
    ),
    components(schemas(
        ErrorBody,
        schema::IntegrationTypeSchema,
        schema::ConfigStateSchema,
        schema::ResourceType,
        schema::SettingsSchema
    )),
    modifiers(&SecuritySchemes),
    tags(
        (name = "Security Monitoring", description = "Entity context sync configurations (Datadog-compatible)."),
        (name = "ctxsync", description = "ctxsync's own routes: synced entities, persons resolved across sources, and sync runs.")
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "apiKeyAuth",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "DD-API-KEY",
                "Your API key.",
            ))),
        );
        components.add_security_scheme(
            "appKeyAuth",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "DD-APPLICATION-KEY",
                "Your application key; its scopes, when set, limit what it may do.",
            ))),
        );
        let scopes = Scopes::from_iter(
            ctxsync_core::Scope::ALL.map(|s| (s.as_str(), "A scope of a scoped application key.")),
        );
        components.add_security_scheme(
            "AuthZ",
            SecurityScheme::OAuth2(OAuth2::with_description(
                [Flow::AuthorizationCode(AuthorizationCode::new("/oauth2/v1/authorize", "/oauth2/v1/token", scopes))],
                "Scope names as in Datadog's API. ctxsync checks them on scoped application keys; it issues no OAuth tokens.",
            )),
        );
    }
}

pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
