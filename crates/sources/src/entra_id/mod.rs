//! Microsoft Entra ID: Microsoft Graph with an app registration's client credentials.
//!
//! Validation gets a token (proves tenant, app and secret), then lists one user and one group
//! (proves the app holds consented `User.Read.All` and `Group.Read.All`).

mod auth;
mod client;

use ctxsync_core::EntraIdCredentials;
use serde_json::Value;

use crate::SourceError;
use crate::endpoints::Target;
use crate::http::Http;
use auth::ClientSecret;
use client::GraphClient;

pub(crate) async fn validate(
    http: &Http,
    login: &Target,
    graph: Target,
    tenant: &str,
    credentials: &EntraIdCredentials,
) -> Result<(), SourceError> {
    if !is_tenant(tenant) {
        return Err(SourceError::Rejected(format!(
            "{tenant:?} is not an Entra ID tenant; set the domain to a verified domain of the tenant (for example \
             contoso.onmicrosoft.com) or settings.tenant_id to its tenant ID"
        )));
    }
    let token = ClientSecret::new(credentials).access_token(http, login, tenant).await?;
    let client = GraphClient::new(http, graph.clone(), token);
    for collection in ["users", "groups"] {
        let reply = client.get(collection, "$top=1&$select=id").await?;
        if !reply.json::<Value>().is_some_and(|v| v.get("value").is_some_and(Value::is_array)) {
            return Err(SourceError::Unreachable(format!(
                "{} did not answer like Microsoft Graph (expected a JSON collection of {collection}); check \
                 CTXSYNC_GRAPH_BASE_URL",
                graph.display()
            )));
        }
    }
    Ok(())
}

/// A tenant ID or a domain: letters, digits, `-` and `.`, not starting with `.`. Anything else
/// would change the token URL's path.
fn is_tenant(tenant: &str) -> bool {
    !tenant.is_empty()
        && !tenant.starts_with('.')
        && tenant.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}
