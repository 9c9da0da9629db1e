//! Held deletions: what a completed run would have deleted when they looked like a mass deletion
//! or its listing looked incomplete, kept until an operator confirms or discards them.
//!
//! Every completed run first *stages* its deletions in `held_deletions` (the same rows either
//! way), counts them by kind, and then either applies them at once or keeps them and marks the
//! run `held`. Later pages that list a staged entity or membership again drop it from the stage,
//! so a confirmation never deletes what a later run saw; a later full run supersedes every held
//! stage of its config, since it judges deletions afresh.

use std::collections::BTreeMap;

use ctxsync_core::{ConfigId, Hold, HoldResolution, OrgId, Run};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::StoreError;

/// One staged deletion: an entity (`member` empty) or a membership (`kind` is `membership`,
/// `source_id` the group).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct HeldDeletion {
    pub kind: String,
    pub source_id: String,
    pub member_kind: String,
    pub member_id: String,
    /// The entity's login or name while it is still stored, so a reviewer sees who it is.
    pub login: Option<String>,
    pub display_name: Option<String>,
}

impl HeldDeletion {
    /// The listing's position after this row.
    pub fn cursor(&self) -> HeldCursor {
        HeldCursor {
            kind: self.kind.clone(),
            source_id: self.source_id.clone(),
            member_kind: self.member_kind.clone(),
            member_id: self.member_id.clone(),
        }
    }
}

/// Where a listing of held deletions resumes (rows are ordered by these columns).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct HeldCursor {
    pub kind: String,
    pub source_id: String,
    pub member_kind: String,
    pub member_id: String,
}

/// What a decision on a run's held deletions found.
#[derive(Debug, Clone, PartialEq)]
pub enum Decided {
    /// The run, with its hold resolved (and, when confirmed, its deletion counts).
    Resolved(Run),
    /// The run has no deletions waiting: it was not held, or its hold was already resolved.
    NotHeld(Run),
    NotFound,
}

#[async_trait::async_trait]
pub trait HoldStore: Send + Sync {
    /// A held run's staged deletions in a stable order, `limit` at a time after `after`;
    /// `None` when the org has no such run.
    async fn held_deletions(
        &self,
        org: OrgId,
        config: ConfigId,
        run: Uuid,
        after: Option<&HeldCursor>,
        limit: u32,
    ) -> Result<Option<Vec<HeldDeletion>>, StoreError>;

    /// Applies (`Confirmed`) or drops (`Discarded`) a held run's deletions in one transaction.
    /// Confirmed deletions record their change events and history like a run's own.
    async fn decide_hold(
        &self,
        org: OrgId,
        config: ConfigId,
        run: Uuid,
        decision: HoldResolution,
    ) -> Result<Decided, StoreError>;

    /// The config's runs whose deletions still wait for a decision, newest first.
    async fn pending_holds(&self, org: OrgId, config: ConfigId) -> Result<Vec<Run>, StoreError>;
}

/// The hold a run gets when its staged deletions must wait, or `None` when they may be applied.
pub(crate) fn judge(
    run: &Run,
    guard: &ctxsync_core::DeletionGuard,
    staged: &BTreeMap<String, u64>,
    stored: &BTreeMap<String, u64>,
) -> Option<Hold> {
    if staged.values().all(|&n| n == 0) {
        return None;
    }
    let incomplete = run
        .completeness
        .as_ref()
        .filter(|c| c.is_short())
        .map(|c| format!("incomplete listing: {}", c.mismatches().join("; ")));
    let reasons: Vec<String> = incomplete.into_iter().chain(guard.check(staged, stored)).collect();
    (!reasons.is_empty()).then(|| Hold {
        reason: format!("{}; confirm or discard the held deletions", reasons.join("; ")),
        deletions: staged.clone(),
        resolution: None,
        resolved_at: None,
    })
}

/// A pending run's hold as a decision (or a later full run) leaves it.
pub(crate) fn resolved(
    run: &mut Run,
    resolution: HoldResolution,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    let hold =
        run.hold.as_mut().ok_or_else(|| StoreError::Corrupt(format!("held run {} has no hold", run.id)))?;
    hold.resolution = Some(resolution);
    hold.resolved_at = Some(at);
    Ok(())
}

pub(crate) fn encode_hold(hold: &Hold) -> String {
    serde_json::to_string(hold).expect("a hold serializes")
}

/// Whether a run's deletions still wait for a decision.
pub(crate) fn is_pending(run: &Run) -> bool {
    run.status == ctxsync_core::RunStatus::Held && run.hold.as_ref().is_some_and(|h| h.resolution.is_none())
}
