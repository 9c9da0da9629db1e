//! Requests to Microsoft Graph with an app-only token, honouring `Retry-After` on throttling,
//! and Graph's error envelope turned into messages that say what to do.

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION};
use serde::Deserialize;

use crate::SourceError;
use crate::endpoints::Target;
use crate::http::{AccessToken, Http, Reply, Retry, excerpt, retry_after, transient, unavailable};

const SOURCE: &str = "Microsoft Graph";

#[derive(Deserialize)]
struct ErrorBody {
    error: GraphError,
}

#[derive(Deserialize)]
struct GraphError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

#[derive(Debug)]
pub(crate) struct GraphClient<'a> {
    http: &'a Http,
    target: Target,
    token: AccessToken,
}

impl<'a> GraphClient<'a> {
    pub(crate) fn new(http: &'a Http, target: Target, token: AccessToken) -> Self {
        Self { http, target, token }
    }

    /// `GET {base}/v1.0/{collection}?{odata}`. The OData options are written as Graph documents
    /// them (`$top=1&$select=id`), not form-encoded.
    pub(crate) async fn get(&self, collection: &str, odata: &str) -> Result<Reply, SourceError> {
        let auth = self.token.bearer()?;
        let mut url = self.target.url(&["v1.0", collection]);
        url.set_query(Some(odata));
        tracing::debug!(source = SOURCE, path = url.path(), "request");
        let reply = self
            .http
            .send(
                SOURCE,
                &self.target,
                |client| {
                    client
                        .get(url.clone())
                        .header(AUTHORIZATION, auth.clone())
                        .header(ACCEPT, "application/json")
                },
                classify,
            )
            .await?;
        if reply.status.is_success() { Ok(reply) } else { Err(self.failure(&reply, collection)) }
    }

    fn failure(&self, reply: &Reply, collection: &str) -> SourceError {
        let secrets = [self.token.expose()];
        let error = reply.json::<ErrorBody>().map(|b| b.error);
        let said = match &error {
            Some(e) => format!("{} ({})", excerpt(&e.message, &secrets), excerpt(&e.code, &secrets)),
            None => format!("HTTP {}", reply.status.as_u16()),
        };
        if transient(reply.status) {
            return unavailable(
                SOURCE,
                &self.target,
                reply,
                &format!(": {said}"),
                retry_after(&reply.headers),
            );
        }
        let next = match (reply.status, error.as_ref().map(|e| e.code.as_str())) {
            (StatusCode::FORBIDDEN, _) => {
                "Authorization_RequestDenied means the app lacks consent: give it the Microsoft Graph application \
                 permissions User.Read.All and Group.Read.All and have an administrator grant admin consent"
            }
            (StatusCode::UNAUTHORIZED, _) => {
                "Graph refused the token Entra ID just issued; check that CTXSYNC_GRAPH_BASE_URL and \
                 CTXSYNC_ENTRA_LOGIN_BASE_URL belong to the same cloud"
            }
            _ => "check the config's domain and the app registration",
        };
        SourceError::Rejected(format!("Microsoft Graph refused to list {collection}: {said}; {next}"))
    }
}

fn classify(reply: &Reply) -> Retry {
    match reply.status {
        status if transient(status) => retry_after(&reply.headers).map_or(Retry::Backoff, Retry::After),
        _ => Retry::No,
    }
}
