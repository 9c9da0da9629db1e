//! The OpenAPI schemas of the integration_config routes, built from the same names the code
//! uses (`IntegrationType::ALL`, the attributes each operation accepts), under the contract's
//! schema names so the served document can be compared with the contract.
//!
//! Request schemas are built rather than derived because requests are read by hand (see
//! `body.rs`) and are `oneOf` documents with a discriminator on `integration_type`, except the
//! update's: every one of its attributes is optional (the original contract), so it is an `anyOf`
//! of the types' attribute sets, which a document without `integration_type` can match.

use std::borrow::Cow;

use ctxsync_core::{ConfigState, IntegrationType};
use utoipa::openapi::schema::{
    AdditionalProperties, AnyOfBuilder, Discriminator, ObjectBuilder, OneOfBuilder, Schema, Type,
};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

type Schemas = Vec<(String, RefOr<Schema>)>;

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn reference(name: &str) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(name))
}

fn enum_of<'a>(values: impl IntoIterator<Item = &'a str>, description: &str) -> RefOr<Schema> {
    string().enum_values(Some(values)).description(Some(description)).into()
}

/// `SecurityMonitoringIntegrationType`: every type of the contract.
pub struct IntegrationTypeSchema;

impl PartialSchema for IntegrationTypeSchema {
    fn schema() -> RefOr<Schema> {
        enum_of(
            IntegrationType::ALL.map(IntegrationType::as_str),
            "The type of external source that provides entities.",
        )
    }
}

impl ToSchema for IntegrationTypeSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("SecurityMonitoringIntegrationType")
    }
}

/// `SecurityMonitoringIntegrationConfigState`.
pub struct ConfigStateSchema;

impl PartialSchema for ConfigStateSchema {
    fn schema() -> RefOr<Schema> {
        enum_of(
            [ConfigState::Valid, ConfigState::Invalid, ConfigState::Initializing].map(ConfigState::as_str),
            "The state of the credentials configured on the entity context sync.",
        )
    }
}

impl ToSchema for ConfigStateSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("SecurityMonitoringIntegrationConfigState")
    }
}

/// `SecurityMonitoringIntegrationConfigResourceType`: always `integration_config`.
pub struct ResourceType;

impl PartialSchema for ResourceType {
    fn schema() -> RefOr<Schema> {
        enum_of(
            ["integration_config"],
            "The type of the resource. The value should always be `integration_config`.",
        )
    }
}

impl ToSchema for ResourceType {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("SecurityMonitoringIntegrationConfigResourceType")
    }
}

/// `SecurityMonitoringEntraIdAzureAppRegistrationsResourceType`.
pub struct AppRegistrationsResourceType;

impl PartialSchema for AppRegistrationsResourceType {
    fn schema() -> RefOr<Schema> {
        enum_of(["entra_id_azure_app_registrations"], "The type of the resource.")
    }
}

impl ToSchema for AppRegistrationsResourceType {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("SecurityMonitoringEntraIdAzureAppRegistrationsResourceType")
    }
}

/// `SecurityMonitoringIntegrationActivateRequest`: optional overrides, nothing required.
pub struct ActivateRequestSchema;

impl PartialSchema for ActivateRequestSchema {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("data", reference("SecurityMonitoringIntegrationActivateData"))
            .into()
    }
}

impl ToSchema for ActivateRequestSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("SecurityMonitoringIntegrationActivateRequest")
    }

    fn schemas(schemas: &mut Schemas) {
        schemas.push((
            "SecurityMonitoringIntegrationActivateData".into(),
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .property("attributes", reference("SecurityMonitoringIntegrationActivateAttributes"))
                .property("type", reference("SecurityMonitoringIntegrationActivateResourceType"))
                .into(),
        ));
        schemas.push((
            "SecurityMonitoringIntegrationActivateAttributes".into(),
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .property("domain", string())
                .property("name", string())
                .property("settings", reference("SecurityMonitoringIntegrationConfigSettings"))
                .into(),
        ));
        schemas.push((
            "SecurityMonitoringIntegrationActivateResourceType".into(),
            enum_of(["activate_entra_id_request"], "The type of the resource."),
        ));
        schemas.push((SettingsSchema::name().into(), SettingsSchema::schema()));
    }
}

/// `SecurityMonitoringIntegrationConfigSettings`: a free-form object.
pub struct SettingsSchema;

impl PartialSchema for SettingsSchema {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .additional_properties(Some(AdditionalProperties::FreeForm(true)))
            .description(Some("Free-form, non-sensitive settings for the entity context sync."))
            .into()
    }
}

impl ToSchema for SettingsSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("SecurityMonitoringIntegrationConfigSettings")
    }
}

/// The three request documents; each names the operation's attributes and which are required.
#[derive(Clone, Copy)]
enum Operation {
    Create,
    Update,
    Validate,
}

impl Operation {
    /// The infix of the contract's schema names (`…IntegrationConfigCreateAttributes`).
    fn infix(self) -> &'static str {
        match self {
            Operation::Create => "IntegrationConfigCreate",
            Operation::Update => "IntegrationConfigUpdate",
            Operation::Validate => "IntegrationCredentialsValidate",
        }
    }

    fn attributes(self) -> &'static [&'static str] {
        match self {
            Operation::Create => &["domain", "integration_type", "name", "secrets", "settings"],
            Operation::Update => &["domain", "enabled", "integration_type", "name", "secrets", "settings"],
            Operation::Validate => &["domain", "integration_type", "secrets", "settings"],
        }
    }

    fn required(self) -> &'static [&'static str] {
        match self {
            Operation::Create => &["integration_type", "domain", "name", "secrets"],
            Operation::Update => &[],
            Operation::Validate => &["integration_type", "domain", "secrets"],
        }
    }
}

/// The types this build can sync.
fn supported() -> impl Iterator<Item = IntegrationType> {
    ctxsync_sources::sources().map(|s| s.integration_type)
}

fn attributes_name(op: Operation, t: IntegrationType) -> String {
    format!("SecurityMonitoring{}{}Attributes", t.schema_infix(), op.infix())
}

fn secrets_name(t: IntegrationType) -> String {
    format!("SecurityMonitoringIntegrationConfig{}Secrets", t.schema_infix())
}

/// A type's secrets as its source describes them: every key required.
fn secrets_schema(t: IntegrationType) -> RefOr<Schema> {
    let mut object = ObjectBuilder::new().schema_type(Type::Object);
    if let Some(source) = ctxsync_sources::source(t) {
        object = object.description(Some(source.credentials));
        for key in source.secrets {
            let value = match key.schema {
                Some(component) => reference(component),
                None => string().description(Some(key.description)).into(),
            };
            object = object.property(key.name, value).required(key.name);
        }
    }
    object.into()
}

fn service_account_schema() -> RefOr<Schema> {
    let mut object = ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::FreeForm(true)))
        .description(Some(
            "The service account key file; additional keys are preserved but `token_uri` is never followed.",
        ));
    for field in ["client_email", "private_key", "project_id", "type"] {
        object = object.property(field, string());
    }
    for field in ["type", "project_id", "private_key", "client_email"] {
        object = object.required(field);
    }
    object.into()
}

fn attributes_schema(op: Operation, t: IntegrationType) -> RefOr<Schema> {
    let mut object = ObjectBuilder::new().schema_type(Type::Object);
    for &field in op.attributes() {
        object = match field {
            "integration_type" => object.property(field, enum_of([t.as_str()], "The source type.")),
            "enabled" => object.property(field, ObjectBuilder::new().schema_type(Type::Boolean)),
            "secrets" => object.property(field, reference(&secrets_name(t))),
            "settings" => object.property(field, reference("SecurityMonitoringIntegrationConfigSettings")),
            _ => object.property(field, string()),
        };
    }
    for &field in op.required() {
        object = object.required(field);
    }
    object.into()
}

/// The operation's attributes: one set per type. An update without `integration_type` matches
/// any of them (`anyOf`); the other documents name their type (`oneOf`, discriminated).
fn alternatives(op: Operation) -> RefOr<Schema> {
    if let Operation::Update = op {
        let mut any_of = AnyOfBuilder::new();
        for t in supported() {
            any_of = any_of.item(reference(&attributes_name(op, t)));
        }
        return any_of.into();
    }
    let mut one_of = OneOfBuilder::new().discriminator(Some(Discriminator::with_mapping(
        "integration_type",
        supported().map(|t| (t.as_str(), format!("#/components/schemas/{}", attributes_name(op, t)))),
    )));
    for t in supported() {
        one_of = one_of.item(reference(&attributes_name(op, t)));
    }
    one_of.into()
}

fn request_schemas(op: Operation, request: &str, schemas: &mut Schemas) {
    let data = format!("SecurityMonitoring{}Data", op.infix());
    let attributes = format!("SecurityMonitoring{}Attributes", op.infix());
    schemas.push((
        data.clone(),
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("attributes", reference(&attributes))
            .property("type", reference("SecurityMonitoringIntegrationConfigResourceType"))
            .required("type")
            .required("attributes")
            .into(),
    ));
    schemas.push((attributes, alternatives(op)));
    for t in supported() {
        schemas.push((attributes_name(op, t), attributes_schema(op, t)));
        schemas.push((secrets_name(t), secrets_schema(t)));
    }
    schemas.push((
        "SecurityMonitoringIntegrationConfigGoogleWorkspaceServiceAccount".into(),
        service_account_schema(),
    ));
    schemas.push((ResourceType::name().into(), ResourceType::schema()));
    schemas.push((SettingsSchema::name().into(), SettingsSchema::schema()));
    schemas.push((request.to_owned(), request_schema(&data)));
}

fn request_schema(data: &str) -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::Object).property("data", reference(data)).required("data").into()
}

macro_rules! request_type {
    ($(#[$doc:meta])* $ty:ident, $op:expr, $name:literal) => {
        $(#[$doc])*
        pub struct $ty;

        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                request_schema(&format!("SecurityMonitoring{}Data", $op.infix()))
            }
        }

        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }

            fn schemas(schemas: &mut Schemas) {
                request_schemas($op, $name, schemas);
            }
        }
    };
}

request_type!(
    /// The create request document.
    CreateRequestSchema,
    Operation::Create,
    "SecurityMonitoringIntegrationConfigCreateRequest"
);
request_type!(
    /// The partial-update request document.
    UpdateRequestSchema,
    Operation::Update,
    "SecurityMonitoringIntegrationConfigUpdateRequest"
);
request_type!(
    /// The credentials-validation request document.
    ValidateRequestSchema,
    Operation::Validate,
    "SecurityMonitoringIntegrationCredentialsValidateRequest"
);
