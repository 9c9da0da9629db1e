//! A service account's key file and the admin it impersonates, read from a config's `secrets`.

use ctxsync_core::FieldErrors;
use secrecy::SecretString;
use serde_json::{Map, Value};

use crate::registry::{looks_like_email, required_secret, required_str};

/// A service account with domain-wide delegation, impersonating a Workspace admin.
#[derive(Debug, Clone)]
pub(crate) struct GoogleWorkspaceCredentials {
    pub(crate) client_email: String,
    /// PKCS#8 PEM, signs the RS256 JWT-bearer assertion.
    pub(crate) private_key: SecretString,
    pub(crate) private_key_id: Option<String>,
    /// The service account's Google Cloud project, whose quota its requests draw on.
    pub(crate) project_id: String,
    /// The admin the service account acts as (the JWT's `sub`).
    pub(crate) admin_email: String,
}

const KEY_FILE: &str = "data.attributes.secrets.service_account_json";

pub(super) fn parse(
    obj: &Map<String, Value>,
    errors: &mut FieldErrors,
) -> Option<GoogleWorkspaceCredentials> {
    let admin_email = required_secret(obj, "admin_email", errors);
    if let Some(email) = &admin_email
        && !looks_like_email(email)
    {
        errors.push(
            "data.attributes.secrets.admin_email",
            "must be an email address (the Workspace admin to impersonate)",
        );
    }
    // The contract says object; the key file's text pasted as a string is accepted too.
    let parsed_string;
    let sa = match obj.get("service_account_json") {
        None | Some(Value::Null) => {
            errors.push(KEY_FILE, "is required (the service account key file's JSON)");
            return None;
        }
        Some(Value::Object(m)) => m,
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => {
                parsed_string = m;
                &parsed_string
            }
            _ => {
                errors.push(KEY_FILE, "must be an object (the service account key file's JSON)");
                return None;
            }
        },
        Some(_) => {
            errors.push(KEY_FILE, "must be an object (the service account key file's JSON)");
            return None;
        }
    };
    let client_email = required_str(sa, KEY_FILE, "client_email", errors);
    let private_key = required_str(sa, KEY_FILE, "private_key", errors);
    let project_id = required_str(sa, KEY_FILE, "project_id", errors);
    let kind = required_str(sa, KEY_FILE, "type", errors);
    if let Some(email) = &client_email
        && !looks_like_email(email)
    {
        errors.push(format!("{KEY_FILE}.client_email"), "must be the service account's email address");
    }
    if let Some(key) = &private_key
        && !key.contains("-----BEGIN")
    {
        errors.push(
            format!("{KEY_FILE}.private_key"),
            "must be a PEM private key (-----BEGIN PRIVATE KEY-----)",
        );
    }
    if kind.as_deref().is_some_and(|k| k != "service_account") {
        errors.push(format!("{KEY_FILE}.type"), "must be \"service_account\"");
    }
    Some(GoogleWorkspaceCredentials {
        client_email: client_email?,
        private_key: SecretString::from(private_key?),
        private_key_id: sa.get("private_key_id").and_then(Value::as_str).map(str::to_owned),
        project_id: project_id?,
        admin_email: admin_email?,
    })
}

#[cfg(test)]
mod tests {
    use ctxsync_core::{IntegrationType, SecretValue};
    use serde_json::json;

    use crate::Credentials;

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

    use super::*;

    fn parse(v: Value) -> Result<Credentials, FieldErrors> {
        Credentials::parse(IntegrationType::GoogleWorkspace, &SecretValue::new(v))
    }

    #[test]
    fn the_key_file_and_admin_are_checked() {
        let ok = parse(json!({"service_account_json": sa(), "admin_email": "admin@example.com"})).unwrap();
        let parsed: &GoogleWorkspaceCredentials = ok.get().unwrap();
        assert_eq!(
            (parsed.client_email.as_str(), parsed.private_key_id.as_deref()),
            ("svc@p.iam.gserviceaccount.com", Some("k1"))
        );
        assert!(
            parse(json!({"service_account_json": sa().to_string(), "admin_email": "admin@example.com"}))
                .is_ok()
        );
        let mut bad = sa();
        bad["type"] = json!("user");
        bad.as_object_mut().unwrap().remove("client_email");
        let msgs = parse(json!({"service_account_json": bad})).unwrap_err().messages();
        for expected in [
            "data.attributes.secrets.admin_email: is required",
            "data.attributes.secrets.service_account_json.client_email: is required",
            "data.attributes.secrets.service_account_json.type: must be \"service_account\"",
        ] {
            assert!(msgs.contains(&expected.to_string()), "{msgs:?}");
        }
        let err = parse(json!({"service_account_json": {"private_key": "topsecret"}})).unwrap_err();
        assert!(!err.to_string().contains("topsecret"), "{err}");
    }
}
