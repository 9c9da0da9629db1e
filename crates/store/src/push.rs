//! Push endpoints: the secret a source sends with the deliveries it pushes (Okta Event Hooks'
//! header, Microsoft Graph's `clientState`), kept only as its SHA-256 digest so a copy of the
//! database cannot forge a delivery, with what the endpoint has seen; the event ids already
//! taken, so an at-least-once delivery counts once; and the subscriptions a source keeps for a
//! config (Graph's subscriptions, Google's channels), so they are renewed before they expire.

use ctxsync_core::{ConfigId, EntityKind, OrgId};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::StoreError;

/// A config's push endpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushEndpoint {
    /// Hex SHA-256 of the secret.
    pub secret_digest: String,
    pub created_at: OffsetDateTime,
    pub last_delivery_at: Option<OffsetDateTime>,
    /// Deliveries accepted, duplicates among their events, and deliveries refused for want of
    /// the secret.
    pub deliveries: u64,
    pub duplicates: u64,
    pub rejected: u64,
}

impl PushEndpoint {
    /// Whether `presented` is the secret, compared digest to digest.
    pub fn admits(&self, presented: &str) -> bool {
        secret_digest(presented) == self.secret_digest
    }
}

/// A new push secret: 32 random bytes, URL-safe base64 (a header value any console accepts).
pub fn new_secret() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The digest a push secret is kept as.
pub fn secret_digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// How long an event id is remembered: far longer than a source retries a delivery.
pub const SEEN_FOR: time::Duration = time::Duration::days(2);

/// The most entities one run reads one by one; the rest wait for the next.
pub const REFRESH_AT_MOST: u32 = 1_000;

/// A subscription the source keeps for a config's push: one per resource (Graph: `/users`,
/// `/groups`; Google: a `users.watch` channel per event), named by the source's id, expiring
/// unless renewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSubscription {
    pub config_id: ConfigId,
    pub resource: String,
    pub id: String,
    /// What else names it to the source (Google's `resourceId`).
    pub resource_id: Option<String>,
    pub expires_at: OffsetDateTime,
    /// When to renew it, as the source decided.
    pub renew_at: OffsetDateTime,
}

/// What became of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery<'a> {
    /// It carried the secret; these are its events' ids.
    Accepted(&'a [String]),
    /// It did not.
    Rejected,
}

#[async_trait::async_trait]
pub trait PushStore {
    /// Sets (or replaces) the config's push secret; `false` when the org has no such config.
    async fn set_push_secret(
        &self,
        org: OrgId,
        config: ConfigId,
        digest: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Replaces the secret of an endpoint that is on, keeping what it has seen (a source's
    /// subscriptions made again); `false` when it is off.
    async fn replace_push_secret(&self, config: ConfigId, digest: &str) -> Result<bool, StoreError>;

    /// Turns the endpoint off; `false` when it was not on.
    async fn delete_push_secret(&self, org: OrgId, config: ConfigId) -> Result<bool, StoreError>;

    /// The config's endpoint, whoever asks: deliveries carry no API key, only the secret.
    async fn push_endpoint(&self, config: ConfigId) -> Result<Option<PushEndpoint>, StoreError>;

    /// Counts a delivery and, for an accepted one, keeps its event ids; returns those not seen
    /// before (none for a rejected one).
    async fn record_delivery(
        &self,
        config: ConfigId,
        delivery: Delivery<'_>,
        now: OffsetDateTime,
    ) -> Result<Vec<String>, StoreError>;

    /// Names entities (by source id) for the next run to read from the source one by one.
    async fn add_refresh_targets(
        &self,
        config: ConfigId,
        kind: EntityKind,
        ids: &[String],
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// The entities of `kind` named before `until`, the oldest first, at most
    /// [`REFRESH_AT_MOST`].
    async fn refresh_targets(
        &self,
        config: ConfigId,
        kind: EntityKind,
        until: OffsetDateTime,
    ) -> Result<Vec<String>, StoreError>;

    /// Forgets `read`, the entities of `kind` a run that started at `until` took and read; one
    /// named again since stays.
    async fn clear_refresh_targets(
        &self,
        config: ConfigId,
        kind: EntityKind,
        read: &[String],
        until: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Replaces the config's subscriptions with `subscriptions` (none: forgets them).
    async fn set_subscriptions(
        &self,
        config: ConfigId,
        subscriptions: &[SourceSubscription],
    ) -> Result<(), StoreError>;

    /// The config's subscriptions, by resource.
    async fn subscriptions(&self, config: ConfigId) -> Result<Vec<SourceSubscription>, StoreError>;

    /// Takes the subscriptions due for renewal by `now` that no one has claimed past it, and
    /// claims them until `until`: whoever renews them, in any replica, is the only one to. A
    /// renewed one is no longer due; a failed renewal is tried again once the claim lapses.
    async fn claim_due_subscriptions(
        &self,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Vec<SourceSubscription>, StoreError>;

    /// A renewed subscription's new expiry and renewal time (found by its config and id).
    async fn renew_subscription(&self, renewed: &SourceSubscription) -> Result<(), StoreError>;
}
