//! Opening what `serve` or `demo` stored, for the commands that work on it (`sync`, `export`,
//! `events`): nothing is created, and a config that is not there is reported with the database
//! looked in and the configs it does hold, since the usual cause is the wrong folder.

use std::sync::Arc;

use anyhow::{Context, bail};
use ctxsync_core::{Config, ConfigId};
use ctxsync_store::Store;

use crate::settings::StoreArgs;

/// The store, or an error naming where no database was found.
pub async fn open(args: &StoreArgs) -> anyhow::Result<Arc<dyn Store>> {
    match connect(args).await? {
        Some(store) => Ok(store),
        None => bail!("there is no ctxsync database at {}; {}", args.database_name(), NOTHING_CREATED),
    }
}

/// The store and the config `id` in it, whatever its org.
pub async fn config(args: &StoreArgs, id: ConfigId) -> anyhow::Result<(Arc<dyn Store>, Config)> {
    let database = args.database_name();
    let Some(store) = connect(args).await? else {
        bail!("there is no config {id}: there is no ctxsync database at {database}; {NOTHING_CREATED}");
    };
    if let Some(config) = store.config_by_id(id).await? {
        return Ok((store, config));
    }
    let configs = store.list_all_configs().await?;
    bail!("{}", no_config(id, &database, &configs))
}

const NOTHING_CREATED: &str = "nothing was created. `ctxsync serve` and `ctxsync demo` create one; \
                               set CTXSYNC_DATA_DIR (or CTXSYNC_DATABASE_URL) to the one they use";

async fn connect(args: &StoreArgs) -> anyhow::Result<Option<Arc<dyn Store>>> {
    let Some((url, master_key)) = args.resolve_existing()? else { return Ok(None) };
    let store = ctxsync_store::connect(&url, master_key)
        .await
        .with_context(|| format!("could not open the database {}", args.database_name()))?;
    Ok(Some(store))
}

fn no_config(id: ConfigId, database: &str, configs: &[Config]) -> String {
    if configs.is_empty() {
        return format!("there is no config {id} in the database {database}, which has no configs yet");
    }
    let listed: Vec<String> =
        configs.iter().map(|c| format!("  {}  {}  {}", c.id, c.integration_type, c.name)).collect();
    format!(
        "there is no config {id} in the database {database}; the configs there are:\n{}",
        listed.join("\n")
    )
}
