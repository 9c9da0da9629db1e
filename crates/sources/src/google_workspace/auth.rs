//! Service-account auth with domain-wide delegation: an RS256 JWT assertion, signed with the key
//! file's private key and impersonating the configured admin, exchanged for an access token at
//! Google's token endpoint.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::credentials::GoogleWorkspaceCredentials;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::ACCEPT;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::TOKEN_URL as GOOGLE_TOKEN_URL;
use crate::SourceError;
use crate::endpoints::Target;
use crate::http::{AccessToken, Http, Reply, Retry, excerpt, retry_after, transient, unavailable};

const SOURCE: &str = "Google's token endpoint";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Google's maximum assertion lifetime.
const LIFETIME_SECS: u64 = 3600;

/// What a sync reads: users, groups and their members, read-only.
pub(crate) const SCOPES: [&str; 3] = [
    "https://www.googleapis.com/auth/admin.directory.user.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.member.readonly",
];

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    scope: String,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

#[derive(Deserialize)]
struct TokenReply {
    access_token: String,
    expires_in: Option<u64>,
}

/// A token Google issued, how long it lasts, and the retries getting it took.
#[derive(Debug)]
pub(crate) struct Minted {
    pub token: AccessToken,
    pub lifetime: Duration,
    pub retries: u32,
}

#[derive(Deserialize)]
struct OAuthError {
    error: String,
    #[serde(default)]
    error_description: String,
}

/// `Debug` redacts the private key (through [`SecretString`]).
#[derive(Debug)]
pub(crate) struct ServiceAccount {
    client_email: String,
    admin_email: String,
    private_key: SecretString,
    private_key_id: Option<String>,
}

impl ServiceAccount {
    pub(crate) fn new(credentials: &GoogleWorkspaceCredentials) -> Self {
        Self {
            client_email: credentials.client_email.clone(),
            admin_email: credentials.admin_email.clone(),
            private_key: credentials.private_key.clone(),
            private_key_id: credentials.private_key_id.clone(),
        }
    }

    pub(crate) fn admin_email(&self) -> &str {
        &self.admin_email
    }

    /// The signed JWT. `aud` is always Google's token URL, even when requests go to an
    /// override: that is the audience Google checks.
    fn assertion(&self, now: u64) -> Result<SecretString, SourceError> {
        let unusable = || {
            SourceError::InvalidCredentials(
                "the service account key's private_key is not a usable RSA private key in PEM form; download a \
                 new JSON key for the service account and update the config's service_account_json"
                    .to_string(),
            )
        };
        let key =
            EncodingKey::from_rsa_pem(self.private_key.expose_secret().as_bytes()).map_err(|_| unusable())?;
        let mut header = Header::new(Algorithm::RS256);
        header.kid = self.private_key_id.clone();
        let claims = Claims {
            iss: &self.client_email,
            sub: &self.admin_email,
            scope: SCOPES.join(" "),
            aud: GOOGLE_TOKEN_URL,
            iat: now,
            exp: now + LIFETIME_SECS,
        };
        jsonwebtoken::encode(&header, &claims, &key).map(SecretString::from).map_err(|_| unusable())
    }

    /// Exchanges a fresh assertion for an access token at `target` (the canonical token URL or
    /// the operator's override; never the key file's `token_uri`).
    pub(crate) async fn access_token(&self, http: &Http, target: &Target) -> Result<Minted, SourceError> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let assertion = self.assertion(now)?;
        let url = target.url(&[]);
        let fetched = http
            .fetch(
                SOURCE,
                target,
                |client| {
                    client
                        .post(url.clone())
                        .header(ACCEPT, "application/json")
                        .form(&[("grant_type", JWT_BEARER), ("assertion", assertion.expose_secret())])
                },
                classify,
                |_| Some(()),
            )
            .await?;
        let reply = fetched.reply;
        let secrets = [self.private_key.expose_secret(), assertion.expose_secret()];
        if !reply.status.is_success() {
            return Err(self.failure(target, &reply, &secrets));
        }
        match reply.json::<TokenReply>() {
            Some(t) if !t.access_token.is_empty() => Ok(Minted {
                token: AccessToken::new(t.access_token),
                lifetime: Duration::from_secs(t.expires_in.unwrap_or(LIFETIME_SECS)),
                retries: fetched.retries,
            }),
            _ => Err(SourceError::Unreachable(format!(
                "{} did not answer like Google's token endpoint (no access_token in a {} reply); check \
                 CTXSYNC_GOOGLE_TOKEN_URL",
                target.display(),
                reply.status.as_u16()
            ))),
        }
    }

    fn failure(&self, target: &Target, reply: &Reply, secrets: &[&str]) -> SourceError {
        let parsed = reply.json::<OAuthError>();
        let said = parsed
            .as_ref()
            .map(|e| format!("{} ({})", excerpt(&e.error_description, secrets), excerpt(&e.error, secrets)));
        if transient(reply.status) {
            let detail = said.map(|s| format!(": {s}")).unwrap_or_default();
            return unavailable(SOURCE, target, reply, &detail, retry_after(&reply.headers));
        }
        let (Some(e), Some(said)) = (parsed, said) else {
            return SourceError::Unreachable(format!(
                "{} answered HTTP {} without an OAuth error; check CTXSYNC_GOOGLE_TOKEN_URL",
                target.display(),
                reply.status.as_u16()
            ));
        };
        let description = e.error_description.as_str();
        let next = match e.error.as_str() {
            "unauthorized_client" => format!(
                "domain-wide delegation is missing: in the Google Admin console (Security → Access and data \
                 control → API controls → Domain-wide delegation) authorise the service account's client ID for \
                 the scopes {}",
                SCOPES.join(",")
            ),
            "invalid_grant" if description.contains("Invalid email or User ID") => {
                "admin_email must be an existing user of the Workspace account".to_string()
            }
            "invalid_grant" if description.contains("Signature") => {
                "the private key is not (or no longer) a key of this service account; create a new JSON key and \
                 update the config's service_account_json"
                    .to_string()
            }
            "invalid_grant" if description.contains("account not found") || description.contains("deleted") => {
                "the service account does not exist; check client_email in the key file".to_string()
            }
            "invalid_grant" if description.contains("iat and exp") => {
                "the server's clock is off; synchronise it (NTP) and try again".to_string()
            }
            _ => "check the service account key and admin_email".to_string(),
        };
        SourceError::Rejected(format!(
            "Google refused to issue a token for {} acting as {}: {said}; {next}",
            self.client_email, self.admin_email
        ))
    }
}

fn classify(reply: &Reply) -> Retry {
    match reply.status {
        status if transient(status) => retry_after(&reply.headers).map_or(Retry::Backoff, Retry::After),
        _ => Retry::No,
    }
}
