use std::io::Write;
use std::time::Duration;

use anyhow::{Context, bail};
use ctxsync_core::Scopes;
use ctxsync_store::{KeyFilter, KeyInfo};
use serde_json::json;
use time::format_description::well_known::Rfc3339;

use crate::settings::{KeysCreateArgs, KeysIdArgs, KeysListArgs, KeysRotateArgs};

/// Prints a new key pair; the keys are shown once and only their hashes are stored.
pub async fn create(args: KeysCreateArgs) -> anyhow::Result<()> {
    let scopes = Scopes::parse_list(&args.scopes).map_err(|e| anyhow::anyhow!("--scopes: {e}"))?;
    let (database_url, master_key) = args.store.resolve()?;
    let store =
        ctxsync_store::connect(&database_url, master_key).await.context("could not open the database")?;
    let expires_at = args.expires_in.map(expiry).transpose()?;
    let pair = store
        .issue_key_pair(&args.org, &scopes, expires_at)
        .await
        .context("could not create the key pair")?;
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
            "api_key_id": pair.api_key_id.to_string(),
            "app_key_id": pair.app_key_id.to_string(),
            "expires_at": pair.expires_at.map(time_text),
        });
        writeln!(out, "{json}")?;
    } else {
        writeln!(out, "org:      {} ({})", pair.org_name, pair.org_id)?;
        writeln!(out, "api key:  {}", pair.api_key)?;
        writeln!(out, "app key:  {}", pair.app_key)?;
        let scopes = scope_names.map_or("all permissions of the org".into(), |s| s.join(", "));
        writeln!(out, "scopes:   {scopes}")?;
        writeln!(out, "ids:      api {}  app {}", pair.api_key_id, pair.app_key_id)?;
        if let Some(at) = pair.expires_at {
            writeln!(out, "expires:  {}", time_text(at))?;
        }
        writeln!(out, "Keep them now: only their hashes are stored.")?;
    }
    out.flush()?;
    Ok(())
}

/// The keys, never their values; without `--org`, every org's.
pub async fn list(args: KeysListArgs) -> anyhow::Result<()> {
    let store = crate::stored::open(&args.store).await?;
    let filter = match &args.org {
        None => KeyFilter::All,
        Some(name) => {
            let orgs = store.list_keys(KeyFilter::All).await?;
            match orgs.iter().find(|k| &k.org_name == name) {
                Some(key) => KeyFilter::Org(key.org_id),
                None => bail!("no org named {name:?} has keys"),
            }
        }
    };
    let keys = store.list_keys(filter).await.context("could not list the keys")?;
    let mut out = std::io::stdout().lock();
    if args.json {
        for key in &keys {
            writeln!(out, "{}", key_json(key))?;
        }
    } else {
        writeln!(
            out,
            "{:<36}  {:<12}  {:<4}  {:<8}  {:<20}  {:<20}  SCOPES",
            "ID", "ORG", "KIND", "STATUS", "CREATED", "LAST USED"
        )?;
        for key in &keys {
            writeln!(
                out,
                "{:<36}  {:<12}  {:<4}  {:<8}  {:<20}  {:<20}  {}",
                key.id,
                key.org_name,
                key.kind.as_str(),
                key.status(ctxsync_core::now()),
                minute(key.created_at),
                key.last_used_at.map_or("never".into(), minute),
                scopes_text(key),
            )?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Stops a key now; a revoked key stays revoked.
pub async fn revoke(args: KeysIdArgs) -> anyhow::Result<()> {
    let store = crate::stored::open(&args.store).await?;
    let Some(key) = store.revoke_key(KeyFilter::All, args.id).await.context("could not revoke the key")?
    else {
        bail!("no key has id {}; `ctxsync keys list` shows them", args.id);
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", key_json(&key))?;
    } else {
        writeln!(out, "revoked {} key {} of org {}", key.kind.as_str(), key.id, key.org_name)?;
        writeln!(out, "Running replicas stop accepting it within two seconds.")?;
    }
    out.flush()?;
    Ok(())
}

/// Prints the new key, once; the old one keeps working for `--grace`.
pub async fn rotate(args: KeysRotateArgs) -> anyhow::Result<()> {
    let store = crate::stored::open(&args.store).await?;
    let expires_at = args.expires_in.map(expiry).transpose()?;
    let issued = store
        .rotate_key(KeyFilter::All, args.id, args.grace, expires_at)
        .await
        .context("could not rotate the key")?;
    let Some(issued) = issued else {
        bail!("no key has id {}; `ctxsync keys list` shows them", args.id);
    };
    let old_until = time_text(ctxsync_core::now() + args.grace);
    let mut out = std::io::stdout().lock();
    if args.json {
        let mut json = key_json(&issued.info);
        json["key"] = json!(issued.key);
        json["replaces"] = json!(args.id.to_string());
        writeln!(out, "{json}")?;
    } else {
        writeln!(out, "new {} key:  {}", issued.info.kind.as_str(), issued.key)?;
        writeln!(out, "id:          {}", issued.info.id)?;
        writeln!(out, "The old key {} works until {old_until}.", args.id)?;
        writeln!(out, "Keep the new key now: only its hash is stored.")?;
    }
    out.flush()?;
    Ok(())
}

/// A key as the API's key routes show it, with its id beside the attributes.
fn key_json(key: &KeyInfo) -> serde_json::Value {
    let data = ctxsync_api::keys::KeyData::from(key);
    let mut json = data.attributes;
    json["id"] = json!(data.id);
    json
}

fn scopes_text(key: &KeyInfo) -> String {
    match &key.scopes {
        None => "-".into(),
        Some(scopes) => scopes.names().map_or("all but manage_keys".into(), |names| names.join(",")),
    }
}

fn expiry(after: Duration) -> anyhow::Result<time::OffsetDateTime> {
    let after = time::Duration::try_from(after).context("--expires-in is too long")?;
    ctxsync_core::now().checked_add(after).context("--expires-in is too long")
}

fn time_text(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).expect("a UTC time formats")
}

/// A time to the minute, as `last_used_at` is recorded.
fn minute(t: time::OffsetDateTime) -> String {
    time_text(t).chars().take(16).collect::<String>() + "Z"
}
