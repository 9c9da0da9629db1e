//! Okta: the Management API with an `SSWS` API token.
//!
//! Validation reads the token's own user (`/users/me`: is the token live?), then one user and
//! one group (does its admin have the list rights a sync needs?). A sync (`pages.rs`) lists
//! users, groups, members and admin roles, following `Link` headers, and incrementally asks
//! only for what changed since the last run.
//!
//! Settings: `okta_include_factors` (boolean, default `false`) also reads each listed user's
//! enrolled MFA factors. That is one more request per user, so it is off unless asked for.

mod auth;
mod client;
mod map;
mod pages;

use ctxsync_core::OktaCredentials;
use serde_json::Value;

use crate::SourceError;
use crate::endpoints::Target;
use crate::http::Http;
use client::OktaClient;
pub(crate) use pages::sync;

pub(crate) async fn validate(
    http: &Http,
    target: Target,
    credentials: &OktaCredentials,
) -> Result<(), SourceError> {
    let client = OktaClient::new(http, target, credentials);
    let me = client.get(&["api", "v1", "users", "me"], &[], "read the token's own user").await?;
    expect_json(&client, me.json::<Value>().filter(|v| v.get("id").is_some()), "the token's user")?;
    for (collection, action) in [("users", "list users"), ("groups", "list groups")] {
        let reply = client.get(&["api", "v1", collection], &[("limit", "1")], action).await?;
        expect_json(&client, reply.json::<Value>().filter(Value::is_array), collection)?;
    }
    Ok(())
}

/// A 2xx that is not Okta's JSON means the domain points at something else (a portal, a proxy).
fn expect_json(client: &OktaClient<'_>, parsed: Option<Value>, what: &str) -> Result<(), SourceError> {
    match parsed {
        Some(_) => Ok(()),
        None => Err(SourceError::Rejected(format!(
            "{} did not answer like Okta (expected JSON for {what}); check that the domain is the org's Okta host",
            client.display()
        ))),
    }
}
