//! Orgs and their key pairs: an API key names the org, an application key carries the scopes.
//!
//! Keys are random and stored only as SHA-256 hashes: a leaked database does not let anyone call
//! the API, and a key is looked up by its hash, so no comparison runs over the plaintext.

use std::fmt;
use std::time::Duration;

use ctxsync_core::{OrgId, Scope, Scopes};
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::StoreError;

/// A key pair as created, with the only copy of the plaintext keys.
#[derive(Clone)]
pub struct KeyPair {
    pub org_id: OrgId,
    pub org_name: String,
    pub api_key: String,
    pub app_key: String,
    pub scopes: Scopes,
    pub api_key_id: Uuid,
    pub app_key_id: Uuid,
    /// When both keys stop working, if they were given an expiry.
    pub expires_at: Option<OffsetDateTime>,
}

/// Which half of a pair a key is: the API key names the org, the application key carries scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Api,
    App,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Api => "api",
            KeyKind::App => "app",
        }
    }

    pub(crate) fn table(self) -> &'static str {
        match self {
            KeyKind::Api => "api_keys",
            KeyKind::App => "app_keys",
        }
    }
}

/// A stored key as operators see it: everything but the key.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyInfo {
    pub id: Uuid,
    pub org_id: OrgId,
    pub org_name: String,
    pub kind: KeyKind,
    /// An application key's scopes; `None` for an API key.
    pub scopes: Option<Scopes>,
    pub created_at: OffsetDateTime,
    /// To the minute: uses are recorded at most once a minute per key and process.
    pub last_used_at: Option<OffsetDateTime>,
    pub expires_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

impl KeyInfo {
    /// `active`, `revoked` or `expired` at `now`.
    pub fn status(&self, now: OffsetDateTime) -> &'static str {
        match (self.revoked_at, self.expires_at) {
            (Some(_), _) => "revoked",
            (None, Some(at)) if at <= now => "expired",
            _ => "active",
        }
    }
}

/// A key just issued by a rotation, with the only copy of its plaintext.
#[derive(Clone)]
pub struct IssuedKey {
    pub info: KeyInfo,
    pub key: String,
}

impl fmt::Debug for IssuedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedKey").field("info", &self.info).field("key", &"[redacted]").finish()
    }
}

/// Which keys [`KeyStore::list_keys`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFilter {
    All,
    Org(OrgId),
}

/// Both kinds of key with their org, oldest first; `filter` is a condition on a key `k` with
/// numbered parameters (`k.org_id = $1`).
pub(crate) fn keys_query(filter: &str) -> String {
    let select = |kind: KeyKind, scopes: &str| {
        format!(
            "SELECT k.id AS id, k.org_id AS org_id, o.name AS org_name, '{kind}' AS kind, {scopes} AS scopes, \
             k.created_at AS created_at, k.last_used_at AS last_used_at, k.expires_at AS expires_at, \
             k.revoked_at AS revoked_at FROM {table} k JOIN orgs o ON o.id = k.org_id WHERE {filter}",
            kind = kind.as_str(),
            table = kind.table(),
        )
    };
    format!(
        "{} UNION ALL {} ORDER BY created_at, kind",
        select(KeyKind::Api, "CAST(NULL AS TEXT)"),
        select(KeyKind::App, "k.scopes")
    )
}

/// The old key's expiry after a rotation with `grace`: the sooner of its own and the grace's end.
pub(crate) fn expiry_after_rotation(
    current: Option<OffsetDateTime>,
    now: OffsetDateTime,
    grace: Duration,
) -> OffsetDateTime {
    let end = now + grace;
    current.map_or(end, |at| at.min(end))
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("org_id", &self.org_id)
            .field("org_name", &self.org_name)
            .field("api_key", &"[redacted]")
            .field("app_key", &"[redacted]")
            .field("scopes", &self.scopes)
            .field("api_key_id", &self.api_key_id)
            .field("app_key_id", &self.app_key_id)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Who a request acts for, once its keys are authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub org_id: OrgId,
    pub scopes: Scopes,
}

/// What authentication checked: the org and scopes the pair acts with, which keys they were, and
/// when the sooner of the two expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub principal: Principal,
    pub key_ids: [Uuid; 2],
    pub expires_at: Option<OffsetDateTime>,
}

#[async_trait::async_trait]
pub trait KeyStore: Send + Sync {
    /// Returns the org with this name, creating it if needed. The default org is named "default".
    async fn ensure_org(&self, name: &str) -> Result<OrgId, StoreError>;

    /// The name of an org that exists.
    async fn org_name(&self, org: OrgId) -> Result<String, StoreError>;

    /// Generates a new API key (32 lowercase hex characters, like Datadog's) and application key
    /// (40 lowercase hex characters) for the org, creating the org if needed. Only their hashes
    /// are stored: the plaintext is returned this once.
    async fn create_key_pair(&self, org_name: &str, scopes: &Scopes) -> Result<KeyPair, StoreError> {
        self.issue_key_pair(org_name, scopes, None).await
    }

    /// [`KeyStore::create_key_pair`] with an expiry for both keys.
    async fn issue_key_pair(
        &self,
        org_name: &str,
        scopes: &Scopes,
        expires_at: Option<OffsetDateTime>,
    ) -> Result<KeyPair, StoreError>;

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

    /// The org and scopes of this key pair: `Some` only when both keys exist, belong to the same
    /// org, and are neither revoked nor expired. Empty keys never match.
    async fn authenticate(&self, api_key: &str, app_key: &str) -> Result<Option<Principal>, StoreError> {
        Ok(self.authenticate_keys(api_key, app_key).await?.map(|a| a.principal))
    }

    /// [`KeyStore::authenticate`] with the keys' ids and expiry, for callers that remember the
    /// answer for a while.
    async fn authenticate_keys(
        &self,
        api_key: &str,
        app_key: &str,
    ) -> Result<Option<Authenticated>, StoreError>;

    async fn list_keys(&self, filter: KeyFilter) -> Result<Vec<KeyInfo>, StoreError>;

    /// Marks the key revoked now (a revoked key stays revoked, with its first revocation time);
    /// `None` when `filter` has no such key.
    async fn revoke_key(&self, filter: KeyFilter, id: Uuid) -> Result<Option<KeyInfo>, StoreError>;

    /// Issues a new key of the same org, kind and scopes (expiring at `expires_at`, if given) and
    /// makes the old one expire `grace` from now, or sooner if it already would. A revoked or
    /// expired key cannot be rotated; `None` when `filter` has no such key.
    async fn rotate_key(
        &self,
        filter: KeyFilter,
        id: Uuid,
        grace: Duration,
        expires_at: Option<OffsetDateTime>,
    ) -> Result<Option<IssuedKey>, StoreError>;

    /// Records that these keys were used at `at`.
    async fn record_key_use(&self, ids: &[Uuid], at: OffsetDateTime) -> Result<(), StoreError>;
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
            api_key_id: Uuid::new_v4(),
            app_key_id: Uuid::new_v4(),
            expires_at: None,
        };
        let printed = format!("{pair:?}");
        assert!(!printed.contains(&pair.api_key) && !printed.contains(&pair.app_key), "{printed}");
    }
}
