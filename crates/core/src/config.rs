use serde_json::Value;
use time::OffsetDateTime;

use crate::{ConfigId, ConfigState, FieldError, IntegrationType, OrgId, SecretValue};

/// Free-form, non-sensitive settings of a configuration (the contract's `settings` object).
pub type Settings = serde_json::Map<String, Value>;

/// A stored entity context sync configuration, without its secrets (which never leave the store
/// except to a connector).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub id: ConfigId,
    pub org_id: OrgId,
    pub integration_type: IntegrationType,
    pub name: String,
    pub domain: String,
    pub enabled: bool,
    pub state: ConfigState,
    pub settings: Settings,
    pub created_at: OffsetDateTime,
    pub modified_at: OffsetDateTime,
}

impl Config {
    /// A config as creating it leaves it: a new id, enabled, its credentials just proven, created
    /// and modified now.
    pub fn created(
        org_id: OrgId,
        integration_type: IntegrationType,
        name: String,
        domain: String,
        settings: Settings,
    ) -> Config {
        let now = crate::now();
        Config {
            id: ConfigId::new(),
            org_id,
            integration_type,
            name,
            domain,
            enabled: true,
            state: ConfigState::Valid,
            settings,
            created_at: now,
            modified_at: now,
        }
    }
}

/// What a create request asks for, already checked.
#[derive(Debug, Clone)]
pub struct NewConfig {
    pub integration_type: IntegrationType,
    pub name: ConfigName,
    pub domain: Domain,
    pub settings: Settings,
    pub secrets: SecretValue,
}

/// A display name: non-empty, at most 200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigName(String);

impl ConfigName {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(s: &str) -> Result<Self, String> {
        let trimmed = s.trim();
        if trimmed.is_empty() {
            return Err("must not be empty".into());
        }
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        if trimmed.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// The source's domain: a host name such as `acme.okta.com` or `example.com`, optionally with a
/// port. Never a URL: the scheme and path are the connector's to choose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain(String);

impl Domain {
    pub fn parse(s: &str) -> Result<Self, String> {
        let d = s.trim();
        if d.is_empty() {
            return Err("must not be empty".into());
        }
        if d.contains("://") {
            return Err("give the host name only, without a scheme (for example acme.okta.com)".into());
        }
        if d.len() > 253 {
            return Err("must be at most 253 characters".into());
        }
        let (host, port) = match d.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        };
        if let Some(p) = port
            && p.parse::<u16>().map_or(true, |p| p == 0)
        {
            return Err("has an invalid port".into());
        }
        let host_ok = !host.is_empty()
            && !host.starts_with(['.', '-'])
            && !host.ends_with('-')
            && host.split('.').all(|label| !label.is_empty() && label.len() <= 63)
            && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if !host_ok {
            return Err("must be a host name such as acme.okta.com (letters, digits, '-' and '.')".into());
        }
        Ok(Self(d.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A partial update: only the fields present change. Every field is optional, as the original
/// contract says; the newer official clients always send `integration_type`, which then either
/// repeats the stored type or changes it.
#[derive(Debug, Clone, Default)]
pub struct ConfigPatch {
    pub integration_type: Option<IntegrationType>,
    pub name: Option<ConfigName>,
    pub domain: Option<Domain>,
    pub enabled: Option<bool>,
    pub settings: Option<Settings>,
    pub secrets: Option<SecretValue>,
}

/// The outcome of applying a [`ConfigPatch`] to a stored config.
#[derive(Debug, Clone)]
pub struct PatchPlan {
    /// The config as it would be stored.
    pub config: Config,
    /// Whether any stored field would change (and so `modified_at` moves).
    pub changed: bool,
    /// Whether what the connector connects with changed, so the credentials must be proved
    /// against the source before anything is written.
    pub revalidate: bool,
}

impl ConfigPatch {
    /// Plan the update of `current` (whose secrets are `current_secrets`) at time `now`.
    /// `validated_settings` are the `settings` keys the type's validation reads (a tenant), whose
    /// change must be proved against the source like a new domain.
    pub fn plan(
        &self,
        current: &Config,
        current_secrets: &SecretValue,
        validated_settings: &[&str],
        now: OffsetDateTime,
    ) -> Result<PatchPlan, FieldError> {
        let integration_type = self.integration_type.unwrap_or(current.integration_type);
        let type_changed = integration_type != current.integration_type;
        if type_changed && self.secrets.is_none() {
            return Err(FieldError::new(
                "data.attributes.secrets",
                format!(
                    "required when changing integration_type from {} to {integration_type}",
                    current.integration_type
                ),
            ));
        }
        let mut next = current.clone();
        next.integration_type = integration_type;
        if let Some(name) = &self.name {
            next.name = name.as_str().to_owned();
        }
        if let Some(domain) = &self.domain {
            next.domain = domain.as_str().to_owned();
        }
        if let Some(enabled) = self.enabled {
            next.enabled = enabled;
        }
        if let Some(settings) = &self.settings {
            next.settings = settings.clone();
        }
        let secrets_changed = self.secrets.as_ref().is_some_and(|s| s != current_secrets);
        let settings_changed =
            validated_settings.iter().any(|k| next.settings.get(*k) != current.settings.get(*k));
        let revalidate = type_changed || secrets_changed || next.domain != current.domain || settings_changed;
        let changed = revalidate || next != *current;
        if changed {
            next.modified_at = now;
        }
        Ok(PatchPlan { config: next, changed, revalidate })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::datetime;

    use super::*;

    fn stored() -> Config {
        Config {
            id: ConfigId::new(),
            org_id: OrgId::new(),
            integration_type: IntegrationType::Okta,
            name: "Okta".into(),
            domain: "acme.okta.com".into(),
            enabled: true,
            state: ConfigState::Valid,
            settings: Settings::new(),
            created_at: datetime!(2026-01-01 0:00 UTC),
            modified_at: datetime!(2026-01-01 0:00 UTC),
        }
    }

    fn patch() -> ConfigPatch {
        ConfigPatch::default()
    }

    fn secrets() -> SecretValue {
        SecretValue::new(json!({"api_token": "t"}))
    }

    #[test]
    fn domain_accepts_hosts_and_refuses_urls() {
        assert_eq!(Domain::parse(" Acme.Okta.com ").unwrap().as_str(), "acme.okta.com");
        assert!(Domain::parse("localhost:8443").is_ok());
        assert!(Domain::parse("https://acme.okta.com").unwrap_err().contains("without a scheme"));
        for bad in ["", "acme okta.com", "a/b", "-a.com", "a..com", "a.com:0", "a.com:x"] {
            assert!(Domain::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn name_is_trimmed_and_bounded() {
        assert_eq!(ConfigName::parse("  My Okta ").unwrap().as_str(), "My Okta");
        assert!(ConfigName::parse("   ").is_err());
        assert!(ConfigName::parse(&"x".repeat(201)).is_err());
        assert!(ConfigName::parse("a\u{7}b").is_err());
    }

    #[test]
    fn empty_patch_changes_nothing() {
        let now = datetime!(2026-02-01 0:00 UTC);
        let plan = patch().plan(&stored(), &secrets(), &[], now).unwrap();
        assert!(!plan.changed && !plan.revalidate);
        assert_eq!(plan.config.modified_at, stored().modified_at);
    }

    #[test]
    fn same_values_change_nothing() {
        let mut p = patch();
        p.name = Some(ConfigName::parse("Okta").unwrap());
        p.enabled = Some(true);
        p.secrets = Some(secrets());
        let plan = p.plan(&stored(), &secrets(), &[], datetime!(2026-02-01 0:00 UTC)).unwrap();
        assert!(!plan.changed && !plan.revalidate);
    }

    #[test]
    fn rename_moves_modified_at_without_revalidating() {
        let now = datetime!(2026-02-01 0:00 UTC);
        let mut p = patch();
        p.name = Some(ConfigName::parse("Renamed").unwrap());
        let plan = p.plan(&stored(), &secrets(), &[], now).unwrap();
        assert!(plan.changed && !plan.revalidate);
        assert_eq!(plan.config.modified_at, now);
        assert_eq!(plan.config.name, "Renamed");
    }

    #[test]
    fn new_secrets_or_domain_revalidate() {
        let mut p = patch();
        p.secrets = Some(SecretValue::new(json!({"api_token": "other"})));
        assert!(p.plan(&stored(), &secrets(), &[], OffsetDateTime::now_utc()).unwrap().revalidate);
        let mut p = patch();
        p.domain = Some(Domain::parse("other.okta.com").unwrap());
        assert!(p.plan(&stored(), &secrets(), &[], OffsetDateTime::now_utc()).unwrap().revalidate);
    }

    #[test]
    fn the_stored_type_repeated_is_no_change() {
        let mut p = patch();
        p.integration_type = Some(IntegrationType::Okta);
        let plan = p.plan(&stored(), &secrets(), &[], datetime!(2026-02-01 0:00 UTC)).unwrap();
        assert!(!plan.changed && !plan.revalidate);
        assert_eq!(plan.config.integration_type, IntegrationType::Okta);
    }

    #[test]
    fn type_change_needs_secrets() {
        let mut p = patch();
        p.integration_type = Some(IntegrationType::GoogleWorkspace);
        let err = p.plan(&stored(), &secrets(), &[], OffsetDateTime::now_utc()).unwrap_err();
        assert_eq!(err.path, "data.attributes.secrets");
    }

    #[test]
    fn a_validated_setting_that_changes_revalidates() {
        let mut c = stored();
        c.settings.insert("tenant_id".into(), json!("11111111-2222-3333-4444-555555555555"));
        let mut p = patch();
        p.settings = Some(Settings::new());
        assert!(p.plan(&c, &secrets(), &["tenant_id"], OffsetDateTime::now_utc()).unwrap().revalidate);
        let plan = p.plan(&c, &secrets(), &[], OffsetDateTime::now_utc()).unwrap();
        assert!(plan.changed && !plan.revalidate, "other settings are not proved against the source");
    }
}
