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
    if args.json {
        let out = serde_json::json!({
            "org": pair.org_name,
            "org_id": pair.org_id.to_string(),
            "api_key": pair.api_key,
            "app_key": pair.app_key,
            "scopes": scope_names,
        });
        println!("{out}");
    } else {
        println!("org:      {} ({})", pair.org_name, pair.org_id);
        println!("api key:  {}", pair.api_key);
        println!("app key:  {}", pair.app_key);
        println!("scopes:   {}", scope_names.map_or("all permissions of the org".into(), |s| s.join(", ")));
        println!("Keep them now: only their hashes are stored.");
    }
    Ok(())
}
