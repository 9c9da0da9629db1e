//! `ctxsync export --config ID`: every entity (normalized and raw) and membership of a config,
//! one JSON object a line, read a page at a time so memory stays flat.

use std::io::{BufWriter, Write};

use anyhow::Context;
use ctxsync_store::{EntityCursor, EntityQuery};
use serde_json::json;

use crate::settings::ExportArgs;
use crate::stored;

const PAGE: u32 = 1000;

pub async fn run(args: ExportArgs) -> anyhow::Result<()> {
    let (store, config) = stored::config(&args.store, args.config).await?;
    let out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(
            crate::private::create(path).with_context(|| format!("could not create {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::new(out);
    let mut query = EntityQuery { config: Some(config.id), limit: PAGE, ..EntityQuery::default() };
    loop {
        let page = store.list_entities(config.org_id, &query).await?;
        for e in &page {
            let line = json!({
                "type": "entity",
                "config_id": e.config_id.to_string(),
                "entity": e.entity,
                "raw": e.raw,
            });
            writeln!(out, "{line}")?;
        }
        let Some(last) = page.last().filter(|_| page.len() as u32 == PAGE) else { break };
        query.after = Some(EntityCursor {
            config_id: last.config_id,
            kind: last.entity.kind(),
            source_id: last.entity.source_id().to_owned(),
        });
    }
    let mut after = None;
    loop {
        let page = store.list_memberships(config.org_id, config.id, after.as_ref(), PAGE).await?;
        for m in &page {
            let line = json!({
                "type": "membership",
                "config_id": m.config_id.to_string(),
                "group_id": m.membership.group_id,
                "member_kind": m.membership.member_kind,
                "member_id": m.membership.member_id,
            });
            writeln!(out, "{line}")?;
        }
        if page.len() < PAGE as usize {
            break;
        }
        after = page.last().map(|m| m.membership.clone());
    }
    out.flush()?;
    Ok(())
}
