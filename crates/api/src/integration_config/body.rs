//! Reading the JSON:API request documents of the integration_config routes into domain types.
//!
//! Written by hand rather than derived so that every problem is reported at once, each with its
//! JSON path (`data.attributes.name: is required`), and so that no message ever echoes a value
//! from `secrets`.

use ctxsync_core::{
    ConfigId, ConfigName, ConfigPatch, DeletionGuard, Domain, FieldErrors, IntegrationType, NewConfig,
    RateLimitShare, Schedule, SecretValue, Settings,
};
use ctxsync_sources::Credentials;
use serde_json::{Map, Value};

const RESOURCE_TYPE: &str = "integration_config";
/// The contract's one resource type for activate requests, whatever the integration type.
const ACTIVATE_RESOURCE_TYPE: &str = "activate_entra_id_request";
const ATTRS: &str = "data.attributes";

/// What a create request asks for, with its credentials already checked for the type.
pub struct CreateRequest {
    pub config: NewConfig,
    pub credentials: Credentials,
}

/// What a credentials-validation request asks to check.
pub struct ValidateRequest {
    pub domain: Domain,
    pub settings: Settings,
    pub credentials: Credentials,
}

pub fn parse_create(doc: &Value) -> Result<CreateRequest, FieldErrors> {
    let mut errors = FieldErrors::default();
    let attrs = envelope(doc, RESOURCE_TYPE, IdRule::Forbidden, &mut errors)?;
    check_known(attrs, &["integration_type", "name", "domain", "secrets", "settings"], &mut errors);
    let integration_type = required_type(attrs, &mut errors);
    let name = required(attrs, "name", &mut errors)
        .and_then(|v| parse_str(v, "name", ConfigName::parse, &mut errors));
    let domain = required(attrs, "domain", &mut errors)
        .and_then(|v| parse_str(v, "domain", Domain::parse, &mut errors));
    let settings = attrs.get("settings").map_or(Some(Settings::new()), |v| settings(v, &mut errors));
    let secrets = required(attrs, "secrets", &mut errors).map(|v| SecretValue::new(v.clone()));
    let credentials = match (integration_type, &secrets) {
        (Some(t), Some(s)) => credentials(t, s, &mut errors),
        _ => None,
    };
    match (integration_type, name, domain, settings, secrets, credentials) {
        (
            Some(integration_type),
            Some(name),
            Some(domain),
            Some(settings),
            Some(secrets),
            Some(credentials),
        ) if errors.is_empty() => Ok(CreateRequest {
            config: NewConfig { integration_type, name, domain, settings, secrets },
            credentials,
        }),
        _ => Err(errors),
    }
}

/// Overrides an activate request may carry; every field is optional, and so is the body.
pub struct ActivateRequest {
    pub name: Option<ConfigName>,
    pub domain: Option<Domain>,
    pub settings: Option<Settings>,
}

pub fn parse_activate(doc: &Value) -> Result<ActivateRequest, FieldErrors> {
    // Unlike the other documents, `data.type` and `data.attributes` are optional here.
    let mut doc = doc.clone();
    if let Some(data) = doc.get_mut("data").and_then(Value::as_object_mut) {
        data.entry("type").or_insert_with(|| Value::from(ACTIVATE_RESOURCE_TYPE));
        data.entry("attributes").or_insert_with(|| Value::Object(Map::new()));
    }
    let mut errors = FieldErrors::default();
    let attrs = envelope(&doc, ACTIVATE_RESOURCE_TYPE, IdRule::Forbidden, &mut errors)?;
    check_known(attrs, &["name", "domain", "settings"], &mut errors);
    let name = attrs.get("name").and_then(|v| parse_str(v, "name", ConfigName::parse, &mut errors));
    let domain = attrs.get("domain").and_then(|v| parse_str(v, "domain", Domain::parse, &mut errors));
    let settings = attrs.get("settings").and_then(|v| settings(v, &mut errors));
    errors.into_result(ActivateRequest { name, domain, settings })
}

/// Every attribute is optional (the original contract: "All fields are optional"). Secrets sent
/// with a type are checked against that type here; secrets sent without one can only be checked
/// against the stored type, which the handler does.
pub fn parse_update(doc: &Value, path_id: ConfigId) -> Result<ConfigPatch, FieldErrors> {
    let mut errors = FieldErrors::default();
    let attrs = envelope(doc, RESOURCE_TYPE, IdRule::MustEqual(path_id), &mut errors)?;
    check_known(
        attrs,
        &["integration_type", "name", "domain", "enabled", "secrets", "settings"],
        &mut errors,
    );
    let integration_type = match attrs.get("integration_type") {
        None | Some(Value::Null) => None,
        Some(v) => integration_type(v, &mut errors),
    };
    let name = attrs.get("name").and_then(|v| parse_str(v, "name", ConfigName::parse, &mut errors));
    let domain = attrs.get("domain").and_then(|v| parse_str(v, "domain", Domain::parse, &mut errors));
    let enabled = attrs.get("enabled").and_then(|v| {
        let b = v.as_bool();
        if b.is_none() {
            errors.push(format!("{ATTRS}.enabled"), "must be true or false");
        }
        b
    });
    let settings = attrs.get("settings").and_then(|v| settings(v, &mut errors));
    let secrets = attrs.get("secrets").map(|v| SecretValue::new(v.clone()));
    if let (Some(t), Some(s)) = (integration_type, &secrets) {
        credentials(t, s, &mut errors);
    }
    errors.into_result(ConfigPatch { integration_type, name, domain, enabled, settings, secrets })
}

pub fn parse_validate(doc: &Value) -> Result<ValidateRequest, FieldErrors> {
    let mut errors = FieldErrors::default();
    let attrs = envelope(doc, RESOURCE_TYPE, IdRule::Forbidden, &mut errors)?;
    check_known(attrs, &["integration_type", "domain", "secrets", "settings"], &mut errors);
    let integration_type = required_type(attrs, &mut errors);
    let domain = required(attrs, "domain", &mut errors)
        .and_then(|v| parse_str(v, "domain", Domain::parse, &mut errors));
    let settings = attrs.get("settings").map_or(Some(Settings::new()), |v| settings(v, &mut errors));
    let secrets = required(attrs, "secrets", &mut errors).map(|v| SecretValue::new(v.clone()));
    let credentials = match (integration_type, &secrets) {
        (Some(t), Some(s)) => credentials(t, s, &mut errors),
        _ => None,
    };
    match (domain, settings, credentials) {
        (Some(domain), Some(settings), Some(credentials)) if errors.is_empty() => {
            Ok(ValidateRequest { domain, settings, credentials })
        }
        _ => Err(errors),
    }
}

enum IdRule {
    Forbidden,
    MustEqual(ConfigId),
}

/// Checks the JSON:API envelope and returns `data.attributes`. Problems with the envelope stop
/// here, since nothing inside can be read without it.
fn envelope<'a>(
    doc: &'a Value,
    resource_type: &str,
    id_rule: IdRule,
    errors: &mut FieldErrors,
) -> Result<&'a Map<String, Value>, FieldErrors> {
    let fail = |errors: &mut FieldErrors, path: &str, msg: &str| {
        errors.push(path, msg);
        Err(std::mem::take(errors))
    };
    let Some(doc) = doc.as_object() else {
        return fail(errors, "request body", "must be a JSON object with a data member");
    };
    for key in doc.keys().filter(|k| *k != "data") {
        errors.push(key.as_str(), "unknown member; expected data");
    }
    let data = match doc.get("data") {
        None | Some(Value::Null) => return fail(errors, "data", "is required"),
        Some(Value::Object(d)) => d,
        Some(_) => return fail(errors, "data", "must be an object"),
    };
    for key in data.keys().filter(|k| !["type", "attributes", "id"].contains(&k.as_str())) {
        errors.push(format!("data.{key}"), "unknown member; expected type and attributes");
    }
    match data.get("type") {
        None | Some(Value::Null) => {
            errors.push("data.type", format!("is required and must be \"{resource_type}\""))
        }
        Some(Value::String(t)) if t == resource_type => {}
        Some(_) => errors.push("data.type", format!("must be \"{resource_type}\"")),
    }
    if let Some(id) = data.get("id") {
        match id_rule {
            IdRule::Forbidden => errors.push("data.id", "must not be sent: the server assigns ids"),
            IdRule::MustEqual(path_id) => {
                if id.as_str().and_then(|s| s.parse::<ConfigId>().ok()) != Some(path_id) {
                    errors.push("data.id", "must match the integration_config_id in the path");
                }
            }
        }
    }
    match data.get("attributes") {
        Some(Value::Object(attrs)) => Ok(attrs),
        None | Some(Value::Null) => fail(errors, ATTRS, "is required"),
        Some(_) => fail(errors, ATTRS, "must be an object"),
    }
}

fn check_known(attrs: &Map<String, Value>, known: &[&str], errors: &mut FieldErrors) {
    for key in attrs.keys().filter(|k| !known.contains(&k.as_str())) {
        errors.push(format!("{ATTRS}.{key}"), format!("unknown attribute; expected {}", known.join(", ")));
    }
}

fn required<'a>(attrs: &'a Map<String, Value>, key: &str, errors: &mut FieldErrors) -> Option<&'a Value> {
    match attrs.get(key) {
        None | Some(Value::Null) => {
            errors.push(format!("{ATTRS}.{key}"), "is required");
            None
        }
        Some(v) => Some(v),
    }
}

fn parse_str<T>(
    v: &Value,
    key: &str,
    parse: fn(&str) -> Result<T, String>,
    errors: &mut FieldErrors,
) -> Option<T> {
    let Some(s) = v.as_str() else {
        errors.push(format!("{ATTRS}.{key}"), "must be a string");
        return None;
    };
    parse(s).map_err(|m| errors.push(format!("{ATTRS}.{key}"), m)).ok()
}

fn required_type(attrs: &Map<String, Value>, errors: &mut FieldErrors) -> Option<IntegrationType> {
    integration_type(required(attrs, "integration_type", errors)?, errors)
}

fn integration_type(v: &Value, errors: &mut FieldErrors) -> Option<IntegrationType> {
    let path = format!("{ATTRS}.integration_type");
    let Some(t) = v.as_str().and_then(IntegrationType::parse) else {
        errors.push(path, format!("must be one of {}", IntegrationType::expected_list()));
        return None;
    };
    if ctxsync_sources::source(t).is_none() {
        let supported: Vec<&str> = ctxsync_sources::sources().map(|s| s.integration_type.as_str()).collect();
        errors.push(
            path,
            format!(
                "{t} is not supported yet: its connector is not in this release; supported now: {}",
                supported.join(", ")
            ),
        );
        return None;
    }
    Some(t)
}

fn settings(v: &Value, errors: &mut FieldErrors) -> Option<Settings> {
    match v {
        Value::Object(m) => {
            if let Err(e) = Schedule::for_settings(m, Schedule::DEFAULT) {
                errors.extend(e);
            }
            if let Err(e) = DeletionGuard::for_settings(m, DeletionGuard::DEFAULT) {
                errors.extend(e);
            }
            if let Err(e) = RateLimitShare::for_settings(m) {
                errors.extend(e);
            }
            Some(m.clone())
        }
        _ => {
            errors.push(format!("{ATTRS}.settings"), "must be an object");
            None
        }
    }
}

fn credentials(t: IntegrationType, secrets: &SecretValue, errors: &mut FieldErrors) -> Option<Credentials> {
    Credentials::parse(t, secrets).map_err(|e| errors.extend(e)).ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn okta(attrs: Value) -> Value {
        json!({"data": {"type": "integration_config", "attributes": attrs}})
    }

    #[test]
    fn create_collects_every_problem() {
        let err =
            parse_create(&okta(json!({"integration_type": "FOO", "name": "", "secrets": {}}))).err().unwrap();
        assert_eq!(
            err.messages(),
            vec![
                "data.attributes.integration_type: must be one of GOOGLE_WORKSPACE, OKTA, ENTRA_ID, CROWDSTRIKE, SENTINELONE",
                "data.attributes.name: must not be empty",
                "data.attributes.domain: is required",
            ]
        );
    }

    #[test]
    fn create_reads_a_good_request() {
        let req = parse_create(&okta(json!({
            "integration_type": "OKTA", "name": "Okta", "domain": "acme.okta.com",
            "secrets": {"api_token": "t"}, "settings": {"a": 1}
        })))
        .ok()
        .unwrap();
        assert_eq!(req.config.integration_type, IntegrationType::Okta);
        assert_eq!(req.config.settings.get("a"), Some(&json!(1)));
    }

    #[test]
    fn envelope_problems_are_named() {
        let wrong_type = json!({"data": {"type": "integration", "attributes": {}}});
        assert!(parse_create(&wrong_type).err().unwrap().messages()[0].starts_with("data.type: must be"));
        assert_eq!(
            parse_create(&json!([])).err().unwrap().messages()[0],
            "request body: must be a JSON object with a data member"
        );
        assert_eq!(
            parse_create(&json!({"data": {"type": "integration_config"}})).err().unwrap().messages(),
            vec!["data.attributes: is required"]
        );
    }

    #[test]
    fn edr_types_are_read_with_their_sources_secrets() {
        let cs = parse_create(&okta(json!({"integration_type": "CROWDSTRIKE", "name": "CS", "domain": "api.crowdstrike.com", "secrets": {"client_id": "a", "client_secret": "b"}}))).ok().unwrap();
        assert_eq!(cs.config.integration_type, IntegrationType::CrowdStrike);
        let err = parse_create(&okta(json!({"integration_type": "SENTINELONE", "name": "S1", "domain": "usea1-acme.sentinelone.net", "secrets": {"client_id": "a"}}))).err().unwrap();
        assert!(
            err.messages().iter().any(|m| m == "data.attributes.secrets.api_token: is required"),
            "{err}"
        );
    }

    #[test]
    fn update_needs_no_attribute() {
        let id = ConfigId::new();
        let patch = parse_update(&okta(json!({"enabled": false})), id).ok().unwrap();
        assert_eq!(patch.enabled, Some(false));
        assert!(patch.integration_type.is_none() && patch.name.is_none() && patch.secrets.is_none());
        let empty = parse_update(&okta(json!({})), id).ok().unwrap();
        assert!(empty.integration_type.is_none() && empty.enabled.is_none() && empty.settings.is_none());
        let typed = parse_update(&okta(json!({"integration_type": "OKTA"})), id).ok().unwrap();
        assert_eq!(typed.integration_type, Some(IntegrationType::Okta));
        let err =
            parse_update(&okta(json!({"integration_type": "LDAP", "enabled": "no"})), id).err().unwrap();
        assert_eq!(
            err.messages(),
            vec![
                "data.attributes.integration_type: must be one of GOOGLE_WORKSPACE, OKTA, ENTRA_ID, CROWDSTRIKE, SENTINELONE",
                "data.attributes.enabled: must be true or false"
            ]
        );
    }

    #[test]
    fn update_checks_secrets_against_the_type_it_names() {
        let id = ConfigId::new();
        let err =
            parse_update(&okta(json!({"integration_type": "ENTRA_ID", "secrets": {"client_id": "c"}})), id)
                .err()
                .unwrap();
        assert_eq!(err.messages(), vec!["data.attributes.secrets.client_secret: is required"]);
        assert!(parse_update(&okta(json!({"secrets": {"client_id": "c"}})), id).is_ok(), "checked later");
    }

    #[test]
    fn update_id_must_match_the_path() {
        let id = ConfigId::new();
        let doc = json!({"data": {"id": ConfigId::new().to_string(), "type": "integration_config", "attributes": {"integration_type": "OKTA"}}});
        assert!(parse_update(&doc, id).is_err());
        let doc = json!({"data": {"id": id.to_string(), "type": "integration_config", "attributes": {"integration_type": "OKTA"}}});
        assert!(parse_update(&doc, id).is_ok());
    }
}
