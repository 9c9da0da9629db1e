//! The OpenAPI document the server serves at `/api/v2/openapi.json`, generated from the handlers'
//! annotations and the schemas in `integration_config::schema`.

use axum::Json;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, AuthorizationCode, Flow, OAuth2, Scopes, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::entities as en;
use crate::error::ErrorBody;
use crate::integration_config::{self as ic, schema};
use crate::{keys, push};

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
        en::get_health,
        push::get_push,
        push::enable_push,
        push::disable_push,
        push::okta_verification,
        push::okta_delivery,
        push::entra_notifications,
        push::entra_lifecycle,
        push::google_notification,
        keys::list_keys,
        keys::create_key_pair,
        keys::revoke_key,
        keys::rotate_key
    ),
    components(schemas(
        ErrorBody,
        schema::IntegrationTypeSchema,
        schema::ConfigStateSchema,
        schema::ResourceType,
        schema::SettingsSchema
    )),
    modifiers(&SecuritySchemes, &ErrorsEveryRouteCanAnswer),
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

/// Errors that come from the layers in front of the handlers (the HTTP server, body reading, the
/// store behind authentication), so any operation can answer them whatever its handler does;
/// listed on every operation so that a client generated from the document knows them all.
struct ErrorsEveryRouteCanAnswer;

impl ErrorsEveryRouteCanAnswer {
    const ANY_REQUEST: &[(&str, &str)] = &[
        ("400", "The request is not valid HTTP/1.1, its path is not UTF-8, or a parameter is malformed."),
        ("414", "The request URI is longer than 64 KiB."),
        ("431", "The request headers are too large."),
        ("500", "An unexpected error; the message names no secret."),
        ("503", "The store is unreachable, or the service is shutting down."),
    ];
    const WITH_A_BODY: &[(&str, &str)] = &[
        ("408", "The request body did not arrive within the body-read timeout."),
        ("413", "The request body is larger than the limit."),
        ("415", "The request body is not sent as application/json."),
    ];
}

impl Modify for ErrorsEveryRouteCanAnswer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let error = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
                &mut item.head,
                &mut item.options,
                &mut item.trace,
            ];
            for operation in operations.into_iter().flatten() {
                let body = operation.request_body.is_some().then_some(Self::WITH_A_BODY);
                for (status, description) in Self::ANY_REQUEST.iter().chain(body.into_iter().flatten()) {
                    operation.responses.responses.entry((*status).to_owned()).or_insert_with(|| {
                        ResponseBuilder::new()
                            .description(*description)
                            .content("application/json", error.clone())
                            .into()
                    });
                }
            }
        }
    }
}

pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
