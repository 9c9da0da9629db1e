//! Microsoft Entra ID: Microsoft Graph with an app registration's client credentials.
//!
//! Validation gets a token (proves tenant, app and secret), then lists one user, one group and
//! one device (proves the app holds consented `User.Read.All`, `Group.Read.All` and
//! `Device.Read.All`). A sync walks Graph's delta queries (`pages.rs`), mapping what they return
//! into the entity model (`map.rs`).

mod auth;
mod client;
mod map;
mod pages;
#[cfg(test)]
mod tests;

use ctxsync_core::EntraIdCredentials;
use serde_json::Value;

use crate::endpoints::Target;
use crate::http::Http;
use crate::{PageSink, SourceError, SyncError, SyncMode, sync::Outcome};
use client::GraphClient;

pub(crate) async fn validate(
    http: &Http,
    login: &Target,
    graph: Target,
    tenant: &str,
    credentials: &EntraIdCredentials,
) -> Result<(), SourceError> {
    check_tenant(tenant)?;
    let mut client = GraphClient::new(http, login.clone(), graph, tenant, credentials);
    for collection in ["users", "groups", "devices"] {
        let url = client.url(&[collection], "$top=1&$select=id");
        let (body, _) = client
            .fetch(&url, collection, &[], |r| r.json::<Value>())
            .await
            .map_err(client::Failure::into_source)?;
        if !body.get("value").is_some_and(Value::is_array) {
            return Err(SourceError::Unreachable(format!(
                "{} did not answer like Microsoft Graph (expected a JSON collection of {collection}); check \
                 CTXSYNC_GRAPH_BASE_URL",
                client.graph().display()
            )));
        }
    }
    Ok(())
}

/// Lists the tenant's users, groups (with their members) and devices: everything on a full
/// run, the changes since the cursor's delta links on an incremental one.
pub(crate) async fn sync(
    http: &Http,
    login: Target,
    graph: Target,
    tenant: &str,
    credentials: &EntraIdCredentials,
    mode: SyncMode,
    sink: &mut dyn PageSink,
) -> Result<Outcome, SyncError> {
    check_tenant(tenant)?;
    let mut client = GraphClient::new(http, login, graph, tenant, credentials);
    pages::sync(&mut client, mode, sink).await
}

fn check_tenant(tenant: &str) -> Result<(), SourceError> {
    if is_tenant(tenant) {
        return Ok(());
    }
    Err(SourceError::Rejected(format!(
        "{tenant:?} is not an Entra ID tenant; set the domain to a verified domain of the tenant (for example \
         contoso.onmicrosoft.com) or settings.tenant_id to its tenant ID"
    )))
}

/// A tenant ID or a domain: letters, digits, `-` and `.`, not starting with `.`. Anything else
/// would change the token URL's path.
fn is_tenant(tenant: &str) -> bool {
    !tenant.is_empty()
        && !tenant.starts_with('.')
        && tenant.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}
