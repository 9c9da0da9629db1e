use ctxsync_core::Run;
use ctxsync_store::StoredEntity;
use serde::Serialize;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

/// A synced entity: its normalized fields, the source's raw object, and where it came from.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EntityData {
    /// `{config_id}:{kind}:{source_id}`.
    pub id: String,
    /// Always `entity`.
    #[serde(rename = "type")]
    pub resource_type: &'static str,
    /// `config_id`, `kind`, `source_id`, the normalized fields of the kind, `raw`,
    /// `first_seen_at` and `updated_at`.
    #[schema(value_type = Object)]
    pub attributes: Value,
}

impl From<StoredEntity> for EntityData {
    fn from(e: StoredEntity) -> Self {
        let kind = e.entity.kind();
        let id = format!("{}:{}:{}", e.config_id, kind.as_str(), e.entity.source_id());
        let mut attributes = serde_json::to_value(&e.entity).expect("an entity serializes");
        let obj = attributes.as_object_mut().expect("an entity is an object");
        obj.insert("config_id".into(), json!(e.config_id.to_string()));
        obj.insert("raw".into(), e.raw);
        obj.insert("first_seen_at".into(), json!(rfc3339(e.first_seen_at)));
        obj.insert("updated_at".into(), json!(rfc3339(e.updated_at)));
        EntityData { id, resource_type: "entity", attributes }
    }
}

/// A sync run: kind, status (`running`, `succeeded`, `failed`, `cancelled`, `held`), times,
/// counts per entity type, pages, retries, error, whether it was the config's baseline (its first
/// completed full run, which records no change events), `hold` (why its deletions wait and what
/// became of them: `reason`, `deletions` by kind, `resolution` `confirmed`/`discarded`/
/// `superseded` or null, `resolved_at`), `completeness` (`by_type`: the source's `expected`
/// totals beside the `ingested` counts of a full run) and `resumed_from` (the stopped full run
/// this one went on from, whose counts it includes).
#[derive(Debug, Serialize, ToSchema)]
pub struct RunData {
    pub id: String,
    /// Always `sync_run`.
    #[serde(rename = "type")]
    pub resource_type: &'static str,
    #[schema(value_type = Object)]
    pub attributes: Value,
}

impl From<Run> for RunData {
    fn from(r: Run) -> Self {
        RunData {
            id: r.id.to_string(),
            resource_type: "sync_run",
            attributes: json!({
                "config_id": r.config_id.to_string(),
                "kind": r.kind.as_str(),
                "status": r.status.as_str(),
                "started_at": rfc3339(r.started_at),
                "finished_at": r.finished_at.map(rfc3339),
                "counts": r.counts.by_type,
                "pages": r.counts.pages,
                "retries": r.counts.retries,
                "error": r.error,
                "baseline": r.baseline,
                "hold": r.hold,
                "completeness": r.completeness,
                "resumed_from": r.resumed_from.map(|id| id.to_string()),
            }),
        }
    }
}

pub(crate) fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).expect("a stored time formats")
}
