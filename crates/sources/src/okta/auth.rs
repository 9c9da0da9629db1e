//! Okta API tokens: a static token sent as `Authorization: SSWS <token>`, with no exchange. The
//! token acts with the permissions of the admin who created it.

use super::OktaCredentials;
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};

use crate::SourceError;
use crate::http::sensitive_header;

/// `Debug` redacts (through [`SecretString`]).
#[derive(Debug, Clone)]
pub(crate) struct ApiToken(SecretString);

impl ApiToken {
    pub(crate) fn new(credentials: &OktaCredentials) -> Self {
        Self(credentials.api_token.clone())
    }

    pub(crate) fn header(&self) -> Result<HeaderValue, SourceError> {
        sensitive_header(&format!("SSWS {}", self.0.expose_secret()), "api_token")
    }

    /// For redacting echoes of the token from messages.
    pub(crate) fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}
