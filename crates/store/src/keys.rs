//! Orgs and their key pairs: an API key names the org, an application key carries the scopes.
//!
//! Keys are random and stored only as SHA-256 hashes: a leaked database does not let anyone call
//! the API, and a key is looked up by its hash, so no comparison runs over the plaintext.

use std::fmt;

use ctxsync_core::{OrgId, Scope, Scopes};
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};

use crate::StoreError;

/// A key pair as created, with the only copy of the plaintext keys.
#[derive(Clone)]
pub struct KeyPair {
    pub org_id: OrgId,
    pub org_name: String,
    pub api_key: String,
    pub app_key: String,
    pub scopes: Scopes,
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("org_id", &self.org_id)
            .field("org_name", &self.org_name)
            .field("api_key", &"[redacted]")
            .field("app_key", &"[redacted]")
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// Who a request acts for, once its keys are authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub org_id: OrgId,
    pub scopes: Scopes,
}

#[async_trait::async_trait]
pub trait KeyStore: Send + Sync {
    /// Returns the org with this name, creating it if needed. The default org is named "default".
    async fn ensure_org(&self, name: &str) -> Result<OrgId, StoreError>;

    /// Generates a new API key (32 lowercase hex characters, like Datadog's) and application key
    /// (40 lowercase hex characters) for the org, creating the org if needed. Only their hashes
    /// are stored: the plaintext is returned this once.
    async fn create_key_pair(&self, org_name: &str, scopes: &Scopes) -> Result<KeyPair, StoreError>;

    /// Makes sure these given keys exist in org `org_name` with `scopes`, for bootstrapping from
    /// the environment. Idempotent; an existing application key gets `scopes`. A key already
    /// registered to another org is an error rather than moved.
    async fn ensure_key_pair(
        &self,
        org_name: &str,
        api_key: &str,
        app_key: &str,
        scopes: &Scopes,
    ) -> Result<(), StoreError>;

    /// The org and scopes of this key pair: `Some` only when both keys exist and belong to the
    /// same org. Empty keys never match.
    async fn authenticate(&self, api_key: &str, app_key: &str) -> Result<Option<Principal>, StoreError>;
}

/// 16 random bytes, the length of a Datadog API key.
pub(crate) fn generate_api_key() -> String {
    random_hex::<16>()
}

/// 20 random bytes, the length of a Datadog application key.
pub(crate) fn generate_app_key() -> String {
    random_hex::<20>()
}

fn random_hex<const N: usize>() -> String {
    let mut bytes = [0u8; N];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

pub(crate) fn hash_key(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

pub(crate) fn check_org_name(name: &str) -> Result<(), StoreError> {
    if name.trim().is_empty() {
        return Err(StoreError::Invalid("the org name must not be empty".into()));
    }
    Ok(())
}

/// Bootstrap keys come from the environment, where stray whitespace is easy to miss and would
/// make every request fail to authenticate.
pub(crate) fn check_given_key(kind: &str, key: &str) -> Result<(), StoreError> {
    if key.is_empty() {
        return Err(StoreError::Invalid(format!("the {kind} must not be empty")));
    }
    if key.trim() != key {
        return Err(StoreError::Invalid(format!("the {kind} must not start or end with whitespace")));
    }
    Ok(())
}

/// The stored form of scopes: `None` (every permission) or a JSON array of names.
pub(crate) fn scopes_to_json(scopes: &Scopes) -> Option<String> {
    scopes.names().map(|names| serde_json::to_string(&names).expect("a list of names serializes"))
}

pub(crate) fn scopes_from_json(stored: Option<&str>) -> Result<Scopes, StoreError> {
    let Some(text) = stored else {
        return Ok(Scopes::All);
    };
    let names: Vec<String> = serde_json::from_str(text)
        .map_err(|_| StoreError::Corrupt("an application key's scopes are not a JSON list".into()))?;
    names
        .iter()
        .map(|n| {
            Scope::parse(n)
                .ok_or_else(|| StoreError::Corrupt(format!("an application key has unknown scope {n:?}")))
        })
        .collect::<Result<_, _>>()
        .map(Scopes::Only)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_look_like_datadog_keys() {
        let (api, app) = (generate_api_key(), generate_app_key());
        assert_eq!(api.len(), 32);
        assert_eq!(app.len(), 40);
        for k in [&api, &app] {
            assert!(k.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)), "{k}");
        }
        assert_ne!(generate_api_key(), api);
    }

    #[test]
    fn scopes_round_trip() {
        for scopes in [
            Scopes::All,
            Scopes::Only(vec![]),
            Scopes::Only(vec![Scope::IntegrationsRead]),
            Scopes::Only(vec![Scope::ManageIntegrations, Scope::IntegrationsRead]),
        ] {
            let stored = scopes_to_json(&scopes);
            assert_eq!(scopes_from_json(stored.as_deref()).unwrap(), scopes);
        }
        assert!(matches!(scopes_from_json(Some("[\"root\"]")), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn debug_redacts_keys() {
        let pair = KeyPair {
            org_id: OrgId::new(),
            org_name: "default".into(),
            api_key: generate_api_key(),
            app_key: generate_app_key(),
            scopes: Scopes::All,
        };
        let printed = format!("{pair:?}");
        assert!(!printed.contains(&pair.api_key) && !printed.contains(&pair.app_key), "{printed}");
    }
}
