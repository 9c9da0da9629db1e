//! The response documents: a config as the contract shows it, never with its secrets.

use ctxsync_core::Config;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

use super::schema::{ConfigStateSchema, IntegrationTypeSchema, ResourceType, SettingsSchema};

/// A single configuration (`SecurityMonitoringIntegrationConfigResponse`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SecurityMonitoringIntegrationConfigResponse)]
pub struct ConfigResponse {
    pub data: ConfigData,
}

/// A list of configurations (`SecurityMonitoringIntegrationConfigsResponse`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SecurityMonitoringIntegrationConfigsResponse)]
pub struct ConfigsResponse {
    /// The list of integration configurations.
    pub data: Vec<ConfigData>,
}

/// An entity context sync configuration.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SecurityMonitoringIntegrationConfigData)]
pub struct ConfigData {
    /// The unique identifier of the integration configuration.
    pub id: String,
    #[serde(rename = "type")]
    #[schema(value_type = ResourceType)]
    pub resource_type: &'static str,
    pub attributes: ConfigAttributes,
}

/// The attributes of an entity context sync configuration as returned by the API.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SecurityMonitoringIntegrationConfigAttributes)]
pub struct ConfigAttributes {
    /// The time at which the configuration was created.
    #[schema(format = DateTime, required = false)]
    pub created_at: String,
    /// The domain associated with the external entity source.
    pub domain: String,
    /// Whether the sync is enabled.
    pub enabled: bool,
    #[schema(value_type = IntegrationTypeSchema)]
    pub integration_type: &'static str,
    /// The time at which the configuration was last modified.
    #[schema(format = DateTime, required = false)]
    pub modified_at: String,
    /// The display name of the configuration.
    #[schema(required = false)]
    pub name: String,
    #[schema(value_type = SettingsSchema, required = false)]
    pub settings: serde_json::Map<String, serde_json::Value>,
    #[schema(value_type = ConfigStateSchema, required = false)]
    pub state: &'static str,
}

impl From<Config> for ConfigData {
    fn from(c: Config) -> Self {
        ConfigData {
            id: c.id.to_string(),
            resource_type: "integration_config",
            attributes: ConfigAttributes {
                created_at: rfc3339(c.created_at),
                domain: c.domain,
                enabled: c.enabled,
                integration_type: c.integration_type.as_str(),
                modified_at: rfc3339(c.modified_at),
                name: c.name,
                settings: c.settings,
                state: c.state.as_str(),
            },
        }
    }
}

impl From<Config> for ConfigResponse {
    fn from(c: Config) -> Self {
        ConfigResponse { data: c.into() }
    }
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).expect("a stored time is within RFC 3339's range")
}
