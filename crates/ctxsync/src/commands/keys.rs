use std::io::Write;

use anyhow::Context;
use ctxsync_core::Scopes;

use crate::settings::KeysCreateArgs;

/// Prints a new key pair; the keys are shown once and only their hashes are stored.
pub async fn create(args: KeysCreateArgs) -> anyhow::Result<()> {
    let scopes = Scopes::parse_list(&args.scopes).map_err(|e| anyhow::anyhow!("--scopes: {e}"))?;
    let (database_url, master_key) = args.store.resolve()?;
    let store =
        ctxsync_store::connect(&database_url, master_key).await.context("could not open the database")?;
    let pair = store.create_key_pair(&args.org, &scopes).await.context("could not create the key pair")?;
    let scope_names = pair.scopes.names();
    // Written, not printed: `println!` panics when the reader has gone (`keys create | head -c1`).
    let mut out = std::io::stdout().lock();
    if args.json {
        let json = serde_json::json!({
            "org": pair.org_name,
            "org_id": pair.org_id.to_string(),
            "api_key": pair.api_key,
            "app_key": pair.app_key,
            "scopes": scope_names,
        });
        writeln!(out, "{json}")?;
    } else {
        writeln!(out, "org:      {} ({})", pair.org_name, pair.org_id)?;
        writeln!(out, "api key:  {}", pair.api_key)?;
        writeln!(out, "app key:  {}", pair.app_key)?;
        let scopes = scope_names.map_or("all permissions of the org".into(), |s| s.join(", "));
        writeln!(out, "scopes:   {scopes}")?;
        writeln!(out, "Keep them now: only their hashes are stored.")?;
    }
    out.flush()?;
    Ok(())
}
