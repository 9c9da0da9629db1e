//! The credentials each source type needs, checked from a config's `secrets` object.
//!
//! Messages name the offending key and what is expected, never a value: whatever a caller puts
//! under `secrets` is treated as secret, even when it is malformed.

use secrecy::SecretString;
use serde_json::{Map, Value};

use crate::{FieldErrors, IntegrationType, SecretValue};

const PATH: &str = "data.attributes.secrets";

/// Parsed, typed credentials for one source.
#[derive(Debug, Clone)]
pub enum Credentials {
    Okta(OktaCredentials),
    GoogleWorkspace(GoogleWorkspaceCredentials),
    EntraId(EntraIdCredentials),
}

#[derive(Debug, Clone)]
pub struct OktaCredentials {
    /// Sent as `Authorization: SSWS <token>`.
    pub api_token: SecretString,
}

/// A service account with domain-wide delegation, impersonating a Workspace admin.
#[derive(Debug, Clone)]
pub struct GoogleWorkspaceCredentials {
    pub client_email: String,
    /// PKCS#8 PEM, signs the RS256 JWT-bearer assertion.
    pub private_key: SecretString,
    pub private_key_id: Option<String>,
    pub project_id: String,
    /// The admin the service account acts as (the JWT's `sub`).
    pub admin_email: String,
}

/// An Entra ID app registration using the client-credentials grant.
#[derive(Debug, Clone)]
pub struct EntraIdCredentials {
    pub client_id: String,
    pub client_secret: SecretString,
}

impl Credentials {
    /// The keys of `secrets` a type takes, all required; empty for a type this release cannot
    /// sync. The one list parsing and the API's hints both read.
    pub fn secret_keys(integration_type: IntegrationType) -> &'static [&'static str] {
        match integration_type {
            IntegrationType::Okta => &["api_token"],
            IntegrationType::EntraId => &["client_id", "client_secret"],
            IntegrationType::GoogleWorkspace => &["service_account_json", "admin_email"],
            IntegrationType::CrowdStrike | IntegrationType::SentinelOne => &[],
        }
    }

    /// Check `secrets` for `integration_type`, reporting every problem with its path.
    pub fn parse(integration_type: IntegrationType, secrets: &SecretValue) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::default();
        let Some(obj) = secrets.expose().as_object() else {
            errors.push(PATH, "must be an object");
            return Err(errors);
        };
        match integration_type {
            IntegrationType::Okta => {
                check_keys(obj, PATH, Self::secret_keys(integration_type), &mut errors);
                let api_token = required_str(obj, PATH, "api_token", &mut errors);
                errors.into_result(()).map(|()| {
                    Credentials::Okta(OktaCredentials {
                        api_token: SecretString::from(api_token.unwrap_or_default()),
                    })
                })
            }
            IntegrationType::EntraId => {
                check_keys(obj, PATH, Self::secret_keys(integration_type), &mut errors);
                let client_id = required_str(obj, PATH, "client_id", &mut errors);
                let client_secret = required_str(obj, PATH, "client_secret", &mut errors);
                errors.into_result(()).map(|()| {
                    Credentials::EntraId(EntraIdCredentials {
                        client_id: client_id.unwrap_or_default(),
                        client_secret: SecretString::from(client_secret.unwrap_or_default()),
                    })
                })
            }
            IntegrationType::GoogleWorkspace => parse_google(obj, errors),
            IntegrationType::CrowdStrike | IntegrationType::SentinelOne => {
                errors.push(
                    "data.attributes.integration_type",
                    format!("{integration_type} is not supported yet by this ctxsync version"),
                );
                Err(errors)
            }
        }
    }
}

fn parse_google(obj: &Map<String, Value>, mut errors: FieldErrors) -> Result<Credentials, FieldErrors> {
    check_keys(obj, PATH, Credentials::secret_keys(IntegrationType::GoogleWorkspace), &mut errors);
    let admin_email = required_str(obj, PATH, "admin_email", &mut errors);
    if let Some(email) = &admin_email
        && !looks_like_email(email)
    {
        errors.push(
            format!("{PATH}.admin_email"),
            "must be an email address (the Workspace admin to impersonate)",
        );
    }
    let sa_path = format!("{PATH}.service_account_json");
    // The contract says object; the key file's text pasted as a string is accepted too.
    let parsed_string;
    let sa = match obj.get("service_account_json") {
        None | Some(Value::Null) => {
            errors.push(sa_path, "is required (the service account key file's JSON)");
            return Err(errors);
        }
        Some(Value::Object(m)) => m,
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => {
                parsed_string = m;
                &parsed_string
            }
            _ => {
                errors.push(sa_path, "must be an object (the service account key file's JSON)");
                return Err(errors);
            }
        },
        Some(_) => {
            errors.push(sa_path, "must be an object (the service account key file's JSON)");
            return Err(errors);
        }
    };
    let client_email = required_str(sa, &sa_path, "client_email", &mut errors);
    let private_key = required_str(sa, &sa_path, "private_key", &mut errors);
    let project_id = required_str(sa, &sa_path, "project_id", &mut errors);
    let kind = required_str(sa, &sa_path, "type", &mut errors);
    if let Some(email) = &client_email
        && !looks_like_email(email)
    {
        errors.push(format!("{sa_path}.client_email"), "must be the service account's email address");
    }
    if let Some(key) = &private_key
        && !key.contains("-----BEGIN")
    {
        errors.push(
            format!("{sa_path}.private_key"),
            "must be a PEM private key (-----BEGIN PRIVATE KEY-----)",
        );
    }
    if kind.as_deref().is_some_and(|k| k != "service_account") {
        errors.push(format!("{sa_path}.type"), "must be \"service_account\"");
    }
    let private_key_id = sa.get("private_key_id").and_then(Value::as_str).map(str::to_owned);
    errors.into_result(()).map(|()| {
        Credentials::GoogleWorkspace(GoogleWorkspaceCredentials {
            client_email: client_email.unwrap_or_default(),
            private_key: SecretString::from(private_key.unwrap_or_default()),
            private_key_id,
            project_id: project_id.unwrap_or_default(),
            admin_email: admin_email.unwrap_or_default(),
        })
    })
}

fn check_keys(obj: &Map<String, Value>, path: &str, known: &[&str], errors: &mut FieldErrors) {
    for key in obj.keys().filter(|k| !known.contains(&k.as_str())) {
        errors.push(format!("{path}.{key}"), format!("unknown key; expected {}", known.join(", ")));
    }
}

fn required_str(obj: &Map<String, Value>, path: &str, key: &str, errors: &mut FieldErrors) -> Option<String> {
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

fn looks_like_email(s: &str) -> bool {
    matches!(s.split_once('@'), Some((local, domain)) if !local.is_empty() && domain.contains('.') && !s.contains(char::is_whitespace))
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;
    use serde_json::json;

    use super::*;

    fn parse(t: IntegrationType, v: Value) -> Result<Credentials, FieldErrors> {
        Credentials::parse(t, &SecretValue::new(v))
    }

    fn sa() -> Value {
        json!({
            "type": "service_account",
            "project_id": "p",
            "private_key_id": "k1",
            "private_key": "-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n",
            "client_email": "svc@p.iam.gserviceaccount.com",
            "client_id": "123",
            "token_uri": "http://169.254.169.254/evil"
        })
    }

    #[test]
    fn okta_needs_api_token() {
        let Credentials::Okta(c) = parse(IntegrationType::Okta, json!({"api_token": "00abc"})).unwrap()
        else {
            panic!()
        };
        assert_eq!(c.api_token.expose_secret(), "00abc");
        let err = parse(IntegrationType::Okta, json!({"apiToken": "00abc"})).unwrap_err();
        assert_eq!(
            err.messages(),
            vec![
                "data.attributes.secrets.apiToken: unknown key; expected api_token",
                "data.attributes.secrets.api_token: is required"
            ]
        );
    }

    #[test]
    fn google_checks_the_key_file_and_admin() {
        let ok = parse(
            IntegrationType::GoogleWorkspace,
            json!({"service_account_json": sa(), "admin_email": "admin@example.com"}),
        );
        assert!(matches!(ok, Ok(Credentials::GoogleWorkspace(_))));
        let as_string = parse(
            IntegrationType::GoogleWorkspace,
            json!({"service_account_json": sa().to_string(), "admin_email": "admin@example.com"}),
        );
        assert!(as_string.is_ok());
        let mut bad = sa();
        bad["type"] = json!("user");
        bad.as_object_mut().unwrap().remove("client_email");
        let err = parse(IntegrationType::GoogleWorkspace, json!({"service_account_json": bad})).unwrap_err();
        let msgs = err.messages();
        assert!(msgs.contains(&"data.attributes.secrets.admin_email: is required".to_string()), "{msgs:?}");
        assert!(
            msgs.contains(
                &"data.attributes.secrets.service_account_json.client_email: is required".to_string()
            )
        );
        assert!(msgs.contains(
            &"data.attributes.secrets.service_account_json.type: must be \"service_account\"".to_string()
        ));
    }

    #[test]
    fn entra_needs_client_credentials() {
        assert!(parse(IntegrationType::EntraId, json!({"client_id": "a", "client_secret": "b"})).is_ok());
        let err = parse(IntegrationType::EntraId, json!({"client_id": 5})).unwrap_err();
        assert_eq!(
            err.messages(),
            vec![
                "data.attributes.secrets.client_id: must be a string",
                "data.attributes.secrets.client_secret: is required"
            ]
        );
    }

    #[test]
    fn messages_never_echo_values() {
        let err =
            parse(IntegrationType::Okta, json!({"api_token": 12345678, "zzsecretzz": "x"})).unwrap_err();
        assert!(!err.to_string().contains("12345678"));
        let err = parse(
            IntegrationType::GoogleWorkspace,
            json!({"service_account_json": {"private_key": "topsecret"}}),
        )
        .unwrap_err();
        assert!(!err.to_string().contains("topsecret"), "{err}");
    }

    #[test]
    fn edr_types_are_not_supported_yet() {
        let err = parse(IntegrationType::CrowdStrike, json!({})).unwrap_err();
        assert!(err.to_string().contains("not supported yet"));
    }
}
