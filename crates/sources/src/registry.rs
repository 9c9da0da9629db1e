//! The sources this build can sync, each described once by its own folder.
//!
//! A source folder has one value implementing [`Connector`]: what the source is (its type, the
//! keys of its `secrets`, the `settings` it reads, the hosts it talks to) and how to use it
//! (parse credentials, validate them, list a config). [`SOURCES`] lists those values; everything
//! outside the folders — credential parsing, endpoints and their settings, the OpenAPI secrets
//! schema, the activate hints, the typo check of `settings` — reads this list, so a source is
//! added with one folder and one line here.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use ctxsync_core::{Config, FieldErrors, IntegrationType, SecretValue, Settings};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::endpoints::Endpoints;
use crate::http::Http;
use crate::{Named, Outcome, PageSink, SourceError, SyncError, SyncMode};

/// Every source this build can sync, in the contract's order.
static SOURCES: &[&dyn Connector] = &[
    &crate::google_workspace::GoogleWorkspace,
    &crate::okta::Okta,
    &crate::entra_id::EntraId,
    &crate::crowdstrike::CrowdStrike,
    &crate::sentinelone::SentinelOne,
];

/// What a source is, as the rest of ctxsync needs to know it.
#[derive(Debug)]
pub struct SourceInfo {
    pub integration_type: IntegrationType,
    /// One sentence on what the credentials are, for the OpenAPI schema.
    pub credentials: &'static str,
    /// The keys of a config's `secrets`, all required.
    pub secrets: &'static [SecretKey],
    /// The `settings` keys the source reads, beyond those every config has.
    pub settings: &'static [&'static str],
    /// Those of `settings` that validation reads (a tenant): changing one is proved against the
    /// source, like a new domain.
    pub validated_settings: &'static [&'static str],
    /// The hosts its requests go to, each of which the operator may point elsewhere.
    pub base_urls: &'static [&'static BaseUrl],
}

/// One key of a config's `secrets`.
#[derive(Debug)]
pub struct SecretKey {
    pub name: &'static str,
    pub description: &'static str,
    /// The OpenAPI component of an object value; `None` for a string.
    pub schema: Option<&'static str>,
}

/// A host a source's requests go to, and the setting that overrides it.
#[derive(Debug, PartialEq, Eq)]
pub struct BaseUrl {
    /// The command-line flag, without its dashes (`okta-base-url`).
    pub flag: &'static str,
    /// The environment variable (`CTXSYNC_OKTA_BASE_URL`); the settings file's key is its name
    /// without the prefix, lowercase.
    pub env: &'static str,
    /// The real host; `None` when it comes from the config (an Okta org's domain).
    pub default: Option<&'static str>,
    /// For `--help` and the example configuration.
    pub help: &'static str,
}

/// The seam a source folder implements; see the module docs.
#[async_trait::async_trait]
pub(crate) trait Connector: Send + Sync {
    fn info(&self) -> &'static SourceInfo;

    /// Reads `secrets` (an object whose keys were checked against [`SourceInfo::secrets`]),
    /// reporting every problem into `errors` with its path under `data.attributes.secrets`.
    fn parse(&self, secrets: &Map<String, Value>, errors: &mut FieldErrors) -> Option<Credentials>;

    /// Proves the read access a sync needs; nothing is stored.
    async fn validate(
        &self,
        http: &Http,
        endpoints: &Endpoints,
        domain: &str,
        settings: &Settings,
        credentials: &Credentials,
    ) -> Result<(), SourceError>;

    /// Lists the config's source into `sink`.
    async fn sync(
        &self,
        http: &Http,
        endpoints: &Endpoints,
        config: &Config,
        credentials: &Credentials,
        mode: SyncMode,
        sink: &mut dyn PageSink,
    ) -> Result<Outcome, SyncError>;

    /// Reads the users a push named one by one into `sink`: each as the source has it now, or a
    /// removal when the source no longer knows it. A source without pushes reads nothing.
    async fn refresh_users(
        &self,
        _http: &Http,
        _endpoints: &Endpoints,
        _config: &Config,
        _credentials: &Credentials,
        _named: Named<'_>,
        _sink: &mut dyn PageSink,
    ) -> Result<(), SyncError> {
        Ok(())
    }

    /// The name of the limit the source sets on all the clients of the tenant `domain` names
    /// together, which processes syncing that tenant at once split between them (an Okta org's
    /// requests in flight, a Google or Entra ID domain's quota or budget); its clients keep to
    /// their part of it through `split::Split::named`, with the same name. `None`, the default,
    /// for a source whose connector does not split its limits (one whose replies report every
    /// client's use needs not).
    fn shared_limit(&self, _endpoints: &Endpoints, _domain: &str) -> Option<String> {
        None
    }

    /// How the source pushes through subscriptions ctxsync makes; `None`, the default, for a
    /// source that does not.
    fn subscriber(&self) -> Option<&'static dyn Subscriber> {
        None
    }
}

/// Where a source is to deliver a config's change notifications, and the secret it is to send
/// back with each.
#[derive(Clone, Copy)]
pub struct SubscriptionRequest<'a> {
    pub notification_url: &'a str,
    /// Where the source tells of the subscription itself (to reauthorize, removed, missed).
    pub lifecycle_url: &'a str,
    pub client_state: &'a str,
}

impl fmt::Debug for SubscriptionRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriptionRequest")
            .field("notification_url", &self.notification_url)
            .field("lifecycle_url", &self.lifecycle_url)
            .finish_non_exhaustive()
    }
}

/// A subscription a source made for a config: one per resource it notifies about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub resource: String,
    /// The source's id for it.
    pub id: String,
    /// What else names it to the source (Google's `resourceId`, which stopping a channel takes).
    pub resource_id: Option<String>,
    pub expires_at: OffsetDateTime,
    /// When ctxsync should renew it: the source knows how long its subscriptions live.
    pub renew_at: OffsetDateTime,
}

/// What a subscription call needs: the config and its credentials, and how to reach the source.
pub(crate) struct Reach<'a> {
    pub http: &'a Http,
    pub endpoints: &'a Endpoints,
    pub config: &'a Config,
    pub credentials: &'a Credentials,
}

/// A source that pushes through subscriptions ctxsync makes and keeps (Graph's change
/// notifications), rather than ones its admin registers (Okta's Event Hooks).
#[async_trait::async_trait]
pub(crate) trait Subscriber: Send + Sync {
    /// Subscribes the config to every resource the source notifies about, all or none.
    async fn subscribe(
        &self,
        reach: &Reach<'_>,
        request: &SubscriptionRequest<'_>,
    ) -> Result<Vec<Subscription>, SourceError>;

    /// Moves the subscription's expiry as far as the source allows; `None` when it must be made
    /// again: the source no longer knows it, or cannot renew one (Google).
    async fn renew(&self, reach: &Reach<'_>, id: &str) -> Result<Option<Subscription>, SourceError>;

    /// Answers the source's ask to reauthorize; `false` when it no longer knows the subscription.
    async fn reauthorize(&self, reach: &Reach<'_>, id: &str) -> Result<bool, SourceError>;

    /// Ends the subscription (`resource_id` as [`Subscription::resource_id`]); one the source no
    /// longer knows is ended already.
    async fn unsubscribe(
        &self,
        reach: &Reach<'_>,
        id: &str,
        resource_id: Option<&str>,
    ) -> Result<(), SourceError>;
}

pub(crate) fn connector(integration_type: IntegrationType) -> Option<&'static dyn Connector> {
    SOURCES.iter().copied().find(|c| c.info().integration_type == integration_type)
}

/// What this build knows of `integration_type`; `None` for a type it cannot sync.
pub fn source(integration_type: IntegrationType) -> Option<&'static SourceInfo> {
    connector(integration_type).map(|c| c.info())
}

/// Every source this build can sync.
pub fn sources() -> impl Iterator<Item = &'static SourceInfo> {
    SOURCES.iter().map(|c| c.info())
}

/// Every host any source talks to.
pub fn base_urls() -> impl Iterator<Item = &'static BaseUrl> {
    sources().flat_map(|s| s.base_urls.iter().copied())
}

const PATH: &str = "data.attributes.secrets";

/// A config's credentials, parsed by its source and opaque to everything else. `Debug` shows
/// only the type: whatever a caller put under `secrets` is secret.
#[derive(Clone)]
pub struct Credentials {
    integration_type: IntegrationType,
    parsed: Arc<dyn Any + Send + Sync>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}, redacted)", self.integration_type)
    }
}

impl Credentials {
    pub(crate) fn new<T: Any + Send + Sync>(integration_type: IntegrationType, parsed: T) -> Credentials {
        Credentials { integration_type, parsed: Arc::new(parsed) }
    }

    pub fn integration_type(&self) -> IntegrationType {
        self.integration_type
    }

    /// The source's own credentials type; an error when a config's secrets were parsed as
    /// another type's (a bug, reported rather than panicking a worker).
    pub(crate) fn get<T: Any>(&self) -> Result<&T, SourceError> {
        self.parsed.downcast_ref().ok_or_else(|| {
            SourceError::InvalidCredentials(format!(
                "credentials of {} were given to another source",
                self.integration_type
            ))
        })
    }

    /// Checks `secrets` for `integration_type`, reporting every problem with its path. Messages
    /// name the offending key and what is expected, never a value.
    pub fn parse(
        integration_type: IntegrationType,
        secrets: &SecretValue,
    ) -> Result<Credentials, FieldErrors> {
        let mut errors = FieldErrors::default();
        let Some(connector) = connector(integration_type) else {
            errors.push(
                "data.attributes.integration_type",
                format!("{integration_type} is not supported yet by this ctxsync version"),
            );
            return Err(errors);
        };
        let Some(obj) = secrets.expose().as_object() else {
            errors.push(PATH, "must be an object");
            return Err(errors);
        };
        let known: Vec<&str> = connector.info().secrets.iter().map(|k| k.name).collect();
        for key in obj.keys().filter(|k| !known.contains(&k.as_str())) {
            errors.push(format!("{PATH}.{key}"), format!("unknown key; expected {}", known.join(", ")));
        }
        let parsed = connector.parse(obj, &mut errors);
        match parsed {
            Some(credentials) if errors.is_empty() => Ok(credentials),
            _ => Err(errors),
        }
    }
}

/// The string at `obj[key]`, trimmed; reports a missing, blank or non-string value under `path`.
pub(crate) fn required_str(
    obj: &Map<String, Value>,
    path: &str,
    key: &str,
    errors: &mut FieldErrors,
) -> Option<String> {
    match obj.get(key) {
        None | Some(Value::Null) => {
            errors.push(format!("{path}.{key}"), "is required");
            None
        }
        Some(Value::String(s)) if s.trim().is_empty() => {
            errors.push(format!("{path}.{key}"), "must not be empty");
            None
        }
        Some(Value::String(s)) => Some(s.trim().to_owned()),
        Some(_) => {
            errors.push(format!("{path}.{key}"), "must be a string");
            None
        }
    }
}

/// A secret key's value under `data.attributes.secrets`.
pub(crate) fn required_secret(
    obj: &Map<String, Value>,
    key: &str,
    errors: &mut FieldErrors,
) -> Option<String> {
    required_str(obj, PATH, key, errors)
}

pub(crate) fn looks_like_email(s: &str) -> bool {
    matches!(s.split_once('@'), Some((local, domain)) if !local.is_empty() && domain.contains('.') && !s.contains(char::is_whitespace))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::json;

    use super::*;

    fn parse(t: IntegrationType, v: Value) -> Result<Credentials, FieldErrors> {
        Credentials::parse(t, &SecretValue::new(v))
    }

    #[test]
    fn no_type_has_two_sources_and_no_two_share_a_host() {
        for t in IntegrationType::ALL {
            assert!(SOURCES.iter().filter(|c| c.info().integration_type == t).count() <= 1, "{t}");
        }
        let mut seen = BTreeSet::new();
        for base in base_urls() {
            assert!(seen.insert(base.env), "{base:?} is declared twice");
            assert_eq!(
                base.env,
                format!("CTXSYNC_{}", base.flag.to_uppercase().replace('-', "_")),
                "{base:?}"
            );
        }
    }

    #[test]
    fn unknown_keys_and_unsupported_types_are_reported_without_values() {
        let err = parse(IntegrationType::Okta, json!({"apiToken": "00abc"})).unwrap_err();
        assert_eq!(
            err.messages(),
            vec![
                "data.attributes.secrets.apiToken: unknown key; expected api_token",
                "data.attributes.secrets.api_token: is required"
            ]
        );
        let err =
            parse(IntegrationType::Okta, json!({"api_token": 12345678, "zzsecretzz": "x"})).unwrap_err();
        assert!(!err.to_string().contains("12345678"));
        assert!(
            parse(IntegrationType::Okta, json!("x")).unwrap_err().to_string().contains("must be an object")
        );
        let err = parse(IntegrationType::EntraId, json!({"client_id": 5})).unwrap_err();
        assert_eq!(
            err.messages(),
            vec![
                "data.attributes.secrets.client_id: must be a string",
                "data.attributes.secrets.client_secret: is required"
            ]
        );
        assert!(parse(IntegrationType::EntraId, json!({"client_id": "a", "client_secret": "b"})).is_ok());
        let err = parse(IntegrationType::CrowdStrike, json!({})).unwrap_err();
        assert_eq!(
            err.messages(),
            vec![
                "data.attributes.secrets.client_id: is required",
                "data.attributes.secrets.client_secret: is required"
            ]
        );
    }

    #[test]
    fn credentials_print_only_their_type() {
        let c = parse(IntegrationType::Okta, json!({"api_token": "00abcsecret"})).unwrap();
        assert_eq!(format!("{c:?}"), "Credentials(OKTA, redacted)");
        assert_eq!(c.integration_type(), IntegrationType::Okta);
    }
}
