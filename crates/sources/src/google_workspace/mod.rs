//! Google Workspace: the Admin SDK Directory API, through a service account with domain-wide
//! delegation impersonating a Workspace admin.
//!
//! Validation mints a token (proves the key, the delegation and that the admin exists), then
//! lists one user and one group as that admin (proves the admin may read them). A sync
//! (`pages.rs`) lists users, groups and each group's members; Google has no change feed, so
//! every run lists everything.

mod auth;
mod client;
mod map;
mod pages;

use ctxsync_core::GoogleWorkspaceCredentials;
use serde_json::Value;

use crate::SourceError;
use crate::endpoints::Target;
use crate::http::Http;
use auth::ServiceAccount;
use client::DirectoryClient;
pub(crate) use pages::sync;

pub(crate) async fn validate(
    http: &Http,
    token_target: &Target,
    directory_target: Target,
    credentials: &GoogleWorkspaceCredentials,
) -> Result<(), SourceError> {
    let account = ServiceAccount::new(credentials);
    let mut client = DirectoryClient::new(http, token_target.clone(), directory_target.clone(), account);
    client.authenticate().await?;
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
