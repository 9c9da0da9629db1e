//! Entra ID app credentials: the OAuth client-credentials grant at
//! `{login}/{tenant}/oauth2/v2.0/token`, for Graph's `.default` scope (the app's consented
//! application permissions).

use std::time::Duration;

use super::EntraIdCredentials;
use reqwest::header::ACCEPT;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::SourceError;
use crate::endpoints::Target;
use crate::http::{AccessToken, Http, Reply, Retry, excerpt, retry_after, transient, unavailable};

const SOURCE: &str = "Microsoft Entra ID";
/// The global cloud's Graph audience, even when Graph requests go to an override: the token is
/// for Graph, wherever the operator routes it.
const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

/// Graph's tokens live an hour; a reply that does not say is taken to mean that.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3599);

#[derive(Deserialize)]
struct TokenReply {
    access_token: String,
    /// Seconds; the v1 endpoint wrote it as a string.
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

impl TokenReply {
    fn lifetime(&self) -> Duration {
        let secs = match &self.expires_in {
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        secs.map_or(DEFAULT_LIFETIME, Duration::from_secs)
    }
}

/// The identity platform's OAuth error: branch on `error` and the AADSTS code; the description's
/// text may change.
#[derive(Deserialize)]
struct AadError {
    error: String,
    #[serde(default)]
    error_description: String,
    #[serde(default)]
    error_codes: Vec<u64>,
}

/// `Debug` redacts the secret (through [`SecretString`]).
#[derive(Debug)]
pub(crate) struct ClientSecret {
    client_id: String,
    secret: SecretString,
}

impl ClientSecret {
    pub(crate) fn new(credentials: &EntraIdCredentials) -> Self {
        Self { client_id: credentials.client_id.clone(), secret: credentials.client_secret.clone() }
    }

    /// A fresh access token and how long it lives.
    pub(crate) async fn access_token(
        &self,
        http: &Http,
        login: &Target,
        tenant: &str,
    ) -> Result<(AccessToken, Duration), SourceError> {
        let url = login.url(&[tenant, "oauth2", "v2.0", "token"]);
        let reply = http
            .send(
                SOURCE,
                login,
                |client| {
                    client.post(url.clone()).header(ACCEPT, "application/json").form(&[
                        ("client_id", self.client_id.as_str()),
                        ("client_secret", self.secret.expose_secret()),
                        ("scope", GRAPH_SCOPE),
                        ("grant_type", "client_credentials"),
                    ])
                },
                classify,
            )
            .await?;
        if !reply.status.is_success() {
            return Err(self.failure(login, &reply, tenant));
        }
        match reply.json::<TokenReply>() {
            Some(t) if !t.access_token.is_empty() => {
                let lifetime = t.lifetime();
                Ok((AccessToken::new(t.access_token), lifetime))
            }
            _ => Err(SourceError::Unreachable(format!(
                "{} did not answer like the Microsoft identity platform (no access_token in a {} reply); check \
                 CTXSYNC_ENTRA_LOGIN_BASE_URL",
                login.display(),
                reply.status.as_u16()
            ))),
        }
    }

    fn failure(&self, login: &Target, reply: &Reply, tenant: &str) -> SourceError {
        let secrets = [self.secret.expose_secret()];
        let parsed = reply.json::<AadError>();
        // The description's first line is the message; trace and correlation ids follow it.
        let said = parsed.as_ref().map(|e| {
            format!("{} ({})", excerpt(&e.error_description, &secrets), excerpt(&e.error, &secrets))
        });
        if transient(reply.status) {
            let detail = said.map(|s| format!(": {s}")).unwrap_or_default();
            return unavailable(SOURCE, login, reply, &detail, retry_after(&reply.headers));
        }
        let (Some(e), Some(said)) = (parsed, said) else {
            return SourceError::Unreachable(format!(
                "{} answered HTTP {} without an OAuth error; check CTXSYNC_ENTRA_LOGIN_BASE_URL",
                login.display(),
                reply.status.as_u16()
            ));
        };
        let code = |c: u64| e.error_codes.contains(&c);
        let next = match e.error.as_str() {
            _ if code(90002) => format!(
                "tenant {tenant:?} does not exist; set the domain to a verified domain of the tenant, or \
                 settings.tenant_id to its tenant ID"
            ),
            "invalid_client" => {
                "check client_secret: use the secret's value (not its ID) and make sure it has not \
                                 expired"
                    .to_string()
            }
            "unauthorized_client" => format!(
                "check client_id: the app must be registered in (or consented to by) tenant {tenant:?}"
            ),
            _ => "check the app registration's client_id and client_secret".to_string(),
        };
        SourceError::Rejected(format!(
            "Microsoft Entra ID refused the app's client credentials: {said}; {next}"
        ))
    }
}

fn classify(reply: &Reply) -> Retry {
    match reply.status {
        status if transient(status) => retry_after(&reply.headers).map_or(Retry::Backoff, Retry::After),
        _ => Retry::No,
    }
}
