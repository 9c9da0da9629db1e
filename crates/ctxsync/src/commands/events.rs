//! `ctxsync events [--config ID] [--since 1h] [--follow]`: change events as NDJSON, oldest first,
//! read from the store a page at a time. With `--follow` it keeps asking for events after the
//! last one written (ids only grow), so a SIEM's shipper can tail it; Ctrl-C or SIGTERM ends it.

use std::io::Write;

use anyhow::bail;
use ctxsync_api::entities::EventData;
use ctxsync_store::EventQuery;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::settings::EventsArgs;
use crate::startup::shutdown_signal;
use crate::stored;

const PAGE: u32 = 1000;

pub async fn run(args: EventsArgs) -> anyhow::Result<()> {
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let store = match args.config {
        Some(id) => stored::config(&args.store, id).await?.0,
        None => stored::open(&args.store).await?,
    };
    let mut query = EventQuery { config: args.config, from: since, limit: PAGE, ..EventQuery::default() };
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        let page = store.list_events(None, &query).await?;
        let mut out = std::io::stdout().lock();
        for event in &page {
            let mut line = EventData::attributes(event);
            line["id"] = json!(event.id);
            writeln!(out, "{line}")?;
        }
        out.flush()?;
        drop(out);
        if let Some(last) = page.last() {
            query.after = Some(last.id);
        }
        if page.len() as u32 == PAGE {
            continue;
        }
        if !args.follow {
            return Ok(());
        }
        tokio::select! {
            () = &mut stop => return Ok(()),
            () = tokio::time::sleep(args.poll) => {}
        }
    }
}

/// `1h` (that long ago) or an RFC 3339 time.
fn parse_since(raw: &str) -> anyhow::Result<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(raw, &Rfc3339) {
        return Ok(t);
    }
    match humantime::parse_duration(raw) {
        Ok(ago) => Ok(ctxsync_core::now() - ago),
        Err(_) => bail!("--since must be a duration such as 1h or 7d, or an RFC 3339 time"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn since_is_a_duration_ago_or_a_time() {
        let an_hour_ago = parse_since("1h").unwrap();
        assert!(
            (ctxsync_core::now() - an_hour_ago - Duration::from_secs(3600)).abs() < time::Duration::SECOND
        );
        assert_eq!(parse_since("2026-01-31T09:15:00Z").unwrap().unix_timestamp(), 1_769_850_900);
        assert!(parse_since("yesterday").is_err());
    }
}
