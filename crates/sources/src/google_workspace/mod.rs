//! Google Workspace: the Admin SDK Directory API, through a service account with domain-wide
//! delegation impersonating a Workspace admin.
//!
//! Validation mints a token (proves the key, the delegation and that the admin exists), then
//! lists one user and one group as that admin (proves the admin may read them).

mod auth;
mod client;

use ctxsync_core::GoogleWorkspaceCredentials;
use serde_json::Value;

use crate::SourceError;
use crate::endpoints::Target;
use crate::http::Http;
use auth::ServiceAccount;
use client::DirectoryClient;

pub(crate) async fn validate(
    http: &Http,
    token_target: &Target,
    directory_target: Target,
    credentials: &GoogleWorkspaceCredentials,
) -> Result<(), SourceError> {
    let account = ServiceAccount::new(credentials);
    let token = account.access_token(http, token_target).await?;
    let client = DirectoryClient::new(http, directory_target.clone(), token, account.admin_email());
    for collection in ["users", "groups"] {
        let reply = client.get(collection, &[("customer", "my_customer"), ("maxResults", "1")]).await?;
        if !reply.json::<Value>().is_some_and(|v| v.is_object()) {
            return Err(SourceError::Unreachable(format!(
                "{} did not answer like the Directory API (expected a JSON object listing {collection}); check \
                 CTXSYNC_GOOGLE_DIRECTORY_BASE_URL",
                directory_target.display()
            )));
        }
    }
    Ok(())
}
